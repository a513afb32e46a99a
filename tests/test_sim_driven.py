"""Clients driven from the simulator's clock (issue 15): between two requests
a load workload's client has no task; its think time is a clock timer and its
reply is read in a clock callback (``sched.arm``, ``SimClient.call_nowait``,
``scenario._Driven``). Whatever a callback cannot do (a broken connection, a
paused node, a cut path, a redirect) goes back to a task. These tests put the
driven clients through those cases and check the runs stay correct and
identical per seed.

Nodes' connections served from the clock (``Scenario.driven_nodes``,
``SimStream.serve_from_clock``): the node's reader (``ClientConn._steps``)
is fed each request's bytes from a clock callback and hands anything it
must wait for (a blocked client, a pause, an effect, a paused host) to its
task. The tests below run the same requests both ways and compare what the
clients see."""

from __future__ import annotations

import math

import trio

from frtrio.sim import sched
from frtrio.sim.faults import RandomFaults
from frtrio.sim.scenario import Scenario, run_scenario, scenario
from frtrio.sim.scenarios import ClusterLoad, SetGet


@scenario("test-driven-standalone-faults",
          "(tests) SetGet on driven clients while connections drop, nodes pause, "
          "restart and get cut off", clients=4, duration=4.0, driven=True, driven_nodes=True)
def _standalone_faults(p):
    return Scenario(
        workload=SetGet(keys=50, think=(0.01, 0.05)), nodes=2, clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 3, "drop_node": 1, "pause": 2, "kill": 1, "partition": 2,
                             "delay": 1}, every=(0.1, 0.4), duration=(0.05, 0.4)),
        duration=p["duration"], settle=5.0, driven_clients=p["driven"],
        driven_nodes=p["driven_nodes"],
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
          "drop, nodes pause and get cut off", clients=4, duration=5.0, driven=True,
          driven_nodes=True)
def _cluster_faults(p):
    return Scenario(
        workload=_StaleMap(keys=200, think=(0.02, 0.08)), nodes=3,
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "15000"},
        clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 3, "drop_node": 1, "pause": 2, "partition": 1, "delay": 1},
                            every=(0.2, 0.6), duration=(0.05, 0.5)),
        duration=p["duration"], settle=5.0, driven_clients=p["driven"],
        driven_nodes=p["driven_nodes"],
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


# --- nodes' connections served from the clock -------------------------------------

_SEEN: list = []


class _EveryPath:
    """One node; clients take the reader through each of its waits in turn
    (one at a time, so the replies do not depend on the schedule): plain
    and pipelined requests, a 300 KB argument, a request split over two
    writes, BLPOP served by a push and BLPOP timing out, CLIENT PAUSE
    holding a write, DEBUG SLEEP, MULTI/EXEC, a subscriber's messages,
    inline PING, QUIT, a client that closes with its reply unsent, one
    that closes after its replies, a protocol error, CLIENT KILL of a blocked client, and the node's host
    paused under a request. Every reply goes to _SEEN."""

    async def run(self, world, rng):
        from frtrio.persist.aof_format import encode_command
        from frtrio.sim.client import SimClient

        seen = _SEEN
        c1, c2, c3, c4, c5 = (SimClient(world, "c%d" % i, "n1") for i in range(1, 6))
        seen.append(await c1.call("SET", "a", "1"))
        seen.append(await c1.call("DEBUG", "LOG", "step-marker"))
        seen.append(await c1.call("GET", "a"))
        seen.append(await c1.pipeline([["INCR", "n"]] * 20))
        seen.append(await c1.call("SET", "big", "x" * 300000))
        seen.append(await c1.call("STRLEN", "big"))
        await c2.call("PING")
        half = encode_command([b"SET", b"half", b"y" * 5000])
        await c2.stream.send_all(half[:2000])
        await world.sleep(0.05)
        await c2.stream.send_all(half[2000:])
        seen.append(await c2._read())
        async with trio.open_nursery() as n:
            async def blpop(timeout):
                seen.append(("blpop", await c2.call("BLPOP", "q", timeout)))
            n.start_soon(blpop, "0")
            await world.sleep(0.1)
            seen.append(await c1.call("LPUSH", "q", "item"))
        seen.append(await c2.call("BLPOP", "q", "0.2"))
        seen.append(await c3.call("CLIENT", "PAUSE", "300", "WRITE"))
        t0 = trio.current_time()
        seen.append(await c1.call("SET", "p", "1"))
        seen.append(trio.current_time() - t0 >= 0.29)
        t0 = trio.current_time()
        seen.append(await c1.call("DEBUG", "SLEEP", "0.2"))
        seen.append(trio.current_time() - t0 >= 0.19)
        seen.append(await c1.pipeline([["MULTI"], ["SET", "m", "1"], ["INCR", "m"], ["EXEC"]]))
        seen.append(await c4.call("SUBSCRIBE", "ch"))
        for i in range(3):
            seen.append(await c1.call("PUBLISH", "ch", "hi%d" % i))
            seen.append(await c4._read())
        await c5.call("PING")
        await c5.stream.send_all(b"PING\r\n")
        seen.append(await c5._read())
        net = world.net
        host = world.nodes["n1"].host
        net.pause(host, trio.current_time() + 0.2)
        t0 = trio.current_time()
        seen.append(await c5.call("GET", "a"))
        seen.append(trio.current_time() - t0 >= 0.19)
        seen.append(await c5.call("QUIT"))
        seen.append(await c5.stream.receive_some(100))
        c6 = SimClient(world, "c6", "n1")
        await c6.call("PING")
        await c6.stream.send_all(encode_command([b"SET", b"gone", b"1"]))
        c6._drop()
        c8 = SimClient(world, "c8", "n1")
        await c8.call("PING")
        c8._drop()  # (the end of a connection with nothing to send)
        await world.sleep(0.05)
        seen.append(await c1.call("GET", "gone"))
        c7 = SimClient(world, "c7", "n1")
        await c7.call("PING")
        await c7.stream.send_all(b"*abc\r\n")
        seen.append(await c7._read())
        seen.append(await c7.stream.receive_some(100))
        seen.append(await c2.call("CLIENT", "SETNAME", "victim"))
        async with trio.open_nursery() as n:
            async def blocked():
                try:
                    await c2.call("BLPOP", "never", "0")
                except Exception as e:  # noqa: BLE001
                    seen.append(("killed", type(e).__name__))
            n.start_soon(blocked)
            await world.sleep(0.1)
            seen.append(await c1.call("CLIENT", "KILL", "SKIPME", "yes", "ID",
                                      await c3.call("CLIENT", "ID")))
            listing = await c1.call("CLIENT", "LIST")
            victim = [x for x in listing.decode().splitlines() if "name=victim" in x][0]
            seen.append(await c1.call("CLIENT", "KILL", victim.split()[1].split("=")[1]))
        seen.append(await c1.call("INFO", "stats"))


def _every_path(monkeypatch, driven_nodes: bool):
    from frtrio.sim import scenario as scn
    from frtrio.sim.net import SimStream
    from frtrio.sim.scenario import Workload

    class NoClients(Workload):
        async def step(self, world, client, rng):  # pragma: no cover - no clients
            await world.sleep(1.0)

    def make(p):
        return Scenario(workload=NoClients(), nodes=1, clients_per_node=0,
                        faults=_EveryPath(), duration=8.0, settle=1.0,
                        node_config={"enable-debug-command": "yes"},
                        driven_nodes=driven_nodes)

    # calls ("bytes": the reader asked for bytes), and what each returned
    kinds = {"bytes": 0, "wait": 0, "read": 0, "end": 0}
    real = SimStream.serve_from_clock

    async def counted(self, steps, n):
        kinds["bytes"] += 1
        got = await real(self, steps, n)
        kinds["end" if got is None else "read" if type(got) is int else "wait"] += 1
        return got

    monkeypatch.setattr(SimStream, "serve_from_clock", counted)
    scn.all_scenarios()
    monkeypatch.setitem(scn.SCENARIOS, "every-path",
                        scn.ScenarioDef("every-path", "test", {"mode": "strict"}, make))
    _SEEN.clear()
    r = scn.run_scenario("every-path", 1, keep_lines=True)
    assert r.ok, r.violations
    # a node's log line is the node's, whoever resumed its reader
    marks = [ln for ln in r.lines if "step-marker" in ln]
    assert len(marks) == 1 and '"n1"' in marks[0], marks
    return list(_SEEN), kinds


def _without_times(seen):
    """INFO stats without the counters of time and of the network's bytes
    (the two runs' schedules differ; what was asked and answered does not)."""
    out = []
    for x in seen:
        if isinstance(x, Exception):
            x = (type(x).__name__, str(x))
        if isinstance(x, bytes) and x.startswith(b"# Stats"):
            x = b"".join(ln for ln in x.splitlines(True)
                         if not ln.startswith((b"instantaneous_", b"total_net_")))
        out.append(x)
    return out


def test_nodes_served_from_the_clock_answer_as_their_tasks_do(monkeypatch):
    """Every path of the node's reader, served from the clock and by its
    task alone: the clients see the same replies, and the clock path
    handed each kind of wait to the task (a blocked client, a pause, an
    effect, the paused host's read, the end of the connection)."""
    clocked, kinds = _every_path(monkeypatch, True)
    tasked, none = _every_path(monkeypatch, False)
    assert none == {"bytes": 0, "wait": 0, "read": 0, "end": 0}
    assert _without_times(clocked) == _without_times(tasked)
    assert clocked[:6] == [b"OK", b"OK", b"1", list(range(1, 21)), b"OK", 300000]
    assert ("blpop", [b"q", b"item"]) in clocked and True in clocked
    assert [x for x in clocked if type(x) is bool] == [True] * 3  # (the waits took their time)
    assert kinds["wait"] >= 5 and kinds["read"] >= 1 and kinds["end"] >= 1, kinds


def test_busy_scenarios_served_from_the_clock_replay_and_do_the_same_work():
    """cluster-load serves its nodes' connections from the clock by
    default: a seed still names one exact run, and with the nodes' tasks
    instead (driven_nodes=no) the same requests are made and answered
    without errors."""
    p = {"duration": "3", "clients": "10"}
    a = run_scenario("cluster-load", 1, p, keep_lines=True, log_ops=True)
    b = run_scenario("cluster-load", 1, p, keep_lines=True, log_ops=True)
    t = run_scenario("cluster-load", 1, dict(p, driven_nodes="no"), keep_lines=True,
                     log_ops=True)
    assert a.ok and t.ok and a.lines == b.lines and a.fingerprint == b.fingerprint
    assert a.fingerprint != t.fingerprint  # (another schedule)
    assert a.ops == t.ops > 100 and a.op_errors == t.op_errors == 0
