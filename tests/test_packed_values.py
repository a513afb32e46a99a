"""Small aggregates at rest are packed (issue 15's memory goal), and the
packing is invisible.

A small hash, list or listpack zset that no command used for a cron period
is kept in ``Db.data`` as one bytes object (``store.db.pack``); a lookup
gives commands the ordinary value back. These tests prove that values end
packed at rest (core level, the cron's step ``Server.pack_small_values``) and
that nothing a client sees changes: the differential scripts of the hash,
list and zset tests are run again against redis-server with every small
aggregate packed after each command (``DEBUG PACK-VALUES``, frtrio's).
"""

from __future__ import annotations

import inspect

import pytest

import test_hashes
import test_lists
import test_zsets
from frtrio.core import evict
from frtrio.store.db import HashValue, ListValue, PackedHash, PackedList, PackedZSet, is_packed, unpacked
from frtrio.store.zset import ZSetValue
from support import engine
from support import run as ex


def _srv():
    srv = engine()
    return srv, srv.new_client()


def _fill(srv, c):
    ex(srv, c, "HSET", "h", *[x for i in range(10) for x in ("field:%d" % i, "v%d" % i)])
    ex(srv, c, "RPUSH", "l", *["e%d" % i for i in range(10)])
    ex(srv, c, "ZADD", "z", *[x for i in range(10) for x in (str(i * 1.5 - 3), "m%d" % i)])
    ex(srv, c, "ZADD", "zi", "1", "a", "2", "b", "-5", "c", "0", "d", "1e300", "e", "inf", "f")
    ex(srv, c, "HSET", "bigh", *[x for i in range(200) for x in ("f%d" % i, "v")])
    ex(srv, c, "ZADD", "skip", "1", "x" * 100)  # a skiplist (member > 64 bytes)
    ex(srv, c, "SET", "s", "str")


def _observe(srv, c):
    """Everything a client can read of the keys, plus the accounting."""
    out = [srv.used_memory()]
    for cmd in (("HGETALL", "h"), ("LRANGE", "l", "0", "-1"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
                ("ZRANGE", "zi", "0", "-1", "WITHSCORES"), ("OBJECT", "ENCODING", "h"),
                ("OBJECT", "ENCODING", "l"), ("OBJECT", "ENCODING", "z"), ("DUMP", "h"), ("DUMP", "l"),
                ("DUMP", "z"), ("DUMP", "zi"), ("DEBUG", "DIGEST"), ("DEBUG", "DIGEST-VALUE", "h", "l", "z"),
                ("MEMORY", "USAGE", "h"), ("HSCAN", "h", "0"), ("ZSCAN", "z", "0"), ("TYPE", "z"),
                ("SCAN", "0", "TYPE", "hash", "COUNT", "1000")):
        out.append(ex(srv, c, *cmd))
    return out


def _consistent(srv):
    """Every key is charged at its present size; packed keys have no agg
    entry and cost what their unpacked value costs."""
    for db in srv.dbs:
        total = 0
        for k, v in db.data.items():
            total += evict.key_cost(k, v)
            assert evict.value_cost(v) == evict.value_cost(unpacked(v)), k
            if type(v) is not bytes and not is_packed(v):
                assert db.agg[k] == evict.value_cost(v), k
        assert set(db.agg) == {k for k, v in db.data.items() if type(v) is not bytes and not is_packed(v)}
        assert db.mem == total


def test_small_aggregates_left_alone_end_packed():
    srv, c = _srv()
    _fill(srv, c)
    data = srv.dbs[0].data
    assert type(data[b"h"]) is HashValue
    srv.pack_small_values()  # one period: written in it, they stay unpacked
    assert not any(is_packed(v) for v in data.values())
    srv.pack_small_values()  # the next one: left alone for a whole period
    assert type(data[b"h"]) is PackedHash
    assert type(data[b"l"]) is PackedList
    assert type(data[b"z"]) is PackedZSet and type(data[b"zi"]) is PackedZSet
    assert type(data[b"bigh"]) is HashValue  # more than 128 fields
    assert type(data[b"skip"]) is ZSetValue  # skiplist-encoded
    assert data[b"s"] == b"str"
    _consistent(srv)


def test_a_key_in_use_stays_unpacked_and_a_lookup_never_sees_a_packed_value():
    srv, c = _srv()
    _fill(srv, c)
    srv.pack_small_values()
    srv.pack_small_values()
    data = srv.dbs[0].data
    assert ex(srv, c, "HGET", "h", "field:3") == b"$2\r\nv3\r\n"
    assert type(data[b"h"]) is HashValue  # unpacked by the lookup
    for _ in range(5):
        srv.pack_small_values()
        assert type(data[b"h"]) is HashValue  # used in every period: stays
        ex(srv, c, "HSET", "h", "field:3", "x")
        ex(srv, c, "LPUSH", "l", "y")
    srv.pack_small_values()
    srv.pack_small_values()
    assert type(data[b"h"]) is PackedHash and type(data[b"l"]) is PackedList
    db = srv.dbs[0]
    for k in (b"h", b"l", b"z", b"zi"):
        assert not is_packed(db.peek(k, srv.now_ms))
        db.pack_all()
        assert not is_packed(db.lookup(k, srv.now_ms))
    _consistent(srv)


def test_packing_changes_nothing_a_client_sees():
    srv, c = _srv()
    _fill(srv, c)
    before = _observe(srv, c)
    assert sum(db.pack_all() for db in srv.dbs) == 4
    assert _observe(srv, c) == before
    for db in srv.dbs:
        db.pack_all()
    # writes on packed keys, then packed again, against the same writes unpacked
    other, oc = _srv()
    _fill(other, oc)
    for cmd in (("HSET", "h", "new", "1"), ("HDEL", "h", "field:0"), ("LPOP", "l"), ("RPUSH", "l", "z"),
                ("ZADD", "z", "2", "m0"), ("ZREM", "z", "m1"), ("ZINCRBY", "zi", "0.5", "a"),
                ("RENAME", "h", "h2"), ("COPY", "l", "l2"), ("LMOVE", "l", "l3", "LEFT", "RIGHT")):
        assert ex(srv, c, *cmd) == ex(other, oc, *cmd), cmd
        srv.dbs[0].pack_all()
    ex(srv, c, "RENAME", "h2", "h")
    ex(other, oc, "RENAME", "h2", "h")
    assert _observe(srv, c) == _observe(other, oc)
    _consistent(srv)


def test_scan_reads_types_without_unpacking():
    srv, c = _srv()
    _fill(srv, c)
    srv.dbs[0].pack_all()
    assert ex(srv, c, "SCAN", "0", "TYPE", "zset", "COUNT", "100").endswith(b"*3\r\n$2\r\nzi\r\n$1\r\nz\r\n$4\r\nskip\r\n")
    assert ex(srv, c, "SCAN", "0", "TYPE", "list", "COUNT", "100").endswith(b"$1\r\nl\r\n")
    assert type(srv.dbs[0].data[b"h"]) is PackedHash and type(srv.dbs[0].data[b"z"]) is PackedZSet


def test_swapdb_and_flush_keep_the_pending_keys_right():
    srv, c = _srv()
    ex(srv, c, "HSET", "h", "a", "1")
    ex(srv, c, "SWAPDB", "0", "1")
    srv.pack_small_values()
    srv.pack_small_values()
    assert type(srv.dbs[1].data[b"h"]) is PackedHash
    ex(srv, c, "SELECT", "1")
    assert ex(srv, c, "HGETALL", "h") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    ex(srv, c, "FLUSHALL")
    assert srv.pack_small_values() == 0 and srv.used_memory() == engine().used_memory()


def test_values_marshal_cannot_write_stay_unpacked():
    from frtrio.store.db import pack

    assert pack(HashValue({b"a": object()})) is None
    assert pack(ListValue([b"x"] * 129)) is None
    assert pack(ListValue([b"x" * 20000])) is None  # the packed form would be > 16 KiB


@pytest.mark.parametrize("scores", [
    [float(i) for i in range(10)], [0.0, 300.0, -40000.0], [5e5, -5e5, 7.0],
    [0.0, 1.0, -3.0, 2.5, 1e300, float("inf"), float("-inf"), 3e9, -7.0, 0.1],
])
@pytest.mark.parametrize("mlen", [1, 15, 255, 256])
def test_zset_packed_forms_round_trip(scores, mlen):
    import math

    from frtrio.store.db import pack

    z = ZSetValue()
    for i, s in enumerate(scores):
        z.set((b"%d:" % i).ljust(mlen, b"m"), s)
    p = pack(z)
    assert type(p) is PackedZSet and len(p) == len(z)
    assert p[1] == (0 if mlen >= 256 else p[1]) and (mlen >= 256) == (p[1] == 0)
    u = unpacked(p)
    assert list(u.items()) == list(z.items()) and u.scores == z.scores
    assert all(type(s) is float for s in u._ss) and u._ms == z._ms
    assert [math.copysign(1.0, s) for s in u._ss] == [math.copysign(1.0, s) for s in z._ss]
    assert evict.value_cost(p) == evict.value_cost(z)


# --- differential: the hash, list and zset scripts with everything packed --------------


class _PackingDiff:
    """The ``diff`` fixture, with every small aggregate of frtrio packed
    after each command (from a second connection: MULTI, CLIENT REPLY OFF
    and subscriptions of the test's own connection are left alone)."""

    def __init__(self, d, proc):
        self._d = d
        self._p = proc.conn()

    def _pack(self):
        r = self._p.cmd("DEBUG", "PACK-VALUES")
        assert r.startswith(b":"), r

    def __call__(self, *args):
        a = self._d(*args)
        self._pack()
        return a

    def both(self, *args):
        r = self._d.both(*args)
        self._pack()
        return r

    def __getattr__(self, name):
        return getattr(self._d, name)

    def close(self):
        self._p.close()


def _diff_scripts():
    out = []
    for mod in (test_hashes, test_lists, test_zsets):
        for name, fn in sorted(vars(mod).items()):
            if name.startswith("test_") and inspect.isfunction(fn) and not hasattr(fn, "pytestmark"):
                if list(inspect.signature(fn).parameters) in (["diff"], ["zd"]):
                    out.append(pytest.param(fn, id="%s.%s" % (mod.__name__, name)))
    return out


@pytest.mark.parametrize("script", _diff_scripts())
def test_packing_is_invisible_to_the_differential_scripts(script, diff, frtrio_proc):
    d = _PackingDiff(diff, frtrio_proc)
    try:
        script(d)
    finally:
        d.close()
