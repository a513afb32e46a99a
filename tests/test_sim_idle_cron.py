"""An idle node's cron sleeps through the ticks that have no work (issue
15's idle cost) and still does every duty on Redis's cadence (C12): in a
simulated cluster with no clients, every node PINGs every peer within half
a node timeout (plus a tick) of its last PONG, a killed node is PFAIL and
FAIL within Redis's bounds and linked again as soon as it is back; a client
that connects gets a cron that ticks again at once (its key with a 100 ms
TTL is expired actively); and the same cluster wakes well under half as
often as one whose crons tick every 100 ms."""

from __future__ import annotations

import pytest
import trio

from frtrio.runtime.node import Node
from frtrio.sim import scenario as scn
from frtrio.sim.client import SimClient
from frtrio.sim.scenarios import idle_cluster

NT = 3000  # cluster-node-timeout (ms)
DOWN = 2.5 * NT / 1000  # how long n3 stays down (s)
RUNS: dict[str, dict] = {}  # plan key -> what the plan saw


class TickingNode(Node):
    """A node whose cron never sleeps past a tick (how frtrio ran before)."""

    def _quiet_until(self, last_fsync, next_cluster):
        return None


def _cluster_nodes(world, names=("n1", "n2", "n3")):
    return {n: world.nodes[n].node for n in names if world.nodes[n].node is not None}


class _Cadence:
    """Three calm seconds (every 10 virtual ms: the age of each node's last
    PONG from each peer), then n3 is killed and restarted after DOWN
    (when n1 and n2 see it PFAIL, FAIL, linked and healthy again)."""

    def __init__(self, key: str):
        self.key = key

    async def run(self, world, rng):
        seen: dict = {"worst pong age": 0}
        RUNS[self.key] = seen

        def wakeups():
            return sum(s.node.cron_wakeups for s in world.nodes.values() if s.node)

        w0 = wakeups()
        t_end = trio.current_time() + 3.0
        while trio.current_time() < t_end:
            for node in _cluster_nodes(world).values():
                st = node.server.cluster.state
                now = node.env.unix_ms()
                for x in st.nodes.values():
                    if x is not st.myself:
                        seen["worst pong age"] = max(seen["worst pong age"], now - x.pong_received)
            await trio.sleep(0.01)
        seen["calm wakeups"] = wakeups() - w0
        victim = world.nodes["n3"].node.server.cluster.state.myself.id
        seen["pong at kill"] = {n: node.server.cluster.state.nodes[victim].pong_received
                                for n, node in _cluster_nodes(world, ("n1", "n2")).items()}
        t0 = trio.current_time()

        def look(tags):
            for name, node in _cluster_nodes(world, ("n1", "n2")).items():
                x = node.server.cluster.state.nodes.get(victim)
                for tag, ok in tags(x).items():
                    if ok and name + tag not in seen:
                        seen[name + tag] = (round(trio.current_time() - t0, 3), node.env.unix_ms())

        await world.kill("n3", "keep")
        while trio.current_time() - t0 < DOWN:
            look(lambda x: {" pfail": x.has("fail?") or x.has("fail"), " fail": x.has("fail")})
            await trio.sleep(0.01)
        await world.restart("n3")
        while trio.current_time() - t0 < DOWN + 2 * NT / 1000 + 3.0:
            look(lambda x: {" linked": x.link is not None and not x.link.closed,
                            " healthy": not (x.has("fail?") or x.has("fail"))})
            await trio.sleep(0.01)


class _Client:
    """Three times, at different phases of the crons' sleeps: a client
    connects to an idle n1, sets a key with a 100 ms TTL, waits 300 ms
    without touching it and reads expired_keys (an active expiry needs the
    cron ticking again), then leaves."""

    def __init__(self, key: str):
        self.key = key

    async def run(self, world, rng):
        seen = RUNS[self.key] = {"expired": []}
        for i, pause in enumerate((1.33, 0.71, 0.52)):
            await trio.sleep(pause)
            c = SimClient(world, "probe%d" % i, "n1")
            key = "{b}:%d" % i  # (slot 3300: n1's)
            assert await c.call("SET", key, "v", "PX", 100) == b"OK"
            await trio.sleep(0.3)
            info = (await c.call("INFO", "stats")).decode()
            seen["expired"].append(int(info.split("expired_keys:")[1].split()[0]))
            await c.close()


def _register(monkeypatch, key, plan, duration, nt=NT):
    def make(p):
        return idle_cluster(3, nt, duration, plan(key), settle=5.0)

    scn.all_scenarios()  # (the library first: this entry is this test's only)
    monkeypatch.setitem(scn.SCENARIOS, key, scn.ScenarioDef(key, "test", {"mode": "strict"}, make))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_c12_idle_crons_sleep_through_empty_ticks_on_redis_cadence(seed, monkeypatch):
    _register(monkeypatch, "idle-cadence", _Cadence, DOWN + 2 * NT / 1000 + 7.0)
    r = scn.run_scenario("idle-cadence", seed)
    assert r.ok, r.violations
    q = dict(RUNS["idle-cadence"])
    t = scn.run_scenario("idle-cadence", seed, node_class=__name__ + ":TickingNode")
    assert t.ok, t.violations
    ticking = RUNS["idle-cadence"]
    # clusterCron's keep-alive: a PING once the last PONG is older than half
    # the node timeout, on the next tick; its PONG comes back within a few ms
    assert q["worst pong age"] <= NT // 2 + 100 + 20, q
    assert ticking["worst pong age"] <= NT // 2 + 100 + 20, ticking
    for n in ("n1", "n2"):
        pong = q["pong at kill"][n]
        # PFAIL: node_timeout after the keep-alive PING, which went at most
        # half a node timeout (and a tick) after the last PONG
        assert pong + NT < q[n + " pfail"][1] <= pong + NT // 2 + 100 + NT + 100 + 20, q
        assert q[n + " fail"][0] - q[n + " pfail"][0] <= 1.5, q  # (the other master's report)
        assert q[n + " linked"][0] - DOWN <= 0.15, q  # (the reconnect of the next tick)
        # a master with slots leaves FAIL on a PONG once twice the node
        # timeout has passed since the FAIL (the keep-alive PING's, at most)
        healthy_at = max(DOWN, q[n + " fail"][0] + 2 * NT / 1000)
        assert q[n + " healthy"][0] - healthy_at <= NT / 2000 + 0.25, q
    # the calm stretch: 3 nodes x 30 ticks when ticking; a few wake-ups a
    # second each when the empty ticks are slept through
    assert ticking["calm wakeups"] >= 88, ticking
    assert q["calm wakeups"] <= 0.4 * ticking["calm wakeups"], (q, ticking)


def test_c12_a_client_wakes_an_idle_crons_sleep(monkeypatch):
    # (Redis's default node timeout: an idle cron's sleeps last up to a second)
    _register(monkeypatch, "idle-client", _Client, 5.0, nt=15000)
    r = scn.run_scenario("idle-client", 4)
    assert r.ok, r.violations
    assert RUNS["idle-client"]["expired"] == [1, 2, 3]
