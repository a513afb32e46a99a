#!/usr/bin/env python3
"""Cluster timing, frtrio and redis-server side by side.

For an all-frtrio cluster and an all-redis-server cluster with the same node
timeout, measures:
  * create: from the start of `redis-cli --cluster create` to every node
    reporting cluster_state:ok with the same CLUSTER NODES view;
  * fail:   from kill -9 of one master to every other node flagging it `fail`;
  * failover: on a cluster of 3 masters with 1 replica each (`--cluster-replicas
    1`), from kill -9 of one master to its replica being a master AND every
    surviving node giving the replica as the owner of all the dead master's
    slots in CLUSTER SLOTS, with cluster_state:ok everywhere.
Prints a table (medians and every round) and writes it, with the command
line on top, to artifacts/cluster-timing.txt.

Usage: scripts/cluster_timing.py [--nodes 3] [--node-timeout 3000] [--rounds 2]
                                 [--failover-rounds 5]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from support import REDIS_CLI, RawConn, ServerProc, parse_reply  # noqa: E402


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


def _q(conn, *args):
    return parse_reply(conn.cmd(*args))


def failover_once(kind, node_timeout):
    """Seconds from kill -9 of a master to its replica owning the slots in
    every survivor's CLUSTER SLOTS, with cluster_state:ok everywhere."""
    procs = [ServerProc(kind, ["--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout)]).start()
             for _ in range(6)]
    conns = []
    try:
        r = subprocess.run([REDIS_CLI, "--cluster", "create"] + ["127.0.0.1:%d" % p.port for p in procs]
                           + ["--cluster-replicas", "1", "--cluster-yes"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        conns = [RawConn(p.port) for p in procs]
        deadline = time.monotonic() + 60
        while True:  # every node ok with one view, every replica's link up
            views = [view(p.port) for p in procs]
            ok = all(v == views[0] and len(v) == 6 for v in views) and all(
                b"cluster_state:ok" in _q(c, "cluster", "info") for c in conns)
            roles = [_q(c, "role") for c in conns]
            ok = ok and all(ro[3] == b"connected" for ro in roles if ro[0] == b"slave")
            if ok:
                break
            assert time.monotonic() < deadline, "cluster did not settle"
            time.sleep(0.05)
        victim = next(i for i, ro in enumerate(roles) if ro[0] == b"master")
        replica = next(i for i, ro in enumerate(roles)
                       if ro[0] == b"slave" and ro[2] == procs[victim].port)
        ranges = [(e[0], e[1]) for e in _q(conns[victim], "cluster", "slots")
                  if e[2][1] == procs[victim].port]
        assert ranges
        vid = _q(conns[victim], "cluster", "myid").decode()
        procs[victim].kill9()
        t0 = time.monotonic()
        t_fail = None
        survivors = [c for i, c in enumerate(conns) if i != victim]
        while True:
            if t_fail is None:
                for ln in _q(conns[replica], "cluster", "nodes").decode().splitlines():
                    if ln.startswith(vid) and "fail" in ln.split()[2].split(","):
                        t_fail = time.monotonic() - t0
            done = _q(conns[replica], "role")[0] == b"master"
            for c in survivors if done else ():
                owners = {(e[0], e[1]): e[2][1] for e in _q(c, "cluster", "slots")}
                if any(owners.get(rg) != procs[replica].port for rg in ranges) or \
                        b"cluster_state:ok" not in _q(c, "cluster", "info"):
                    done = False
                    break
            if done:
                break
            assert time.monotonic() - t0 < 120, "no failover"
            time.sleep(0.01)
        total = time.monotonic() - t0
        return total, (t_fail if t_fail is not None else total)
    finally:
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        for p in procs:
            p.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--node-timeout", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--failover-rounds", type=int, default=5)
    a = ap.parse_args()
    res = {"frtrio": [], "redis": []}
    fo = {"frtrio": [], "redis": []}
    for r in range(a.rounds):
        order = ["frtrio", "redis"] if r % 2 == 0 else ["redis", "frtrio"]
        for kind in order:
            res[kind].append(run_once(kind, a.nodes, a.node_timeout))
    for r in range(a.failover_rounds):
        order = ["frtrio", "redis"] if r % 2 == 0 else ["redis", "frtrio"]
        for kind in order:
            fo[kind].append(failover_once(kind, a.node_timeout))
            print("failover %s round %d: %.2f s (FAIL at %.2f)" % ((kind, r + 1) + fo[kind][-1]),
                  file=sys.stderr)
    lines = ["$ " + " ".join(["scripts/cluster_timing.py"] + sys.argv[1:]),
             "cluster timing: %d masters, cluster-node-timeout %d ms, %d rounds (median)"
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
    if a.failover_rounds:
        lines.append("")
        lines.append("failover: 3 masters + 3 replicas (--cluster-replicas 1), cluster-node-timeout %d ms, "
                     "%d rounds (median); kill -9 of a master -> its replica is master and every "
                     "survivor has it as the owner of the slots, cluster_state:ok"
                     % (a.node_timeout, a.failover_rounds))
        lines.append("(kill->FAIL: the replica flags its master fail; FAIL->agreed: the rest, i.e. "
                     "election delay, votes, promotion, every survivor's view)")
        lines.append("%-8s %12s %12s %14s   %s" % ("server", "failover (s)", "kill->FAIL", "FAIL->agreed",
                                                  "all rounds (total / FAIL->agreed)"))
        fmed = {}
        for kind, vals in fo.items():
            def med_of(xs):
                xs = sorted(xs)
                return xs[len(xs) // 2]
            fmed[kind] = (med_of(v[0] for v in vals), med_of(v[1] for v in vals),
                          med_of(v[0] - v[1] for v in vals))
            lines.append("%-8s %12.2f %12.2f %14.2f   %s / %s" % (
                kind, fmed[kind][0], fmed[kind][1], fmed[kind][2],
                " ".join("%.2f" % v[0] for v in vals), " ".join("%.2f" % (v[0] - v[1]) for v in vals)))
        lines.append("ratio frtrio/redis: failover %.2f, kill->FAIL %.2f, FAIL->agreed %.2f" % tuple(
            fmed["frtrio"][i] / fmed["redis"][i] for i in range(3)))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.join(os.path.dirname(__file__), "..", "artifacts"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "..", "artifacts", "cluster-timing.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
