#!/usr/bin/env python3
"""Slot migration benchmark (not a test), side by side in one run:

* frtrio, atomic slot migration (CLUSTER MIGRATION IMPORT on the destination);
* frtrio, legacy resharding (redis-cli --cluster reshard: SETSLOT + MIGRATE);
* redis-server 7.0.15, legacy resharding (the same redis-cli command).

Two cases on a fresh 3-master cluster each time: one slot holding KEYS keys,
and SLOTS slots holding 10 keys each. For each: the wall time of the move,
and the longest stall a client saw meanwhile (a loop of SETs on a key of the
source that does not move, on its own connection; for ASM the source pauses
its writes during the handoff). Writes the table to artifacts/bench-asm.txt.

    PYTHONPATH=. python3 scripts/bench_asm.py [--keys 100000] [--slots 1000]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)
from support import REDIS_CLI, ServerProc, wait_for  # noqa: E402

from frtrio.cluster.slots import key_slot  # noqa: E402

ARGS = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000", "--save", ""]


def tag_for(slot: int) -> str:
    i = 0
    while key_slot(b"t%d" % i) != slot:
        i += 1
    return "t%d" % i


def cluster(kind):
    procs = [ServerProc(kind, ARGS).start() for _ in range(3)]
    try:
        r = subprocess.run([REDIS_CLI, "--cluster", "create"]
                           + ["127.0.0.1:%d" % p.port for p in procs] + ["--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        cs = [p.client() for p in procs]
        wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                             for c in cs), 30)
    except BaseException:
        for p in procs:  # a cluster that did not form is not left running
            p.stop()
        raise
    return procs, cs


def fill(c, slots, per_slot):
    p = c.pipeline(transaction=False)
    n = 0
    for s in slots:
        tag = tag_for(s)
        for i in range(per_slot):
            p.set("{%s}:%d" % (tag, i), "v" * 16)
            n += 1
            if n % 5000 == 0:
                p.execute()
    p.execute()


class Prober:
    """SETs in a loop on a key that stays on the source: the longest gap."""

    def __init__(self, port, key):
        import redis

        self.c = redis.Redis(port=port)
        self.key = key
        self.worst = 0.0
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            self.c.set(self.key, "x")
            self.worst = max(self.worst, time.perf_counter() - t)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()


def move(kind, how, slots, per_slot):
    procs, cs = cluster(kind)
    try:
        src, dst = cs[0], cs[1]  # node 0 holds slots 0-5460
        srcid, dstid = (c.execute_command("CLUSTER", "MYID").decode() for c in cs[:2])
        fill(src, slots, per_slot)
        keep = "{%s}:stay" % tag_for(5000)  # a slot of the source that stays
        with Prober(procs[0].port, keep) as pr:
            t0 = time.perf_counter()
            if how == "asm":
                tid = dst.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(slots[0]),
                                          str(slots[-1]))
                st = {}

                def done():
                    st.update(dst.execute_command("CLUSTER", "MIGRATION", "STATUS", "ID",
                                                  tid)[0])
                    return st[b"state"] in (b"completed", b"canceled")

                wait_for(done, 3600, step=0.005)
                assert st[b"state"] == b"completed", st
                dt = time.perf_counter() - t0
                pause = src.execute_command("CLUSTER", "MIGRATION", "STATUS", "ID",
                                            tid)[0][b"write_pause_ms"]
            else:
                r = subprocess.run([REDIS_CLI, "--cluster", "reshard", "127.0.0.1:%d" % procs[0].port,
                                    "--cluster-from", srcid, "--cluster-to", dstid,
                                    "--cluster-slots", str(len(slots)), "--cluster-yes",
                                    "--cluster-pipeline", "100"],
                                   capture_output=True, text=True, timeout=3600)
                assert r.returncode == 0, r.stdout[-2000:] + r.stderr
                dt = time.perf_counter() - t0
                pause = None
        moved = sum(dst.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) for s in slots)
        assert moved == len(slots) * per_slot, (moved, len(slots) * per_slot)
        return dt, pr.worst, pause
    finally:
        for p in procs:
            p.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--slots", type=int, default=1000)
    a = ap.parse_args()
    cases = [("1 slot, %d keys" % a.keys, [0], a.keys),
             ("%d slots, 10 keys each" % a.slots, list(range(a.slots)), 10)]
    rows = []
    for name, slots, per in cases:
        for kind, how in (("frtrio", "asm"), ("frtrio", "reshard"), ("redis", "reshard")):
            dt, worst, pause = move(kind, how, slots, per)
            label = "%s %s" % ("frtrio" if kind == "frtrio" else "redis-server 7.0.15",
                               "ASM (CLUSTER MIGRATION)" if how == "asm" else
                               "legacy reshard (redis-cli)")
            rows.append((name, label, dt, worst, pause))
            print("%-24s %-44s %8.2f s  longest client stall %6.1f ms%s" % (
                name, label, dt, worst * 1000,
                "  write pause %d ms" % pause if pause is not None else ""), flush=True)
    lines = ["# PYTHONPATH=. python3 scripts/bench_asm.py --keys %d --slots %d" % (a.keys, a.slots),
             "# %s" % datetime.datetime.now().isoformat(timespec="seconds"),
             "%-24s %-44s %10s %22s %16s" % ("case", "how", "time", "longest client stall",
                                           "ASM write pause")]
    for name, label, dt, worst, pause in rows:
        lines.append("%-24s %-44s %8.2f s %19.1f ms %16s" % (
            name, label, dt, worst * 1000, "%d ms" % pause if pause is not None else "-"))
    out = os.path.join(ROOT, "artifacts", "bench-asm.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
