"""Strict/hardened (C16) on the cluster bus, a pure core.

What the bus does for a packet that fails validation (C10) is the same in
both modes: it changes no state, sends nothing, and ignores the packet or
closes the link as Redis does. Hardened mode may add only allowlisted,
bounded extras to the ``cluster.packet_rejected`` event:

* ``BoundedParserDiagnostics``: a bounded excerpt of the packet
  (``policy.bounded_excerpt``: at most ``DIAG_MAX_BYTES``);
* ``MetadataSanitization``: the peer-supplied sender id from the header,
  stripped of control/non-ASCII bytes and cut short, before it is logged.

Any other deviation is refused. The one the bus could be tempted by is
repairing a malformed packet (fixing a length, dropping a bad extension) and
handling it anyway: hardened asks the policy for ``BusPacketRepair``, which
is not allowlisted, so the policy refuses it with
``cluster.hardened_nonallowlisted_rejected`` and the packet is dropped exactly
as strict drops it (fail closed). When the hardened budget is spent the policy
logs ``cluster.hardened_budget_exhausted_failclosed`` once and the bus behaves
as strict from then on (no extras).

``ResourceClamp`` on the bus: a link's reader handles at most
``BUS_BATCH_CLAMP`` packets from one read before it yields to other tasks
(runtime/bus.py); which packets are handled and how does not change.
"""

from __future__ import annotations

from frtrio.core.policy import HARDENED

BUS_PACKET_REPAIR = "BusPacketRepair"  # not allowlisted: hardened refuses it
BUS_BATCH_CLAMP = 64

_SENDER = slice(40, 80)  # clusterMsg.sender in the header


def on_rejected(policy, raw: bytes, reason: str) -> dict:
    """Extra event fields for a rejected packet (empty in strict mode)."""
    if policy is None or policy.mode != HARDENED:
        return {}
    extra: dict = {}
    if not policy.exhausted:
        # the one non-allowlisted deviation the bus could take: refused
        policy.allow(BUS_PACKET_REPAIR, reason=reason, packet_len=len(raw))
    diag = policy.parser_diagnostic(raw, 0)
    if diag is not None:
        extra["excerpt"] = diag
    if len(raw) >= _SENDER.stop and policy.effective_mode == HARDENED:
        from frtrio.core.policy import METADATA_SANITIZATION, sanitize_text

        if policy.allow(METADATA_SANITIZATION):
            extra["sender"] = sanitize_text(raw[_SENDER].decode("latin-1"))
    return extra


def batch_clamp(policy) -> int:
    """Packets a bus link handles per read before yielding (0 = no clamp)."""
    if policy is None or policy.effective_mode != HARDENED:
        return 0
    return BUS_BATCH_CLAMP
