"""``frtrio sim ...``: list, run, replay, explore and timeline.

    frtrio sim list
    frtrio sim run --scenario NAME --seed N [--param K=V ...] [--node-class MOD:CLASS] [--log FILE]
    frtrio sim replay FILE
    frtrio sim explore --scenario NAME --seeds A..B [--param K=V ...] [--jobs J] [--save-logs DIR]
    frtrio sim timeline FILE -o timeline.html

Exit status: 0 when every run held its invariants (and a replay matched),
1 when a violation was found (or a replay differed), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _params(items) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit("frtrio sim: --param wants KEY=VALUE, got %r" % it)
        k, v = it.split("=", 1)
        out[k.strip()] = v
    return out


def _seeds(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        part = part.strip()
        if ".." in part:
            a, b = part.split("..", 1)
            out.extend(range(int(a), int(b) + 1))
        elif "-" in part[1:]:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frtrio sim", description="deterministic simulation")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the scenarios and their parameters")

    def common(sp):
        sp.add_argument("--scenario", required=True)
        sp.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        sp.add_argument("--node-class", default=None, metavar="MODULE:CLASS",
                        help="run this Node subclass instead of frtrio's Node")

    r = sub.add_parser("run", help="run one scenario on one seed")
    common(r)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--log", default=None, help="write the JSONL event log here")
    r.add_argument("--quiet", action="store_true")

    rp = sub.add_parser("replay", help="re-run a logged run and compare the logs byte for byte")
    rp.add_argument("file")

    e = sub.add_parser("explore", help="run a scenario over many seeds")
    common(e)
    e.add_argument("--seeds", required=True, help="A..B (inclusive), or a comma list")
    e.add_argument("--jobs", type=int, default=1, help="worker processes (fork)")
    e.add_argument("--save-logs", default=None, metavar="DIR",
                   help="write the event log of every violating seed into DIR")
    e.add_argument("--stop-after", type=int, default=0, metavar="K",
                   help="stop after K violating seeds")

    t = sub.add_parser("timeline", help="render an event log as self-contained HTML")
    t.add_argument("file")
    t.add_argument("-o", "--output", default="timeline.html")
    return p


def sim_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # a --node-class from the current directory (tests, experiments) must import
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else 2
    try:
        if args.cmd == "list":
            return _cmd_list()
        if args.cmd == "run":
            return _cmd_run(args)
        if args.cmd == "replay":
            return _cmd_replay(args.file)
        if args.cmd == "explore":
            return _cmd_explore(args)
        if args.cmd == "timeline":
            from frtrio.sim.timeline import render_file

            n = render_file(args.file, args.output)
            print("wrote %s (%d events)" % (args.output, n))
            return 0
    except KeyError as e:
        sys.stderr.write("frtrio sim: %s\n" % (e.args[0] if e.args else e))
        return 2
    return 2


def _cmd_list() -> int:
    from frtrio.sim.scenario import all_scenarios

    for s in all_scenarios():
        params = " ".join("%s=%s" % kv for kv in s.defaults.items())
        tags = (" [%s]" % ",".join(s.tags)) if s.tags else ""
        print("%-18s %s%s" % (s.name, s.description, tags))
        if params:
            print("%-18s   params: %s" % ("", params))
    return 0


def _describe(v: dict) -> str:
    d = v.get("detail", {})
    where = (" on %s" % v["node"]) if v.get("node") else ""
    return "%s%s at %s: %s" % (v["reason_code"], where, v["ts_utc"][11:], d.get("message", ""))


def _cmd_run(args) -> int:
    from frtrio.sim.scenario import run_scenario

    params = _params(args.param)
    fh = open(args.log, "w", encoding="ascii", newline="\n") if args.log else None
    try:
        r = run_scenario(args.scenario, args.seed, params, node_class=args.node_class,
                         log_file=fh)
    finally:
        if fh is not None:
            fh.close()
    speed = r.virtual_s / r.wall_s if r.wall_s > 0 else 0.0
    status = "OK" if r.ok else "VIOLATION"
    print("%s seed %d: %s  %d ops, %d faults, %d events; %.3f virtual s in %.3f s (%.1fx); "
          "fingerprint %s" % (r.scenario, r.seed, status, r.ops, r.faults, r.events,
                              r.virtual_s, r.wall_s, speed, r.fingerprint[:16]))
    if not args.quiet and r.summary:
        print("  summary: %s" % json.dumps(r.summary, sort_keys=True))
    for v in r.violations:
        print("  " + _describe(v))
    if r.violations:
        print("  replay: %s --log %s" % (r.replay_cmd, args.log or "run.jsonl"))
    return 0 if r.ok else 1


def _cmd_replay(path: str) -> int:
    from frtrio.core.events import parse_line
    from frtrio.sim import sched
    from frtrio.sim.scenario import run_scenario

    with open(path, "rb") as f:
        original = f.read()
    first = original.split(b"\n", 1)[0].decode("ascii")
    head = parse_line(first)
    if head["event"] != "sim.start":
        sys.stderr.write("%s: first record is %s, not sim.start\n" % (path, head["event"]))
        return 2
    d = head["detail"]
    now = sched.versions()
    for k in ("trio", "python"):
        if d.get(k) != now[k]:
            sys.stderr.write("warning: the log was made with %s %s, this is %s %s; schedules "
                             "differ between versions\n" % (k, d.get(k), k, now[k]))
    r = run_scenario(d["scenario"], d["seed"], d.get("args") or {},
                     node_class=d.get("node_class") or None, keep_lines=True)
    new = "".join(r.lines).encode("ascii")
    if new == original:
        print("replay identical: %s seed %d, %d events, %d bytes, fingerprint %s%s"
              % (d["scenario"], d["seed"], r.events, len(new), r.fingerprint[:16],
                 "" if r.ok else " (the run's %d violation(s) reproduced)" % len(r.violations)))
        return 0
    a = original.decode("ascii").splitlines()
    b = new.decode("ascii").splitlines()
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<end of log>"
        y = b[i] if i < len(b) else "<end of log>"
        if x != y:
            print("replay DIFFERS at line %d:\n  recorded: %s\n  replayed: %s" % (i + 1, x, y))
            break
    return 1


def _explore_one(job):
    name, seed, params, node_class = job
    from frtrio.sim.scenario import run_scenario

    try:
        r = run_scenario(name, seed, params, node_class=node_class, log_ops=None)
    except Exception as e:  # noqa: BLE001 - report it with its replay command
        from frtrio.sim.scenario import replay_command

        msg = "sim.run_crashed: %s: %s" % (type(e).__name__, e)
        return {"seed": seed, "ok": False, "violations": [msg], "codes": ["sim.run_crashed"],
                "ops": 0, "wall": 0.0, "virtual": 0.0, "fingerprint": "",
                "replay": replay_command(name, seed, params, node_class)}
    return {
        "seed": seed, "ok": r.ok, "violations": [_describe(v) for v in r.violations],
        "codes": sorted({v["reason_code"] for v in r.violations}), "ops": r.ops,
        "wall": r.wall_s, "virtual": r.virtual_s, "replay": r.replay_cmd,
        "fingerprint": r.fingerprint,
    }


def _cmd_explore(args) -> int:
    from frtrio.sim.scenario import get, resolve_params

    params = _params(args.param)
    resolve_params(get(args.scenario), params)  # fail early on a bad parameter
    seeds = _seeds(args.seeds)
    jobs = [(args.scenario, s, params, args.node_class) for s in seeds]
    t0 = time.perf_counter()
    last = t0
    bad = []
    done = 0
    ops = 0
    virtual = 0.0
    err = sys.stderr

    def results():
        if args.jobs > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork")
            with ctx.Pool(args.jobs) as pool:
                yield from pool.imap(_explore_one, jobs)
        else:
            for j in jobs:
                yield _explore_one(j)

    for res in results():
        done += 1
        ops += res["ops"]
        virtual += res["virtual"]
        if not res["ok"]:
            bad.append(res)
            err.write("[explore] seed %d: VIOLATION %s\n" % (res["seed"], ", ".join(res["codes"])))
        now = time.perf_counter()
        if now - last >= 1.0 or done == len(jobs):
            last = now
            err.write("[explore] %d/%d seeds, %d violating, %.1f seeds/s\n"
                      % (done, len(jobs), len(bad), done / max(now - t0, 1e-9)))
            err.flush()
        if args.stop_after and len(bad) >= args.stop_after:
            break
    wall = time.perf_counter() - t0
    print("explored %s: %d seeds in %.2f s (%.1f seeds/s, %d ops, %.1f virtual s, %.0fx), "
          "%d violating" % (args.scenario, done, wall, done / max(wall, 1e-9), ops, virtual,
                            virtual / max(wall, 1e-9), len(bad)))
    if args.save_logs and bad:
        os.makedirs(args.save_logs, exist_ok=True)
    for res in bad:
        logname = "sim-%s-%d.jsonl" % (args.scenario, res["seed"])
        if args.save_logs:
            from frtrio.sim.scenario import run_scenario

            logname = os.path.join(args.save_logs, logname)
            with open(logname, "w", encoding="ascii", newline="\n") as fh:
                run_scenario(args.scenario, res["seed"], params, node_class=args.node_class,
                             log_file=fh)
        print("seed %d: %s" % (res["seed"], "; ".join(res["violations"][:3])))
        print("  replay: %s --log %s" % (res["replay"], logname))
    return 1 if bad else 0
