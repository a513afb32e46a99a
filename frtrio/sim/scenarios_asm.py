"""Atomic slot migration under faults: the cancellation stress scenario.

Three masters; clients append to their own lists (RPUSH, following MOVED)
while the first master's whole slot range is imported by the second one
with CLUSTER MIGRATION IMPORT. Each seed draws what interrupts it: nothing,
a CANCEL on the destination or on the source, a CLIENT PAUSE on the
destination, and, from the nemesis, partitions, paused processes, dropped connections and
kills with restarts, at random moments of the task.

Checked after the faults are healed and the task has ended:

* the cluster converges, every node agrees on one owner per slot, distinct
  configEpochs (the cluster checks of ``ClusterWrites``);
* every acknowledged append is in its list exactly once, in order, and no
  client ever saw its list shorter than before (a key never went missing
  during the move);
* no node holds a key of a slot it does not own (no partial import left);
* no import task is still active and no migration connection is left
  (every task's cancel scope has ended).
"""

from __future__ import annotations

import trio

from frtrio.cluster.slots import key_slot
from frtrio.sim.client import Disconnected, ReplyError, SimClient
from frtrio.sim.faults import RandomFaults
from frtrio.sim.scenario import Scenario, scenario
from frtrio.sim.scenarios import ClusterWrites, _call_retry

CAUSES = ("none", "cancel-dest", "cancel-source", "client-pause")


class AsmMigration(ClusterWrites):
    def __init__(self, converge_s: float = 30.0, preload: int = 300, trim: str = "default"):
        super().__init__(converge_s)
        self.preload = preload
        self.trim = trim  # DEBUG ASM-TRIM-METHOD on every node at the start
        self.lens: dict[str, int] = {}
        self.cause = ""
        self.outcome = ""
        self.task_id = ""
        self.interrupted_in = ""  # the import's state when the cause struck

    async def prepare(self, world):
        await super().prepare(world)
        names = list(world.nodes)
        hi = 16384 // len(names) - 1
        setup = SimClient(world, "preload", names[0])
        try:
            i = n = 0
            while n < self.preload:
                k = "pre:%d" % i
                i += 1
                if key_slot(k.encode()) <= hi:
                    await _call_retry(world, setup, "SET", k, "v" * 64)
                    n += 1
        finally:
            setup._drop()

    def on_ack(self, world, cid, length, client):
        last = self.lens.get(cid, 0)
        if length <= last:
            world.violation("sim.key_missing",
                            "RPUSH to log:%s answered length %d after %d: the list went "
                            "missing or shrank" % (cid, length, last), client.target)
        self.lens[cid] = length

    async def monitor(self, world):
        rng = world.rng("asm")
        self.cause = CAUSES[rng.randrange(len(CAUSES))]
        names = list(world.nodes)
        src, dst = names[0], names[1]
        hi = 16384 // len(names) - 1
        if self.trim != "default":
            # (a node restarted by the nemesis comes back with the default)
            for name in names:
                slot = world.nodes[name]
                if slot.node is not None and slot.up:
                    slot.node.server.cluster.migrations.set_trim_method(self.trim, 0)
        op = SimClient(world, "operator", dst)
        try:
            if not await world.sleep(rng.uniform(0.05, 0.8)):
                return
            r = await _call_retry(world, op, "CLUSTER", "MIGRATION", "IMPORT", 0, hi)
            if isinstance(r, ReplyError):
                world.violation("sim.asm_import_refused", "IMPORT refused: %s" % r, dst)
                return
            self.task_id = r.decode() if isinstance(r, bytes) else str(r)
            world.log.emit("asm.import", dst, outcome="info", task=self.task_id,
                           cause=self.cause)
            if not await world.sleep(rng.uniform(0.0, 1.2)):
                return
            slot = world.nodes[dst]
            if slot.node is not None and slot.up:
                t = slot.node.server.cluster.migrations.find(self.task_id, archived=True)
                self.interrupted_in = t.state if t is not None else "lost"
            if self.cause == "cancel-dest":
                await _call_retry(world, op, "CLUSTER", "MIGRATION", "CANCEL", "ALL")
            elif self.cause == "cancel-source":
                s = SimClient(world, "operator@src", src)
                try:
                    await _call_retry(world, s, "CLUSTER", "MIGRATION", "CANCEL", "ALL")
                finally:
                    s._drop()
            elif self.cause == "client-pause":
                await _call_retry(world, op, "CLIENT", "PAUSE", 100, "WRITE")
        except Disconnected:
            return
        finally:
            op._drop()

    async def _tasks_done(self, world, limit: float) -> bool:
        deadline = trio.current_time() + limit
        while trio.current_time() < deadline:
            busy = False
            for s in world.live_nodes():
                core = s.node.server.cluster
                if core is None:
                    continue
                if any(t.op == "import" for t in core.migrations.tasks):
                    busy = True
                if getattr(s.node, "migration", None) is not None and any(
                        ":" not in k for k in s.node.migration.scopes):
                    busy = True
            if not busy:
                return True
            await trio.sleep(0.1)
        return False

    async def check(self, world):
        if not await self._tasks_done(world, self.converge_s):
            left = {s.name: [(t.op, t.state) for t in s.node.server.cluster.migrations.tasks]
                    for s in world.live_nodes() if s.node.server.cluster is not None}
            world.violation("cluster.asm_task_left_behind",
                            "an import task or a migration connection is still active "
                            "%.0f s after the faults ended" % self.converge_s, tasks=left)
        for s in world.live_nodes():
            core = s.node.server.cluster
            if core is None:
                continue
            for t in core.migrations.archived:
                if t.id == self.task_id and t.op == "import":
                    self.outcome = t.state
        await super().check(world)
        # exactly once and in order: the lists hold increasing sequence numbers
        names = [s.name for s in world.live_nodes()]
        if not names:
            return
        reader = SimClient(world, "order-checker", names[0])
        try:
            for cid in sorted(self.acked):
                vals = await self.read_log(world, reader, cid)
                if vals is not None and any(b <= a for a, b in zip(vals, vals[1:])):
                    world.violation("sim.asm_write_duplicated_or_reordered",
                                    "log:%s is not strictly increasing" % cid)
        finally:
            self.drop_pool(reader)

    def summary(self):
        out = super().summary()
        out.update(cause=self.cause, outcome=self.outcome, interrupted_in=self.interrupted_in)
        return out


@scenario(
    "asm-faults",
    "three masters; the second imports the first one's slots with CLUSTER MIGRATION while "
    "clients append; the task is interrupted (cancel on either side, client pause, or "
    "nothing) and the nemesis partitions, pauses, drops and kills nodes at random moments; "
    "every acknowledged write must be on the slot's one owner exactly once, no partial "
    "import or task may be left",
    tags=("faults", "cluster", "asm"),
    nodes=3, clients=2, duration=5.0, key_save_delay=2000, max_lag=64, trim="default",
)
def _asm(p):
    if p["trim"] not in ("default", "none", "bg", "active"):
        raise KeyError("trim must be default, none, bg or active, not %r" % p["trim"])
    return Scenario(
        workload=AsmMigration(trim=p["trim"]),
        nodes=p["nodes"],
        node_config={"cluster-enabled": "yes", "cluster-node-timeout": "1000",
                     "appendonly": "yes", "appendfsync": "always",
                     # a snapshot of ~0.6 s and a streaming phase that must
                     # catch up closely, so interruptions land inside the task
                     "rdb-key-save-delay": str(p["key_save_delay"]),
                     "cluster-slot-migration-handoff-max-lag-bytes": str(p["max_lag"])},
        clients_per_node=p["clients"],
        faults=RandomFaults({"partition": 2, "drop_node": 2, "pause": 1, "kill": 1},
                            every=(0.2, 1.2), duration=(0.1, 1.5),
                            crash_modes=("lose", "keep")),
        duration=p["duration"], settle=10.0,
    )
