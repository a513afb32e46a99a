"""Streams: differential tests against redis-server 7.0 (reply bytes, RESP2
and RESP3), blocking XREAD / XREADGROUP scenarios over real sockets, and
DUMP/RESTORE of streams in both directions.

Auto-generated IDs depend on the clock, so scripts use explicit IDs; where
a reply holds times (XPENDING idle, XINFO seen-time) the tests compare
contents with the times masked.
"""

from __future__ import annotations

import pytest

from support import parse_reply, run_script, switch_to_resp3
from test_blocking import both, no_reply_yet, send, servers, wait_blocked  # noqa: F401

run = run_script


def _fill(diff, key="s", n=5, start=1):
    for i in range(start, start + n):
        diff("XADD", key, f"{i}-0", "f", str(i), "g", "x")


def test_xadd_ids_and_errors(diff):
    run(diff, [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-0", "a", "1"),
        ("XADD", "s", "1-*", "b", "2"), ("XADD", "s", "2-*", "b", "2"), ("XADD", "s", "2", "c", "3"),
        ("XADD", "s", "0-0", "a", "1"), ("XADD", "s2", "0-0", "a", "1"), ("XADD", "s2", "0", "a", "1"),
        ("XADD", "s2", "0-*", "a", "1"), ("XADD", "s2", "0-1", "a", "1"), ("EXISTS", "s2"),
        ("XADD", "s", "abc", "a", "1"), ("XADD", "s", "1-x", "a", "1"), ("XADD", "s", "-", "a", "1"),
        ("XADD", "s", "+", "a", "1"), ("XADD", "s", "-1", "a", "1"), ("XADD", "s", " 9", "a", "1"),
        ("XADD", "s", "+10-1", "a", "1"), ("XADD", "s", "11-+2", "a", "1"),
        ("XADD", "s", "18446744073709551615-18446744073709551614", "a", "1"),
        ("XADD", "s", "18446744073709551615-*", "a", "1"),
        ("XADD", "s", "18446744073709551615-*", "a", "1"),
        ("XADD", "s", "*", "a", "1"),
        ("XADD", "s", "18446744073709551616-0", "a", "1"),
        ("XADD", "s", "20-0", "a"), ("XADD", "s", "20-0"), ("XADD", "s"), ("XADD", "s", "20-0", "a", "1", "b"),
        ("XADD", "nk", "NOMKSTREAM", "5-0", "a", "1"), ("EXISTS", "nk"),
        ("XADD", "nk", "NOMKSTREAM", "*", "a", "1"),
        ("XADD", "nk", "nomkstream"),
        ("XLEN", "s"), ("XLEN", "nope"), ("TYPE", "s"), ("OBJECT", "ENCODING", "s"),
        ("SET", "str", "x"), ("XADD", "str", "1-0", "a", "1"), ("XLEN", "str"),
        ("XRANGE", "s", "-", "+"),
    ])


def test_xadd_trim_options(diff):
    run(diff, [
        ("XADD", "s", "MAXLEN", "-1", "1-0", "a", "1"), ("XADD", "s", "MAXLEN", "x", "1-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "2", "MINID", "3", "1-0", "a", "1"),
        ("XADD", "s", "MINID", "3", "MAXLEN", "2", "1-0", "a", "1"),
        ("XADD", "s", "LIMIT", "5", "1-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "5", "LIMIT", "5", "1-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "1-0", "a", "1"),
        ("XADD", "s", "MINID", "-", "1-0", "a", "1"),
        ("XADD", "s", "MINID", "x", "1-0", "a", "1"),
        ("EXISTS", "s"),
    ])
    for i in range(1, 21):
        diff("XADD", "s", "MAXLEN", "=", "10", f"{i}-0", "f", str(i))
    run(diff, [("XLEN", "s"), ("XRANGE", "s", "-", "+", "COUNT", "3")])
    for i in range(21, 41):
        diff("XADD", "s", "MINID", "30", f"{i}-0", "f", str(i))
    run(diff, [("XLEN", "s"), ("XRANGE", "s", "-", "+", "COUNT", "2"), ("XINFO", "STREAM", "s")])


def test_approx_trim_follows_nodes(diff):
    diff("CONFIG", "SET", "stream-node-max-entries", "10")
    for i in range(1, 96):
        diff("XADD", "s", f"{i}-0", "f", str(i))
    run(diff, [
        ("XINFO", "STREAM", "s"),
        ("XTRIM", "s", "MAXLEN", "~", "50"), ("XLEN", "s"), ("XINFO", "STREAM", "s"),
        ("XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "10"), ("XLEN", "s"),
        ("XTRIM", "s", "MINID", "~", "75"), ("XLEN", "s"),
        ("XTRIM", "s", "MINID", "77"), ("XLEN", "s"), ("XRANGE", "s", "-", "+", "COUNT", "2"),
        ("XADD", "s", "MAXLEN", "~", "5", "200-0", "f", "v"), ("XLEN", "s"),
        ("XTRIM", "s", "MAXLEN", "0"), ("XLEN", "s"), ("XINFO", "STREAM", "s"),
        ("XTRIM", "s"), ("XTRIM", "s", "LIMIT", "1"), ("XTRIM", "s", "MAXLEN", "1", "LIMIT", "1"),
        ("XTRIM", "s", "FOO", "1"), ("XTRIM", "nope", "MAXLEN", "1"),
    ])


def test_xrange_xrevrange(diff):
    _fill(diff, n=10)
    diff("XADD", "s", "5-1", "only", "one")
    run(diff, [
        ("XRANGE", "s", "-", "+"), ("XREVRANGE", "s", "+", "-"),
        ("XRANGE", "s", "3", "5"), ("XRANGE", "s", "(3-0", "(5-1"), ("XREVRANGE", "s", "(5-1", "(3"),
        ("XRANGE", "s", "-", "+", "COUNT", "2"), ("XRANGE", "s", "-", "+", "COUNT", "0"),
        ("XRANGE", "s", "-", "+", "COUNT", "-3"), ("XRANGE", "s", "-", "+", "COUNT"),
        ("XRANGE", "s", "-", "+", "COUNT", "x"), ("XRANGE", "s", "-", "+", "LIMIT", "2"),
        ("XRANGE", "s", "(-", "+"), ("XRANGE", "s", "-", "(+"),
        ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
        ("XRANGE", "s", "-", "(0-0"), ("XRANGE", "s", "-", "(0"),
        ("XRANGE", "s", "5", "3"), ("XRANGE", "nope", "-", "+"), ("XRANGE", "nope", "x", "+"),
        ("XREVRANGE", "s", "5", "3"), ("XRANGE", "s", "(", "+"),
    ])


def test_xdel_and_lengths(diff):
    _fill(diff, n=6)
    run(diff, [
        ("XDEL", "s", "2-0", "3-0", "99-0"), ("XDEL", "s", "2-0"), ("XDEL", "s", "bad"),
        ("XDEL", "s", "4-0", "bad"), ("XLEN", "s"), ("XDEL", "nope", "1-0"),
        ("XDEL", "s", "1-0"), ("XINFO", "STREAM", "s"),
        ("XDEL", "s", "4-0", "5-0", "6-0"), ("XLEN", "s"), ("EXISTS", "s"), ("XINFO", "STREAM", "s"),
        ("XADD", "s", "3-0", "a", "b"), ("XADD", "s", "7-0", "a", "b"), ("XINFO", "STREAM", "s"),
    ])


def test_xsetid(diff):
    _fill(diff, n=3)
    run(diff, [
        ("XSETID", "s", "2-0"), ("XSETID", "s", "5-0"), ("XSETID", "s", "-"),
        ("XSETID", "nope", "1-0"), ("XSETID", "s", "5-0", "ENTRIESADDED", "1"),
        ("XSETID", "s", "5-0", "ENTRIESADDED", "-1"), ("XSETID", "s", "5-0", "ENTRIESADDED", "10"),
        ("XSETID", "s", "5-0", "MAXDELETEDID", "6-0"), ("XSETID", "s", "6-0", "MAXDELETEDID", "4-0"),
        ("XSETID", "s", "6-0", "FOO", "1"), ("XSETID", "s", "6-0", "ENTRIESADDED"),
        ("XINFO", "STREAM", "s"), ("XADD", "s", "6-0", "a", "1"), ("XADD", "s", "6-1", "a", "1"),
    ])


def test_xread_sync(diff):
    _fill(diff, "a", 3)
    _fill(diff, "b", 2, start=5)
    run(diff, [
        ("XREAD", "STREAMS", "a", "b", "0", "0"), ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "5"),
        ("XREAD", "STREAMS", "a", "$"), ("XREAD", "STREAMS", "a", "b", "nope", "1", "2", "0"),
        ("XREAD", "STREAMS", "a"), ("XREAD", "STREAMS", "a", "b", "0"), ("XREAD", "a", "0"),
        ("XREAD", "COUNT", "x", "STREAMS", "a", "0"), ("XREAD", "BLOCK", "x", "STREAMS", "a", "0"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "a", "0"), ("XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"),
        ("XREAD", "NOACK", "STREAMS", "a", "0"), ("XREAD", "STREAMS", "a", ">"),
        ("XREAD", "STREAMS", "a", "-"), ("XREAD", "STREAMS", "a", "x"),
        ("XREAD", "BLOCK", "10", "STREAMS", "a", "$"), ("XREAD", "STREAMS", "nope", "0"),
        ("SET", "str", "1"), ("XREAD", "STREAMS", "a", "str", "0", "0"),
        ("MULTI",), ("XREAD", "BLOCK", "0", "STREAMS", "a", "$"), ("EXEC",),
    ])
    switch_to_resp3(diff)
    run(diff, [("XREAD", "STREAMS", "a", "b", "0", "0"), ("XREAD", "STREAMS", "a", "$"),
               ("XINFO", "STREAM", "a"), ("XINFO", "STREAM", "a", "FULL")])


def test_groups_and_pending(diff):
    _fill(diff, n=5)
    run(diff, [
        ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "s", "g", "0"),
        ("XGROUP", "CREATE", "nope", "g", "0"), ("XGROUP", "CREATE", "nope", "g", "$", "MKSTREAM"),
        ("XINFO", "STREAM", "nope"), ("XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "3"),
        ("XGROUP", "CREATE", "s", "g3", "$", "ENTRIESREAD", "-2"),
        ("XGROUP", "CREATE", "s", "g3", "x"), ("XGROUP", "CREATE", "s", "g3", "0", "FOO"),
        ("XGROUP", "SETID", "s", "nog", "0"), ("XGROUP", "SETID", "s", "g2", "2-0", "ENTRIESREAD", "2"),
        ("XGROUP", "SETID", "s", "g2", "2-0", "MKSTREAM"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "alice"), ("XGROUP", "CREATECONSUMER", "s", "g", "alice"),
        ("XGROUP", "CREATECONSUMER", "s", "nog", "alice"), ("XGROUP", "FOO", "s", "g"),
        ("XGROUP", "HELP"), ("XGROUP", "HELP", "x"), ("XINFO", "HELP"), ("XINFO", "HELP", "x"),
        ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "nog", "bob", "STREAMS", "s", ">"),
        ("XREADGROUP", "STREAMS", "s", ">"), ("XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"),
        ("XPENDING", "s", "g"), ("XPENDING", "s", "nog"), ("XPENDING", "nope2", "g"),
        ("XPENDING", "s", "g", "-", "+"), ("XPENDING", "s", "g", "-", "+", "x"),
        ("XPENDING", "s", "g", "IDLE", "0", "-", "+"),
        ("XDEL", "s", "2-0"),
        ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"),
        ("XACK", "s", "g", "1-0", "1-0", "9-0"), ("XACK", "s", "g", "bad"), ("XACK", "s", "nog", "1-0"),
        ("XACK", "nope2", "g", "1-0"), ("XPENDING", "s", "g"),
        ("XINFO", "GROUPS", "s"), ("XINFO", "GROUPS", "nope2"), ("XINFO", "CONSUMERS", "s", "nog"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT"), ("XINFO", "STREAM", "s", "FOO"),
        ("XINFO", "STREAM", "s", "FULL", "LIMIT", "1"), ("XINFO", "FOO", "s"),
        ("XGROUP", "DELCONSUMER", "s", "g", "bob"), ("XGROUP", "DELCONSUMER", "s", "g", "bob"),
        ("XPENDING", "s", "g"), ("XGROUP", "DESTROY", "s", "g"), ("XGROUP", "DESTROY", "s", "g"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g2", "c", "NOACK", "STREAMS", "s", ">"), ("XPENDING", "s", "g2"),
        ("XINFO", "GROUPS", "s"),
    ])


def _masked(raw: bytes):
    """A reply with numbers that are times replaced (parse then mask ints
    above a year-2001 epoch in ms, and XPENDING / XINFO idle fields)."""
    v = parse_reply(raw)

    def m(x):
        if isinstance(x, list):
            return [m(y) for y in x]
        if isinstance(x, int) and x > 10**12:
            return "T"
        return x

    return m(v)


def _same_pending(diff, *args):
    """Extended XPENDING on both servers: equal apart from the idle times
    (milliseconds that depend on when each server ran the command)."""
    a, b = diff.both("XPENDING", *args)
    pa, pb = parse_reply(a), parse_reply(b)
    assert [x[:2] + x[3:] for x in pa] == [x[:2] + x[3:] for x in pb]
    assert a[:2] == b[:2]


def test_claim_and_autoclaim(diff):
    _fill(diff, n=6)
    diff("XGROUP", "CREATE", "s", "g", "0")
    diff("XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">")
    run(diff, [
        ("XCLAIM", "s", "g", "b", "0", "1-0", "2-0"),
        ("XCLAIM", "s", "g", "b", "0", "3-0", "JUSTID"),
        ("XCLAIM", "s", "g", "b", "0", "4-0", "RETRYCOUNT", "7", "JUSTID"),
        ("XCLAIM", "s", "g", "b", "x", "1-0"), ("XCLAIM", "s", "g", "b", "0", "1-0", "FOO"),
        ("XCLAIM", "s", "g", "b", "0", "1-0", "IDLE", "x"), ("XCLAIM", "s", "g", "b", "0", "1-0", "TIME", "x"),
        ("XCLAIM", "s", "g", "b", "0", "1-0", "RETRYCOUNT", "x"),
        ("XCLAIM", "s", "g", "b", "0", "1-0", "LASTID", "x"),
        ("XCLAIM", "s", "nog", "b", "0", "1-0"), ("XCLAIM", "nope", "g", "b", "0", "1-0"),
        ("XCLAIM", "s", "g", "b", "3600000", "5-0"),
        ("XCLAIM", "s", "g", "c", "0", "99-0", "FORCE"),
        ("XCLAIM", "s", "g", "c", "0", "6-0", "FORCE", "JUSTID", "LASTID", "50-0"),
        ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "5-0"),
        ("XAUTOCLAIM", "s", "g", "d", "0", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "d", "0", "0", "COUNT", "2", "JUSTID"),
        ("XAUTOCLAIM", "s", "g", "d", "0", "(3-0"),
        ("XAUTOCLAIM", "s", "g", "d", "0", "0", "COUNT", "0"),
        ("XAUTOCLAIM", "s", "g", "d", "x", "0"), ("XAUTOCLAIM", "s", "g", "d", "0", "x"),
        ("XAUTOCLAIM", "s", "g", "d", "0", "0", "FOO"), ("XAUTOCLAIM", "s", "nog", "d", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "d", "3600000", "0"),
        ("XPENDING", "s", "g"), ("XINFO", "CONSUMERS", "s", "nog"),
    ])
    _same_pending(diff, "s", "g", "-", "+", "10")
    a, b = diff.both("XINFO", "STREAM", "s", "FULL")
    assert _masked(a) == _masked(b)


def test_lag_and_entries_read(diff):
    _fill(diff, n=5)
    run(diff, [
        ("XGROUP", "CREATE", "s", "g", "0"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "a", "COUNT", "2", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "4-0"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "9-0", "f", "v"), ("XINFO", "GROUPS", "s"),
        ("XGROUP", "CREATE", "s", "g2", "1-0"), ("XGROUP", "CREATE", "s", "g3", "$"),
        ("XGROUP", "CREATE", "s", "g4", "0", "ENTRIESREAD", "2"), ("XINFO", "GROUPS", "s"),
        ("XTRIM", "s", "MAXLEN", "1"), ("XINFO", "GROUPS", "s"), ("XINFO", "STREAM", "s"),
    ])


def test_dump_restore_both_ways(diff):
    _fill(diff, n=150)
    diff("XDEL", "s", "7-0", "120-0")
    diff("XADD", "s", "200-0", "other", "fields", "x", "y")
    diff("XGROUP", "CREATE", "s", "g", "0")
    diff("XREADGROUP", "GROUP", "g", "a", "COUNT", "3", "STREAMS", "s", ">")
    diff("XREADGROUP", "GROUP", "g", "b", "COUNT", "2", "STREAMS", "s", ">")
    diff("XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "-1")
    diff("XGROUP", "CREATECONSUMER", "s", "g2", "idle")
    f, r = diff.f, diff.r
    full_f = f.cmd("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
    full_r = r.cmd("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
    dump_r = parse_reply(r.cmd("DUMP", "s"))
    dump_f = parse_reply(f.cmd("DUMP", "s"))
    assert f.cmd("RESTORE", "fromredis", "0", dump_r) == b"+OK\r\n"
    assert r.cmd("RESTORE", "fromfrtrio", "0", dump_f) == b"+OK\r\n"
    got_f = f.cmd("XINFO", "STREAM", "fromredis", "FULL", "COUNT", "0")
    got_r = r.cmd("XINFO", "STREAM", "fromfrtrio", "FULL", "COUNT", "0")
    assert got_f == full_r
    assert got_r == full_f
    assert _masked(full_f) == _masked(full_r)
    # an empty stream with only a group survives too
    diff("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM")
    dump_r = parse_reply(r.cmd("DUMP", "e"))
    assert f.cmd("RESTORE", "e2", "0", dump_r) == b"+OK\r\n"
    assert f.cmd("XINFO", "STREAM", "e2", "FULL") == r.cmd("XINFO", "STREAM", "e", "FULL")


# --- blocking -----------------------------------------------------------------


def test_xread_block_served_by_xadd(servers):
    def scenario(p):
        out = []
        with p.conn() as a, p.conn() as b, p.conn() as ctl:
            ctl.cmd("XADD", "s", "1-0", "f", "v")
            send(a, "XREAD", "BLOCK", "0", "STREAMS", "s", "other", "$", "0")
            send(b, "XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "s", "1-0")
            wait_blocked(ctl, 2)
            out.append(ctl.cmd("XADD", "other", "5-0", "x", "y"))
            out.append(a.read_reply())
            out.append(no_reply_yet(b))
            out.append(ctl.cmd("XADD", "s", "2-0", "f", "w"))
            out.append(b.read_reply())
            out.append(a.cmd("XREAD", "BLOCK", "50", "STREAMS", "s", "$"))
            send(a, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
            wait_blocked(ctl, 1)
            ctl.cmd("SET", "str", "1")
            ctl.cmd("DEL", "s")
            out.append(no_reply_yet(a))
            ctl.cmd("XADD", "s", "1-0", "f", "v")  # not past the ID '$' stood for
            out.append(no_reply_yet(a))
            ctl.cmd("XADD", "s", "3-0", "f", "v")
            out.append(a.read_reply())
        return out

    both(servers, scenario)


def test_xreadgroup_block_rules(servers):
    def scenario(p):
        out = []
        with p.conn() as a, p.conn() as b, p.conn() as ctl:
            ctl.cmd("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            send(a, "XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(ctl, 1)  # a blocks first: it is served first
            send(b, "XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(ctl, 2)
            out.append(ctl.cmd("XADD", "s", "1-0", "f", "v"))
            out.append(a.read_reply())
            out.append(no_reply_yet(b))
            out.append(ctl.cmd("XGROUP", "DESTROY", "s", "g"))
            out.append(b.read_reply())
            ctl.cmd("XGROUP", "CREATE", "s", "g", "$")
            send(a, "XREADGROUP", "GROUP", "g", "c1", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(ctl, 1)
            ctl.cmd("DEL", "s")
            out.append(no_reply_yet(a))
            ctl.cmd("XADD", "s", "5-0", "f", "v")
            out.append(a.read_reply())
            out.append(a.cmd("XREADGROUP", "GROUP", "g", "c", "BLOCK", "20", "STREAMS", "s", ">"))
            ctl.cmd("XGROUP", "CREATE", "s", "g", "$")
            send(a, "XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(ctl, 1)
            ctl.cmd("XADD", "s", "6-0", "f", "v")
            out.append(a.read_reply())
            out.append(ctl.cmd("XPENDING", "s", "g"))
        return out

    both(servers, scenario)


def test_blocking_resp3_and_timeout(servers):
    def scenario(p):
        out = []
        with p.conn() as a, p.conn() as ctl:
            a.cmd("HELLO", "3")
            out.append(a.cmd("XREAD", "BLOCK", "30", "STREAMS", "s", "$"))
            send(a, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
            wait_blocked(ctl, 1)
            ctl.cmd("XADD", "s", "3-0", "k", "v")
            out.append(a.read_reply())
        return out

    both(servers, scenario)


@pytest.mark.parametrize("cmd", [
    ("XLEN",), ("XRANGE", "-", "+"), ("XREVRANGE", "+", "-"), ("XDEL", "1-0"), ("XTRIM", "MAXLEN", "1"),
    ("XADD", "*", "a", "b"), ("XSETID", "1-0"), ("XACK", "g", "1-0"), ("XPENDING", "g"),
    ("XCLAIM", "g", "c", "0", "1-0"), ("XAUTOCLAIM", "g", "c", "0", "0"), ("XINFO", "STREAM"),
])
def test_wrongtype(diff, cmd):
    diff("RPUSH", "l", "x")
    name, *rest = cmd
    if name == "XINFO":
        diff("XINFO", "STREAM", "l")
        diff("XGROUP", "CREATE", "l", "g", "$")
        diff("XREAD", "STREAMS", "l", "0")
        return
    diff(name, "l", *rest)


# --- engine: propagation and AOF rewrite ---------------------------------------------


def _srv():
    from test_blocking import make_server

    return make_server()


def _ex(srv, c, *args):
    srv.execute(c, [a.encode() if isinstance(a, str) else a for a in args])
    return c.take_output()


def test_propagation_forms():
    srv = _srv()
    c = srv.new_client()
    srv.now_ms = 5000
    srv.propagated.clear()
    assert _ex(srv, c, "XADD", "s", "*", "f", "v") == b"$6\r\n5000-0\r\n"
    assert _ex(srv, c, "XADD", "s", "5000-*", "f", "v") == b"$6\r\n5000-1\r\n"
    for i in range(2, 250):
        _ex(srv, c, "XADD", "s", f"6000-{i}", "f", "v")
    srv.propagated.clear()
    _ex(srv, c, "XADD", "s", "MAXLEN", "~", "10", "7000-0", "f", "v")
    _ex(srv, c, "XTRIM", "s", "MINID", "~", "6000-240")
    _ex(srv, c, "XGROUP", "CREATE", "s", "g", "0")
    _ex(srv, c, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">")
    _ex(srv, c, "XREADGROUP", "GROUP", "g", "bob", "NOACK", "COUNT", "1", "STREAMS", "s", ">")
    srv.now_ms = 9000
    _ex(srv, c, "XCLAIM", "s", "g", "carol", "10", "6000-200")
    _ex(srv, c, "XAUTOCLAIM", "s", "g", "dan", "0", "0", "COUNT", "1", "JUSTID")
    _ex(srv, c, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0")  # history: nothing
    got = [argv for _, argv in srv.propagated]
    b = lambda *a: [x.encode() for x in a]  # noqa: E731
    # three nodes of 100, 100 and 51 entries: "~ 10" can drop only the first two;
    # "MINID ~" drops nothing (no node lies wholly below it) and propagates nothing
    assert got == [
        b("XADD", "s", "MAXLEN", "=", "51", "7000-0", "f", "v"),
        b("XGROUP", "CREATE", "s", "g", "0"),
        b("XCLAIM", "s", "g", "alice", "0", "6000-200", "TIME", "5000", "RETRYCOUNT", "1",
          "FORCE", "JUSTID", "LASTID", "6000-200"),
        b("XCLAIM", "s", "g", "alice", "0", "6000-201", "TIME", "5000", "RETRYCOUNT", "1",
          "FORCE", "JUSTID", "LASTID", "6000-201"),
        b("XGROUP", "CREATECONSUMER", "s", "g", "bob"),
        b("XGROUP", "SETID", "s", "g", "6000-202", "ENTRIESREAD", "203"),
        b("XCLAIM", "s", "g", "carol", "0", "6000-200", "TIME", "9000", "RETRYCOUNT", "2",
          "FORCE", "JUSTID", "LASTID", "6000-202"),
        b("XCLAIM", "s", "g", "dan", "0", "6000-200", "TIME", "9000", "RETRYCOUNT", "2",
          "FORCE", "JUSTID", "LASTID", "6000-202"),
    ]


def test_aof_rewrite_rebuilds_stream(frtrio_proc, redis_proc):
    """rewrite.stream_commands replayed into a fresh engine gives the same
    XINFO STREAM FULL; redis-server given the same commands agrees."""
    from frtrio.persist.aof_format import parse_aof
    from frtrio.persist.rewrite import dataset_as_commands

    srv = _srv()
    c = srv.new_client()
    for i in range(1, 40):
        _ex(srv, c, "XADD", "s", f"{i}-1", "f", str(i), *(["extra", "x"] if i % 7 == 0 else []))
    _ex(srv, c, "XDEL", "s", "3-1", "39-1")
    _ex(srv, c, "XGROUP", "CREATE", "s", "g", "0")
    _ex(srv, c, "XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "-1")
    _ex(srv, c, "XREADGROUP", "GROUP", "g", "a", "COUNT", "4", "STREAMS", "s", ">")
    _ex(srv, c, "XGROUP", "CREATECONSUMER", "s", "g", "idle")
    _ex(srv, c, "XGROUP", "CREATE", "e", "g", "$", "MKSTREAM")
    want = {k: _ex(srv, c, "XINFO", "STREAM", k, "FULL") for k in ("s", "e")}
    data = dataset_as_commands(srv)
    dst = _srv()
    d = dst.new_client()
    for argv, _ in parse_aof(data):
        dst.execute(d, argv)
    d.take_output()
    for k in ("s", "e"):
        assert _ex(dst, d, "XINFO", "STREAM", k, "FULL") == want[k]
    # the same commands on both servers build the same streams
    outs = []
    for p in (frtrio_proc, redis_proc):
        with p.conn() as conn:
            conn.cmd("FLUSHALL")
            for argv, _ in parse_aof(data):
                conn.cmd(*argv)
            outs.append([_masked(conn.cmd("XINFO", "STREAM", k, "FULL")) for k in ("s", "e")])
    assert outs[0] == outs[1]


# --- C05: cluster mode ---------------------------------------------------------------


def test_c05_xread_and_xreadgroup_released_when_slot_moves():
    from test_cluster_unit import H, ID_B, KA, SLOT_A, err

    h = H()
    assert h.run("XGROUP", "CREATE", KA, "g", "$", "MKSTREAM") == b"+OK\r\n"
    r1, r2, r3 = h.client(), h.client(resp=3), h.client()
    assert h.run("XREAD", "BLOCK", "0", "STREAMS", KA, "$", c=r1) == b""
    assert h.run("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", KA, ">", c=r2) == b""
    assert h.run("XREAD", "BLOCK", "0", "STREAMS", KA, "0", c=r3) == b""
    assert all(x.blocked is not None for x in (r1, r2, r3))
    h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_B)  # still ours: nobody released
    h.tick(100)
    assert all(x.blocked is not None for x in (r1, r2, r3))
    # MIGRATE takes the key away (as DEL here): the group reader learns its
    # stream is gone, as in Redis; the XREAD readers wait on
    h.run("DEL", KA)
    assert r2.blocked is None
    assert r2.take_output() == err("UNBLOCKED the stream key no longer exists")
    assert r1.blocked is not None and r3.blocked is not None
    h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B)
    moved = err("MOVED %d 127.0.0.2:7001" % SLOT_A)
    for x in (r1, r3):
        assert x.blocked is None
        assert x.take_output() == moved
    assert not h.srv.blocking.waiters


def test_c05_xreadgroup_clusterdown_when_slot_unbound():
    from test_cluster_unit import H, KA, SLOT_A, err

    h = H()
    h.run("XADD", KA, "1-0", "f", "v")
    h.run("XGROUP", "CREATE", KA, "g", "$")
    r = h.client()
    assert h.run("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", KA, ">", c=r) == b""
    h.run("CLUSTER", "DELSLOTS", SLOT_A)
    assert r.take_output() == err("CLUSTERDOWN Hash slot not served")


def test_copy_stream_with_groups(diff):
    _fill(diff, n=8)
    run(diff, [
        ("XDEL", "s", "2-0"), ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "a", "COUNT", "3", "STREAMS", "s", ">"),
        ("COPY", "s", "t"), ("XINFO", "STREAM", "t"), ("XINFO", "GROUPS", "t"),
        ("XACK", "t", "g", "1-0"), ("XPENDING", "t", "g"), ("XPENDING", "s", "g"),
        ("XADD", "t", "9-0", "x", "y"), ("XLEN", "s"), ("XLEN", "t"), ("TYPE", "t"),
    ])
    a, b = diff.both("XINFO", "STREAM", "t", "FULL")
    assert _masked(a) == _masked(b)


def _stream_dataset(conn):
    for i in range(1, 130):
        conn.cmd("XADD", "s", f"{i}-0", "f", str(i), *(["g", "x"] if i % 5 == 0 else []))
    conn.cmd("XDEL", "s", "4-0", "128-0")
    conn.cmd("XGROUP", "CREATE", "s", "g", "0")
    conn.cmd("XREADGROUP", "GROUP", "g", "a", "COUNT", "5", "STREAMS", "s", ">")
    conn.cmd("XGROUP", "CREATECONSUMER", "s", "g", "b")
    conn.cmd("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM")


@pytest.mark.parametrize("writer", ["frtrio", "redis"])
def test_rdb_file_and_aof_rewrite_move_between_servers(tmp_path, writer):
    """dump.rdb (SAVE) and a rewritten AOF (no RDB preamble) of streams
    with groups written by one server load in the other with the same
    XINFO STREAM FULL."""
    from support import ServerProc

    other = "redis" if writer == "frtrio" else "frtrio"
    for mode in ("rdb", "aof"):
        d = tmp_path / mode
        d.mkdir()
        args = (["--appendonly", "yes", "--aof-use-rdb-preamble", "no"] if mode == "aof" else [])
        p = ServerProc(writer, args=args, workdir=str(d)).start(timeout=20)
        try:
            with p.conn() as conn:
                _stream_dataset(conn)
                if mode == "aof":
                    conn.cmd("BGREWRITEAOF")
                    for _ in range(200):
                        info = conn.cmd("INFO", "persistence")
                        if b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info:
                            break
                        import time

                        time.sleep(0.05)
                else:
                    assert conn.cmd("SAVE") == b"+OK\r\n"
                want = [conn.cmd("XINFO", "STREAM", k, "FULL") for k in ("s", "e")]
        finally:
            p.stop()
        p = ServerProc(other, args=args, workdir=str(d)).start(timeout=20)
        try:
            with p.conn() as conn:
                got = [conn.cmd("XINFO", "STREAM", k, "FULL") for k in ("s", "e")]
        finally:
            p.stop()
        if mode == "rdb":
            assert got == want  # times (delivery, seen) are stored in the file
        else:
            # replayed XGROUP CREATECONSUMER / XCLAIM stamp seen-time anew
            assert [_masked(x) for x in got] == [_masked(x) for x in want]


def test_generic_key_commands_on_streams(diff):
    _fill(diff, n=3)
    run(diff, [
        ("SCAN", "0", "TYPE", "stream"), ("RENAME", "s", "t"), ("TYPE", "t"), ("XLEN", "t"),
        ("EXPIRE", "t", "100"), ("TTL", "t"), ("XADD", "t", "9-0", "a", "b"), ("TTL", "t"),
        ("MOVE", "t", "1"), ("SELECT", "1"), ("XLEN", "t"), ("DEL", "t"), ("EXISTS", "t"),
    ])


def test_multi_stream_groups_and_resp3(diff):
    _fill(diff, "a", 4)
    _fill(diff, "b", 3, start=10)
    run(diff, [
        ("XGROUP", "CREATE", "a", "g", "0"), ("XGROUP", "CREATE", "b", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "a", "b", ">", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "a", "b", ">", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "a", "b", "0", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "a", "nokey", ">", ">"),
        ("XPENDING", "a", "g", "-", "+", "10", "zz"), ("XPENDING", "a", "g", "-", "+", "0"),
        ("XPENDING", "a", "g", "IDLE", "x", "-", "+", "10"),
        ("XPENDING", "a", "g", "IDLE", "0", "-", "+"),
    ])
    for args in (("a", "g", "-", "+", "10", "c1"), ("a", "g", "(1-0", "(4-0", "1", "c1"),
                 ("a", "g", "IDLE", "0", "-", "+", "3"), ("a", "g", "-", "+", "10", "c1", "extra")):
        _same_pending(diff, *args)
    for args in (("a", "FULL", "COUNT", "1"), ("a", "FULL", "COUNT", "-5")):
        x, y = diff.both("XINFO", "STREAM", *args)
        assert _masked(x) == _masked(y)
    switch_to_resp3(diff)
    run(diff, [
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "a", "b", "0", "0"),
        ("XADD", "a", "20-0", "k", "v"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "a", "b", ">", ">"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "b", ">"),
        ("XPENDING", "b", "g"), ("XPENDING", "nokey", "g"), ("XINFO", "GROUPS", "a"),
        ("XINFO", "STREAM", "nokey"), ("XINFO", "STREAM", "b"), ("XRANGE", "b", "-", "+", "COUNT", "0"),
        ("XAUTOCLAIM", "a", "g", "c4", "0", "0", "COUNT", "1", "JUSTID"),
        ("XDEL", "b", "10-0"), ("XAUTOCLAIM", "b", "g", "c4", "0", "0"),
    ])


def test_deleted_stream_unblocks_group_readers_behind_plain_readers():
    """A stream key that goes away: XREADGROUP waiters get UNBLOCKED even
    when XREAD waiters (who keep waiting) blocked before them; a list's
    waiters are not retried one by one once the key is gone."""
    srv = _srv()
    w = srv.new_client()
    _ex(srv, w, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    r1, g1, r2, g2 = (srv.new_client() for _ in range(4))
    _ex(srv, r1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    _ex(srv, g1, "XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
    _ex(srv, r2, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    _ex(srv, g2, "XREADGROUP", "GROUP", "g", "b", "BLOCK", "0", "STREAMS", "s", ">")
    assert _ex(srv, w, "SET", "s", "now-a-string") == b"+OK\r\n"
    for g in (g1, g2):
        assert g.blocked is None
        assert g.take_output() == b"-UNBLOCKED the stream key no longer exists\r\n"
    assert r1.blocked is not None and r2.blocked is not None
    _ex(srv, w, "DEL", "s")
    _ex(srv, w, "XADD", "s", "1-0", "f", "v")
    assert r1.take_output() == r2.take_output() == b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert not srv.blocking.waiters


def test_group_destroyed_while_blocked_counts_failed_call(servers):
    def scenario(p):
        with p.conn() as a, p.conn() as ctl:
            ctl.cmd("CONFIG", "RESETSTAT")
            ctl.cmd("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            send(a, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(ctl, 1)
            ctl.cmd("XGROUP", "DESTROY", "s", "g")
            ctl.cmd("XADD", "s", "1-0", "f", "v")
            got = a.read_reply()
            stats = [x for x in ctl.cmd("INFO", "commandstats").split(b"\r\n")
                     if x.startswith(b"cmdstat_xreadgroup")]
            return [got, [x.split(b"usec=")[0] + x.split(b"rejected")[1] for x in stats]]

    both(servers, scenario)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_ops_keep_node_layout_like_redis(diff, seed):
    """Seeded random XADD / XDEL / XTRIM (exact and ~) with small nodes:
    XINFO STREAM (radix-tree keys and nodes included), XRANGE and the
    DUMP payload's XINFO after RESTORE agree with redis-server."""
    import random

    rnd = random.Random(seed)
    diff("CONFIG", "SET", "stream-node-max-entries", str(rnd.choice([3, 5, 8])))
    diff("CONFIG", "SET", "stream-node-max-bytes", str(rnd.choice([0, 120, 4096])))
    ms, seq = 1, 0
    ids = []
    for step in range(300):
        op = rnd.random()
        if op < 0.6:
            if rnd.random() < 0.3:
                ms += rnd.choice([1, 2, 1000, 2**40])
                seq = 0
            else:
                seq += rnd.choice([1, 1, 2, 2**33])
            nf = rnd.choice([1, 1, 2, 3])
            fields = []
            for k in range(nf):
                fields += [rnd.choice(["f", "g", "field%d" % k]), rnd.choice(["1", "-7", "x" * rnd.randint(0, 70)])]
            diff("XADD", "s", f"{ms}-{seq}", *fields)
            ids.append(f"{ms}-{seq}")
        elif op < 0.8 and ids:
            diff("XDEL", "s", *rnd.sample(ids, min(len(ids), rnd.randint(1, 3))))
        elif op < 0.9:
            diff("XTRIM", "s", "MAXLEN", rnd.choice(["~", "="]), str(rnd.randint(0, 40)))
        elif ids:
            diff("XTRIM", "s", "MINID", rnd.choice(["~", "="]), rnd.choice(ids))
        if step % 25 == 0:
            diff("XINFO", "STREAM", "s")
    info = parse_reply(diff("XINFO", "STREAM", "s"))
    assert info[1] > 0 and info[3] > 1, info  # entries left, spread over several nodes
    diff("XRANGE", "s", "-", "+")
    f, r = diff.f, diff.r
    if f.cmd("EXISTS", "s") == b":1\r\n":
        pay = parse_reply(r.cmd("DUMP", "s"))
        assert f.cmd("RESTORE", "s2", "0", pay) == b"+OK\r\n"
        assert f.cmd("XINFO", "STREAM", "s2") == r.cmd("XINFO", "STREAM", "s")
        pay = parse_reply(f.cmd("DUMP", "s"))
        assert r.cmd("RESTORE", "s3", "0", pay) == b"+OK\r\n"
        assert r.cmd("XINFO", "STREAM", "s3") == f.cmd("XINFO", "STREAM", "s")
