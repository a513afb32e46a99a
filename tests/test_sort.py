"""SORT / SORT_RO and LCS: differential tests against redis-server 7.0.15,
replies compared byte for byte (errors included), with seeded random
data; SORT's BY/GET refusals in cluster mode against a one-node redis-server
cluster."""

from __future__ import annotations

import random

from conftest import requires_redis
from support import run_script, switch_to_resp3

pytestmark = requires_redis


def _setup(diff):
    run_script(diff, [
        ("RPUSH", "l", "3", "1", "2", "10", "-5", "1.5", "1e2", " 7", "0x1A"),
        ("SADD", "s", "5", "3", "9", "1", "100"),
        ("ZADD", "z", "1", "c", "2", "a", "3", "b", "3", "d"),
    ])
    for i in ["3", "1", "2", "10", "-5", "1.5", "c", "a"]:
        diff("SET", "w_" + i, str(random.Random(i).randint(-20, 20)))
        diff("HSET", "h_" + i, "f", "v" + i, "n", str(len(i)))


def test_sort_basics(diff):
    _setup(diff)
    run_script(diff, [
        ("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC"),
        ("SORT", "l", "LIMIT", "1", "3"), ("SORT", "l", "LIMIT", "-5", "2"), ("SORT", "l", "LIMIT", "5", "-1"),
        ("SORT", "l", "LIMIT", "100", "1"), ("SORT", "l", "LIMIT", "0", "0"),
        ("SORT", "s"), ("SORT", "s", "DESC", "LIMIT", "1", "2"), ("SORT", "z"), ("SORT", "z", "ALPHA"),
        ("SORT", "nokey"), ("SORT", "nokey", "BY", "x", "GET", "#"),
    ])


def test_sort_by_get_store(diff):
    _setup(diff)
    run_script(diff, [
        ("SORT", "l", "BY", "w_*"), ("SORT", "l", "BY", "w_*", "DESC"),
        ("SORT", "l", "BY", "h_*->n"), ("SORT", "l", "BY", "h_*->f", "ALPHA"),
        ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*", "GET", "h_*->f", "GET", "nothing"),
        ("SORT", "l", "BY", "w_*", "LIMIT", "2", "3", "GET", "#"),
        ("SORT", "l", "BY", "nosort"), ("SORT", "l", "BY", "nosort", "DESC"),
        ("SORT", "l", "BY", "nosort", "LIMIT", "2", "4"), ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "2", "4"),
        ("SORT", "z", "BY", "nosort"), ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"),
        ("SORT", "z", "BY", "nosort", "LIMIT", "1", "10"),
        ("SORT", "s", "BY", "nosort", "STORE", "st"), ("LRANGE", "st", "0", "-1"),
        ("SORT", "l", "BY", "w_*", "STORE", "st"), ("LRANGE", "st", "0", "-1"), ("TYPE", "st"),
        ("SORT", "l", "GET", "h_*->f", "GET", "#", "STORE", "st"), ("LRANGE", "st", "0", "-1"),
        ("SORT", "nokey", "STORE", "st"), ("EXISTS", "st"),
        ("SORT", "l", "GET", "h_*->"), ("SORT", "l", "GET", "w_"), ("SORT", "l", "BY", "h_*->", "GET", "#"),
        ("SORT", "l", "STORE", "a", "STORE", "b"), ("LRANGE", "b", "0", "-1"), ("EXISTS", "a"),
    ])


def test_sort_errors(diff):
    _setup(diff)
    run_script(diff, [
        ("RPUSH", "bad", "1", "x"), ("SORT", "bad"), ("SORT", "bad", "ALPHA"),
        ("RPUSH", "bad2", "1", "2x"), ("SORT", "bad2"), ("RPUSH", "bad3", "nan"), ("SORT", "bad3"),
        ("SET", "str", "x"), ("SORT", "str"), ("SORT", "str", "FOO"),
        ("SORT", "l", "FOO"), ("SORT", "l", "LIMIT", "1"), ("SORT", "l", "LIMIT", "a", "1"),
        ("SORT", "l", "LIMIT", "1", "b"), ("SORT", "l", "BY"), ("SORT", "l", "GET"), ("SORT", "l", "STORE"),
        ("SORT_RO", "l", "STORE", "x"), ("SORT_RO", "l", "BY", "w_*", "GET", "#"), ("SORT_RO", "l", "ALPHA"),
        ("SORT",), ("SORT_RO",),
    ])


def test_random_sorts(diff):
    rnd = random.Random(99)
    for t in range(150):
        diff("DEL", "rl", "rz")
        vals = [rnd.choice([str(rnd.randint(-50, 50)), "%.3f" % rnd.uniform(-10, 10), rnd.choice("abcxyz")])
                for _ in range(rnd.randint(0, 70))]
        if vals:
            diff("RPUSH", "rl", *vals)
            diff("ZADD", "rz", *[x for v in vals for x in (str(rnd.randint(0, 5)), v)])
        for v in set(vals):
            diff("SET", "rw_" + v, str(rnd.randint(0, 9)))
        opts = rnd.choice([(), ("ALPHA",), ("DESC", "ALPHA"), ("BY", "rw_*"), ("BY", "rw_*", "DESC"),
                           ("BY", "nosort"), ("BY", "rw_*", "GET", "#", "GET", "rw_*"),
                           ("BY", "rw_*", "ALPHA"), ("BY", "rw_*", "ALPHA", "DESC"), ("BY", "nokey_*", "ALPHA")])
        lim = rnd.choice([(), ("LIMIT", str(rnd.randint(-2, 10)), str(rnd.randint(-2, 10)))])
        alpha_by = "ALPHA" in opts and "BY" in opts
        # ALPHA BY leaves ties: they keep the input order (with LIMIT: what
        # Redis's partial pqsort makes of it), and a sorted set's input order
        # is its hash-table order in Redis: not compared
        diff("SORT", "rl", *opts, *lim)
        if not alpha_by:
            diff("SORT", "rz", *opts, *lim)
        diff("SORT", "rz", "ALPHA", *lim, "STORE", "out")
        diff("LRANGE", "out", "0", "-1")


def test_lcs(diff):
    run_script(diff, [
        ("SET", "a", "ohmytext"), ("SET", "b", "mynewtext"),
        ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"), ("LCS", "a", "b", "IDX"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"), ("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "-3", "WITHMATCHLEN"),
        ("LCS", "a", "b", "IDX", "LEN"), ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "FOO"),
        ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
        ("LCS", "a", "nokey"), ("LCS", "nokey", "nokey2", "IDX"),
        ("RPUSH", "l", "x"), ("LCS", "a", "l"), ("LCS", "l", "a", "FOO"), ("LCS", "a"),
    ])
    rnd = random.Random(7)
    for _ in range(60):
        s1 = bytes(rnd.choice(b"ACGT\x00") for _ in range(rnd.randint(0, 80)))
        s2 = bytes(rnd.choice(b"ACGT\x00") for _ in range(rnd.randint(0, 80)))
        diff("SET", "x1", s1)
        diff("SET", "x2", s2)
        diff("LCS", "x1", "x2")
        diff("LCS", "x1", "x2", "LEN")
        diff("LCS", "x1", "x2", "IDX", "WITHMATCHLEN")
        diff("LCS", "x1", "x2", "IDX", "MINMATCHLEN", str(rnd.randint(0, 4)))
    switch_to_resp3(diff)
    diff("LCS", "a", "b", "IDX", "WITHMATCHLEN")
