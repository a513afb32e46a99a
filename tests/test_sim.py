"""Whole simulated runs: determinism, the scenario library, the invariant
checkers (each shown to catch what it is for), the CLI and speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import trio

from frtrio.core.events import read_events, validate
from frtrio.runtime.node import Node
from frtrio.sim.cli import sim_main
from frtrio.sim.scenario import all_scenarios, run_scenario

HERE = os.path.dirname(os.path.abspath(__file__))


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# --- determinism -------------------------------------------------------------------------


def test_same_seed_same_log_in_one_process():
    a = run_scenario("mixed-faults", 7, keep_lines=True)
    b = run_scenario("mixed-faults", 7, keep_lines=True)
    assert a.lines == b.lines and a.fingerprint == b.fingerprint
    assert a.faults > 0 and a.ops > 100


def test_different_seeds_different_logs():
    prints = {run_scenario("aof-kill-always", s).fingerprint for s in range(1, 6)}
    assert len(prints) == 5


def test_same_seed_two_processes_different_hash_seeds_byte_identical(tmp_path):
    logs = []
    for hs in ("1", "2"):
        log = tmp_path / ("run-%s.jsonl" % hs)
        p = subprocess.run(
            ["frtrio", "sim", "run", "--scenario", "mixed-faults", "--seed", "11", "--log",
             str(log)], capture_output=True, text=True, env=_env(PYTHONHASHSEED=hs), timeout=120,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        logs.append(log.read_bytes())
    assert logs[0] == logs[1]
    assert len(logs[0]) > 10_000
    for line in logs[0].decode().splitlines()[:50]:
        assert validate(json.loads(line)) == []


# --- scenario library ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smoke", "aof-kill-always", "blocked-clients",
                                  "multi-disconnect", "mixed-faults", "debug-sleep"])
def test_scenario_holds_its_invariants(name):
    r = run_scenario(name, 3)
    assert r.ok, [v["detail"].get("message") for v in r.violations]
    assert r.ops > 50


def test_cluster_scenario_converges_after_faults():
    r = run_scenario("cluster-faults", 2, {"duration": 4.0})
    assert r.ok, [v["detail"].get("message") for v in r.violations]
    assert r.summary["formed_at"] is not None and r.summary["redirects"] > 0
    assert r.faults > 0


def test_cluster_load_scenario_routes_by_slot_and_stays_converged():
    """The busy-cluster benchmark, small: clients reach every master through
    their slot map (no MOVED once formed), the cluster stays converged with
    distinct configEpochs, and a seed names one run."""
    a = run_scenario("cluster-load", 5, {"clients": 10, "duration": 3.0, "log_ops": True},
                     keep_lines=True)
    assert a.ok, [v["detail"].get("message") for v in a.violations]
    assert a.ops > 100 and a.op_errors == 0 and a.summary["redirects"] == 0
    b = run_scenario("cluster-load", 5, {"clients": 10, "duration": 3.0, "log_ops": True},
                     keep_lines=True)
    assert a.lines == b.lines
    start, end = a.phase_marks["load_start"], a.phase_marks["load_end"]
    assert end[2] - start[2] == 3.0 and end[1] - start[1] > 100


def test_scenarios_have_unique_names_and_descriptions():
    names = [s.name for s in all_scenarios()]
    assert len(names) == len(set(names)) >= 6
    assert all(s.description for s in all_scenarios())


def test_blocked_clients_use_blpop_and_get_dropped():
    r = run_scenario("blocked-clients", 4)
    assert r.ok
    assert r.summary["blpop"] and r.summary["popped"] > 20 and r.summary["pop_unknown"] > 0


def test_everysec_loses_acknowledged_writes_on_power_loss():
    """The checker only promises durability under appendfsync always: with
    everysec, crashes that lose the unsynced tail do lose acknowledged writes
    (Redis's documented trade-off), which shows the crash model bites."""
    lost = 0
    for seed in range(1, 6):
        r = run_scenario("aof-kill-always", seed, {"appendfsync": "everysec"})
        assert r.ok
        lost += r.summary["lost_without_durability"]
    assert lost > 0


# --- the checkers catch what they are for ----------------------------------------------------


class LeakyNode(Node):
    """Spawns a task into a nursery it does not own (test only)."""

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED):
        from frtrio.sim.world import CURRENT_NODE

        world = self.env.world
        if CURRENT_NODE.get()[1] == 1:
            world.nursery.start_soon(trio.sleep_forever)
        await super().run(task_status=task_status)


class ForgetfulNode(Node):
    """Never answers a blocking command's timeout (test only)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.server.blocking.timeout = lambda c: None


class CrashingNode(Node):
    """Its cron raises after half a second (test only)."""

    async def _cron(self):
        await trio.sleep(0.5)
        raise RuntimeError("boom")


def test_node_crash_is_reported():
    r = run_scenario("smoke", 1, node_class="test_sim:CrashingNode")
    crash = [v for v in r.violations if v["reason_code"] == "sim.node_crashed"]
    assert crash and "boom" in crash[0]["detail"]["message"]


def test_task_leak_is_reported():
    r = run_scenario("smoke", 1, node_class="test_sim:LeakyNode")
    codes = [v["reason_code"] for v in r.violations]
    assert "sim.task_leaked" in codes
    leak = next(v for v in r.violations if v["reason_code"] == "sim.task_leaked")
    assert "trio" in json.dumps(leak["detail"]["tasks"])


def test_client_blocked_forever_is_reported():
    r = run_scenario("blocked-clients", 2, node_class="test_sim:ForgetfulNode")
    codes = {v["reason_code"] for v in r.violations}
    assert "sim.client_blocked_forever" in codes


def test_debug_sleep_pause_is_checked(monkeypatch):
    """DEBUG SLEEP pauses the whole node on virtual time; a pause that only
    sleeps the calling task is caught by the scenario's check."""
    from frtrio.sim.env import SimEnv

    r = run_scenario("debug-sleep", 1)
    assert r.ok and r.virtual_s > 1.9 and r.wall_s < r.virtual_s

    async def task_only_pause(self, seconds):
        await trio.sleep(seconds)

    monkeypatch.setattr(SimEnv, "pause", task_only_pause)
    r = run_scenario("debug-sleep", 1)
    assert "sim.pause_not_honoured" in {v["reason_code"] for v in r.violations}


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_list(capsys):
    assert sim_main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("aof-kill-always", "blocked-clients", "multi-disconnect", "standalone-load"):
        assert name in out


def test_cli_run_replay_and_timeline(tmp_path, capsys):
    log = tmp_path / "run.jsonl"
    assert sim_main(["run", "--scenario", "blocked-clients", "--seed", "3", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "fingerprint" in out
    events = read_events(str(log))
    assert events[0]["event"] == "sim.start" and events[-1]["event"] == "sim.end"
    assert {e["event"] for e in events} >= {"client.op", "fault.drop", "node.ready"}
    assert all(e["replay_cmd"] == "frtrio sim run --scenario blocked-clients --seed 3"
               for e in events)
    assert sim_main(["replay", str(log)]) == 0
    assert "replay identical" in capsys.readouterr().out
    # a changed log does not replay
    lines = log.read_text().splitlines(True)
    i = next(k for k, line in enumerate(lines) if '"event":"client.op"' in line)
    lines[i] = lines[i].replace('"outcome":"ok"', '"outcome":"error"', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))
    assert sim_main(["replay", str(bad)]) == 1
    assert "DIFFERS at line %d" % (i + 1) in capsys.readouterr().out
    html_path = tmp_path / "t.html"
    assert sim_main(["timeline", str(log), "-o", str(html_path)]) == 0
    html = html_path.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert ">n1</text>" in html and ">sim</text>" in html  # one lane per node


def test_cli_params_and_errors(capsys):
    assert sim_main(["run", "--scenario", "smoke", "--seed", "1", "--param", "duration=0.3",
                     "--quiet"]) == 0
    assert "--param duration=0.3" not in capsys.readouterr().out  # replay only printed on failure
    assert sim_main(["run", "--scenario", "nope", "--seed", "1"]) == 2
    assert sim_main(["run", "--scenario", "smoke", "--seed", "1", "--param", "bogus=1"]) == 2
    assert sim_main(["explore"]) == 2


def test_explore_many_seeds_of_a_fault_scenario(capsys):
    t0 = time.perf_counter()
    rc = sim_main(["explore", "--scenario", "aof-kill-always", "--seeds", "1..30",
                   "--param", "duration=2.0"])
    wall = time.perf_counter() - t0
    cap = capsys.readouterr()
    assert rc == 0, cap.out
    assert "30 seeds" in cap.out and "0 violating" in cap.out
    assert "[explore] 30/30 seeds" in cap.err
    sys.stderr.write("\nexplore aof-kill-always: 30 seeds in %.2f s = %.1f seeds/s\n"
                     % (wall, 30 / wall))


@pytest.mark.slow
def test_explore_all_fault_scenarios_many_seeds(capsys):
    for name in ("aof-kill-always", "blocked-clients", "multi-disconnect", "mixed-faults"):
        assert sim_main(["explore", "--scenario", name, "--seeds", "1..200", "--jobs", "2"]) == 0


# --- speed ------------------------------------------------------------------------------------


def _speed(think: float, duration: float):
    c0 = time.process_time()
    r = run_scenario("standalone-load", 1, {"think": think, "duration": duration})
    cpu = time.process_time() - c0
    assert r.ok
    return r, cpu


def test_six_nodes_hundred_clients_each_speed():
    r, cpu = _speed(think=10.0, duration=30.0)
    assert r.ops > 1500
    sys.stderr.write("\n6 nodes x 100 clients, 1 op/10 s each: %.0f virtual s in %.2f s wall "
                     "(%.2f s CPU): %.1fx wall, %.1fx CPU\n"
                     % (r.virtual_s, r.wall_s, cpu, r.virtual_s / r.wall_s, r.virtual_s / cpu))
    assert r.virtual_s / cpu > 5  # the number is printed; the bound only catches collapse


@pytest.mark.slow
@pytest.mark.parametrize("think", [1.0, 10.0, 100.0])
def test_speed_curve(think):
    r, cpu = _speed(think=think, duration=100.0)
    sys.stderr.write("\nthink %.0f s: %d ops, %.1fx wall, %.1fx CPU\n"
                     % (think, r.ops, r.virtual_s / r.wall_s, r.virtual_s / cpu))


def test_c11_cluster_failover_scenario_promotes_the_replica():
    """A master killed and kept down past the node timeout: its replica wins
    the election and serves the slots; after the heal the cluster converges
    with one owner per slot and distinct configEpochs."""
    r = run_scenario("cluster-failover", 1, {})
    assert r.ok, [v["detail"].get("message") for v in r.violations]
    assert r.summary["promoted"] == ["n4"]
