"""The structured event log: schema, determinism of the encoding, and a real
server writing it when ``frtrio-event-log`` is set (and holding no log when
it is not)."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from frtrio.config import Config
from frtrio.core.events import (
    FIELDS,
    PACKET_ID,
    EventLog,
    digest,
    open_node_event_log,
    parse_ts_utc,
    read_events,
    ts_utc,
    validate,
)
from frtrio.runtime.env import RealEnv
from frtrio.runtime.node import Node
from support import ServerProc


def _log(lines, **kw):
    clock = iter(range(1_767_225_600_000_000, 2**62, 1500))
    return EventLog(lines.append, clock_us=lambda: next(clock), suite_id="unit",
                    test_or_scenario_id="t1", seed=9, replay_cmd="frtrio sim run ...", **kw)


def test_record_has_every_field_in_order():
    lines = []
    log = _log(lines)
    rec = log.emit("client.op", "n1", input=[b"SET", b"k", b"v"], output=b"+OK\r\n",
                   duration_ms=1.23456, client="c1")
    assert list(rec) == list(FIELDS)
    assert validate(rec) == []
    parsed = json.loads(lines[0])
    assert list(parsed) == list(FIELDS) and parsed == rec
    assert parsed["packet_id"] == PACKET_ID == "FR-P2C-007"
    assert parsed["ts_utc"] == "2026-01-01T00:00:00.000000Z"
    assert parsed["duration_ms"] == 1.235
    assert parsed["input_digest"] == digest([b"SET", b"k", b"v"]) != ""
    assert parsed["output_digest"] == digest(b"+OK\r\n")
    assert parsed["detail"] == {"client": "c1"} and parsed["seed"] == 9
    assert lines[0].endswith("\n") and lines[0].count("\n") == 1


def test_node_log_detail_may_use_any_key():
    lines = []
    nlog = _log(lines).for_node("n1", mode="hardened")
    rec = nlog.emit("cluster.link_state", outcome="connected", node="abcd", direction="to")
    assert rec["node"] == "n1" and rec["mode"] == "hardened" and rec["outcome"] == "connected"
    assert rec["detail"] == {"node": "abcd", "direction": "to"}
    assert validate(json.loads(lines[0])) == []


def test_encoding_is_ascii_compact_and_stable():
    a, b = [], []
    for out in (a, b):
        log = _log(out)
        log.emit("x", "n\u00e9", value=b"\xff\x00bin", s={"b", "a"}, f=0.1 + 0.2)
    assert a == b
    assert a[0].isascii() and ", " not in a[0] and ": " not in a[0]
    rec = json.loads(a[0])
    assert rec["detail"]["s"] == ["a", "b"]  # sets are sorted, never hash-ordered


def test_digest_forms():
    assert digest(None) == ""
    assert digest(b"abc") == digest("abc") and len(digest(b"abc")) == 16
    assert digest([b"GET", b"k"]) == digest(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
    assert digest({"a": 1}) == digest(repr({"a": 1}))


def test_ts_roundtrip():
    for us in (0, 1_767_225_600_123_456, 1_767_225_601_000_001):
        assert parse_ts_utc(ts_utc(us)) == us


def test_validate_catches_problems():
    lines = []
    rec = dict(_log(lines).emit("e", "n1"))
    assert validate(rec) == []
    bad = dict(rec, mode="lenient")
    assert any("mode" in p for p in validate(bad))
    bad = {k: v for k, v in rec.items() if k != "seed"}
    assert any("missing" in p for p in validate(bad))
    assert any("reason_code" in p for p in validate(dict(rec, reason_code="oops")))
    assert any("ts_utc" in p for p in validate(dict(rec, ts_utc="yesterday")))


def test_node_holds_no_log_when_off():
    cfg = Config()
    node = Node(cfg, RealEnv(seed=1), "n1")
    assert node.events is None and node.server.events is None
    assert open_node_event_log(cfg, RealEnv(seed=1), "n1") is None
    assert node.policy.batch_clamp() == 0  # strict: the reader's clamp test is `if 0`


def _send_raw(port: int, data: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    finally:
        s.close()


@pytest.mark.parametrize("mode", ["strict", "hardened"])
def test_real_server_writes_event_log(tmp_path, mode):
    path = str(tmp_path / "events.jsonl")
    srv = ServerProc("frtrio", args=["--frtrio-event-log", path, "--frtrio-mode", mode])
    srv.start()
    try:
        reply = _send_raw(srv.port, b"PING\r\n*1\r\n$x\r\n")
        assert reply == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
        assert srv.terminate() == 0
    finally:
        srv.cleanup()
    events = read_events(path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "node.ready" and kinds[-1] == "node.stopped"
    err = next(e for e in events if e["event"] == "client.protocol_error")
    assert err["suite_id"] == "frtrio-server" and err["mode"] == mode
    assert err["outcome"] == "rejected" and err["seed"] is None
    assert err["detail"]["error"] == "ERR Protocol error: invalid bulk length"
    # the bounded excerpt is a hardened-only deviation (BoundedParserDiagnostics)
    assert ("excerpt" in err["detail"]) == (mode == "hardened")
    ts = [parse_ts_utc(e["ts_utc"]) for e in events]
    assert ts == sorted(ts) and abs(ts[0] / 1e6 - time.time()) < 600
    assert os.path.getsize(path) > 0
