"""Replication in the simulator: the repl-faults scenario (a master and two
replicas under kills, link drops, partitions, pauses and delays) keeps its
invariants, replays byte for byte, and its checks catch a replica that
silently loses writes from its master's stream."""

from __future__ import annotations

import sys
import time

import pytest

from frtrio.core.client import F
from frtrio.runtime.node import Node
from frtrio.sim.cli import sim_main
from frtrio.sim.scenario import run_scenario


@pytest.mark.parametrize("seed,params", [(1, {}), (2, {}), (3, {"diskless": "no"}),
                                         (4, {"sync_delay": 1})])
def test_repl_faults_keeps_wait_and_catch_up_invariants(seed, params):
    """Diskless (EOF framing) full syncs by default; also with disk framing,
    and with a diskless delay of 1 s (fewer WAITs are answered then)."""
    res = run_scenario("repl-faults", seed, params)
    assert res.ok, (res.violations, res.replay_cmd)
    assert res.faults > 0
    s = res.summary
    assert s["replicas_caught_up"] == 2
    assert s["waits_acked"] > 0 and s["replica_reads"] > 0


def test_repl_faults_replays_byte_for_byte():
    a = run_scenario("repl-faults", 7, keep_lines=True)
    b = run_scenario("repl-faults", 7, keep_lines=True)
    assert a.fingerprint == b.fingerprint and a.lines == b.lines


class DropsStreamWritesNode(Node):
    """A replica that skips every third RPUSH of its master's stream while
    counting its bytes (test only): its offset looks right, its data is not."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        srv = self.server
        real = srv.execute
        seen = [0]

        def execute(c, argv):
            if c.flags & F.MASTER and argv[0].lower() == b"rpush":
                seen[0] += 1
                if seen[0] % 3 == 0:
                    return None
            return real(c, argv)

        srv.execute = execute


def test_repl_checks_catch_a_replica_that_drops_stream_writes():
    res = run_scenario("repl-faults", 1, node_class="test_sim_repl:DropsStreamWritesNode")
    codes = {v["reason_code"] if isinstance(v, dict) else v.reason_code for v in res.violations}
    assert codes & {"sim.repl_replica_diverged", "sim.repl_wait_ack_not_on_replicas"}, codes


@pytest.mark.slow
def test_explore_300_seeds_of_repl_faults(capsys):
    t0 = time.perf_counter()
    rc = sim_main(["explore", "--scenario", "repl-faults", "--seeds", "1..300", "--jobs", "2"])
    wall = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "300 seeds" in out and "0 violating" in out
    sys.stderr.write("\nexplore repl-faults: 300 seeds in %.1f s = %.1f seeds/s\n"
                     % (wall, 300 / wall))
