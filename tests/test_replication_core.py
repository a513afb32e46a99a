"""The pure replication core: backlog, ids/offsets, PSYNC decision (spec
§5.2), stream encoding (§4.3), the replica handshake (§2), the incremental
snapshot (§3.2)."""

from __future__ import annotations

import random

from frtrio.config import Config
from frtrio.core.engine import Server
from frtrio.persist.rdbfile import load_rdb
from frtrio.replication import handshake as hs
from frtrio.replication.backlog import Backlog
from frtrio.replication.snapshot import Snapshot, crc_parts
from frtrio.replication.state import (CLEARED_ID, GETACK, PING, Continue, FullResync, ReplState,
                                      encode_command)

R = "a" * 40
R2 = "b" * 40


def test_backlog_wraps_and_serves_ranges():
    b = Backlog(16384)
    data = bytes(random.Random(1).randrange(256) for _ in range(50000))
    for i in range(0, len(data), 777):
        b.append(data[i:i + 777])
    assert b.offset == 50000
    assert b.histlen == 16384
    assert b.first_byte_offset == 50000 - 16384 + 1
    assert b.read_from(b.first_byte_offset) == data[-16384:]
    assert b.read_from(49001) == data[49000:]
    assert b.read_from(50001) == b""
    assert b.covers(50001) and not b.covers(50002) and not b.covers(b.first_byte_offset - 1)
    b.resize(20000)
    assert b.read_from(b.first_byte_offset) == data[-16384:]


def test_backlog_size_is_at_least_16k():
    assert Backlog(100).size == 16384


def _master_at_392():
    st = ReplState(R)
    st.create_backlog(1 << 20)
    st.append(b"x" * 392)
    return st


def test_psync_rules_exactly_as_verified():
    st = _master_at_392()
    r = st.try_partial(R, 393, True)
    assert r == Continue(b"+CONTINUE " + R.encode() + b"\r\n", b"")
    r = st.try_partial(R, 100, True)
    assert isinstance(r, Continue) and len(r.data) == 293
    assert st.try_partial(R.upper(), 393, False).reply == b"+CONTINUE\r\n"
    assert isinstance(st.try_partial(R, 394, True), FullResync)
    assert st.fullresync_reply() == b"+FULLRESYNC " + R.encode() + b" 392\r\n"
    q = st.try_partial("?", -1, True)
    assert isinstance(q, FullResync) and not q.partial_err
    assert st.try_partial(R2, 1, True).partial_err


def test_psync_through_replid2_after_shift():
    st = _master_at_392()
    st.shift_replid(R2)
    assert st.replid2 == R and st.second_replid_offset == 393
    st.append(b"y" * 10)
    assert isinstance(st.try_partial(R, 393, True), Continue)
    assert st.try_partial(R, 393, True).reply == b"+CONTINUE " + R2.encode() + b"\r\n"
    assert isinstance(st.try_partial(R, 394, True), FullResync)
    st.clear_replid2()
    assert isinstance(st.try_partial(CLEARED_ID, 1, True), FullResync)


def test_stream_select_insertion_and_sizes():
    assert len(PING) == 14 and len(GETACK) == 37
    st = ReplState(R)
    assert st.feed([(0, [b"set", b"a", b"1"])]) == b""  # no backlog: nothing counted
    st.create_backlog(1 << 20)
    out = st.feed([(0, [b"set", b"a", b"1"]), (3, [b"SET", b"b", b"2"]),
                   (3, [b"SET", b"c", b"3"]), (0, [b"DEL", b"a"])])
    sel0 = encode_command([b"SELECT", b"0"])
    assert len(sel0) == 23
    assert out == (sel0 + encode_command([b"set", b"a", b"1"]) + encode_command([b"SELECT", b"3"])
                   + encode_command([b"SET", b"b", b"2"]) + encode_command([b"SET", b"c", b"3"])
                   + sel0 + encode_command([b"DEL", b"a"]))
    assert st.master_repl_offset == len(out)


def test_handshake_bytes_and_psync_replies():
    h = hs.Handshake(7777, announce_ip="10.9.8.7", masteruser="repl", masterauth="secret")
    assert h.connected().data == b"*1\r\n$4\r\nPING\r\n"
    assert hs.role_state(h.state) == "handshake"
    burst = h.on_line(b"+PONG").data
    assert burst == (b"*3\r\n$4\r\nAUTH\r\n$4\r\nrepl\r\n$6\r\nsecret\r\n"
                     b"*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n7777\r\n"
                     b"*3\r\n$8\r\nREPLCONF\r\n$10\r\nip-address\r\n$8\r\n10.9.8.7\r\n"
                     b"*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n"
                     b"$6\r\npsync2\r\n")
    assert h.on_line(b"+OK") is None
    assert h.on_line(b"-ERR x") is None  # non critical
    assert h.on_line(b"+OK") is None
    assert h.on_line(b"+OK").data == b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"
    assert h.on_line(b"") is None  # keepalive
    assert h.on_line(b"+FULLRESYNC " + R.encode() + b" 392") == hs.FullSync(R, 392)
    assert hs.role_state(h.state) == "sync"


def test_handshake_auth_failure_ping_error_and_cached_psync():
    h = hs.Handshake(1, masterauth="pw")
    h.connected()
    h.on_line(b"-NOAUTH Authentication required.")
    assert isinstance(h.on_line(b"-ERR invalid password"), hs.Fail)
    h = hs.Handshake(1)
    h.connected()
    assert isinstance(h.on_line(b"-ERR unknown"), hs.Fail)
    h = hs.Handshake(1, cached=(R, 100))
    h.connected()
    h.on_line(b"+PONG")
    h.on_line(b"+OK")
    assert h.on_line(b"+OK").data == encode_command([b"PSYNC", R.encode(), b"101"])
    assert h.on_line(b"+CONTINUE " + R2.encode()) == hs.Partial(R2)
    assert h.state == hs.CONNECTED


def test_handshake_old_master_gets_sync_and_retry_replies():
    for line, kind in ((b"-ERR unknown command 'PSYNC'", hs.Send), (b"-NOMASTERLINK x", hs.Fail),
                       (b"-LOADING x", hs.Fail)):
        h = hs.Handshake(1)
        h.connected()
        h.on_line(b"+PONG")
        h.on_line(b"+OK")
        h.on_line(b"+OK")
        r = h.on_line(line)
        assert isinstance(r, kind)
    assert r is not None
    assert hs.bulk_header(b"$123") == hs.BulkLen(123)
    assert hs.bulk_header(b"$EOF:" + b"c" * 40) == hs.BulkEof(b"c" * 40)
    assert hs.bulk_header(b"") is None
    assert isinstance(hs.bulk_header(b"-ERR x"), hs.Fail)
    assert isinstance(hs.bulk_header(b"+x"), hs.Fail)


def _server():
    return Server(Config(), random.Random(1))


def test_snapshot_is_point_in_time_under_in_place_changes():
    srv = _server()
    db = srv.dbs[0]
    for i in range(1000):
        db.set(b"k%d" % i, bytearray(b"v%d" % i) if False else b"v%d" % i)
    from frtrio.commands import lists  # noqa: F401
    c = srv.new_client()
    for i in range(50):
        srv.execute(c, [b"RPUSH", b"list%d" % i, b"a", b"b"])
    srv.execute(c, [b"SELECT", b"2"])
    srv.execute(c, [b"SET", b"in2", b"x"])
    srv.execute(c, [b"SELECT", b"0"])
    srv.execute(c, [b"PEXPIREAT", b"k1", b"99999999999999"])
    snap = Snapshot(srv, srv.config, R, 77, 0, b"7.0.15", 0, 0)
    srv.start_snapshot(snap)
    snap.step(10)
    for i in range(50):  # change lists in place while the snapshot runs
        srv.execute(c, [b"RPUSH", b"list%d" % i, b"c"])
    srv.execute(c, [b"RENAME", b"list7", b"moved"])
    srv.execute(c, [b"RPUSH", b"moved", b"d"])
    srv.execute(c, [b"SET", b"k5", b"new"])
    srv.execute(c, [b"FLUSHDB"])
    while not snap.step(100):
        pass
    srv.end_snapshot(snap)
    parts = snap.payload_parts()
    body = b"".join(parts)
    data = body + crc_parts(parts).to_bytes(8, "little")
    fresh = _server()
    load_rdb(data, fresh, fresh.config)
    d0 = fresh.dbs[0]
    assert len(d0.data) == 1050
    assert d0.data[b"k5"] == b"v5"
    assert d0.expires == {b"k1": 99999999999999}
    c2 = fresh.new_client()
    fresh.execute(c2, [b"LRANGE", b"list7", b"0", b"-1"])
    assert c2.take_output() == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert fresh.dbs[2].data[b"in2"] == b"x"
    assert b"repl-id" in data and R.encode() in data


def test_promoted_replica_keeps_its_backlog_for_repl_backlog_ttl():
    """A replica's backlog survives its promotion for repl-backlog-ttl
    seconds counted from the promotion (Redis's replicationUnsetMaster sets
    repl_no_slaves_since), so the old master can resync partially; it used
    to be freed at the next replication cron when the node had never had a
    replica of its own (the ttl was counted from the node's start)."""
    from frtrio.replication.core import Replication

    cfg = Config()
    repl = Replication("a" * 40, 0)
    repl.masterhost, repl.masterport = "127.0.0.1", 7000
    repl.state.create_backlog(1 << 20)
    t = 10_000_000  # a node up for almost three hours
    repl.unset_master("b" * 40, t)
    assert repl.state.replid2 == "a" * 40
    ttl_ms = int(cfg.get("repl-backlog-ttl")) * 1000
    assert not repl.backlog_expired(cfg, t + 1000)
    assert not repl.backlog_expired(cfg, t + ttl_ms)
    assert repl.backlog_expired(cfg, t + ttl_ms + 1)
