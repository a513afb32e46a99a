"""Replication benchmarks (not tests), frtrio and redis-server masters side
by side, each with a fresh redis-server 7.0.15 replica:

* full sync: a master with N small keys, a replica attaches; the time until
  the replica's link is up with all keys, and the longest stall a client saw
  on the master meanwhile (a PING loop on its own connection);
* stream (``--stream``): redis-benchmark -P 16 SET load on the master, with
  and without a replica attached: the master's requests/s both ways, the
  replica's lag (master offset minus replica offset, sampled every 50 ms)
  and the time it needs to catch up once the load stops.

    PYTHONPATH=. python scripts/bench_repl_sync.py [N]
    PYTHONPATH=. python scripts/bench_repl_sync.py --stream [REQUESTS]
    INPROCESS=1 PYTHONPATH=. python scripts/bench_repl_sync.py [N]   # loop stalls
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from support import ServerProc  # noqa: E402


def fill(r, n):
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set("key:%d" % i, "value:%d" % i)
        if i % 5000 == 4999:
            p.execute()
    p.execute()


def run(kind: str, n: int) -> dict:
    m = ServerProc(kind, ["--repl-diskless-sync", "no"]).start()  # disk framing, both
    s = None
    try:
        r = m.client()
        fill(r, n)
        assert r.dbsize() == n
        stop = threading.Event()
        worst = [0.0]
        count = [0]

        def probe():
            c = m.client()
            while not stop.is_set():
                t = time.perf_counter()
                c.ping()
                d = time.perf_counter() - t
                count[0] += 1
                if d > worst[0]:
                    worst[0] = d

        th = threading.Thread(target=probe)
        th.start()
        time.sleep(0.5)
        base = worst[0]
        worst[0] = 0.0
        t0 = time.perf_counter()
        s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
        rs = s.client()
        while True:
            if rs.info("replication").get("master_link_status") == "up" and rs.dbsize() == n:
                break
            time.sleep(0.01)
        took = time.perf_counter() - t0
        time.sleep(0.2)
        stop.set()
        th.join()
        return {"kind": kind, "keys": n, "sync_s": round(took, 3),
                "max_ping_stall_ms": round(worst[0] * 1000, 1),
                "idle_max_ping_ms": round(base * 1000, 1), "pings": count[0]}
    finally:
        if s is not None:
            s.cleanup()
        m.cleanup()


def _bench_rps(port: int, n: int) -> float:
    import subprocess

    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(n), "-c", "50", "-P", "16",
         "-r", "100000", "-q"], capture_output=True, text=True, check=True).stdout
    for line in out.replace("\r", "\n").splitlines():
        if "requests per second" in line:
            return float(line.split(":")[1].split()[0])
    raise RuntimeError("no result from redis-benchmark: %r" % out)


def stream(kind: str, n: int) -> dict:
    """The stream under load: throughput with/without a replica, lag."""
    m = ServerProc(kind, ["--repl-diskless-sync", "no"]).start()  # disk framing, both
    s = None
    try:
        alone = _bench_rps(m.port, n)
        s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
        rs, rm = s.client(), m.client()
        while rs.info("replication").get("master_link_status") != "up":
            time.sleep(0.01)
        lags = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                mo = rm.info("replication")["master_repl_offset"]
                ro = rs.info("replication")["master_repl_offset"]
                lags.append(max(0, mo - ro))
                time.sleep(0.05)

        th = threading.Thread(target=sample)
        th.start()
        with_replica = _bench_rps(m.port, n)
        stop.set()
        th.join()
        t0 = time.perf_counter()
        target = rm.info("replication")["master_repl_offset"]
        while rs.info("replication")["master_repl_offset"] < target:
            time.sleep(0.005)
        catch_up = time.perf_counter() - t0
        return {"kind": kind, "requests": n, "rps_alone": round(alone),
                "rps_with_replica": round(with_replica),
                "ratio_with_replica": round(with_replica / alone, 2),
                "lag_bytes_max": max(lags or [0]),
                "lag_bytes_mean": round(sum(lags) / len(lags)) if lags else 0,
                "catch_up_ms": round(catch_up * 1000, 1)}
    finally:
        if s is not None:
            s.cleanup()
        m.cleanup()


if __name__ == "__main__" and not os.environ.get("INPROCESS"):
    args = sys.argv[1:]
    if args and args[0] == "--stream":
        n = int(args[1]) if len(args) > 1 else 200000
        for kind in ("frtrio", "redis"):
            print(stream(kind, n), flush=True)
    else:
        n = int(args[0]) if args else 100000
        for kind in ("frtrio", "redis"):
            print(run(kind, n), flush=True)


def run_inprocess(n: int) -> dict:
    """The frtrio master in this process, so the event loop's own stalls
    are measured: a task that sleeps 1 ms in a loop records its longest
    lateness while a redis-server replica does its full sync."""
    import redis  # noqa: F401  (imported before measuring: the import itself is slow)
    import trio

    from frtrio.config import Config
    from frtrio.runtime.env import RealEnv
    from frtrio.runtime.node import Node
    from support import free_port

    port = free_port()
    cfg = Config()
    cfg.values["port"] = str(port)
    cfg.values["bind"] = "127.0.0.1"
    cfg.values["repl-diskless-sync"] = "no"  # disk framing, as the other runs
    node = Node(cfg, RealEnv())
    db = node.server.dbs[0]
    for i in range(n):
        db.set(b"key:%d" % i, b"value:%d" % i)
    res = {}
    steps = {}

    class Steps(trio.abc.Instrument):
        """The longest single task step (a synchronous stretch), by task."""

        def before_task_step(self, task):
            steps["t"] = time.perf_counter()

        def after_task_step(self, task):
            d = time.perf_counter() - steps["t"]
            if d > steps.get("max", (0, ""))[0]:
                steps["max"] = (d, task.name)

    async def main():
        async with trio.open_nursery() as nur:
            await nur.start(node.run)
            worst = [0.0]
            stop = trio.Event()

            async def monitor():
                while not stop.is_set():
                    t = trio.current_time()
                    await trio.sleep(0.001)
                    late = trio.current_time() - t - 0.001
                    worst[0] = max(worst[0], late)

            await trio.sleep(0.3)
            nur.start_soon(monitor)
            await trio.sleep(0.5)
            idle = worst[0]
            worst[0] = 0.0
            steps.pop("max", None)
            s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(port)])
            t0 = trio.current_time()
            await trio.to_thread.run_sync(s.start)
            rs = await trio.to_thread.run_sync(s.client)

            def done():
                return (rs.info("replication").get("master_link_status") == "up"
                        and rs.dbsize() == n)

            while not await trio.to_thread.run_sync(done):
                await trio.sleep(0.01)
            res.update(kind="frtrio-inprocess", keys=n, sync_s=round(trio.current_time() - t0, 3),
                       max_loop_stall_ms=round(worst[0] * 1000, 1),
                       idle_max_loop_stall_ms=round(idle * 1000, 1),
                       longest_task_step_ms=round(steps["max"][0] * 1000, 1),
                       longest_step_task=steps["max"][1])
            stop.set()
            await trio.to_thread.run_sync(s.cleanup)
            node.shutdown()

    trio.run(main, instruments=[Steps()])
    return res


if __name__ == "__main__" and os.environ.get("INPROCESS"):
    print(run_inprocess(int(sys.argv[1]) if len(sys.argv) > 1 else 100000))
