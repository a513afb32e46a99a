"""Failover under partitions: the cluster's safety rules while the network
splits, flaps and stalls.

Three masters with one replica each. Clients append to their own lists and
often confirm an append with ``WAIT 1`` (the shard's one replica is its
majority); others block on queues with BLPOP while their peers push. A
nemesis of its own plays failover episodes one after another: a master or a
replica cut off alone (the minority side), a random split of the nodes in
two, a link that flaps, a master paused past the node timeout that comes
back believing it still serves its slots, a master killed and restarted.

Checked at every step (the monitor, every 50 ms of virtual time):
* C11: no two masters ever serve one slot with the same configEpoch (each
  node's own claim, as its CLUSTER NODES would say);
* C05: no client stays blocked on a key of a slot its node does not serve
  (given a grace of one second of the node's own running time for the
  node to act on the change it learned).

Checked after the faults heal: the cluster converges with one owner per
slot and distinct configEpochs (ClusterWrites's checks), and every append
that ``WAIT 1`` confirmed is still in its list (an append that was not
confirmed may be lost in a failover, in Redis as here).
"""

from __future__ import annotations

import trio

from frtrio.cluster.slots import key_slot
from frtrio.core.blocking import BlockOn
from frtrio.sim.client import Disconnected, ReplyError
from frtrio.sim.scenario import Scenario, scenario
from frtrio.sim.scenarios import ClusterFailover, _cluster_state

QUEUES = 6
EPISODES = ("isolate-master", "isolate-replica", "split", "flap", "pause-master",
            "kill-master")


class FailoverUnderPartitions(ClusterFailover):
    def __init__(self, masters: int, converge_s: float = 30.0, wait_ratio: float = 0.5,
                 grace_s: float = 1.0):
        super().__init__(masters, converge_s)
        self.wait_ratio = wait_ratio
        self.grace_s = grace_s
        self.confirmed: dict[str, list[int]] = {}
        self.claims: dict[int, dict[str, int]] = {}  # configEpoch -> node id -> slot bits
        self.blocked_seen: dict[tuple, float] = {}
        self.promotions = 0
        self.unblocked = 0
        self.blpops = 0
        self.nemesis = None
        self.home_queues: dict[str, list[str]] = {}
        self.queues: list[str] = []
        self.homes: dict[str, str] = {}  # client host -> the node it was started on

    # --- clients ---------------------------------------------------------------------

    async def step(self, world, client, rng):
        self.homes[client.host] = client.target
        x = rng.random()
        if x < 0.6:
            await self._append(world, client, rng)
        elif x < 0.8:
            # mostly a queue its home node served at the start (so a client
            # cut off with an isolated master blocks there), else any queue
            mine = self.home_queues.get(client.target)
            q = rng.choice(mine) if mine and rng.random() < 0.7 else rng.choice(self.queues)
            self.blpops += 1
            r, _ = await self.call_routed(world, client, "BLPOP", q, 5, timeout=6.0)
            if isinstance(r, ReplyError) and str(r).startswith("UNBLOCKED"):
                self.unblocked += 1
        else:
            q = rng.choice(self.queues)
            await self.call_routed(world, client, "LPUSH", q, client.name, timeout=1.0)
        await world.sleep(rng.uniform(0.0, 0.05))

    async def _append(self, world, client, rng):
        cid = client.name
        seq = self.sent.get(cid, 0) + 1
        self.sent[cid] = seq
        r, c = await self.call_routed(world, client, "RPUSH", "log:" + cid, seq, timeout=1.0)
        if not isinstance(r, int):
            return
        self.acked.setdefault(cid, []).append(seq)
        if rng.random() < self.wait_ratio:
            got = None
            with trio.move_on_after(1.0) as cs:
                got = await c.call("WAIT", 1, 300)
            if cs.cancelled_caught:
                c._drop()
            if isinstance(got, int) and got >= 1:
                self.confirmed.setdefault(cid, []).append(seq)

    async def prepare(self, world):
        await super().prepare(world)
        names = list(world.nodes)
        masters = names[: self.masters]
        step = 16384 // len(masters)
        self.home_queues = {n: [] for n in masters}
        i = 0
        while any(len(v) < QUEUES // len(masters) for v in self.home_queues.values()):
            q = "q:%d" % i
            i += 1
            owner = masters[min(key_slot(q.encode()) // step, len(masters) - 1)]
            if len(self.home_queues[owner]) < QUEUES // len(masters):
                self.home_queues[owner].append(q)
        self.queues = [q for v in self.home_queues.values() for q in v]

    # --- invariants at every step ------------------------------------------------------

    async def monitor(self, world):
        while True:  # until the runner cancels the workload (after the settle time)
            self._check_epoch_claims(world)
            self._check_blocked(world)
            await trio.sleep(0.05)

    def _check_epoch_claims(self, world):
        for s in world.live_nodes():
            st = _cluster_state(s)
            if st is None:
                continue
            me = st.myself
            if not me.is_master or not me.numslots:
                continue
            bits = int.from_bytes(me.slots, "little")
            per_epoch = self.claims.setdefault(me.config_epoch, {})
            old = per_epoch.get(me.id, 0)
            if bits & ~old == 0:
                continue
            per_epoch[me.id] = old | bits
            for other, obits in per_epoch.items():
                both = obits & bits
                if other != me.id and both:
                    slot = (both & -both).bit_length() - 1
                    world.violation(
                        "cluster.failover_election_contract_violation",
                        "masters %s and %s both served slot %d with configEpoch %d"
                        % (other[:8], me.id[:8], slot, me.config_epoch), s.name)
                    # report a pair once
                    per_epoch[other] = obits & ~bits

    def _check_blocked(self, world):
        now = trio.current_time()
        paused = world.net.paused_until
        seen = {}
        for s in world.live_nodes():
            st = _cluster_state(s)
            if st is None:
                continue
            if paused.get(s.host, 0.0) > now:
                # a stopped node cannot act: its grace starts when it runs again
                for k, t in self.blocked_seen.items():
                    if k[0] == s.name:
                        seen[k] = now
                continue
            for c in s.node.server.clients.values():
                b = c.blocked
                if not isinstance(b, BlockOn) or not b.keys:
                    continue
                slot = key_slot(b.keys[0])
                if st.slots[slot] is st.myself:
                    continue
                k = (s.name, s.incarnation, c.id)
                since = self.blocked_seen.get(k, now)
                seen[k] = since
                if now - since > self.grace_s:
                    world.violation(
                        "cluster.blocked_client_redirect_violation",
                        "client %d blocked on %r (slot %d) for %.2f s while its node "
                        "does not serve the slot" % (c.id, bytes(b.keys[0]), slot, now - since),
                        s.name)
                    seen[k] = now
        self.blocked_seen = seen

    # --- final checks --------------------------------------------------------------------

    async def check(self, world):
        # ClusterFailover checks convergence, epochs, key placement and that
        # every slot is served (not the unconfirmed appends); then the
        # appends WAIT 1 confirmed
        await super().check(world)
        self._check_epoch_claims(world)
        epochs = set()
        for st in (_cluster_state(s) for s in world.live_nodes()):
            if st is not None:
                epochs.add(st.current_epoch)
        self.promotions = max(epochs, default=0) - self.masters
        names = [s.name for s in world.live_nodes()]
        if not names:
            return
        from frtrio.sim.client import SimClient

        reader = SimClient(world, "wait-checker", names[0])
        try:
            for cid in sorted(self.confirmed):
                try:
                    vals = await self.read_log(world, reader, cid)
                except Disconnected:
                    vals = None
                if vals is None:
                    world.violation("sim.acknowledged_write_lost",
                                    "log:%s could not be read after the faults healed" % cid)
                    continue
                have = set(vals)
                lost = [x for x in self.confirmed[cid] if x not in have]
                if lost:
                    world.violation("sim.acknowledged_write_lost",
                                    "%d append(s) of log:%s confirmed by WAIT 1 were lost"
                                    % (len(lost), cid), missing=lost[:10])
        finally:
            self.drop_pool(reader)

    def summary(self):
        out = super().summary()
        out.update(confirmed=sum(len(v) for v in self.confirmed.values()),
                   epochs_bumped=self.promotions, blpops=self.blpops,
                   unblocked=self.unblocked)
        nem = getattr(self, "nemesis", None)
        if nem is not None:
            out["episodes"] = nem.summary()
        return out


class FailoverNemesis:
    """Failover episodes one after another, drawn from the seed."""

    def __init__(self, masters: int, node_timeout_s: float, gap=(0.3, 2.5)):
        self.masters = masters
        self.nt = node_timeout_s
        self.gap = gap
        self.episodes: list[str] = []
        self.workload = None

    def _current(self, world, masters: bool) -> list[str]:
        out = []
        for s in world.live_nodes():
            st = _cluster_state(s)
            if st is not None and bool(st.myself.is_master and st.myself.numslots) == masters:
                out.append(s.name)
        return out

    def _long(self, rng) -> float:
        """Shorter than the node timeout a third of the time, else past it."""
        if rng.random() < 0.33:
            return rng.uniform(0.2, self.nt * 0.9)
        return rng.uniform(self.nt * 1.5, self.nt * 5)

    def _side(self, world, names, rng) -> list[str]:
        """Hosts of ``names`` plus clients: most of those started on these
        nodes (they keep talking to an isolated master), a few others."""
        hosts = [world.nodes[n].host for n in names]
        homes = self.workload.homes if self.workload is not None else {}
        for h in world.client_hosts:
            if rng.random() < (0.7 if homes.get(h) in names else 0.1):
                hosts.append(h)
        return hosts

    def _cut(self, world, rng, names):
        mine = self._side(world, names, rng)
        rest = [h for h in world.all_hosts() if h not in mine]
        world.partition([mine, rest])

    async def run(self, world, rng) -> None:
        while not world.stopping:
            if not await world.sleep(rng.uniform(*self.gap)):
                return
            kind = EPISODES[rng.randrange(len(EPISODES))]
            masters = self._current(world, True)
            replicas = self._current(world, False)
            self.episodes.append(kind)
            world.log.emit("sim.episode", "", outcome="fault", kind=kind)
            if kind == "isolate-master" and masters:
                self._cut(world, rng, [rng.choice(masters)])
                await world.sleep(self._long(rng))
                world.heal()
            elif kind == "isolate-replica" and replicas:
                self._cut(world, rng, [rng.choice(replicas)])
                await world.sleep(self._long(rng))
                world.heal()
            elif kind == "split":
                names = sorted(world.nodes)
                rng.shuffle(names)
                self._cut(world, rng, names[: rng.randint(1, len(names) // 2)])
                await world.sleep(self._long(rng))
                world.heal()
            elif kind == "flap":
                name = rng.choice(sorted(world.nodes))
                end = trio.current_time() + rng.uniform(self.nt * 2, self.nt * 6)
                while trio.current_time() < end and not world.stopping:
                    self._cut(world, rng, [name])
                    if not await world.sleep(rng.uniform(0.1, self.nt)):
                        break
                    world.heal()
                    if not await world.sleep(rng.uniform(0.1, self.nt)):
                        break
                world.heal()
            elif kind == "pause-master" and masters:
                d = self._long(rng)
                world.pause(rng.choice(masters), d)
                await world.sleep(d)
            elif kind == "kill-master" and masters:
                name = rng.choice(masters)
                await world.kill(name, "keep")
                await world.sleep(self._long(rng))
                await world.restart(name)

    def summary(self) -> dict:
        return {k: self.episodes.count(k) for k in EPISODES}


@scenario(
    "failover-partitions",
    "three masters with a replica each; a nemesis isolates masters and replicas, splits "
    "the nodes in two, flaps links, pauses and kills masters past the node timeout. At "
    "every step no two masters serve a slot with one configEpoch and no client stays "
    "blocked on a slot its node does not serve; afterwards the cluster converges and "
    "every append confirmed by WAIT 1 is kept",
    tags=("faults", "cluster", "failover"),
    nodes=6, clients=1, duration=15.0, node_timeout=1000,
)
def _failover_partitions(p):
    nem = FailoverNemesis(p["nodes"] // 2, p["node_timeout"] / 1000.0)
    wl = FailoverUnderPartitions(masters=p["nodes"] // 2)
    wl.nemesis = nem
    nem.workload = wl
    return Scenario(
        workload=wl,
        nodes=p["nodes"],
        node_config={"cluster-enabled": "yes",
                     "cluster-node-timeout": str(p["node_timeout"]),
                     "appendonly": "yes", "appendfsync": "always",
                     "repl-diskless-sync-delay": "0"},
        clients_per_node=p["clients"],
        faults=nem,
        duration=p["duration"], settle=10.0,
    )
