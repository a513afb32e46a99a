"""A bug injected on purpose: the simulator finds it and its replay command
reproduces it.

``AckBeforeFsyncNode`` acknowledges writes before they are fsynced even
under ``appendfsync always`` (it fsyncs the previous batch when the next one
comes, a classic group-commit mistake). Only a crash that loses the
not-fsynced tail, landing after an acknowledgement and before the next write,
shows it; ``frtrio sim explore`` over a few seeds of ``aof-kill-always``
finds such a seed and prints a replay command, which reproduces the
violation in a fresh process, and its log replays byte for byte.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from frtrio.runtime.node import Node
from frtrio.sim.cli import sim_main

HERE = os.path.dirname(os.path.abspath(__file__))
BUGGY = "test_sim_bug:AckBeforeFsyncNode"


class AckBeforeFsyncNode(Node):
    """Node with a durability bug (test only)."""

    BUG = True

    def flush_effects(self) -> None:
        srv = self.server
        aof = self.aof
        if not (self.BUG and aof is not None and srv.propagated):
            return super().flush_effects()
        # BUG: fsync what the previous batch wrote, then write this batch and
        # let the caller send the replies before it is durable
        aof.fsync()
        aof.feed(srv.propagated)
        srv.propagated.clear()
        data = b"".join(aof.buf)
        aof.buf.clear()
        aof.fh.write(data)
        aof.dirty_since_fsync = True


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_explore_finds_injected_bug_and_replay_reproduces_it(capsys, tmp_path):
    rc = sim_main(["explore", "--scenario", "aof-kill-always", "--seeds", "1..12",
                   "--node-class", BUGGY, "--stop-after", "1"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "sim.acknowledged_write_lost" in out
    m = re.search(r"replay: (frtrio sim run .*)$", out, re.M)
    assert m, out
    cmd = shlex.split(m.group(1))
    assert "--node-class" in cmd and BUGGY in cmd
    log = tmp_path / "bug.jsonl"
    cmd[cmd.index("--log") + 1] = str(log)
    # the printed command, run as printed, in a fresh process
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(tmp_path),
                       timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "sim.acknowledged_write_lost" in p.stdout
    # and its log is a byte-exact fingerprint of the run
    p2 = subprocess.run(["frtrio", "sim", "replay", str(log)], capture_output=True, text=True,
                        env=_env(), cwd=str(tmp_path), timeout=120)
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert "replay identical" in p2.stdout


def test_same_seeds_without_the_bug_are_clean():
    from frtrio.sim.scenario import run_scenario

    for seed in range(1, 7):
        r = run_scenario("aof-kill-always", seed)
        assert r.ok, (seed, r.violations)


@pytest.mark.slow
def test_bug_found_in_many_seeds(capsys):
    rc = sim_main(["explore", "--scenario", "aof-kill-always", "--seeds", "1..60",
                   "--node-class", BUGGY])
    out = capsys.readouterr().out
    assert rc == 1
    assert len(re.findall(r"^seed \d+:", out, re.M)) >= 5, out
