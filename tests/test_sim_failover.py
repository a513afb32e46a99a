"""C11/C05 in the simulator: the failover-partitions scenario (three
masters with a replica each; masters and replicas isolated, random splits,
flapping links, paused and killed masters) keeps its invariants at every
step, replays byte for byte, and its checks catch a promotion that keeps
the old master's configEpoch, a node that leaves clients blocked on a slot
it lost, and a replica that acknowledges writes it did not apply."""

from __future__ import annotations

import sys
import time

import pytest

from frtrio.core.client import F
from frtrio.runtime.node import Node
from frtrio.sim.cli import sim_main
from frtrio.sim.scenario import run_scenario

SCENARIO = "failover-partitions"


def _codes(res):
    return {v["reason_code"] for v in res.violations}


@pytest.mark.parametrize("seed", [1, 3, 6, 7])
def test_c11_failover_under_partitions_keeps_its_invariants(seed):
    res = run_scenario(SCENARIO, seed)
    assert res.ok, (res.violations[:3], res.replay_cmd)
    s = res.summary
    assert s["confirmed"] > 50 and s["blpops"] > 10 and res.faults > 0


def test_c11_failover_under_partitions_promotes_replicas():
    """The episodes do make replicas win elections (the checks are not
    vacuous): over a few seeds several promotions happen."""
    promoted = 0
    for seed in (2, 3, 4):
        res = run_scenario(SCENARIO, seed)
        assert res.ok, (res.violations[:3], res.replay_cmd)
        promoted += res.summary["epochs_bumped"]
    assert promoted >= 3


def test_c11_failover_under_partitions_replays_byte_for_byte():
    a = run_scenario(SCENARIO, 3, keep_lines=True)
    b = run_scenario(SCENARIO, 3, keep_lines=True)
    assert a.fingerprint == b.fingerprint and a.lines == b.lines


class KeepsOldEpochNode(Node):
    """A replica that wins an election but keeps its old master's
    configEpoch (test only): two masters then claim the same slots with
    one configEpoch while the old master is cut off."""

    async def _start_bus(self, nursery, binds):
        await super()._start_bus(nursery, binds)
        bus = self.bus.bus
        real = bus.replace_my_master

        def replace(now):
            st = self.server.cluster.state
            old = st.nodes.get(st.myself.master_id or "")
            out = real(now)
            if old is not None:
                st.myself.config_epoch = old.config_epoch
            return out

        bus.replace_my_master = replace


class KeepsBlockedClientsNode(Node):
    """A node that neither unblocks nor closes its blocked clients when it
    stops serving their slot (test only)."""

    def load(self):
        super().load()
        srv = self.server
        real_unblock = srv.blocking.unblock
        real_kill = srv.kill_client

        def unblock(c, reply):
            if c.blocked is not None and getattr(reply, "message", "").startswith(
                    ("UNBLOCKED", "MOVED", "CLUSTERDOWN")):
                return None
            return real_unblock(c, reply)

        def kill(c):
            if c.blocked is not None:
                c.flags &= ~F.CLOSE_AFTER_REPLY
                return None
            return real_kill(c)

        srv.blocking.unblock = unblock
        srv.kill_client = kill


class SkipsWritesNode(Node):
    """A replica that skips one RPUSH in five from its master's stream but
    acknowledges the offset all the same (test only)."""

    def load(self):
        super().load()
        srv = self.server
        real = srv.execute
        count = [0]

        def execute(c, argv):
            if c.flags & F.MASTER and argv[0].lower() == b"rpush":
                count[0] += 1
                if count[0] % 5 == 0:
                    return None
            return real(c, argv)

        srv.execute = execute


def _found(node_class, seeds):
    found = set()
    for seed in seeds:
        found |= _codes(run_scenario(SCENARIO, seed,
                                     node_class="test_sim_failover:" + node_class))
    return found


def test_c11_checks_catch_a_promotion_that_keeps_the_old_epoch():
    assert "cluster.failover_election_contract_violation" in _found(
        "KeepsOldEpochNode", (2, 3, 4))


def test_c05_checks_catch_clients_left_blocked_on_a_lost_slot():
    assert "cluster.blocked_client_redirect_violation" in _found(
        "KeepsBlockedClientsNode", (12, 16, 17))


def test_c11_checks_catch_a_replica_that_acknowledges_unapplied_writes():
    assert "sim.acknowledged_write_lost" in _found("SkipsWritesNode", (2, 3, 4))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # (about 20 minutes on two cores)
def test_c11_explore_2000_seeds_of_failover_under_partitions(capsys):
    t0 = time.perf_counter()
    rc = sim_main(["explore", "--scenario", SCENARIO, "--seeds", "1..2000", "--jobs", "2"])
    wall = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2000 seeds" in out and "0 violating" in out
    sys.stderr.write("\nexplore %s: 2000 seeds in %.1f s = %.1f seeds/s\n"
                     % (SCENARIO, wall, 2000 / wall))
