"""500 seeds of a fault scenario through `frtrio sim explore` (slow target;
.ci/run runs it after the default suite)."""

import sys
import time

import pytest

from frtrio.sim.cli import sim_main


@pytest.mark.slow
def test_explore_500_seeds_of_aof_kill_always(capsys):
    t0 = time.perf_counter()
    rc = sim_main(["explore", "--scenario", "aof-kill-always", "--seeds", "1..500", "--jobs", "2"])
    wall = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "500 seeds" in out and "0 violating" in out
    sys.stderr.write("\nexplore aof-kill-always: 500 seeds in %.1f s = %.1f seeds/s\n"
                     % (wall, 500 / wall))
