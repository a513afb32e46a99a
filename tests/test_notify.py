"""Keyspace notifications: the same commands against frtrio and redis-server
7.0.15 with a PSUBSCRIBE '__key*__:*' subscriber on each; the replies and the
exact sequence of keyspace/keyevent messages must match.

Run: python -m pytest -q tests/test_notify.py
"""

from __future__ import annotations

import time

import pytest

_END = "__key__:end"


class Watch:
    """One pattern subscriber per server."""

    def __init__(self, frtrio_proc, redis_proc, pattern="__key*__:*"):
        self.subs = [frtrio_proc.conn(), redis_proc.conn()]
        for s in self.subs:
            s.cmd("PSUBSCRIBE", pattern)

    def drain(self, diff):
        """Everything the subscribers got since the last drain, compared."""
        diff("PUBLISH", _END, "x")
        got = []
        for s in self.subs:
            msgs = []
            while True:
                m = s.read_reply()
                if _END.encode() in m:
                    break
                parts = m.split(b"\r\n")
                msgs.append((parts[6] + b" " + parts[8]).decode("latin-1"))
            got.append(msgs)
        assert got[0] == got[1], "\nfrtrio %r\nredis  %r" % tuple(got)
        return got[0]

    def close(self):
        for s in self.subs:
            s.close()


@pytest.fixture
def watch(frtrio_proc, redis_proc, diff):
    w = Watch(frtrio_proc, redis_proc)
    yield w
    w.close()
    diff("CONFIG", "SET", "notify-keyspace-events", "")


def run(diff, watch, flags, cmds, expect_some=True):
    diff("CONFIG", "SET", "notify-keyspace-events", flags)
    for cmd in cmds:
        if cmd[0].startswith("~"):  # a random reply: run, do not compare
            diff.both(cmd[0][1:], *cmd[1:])
        else:
            diff(*cmd)
    msgs = watch.drain(diff)
    if expect_some:
        assert msgs, "no notifications at all"
    return msgs


STRINGS = [
    ("SET", "s", "1"), ("SET", "s", "2", "EX", "100"), ("SET", "s", "3", "KEEPTTL"),
    ("SET", "s", "4", "NX"), ("SET", "s2", "4", "XX"), ("SET", "s", "5", "GET"),
    ("SETNX", "s", "x"), ("SETNX", "s3", "x"), ("SETEX", "s4", "10", "v"),
    ("PSETEX", "s5", "1000", "v"), ("MSET", "m1", "a", "m2", "b"), ("MSETNX", "m3", "a", "m4", "b"),
    ("MSETNX", "m3", "a", "m5", "b"), ("GETSET", "s", "g"), ("GETDEL", "s"), ("GETDEL", "s"),
    ("SET", "s", "1"), ("GETEX", "s", "EX", "100"), ("GETEX", "s", "PERSIST"),
    ("GETEX", "s", "PERSIST"), ("GETEX", "s", "PXAT", "1"), ("APPEND", "a", "x"),
    ("APPEND", "a", "y"), ("INCR", "i"), ("DECR", "i"), ("INCRBY", "i", "5"),
    ("DECRBY", "i", "2"), ("INCRBYFLOAT", "f", "1.5"), ("INCRBYFLOAT", "f", "1.5"),
    ("SETRANGE", "r", "3", "abc"), ("SETRANGE", "r", "0", "x"), ("SETRANGE", "r", "0", ""),
    ("SETRANGE", "r9", "0", ""), ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"),
    ("BITOP", "OR", "bo", "b", "b"), ("BITOP", "OR", "bo", "nx1", "nx2"),
    ("BITFIELD", "bf", "SET", "u8", "0", "255"), ("BITFIELD", "bf", "GET", "u8", "0"),
    ("PFADD", "h", "a"), ("PFADD", "h", "a"), ("PFADD", "h2"), ("PFMERGE", "h3", "h", "h2"),
    ("PFCOUNT", "h", "h2"),
]

KEYS = [
    ("SET", "k", "v"), ("EXPIRE", "k", "100"), ("PEXPIRE", "k", "100000"),
    ("EXPIREAT", "k", "99999999999"), ("EXPIRE", "k", "100", "NX"), ("PERSIST", "k"),
    ("PERSIST", "k"), ("EXPIRE", "nokey", "10"), ("RENAME", "k", "k2"),
    ("SET", "k3", "v"), ("RENAMENX", "k2", "k3"), ("RENAME", "k2", "k3"),
    ("RENAME", "k3", "k3"), ("COPY", "k3", "k4"), ("COPY", "k3", "k4"),
    ("COPY", "k3", "k4", "REPLACE"), ("COPY", "k3", "k5", "DB", "1"),
    ("MOVE", "k4", "2"), ("MOVE", "k4", "2"), ("DEL", "k3", "k5", "nokey"),
    ("UNLINK", "k4"), ("SET", "k", "v"), ("EXPIRE", "k", "-1"),
    ("SET", "k", "v"), ("PEXPIREAT", "k", "1"), ("SET", "k", "v"), ("TOUCH", "k"),
    ("DUMP", "nokey"), ("SELECT", "2"), ("DEL", "k4"), ("SELECT", "0"),
]

LISTS = [
    ("LPUSH", "l", "a", "b", "c"), ("RPUSH", "l", "d"), ("LPUSHX", "l", "e"),
    ("RPUSHX", "l", "f"), ("LPUSHX", "nol", "x"), ("LPOP", "l"), ("RPOP", "l"),
    ("LPOP", "l", "0"), ("LPOP", "l", "2"), ("LPOP", "nol"), ("LSET", "l", "0", "z"),
    ("LINSERT", "l", "BEFORE", "z", "y"), ("LINSERT", "l", "AFTER", "nope", "y"),
    ("RPUSH", "l", "y", "y", "q"), ("LREM", "l", "2", "y"), ("LREM", "l", "0", "nope"),
    ("LTRIM", "l", "0", "10"), ("LTRIM", "l", "1", "-1"), ("LTRIM", "nol", "0", "1"),
    ("RPUSH", "src", "1", "2"), ("LMOVE", "src", "dst", "LEFT", "RIGHT"),
    ("RPOPLPUSH", "src", "dst"), ("LMOVE", "dst", "dst", "LEFT", "LEFT"),
    ("LMPOP", "2", "nol", "dst", "RIGHT", "COUNT", "5"), ("RPUSH", "l2", "x"),
    ("BLPOP", "l2", "0"), ("RPUSH", "l2", "x", "y"), ("BRPOP", "l2", "0"),
    ("BLMOVE", "l2", "l3", "RIGHT", "LEFT", "0"), ("BRPOPLPUSH", "l3", "l2", "0"),
    ("BLMPOP", "0", "1", "l2", "LEFT"), ("LTRIM", "l", "5", "1"),
    ("RPUSH", "l4", "a", "b"), ("LREM", "l4", "0", "a"), ("LREM", "l4", "0", "b"),
]

SETS = [
    ("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "a", "zz"),
    ("SREM", "s", "zz"), ("SADD", "t", "b", "x"), ("SMOVE", "s", "t", "b"),
    ("SMOVE", "s", "t", "c"), ("SMOVE", "t", "t", "x"), ("SADD", "s", "1", "2", "3"),
    ("~SPOP", "s"), ("SPOP", "s", "0"), ("~SPOP", "s", "1"), ("~SPOP", "s", "10"),
    ("SADD", "s", "1"), ("SPOP", "s"), ("SADD", "s", "1"), ("SPOP", "s", "1"),
    ("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "3", "4"),
    ("SINTERSTORE", "d1", "a", "b"), ("SUNIONSTORE", "d2", "a", "b"),
    ("SDIFFSTORE", "d3", "a", "b"), ("SINTERSTORE", "d1", "a", "nokey"),
    ("SDIFFSTORE", "d2", "nokey", "a"), ("SUNIONSTORE", "d4", "n1", "n2"),
    ("~SRANDMEMBER", "a"), ("SREM", "t", "b", "c", "x"),
]

HASHES = [
    ("HSET", "hx", "a", "1", "b", "2"), ("HSET", "hx", "a", "1"), ("HMSET", "hx", "c", "3"),
    ("HSETNX", "hx", "a", "9"), ("HSETNX", "hx", "d", "4"), ("HINCRBY", "hx", "a", "2"),
    ("HINCRBYFLOAT", "hx", "a", "0.5"), ("HDEL", "hx", "zz"), ("HDEL", "hx", "a", "b"),
    ("HDEL", "hx", "c", "d"), ("HINCRBY", "hx2", "x", "1"), ("HINCRBYFLOAT", "hx3", "x", "1"),
    ("HGETALL", "hx2"), ("HSET", "s", "f", "v"),
]

ZSETS = [
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "z", "1", "a"),
    ("ZADD", "z", "INCR", "5", "a"), ("ZINCRBY", "z", "1", "b"), ("ZADD", "z", "XX", "9", "new"),
    ("ZADD", "z", "NX", "GT", "CH", "1", "q") if False else ("ZADD", "z", "GT", "CH", "10", "a"),
    ("ZREM", "z", "nope"), ("ZREM", "z", "a"), ("ZADD", "z", "4", "d", "5", "e", "6", "f"),
    ("ZREMRANGEBYSCORE", "z", "0", "2"), ("ZREMRANGEBYRANK", "z", "0", "0"),
    ("ZREMRANGEBYLEX", "z", "-", "+"), ("ZREMRANGEBYSCORE", "nz", "0", "2"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "1"),
    ("ZPOPMIN", "z", "0"), ("ZPOPMIN", "z", "5"), ("ZADD", "z", "1", "a", "2", "b"),
    ("BZPOPMIN", "z", "0"), ("BZPOPMAX", "z", "0"), ("ZADD", "z", "1", "a", "2", "b"),
    ("ZMPOP", "1", "z", "MIN", "COUNT", "5"), ("ZADD", "z", "1", "a", "2", "b"),
    ("BZMPOP", "0", "1", "z", "MAX"), ("ZADD", "y", "1", "b", "3", "x"),
    ("ZUNIONSTORE", "u", "2", "z", "y"), ("ZINTERSTORE", "i", "2", "z", "y"),
    ("ZDIFFSTORE", "d", "2", "z", "y"), ("ZINTERSTORE", "i", "2", "z", "nokey"),
    ("ZRANGESTORE", "r", "y", "0", "-1"), ("ZRANGESTORE", "r", "nokey", "0", "-1"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gs"),
    ("GEOSEARCHSTORE", "gs2", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
    ("GEOSEARCHSTORE", "gs2", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "ASC"),
]

STREAMS = [
    ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "v"),
    ("XADD", "x", "MAXLEN", "1", "3-1", "f", "v"), ("XADD", "nx", "NOMKSTREAM", "*", "f", "v"),
    ("XDEL", "x", "3-1"), ("XDEL", "x", "9-9"), ("XADD", "x", "4-1", "f", "v"),
    ("XADD", "x", "5-1", "f", "v"), ("XTRIM", "x", "MAXLEN", "1"), ("XTRIM", "x", "MAXLEN", "1"),
    ("XGROUP", "CREATE", "x", "g", "0"), ("XGROUP", "CREATE", "x2", "g", "$", "MKSTREAM"),
    ("XGROUP", "CREATECONSUMER", "x", "g", "c1"), ("XGROUP", "CREATECONSUMER", "x", "g", "c1"),
    ("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "x", ">"),
    ("XGROUP", "SETID", "x", "g", "0"), ("XGROUP", "DELCONSUMER", "x", "g", "c1"),
    ("XGROUP", "DESTROY", "x", "g"), ("XSETID", "x", "9-9"), ("XADD", "x", "*", "f", "v") if False
    else ("XLEN", "x"),
]


def test_notify_strings_all(diff, watch):
    run(diff, watch, "KEA", STRINGS)


def test_notify_keys_generic_all(diff, watch):
    run(diff, watch, "KEA", KEYS)


def test_notify_lists_all(diff, watch):
    run(diff, watch, "KEA", LISTS)


def test_notify_sets_all(diff, watch):
    run(diff, watch, "KEA", SETS)


def test_notify_hashes_all(diff, watch):
    run(diff, watch, "KEA", HASHES)


def test_notify_zsets_all(diff, watch):
    run(diff, watch, "KEA", ZSETS)


def test_notify_streams_all(diff, watch):
    run(diff, watch, "KEA", STREAMS)


@pytest.mark.parametrize("flags", ["Kl", "Eg", "E$", "Ks", "Eh", "Kz", "Et", "Kg$", "K", "E", "A", ""])
def test_notify_flag_subsets(diff, watch, flags):
    sweep = STRINGS + KEYS + LISTS + SETS + HASHES + ZSETS + STREAMS
    run(diff, watch, flags, sweep, expect_some=flags not in ("K", "E", "A", ""))


@pytest.mark.parametrize("flags", ["KEn", "En", "KEAn"])
def test_notify_new_keys(diff, watch, flags):
    sweep = STRINGS + KEYS + LISTS + SETS + HASHES + ZSETS + STREAMS
    run(diff, watch, flags, sweep)


def test_notify_expired_lazy_and_active(diff, watch):
    run(diff, watch, "Ex", [("DEBUG", "SET-ACTIVE-EXPIRE", "0"), ("SET", "e1", "v", "PX", "5"),
                            ("SET", "e2", "v", "PX", "5")], expect_some=False)
    time.sleep(0.05)
    msgs = run(diff, watch, "KEA", [("GET", "e1"), ("EXISTS", "e2"), ("DEBUG", "SET-ACTIVE-EXPIRE", "1")])
    assert msgs == ["__keyspace@0__:e1 expired", "__keyevent@0__:expired e1",
                    "__keyspace@0__:e2 expired", "__keyevent@0__:expired e2"], msgs
    diff("SET", "e3", "v", "PX", "5")
    for _ in range(100):
        time.sleep(0.05)
        if diff.f.cmd("DBSIZE") == b":0\r\n" and diff.r.cmd("DBSIZE") == b":0\r\n":
            break
    msgs = watch.drain(diff)
    assert "__keyevent@0__:expired e3" in msgs, msgs


def test_notify_restore_and_sort_store(diff, watch):
    diff("RPUSH", "l", "3", "1", "2")
    dump = diff.f.cmd("DUMP", "l").split(b"\r\n")[1]
    run(diff, watch, "KEA", [
        ("RESTORE", "r", "0", dump), ("RESTORE", "r", "0", dump, "REPLACE"),
        ("SORT", "l", "STORE", "st"), ("SORT", "nokey", "STORE", "st"),
        ("SORT", "l", "STORE", "st2"),
    ])


def test_notify_multi_exec(diff, watch):
    run(diff, watch, "KEA", [("MULTI",), ("SET", "a", "1"), ("LPUSH", "l", "x"), ("LPOP", "l"),
                             ("EXEC",)])


def test_notify_flushes_and_swapdb_are_silent(diff, watch):
    diff("SET", "a", "1")
    run(diff, watch, "KEA", [("FLUSHDB",), ("SET", "a", "1"), ("FLUSHALL",), ("SWAPDB", "0", "1")])


READS = [
    ("GET", "nokey"), ("MGET", "a", "nokey", "b"), ("EXISTS", "nokey", "a"), ("TYPE", "nokey"),
    ("STRLEN", "nokey"), ("GETRANGE", "nokey", "0", "1"), ("LRANGE", "nokey", "0", "-1"),
    ("LLEN", "nokey"), ("LINDEX", "nokey", "0"), ("SMEMBERS", "nokey"), ("SISMEMBER", "nokey", "x"),
    ("SCARD", "nokey"), ("SINTER", "a", "nokey"), ("HGET", "nokey", "f"), ("HGETALL", "nokey"),
    ("HLEN", "nokey"), ("ZRANGE", "nokey", "0", "-1"), ("ZSCORE", "nokey", "m"),
    ("ZCARD", "nokey"), ("XRANGE", "nokey", "-", "+"), ("XLEN", "nokey"), ("TTL", "nokey"),
    ("PTTL", "nokey"), ("OBJECT", "ENCODING", "nokey"), ("DUMP", "nokey"), ("BITCOUNT", "nokey"),
    ("GETBIT", "nokey", "1"), ("PFCOUNT", "nokey"), ("SORT", "nokey"), ("SET", "nokey2", "1", "GET"),
    ("INCR", "nokey3"), ("COPY", "nokey", "x"), ("GETDEL", "nokey"), ("LPOS", "nokey", "a"),
    ("HRANDFIELD", "nokey"), ("SRANDMEMBER", "nokey"), ("ZRANDMEMBER", "nokey"),
    ("GEOPOS", "nokey", "m"), ("XINFO", "STREAM", "nokey"), ("TOUCH", "nokey"),
    ("EXPIRETIME", "nokey"), ("HEXISTS", "nokey", "f"), ("ZRANK", "nokey", "m"),
    ("SUNION", "nokey"), ("ZUNION", "1", "nokey"), ("LCS", "nokey", "nokey2"),
]


@pytest.mark.parametrize("flags", ["Em", "Km", "KEA"])
def test_notify_keymiss(diff, watch, flags):
    diff("SET", "a", "1")
    run(diff, watch, flags, READS, expect_some=flags != "KEA")


WRITES_ON_EXPIRED = [
    ("SET", "k1", "v"), ("MSET", "k2", "v"), ("APPEND", "k3", "x"), ("INCR", "k4"),
    ("LPUSH", "k5", "x"), ("SADD", "k6", "x"), ("HSET", "k7", "f", "v"), ("ZADD", "k8", "1", "m"),
    ("XADD", "k9", "1-1", "f", "v"), ("DEL", "k10"), ("RENAME", "src", "k11"),
    ("SETNX", "k12", "v"), ("GETSET", "k13", "v"), ("SETRANGE", "k14", "1", "x"),
    ("SETBIT", "k15", "1", "1"), ("PFADD", "k16", "a"), ("EXPIRE", "k17", "100"),
    ("COPY", "src", "k18"), ("SINTERSTORE", "k19", "src2"), ("LPUSHX", "k20", "x"),
    ("SET", "k21", "v", "GET"), ("PERSIST", "k22"), ("TYPE", "k23"), ("EXISTS", "k24"),
]


def test_notify_writes_on_expired_keys(diff, watch):
    """A command that meets a logically expired key: 'expired' first, then
    what the command does ('new' + its event for a write)."""
    diff("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        diff("SET", "src", "v")
        diff("SADD", "src2", "a")
        for i in range(1, 25):
            diff("SET", "k%d" % i, "old", "PX", "5")
        time.sleep(0.05)
        run(diff, watch, "KEAn", WRITES_ON_EXPIRED)
    finally:
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_notify_blocked_clients_served(diff, watch, frtrio_proc, redis_proc):
    """Pops served to blocked clients notify when they are served."""
    blocked = [frtrio_proc.conn(), redis_proc.conn()]
    steps = [
        (("BLPOP", "bl", "0"), ("RPUSH", "bl", "a")),
        (("BLMOVE", "bl", "bd", "LEFT", "RIGHT", "0"), ("RPUSH", "bl", "a", "b")),
        (("BZPOPMIN", "bz", "0"), ("ZADD", "bz", "1", "a")),
        (("BLMPOP", "0", "1", "bl", "RIGHT", "COUNT", "5"), ("LPUSH", "bl", "x")),
    ]
    diff("CONFIG", "SET", "notify-keyspace-events", "KEA")
    diff("XGROUP", "CREATE", "bx", "g", "$", "MKSTREAM")
    steps.append((("XREADGROUP", "GROUP", "g", "newc", "BLOCK", "0", "STREAMS", "bx", ">"),
                  ("XADD", "bx", "1-1", "f", "v")))
    try:
        for bcmd, wake in steps:
            for b in blocked:
                b.send(__import__("support").encode_request(bcmd))
            time.sleep(0.05)
            diff(*wake)
            got = [b.read_reply() for b in blocked]
            assert got[0] == got[1], got
        msgs = watch.drain(diff)
        assert "__keyevent@0__:xgroup-createconsumer bx" in msgs, msgs
    finally:
        for b in blocked:
            b.close()


def test_notify_scripts_and_stream_claims(diff, watch):
    diff("XGROUP", "CREATE", "cx", "g", "$", "MKSTREAM")
    diff("XADD", "cx", "1-1", "f", "v")
    diff("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "cx", ">")
    run(diff, watch, "KEA", [
        ("EVAL", "redis.call('set', KEYS[1], 'v'); redis.call('lpush', KEYS[2], 'x');"
         " return redis.call('lpop', KEYS[2])", "2", "se", "sl"),
        ("XCLAIM", "cx", "g", "c2", "0", "1-1"), ("XAUTOCLAIM", "cx", "g", "c3", "0", "0"),
        ("XACK", "cx", "g", "1-1"), ("XGROUP", "DELCONSUMER", "cx", "g", "nope"),
        ("XGROUP", "DESTROY", "cx", "nope"),
    ])


def test_notify_resp3_subscriber_on_the_same_connection(frtrio_proc, redis_proc, diff):
    """A RESP3 client subscribed to its own keys gets the push and the reply
    in Redis 7.0's order."""
    diff("CONFIG", "SET", "notify-keyspace-events", "KEA")
    conns = [frtrio_proc.conn(), redis_proc.conn()]
    try:
        out = []
        for c in conns:
            c.cmd("HELLO", "3")
            c.cmd("SUBSCRIBE", "__keyspace@0__:r3")
            got = [c.cmd("SET", "r3", "v")]
            got.append(c.read_reply())
            got.append(c.cmd("DEL", "r3"))
            got.append(c.read_reply())
            out.append(got)
        assert out[0] == out[1], out
    finally:
        for c in conns:
            c.close()
        diff("CONFIG", "SET", "notify-keyspace-events", "")


def test_notify_new_not_sent_for_keys_loaded_by_debug_reload(diff, watch):
    """DEBUG RELOAD loads the keys back silently (dbAddRDBLoad); DEBUG
    POPULATE creates them with dbAdd ('new')."""
    diff("SET", "a", "1")
    diff("RPUSH", "l", "x")
    run(diff, watch, "KEAn", [("DEBUG", "RELOAD"), ("DEBUG", "POPULATE", "3", "p")])


def test_notify_on_replicas(redis_proc):
    """A redis-server master with a frtrio and a redis-server replica: the
    replicas notify what their master's stream makes them do, the same
    messages on both (a key expiring on the master arrives as 'del')."""
    from support import ServerProc, wait_for

    m = ServerProc("redis").start()
    reps = []
    subs = []
    try:
        mc = m.conn()
        for kind in ("frtrio", "redis"):
            p = ServerProc(kind, ["--replicaof", "127.0.0.1", str(m.port),
                                  "--notify-keyspace-events", "KEA"]).start()
            reps.append(p)
            cl = p.client()
            wait_for(lambda: cl.info("replication").get("master_link_status") == "up",
                     what="%s replica link up" % kind)
        for p in reps:
            s = p.conn()
            s.cmd("PSUBSCRIBE", "__key*__:*")
            subs.append(s)
        for cmd in [("SET", "a", "1"), ("LPUSH", "l", "x", "y"), ("LPOP", "l", "2"),
                    ("SADD", "s", "m"), ("HSET", "h", "f", "v"), ("ZADD", "z", "1", "m"),
                    ("EXPIRE", "a", "100"), ("SET", "e", "v", "PX", "20"), ("DEL", "s"),
                    ("XADD", "x", "1-1", "f", "v"), ("RENAME", "h", "h2")]:
            mc.cmd(*cmd)
        time.sleep(0.3)
        mc.cmd("GET", "e")  # expired on the master: it propagates DEL e
        mc.cmd("PUBLISH", _END, "x")
        got = []
        for s in subs:
            msgs = []
            while True:
                raw = s.read_reply()
                if _END.encode() in raw:
                    break
                parts = raw.split(b"\r\n")
                msgs.append((parts[6] + b" " + parts[8]).decode("latin-1"))
            got.append(msgs)
        assert got[0] == got[1], got
        assert "__keyevent@0__:del e" in got[0], got[0]
    finally:
        for s in subs:
            s.close()
        for p in reps:
            p.cleanup()
        m.cleanup()
