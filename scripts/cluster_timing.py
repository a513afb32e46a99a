#!/usr/bin/env python3
"""Cluster timing, frtrio and redis-server side by side.

For an all-frtrio cluster and an all-redis-server cluster with the same node
timeout, measures:
  * create: from the start of `redis-cli --cluster create` to every node
    reporting cluster_state:ok with the same CLUSTER NODES view;
  * fail:   from kill -9 of one master to every other node flagging it `fail`.
Prints a table and writes it to artifacts/cluster-timing.txt.

Usage: scripts/cluster_timing.py [--nodes 3] [--node-timeout 3000] [--rounds 2]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from support import REDIS_CLI, ServerProc  # noqa: E402


def cli(port, *args):
    return subprocess.run([REDIS_CLI, "-p", str(port)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=30).stdout


def view(port):
    rows = []
    for line in cli(port, "cluster", "nodes").splitlines():
        f = line.split()
        if len(f) >= 8:
            rows.append((f[0], f[2].replace("myself,", ""), f[6], " ".join(f[8:])))
    return sorted(rows)


def run_once(kind, nodes, node_timeout):
    procs = [ServerProc(kind, ["--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout)]).start()
             for _ in range(nodes)]
    try:
        t0 = time.monotonic()
        r = subprocess.run([REDIS_CLI, "--cluster", "create"] + ["127.0.0.1:%d" % p.port for p in procs]
                           + ["--cluster-yes"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        while True:
            views = [view(p.port) for p in procs]
            if all(v == views[0] and len(v) == nodes for v in views) and all(
                    "cluster_state:ok" in cli(p.port, "cluster", "info") for p in procs):
                break
            time.sleep(0.02)
        create = time.monotonic() - t0
        victim = procs[-1]
        vid = cli(victim.port, "cluster", "myid").strip()
        victim.kill9()
        t0 = time.monotonic()
        while True:
            ok = True
            for p in procs[:-1]:
                flags = [f.split()[2] for f in cli(p.port, "cluster", "nodes").splitlines() if f.startswith(vid)]
                if not flags or "fail" not in flags[0].split(","):
                    ok = False
                    break
            if ok:
                break
            time.sleep(0.02)
        fail = time.monotonic() - t0
        return create, fail
    finally:
        for p in procs:
            p.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--node-timeout", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    res = {"frtrio": [], "redis": []}
    for r in range(a.rounds):
        order = ["frtrio", "redis"] if r % 2 == 0 else ["redis", "frtrio"]
        for kind in order:
            res[kind].append(run_once(kind, a.nodes, a.node_timeout))
    lines = ["cluster timing: %d masters, cluster-node-timeout %d ms, %d rounds (median)"
             % (a.nodes, a.node_timeout, a.rounds),
             "%-8s %12s %12s   %s" % ("server", "create (s)", "kill->FAIL (s)", "all rounds (create / fail)")]
    med = {}
    for kind, vals in res.items():
        cs = sorted(v[0] for v in vals)
        fs = sorted(v[1] for v in vals)
        med[kind] = (cs[len(cs) // 2], fs[len(fs) // 2])
        lines.append("%-8s %12.2f %12.2f   %s / %s" % (
            kind, med[kind][0], med[kind][1], " ".join("%.2f" % v[0] for v in vals),
            " ".join("%.2f" % v[1] for v in vals)))
    lines.append("ratio frtrio/redis: create %.2f, fail %.2f" % (
        med["frtrio"][0] / med["redis"][0], med["frtrio"][1] / med["redis"][1]))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.join(os.path.dirname(__file__), "..", "artifacts"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "..", "artifacts", "cluster-timing.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
