"""used_memory follows aggregates as they grow in place (issue 16).

frtrio models an aggregate's bytes as a header plus a fixed cost per element
(frtrio/core/evict.py); the model is not Redis's number, so these tests assert
what a user sees of it: memory grows as a set / hash / list / zset / stream
fills, comes back to the baseline after DEL, UNLINK (once the lazy free ran)
and FLUSHALL ASYNC, and many writes and deletes leave no drift.
"""

from __future__ import annotations

import random
import time

from frtrio.core import evict
from support import engine as make_server
from support import run as ex


def _srv(**conf):
    srv = make_server({k.replace("_", "-"): str(v) for k, v in conf.items()})
    return srv, srv.new_client()


def _consistent(srv) -> None:
    """Every aggregate is charged at its present size, and each db's sum is
    what its keys cost now (nothing stale, nothing left over)."""
    for db in srv.dbs:
        total = 0
        for k, v in db.data.items():
            total += evict.key_cost(k, v)
            if type(v) is not bytes:
                assert db.agg[k] == evict.value_cost(v), k
        assert set(db.agg) == {k for k, v in db.data.items() if type(v) is not bytes}
        assert db.mem == total


def test_used_memory_grows_with_each_aggregate_written_in_place():
    srv, c = _srv()
    for cmd, key, args in (
        ("SADD", "s", lambda i: [str(i)]),
        ("HSET", "h", lambda i: ["f%d" % i, "v"]),
        ("RPUSH", "l", lambda i: [str(i)]),
        ("ZADD", "z", lambda i: [str(i), "m%d" % i]),
        ("XADD", "x", lambda i: ["*", "f", str(i)]),
    ):
        ex(srv, c, cmd, key, *args(0))
        one = srv.used_memory()
        for i in range(1, 1001):
            ex(srv, c, cmd, key, *args(i))
        grown = srv.used_memory() - one
        # a thousand more elements cost at least 16 bytes each in the model
        assert grown >= 16 * 1000, (cmd, grown)
        _consistent(srv)


def test_unlink_of_a_big_set_frees_its_memory_after_the_lazy_free():
    # what upstream unit/lazyfree checks: > 1 MB more for 100k members,
    # back under twice the baseline once the background free ran
    srv, c = _srv()
    base = srv.used_memory()
    ex(srv, c, "SADD", "myset", *[str(i) for i in range(100000)])
    peak = srv.used_memory()
    assert peak > base + 1_000_000
    assert ex(srv, c, "UNLINK", "myset") == b":1\r\n"
    assert srv.lazyfree.pending == 1
    srv.lazyfree.drain()
    assert srv.lazyfree.pending == 0 and srv.lazyfree.freed == 1
    assert srv.used_memory() == base


def test_flushall_async_returns_to_the_baseline():
    srv, c = _srv()
    base = srv.used_memory()
    ex(srv, c, "SADD", "s", *[str(i) for i in range(5000)])
    ex(srv, c, "HSET", "h", *[str(i) for i in range(2000)])
    ex(srv, c, "SELECT", "3")
    ex(srv, c, "RPUSH", "l", *[str(i) for i in range(3000)])
    assert srv.used_memory() > base + 100_000
    ex(srv, c, "FLUSHALL", "ASYNC")
    srv.lazyfree.drain()
    assert srv.used_memory() == base


def test_no_drift_over_many_writes_and_deletes():
    rnd = random.Random(16)
    srv, c = _srv()
    base = srv.used_memory()
    keys = ["k%d" % i for i in range(12)]
    for step in range(3000):
        k = rnd.choice(keys)
        m = str(rnd.randrange(300))
        op = rnd.randrange(16)
        try:
            if op == 0:
                ex(srv, c, "SADD", k, m, m + "x")
            elif op == 1:
                ex(srv, c, "SREM", k, m, m + "x")
            elif op == 2:
                ex(srv, c, "SPOP", k, "3")
            elif op == 3:
                ex(srv, c, "HSET", k, m, "v" * rnd.randrange(20))
            elif op == 4:
                ex(srv, c, "HDEL", k, m)
            elif op == 5:
                ex(srv, c, "LPUSH", k, m, m)
            elif op == 6:
                ex(srv, c, "LPOP", k, "2")
            elif op == 7:
                ex(srv, c, "ZADD", k, m, m)
            elif op == 8:
                ex(srv, c, "ZREM", k, m)
            elif op == 9:
                ex(srv, c, "XADD", k, "*", "f", m)
            elif op == 10:
                ex(srv, c, "XTRIM", k, "MAXLEN", "3")
            elif op == 11:
                ex(srv, c, "DEL" if rnd.random() < 0.5 else "UNLINK", k)
            elif op == 12:
                ex(srv, c, "SET", k, m)  # an aggregate overwritten by a string
            elif op == 13:
                ex(srv, c, "RENAME", k, rnd.choice(keys))
            elif op == 14:
                ex(srv, c, "SUNIONSTORE", k, rnd.choice(keys), rnd.choice(keys))
            else:
                ex(srv, c, "COPY", k, rnd.choice(keys), "REPLACE")
        except Exception:
            pass  # WRONGTYPE, no such key: the accounting must not mind
        if step % 250 == 0:
            _consistent(srv)
    _consistent(srv)
    assert srv.used_memory() > base
    ex(srv, c, "FLUSHALL")
    srv.lazyfree.drain()
    assert srv.used_memory() == base


def test_expired_and_moved_aggregates_give_back_what_they_were_charged():
    srv, c = _srv()
    base = srv.used_memory()
    ex(srv, c, "SADD", "a", *[str(i) for i in range(1000)])
    ex(srv, c, "PEXPIRE", "a", "1")
    ex(srv, c, "HSET", "b", *[str(i) for i in range(1000)])
    ex(srv, c, "MOVE", "b", "2")
    ex(srv, c, "SWAPDB", "0", "2")
    ex(srv, c, "SELECT", "0")
    ex(srv, c, "HSET", "b", "new", "field")  # written in the swapped db
    _consistent(srv)
    srv.now_ms += 10
    ex(srv, c, "SELECT", "2")
    assert ex(srv, c, "EXISTS", "a") == b":0\r\n"  # expired on access
    ex(srv, c, "SELECT", "0")
    ex(srv, c, "DEL", "b")
    _consistent(srv)
    assert srv.used_memory() == base


def test_maxmemory_evicts_a_set_that_grew_past_the_limit():
    # before issue 16 a set created small never counted its growth, so
    # filling it in place never went over maxmemory
    srv, c = _srv(maxmemory_policy="allkeys-random")
    ex(srv, c, "SET", "small", "x")
    limit = srv.used_memory() + 50_000
    srv.config.values["maxmemory"] = str(limit)
    srv._maxmemory_config_changed("maxmemory", "")
    for i in range(0, 5000, 100):
        ex(srv, c, "SADD", "big", *[str(j) for j in range(i, i + 100)])
    assert srv.used_memory() <= limit + 100 * evict.AGG_ELEM[b"set"] + 1000
    assert srv.stats["evicted_keys"] > 0
    _consistent(srv)


# --- against redis-server: the lazy free counters ------------------------------


def _lazy_counts(conn) -> tuple[int, int]:
    raw = conn.cmd("INFO", "memory").decode()
    kv = dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return int(kv["lazyfree_pending_objects"]), int(kv["lazyfreed_objects"])


def _freed_when_done(conn) -> int:
    deadline = time.monotonic() + 5
    while True:
        pending, freed = _lazy_counts(conn)
        if pending == 0 or time.monotonic() > deadline:
            assert pending == 0
            return freed
        time.sleep(0.02)


def test_lazyfreed_objects_counts_as_redis_does(diff):
    diff("CONFIG", "RESETSTAT")
    diff("SADD", "big", *[str(i) for i in range(100)] + ["x"])  # hashtable of 101: freed lazily
    diff("UNLINK", "big")
    diff("SADD", "small", *[str(i) for i in range(10)])  # cheap: freed at once
    diff("UNLINK", "small")
    diff("RPUSH", "l", "a", "b")
    diff("UNLINK", "l")
    assert _freed_when_done(diff.f) == _freed_when_done(diff.r) == 1
    for i in range(3):
        diff("SET", "k%d" % i, "v")
    diff("FLUSHALL", "ASYNC")  # the whole keyspace goes to the background
    assert _freed_when_done(diff.f) == _freed_when_done(diff.r) == 4
    diff("CONFIG", "RESETSTAT")
    assert _lazy_counts(diff.f) == _lazy_counts(diff.r) == (0, 0)
