#!/usr/bin/env python3
"""Speed of the simulator (issue 15): busy clusters and seeds per second.

    PYTHONPATH=$PWD python3 scripts/bench_sim.py                 # everything below
    PYTHONPATH=$PWD python3 scripts/bench_sim.py --busy-only --duration 60 --short 20
    PYTHONPATH=$PWD python3 scripts/bench_sim.py --seeds 5 --scenarios cluster-faults,asm-faults
    PYTHONPATH=$PWD python3 scripts/bench_sim.py --busy-only --param driven=no   # client tasks
    PYTHONPATH=$PWD python3 scripts/bench_sim.py --instructions cluster-load     # (d): valgrind
    PYTHONPATH=$PWD python3 scripts/bench_sim.py --instructions cluster-load --annotate 30

(a) the busy scenarios, one seed each: ``cluster-load`` (6 cluster masters,
    100 clients per node, each doing about 1 op/s of SET/GET routed by slot)
    and ``standalone-load`` (the same load on 6 standalone nodes; both serve
    clients and nodes' connections from the clock unless ``--param
    driven=no`` / ``--param driven_nodes=no``), each with a
    30 and a 10 virtual s load phase. Reported
    for the load phase only (after the cluster formed, until the clients are
    told to stop): virtual seconds per CPU second of this process ("x real
    time") and CPU microseconds per request (everything the run did in that
    phase, nodes' crons and bus included, divided by the requests made); and
    the steady state: the difference of the two runs, which leaves out the
    first seconds, when every client opens its connections (a cluster client
    one per node it talks to).
(b) seeds per second for the cluster scenarios of ``frtrio sim list``
    (cluster-faults, cluster-failover, failover-partitions, asm-faults,
    cluster-idle), one process, seeds 1..N, with
    their default parameters; also whether every run held its invariants.

(c) the floor: the simulator's own cost per request (network, timers,
    Trio's run loop) with a bare echo task instead of a node, with client
    tasks, with clients driven from the clock (as the busy scenarios'
    clients are unless ``--param driven=no``), and with the echo also served
    from the clock (as the busy scenarios' nodes are unless ``--param
    driven_nodes=no``).

CPU time is this process's (time.process_time), which other jobs on the
machine disturb less than wall time; both are printed.

(d) ``--instructions``: machine instructions per steady-state request of a
    busy scenario, counted by valgrind's cachegrind (needs ``valgrind``;
    about a minute and a half on two cores): the load phase of ``--short``
    virtual s and of twice that, run side by side, their difference divided
    by the difference of their requests. A run is a function of its seed,
    so the count repeats to a few parts in ten thousand whatever else the
    machine does: the way to compare two versions of the code on a shared
    machine, where CPU seconds vary by 20 % from one run to the next. It
    counts instructions, not time: cache misses, which a cold request has
    many of, are not in it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BUSY = [("cluster-load", {}), ("standalone-load", {})]
SEEDED = [
    ("cluster-faults", {}),
    ("cluster-failover", {}),
    ("failover-partitions", {}),
    ("asm-faults", {}),
    ("cluster-idle", {}),
]


def _load_phase(name: str, params: dict, seed: int):
    import gc

    from frtrio.sim.scenario import run_scenario

    # the worlds of earlier runs are cyclic garbage until a full collection
    # (about 130 000 objects each for cluster-load): collected now, not in
    # the middle of the run being measured, whose time it would add to
    gc.collect()
    c0 = time.process_time()
    r = run_scenario(name, seed, params)
    cpu = time.process_time() - c0
    (c_a, ops_a, v_a), (c_b, ops_b, v_b) = r.phase_marks["load_start"], r.phase_marks["load_end"]
    return r, cpu, v_b - v_a, ops_b - ops_a, c_b - c_a


def busy(name: str, params: dict, seed: int, short: float | None) -> str:
    """One run with the given load phase; with ``short``, a second run whose
    load phase is ``short`` virtual seconds, and the steady state from the
    difference (the first seconds of a run open every client's connections:
    a cluster client one per node)."""
    r, cpu, vs, ops, load_cpu = _load_phase(name, params, seed)
    out = ("%-16s seed %d %s: load phase %.1f virtual s, %d requests, %.2f CPU s -> %.1fx real "
           "time, %.0f us CPU/request; whole run %.1f virtual s in %.2f CPU s (%.2f wall s), %s, "
           "fingerprint %s" % (name, seed, _p(params), vs, ops, load_cpu,
                               vs / load_cpu if load_cpu else 0.0,
                               load_cpu / ops * 1e6 if ops else 0.0, r.virtual_s, cpu, r.wall_s,
                               "ok" if r.ok else "VIOLATION " + r.violations[0]["reason_code"],
                               r.fingerprint[:16]))
    if short:
        p2 = dict(params, duration=str(short))
        _r2, _cpu2, vs2, ops2, load_cpu2 = _load_phase(name, p2, seed)
        dv, dops, dcpu = vs - vs2, ops - ops2, load_cpu - load_cpu2
        if dops > 0 and dcpu > 0:
            out += ("\n%-16s   steady state (load phase %.0f s minus %.0f s): %d requests in %.2f "
                    "CPU s -> %.1fx real time, %.0f us CPU/request"
                    % ("", vs, vs2, dops, dcpu, dv / dcpu, dcpu / dops * 1e6))
    return out


def seeded(name: str, params: dict, n: int) -> str:
    from frtrio.sim.scenario import run_scenario

    c0 = time.process_time()
    w0 = time.perf_counter()
    bad = 0
    virtual = 0.0
    for seed in range(1, n + 1):
        r = run_scenario(name, seed, params, log_ops=None)
        bad += not r.ok
        virtual += r.virtual_s
    cpu = time.process_time() - c0
    wall = time.perf_counter() - w0
    return ("%-20s %s%d seeds: %.3f seeds/CPU s (%.2f CPU s/seed, %.1f virtual s/seed, "
            "%.1fx real time), %.3f seeds/wall s, %d violating"
            % (name, _p(params), n, n / cpu, cpu / n, virtual / n, virtual / cpu, n / wall, bad))


def floor(requests: int = 20000, clients: int = 600, driven: bool = False,
          served: bool = False) -> str:
    """The simulator's own cost per request, without a node or a workload:
    ``clients`` clients on the simulated network, each waiting a think time
    (0.5-1.5 virtual s), sending a PING and reading the reply, which a bare
    echo task sends back with ``try_send`` as the node does. As tasks: three
    timed wake-ups per request; ``driven``: clients driven from the clock
    as the scenarios' are (``SimClient.call_nowait``: callbacks, no task),
    one task wake-up per request (the echo task's); ``served`` too: the
    echo loop is a generator fed from the clock (``serve_from_clock``, as
    the busy scenarios' nodes are), no task wake-up at all. The part of a
    request the node cannot change."""
    import math
    import random

    import trio

    from frtrio.sim import sched
    from frtrio.sim.net import SimNet

    done = [0]

    async def main():
        clock = trio.lowlevel.current_clock()
        net = SimNet(random.Random(1), latency=(0.0002, 0.001), clock=clock)
        lst = net.listen("h", 1, "bench")
        rng = random.Random(2)
        async with trio.open_nursery() as n:
            async def serve(s):
                if served:
                    def echo():
                        while (yield 65536):
                            s.try_send(b"+PONG\r\n")

                    steps = echo()
                    req = next(steps)
                    while True:
                        req = await s.serve_from_clock(steps, req)
                        if req is None:
                            return
                        req = steps.send(await s.receive_some(req))  # (not in this bench)
                while await s.receive_some(65536):
                    s.try_send(b"+PONG\r\n")

            async def accept():
                while True:
                    conn = await lst.accept(net)
                    n.start_soon(serve, conn.server)

            async def client(i):
                s = await net.connect("c%d" % i, "h", 1)
                while done[0] < requests:
                    await sched.park(clock._now + rng.uniform(0.5, 1.5), None, clock)
                    s.send_nowait(b"*1\r\n$4\r\nPING\r\n")
                    await s.receive_some(65536)
                    done[0] += 1
                n.cancel_scope.cancel()

            class Driven:
                __slots__ = ("s", "waiter")

                def __init__(self, s):
                    self.s = s
                    self.waiter = None

                def think(self):
                    if done[0] >= requests:
                        n.cancel_scope.cancel()
                        return
                    self.s.try_send(b"*1\r\n$4\r\nPING\r\n")
                    self.s.arm_receive(self.reply)

                def reply(self):
                    if not self.s.receive_nowait(65536):
                        self.s.arm_receive(self.reply)
                        return
                    done[0] += 1
                    sched.arm(self, self.think, clock._now + rng.uniform(0.5, 1.5), clock)

            n.start_soon(accept)
            if driven:
                for i in range(clients):
                    d = Driven(await net.connect("c%d" % i, "h", 1))
                    sched.arm(d, d.think, clock._now + rng.uniform(0.5, 1.5), clock)
                await trio.sleep(math.inf)
            for i in range(clients):
                n.start_soon(client, i)

    c0 = time.process_time()
    sched.run(main, seed=1)
    cpu = time.process_time() - c0
    how = ("clients and the echo served from the clock" if served
           else "clients driven from the clock" if driven else "client tasks")
    return ("sim floor        %d %s, %d requests (network + timers + scheduler, no node): "
            "%.1f us CPU/request" % (clients, how, done[0], cpu / done[0] * 1e6))


def _one_run(name: str, seed: int, params: dict) -> None:
    """(--instructions' child) One run; prints its load-phase requests."""
    from frtrio.sim.scenario import run_scenario

    r = run_scenario(name, seed, params)
    print("requests %d" % (r.phase_marks["load_end"][1] - r.phase_marks["load_start"][1]))


def instructions(name: str, params: dict, seed: int, short: float, annotate: int = 0) -> str:
    """Instructions per steady-state request (cachegrind; see (d)); with
    ``annotate``, also the C functions that executed most of them (the
    interpreter's own, the allocator's, the C extensions'...)."""
    import re
    import shutil
    import tempfile

    vg = shutil.which("valgrind")
    if vg is None:
        return "%-16s instructions: valgrind is not installed" % name
    tmp = tempfile.mkdtemp(prefix="bench-sim-cg-")
    outs = [os.path.join(tmp, "cg.%d" % i) if annotate else "/dev/null" for i in (1, 2)]
    procs = []
    for d, out_file in zip((short, 2 * short), outs):
        p = dict(params, duration=str(d))
        cmd = [vg, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=" + out_file,
               sys.executable, os.path.abspath(__file__), "--one-run", name, "--seed", str(seed)]
        cmd += ["--param=%s=%s" % kv for kv in p.items()]
        env = dict(os.environ, PYTHONHASHSEED="0")
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    got = []
    for pr in procs:
        out, err = pr.communicate()
        m = re.search(r"requests (\d+)", out)
        i = re.search(r"I\s+refs:\s+([\d,]+)", err)
        if pr.returncode or not m or not i:
            return "%-16s instructions: a run failed:\n%s" % (name, (out + err)[-2000:])
        got.append((int(m.group(1)), int(i.group(1).replace(",", ""))))
    (n1, i1), (n2, i2) = got
    line = ("%-16s seed %d %s: %.0f instructions per steady-state request (load phase %g s "
            "minus %g s: %d requests)" % (name, seed, _p(params), (i2 - i1) / (n2 - n1),
                                          2 * short, short, n2 - n1))
    if annotate:
        line += "\n" + _top_functions(outs, n2 - n1, annotate)
    shutil.rmtree(tmp, ignore_errors=True)
    return line


def _top_functions(outs: list, requests: int, n: int) -> str:
    """The ``n`` C functions with the most instructions per steady-state
    request: the longer run's cachegrind counts minus the shorter's
    (``cg_diff``, then ``cg_annotate``'s function table)."""
    import re

    diff = outs[1] + ".diff"
    with open(diff, "w") as f:
        r = subprocess.run(["cg_diff", outs[0], outs[1]], stdout=f, stderr=subprocess.PIPE,
                           text=True)
    if r.returncode:
        return "  (cg_diff failed: %s)" % r.stderr.strip()[-300:]
    table = subprocess.run(["cg_annotate", "--auto=no", diff], capture_output=True,
                           text=True).stdout
    rows = []
    for ln in table.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S+):(\S+)", ln)
        if m and m.group(3) != "PROGRAM":
            where = m.group(3).rsplit("/", 2)
            rows.append("  %8.0f %5s%%  %s (%s)" % (
                int(m.group(1).replace(",", "")) / requests, m.group(2), m.group(4),
                "/".join(where[-2:])))
    return "\n".join(rows[:n]) or "  (cg_annotate printed no function table)"


def _p(params: dict) -> str:
    return "".join("%s=%s " % kv for kv in sorted(params.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0,
                    help="load phase of the busy scenarios (virtual s; default 30)")
    ap.add_argument("--short", type=float, default=10.0,
                    help="load phase of the second busy run (steady state = the difference; 0: none)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the busy runs")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per cluster scenario (1..N)")
    ap.add_argument("--scenarios", default=None,
                    help="comma list of scenarios for (b) (default: the cluster ones)")
    ap.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="a parameter of the busy scenarios (e.g. driven=no: client tasks)")
    ap.add_argument("--busy-only", action="store_true")
    ap.add_argument("--seeds-only", action="store_true")
    ap.add_argument("--instructions", metavar="SCENARIO", default=None,
                    help="instructions per steady-state request of a busy scenario "
                         "(cachegrind; --short sets the shorter load phase, default 10 s)")
    ap.add_argument("--annotate", type=int, default=0, metavar="N",
                    help="with --instructions: the N C functions that executed the most "
                         "instructions per steady-state request (cg_diff, cg_annotate)")
    ap.add_argument("--one-run", metavar="SCENARIO", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in a.param)
    if a.one_run:
        _one_run(a.one_run, a.seed, extra)
        return 0
    if a.instructions:
        print(instructions(a.instructions, extra, a.seed, a.short or 10.0, a.annotate),
              flush=True)
        return 0
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        git = "?"
    print("# %s  git %s  python %d.%d.%d  load %s" % (
        time.strftime("%Y-%m-%dT%H:%M:%S"), git, *sys.version_info[:3],
        " ".join("%.2f" % x for x in os.getloadavg())))
    if not a.seeds_only:
        print(floor(), flush=True)
        print(floor(driven=True), flush=True)
        print(floor(driven=True, served=True), flush=True)
        for name, params in BUSY:
            p = dict(params, duration=str(a.duration), **extra)
            print(busy(name, p, a.seed, a.short), flush=True)
    if not a.busy_only:
        todo = SEEDED
        if a.scenarios:
            want = a.scenarios.split(",")
            todo = [(n, p) for n, p in SEEDED if n in want] + [
                (n, {}) for n in want if n not in dict(SEEDED)]
        for name, params in todo:
            print(seeded(name, params, a.seeds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
