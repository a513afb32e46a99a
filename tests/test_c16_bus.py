"""C16 on the cluster bus: hardened takes only allowlisted deviations.

Real bus packets (encoded with the codec, then made malformed) go through the
bus core (in process) and through a real frtrio process's bus port. In both
modes a rejected packet changes nothing (C10); hardened adds only a bounded
excerpt (BoundedParserDiagnostics) and a sanitised sender
(MetadataSanitization) to the event, refuses to repair the packet
(``cluster.hardened_nonallowlisted_rejected``) and, with its budget spent,
behaves as strict and says so once
(``cluster.hardened_budget_exhausted_failclosed``)."""

from __future__ import annotations

import json
import os
import socket
import time

from fuzz_targets import FakeLink, bus_digest, make_bus
from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_policy import BUS_PACKET_REPAIR
from frtrio.cluster.bus_types import PING
from frtrio.core.policy import (
    DIAG_MAX_BYTES,
    HARDENED,
    REASON_BUDGET_EXHAUSTED,
    REASON_NONALLOWLISTED,
    STRICT,
    Policy,
)
from support import ServerProc, free_port


class Recorder:
    def __init__(self):
        self.events = []

    def emit(self, event, **kw):
        self.events.append((event, kw))
        return kw


def ping_packet(sender="a" * 40) -> bytes:
    m = bc.Message(PING, sender=sender, port=7000, cport=17000, flags=1, current_epoch=99,
                   config_epoch=50, offset=0, myip="127.0.0.1", state=0)
    m.gossip = [bc.Gossip("c" * 40, 0, 0, "127.0.0.1", 7002, 17002, 1, 0, 0)]
    return bc.encode(m)


def bad_count(raw: bytes) -> bytes:
    """A PING whose gossip count disagrees with its length (per-type length check)."""
    b = bytearray(raw)
    b[14:16] = (5).to_bytes(2, "big")
    return bytes(b)


def hardened_bus(mode=HARDENED, budget=100_000):
    srv, core, bus = make_bus()
    rec = Recorder()
    srv.events = rec
    srv.policy = Policy(mode, budget, rec)
    return srv, core, bus, rec


def test_c16_hardened_rejected_packet_fails_closed_with_reason():
    srv, core, bus, rec = hardened_bus()
    before = bus_digest(core)
    raw = bad_count(ping_packet(sender="a" * 39 + "\x07"))
    effects, close = bus.receive_raw(FakeLink(None, inbound=True), raw, 10_000)
    assert effects == [] and bus_digest(core) == before  # C10 holds in hardened too
    names = [e for e, _ in rec.events]
    assert "policy.rejected" in names and "cluster.packet_rejected" in names
    rej = dict(rec.events)["policy.rejected"]
    assert rej["reason_code"] == REASON_NONALLOWLISTED and rej["deviation"] == BUS_PACKET_REPAIR
    pr = dict(rec.events)["cluster.packet_rejected"]
    assert len(pr["excerpt"]["bytes"].encode().decode("unicode_escape")) <= DIAG_MAX_BYTES
    assert pr["excerpt"]["total"] == len(raw)
    assert pr["sender"] == "a" * 39 + "?"  # control byte sanitised
    assert srv.policy.taken == {"BoundedParserDiagnostics": 1, "MetadataSanitization": 1}
    assert srv.policy.rejected == {BUS_PACKET_REPAIR: 1}


def test_c16_strict_takes_no_deviation_on_the_bus():
    srv, core, bus, rec = hardened_bus(mode=STRICT)
    before = bus_digest(core)
    effects, close = bus.receive_raw(FakeLink(None, inbound=True), bad_count(ping_packet()), 10_000)
    assert effects == [] and bus_digest(core) == before
    assert [e for e, _ in rec.events] == ["cluster.packet_rejected"]
    assert "excerpt" not in rec.events[0][1] and "sender" not in rec.events[0][1]
    assert srv.policy.taken == {} and srv.policy.rejected == {}


def test_c16_same_decision_strict_and_hardened_for_valid_and_invalid_packets():
    raws = [ping_packet(), bad_count(ping_packet()), ping_packet()[:-3], b"RCmb" + b"\0" * 10]
    outs = []
    for mode in (STRICT, HARDENED):
        srv, core, bus, rec = hardened_bus(mode=mode)
        res = []
        for raw in raws:
            eff, close = bus.receive_raw(FakeLink(None, inbound=True), raw, 10_000)
            res.append(([type(e).__name__ for e in eff], close, bus_digest(core)))
        outs.append(res)
    assert outs[0] == outs[1]


def test_c16_budget_exhausted_falls_back_to_strict():
    srv, core, bus, rec = hardened_bus(budget=2)
    before = bus_digest(core)
    raw = bad_count(ping_packet())
    for _ in range(4):
        effects, close = bus.receive_raw(FakeLink(None, inbound=True), raw, 10_000)
        assert effects == []
    assert bus_digest(core) == before
    exhausted = [kw for e, kw in rec.events if kw.get("reason_code") == REASON_BUDGET_EXHAUSTED]
    assert len(exhausted) == 1 and exhausted[0]["mode_now"] == STRICT
    assert srv.policy.effective_mode == STRICT
    rejected_events = [kw for e, kw in rec.events if e == "cluster.packet_rejected"]
    assert "excerpt" in rejected_events[0]
    assert all("excerpt" not in kw and "sender" not in kw for kw in rejected_events[1:])
    assert srv.policy.used == 2


def _read_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_c16_real_process_bus_port_hardened(tmp_path):
    log = str(tmp_path / "events.jsonl")
    cport = free_port()
    srv = ServerProc("frtrio", args=["--cluster-enabled", "yes", "--cluster-port", str(cport),
                                     "--frtrio-mode", "hardened", "--frtrio-event-log", log])
    with srv:
        c = srv.conn()
        nodes_before = c.cmd("CLUSTER", "NODES")
        info_before = c.cmd("CLUSTER", "INFO")
        raw = bad_count(ping_packet(sender="z" * 39 + "\x1b"))
        with socket.create_connection(("127.0.0.1", cport), timeout=5) as s:
            s.sendall(raw)
            deadline = time.monotonic() + 10
            evs = []
            while time.monotonic() < deadline:
                evs = _read_events(log)
                if any(e["event"] == "cluster.packet_rejected" for e in evs):
                    break
                time.sleep(0.05)
        pol = [e for e in evs if e["reason_code"] == REASON_NONALLOWLISTED]
        assert pol and pol[0]["mode"] == HARDENED and pol[0]["detail"]["deviation"] == BUS_PACKET_REPAIR
        pr = [e for e in evs if e["event"] == "cluster.packet_rejected"]
        assert pr and pr[0]["detail"]["sender"] == "z" * 39 + "?"
        assert pr[0]["detail"]["excerpt"]["total"] == len(raw)
        assert c.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("CLUSTER", "NODES") == nodes_before  # nothing learned from the bad packet
        def state_lines(info):  # the per-type received counters move, as in Redis
            return [ln for ln in info.split(b"\r\n")[1:] if not ln.startswith(b"cluster_stats")]

        assert state_lines(c.cmd("CLUSTER", "INFO")) == state_lines(info_before)
