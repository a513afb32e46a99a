#!/usr/bin/env python3
"""In-process cost of small values (no sockets, no server process).

``--memory``: bytes per key that loading the keys of ``scripts/bench
--memory`` leaves allocated (tracemalloc while ``Server.execute`` runs the
commands, their argv objects included), with the allocation sites that
hold most of it. Unlike the resident size this does not depend on the free
allocator space a fresh process starts with.

``--cpu`` (the default): nanoseconds per call of ``ZSetValue`` methods on a
10- and a 128-member zset, and of ZADD / ZSCORE / ZRANGE / ZRANK through
``Server.execute`` (best of 7 rounds). Compare two trees by running the
script with each on PYTHONPATH, alternately.

    PYTHONPATH=. python3 scripts/bench_small_values.py [--cpu] [--memory] [-n 20000] [--top 6]
"""

from __future__ import annotations

import argparse
import gc
import random
import timeit
import tracemalloc

import frtrio.commands  # noqa: F401  (registers every command)
from frtrio.config import Config
from frtrio.core.engine import Server
from frtrio.store.zset import ZSetValue


def engine() -> Server:
    srv = Server(Config(), random.Random(1))
    srv.now_ms = 1_000_000
    return srv


def cases(count: int):
    """The keys of scripts/bench --memory: (name, number of keys, argv of key i)."""
    def string(i):
        return [b"SET", b"key:%010d" % i, b"value:%06d" % i]

    def agg(cmd, pair):
        def build(i):
            args = [cmd, b"agg:%010d" % i]
            for j in range(10):
                args += ([b"%d" % j, b"member:%08d" % j] if pair == "score"
                         else [b"field:%08d" % j, b"v%06d" % j] if pair == "field"
                         else [b"member:%08d" % j])
            return args
        return build

    small = max(1, count // 10)
    return [("string", count, string),
            ("hash of 10 small fields", small, agg(b"HSET", "field")),
            ("set of 10 members", small, agg(b"SADD", None)),
            ("zset of 10 members", small, agg(b"ZADD", "score")),
            ("list of 10 elements", small, agg(b"RPUSH", None))]


def memory(count: int, top: int) -> None:
    for name, n, build in cases(count):
        srv = engine()
        c = srv.new_client("bench", "")
        srv.execute(c, [b"SET", b"warmup", b"x"])
        c.take_output()
        gc.collect()
        tracemalloc.start(1)
        s0 = tracemalloc.take_snapshot()
        for i in range(n):
            srv.execute(c, build(i))
            c.take_output()
        # (what a server's before-sleep round would have handed on and dropped)
        srv.propagated.clear()
        srv.repl.woff_pending.clear()
        gc.collect()
        s1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = s1.compare_to(s0, "lineno")
        total = sum(x.size_diff for x in stats)
        print(f"{name}: {total / n:.0f} bytes per key ({n} keys)")
        for x in stats[:top]:
            if x.size_diff > 0:
                print(f"    {x.size_diff / n:7.1f}  {x.traceback[0]}")


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e9


def cpu() -> None:
    res = {}
    for n in (10, 128):
        ms = [b"member:%08d" % j for j in range(n)]
        pairs = [(m, float(j)) for j, m in enumerate(ms)][::-1]

        def build():
            z = ZSetValue(True)
            for m, s in pairs:  # reverse order: every insert goes to the front
                z.set(m, s)
            return z

        z = build()
        mid = ms[n // 2]

        def update():
            z.set(mid, 0.5)
            z.set(mid, float(n // 2))

        res[f"n={n} build (set x{n}, per set)"] = best(build, 2000 if n == 10 else 200) / n
        res[f"n={n} get"] = best(lambda: z.get(mid), 200000)
        res[f"n={n} set existing, new score (x2)"] = best(update, 50000)
        res[f"n={n} rank"] = best(lambda: z.rank(mid), 100000)
        res[f"n={n} list(islice(0,n))"] = best(lambda: list(z.islice(0, n)), 50000)
        res[f"n={n} score_span"] = best(lambda: z.score_span(2.0, False, 5.0, True), 100000)
        res[f"n={n} items()"] = best(lambda: list(z.items()), 50000)

    srv = engine()
    c = srv.new_client("bench", "")

    def ex(*argv):
        srv.execute(c, list(argv))
        c.take_output()

    ten = [x for j in range(10) for x in (b"%d" % j, b"member:%08d" % j)]
    for i in range(100):
        ex(b"ZADD", b"z%d" % i, *ten)
    ex(b"ZADD", b"big128", *[x for j in range(128) for x in (b"%d" % j, b"member:%08d" % j)])
    res["engine ZADD 10 members new key (+DEL)"] = best(
        lambda: (ex(b"ZADD", b"zz", *ten), ex(b"DEL", b"zz")), 5000)
    res["engine ZADD existing member new score"] = best(
        lambda: (ex(b"ZADD", b"z5", b"3.5", b"member:00000007"),
                 ex(b"ZADD", b"z5", b"7", b"member:00000007")), 20000) / 2
    res["engine ZSCORE"] = best(lambda: ex(b"ZSCORE", b"z5", b"member:00000004"), 50000)
    res["engine ZRANGE 0 -1 WITHSCORES"] = best(
        lambda: ex(b"ZRANGE", b"z5", b"0", b"-1", b"WITHSCORES"), 20000)
    res["engine ZRANGE 0 -1 WITHSCORES (128)"] = best(
        lambda: ex(b"ZRANGE", b"big128", b"0", b"-1", b"WITHSCORES"), 2000)
    res["engine ZRANGEBYSCORE 10 20 (128)"] = best(
        lambda: ex(b"ZRANGEBYSCORE", b"big128", b"10", b"20"), 20000)
    res["engine ZSCORE (128)"] = best(lambda: ex(b"ZSCORE", b"big128", b"member:00000044"), 50000)
    res["engine ZRANK"] = best(lambda: ex(b"ZRANK", b"z5", b"member:00000004"), 50000)
    for k, v in res.items():
        print(f"{k:45s} {v:9.0f} ns")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="the zset call timings (the default)")
    ap.add_argument("--memory", action="store_true", help="bytes per key, by tracemalloc")
    ap.add_argument("-n", type=int, default=20000, help="strings to load (aggregates: n/10)")
    ap.add_argument("--top", type=int, default=6, help="allocation sites shown per value")
    a = ap.parse_args()
    if a.memory:
        memory(a.n, a.top)
    if a.cpu or not a.memory:
        cpu()


if __name__ == "__main__":
    main()
