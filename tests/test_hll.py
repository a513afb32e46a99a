"""HyperLogLog: differential tests against redis-server 7.0.15. The HLL is a
string value, so besides the replies the tests compare the value bytes (GET)
after every step: sparse opcodes, dense registers, the cached cardinality
and its stale bit, promotion at hll-sparse-max-bytes, PFMERGE's choice of
encoding, and corrupt values (INVALIDOBJ / the WRONGTYPE variant)."""

from __future__ import annotations

import random

from conftest import requires_redis
from support import run_script, switch_to_resp3

pytestmark = requires_redis


def test_pfadd_pfcount_bytes(diff):
    run_script(diff, [
        ("PFADD", "h"), ("GET", "h"), ("PFCOUNT", "h"), ("GET", "h"),
        ("PFADD", "h", "a", "b", "c"), ("PFADD", "h", "a"), ("GET", "h"),
        ("PFCOUNT", "h"), ("GET", "h"), ("PFCOUNT", "h"),
        ("PFADD", "h", ""), ("PFCOUNT", "h"), ("PFCOUNT", "nokey"), ("PFCOUNT", "h", "nokey"),
        ("PFDEBUG", "ENCODING", "h"), ("PFDEBUG", "DECODE", "h"),
        ("PFDEBUG", "FOO", "h"), ("PFDEBUG", "ENCODING", "nokey"), ("PFDEBUG", "GETREG", "h", "x"),
        ("PFADD",), ("PFCOUNT",), ("PFMERGE",),
        ("RPUSH", "l", "x"), ("PFADD", "l", "a"), ("PFCOUNT", "l"), ("PFCOUNT", "h", "l"),
        ("PFMERGE", "h", "l"), ("PFMERGE", "l", "h"), ("PFDEBUG", "ENCODING", "l"),
        ("SET", "s", "not an hll"), ("PFADD", "s", "a"), ("PFCOUNT", "s"), ("PFMERGE", "d", "s"),
        ("PFDEBUG", "DECODE", "s"),
    ])


def test_sparse_to_dense_promotion_and_merge(diff):
    diff("CONFIG", "SET", "hll-sparse-max-bytes", "300")
    for i in range(0, 400, 20):
        diff("PFADD", "h", *["e%d" % j for j in range(i, i + 20)])
        diff("GET", "h")
        diff("PFDEBUG", "ENCODING", "h")
        diff("PFCOUNT", "h")
    diff("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
    diff("PFADD", "s1", *["x%d" % j for j in range(50)])
    diff("PFADD", "s2", *["y%d" % j for j in range(70)])
    diff("PFMERGE", "m", "s1", "s2")  # all sparse: the result stays sparse
    diff("GET", "m")
    diff("PFMERGE", "m2", "s1", "h")  # one dense source: the result is dense
    diff("GET", "m2")
    diff("PFMERGE", "s1", "s2")  # the destination is a source too
    diff("GET", "s1")
    diff("PFCOUNT", "s1", "s2", "h", "m")
    diff("PFMERGE", "empty")
    diff("GET", "empty")
    diff("PFDEBUG", "TODENSE", "s2")
    diff("PFDEBUG", "TODENSE", "s2")
    diff("GET", "s2")
    diff("PFDEBUG", "GETREG", "m")
    diff("PFDEBUG", "ENCODING", "m")  # GETREG converted it
    diff("PFDEBUG", "DECODE", "m")
    # with hll-sparse-max-bytes 0 the first register set promotes
    diff("CONFIG", "SET", "hll-sparse-max-bytes", "0")
    diff("PFADD", "p", "a")
    diff("GET", "p")
    diff("PFDEBUG", "ENCODING", "p")


def test_corrupt_hlls(diff):
    diff("PFADD", "h", "a", "b", "c", "d")
    raw = diff("GET", "h").split(b"\r\n", 1)[1][:-2]
    cases = [
        raw + b"\x00\x00",  # additional opcodes at the tail
        b"HYLM" + raw[4:],  # broken magic
        raw[:4] + b"\x05" + raw[5:],  # unknown encoding
        raw[:4] + b"\x00" + raw[5:],  # "dense" of the wrong length
        raw[:16] + b"\x7f\xff",  # an XZERO too long
        raw[:16] + b"\x40\x01",  # registers missing
        raw[:16] + b"\xff" * 10,  # VAL runs past the end... and then short
        raw[:15],  # shorter than a header
    ]
    for i, bad in enumerate(cases):
        k = "c%d" % i
        diff("SET", k, bad)
        diff("PFCOUNT", k)
        diff("PFADD", k, "x", "y", "z")
        diff("GET", k)
        diff("PFCOUNT", k, "h")
        diff("PFMERGE", "dst%d" % i, k)
        diff("PFDEBUG", "GETREG", k)
        diff("PFDEBUG", "DECODE", k)


def test_dense_cache_and_resp3(diff):
    diff("PFADD", "d", *["v%d" % j for j in range(3000)])
    diff("PFCOUNT", "d")
    diff("PFADD", "d", "v1")  # no register changes: the cache stays valid
    diff("GET", "d")
    diff("PFADD", "d", "new-one", "another")
    diff("GET", "d")
    switch_to_resp3(diff)
    diff("PFCOUNT", "d")
    diff("PFDEBUG", "ENCODING", "d")


def test_random_hll_sequences(diff):
    rnd = random.Random(4242)
    keys = ["h1", "h2", "h3"]
    diff("CONFIG", "SET", "hll-sparse-max-bytes", str(rnd.choice([200, 600, 3000])))
    for step in range(400):
        k = rnd.choice(keys)
        pick = rnd.randrange(6)
        if pick < 3:
            n = rnd.choice([1, 2, 5, 30])
            diff("PFADD", k, *["%d:%d" % (rnd.randrange(5000), step) for _ in range(n)])
        elif pick == 3:
            diff("PFCOUNT", k)
        elif pick == 4:
            diff("PFCOUNT", *rnd.sample(keys, rnd.randint(2, 3)))
        else:
            diff("PFMERGE", k, *rnd.sample(keys, rnd.randint(1, 3)))
        if step % 10 == 0:
            for kk in keys:
                diff("GET", kk)
    for kk in keys:
        diff("GET", kk)


def test_pfselftest(diff):
    diff("PFSELFTEST")
    diff("PFSELFTEST", "x")


def test_sparse_editor_matches_byte_walking_sparse_set():
    """The list-based editor PFADD/PFMERGE use gives the same bytes and
    results as the direct transcription of hllSparseSet."""
    from frtrio.commands.hll import HllWork, new_hll, sparse_set

    rnd = random.Random(5)
    for trial in range(60):
        maxb = rnd.choice([40, 120, 400, 3000])
        a = new_hll()
        w = HllWork(new_hll())
        for _ in range(rnd.choice([5, 50, 400])):
            index = rnd.choice([rnd.randrange(16384), rnd.randrange(40), 16383])
            count = rnd.choice([1, 1, 2, 3, rnd.randint(1, 40)])
            a, r1 = sparse_set(a, index, count, maxb)
            r2 = w.set(index, count, maxb)
            assert r1 == r2
            assert bytes(a) == bytes(w.value()), trial
            if a[4] == 0:
                break
