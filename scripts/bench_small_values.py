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

``--packing``: the command-path cost of keeping small aggregates packed
(hot keys, the first command on a packed key, the cron's packing).

    PYTHONPATH=. python3 scripts/bench_small_values.py [--cpu] [--memory] [--packing] [-n 20000] [--top 6]
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
        # (two cron periods: small aggregates left alone are packed at rest)
        if hasattr(srv, "pack_small_values"):
            srv.pack_small_values()
            srv.pack_small_values()
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


def packing() -> None:
    """What keeping small aggregates packed costs on the command path (run
    it with each tree on PYTHONPATH, alternately; the older tree has no
    packing): commands on hot keys (never packed: used in every cron
    period), the first command on a packed key (unpacked by its lookup),
    and the cron's packing of a key."""
    res = {}
    srv = engine()
    c = srv.new_client("bench", "")

    def ex(*argv):
        srv.execute(c, list(argv))
        c.take_output()

    n = 2000
    h10 = [x for j in range(10) for x in (b"field:%08d" % j, b"v%06d" % j)]
    z10 = [x for j in range(10) for x in (b"%d" % j, b"member:%08d" % j)]
    l10 = [b"member:%08d" % j for j in range(10)]
    for i in range(n):
        ex(b"HSET", b"h%d" % i, *h10)
        ex(b"ZADD", b"z%d" % i, *z10)
        ex(b"RPUSH", b"l%d" % i, *l10)
    ex(b"SET", b"s", b"v")
    srv.propagated.clear()
    srv.repl.woff_pending.clear()
    res["engine GET (string)"] = best(lambda: ex(b"GET", b"s"), 100000)
    res["engine HSET existing field (hot)"] = best(lambda: ex(b"HSET", b"h1", b"field:00000003", b"x"), 50000)
    res["engine HGET (hot)"] = best(lambda: ex(b"HGET", b"h1", b"field:00000003"), 50000)
    res["engine LPUSH+RPOP (hot, 10)"] = best(
        lambda: (ex(b"LPUSH", b"l1", b"x"), ex(b"RPOP", b"l1")), 50000) / 2
    res["engine ZADD existing member (hot)"] = best(
        lambda: ex(b"ZADD", b"z1", b"3", b"member:00000003"), 50000)
    srv.propagated.clear()
    srv.repl.woff_pending.clear()
    packs = hasattr(srv, "pack_small_values")
    for name, cmd, pre in (("HGET", [b"HGET", None, b"field:00000003"], b"h"),
                           ("HSET", [b"HSET", None, b"field:00000003", b"y"], b"h"),
                           ("LINDEX", [b"LINDEX", None, b"3"], b"l"),
                           ("ZSCORE", [b"ZSCORE", None, b"member:00000003"], b"z"),
                           ("ZADD", [b"ZADD", None, b"4", b"member:00000003"], b"z")):
        times = []
        pack_ns = []
        for _ in range(5):
            if packs:
                t0 = timeit.default_timer()
                k = srv.pack_small_values() + srv.pack_small_values()
                if k:
                    pack_ns.append((timeit.default_timer() - t0) / k * 1e9)
            keys = [pre + b"%d" % i for i in range(n)]
            t0 = timeit.default_timer()
            for key in keys:
                cmd[1] = key
                ex(*cmd)
            times.append((timeit.default_timer() - t0) / n * 1e9)
            srv.propagated.clear()
            srv.repl.woff_pending.clear()
        res[f"engine {name} on {n} keys, each once (cold: packed)"] = min(times)
        if pack_ns:
            res[f"  cron: pack one key ({pre.decode()} after {name})"] = min(pack_ns)
    for k, v in res.items():
        print(f"{k:52s} {v:9.0f} ns")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="the zset call timings (the default)")
    ap.add_argument("--memory", action="store_true", help="bytes per key, by tracemalloc")
    ap.add_argument("-n", type=int, default=20000, help="strings to load (aggregates: n/10)")
    ap.add_argument("--top", type=int, default=6, help="allocation sites shown per value")
    ap.add_argument("--packing", action="store_true",
                    help="the command-path cost of packed small aggregates (hot and cold keys)")
    a = ap.parse_args()
    if a.memory:
        memory(a.n, a.top)
    if a.packing:
        packing()
    if a.cpu or not (a.memory or a.packing):
        cpu()


if __name__ == "__main__":
    main()
