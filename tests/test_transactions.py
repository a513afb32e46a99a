"""MULTI / EXEC / DISCARD / WATCH / UNWATCH, differential against
redis-server 7.0: every reply is compared byte for byte, including WATCH
invalidated from a second connection, by expiry, by FLUSHALL/FLUSHDB/SWAPDB,
EXECABORT after queue-time errors, and blocked clients served once after
the whole EXEC. The propagation of a transaction (MULTI ... EXEC around more
than one write) is checked on the pure engine.
"""

from __future__ import annotations

import random
import time

import pytest

from conftest import requires_redis

import support  # noqa: E402
from frtrio.core.client import F

pytestmark = requires_redis


class Pair:
    """A second connection to each server, for cross-client checks."""

    def __init__(self, frtrio_proc, redis_proc):
        self.f = frtrio_proc.conn()
        self.r = redis_proc.conn()

    def __call__(self, *args):
        a = self.f.cmd(*args)
        b = self.r.cmd(*args)
        assert a == b, f"{args!r}: frtrio {a!r} != redis {b!r}"
        return a

    def close(self):
        self.f.close()
        self.r.close()


@pytest.fixture
def other(frtrio_proc, redis_proc, diff):
    p = Pair(frtrio_proc, redis_proc)
    yield p
    p.close()


def test_basic_exec_and_errors(diff):
    diff("EXEC")
    diff("DISCARD")
    assert diff("MULTI") == b"+OK\r\n"
    diff("MULTI")  # nested: an error that does not abort the transaction
    diff("WATCH", "k")  # not allowed inside MULTI, does not abort either
    diff("SET", "a", "1")
    diff("INCR", "a")
    diff("LPUSH", "a", "x")  # runtime error: an element of the EXEC reply
    diff("GET", "a")
    diff("PING")
    diff("UNWATCH")  # queued
    assert diff("EXEC").startswith(b"*6\r\n")
    diff("EXEC")
    diff("MULTI")
    assert diff("EXEC") == b"*0\r\n"
    diff("MULTI")
    diff("SET", "b", "1")
    diff("DISCARD")
    diff("GET", "b")


def test_execabort_after_queue_errors(diff):
    for bad in (("SET", "a"), ("NOSUCHCOMMAND", "x"), ("GET",), ("OBJECT", "NOSUCH", "x")):
        diff("MULTI")
        diff("SET", "a", "1")
        diff(*bad)
        diff("SET", "b", "2")
        diff("EXEC")
        diff("EXISTS", "a", "b")
    # DISCARD clears the abort flag too
    diff("MULTI")
    diff("GET")
    diff("DISCARD")
    diff("MULTI")
    diff("SET", "c", "3")
    diff("EXEC")


def test_not_allowed_inside_multi(diff):
    diff("MULTI")
    diff("SUBSCRIBE", "ch")  # no-multi command: rejected, aborts
    diff("EXEC")


def test_resp3_null_and_types(diff):
    diff.both("HELLO", "3")  # the client ids differ
    diff("SET", "w", "1")
    diff("WATCH", "w")
    diff("SET", "w", "2")
    diff("MULTI")
    diff("GET", "w")
    assert diff("EXEC") == b"_\r\n"
    diff("MULTI")
    diff("HSET", "h", "a", "1")
    diff("HGETALL", "h")
    diff("EXEC")
    diff.both("HELLO", "2")


def test_watch_from_two_connections(diff, other):
    diff("SET", "k", "v")
    diff("WATCH", "k")
    other("SET", "k", "v2")  # another client touches the key
    diff("MULTI")
    diff("SET", "k", "mine")
    assert diff("EXEC") == b"*-1\r\n"
    diff("GET", "k")
    # untouched watched key: EXEC runs
    diff("WATCH", "k", "other")
    other("SET", "unrelated", "1")
    other("GET", "k")  # reads do not invalidate
    diff("MULTI")
    diff("SET", "k", "mine")
    diff("EXEC")
    diff("GET", "k")
    # a write that changes nothing still invalidates; a failed one does not
    diff("WATCH", "k")
    other("SET", "k", "mine")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    diff("WATCH", "k")
    other("INCR", "k")  # error: not a change
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    # deleting a missing key is no change; deleting a watched key is
    diff("WATCH", "missing", "k")
    other("DEL", "missing")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    diff("WATCH", "k")
    other("DEL", "k")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    # UNWATCH forgets; WATCH after the key changed then EXEC works
    diff("SET", "k", "1")
    diff("WATCH", "k")
    other("SET", "k", "2")
    diff("UNWATCH")
    diff("MULTI")
    diff("GET", "k")
    diff("EXEC")
    # the same key in another db is another key
    diff("WATCH", "k")
    other("SELECT", "1")
    other("SET", "k", "x")
    other("SELECT", "0")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    # the transaction's own writes before EXEC invalidate
    diff("WATCH", "k")
    diff("SET", "k", "3")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    # WATCH is forgotten after EXEC and after DISCARD
    diff("WATCH", "k")
    diff("MULTI")
    diff("DISCARD")
    other("SET", "k", "4")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    other("SELECT", "1")
    other("FLUSHDB")
    other("SELECT", "0")


def test_watch_and_expiry(diff, other):
    # a key that expires between WATCH and EXEC aborts EXEC, whether or not
    # anything removed it before
    diff("SET", "e", "1", "PX", "50")
    diff("WATCH", "e")
    time.sleep(0.12)
    diff("MULTI")
    diff("PING")
    assert diff("EXEC") == b"*-1\r\n"
    diff("SET", "e", "1", "PX", "50")
    diff("WATCH", "e")
    time.sleep(0.12)
    other("GET", "e")  # lazy expiry by another client
    diff("MULTI")
    diff("PING")
    assert diff("EXEC") == b"*-1\r\n"
    # EXPIRE on a watched key is a change
    diff("SET", "e", "1")
    diff("WATCH", "e")
    other("EXPIRE", "e", "100")
    diff("MULTI")
    diff("TTL", "e")
    diff("EXEC")
    diff("DEL", "e")


def test_watch_key_already_expired(diff, other):
    """A key already (logically) expired when WATCHed: its removal changes
    nothing, re-creating it does."""
    diff("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        diff("SET", "x", "1", "PX", "1")
        time.sleep(0.02)
        diff("WATCH", "x")
        diff("MULTI")
        diff("PING")
        diff("EXEC")  # runs: the key was expired already
        diff("SET", "x", "1", "PX", "1")
        time.sleep(0.02)
        diff("WATCH", "x")
        other("EXISTS", "x")  # lazy removal: no logical change
        diff("MULTI")
        diff("PING")
        diff("EXEC")
        diff("SET", "x", "1", "PX", "1")
        time.sleep(0.02)
        diff("WATCH", "x")
        other("SET", "x", "again")  # re-created: a change
        diff("MULTI")
        diff("PING")
        diff("EXEC")
        diff("SET", "y", "1", "PX", "1")
        time.sleep(0.02)
        diff("WATCH", "y")
        other("FLUSHALL")  # removes the expired key: no logical change
        diff("MULTI")
        diff("PING")
        diff("EXEC")
    finally:
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_watch_flush_and_swapdb(diff, other):
    # FLUSHALL / FLUSHDB invalidate only keys that existed
    diff("SET", "a", "1")
    diff("WATCH", "a")
    other("FLUSHALL")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    diff("WATCH", "nokey")
    other("FLUSHALL")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    diff("SET", "a", "1")
    diff("WATCH", "a")
    other("SELECT", "3")
    other("FLUSHDB")  # another db
    other("SELECT", "0")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    diff("WATCH", "a")
    other("FLUSHDB")
    diff("MULTI")
    diff("PING")
    diff("EXEC")
    # SWAPDB: invalidated when the key exists on either side
    for setup in (("0",), ("3",), ("0", "3"), ()):
        other("FLUSHALL")
        for db in setup:
            other("SELECT", db)
            other("SET", "s", db)
        other("SELECT", "0")
        diff("WATCH", "s")
        other("SWAPDB", "0", "3")
        diff("MULTI")
        diff("GET", "s")
        diff("EXEC")
    # a key on the other side that is already expired
    diff("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        other("FLUSHALL")
        other("SELECT", "3")
        other("SET", "s", "1", "PX", "1")
        other("SELECT", "0")
        time.sleep(0.02)
        diff("WATCH", "s")
        other("SWAPDB", "0", "3")
        diff("MULTI")
        diff("PING")
        diff("EXEC")
    finally:
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        other("FLUSHALL")


def test_blocking_commands_inside_exec(diff):
    diff("MULTI")
    diff("BLPOP", "nolist", "0")
    diff("BRPOPLPUSH", "nolist", "dst", "0")
    diff("BZPOPMIN", "nozset", "0")
    diff("EXEC")
    diff("RPUSH", "l", "a")
    diff("MULTI")
    diff("BLPOP", "l", "0")
    diff("EXEC")


def test_blocked_client_served_after_whole_exec(frtrio_proc, redis_proc, diff):
    """A client blocked on a key is served once, after EXEC: it sees the
    state the whole transaction left."""
    results = []
    for proc in (frtrio_proc, redis_proc):
        waiter = proc.conn()
        waiter.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        time.sleep(0.15)
        c = proc.conn()
        for cmd in (("MULTI",), ("RPUSH", "q", "a", "b"), ("LPUSH", "q", "z"),
                    ("DEL", "q"), ("RPUSH", "q", "c", "d")):
            c.cmd(*cmd)
        r1 = c.cmd("EXEC")
        r2 = waiter.read_reply()
        r3 = c.cmd("LRANGE", "q", "0", "-1")
        results.append((r1, r2, r3))
        waiter.close()
        c.close()
    assert results[0] == results[1]


def test_random_transactions(diff, other):
    """Random interleavings of two clients' transactions and writes."""
    rnd = random.Random(7)
    keys = ["k1", "k2", "k3"]
    cmds = [
        lambda: ("SET", rnd.choice(keys), str(rnd.randrange(5))),
        lambda: ("INCR", rnd.choice(keys)),
        lambda: ("DEL", rnd.choice(keys)),
        lambda: ("GET", rnd.choice(keys)),
        lambda: ("RPUSH", rnd.choice(keys), "x"),
        lambda: ("WATCH", rnd.choice(keys)),
        lambda: ("UNWATCH",),
        lambda: ("MULTI",),
        lambda: ("EXEC",),
        lambda: ("DISCARD",),
        lambda: ("SET", rnd.choice(keys)),
        lambda: ("EXPIRE", rnd.choice(keys), "100"),
        lambda: ("PERSIST", rnd.choice(keys)),
    ]
    for _ in range(400):
        who = diff if rnd.random() < 0.6 else other
        who(*rnd.choice(cmds)())
    for who in (diff, other):
        who("DISCARD")
        who("UNWATCH")


def test_propagation_wraps_multi_exec():
    """More than one write in EXEC propagates as MULTI ... EXEC; a single
    write propagates alone; reads propagate nothing (Redis 7.0)."""
    srv = support.engine(ndb=16)
    c = srv.new_client()

    def run(*args):
        return support.run(srv, c, *args)

    for cmd in (("MULTI",), ("SET", "a", "1"), ("GET", "a"), ("SELECT", "2"),
                ("SET", "b", "2"), ("EXEC",)):
        run(*cmd)
    assert srv.propagated == [
        (0, [b"MULTI"]), (0, [b"SET", b"a", b"1"]), (2, [b"SET", b"b", b"2"]),
        (2, [b"EXEC"])]
    srv.propagated.clear()
    for cmd in (("MULTI",), ("SET", "a", "1"), ("GET", "a"), ("EXEC",)):
        run(*cmd)
    assert srv.propagated == [(2, [b"SET", b"a", b"1"])]
    srv.propagated.clear()
    for cmd in (("MULTI",), ("GET", "a"), ("EXEC",)):
        run(*cmd)
    assert srv.propagated == []
    assert not c.flags & F.IN_EXEC
