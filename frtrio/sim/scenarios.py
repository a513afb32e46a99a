"""The scenario library (standalone nodes; cluster scenarios come with the bus).

Each workload keeps a model of what its clients were told (acknowledged)
and what they sent without hearing back (unknown outcome), and checks the
nodes' data against it during and after the run.
"""

from __future__ import annotations

from itertools import groupby

import trio

from frtrio.cluster.slots import key_slot
from frtrio.sim.client import Disconnected, ReplyError, SimClient
from frtrio.sim.faults import RandomFaults
from frtrio.sim.scenario import Scenario, Workload, scenario
from frtrio.store.db import unpacked


def _owner_ids(st) -> tuple:
    """A node's slot map as runs of one owner: (owner id or "" for none,
    number of slots), in slot order, adjacent runs always of different
    owners, so two maps are equal exactly when their runs are
    (``itertools.groupby`` walks the table in C: the convergence checks
    compare the maps of every node)."""
    runs: list[tuple[str, int]] = []
    for owner, g in groupby(st.slots):
        i = "" if owner is None else owner.id
        k = len(list(g))
        if runs and runs[-1][0] == i:  # (two node objects of one id)
            runs[-1] = (i, runs[-1][1] + k)
        else:
            runs.append((i, k))
    return tuple(runs)


def _has(cmd: bytes) -> bool:
    import frtrio.commands  # noqa: F401
    from frtrio.commands import table

    c = table.TABLE.get(cmd)
    return c is not None and c.handler is not None


def _durable(world, node: str) -> bool:
    """Is every acknowledged write promised to survive a crash on ``node``?"""
    cfg = world.nodes[node].config
    return cfg.get("appendonly") == "yes" and cfg.get("appendfsync") == "always"


async def _checker(world, node: str, label: str = "checker") -> SimClient:
    return SimClient(world, "%s@%s" % (label, node), node)


async def _call_retry(world, client: SimClient, *args, tries: int = 20):
    """A check's read: retried across disconnects (faults may be active
    during monitor checks)."""
    for _ in range(tries):
        try:
            return await client.call(*args)
        except Disconnected:
            await trio.sleep(0.05)
    raise Disconnected("checker gave up after %d tries" % tries)


# --- smoke ----------------------------------------------------------------------------


class SetGet(Workload):
    def __init__(self, keys: int = 100, think: tuple = (0.0, 0.01), value_size: int = 16):
        self.keys = keys
        self.think = think
        self.value_size = value_size

    async def step(self, world, client, rng):
        k = "key:%d" % rng.randrange(self.keys)
        if rng.random() < 0.5:
            await client.call("SET", k, "v" * self.value_size)
        else:
            await client.call("GET", k)
        if self.think[1] > 0:
            await world.sleep(rng.uniform(*self.think))

    # the same step without a task (scenario._Driven)

    def fast_begin(self, world, client, rng):
        if client.stream is None or self.think[1] <= 0:
            return None
        k = b"key:%d" % rng.randrange(self.keys)
        if rng.random() < 0.5:
            return client, [[b"SET", k, b"v" * self.value_size]], None
        return client, [[b"GET", k]], None

    def fast_end(self, world, client, rng, conn, argvs, replies, token):
        return rng.uniform(*self.think)


@scenario("smoke", "one node, two clients doing SET/GET, no faults", clients=2, duration=1.0)
def _smoke(p):
    return Scenario(workload=SetGet(), clients_per_node=p["clients"], duration=p["duration"],
                    settle=2.0)


@scenario(
    "standalone-load",
    "N standalone nodes, M clients each, SET/GET with think time, no faults (the speed benchmark)",
    tags=("bench",),
    nodes=6, clients=100, duration=10.0, think=1.0, keys=1000, log_ops=False, driven=True,
    driven_nodes=True,
)
def _load(p):
    t = p["think"]
    return Scenario(
        workload=SetGet(keys=p["keys"], think=(t / 2, t * 1.5)),
        nodes=p["nodes"], clients_per_node=p["clients"], duration=p["duration"], settle=2.0,
        log_ops=p["log_ops"], driven_clients=p["driven"], driven_nodes=p["driven_nodes"],
    )


# --- AOF durability --------------------------------------------------------------------


class AppendLog(Workload):
    """Each client appends increasing sequence numbers to its own list and
    bumps its own counter.

    Checks (when the node promises durability: appendonly yes, appendfsync
    always): every acknowledged append is in the list after any crash and
    restart, the list is strictly increasing and holds nothing that was
    never sent, and the counter lies between the acknowledged and the sent
    increments. Checked after every restart (during the run) and at the end.
    """

    def __init__(self, think: tuple = (0.0, 0.02), incr_ratio: float = 0.3):
        self.think = think
        self.incr_ratio = incr_ratio
        self.sent: dict[str, list[int]] = {}
        self.acked: dict[str, list[int]] = {}
        self.incr_sent: dict[str, int] = {}
        self.incr_acked: dict[str, int] = {}
        self.node_of: dict[str, str] = {}
        self.lost_allowed = 0
        self.use_list = True
        self.reported: set = set()  # (client, seq) already reported: report once

    def setup(self, world, sc):
        self.use_list = _has(b"rpush") and _has(b"lrange")
        world.after_restart.append(self._after_restart)

    async def step(self, world, client, rng):
        cid = client.name
        if cid not in self.sent:
            self.sent[cid], self.acked[cid] = [], []
            self.incr_sent[cid] = self.incr_acked[cid] = 0
            self.node_of[cid] = client.target
        if rng.random() < self.incr_ratio:
            self.incr_sent[cid] += 1
            r = await client.call("INCR", "ctr:" + cid)
            if isinstance(r, int):
                self.incr_acked[cid] += 1
        else:
            seq = len(self.sent[cid]) + 1
            self.sent[cid].append(seq)
            if self.use_list:
                r = await client.call("RPUSH", "log:" + cid, seq)
            else:
                r = await client.call("APPEND", "log:" + cid, "%d," % seq)
            if isinstance(r, int):
                self.acked[cid].append(seq)
        if self.think[1] > 0:
            await world.sleep(rng.uniform(*self.think))

    async def _read_log(self, world, reader, cid):
        if self.use_list:
            r = await _call_retry(world, reader, "LRANGE", "log:" + cid, 0, -1)
            if isinstance(r, ReplyError):
                return None
            return [int(x) for x in r]
        r = await _call_retry(world, reader, "GET", "log:" + cid)
        if r is None:
            return []
        return [int(x) for x in r.split(b",") if x]

    async def _verify(self, world, node: str, snapshot: dict, when: str) -> None:
        reader = await _checker(world, node, "verify")
        try:
            for cid, (n_acked, n_incr) in snapshot.items():
                vals = await self._read_log(world, reader, cid)
                if vals is None:
                    world.violation("sim.acknowledged_write_lost", "log key has the wrong type",
                                    node, client=cid, when=when)
                    continue
                sent = set(self.sent[cid])
                if any(b <= a for a, b in zip(vals, vals[1:])) or not sent.issuperset(vals):
                    world.violation("sim.acknowledged_write_lost",
                                    "log of %s is not an increasing list of sent numbers" % cid,
                                    node, client=cid, when=when, values=vals[:20])
                present = set(vals)
                missing = [s for s in self.acked[cid][:n_acked]
                           if s not in present and (cid, s) not in self.reported]
                if missing and _durable(world, node):
                    self.reported.update((cid, s) for s in missing)
                    world.violation(
                        "sim.acknowledged_write_lost",
                        "%d acknowledged append(s) of %s lost" % (len(missing), cid), node,
                        client=cid, when=when, missing=missing[:20],
                    )
                elif missing:
                    self.reported.update((cid, s) for s in missing)
                    self.lost_allowed += len(missing)
                r = await _call_retry(world, reader, "GET", "ctr:" + cid)
                ctr = int(r) if isinstance(r, bytes) else 0
                bad = ctr > self.incr_sent[cid] or (_durable(world, node) and ctr < n_incr)
                if bad and (cid, "ctr") not in self.reported:
                    self.reported.add((cid, "ctr"))
                    world.violation(
                        "sim.acknowledged_write_lost",
                        "counter of %s is %d; acknowledged %d, sent %d"
                        % (cid, ctr, n_incr, self.incr_sent[cid]), node, client=cid, when=when,
                    )
        finally:
            reader._drop()

    def _snapshot(self, node: str) -> dict:
        return {
            cid: (len(self.acked[cid]), self.incr_acked[cid])
            for cid in self.sent
            if self.node_of[cid] == node
        }

    async def _after_restart(self, world, node: str) -> None:
        await self._verify(world, node, self._snapshot(node), "after-restart")

    async def check(self, world):
        for node in world.nodes:
            if world.nodes[node].up:
                await self._verify(world, node, self._snapshot(node), "final")

    def summary(self):
        return {
            "appends_acked": sum(len(v) for v in self.acked.values()),
            "appends_sent": sum(len(v) for v in self.sent.values()),
            "lost_without_durability": self.lost_allowed,
        }


@scenario(
    "aof-kill-always",
    "AOF recovery: a node is killed (unsynced tail lost, torn or kept) and restarted; "
    "appendfsync always must keep every acknowledged write",
    tags=("faults",),
    clients=3, duration=3.0, appendfsync="always", nodes=1, drops=1.0,
)
def _aof_kill(p):
    return Scenario(
        workload=AppendLog(),
        nodes=p["nodes"],
        node_config={"appendonly": "yes", "appendfsync": p["appendfsync"]},
        clients_per_node=p["clients"],
        faults=RandomFaults({"kill": 3.0, "drop": p["drops"]}, every=(0.1, 0.6),
                            duration=(0.01, 0.3)),
        duration=p["duration"], settle=5.0,
    )


@scenario(
    "mixed-faults",
    "AppendLog on two standalone nodes under every fault kind: kill, drop, partition "
    "(two-way and one-way), delay, pause, clock jumps",
    tags=("faults",),
    clients=3, duration=4.0, nodes=2,
)
def _mixed(p):
    return Scenario(
        workload=AppendLog(),
        nodes=p["nodes"],
        node_config={"appendonly": "yes", "appendfsync": "always"},
        clients_per_node=p["clients"],
        faults=RandomFaults(
            {"kill": 2, "drop": 2, "drop_node": 1, "partition": 1, "oneway": 1, "delay": 1,
             "pause": 1, "clock": 1},
            every=(0.1, 0.5), duration=(0.02, 0.4),
        ),
        duration=p["duration"], settle=6.0,
    )


# --- blocked clients --------------------------------------------------------------------


class BlockedClients(Workload):
    """Producers LPUSH unique items on a few queues; consumers BLPOP them
    with short timeouts (WAIT when BLPOP is not there). Connections of
    blocked clients get dropped, nodes paused and killed.

    Checks: nobody stays blocked (the runner's blocked-forever check and the
    registry check); a BLPOP answered nil did wait its timeout; no item is
    delivered twice or invented; acknowledged pushes are in a queue or were
    popped, except at most one per pop whose reply was lost; during the run,
    no queue with items has a BLPOP waiter (a missed wake-up)."""

    def __init__(self, queues: int = 3):
        self.queues = queues
        self.pushed: dict[str, str] = {}  # item -> node (acknowledged)
        self.push_unknown: dict[str, str] = {}
        self.popped: dict[str, str] = {}  # item -> consumer
        self.pop_unknown = 0
        self.dup = []
        self.use_blpop = True
        self.counter = 0
        self.early_nil = 0

    def setup(self, world, sc):
        self.use_blpop = _has(b"blpop") and _has(b"lpush")

    async def step(self, world, client, rng):
        producer = client.name.rsplit("c", 1)[1]
        producer = int(producer) % 2 == 1
        if not self.use_blpop:
            t = rng.choice((50, 200, 500))
            t0 = trio.current_time()
            r = await client.call("WAIT", 1, t)
            if isinstance(r, int) and trio.current_time() - t0 < t / 1000.0 - 1e-6:
                self.early_nil += 1
                world.violation("sim.blocking_timeout_violation", "WAIT returned early",
                                client.target, client=client.name)
            return
        q = "q:%d" % rng.randrange(self.queues)
        if producer:
            self.counter += 1
            item = "%s-%d" % (client.name, self.counter)
            try:
                r = await client.call("LPUSH", q, item)
            except Disconnected:
                self.push_unknown[item] = client.target
                raise
            if isinstance(r, int):
                self.pushed[item] = client.target
            await world.sleep(rng.uniform(0.0, 0.05))
            return
        keys = [q]
        if rng.random() < 0.3:
            keys.append("q:%d" % rng.randrange(self.queues))
            if keys[1] == keys[0]:
                keys.pop()
        timeout = rng.choice((0.05, 0.2, 0.5, 1))
        t0 = trio.current_time()
        try:
            r = await client.call("BLPOP", *keys, timeout)
        except Disconnected:
            self.pop_unknown += 1
            raise
        if r is None:
            if trio.current_time() - t0 < timeout - 0.0015:
                self.early_nil += 1
                world.violation("sim.blocking_timeout_violation",
                                "BLPOP answered nil after %.4fs, timeout %s"
                                % (trio.current_time() - t0, timeout), client.target,
                                client=client.name)
        elif isinstance(r, list):
            item = r[1].decode()
            if item in self.popped:
                self.dup.append(item)
                world.violation("sim.duplicate_delivery", "item %s popped twice" % item,
                                client.target, item=item)
            self.popped[item] = client.name

    async def monitor(self, world):
        """Missed wake-ups: a list key with elements and a BLPOP waiter."""
        while await world.sleep(0.1):
            for slot in world.live_nodes():
                srv = slot.node.server
                reg = srv.blocking
                if reg is None:
                    continue
                for (dbid, key), w in list(reg.waiters.items()):
                    v = unpacked(srv.dbs[dbid].data.get(key))
                    if v is not None and w and not isinstance(v, bytes) and len(v) > 0:
                        world.violation("sim.missed_wakeup",
                                        "key %s has %d element(s) and %d blocked client(s)"
                                        % (key.decode("latin-1"), len(v), len(w)), slot.name)

    async def check(self, world):
        if not self.use_blpop:
            return
        remaining: dict[str, str] = {}
        for node in world.nodes:
            if not world.nodes[node].up:
                continue
            reader = await _checker(world, node)
            try:
                for i in range(self.queues):
                    r = await _call_retry(world, reader, "LRANGE", "q:%d" % i, 0, -1)
                    for it in r if isinstance(r, list) else []:
                        item = it.decode()
                        if item in remaining or item in self.popped:
                            world.violation("sim.duplicate_delivery",
                                            "item %s both queued and popped" % item, node)
                        remaining[item] = node
            finally:
                reader._drop()
        invented = [i for i in list(remaining) + list(self.popped)
                    if i not in self.pushed and i not in self.push_unknown]
        if invented:
            world.violation("sim.invented_item", "%d item(s) never pushed" % len(invented),
                            items=invented[:10])
        missing = [i for i, node in self.pushed.items()
                   if i not in remaining and i not in self.popped and _durable(world, node)]
        if len(missing) > self.pop_unknown:
            world.violation("sim.acknowledged_write_lost",
                            "%d acknowledged push(es) neither queued nor popped; only %d pop "
                            "reply(s) were lost" % (len(missing), self.pop_unknown),
                            items=missing[:10])

    def summary(self):
        return {"pushed": len(self.pushed), "popped": len(self.popped),
                "pop_unknown": self.pop_unknown, "blpop": self.use_blpop}


@scenario(
    "blocked-clients",
    "BLPOP consumers and LPUSH producers while blocked clients' connections drop and "
    "nodes pause and crash (WAIT when BLPOP is missing)",
    tags=("faults",),
    clients=4, duration=3.0, nodes=1,
)
def _blocked(p):
    return Scenario(
        workload=BlockedClients(),
        nodes=p["nodes"],
        node_config={"appendonly": "yes", "appendfsync": "always"},
        clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 4, "drop_node": 1, "pause": 1, "kill": 1},
                            every=(0.05, 0.4), duration=(0.02, 0.3)),
        duration=p["duration"], settle=5.0,
    )


# --- transactions ------------------------------------------------------------------------


class MultiPairs(Workload):
    """Each client raises two counters together in MULTI/EXEC, one command
    per round trip so that drops land inside transactions (MSET of both
    when MULTI is missing). Checks: the two counters are always equal (read
    with MGET during the run and at the end), and lie between acknowledged
    and sent transactions."""

    def __init__(self):
        self.acked: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.node_of: dict[str, str] = {}
        self.use_multi = True
        self.aborted = 0

    def setup(self, world, sc):
        self.use_multi = _has(b"multi") and _has(b"exec")

    async def step(self, world, client, rng):
        cid = client.name
        if cid not in self.sent:
            self.sent[cid] = self.acked[cid] = 0
            self.node_of[cid] = client.target
        a, b = "a:" + cid, "b:" + cid
        if not self.use_multi:
            n = self.sent[cid] + 1
            self.sent[cid] = n
            r = await client.call("MSET", a, n, b, n)
            if r == b"OK":
                self.acked[cid] = n
            await world.sleep(rng.uniform(0.0, 0.02))
            return
        try:
            await client.call("MULTI")
            await world.sleep(rng.uniform(0.0, 0.01))
            await client.call("INCR", a)
            await world.sleep(rng.uniform(0.0, 0.01))
            await client.call("INCR", b)
            await world.sleep(rng.uniform(0.0, 0.01))
        except Disconnected:
            self.aborted += 1
            raise
        self.sent[cid] += 1
        r = await client.call("EXEC")
        if isinstance(r, list):
            self.acked[cid] += 1
        await world.sleep(rng.uniform(0.0, 0.02))

    async def _verify(self, world, node, when):
        cids = [c for c in self.sent if self.node_of[c] == node]
        if not cids:
            return
        reader = await _checker(world, node, "mget")
        try:
            for cid in cids:
                acked, sent = self.acked[cid], self.sent[cid]
                r = await _call_retry(world, reader, "MGET", "a:" + cid, "b:" + cid)
                if not isinstance(r, list):
                    continue
                va = int(r[0]) if r[0] is not None else 0
                vb = int(r[1]) if r[1] is not None else 0
                if va != vb:
                    world.violation("sim.transaction_atomicity_violation",
                                    "%s: a=%d b=%d" % (cid, va, vb), node, client=cid, when=when)
                elif va > self.sent[cid] or (_durable(world, node) and va < acked):
                    world.violation("sim.acknowledged_write_lost",
                                    "%s: counters %d, acknowledged %d, sent %d"
                                    % (cid, va, acked, sent), node, client=cid, when=when)
        finally:
            reader._drop()

    async def monitor(self, world):
        while await world.sleep(0.25):
            for slot in world.live_nodes():
                with trio.move_on_after(1.0):
                    await self._verify(world, slot.name, "during")

    async def check(self, world):
        for node in world.nodes:
            if world.nodes[node].up:
                await self._verify(world, node, "final")

    def summary(self):
        return {"tx_acked": sum(self.acked.values()), "tx_sent": sum(self.sent.values()),
                "tx_aborted": self.aborted, "multi": self.use_multi}


@scenario(
    "multi-disconnect",
    "MULTI/EXEC pairs of INCRs while connections drop mid-transaction and the node crashes "
    "(MSET when MULTI is missing)",
    tags=("faults",),
    clients=3, duration=3.0, nodes=1,
)
def _multi(p):
    return Scenario(
        workload=MultiPairs(),
        nodes=p["nodes"],
        node_config={"appendonly": "yes", "appendfsync": "always"},
        clients_per_node=p["clients"],
        faults=RandomFaults({"drop": 4, "kill": 1}, every=(0.05, 0.3), duration=(0.02, 0.2)),
        duration=p["duration"], settle=5.0,
    )


# --- DEBUG SLEEP ------------------------------------------------------------------------


class DebugSleep(Workload):
    """One client per node sends DEBUG SLEEP; the others PING. Check: no
    PING reply leaves a node while it sleeps (the pause is the whole node,
    on virtual time)."""

    def __init__(self):
        self.windows: dict[str, list] = {}  # node -> [(start, end)]
        self.replies: dict[str, list] = {}  # node -> [reply time]

    async def step(self, world, client, rng):
        node = client.target
        if client.name.endswith(".c1"):
            secs = rng.choice((0.05, 0.1, 0.3))
            await world.sleep(rng.uniform(0.05, 0.2))
            t0 = trio.current_time()
            await client.call("DEBUG", "SLEEP", secs)
            self.windows.setdefault(node, []).append((t0, t0 + secs))
            return
        await client.call("PING")
        self.replies.setdefault(node, []).append(trio.current_time())
        await world.sleep(rng.uniform(0.0, 0.02))

    async def check(self, world):
        lat = 0.01  # replies already in flight when the sleep began
        for node, wins in self.windows.items():
            for t in self.replies.get(node, []):
                for a, b in wins:
                    if a + lat < t < b - 1e-9:
                        world.violation("sim.pause_not_honoured",
                                        "PING answered at %.4f during DEBUG SLEEP %.4f-%.4f"
                                        % (t, a, b), node)
                        return


@scenario("debug-sleep", "DEBUG SLEEP pauses the whole node on virtual time",
          clients=3, duration=2.0)
def _debug_sleep(p):
    return Scenario(workload=DebugSleep(), clients_per_node=p["clients"],
                    duration=p["duration"], settle=3.0, latency=(0.0002, 0.0005))


# --- cluster ------------------------------------------------------------------------------


def _cluster_state(slot):
    core = slot.node.server.cluster if slot.node is not None else None
    return core.state if core is not None else None


class ClusterWrites(Workload):
    """A cluster of masters formed with CLUSTER ADDSLOTSRANGE and MEET; each
    client appends to its own list (RPUSH) following MOVED redirects.

    Checks after the faults are healed: the cluster converges (every node
    says cluster_state:ok) and, once converged, every node agrees on the
    owner of every slot (I11, C14), no two masters share a configEpoch (I08,
    C09), every acknowledged append is there (appendfsync always), and no
    node holds a key of a slot it does not own (I02/I07)."""

    distinct_epochs = False  # ClusterLoad: one configEpoch per master at formation

    def __init__(self, converge_s: float = 30.0):
        self.converge_s = converge_s
        self.sent: dict[str, int] = {}
        self.acked: dict[str, list[int]] = {}
        self.pools: dict[str, dict[str, SimClient]] = {}
        self.redirects = 0
        self.formed_at = None

    async def prepare(self, world):
        names = list(world.nodes)
        setup = {n: SimClient(world, "setup@" + n, n) for n in names}
        step = 16384 // len(names)
        for i, n in enumerate(names):
            hi = 16383 if i == len(names) - 1 else (i + 1) * step - 1
            await _call_retry(world, setup[n], "CLUSTER", "ADDSLOTSRANGE", i * step, hi)
            if self.distinct_epochs:
                await _call_retry(world, setup[n], "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for n in names[1:]:
            await _call_retry(world, setup[names[0]], "CLUSTER", "MEET", world.nodes[n].host,
                              world.nodes[n].port)
        if await self._converged(world, 30.0):
            self.formed_at = trio.current_time()
        else:
            world.violation("sim.cluster_not_converged", "cluster did not form in 30 s")
        for c in setup.values():
            c._drop()

    def _client(self, world, base: SimClient, node: str) -> SimClient:
        if node == base.target:
            return base
        pool = self.pools.setdefault(base.name, {})
        c = pool.get(node)
        if c is None:
            c = pool[node] = SimClient(world, "%s>%s" % (base.name, node), node, host=base.host)
        return c

    def _node_at(self, world, addr: str) -> str | None:
        host, _, port = addr.rpartition(":")
        for s in world.nodes.values():
            if s.host == host and s.port == int(port):
                return s.name
        return None

    def _next_seq(self, cid: str) -> int:
        """The next sequence number client ``cid`` writes (from 1)."""
        if cid not in self.sent:
            self.sent[cid] = 0
            self.acked[cid] = []
        self.sent[cid] += 1
        return self.sent[cid]

    async def step(self, world, client, rng):
        cid = client.name
        seq = self._next_seq(cid)
        r, c = await self.call_routed(world, client, "RPUSH", "log:" + cid, seq)
        if isinstance(r, int):
            self.acked[cid].append(seq)
            self.on_ack(world, cid, r, c)
        await world.sleep(rng.uniform(0.0, 0.05))

    # the same step without a task (scenario._Driven), unless a subclass
    # has a step of its own

    def fast_begin(self, world, client, rng):
        if client.stream is None or type(self).step is not ClusterWrites.step:
            return None
        cid = client.name
        seq = self._next_seq(cid)
        return client, [[b"RPUSH", ("log:" + cid).encode(), b"%d" % seq]], seq

    def fast_end(self, world, client, rng, conn, argvs, replies, seq):
        r = replies[0]
        if isinstance(r, ReplyError) and str(r).startswith(("MOVED", "ASK")):
            return None  # fast_finish follows it
        if isinstance(r, int):
            self.acked[client.name].append(seq)
            self.on_ack(world, client.name, r, conn)
        return rng.uniform(0.0, 0.05)

    async def fast_finish(self, world, client, rng, conn, argvs, replies, seq):
        r, c = await self.call_routed(world, client, *argvs[0], answered=(replies[0], conn))
        if isinstance(r, int):
            self.acked[client.name].append(seq)
            self.on_ack(world, client.name, r, c)
        await world.sleep(rng.uniform(0.0, 0.05))

    async def call_routed(self, world, base: SimClient, *args, retry=False, timeout=None,
                          answered=None):
        """Send a command the way a cluster client does: follow MOVED and
        ASK (up to 5 hops) with a connection per node from ``base``'s pool.
        Returns (reply, the client that answered). ``retry``: a checker's
        call, retried across disconnects. ``timeout``: a client's socket
        timeout: a call that gets no reply in time drops its connection and
        answers None (outcome unknown). ``answered``: (reply, client) of
        the first hop, made already."""
        c = base
        r = None
        for _hop in range(5):
            if answered is not None:
                r, c = answered
                answered = None
            elif retry:
                r = await _call_retry(world, c, *args)
            elif timeout is not None:
                with trio.move_on_after(timeout) as cs:
                    r = await c.call(*args)
                if cs.cancelled_caught:
                    c._drop()
                    return None, c
            else:
                r = await c.call(*args)
            if isinstance(r, ReplyError) and str(r).startswith(("MOVED", "ASK")):
                self.redirects += 1
                target = self._node_at(world, str(r).split()[2])
                if target is None:
                    break
                c = self._client(world, base, target)
                if str(r).startswith("ASK"):
                    r = (await c.pipeline([("ASKING",), args]))[1]
                    if not (isinstance(r, ReplyError) and str(r).startswith("MOVED")):
                        break
                continue
            break
        return r, c

    def drop_pool(self, base: SimClient) -> None:
        base._drop()
        for c in self.pools.pop(base.name, {}).values():
            c._drop()

    def on_ack(self, world, cid: str, length: int, client) -> None:
        """An RPUSH was acknowledged with the list's new length (a hook)."""

    async def _converged(self, world, limit: float) -> bool:
        deadline = trio.current_time() + limit
        while trio.current_time() < deadline:
            states = [_cluster_state(s) for s in world.live_nodes()]
            if states and all(st is not None and st.state_ok for st in states):
                maps = {_owner_ids(st) for st in states}
                if len(maps) == 1:
                    return True
            await trio.sleep(0.1)
        return False

    async def check(self, world):
        for pool in self.pools.values():
            for c in pool.values():
                c._drop()
        if not await self._converged(world, self.converge_s):
            oks = {s.name: bool(_cluster_state(s) and _cluster_state(s).state_ok)
                   for s in world.live_nodes()}
            world.violation("cluster.state_transition_contract_violation",
                            "cluster did not converge %.0f s after the faults ended"
                            % self.converge_s, state_ok=oks)
            return
        states = {s.name: _cluster_state(s) for s in world.live_nodes()}
        # I08: distinct configEpochs among masters that own slots
        for name, st in states.items():
            epochs: dict[int, str] = {}
            for n in st.nodes.values():
                if n.is_master and any(n.slots):
                    if n.config_epoch in epochs:
                        world.violation(
                            "cluster.config_epoch_collision_resolution_violation",
                            "masters %s and %s share configEpoch %d"
                            % (epochs[n.config_epoch][:8], n.id[:8], n.config_epoch), name)
                    epochs[n.config_epoch] = n.id
        # I02/I07: no node holds keys of slots it does not serve (a replica
        # holds its master's keys: replication)
        for s in world.live_nodes():
            st = states[s.name]
            me = st.myself
            for key in list(s.node.server.dbs[0].data):
                owner = st.slots[key_slot(key)]
                if owner is not me and not (
                        owner is not None and me.is_replica and me.master_id == owner.id):
                    world.violation("cluster.slot_owner_query_violation",
                                    "key %r held by a node that does not own its slot" % key,
                                    s.name)
                    break
        # acknowledged appends (AOF always on every node)
        names = [s.name for s in world.live_nodes()]
        if not names:
            return
        reader = SimClient(world, "checker", names[0])
        try:
            for cid in sorted(self.acked):
                vals = await self.read_log(world, reader, cid)
                if vals is None:
                    continue
                have = set(vals)
                missing = [x for x in self.acked[cid] if x not in have]
                if missing:
                    world.violation("sim.acknowledged_write_lost",
                                    "%d acknowledged append(s) of %s lost" % (len(missing), cid),
                                    missing=missing[:10])
        finally:
            self.drop_pool(reader)

    async def read_log(self, world, reader: SimClient, cid: str) -> list[int] | None:
        """A client's list as its slot's owner has it (None: no answer)."""
        r, _ = await self.call_routed(world, reader, "LRANGE", "log:" + cid, 0, -1, retry=True)
        return [int(x) for x in r] if isinstance(r, list) else None

    def summary(self):
        return {"acked": sum(len(v) for v in self.acked.values()),
                "sent": sum(self.sent.values()), "redirects": self.redirects,
                "formed_at": self.formed_at}


@scenario(
    "cluster-faults",
    "three cluster masters (bus and all) formed in the simulator; clients follow MOVED while "
    "nodes are partitioned, paused, restarted from nodes.conf and AOF; the cluster must "
    "converge with one owner per slot and distinct configEpochs",
    tags=("faults", "cluster"),
    nodes=3, clients=2, duration=6.0,
)
def _cluster(p):
    return Scenario(
        workload=ClusterWrites(),
        nodes=p["nodes"],
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "1000",
                     "appendonly": "yes", "appendfsync": "always",
                     # replicas must have synced before the kill at 1 s
                     "repl-diskless-sync-delay": "0"},
        clients_per_node=p["clients"],
        faults=RandomFaults({"partition": 2, "drop_node": 1, "pause": 1, "kill": 1},
                            every=(0.3, 1.5), duration=(0.2, 2.5),
                            crash_modes=("lose", "keep")),
        duration=p["duration"], settle=10.0,
    )


class ClusterIdle(ClusterWrites):
    """A formed cluster with no client traffic: only the bus runs (pings,
    gossip, cron). The speed benchmark for simulated clusters; checks that
    the cluster stays converged."""

    async def step(self, world, client, rng):  # pragma: no cover - no clients
        await world.sleep(1.0)


@scenario(
    "cluster-idle",
    "N cluster masters formed in the simulator and left idle (bus traffic only, default "
    "cron rate); the cluster must stay converged (the cluster speed benchmark)",
    tags=("bench", "cluster"),
    nodes=6, duration=60.0, node_timeout=15000,
)
def _cluster_idle(p):
    return idle_cluster(p["nodes"], p["node_timeout"], p["duration"])


def idle_cluster(nodes: int, node_timeout: int, duration: float, faults=None,
                 settle: float = 1.0) -> Scenario:
    """A formed cluster of masters with no clients (ClusterIdle)."""
    return Scenario(
        workload=ClusterIdle(),
        nodes=nodes,
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": str(node_timeout)},
        clients_per_node=0, faults=faults, duration=duration, settle=settle,
    )


@scenario(
    "cluster-idle-faults",
    "three cluster masters with no clients at all (their crons sleep through empty ticks) "
    "while nodes are partitioned, paused, killed and restarted from nodes.conf; the cluster "
    "must detect the faults and converge again",
    tags=("faults", "cluster"),
    nodes=3, duration=8.0, node_timeout=1000,
)
def _cluster_idle_faults(p):
    faults = RandomFaults({"partition": 2, "drop_node": 1, "pause": 1, "kill": 1},
                          every=(0.3, 1.5), duration=(0.2, 2.5), crash_modes=("lose", "keep"))
    return idle_cluster(p["nodes"], p["node_timeout"], p["duration"], faults, settle=10.0)


class ClusterLoad(ClusterWrites):
    """SET/GET on random keys against a formed cluster, with think time: the
    busy-cluster speed benchmark (issue 15). Clients route the way a cluster
    client does: a slot map (filled from the slot ranges the cluster was
    formed with, corrected by MOVED) picks the node, and each client opens a
    connection to every master before its first command and keeps them.
    Checks: the cluster stays converged."""

    def __init__(self, keys: int = 1000, think: tuple = (0.5, 1.5), value_size: int = 16):
        super().__init__()
        self.keys = keys
        self.think = think
        self.value = b"v" * value_size
        self.owner: list = []  # slot -> node name (the clients' shared slot map)
        self.conns: dict[str, dict] = {}  # client -> its connection per master
        self.drawn: dict[str, tuple] = {}  # client -> a draw fast_begin left to step
        self.owner_names: list | None = None  # the distinct nodes of owner (memo)

    # a distinct configEpoch per master (as redis-cli --cluster create
    # gives): no collisions left to resolve in a short run
    distinct_epochs = True

    async def prepare(self, world):
        await super().prepare(world)
        names = list(world.nodes)
        step = 16384 // len(names)
        self.owner = [names[min(s // step, len(names) - 1)] for s in range(16384)]
        self.owner_names = None

    def _draw(self, client, rng) -> tuple:
        """The next request's key, its slot and whether it is a SET: what
        ``fast_begin`` drew for a step it handed to ``step``, else drawn now."""
        d = self.drawn.pop(client.name, None) if self.drawn else None
        if d is None:
            k = b"key:%d" % rng.randrange(self.keys)
            d = (k, key_slot(k), rng.random() < 0.5)
        return d

    async def step(self, world, client, rng):
        if self.owner and client.name not in self.conns:
            # a cluster client opens a connection to every master first (so
            # the steady state has no connects left in it)
            conns = {}
            for n in self._masters():
                c = conns[n] = self._client(world, client, n)
                if c.stream is None:
                    await c.connect()
            self.conns[client.name] = conns
        k, slot, is_set = self._draw(client, rng)
        c = self._client(world, client, self.owner[slot]) if self.owner else client
        if is_set:
            r, c = await self.call_routed(world, c, "SET", k, self.value)
        else:
            r, c = await self.call_routed(world, c, "GET", k)
        if self.owner and c.target != self.owner[slot] and not isinstance(r, ReplyError):
            self._learn(slot, c.target)  # from MOVED
        await world.sleep(rng.uniform(*self.think))

    def _learn(self, slot: int, node: str) -> None:
        self.owner[slot] = node
        self.owner_names = None

    def _masters(self) -> list:
        """The nodes the slot map names, in order of first slot (what a
        client connects to first; kept until the map changes)."""
        if self.owner_names is None:
            self.owner_names = list(dict.fromkeys(self.owner))
        return self.owner_names

    # the same step without a task (scenario._Driven)

    def fast_begin(self, world, client, rng):
        conns = self.conns.get(client.name)
        if conns is None:
            return None
        d = self._draw(client, rng)
        k, slot, is_set = d
        owner = self.owner[slot]
        c = conns.get(owner) or self._client(world, client, owner)
        if c.stream is None:
            self.drawn[client.name] = d  # the step reconnects, with this draw
            return None
        if is_set:
            return c, [[b"SET", k, self.value]], slot
        return c, [[b"GET", k]], slot

    def fast_end(self, world, client, rng, conn, argvs, replies, slot):
        r = replies[0]
        if isinstance(r, ReplyError):
            if str(r).startswith(("MOVED", "ASK")):
                return None  # fast_finish follows it
        elif conn.target != self.owner[slot]:
            self._learn(slot, conn.target)
        return rng.uniform(*self.think)

    async def fast_finish(self, world, client, rng, conn, argvs, replies, slot):
        r, c = await self.call_routed(world, conn, *argvs[0], answered=(replies[0], conn))
        if c.target != self.owner[slot] and not isinstance(r, ReplyError):
            self._learn(slot, c.target)  # from MOVED
        await world.sleep(rng.uniform(*self.think))


@scenario(
    "cluster-load",
    "N cluster masters (bus and all), M clients per node doing SET/GET at about 1/think "
    "ops/s each, routed by slot; no faults; the cluster must stay converged (the busy "
    "cluster speed benchmark)",
    tags=("bench", "cluster"),
    nodes=6, clients=100, duration=10.0, think=1.0, keys=1000, log_ops=False, driven=True,
    driven_nodes=True,
)
def _cluster_load(p):
    t = p["think"]
    return Scenario(
        workload=ClusterLoad(keys=p["keys"], think=(t / 2, t * 1.5)),
        nodes=p["nodes"],
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "15000"},
        clients_per_node=p["clients"],
        duration=p["duration"], settle=2.0, log_ops=p["log_ops"], driven_clients=p["driven"],
        driven_nodes=p["driven_nodes"],
    )


class ClusterFailover(ClusterWrites):
    """Masters with one replica each (CLUSTER REPLICATE); a master is killed
    and kept down past the node timeout: its replica must win the election
    (C11) and serve the slots, with a configEpoch of its own, and the
    cluster converges. Acknowledged appends are not checked here: a write
    not yet replicated when its master dies is lost in Redis too (WAIT is
    the tool for that)."""

    def __init__(self, masters: int, converge_s: float = 30.0):
        super().__init__(converge_s)
        self.masters = masters
        self.promoted: list[str] = []

    async def prepare(self, world):
        names = list(world.nodes)
        masters, replicas = names[: self.masters], names[self.masters:]
        setup = {n: SimClient(world, "setup@" + n, n) for n in names}
        step = 16384 // len(masters)
        for i, n in enumerate(masters):
            hi = 16383 if i == len(masters) - 1 else (i + 1) * step - 1
            await _call_retry(world, setup[n], "CLUSTER", "ADDSLOTSRANGE", i * step, hi)
            await _call_retry(world, setup[n], "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for n in names[1:]:
            await _call_retry(world, setup[names[0]], "CLUSTER", "MEET", world.nodes[n].host,
                              world.nodes[n].port)
        deadline = trio.current_time() + 30.0
        ids = {}
        for n in masters:
            ids[n] = await _call_retry(world, setup[n], "CLUSTER", "MYID")
        for i, r in enumerate(replicas):
            m = masters[i % len(masters)]
            while trio.current_time() < deadline:
                got = await setup[r].call("CLUSTER", "REPLICATE", ids[m])
                if got == "OK" or got == b"OK":
                    break
                await trio.sleep(0.1)
        if await self._converged(world, 30.0):
            self.formed_at = trio.current_time()
        else:
            world.violation("sim.cluster_not_converged", "cluster did not form in 30 s")
        for c in setup.values():
            c._drop()

    async def check(self, world):
        acked, self.acked = self.acked, {}
        try:
            await super().check(world)
        finally:
            self.acked = acked
        states = {s.name: _cluster_state(s) for s in world.live_nodes()}
        for name, st in states.items():
            if st is None:
                continue
            # every slot served by a live master (the killed masters' replicas took over)
            live_ids = {_cluster_state(s).myself.id for s in world.live_nodes()}
            unserved = sum(1 for n in st.slots if n is None or n.id not in live_ids)
            if unserved:
                world.violation("cluster.failover_contract_violation",
                                "%d slots not served by a live master" % unserved, name)
                break
        for s in world.live_nodes():
            me = _cluster_state(s).myself
            if me.is_master and any(me.slots) and list(world.nodes).index(s.name) >= self.masters:
                self.promoted.append(s.name)

    def summary(self):
        out = super().summary()
        out["promoted"] = sorted(self.promoted)
        return out


@scenario(
    "cluster-failover",
    "three masters with a replica each; one master is killed and stays down: its replica "
    "wins the election, takes the slots with a new configEpoch, the cluster converges",
    tags=("faults", "cluster"),
    nodes=6, clients=1, duration=8.0, victim=1,
)
def _cluster_failover(p):
    from frtrio.sim.faults import Schedule

    victim = "n%d" % p["victim"]
    return Scenario(
        workload=ClusterFailover(masters=p["nodes"] // 2),
        nodes=p["nodes"],
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "1000",
                     "appendonly": "yes", "appendfsync": "always",
                     # replicas must have synced before the kill at 1 s
                     "repl-diskless-sync-delay": "0"},
        clients_per_node=p["clients"],
        faults=Schedule([(1.0, "kill", {"node": victim, "crash": "keep"})]),
        duration=p["duration"], settle=10.0,
    )


# --- replication (standalone master and replicas) ------------------------------------


class ReplicatedLog(Workload):
    """A master (n1) and replicas (replicaof n1). Clients of the master
    append increasing numbers to their own list and now and then ask
    ``WAIT 1``; clients of a replica read (a replica serves reads). Faults
    kill nodes, drop and partition links, pause nodes.

    Checks: when ``WAIT`` answers n for a write that has a replication
    offset, at least n replicas that stayed up since the write hold it
    (I-R1: an acknowledged WAIT is true); at the
    end, with faults healed, every replica has caught up: the same
    replication offset as its master and the same dataset digest (I-R2).
    """

    def __init__(self, think: tuple = (0.0, 0.02), wait_ratio: float = 0.3):
        self.think = think
        self.wait_ratio = wait_ratio
        self.seq: dict[str, int] = {}
        self.waits = 0
        self.wait_acks = 0
        self.reads = 0
        self.caught_up = 0

    def _replicas(self, world) -> list[str]:
        return [n for n in world.nodes if n != "n1"]

    def _holds(self, world, name: str, key: bytes, seq: bytes) -> bool:
        slot = world.nodes[name]
        if not slot.up or slot.node is None:
            return False
        srv = slot.node.server
        v = unpacked(srv.dbs[0].data.get(key))
        return v is not None and seq in list(v)

    async def step(self, world, client, rng):
        if client.target != "n1":
            await client.call("LRANGE", "log:%s" % client.name, 0, -1)
            self.reads += 1
        else:
            cid = client.name
            n = self.seq.get(cid, 0) + 1
            self.seq[cid] = n
            m = world.nodes["n1"]
            # WAIT's promise is about replication offsets: a write made while
            # the master keeps no backlog (a fresh history, after a restart)
            # has offset 0, which every replica "acknowledges" at once, in
            # Redis as here. Only writes with an offset are checked.
            m_inc = m.incarnation
            has_offset = m.up and m.node is not None and m.node.server.repl.state.backlog is not None
            r = await client.call("RPUSH", "log:" + cid, n)
            if isinstance(r, int) and rng.random() < self.wait_ratio:
                before = {x: world.nodes[x].incarnation for x in self._replicas(world)}
                got = await client.call("WAIT", 1, 200)
                self.waits += 1
                if isinstance(got, int) and got > 0 and has_offset and m.incarnation == m_inc:
                    self.wait_acks += 1
                    key, val = b"log:" + cid.encode(), b"%d" % n
                    have = sum(1 for x, inc in before.items()
                               if world.nodes[x].incarnation == inc
                               and self._holds(world, x, key, val))
                    stayed = sum(1 for x, inc in before.items()
                                 if world.nodes[x].incarnation == inc and world.nodes[x].up)
                    if have < min(got, stayed):
                        world.violation("sim.repl_wait_ack_not_on_replicas",
                                        "WAIT answered %d but %d replica(s) hold %s %s"
                                        % (got, have, key.decode(), n), "n1", client=cid)
        if self.think[1] > 0:
            await world.sleep(rng.uniform(*self.think))

    async def check(self, world):
        master = await _checker(world, "n1", "repl-check")
        readers = {x: await _checker(world, x, "repl-check") for x in self._replicas(world)}
        try:
            deadline = trio.current_time() + 30.0
            pending = set(readers)
            m_off = m_digest = None
            while pending and trio.current_time() < deadline:
                info = await _call_retry(world, master, "INFO", "replication")
                m_off = _info_field(info, b"master_repl_offset")
                m_digest = await _call_retry(world, master, "DEBUG", "DIGEST")
                for x in sorted(pending):
                    info = await _call_retry(world, readers[x], "INFO", "replication")
                    up = _info_field(info, b"master_link_status") == b"up"
                    if up and _info_field(info, b"master_repl_offset") == m_off:
                        d = await _call_retry(world, readers[x], "DEBUG", "DIGEST")
                        if d == m_digest:
                            pending.discard(x)
                            self.caught_up += 1
                            continue
                        world.violation("sim.repl_replica_diverged",
                                        "replica at the master's offset %s has another dataset"
                                        % m_off.decode(), x)
                        pending.discard(x)
                if pending:
                    await trio.sleep(0.2)
            for x in sorted(pending):
                world.violation("sim.repl_replica_not_caught_up",
                                "replica did not reach the master's offset in 30 s after "
                                "the faults healed", x)
        finally:
            master._drop()
            for r in readers.values():
                r._drop()

    def summary(self):
        return {"appends": sum(self.seq.values()), "waits": self.waits,
                "waits_acked": self.wait_acks, "replica_reads": self.reads,
                "replicas_caught_up": self.caught_up}


def _info_field(info, name: bytes):
    for line in bytes(info).split(b"\r\n"):
        if line.startswith(name + b":"):
            return line[len(name) + 1:]
    return None


@scenario(
    "repl-faults",
    "a master and two replicas (replicaof) under kills, link drops, partitions and pauses: "
    "WAIT's answer holds, and every replica catches up with the master's dataset",
    tags=("faults", "replication"),
    nodes=3, clients=2, duration=5.0, sync_delay=0, diskless="yes",
)
def _repl_faults(p):
    replicas = {"n%d" % i: {"replicaof": "n1 6379"} for i in range(2, p["nodes"] + 1)}
    return Scenario(
        workload=ReplicatedLog(),
        nodes=p["nodes"],
        node_config={"appendonly": "yes", "appendfsync": "always", "repl-timeout": "5",
                     "repl-diskless-sync": p["diskless"],
                     "repl-diskless-sync-delay": str(p["sync_delay"])},
        node_configs=replicas,
        clients_per_node=p["clients"],
        faults=RandomFaults({"kill": 1, "drop_node": 2, "partition": 1, "oneway": 1,
                             "pause": 1, "delay": 1},
                            every=(0.2, 0.8), duration=(0.05, 1.0)),
        duration=p["duration"], settle=10.0,
    )


# atomic slot migration scenarios (registered on import)
from frtrio.sim import scenarios_asm, scenarios_failover  # noqa: E402,F401
