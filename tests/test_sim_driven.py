"""Clients driven from the simulator's clock (issue 15): between two requests
a load workload's client has no task; its think time is a clock timer and its
reply is read in a clock callback (``sched.arm``, ``SimClient.call_nowait``,
``scenario._Driven``). Whatever a callback cannot do (a broken connection, a
paused node, a cut path, a redirect) goes back to a task. These tests put the
driven clients through those cases and check the runs stay correct and
identical per seed."""

from __future__ import annotations

import math

import trio

from frtrio.sim import sched
from frtrio.sim.faults import RandomFaults
from frtrio.sim.scenario import Scenario, run_scenario, scenario
from frtrio.sim.scenarios import ClusterLoad, SetGet


@scenario("test-driven-standalone-faults",
          "(tests) SetGet on driven clients while connections drop, nodes pause, "
          "restart and get cut off", clients=4, duration=4.0, driven=True)
def _standalone_faults(p):
    return Scenario(
        workload=SetGet(keys=50, think=(0.01, 0.05)), nodes=2, clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 3, "drop_node": 1, "pause": 2, "kill": 1, "partition": 2,
                             "delay": 1}, every=(0.1, 0.4), duration=(0.05, 0.4)),
        duration=p["duration"], settle=5.0, driven_clients=p["driven"],
    )


class _StaleMap(ClusterLoad):
    """A slot map that is wrong for a third of the slots: the clients learn
    the owners from MOVED replies (the driven step's redirect path)."""

    async def prepare(self, world):
        await super().prepare(world)
        names = list(world.nodes)
        for s in range(0, 16384, 3):
            self.owner[s] = names[(names.index(self.owner[s]) + 1) % len(names)]


@scenario("test-driven-cluster-faults",
          "(tests) ClusterLoad on driven clients with a stale slot map while connections "
          "drop, nodes pause and get cut off", clients=4, duration=5.0, driven=True)
def _cluster_faults(p):
    return Scenario(
        workload=_StaleMap(keys=200, think=(0.02, 0.08)), nodes=3,
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "15000"},
        clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 3, "drop_node": 1, "pause": 2, "partition": 1, "delay": 1},
                            every=(0.2, 0.6), duration=(0.05, 0.5)),
        duration=p["duration"], settle=5.0, driven_clients=p["driven"],
    )


def test_driven_clients_through_faults_hold_invariants_and_replay():
    for seed in (1, 2, 3):
        a = run_scenario("test-driven-standalone-faults", seed, keep_lines=True, log_ops=True)
        assert a.ok, a.violations[:2]
        assert a.ops > 200 and a.disconnects > 0 and a.faults > 0
        assert a.driven_to_task > 0  # the fallbacks ran
        b = run_scenario("test-driven-standalone-faults", seed, keep_lines=True, log_ops=True)
        assert a.lines == b.lines and a.fingerprint == b.fingerprint


def test_driven_clients_follow_moved_and_survive_cluster_faults():
    for seed in (1, 2):
        a = run_scenario("test-driven-cluster-faults", seed, keep_lines=True, log_ops=True)
        assert a.ok, a.violations[:2]
        assert a.summary["redirects"] > 0 and a.ops > 200
        assert a.driven_to_task > 0
        b = run_scenario("test-driven-cluster-faults", seed, keep_lines=True, log_ops=True)
        assert a.lines == b.lines


def test_driven_and_task_clients_do_the_same_kind_of_run():
    """The same scenario with clients as tasks: other schedules, the same
    workload (every op answered, no violations, about as many ops)."""
    d = run_scenario("standalone-load", 1, {"duration": "3", "clients": "10"})
    t = run_scenario("test-driven-standalone-faults", 1, {"driven": "no"})
    assert d.ok and t.ok and d.driven_to_task == 0 and t.driven_to_task == 0
    assert d.ops > 0 and d.op_errors == 0


def test_clock_callbacks_fire_in_time_order_and_wake_disarm():
    order = []

    class Owner:
        waiter = None

    async def main():
        clock = trio.lowlevel.current_clock()
        a, b, c = Owner(), Owner(), Owner()
        sched.arm(a, lambda: order.append(("a", clock._now)), 2.0, clock)
        sched.arm(b, lambda: order.append(("b", clock._now)), 1.0, clock)
        sched.arm(c, lambda: order.append(("c", clock._now)), math.inf, clock)
        await trio.sleep(0.5)
        sched.wake(c)  # an untimed callback: called at the current time
        sched.disarm(a)  # never called
        await trio.sleep(3)
        assert order == [("c", 0.5), ("b", 1.0)]
        # a callback that wakes a task hands control back to Trio's loop
        task_box = []

        async def sleeper():
            task_box.append(trio.lowlevel.current_task())
            await sched.park(math.inf, b, clock)
            order.append(("task", clock._now))

        async with trio.open_nursery() as n:
            n.start_soon(sleeper)
            await trio.sleep(0.1)
            sched.arm(c, lambda: sched.wake(b), clock._now + 1.0, clock)
        assert order[-1] == ("task", 4.6)

    sched.run(main, seed=1)
