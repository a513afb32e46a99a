"""Strict and hardened modes (contract row C16), a pure core.

``strict`` is byte-for-byte Redis behaviour. ``hardened`` keeps the same
observable contract (every valid input gets the same reply) and may in
addition take these bounded defences, and only these:

* ``BoundedParserDiagnostics``: when a client or peer sends malformed input,
  record a bounded, sanitised excerpt of it (at most ``DIAG_MAX_BYTES``) in
  the event log. The reply and the connection handling do not change.
* ``MetadataSanitization``: peer-supplied metadata (client names and
  addresses, later bus hostnames) is stripped of control and non-ASCII bytes
  and cut to ``META_MAX_CHARS`` before it is logged or stored as metadata.
* ``ResourceClamp``: bound the resources one peer can take without changing
  any reply; today: a connection executes at most ``BATCH_CLAMP`` pipelined
  commands before it flushes and yields to other connections.

Code that wants a deviation asks ``Policy.allow(name)``. In strict mode the
answer is always no. In hardened mode a name outside the allowlist is
refused (fail-closed) and logged with ``cluster.hardened_nonallowlisted_rejected``;
an allowlisted one is granted while the budget lasts. Each grant spends one
unit; when the budget runs out the node falls back to strict for good and
logs ``cluster.hardened_budget_exhausted_failclosed`` once.

No ``trio``, no clock, no randomness here: the policy is a deterministic
function of the sequence of questions asked.
"""

from __future__ import annotations

STRICT = "strict"
HARDENED = "hardened"
MODES = (STRICT, HARDENED)

BOUNDED_PARSER_DIAGNOSTICS = "BoundedParserDiagnostics"
METADATA_SANITIZATION = "MetadataSanitization"
RESOURCE_CLAMP = "ResourceClamp"
ALLOWLIST = (BOUNDED_PARSER_DIAGNOSTICS, METADATA_SANITIZATION, RESOURCE_CLAMP)

REASON_NONALLOWLISTED = "cluster.hardened_nonallowlisted_rejected"
REASON_BUDGET_EXHAUSTED = "cluster.hardened_budget_exhausted_failclosed"
REASON_POLICY_VIOLATION = "cluster.hardened_policy_violation"

DEFAULT_BUDGET = 100_000
DIAG_MAX_BYTES = 64
META_MAX_CHARS = 128
BATCH_CLAMP = 1024


class Policy:
    """The mode of one node and its hardened budget."""

    __slots__ = ("mode", "budget", "used", "exhausted", "taken", "rejected", "events")

    def __init__(self, mode: str = STRICT, budget: int = DEFAULT_BUDGET, events=None):
        if mode not in MODES:
            raise ValueError("frtrio-mode must be strict or hardened, not %r" % (mode,))
        self.mode = mode
        self.budget = budget
        self.used = 0
        self.exhausted = False
        self.taken: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.events = events  # a NodeEventLog or None

    @classmethod
    def from_config(cls, config, events=None, budget: int = DEFAULT_BUDGET) -> "Policy":
        return cls(config.get("frtrio-mode"), budget, events)

    @property
    def effective_mode(self) -> str:
        """``hardened`` only while hardened deviations may still be taken."""
        return HARDENED if self.mode == HARDENED and not self.exhausted else STRICT

    def allow(self, deviation: str, **detail) -> bool:
        """May the caller take ``deviation`` now? Spends budget when yes."""
        if self.mode != HARDENED:
            return False
        if deviation not in ALLOWLIST:
            self.rejected[deviation] = self.rejected.get(deviation, 0) + 1
            if self.events is not None:
                self.events.emit(
                    "policy.rejected", outcome="rejected", reason_code=REASON_NONALLOWLISTED,
                    deviation=deviation, **detail,
                )
            return False
        if self.exhausted:
            return False
        if self.used >= self.budget:
            self.exhausted = True
            if self.events is not None:
                self.events.emit(
                    "policy.budget_exhausted", outcome="rejected",
                    reason_code=REASON_BUDGET_EXHAUSTED, deviation=deviation,
                    budget=self.budget, mode_now=STRICT,
                )
            return False
        self.used += 1
        self.taken[deviation] = self.taken.get(deviation, 0) + 1
        return True

    # --- the allowlisted deviations -------------------------------------------------

    def sanitize(self, value) -> str:
        """MetadataSanitization when granted; otherwise the value as text
        (bytes decoded with backslash escapes, which JSON logs carry safely)."""
        s = value.decode("utf-8", "backslashreplace") if isinstance(value, (bytes, bytearray)) else str(value)
        if not self.allow(METADATA_SANITIZATION):
            return s
        return sanitize_text(s)

    def parser_diagnostic(self, data: bytes, pos: int = 0) -> dict | None:
        """BoundedParserDiagnostics when granted: a bounded excerpt of the
        input around ``pos`` (where parsing stopped)."""
        if not self.allow(BOUNDED_PARSER_DIAGNOSTICS):
            return None
        return bounded_excerpt(data, pos)

    def batch_clamp(self) -> int:
        """ResourceClamp for pipelined batches: commands a connection may run
        before it yields (0 = no clamp, as in strict)."""
        return BATCH_CLAMP if self.effective_mode == HARDENED else 0

    def note_protocol_error(self, addr: str, error: str, data: bytes = b"", pos: int = 0) -> None:
        """Log a client protocol error (the reply is unchanged in both modes)."""
        if self.events is None:
            return
        diag = self.parser_diagnostic(data, pos) if self.mode == HARDENED else None
        detail = {"client": self.sanitize(addr) if self.mode == HARDENED else addr,
                  "error": error}
        if diag is not None:
            detail["excerpt"] = diag
        self.events.emit("client.protocol_error", input=bytes(data[pos : pos + DIAG_MAX_BYTES]),
                         outcome="rejected", **detail)


def sanitize_text(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        out.append(ch if 32 <= o < 127 else "?")
        if len(out) >= META_MAX_CHARS:
            break
    return "".join(out)


def bounded_excerpt(data: bytes, pos: int = 0) -> dict:
    data = bytes(data)
    start = max(0, min(pos, len(data)) - DIAG_MAX_BYTES // 4)
    chunk = data[start : start + DIAG_MAX_BYTES]
    return {
        "offset": start,
        "total": len(data),
        "bytes": chunk.decode("ascii", "backslashreplace").encode("ascii", "backslashreplace").decode("ascii"),
        "truncated": start + len(chunk) < len(data),
    }
