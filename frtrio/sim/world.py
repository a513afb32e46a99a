"""SimWorld: everything one simulated run shares.

The world owns the virtual clock, the seeded RNG streams, the network, one
disk per node, the nodes' lifecycles (start, kill, restart), the clients and
the run's event log. Faults are methods here; the nemesis (``faults.py``)
and explicit fault schedules call them, node code never does.

Every node runs in its own task under the world's root nursery, inside its
own cancel scope: killing a node crashes its disk first (so the dying node's
cleanup code cannot make more data durable), resets its connections, then
cancels the scope and waits until every task of the node has finished.
"""

from __future__ import annotations

import contextvars
import gc
import hashlib
import logging
import random

import trio

from frtrio.config import Config, canonical
from frtrio.core.events import EventLog, digest
from frtrio.sim import sched
from frtrio.sim.env import SimEnv
from frtrio.sim.fs import CRASH_MODES, SimDisk
from frtrio.sim.net import SimNet

# (node name, incarnation) of the node a task belongs to; inherited by every
# task a node spawns, which is how the leak checker and the log handler know
# whose a task is.
CURRENT_NODE: contextvars.ContextVar = contextvars.ContextVar("frtrio_sim_node", default=None)

# 2026-01-01T00:00:00Z: the wall clock of every node at virtual time 0
EPOCH_US = 1_767_225_600_000_000

# the collector's first-generation threshold while a world runs (see run)
SIM_GC_GEN0 = 10000

DEFAULT_NODE_CONFIG = {
    "protected-mode": "no",
    "enable-debug-command": "yes",
    "dir": "/data",
}


class NodeSlot:
    """A node name and everything that outlives one incarnation of it."""

    def __init__(self, name: str, host: str, port: int, config: dict, node_class, index: int):
        self.name = name
        self.host = host
        self.port = port
        self.config = config
        self.node_class = node_class
        self.index = index
        self.incarnation = 0
        self.node = None
        self.scope: trio.CancelScope | None = None
        self.done: trio.Event | None = None
        self.state = "down"  # down | up | killed | stopped | failed
        self.clock_offset_us = 0
        self.error = ""

    @property
    def up(self) -> bool:
        return self.state == "up"


class TaskTracker(trio.abc.Instrument):
    """Knows which live tasks belong to which node incarnation.

    A task belongs to a node when it was spawned (directly or not) by that
    node's runner task. When the runner returns, none may be left: trio's
    nurseries guarantee it unless node code spawns into a nursery it does
    not own, or uses ``spawn_system_task``; both are leaks."""

    def __init__(self):
        self.live: dict[int, tuple] = {}  # id(task) -> (owner, name); lookup only
        self.system_leaks: list[str] = []
        self._main_seen = False

    def task_spawned(self, task) -> None:
        owner = task.context.get(CURRENT_NODE)
        if owner is not None:
            self.live[id(task)] = (owner, task.name)
        pn = task.parent_nursery
        if pn is not None and pn.parent_task is trio.lowlevel.current_root_task():
            if task.name.startswith("frtrio."):
                if self._main_seen:
                    self.system_leaks.append(task.name)
                self._main_seen = True

    def task_exited(self, task) -> None:
        self.live.pop(id(task), None)

    def owned_by(self, owner) -> list[str]:
        return [name for (o, name) in self.live.values() if o == owner]


class _LogToEvents(logging.Handler):
    """Node log lines become ``node.log`` events (no wall-clock stamps)."""

    def __init__(self, world):
        super().__init__(logging.INFO)
        self.world = world

    def emit(self, record) -> None:
        owner = CURRENT_NODE.get()
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover
            msg = str(record.msg)
        self.world.log.emit("node.log", owner[0] if owner else "", outcome="info",
                            level=record.levelname, message=msg)


class _Sleeper:
    __slots__ = ("waiter",)

    def __init__(self):
        self.waiter = None


class SimWorld:
    def __init__(self, *, seed: int, scenario_id: str = "", mode: str = "strict",
                 replay_cmd: str = "", latency: tuple[float, float] = (0.0, 0.0),
                 log_file=None, keep_lines: bool = False, log_ops: bool = True,
                 epoch_us: int = EPOCH_US):
        self.seed = seed
        self.scenario_id = scenario_id
        self.mode = mode
        self.epoch_us = epoch_us
        from frtrio.sim.sched import SimClock

        self.clock = SimClock()
        self._rngs: dict[str, random.Random] = {}
        self.net = SimNet(self.rng("net"), latency=latency, clock=self.clock)
        self.disks: dict[str, SimDisk] = {}
        self.nodes: dict[str, NodeSlot] = {}
        self.client_hosts: dict[str, None] = {}
        self.tasks = TaskTracker()
        self.nursery: trio.Nursery | None = None
        self.stopping = False
        # tasks in world.sleep, woken early when the run starts stopping
        self._sleepers: dict[int, _Sleeper] = {}
        self._sleeper_seq = 0
        # clients between steps without a task (scenario._Driven), in the
        # order they left their tasks; woken as the sleepers are
        self.driven: dict[int, object] = {}
        self._driven_seq = 0
        self.driven_to_task = 0  # steps a driven client handed back to a task (not logged)
        self.after_restart: list = []  # async callbacks (world, name)
        self.violations: list[dict] = []
        self.ops = 0
        self.op_errors = 0
        self.disconnects = 0
        self.faults = 0
        self.log_ops = log_ops
        self.conns_from_clock = False  # (Scenario.driven_nodes)
        self.end_time = 0.0
        self.phase_marks: dict = {}  # (process CPU s, ops, virtual s) by phase; never logged
        self._hasher = hashlib.sha256()
        self._file = log_file
        self.lines: list[str] | None = [] if keep_lines else None
        self.log = EventLog(
            self._write, clock_us=self._log_clock, suite_id="frtrio-sim",
            test_or_scenario_id=scenario_id, mode=mode, seed=seed, replay_cmd=replay_cmd,
        )

    # --- log --------------------------------------------------------------------

    def _write(self, line: str) -> None:
        self._hasher.update(line.encode("ascii"))
        if self._file is not None:
            self._file.write(line)
        if self.lines is not None:
            self.lines.append(line)

    def fingerprint(self) -> str:
        return self._hasher.hexdigest()

    def _log_clock(self) -> int:
        return self.epoch_us + int(round(trio.current_time() * 1_000_000))

    def violation(self, reason_code: str, message: str, node: str = "", **detail) -> None:
        rec = self.log.emit("check.violation", node, outcome="violation",
                            reason_code=reason_code, message=message, **detail)
        self.violations.append(rec)

    # --- randomness and time ------------------------------------------------------

    def rng(self, purpose: str) -> random.Random:
        """World-level seeded streams (net latency, nemesis, workloads)."""
        r = self._rngs.get(purpose)
        if r is None:
            r = self._rngs[purpose] = random.Random("%s:sim:%s" % (self.seed, purpose))
        return r

    def unix_us(self, node: str) -> int:
        slot = self.nodes.get(node)
        off = slot.clock_offset_us if slot is not None else 0
        return self.epoch_us + int(round(trio.current_time() * 1_000_000)) + off

    async def sleep(self, seconds: float) -> bool:
        """Sleep, or return early (False) when the run starts stopping."""
        if self.stopping:
            await trio.lowlevel.checkpoint()
            return False
        w = _Sleeper()
        key = self._sleeper_seq = self._sleeper_seq + 1
        self._sleepers[key] = w
        try:
            await sched.park(self.clock._now + seconds, w, self.clock)
        finally:
            del self._sleepers[key]
        return not self.stopping

    def begin_stop(self) -> None:
        self.stopping = True
        for w in list(self._sleepers.values()):
            sched.wake(w)
        for d in list(self.driven.values()):
            sched.wake(d)

    # --- topology -----------------------------------------------------------------

    def disk(self, node: str) -> SimDisk:
        d = self.disks.get(node)
        if d is None:
            d = self.disks[node] = SimDisk(node)
        return d

    def add_node(self, name: str, config: dict | None = None, node_class=None,
                 port: int = 6379) -> NodeSlot:
        if node_class is None:
            from frtrio.runtime.node import Node as node_class
        idx = len(self.nodes) + 1
        cfg = dict(DEFAULT_NODE_CONFIG)
        cfg.update(config or {})
        cfg["port"] = str(port)
        slot = NodeSlot(name, "10.0.0.%d" % idx, port, cfg, node_class, idx)
        self.nodes[name] = slot
        return slot

    def add_client_host(self, name: str) -> str:
        host = "10.1.%d.%d" % (len(self.client_hosts) // 250, len(self.client_hosts) % 250 + 1)
        self.client_hosts[host] = None
        return host

    def resolve(self, host: str, from_host: str) -> str:
        if host in ("127.0.0.1", "localhost", "::1"):
            return from_host
        slot = self.nodes.get(host)
        return slot.host if slot is not None else host

    def pid_of(self, node: str, incarnation: int) -> int:
        return 1000 + self.nodes[node].index * 100 + incarnation

    def node_hosts(self) -> list[str]:
        return [s.host for s in self.nodes.values()]

    def all_hosts(self) -> list[str]:
        return self.node_hosts() + list(self.client_hosts)

    def live_nodes(self) -> list[NodeSlot]:
        return [s for s in self.nodes.values() if s.up]

    def _make_config(self, slot: NodeSlot) -> Config:
        cfg = Config()
        for k, v in slot.config.items():
            if k == "save":
                cfg.values["save"] = v
                continue
            # (replicaof takes host and port as two arguments)
            args = v.split() if canonical(k) == "replicaof" else [v]
            cfg.values[canonical(k)] = cfg.validate(k, args)
        return cfg

    # --- node lifecycle -------------------------------------------------------------

    async def start_node(self, name: str) -> bool:
        """Start (or restart) a node from its disk; True once it serves."""
        slot = self.nodes[name]
        if slot.state == "up":
            return True
        slot.incarnation += 1
        disk = self.disk(name)
        disk.revive()
        cfg_dir = slot.config.get("dir")
        if cfg_dir:
            from frtrio.sim.fs import SimFS

            SimFS(disk).makedirs(cfg_dir)
        ok = await self.nursery.start(self._node_runner, slot)
        return ok

    async def _node_runner(self, slot: NodeSlot, *, task_status) -> None:
        owner = (slot.name, slot.incarnation)
        CURRENT_NODE.set(owner)
        slot.done = trio.Event()
        started = False

        class _Status:
            def started(self, value=None):
                nonlocal started
                started = True
                slot.state = "up"
                task_status.started(True)

        try:
            with trio.CancelScope() as scope:
                slot.scope = scope
                try:
                    env = SimEnv(self, slot.name, slot.host, slot.incarnation)
                    node = slot.node_class(self._make_config(slot), env, slot.name)
                    slot.node = node
                    await node.run(task_status=_Status())
                    if slot.state == "up":
                        slot.state = "stopped"
                        self.log.emit("node.exit", slot.name, outcome="info",
                                      incarnation=slot.incarnation)
                except Exception as e:  # noqa: BLE001 - a node failing is data
                    slot.state = "failed"
                    slot.error = _describe(e)
                    self.violation("sim.node_crashed" if started else "sim.node_start_failed",
                                   slot.error, slot.name, incarnation=slot.incarnation)
        finally:
            leaked = self.tasks.owned_by(owner)
            if leaked:
                self.violation("sim.task_leaked",
                               "%d task(s) of %s#%d outlived the node" % (len(leaked), *owner),
                               slot.name, tasks=leaked)
            slot.done.set()
            if not started:
                task_status.started(False)

    async def kill(self, name: str, crash: str = "lose") -> bool:
        """Crash a node: its not-fsynced data is kept, lost or torn as
        ``crash`` says; connections reset; all its tasks cancelled."""
        slot = self.nodes[name]
        if slot.state != "up":
            await trio.lowlevel.checkpoint()
            return False
        if crash not in CRASH_MODES:
            raise ValueError(crash)
        info = self.disk(name).crash(crash, self.rng("crash"))
        conns = self.net.kill_host(slot.host)
        slot.state = "killed"
        self.faults += 1
        self.log.emit("fault.kill", name, outcome="fault", crash=crash,
                      incarnation=slot.incarnation, conns_reset=conns, **info)
        slot.scope.cancel()
        await slot.done.wait()
        return True

    async def restart(self, name: str) -> bool:
        slot = self.nodes[name]
        if slot.state == "up":
            await trio.lowlevel.checkpoint()
            return True
        ok = await self.start_node(name)
        self.log.emit("fault.restart", name, outcome="fault" if ok else "error",
                      incarnation=slot.incarnation, ok=ok)
        if ok:
            for cb in list(self.after_restart):
                await cb(self, name)
        return ok

    async def stop_all_nodes(self) -> None:
        for slot in self.nodes.values():
            if slot.state == "up" and slot.scope is not None:
                slot.scope.cancel()
                await slot.done.wait()
                slot.state = "stopped"

    # --- network and process faults ---------------------------------------------------

    def drop(self, conn) -> None:
        self.net.reset(conn)
        self.faults += 1
        self.log.emit("fault.drop", _node_of_host(self, conn.b_host), outcome="fault",
                      conn=conn.id, client=conn.tag, peer=conn.client_addr)

    def partition(self, groups: list[list[str]], oneway: bool = False) -> None:
        """Cut the hosts of groups[0] from the others (both ways unless
        ``oneway``: then only groups[0] -> the rest)."""
        if oneway:
            for a in groups[0]:
                for g in groups[1:]:
                    for b in g:
                        self.net.cuts[(a, b)] = None
            self.net._notify_change()
        else:
            self.net.partition(groups)
        self.faults += 1
        self.log.emit("fault.partition", "", outcome="fault", oneway=oneway,
                      groups=[[_label(self, h) for h in g] for g in groups])

    def heal(self) -> None:
        had = bool(self.net.cuts)
        self.net.heal()
        if had:
            self.log.emit("fault.heal", "", outcome="fault")

    def delay(self, a: str, b: str, lo: float, hi: float) -> None:
        self.net.set_latency(a, b, lo, hi)
        self.faults += 1
        self.log.emit("fault.delay", _node_of_host(self, a) or _node_of_host(self, b),
                      outcome="fault", a=_label(self, a), b=_label(self, b), lo_ms=lo * 1000,
                      hi_ms=hi * 1000)

    def clear_delays(self) -> None:
        if self.net.latency:
            self.net.clear_latency()
            self.log.emit("fault.delay_cleared", "", outcome="fault")

    def pause(self, name: str, seconds: float) -> None:
        slot = self.nodes[name]
        self.net.pause(slot.host, trio.current_time() + seconds)
        self.faults += 1
        self.log.emit("fault.pause", name, outcome="fault", seconds=seconds)

    def clock_jump(self, name: str, delta_ms: int) -> None:
        slot = self.nodes[name]
        slot.clock_offset_us += delta_ms * 1000
        self.faults += 1
        self.log.emit("fault.clock_jump", name, outcome="fault", delta_ms=delta_ms,
                      offset_ms=slot.clock_offset_us // 1000)

    async def quiesce(self) -> None:
        """End every fault: heal, no extra latency, no pause, dead nodes back."""
        self.heal()
        self.clear_delays()
        self.net.unpause_all()
        for slot in list(self.nodes.values()):
            if slot.state == "killed":
                await self.restart(slot.name)

    # --- clients -----------------------------------------------------------------------

    def note_op(self, client, argv, reply, outcome: str, t0: float) -> None:
        self.ops += 1
        if outcome == "error":
            self.op_errors += 1
        elif outcome == "disconnected":
            self.disconnects += 1
        if self.log_ops:
            self.log.emit(
                "client.op", client.target, input=argv,
                output_digest=digest(repr(reply)) if outcome != "disconnected" else "",
                duration_ms=(trio.current_time() - t0) * 1000.0, outcome=outcome,
                client=client.name, cmd=argv[0].decode("latin-1").lower(),
            )

    # --- running -----------------------------------------------------------------------

    def run(self, main, *args):
        """``trio.run(main, *args)`` on this world's clock, seeded schedule
        and task tracker, with node log lines routed into the event log."""
        from frtrio.sim import sched

        sched_seed = random.Random("%s:sched" % self.seed).getrandbits(64)
        lg = logging.getLogger("frtrio")
        saved = (lg.handlers[:], lg.level, lg.propagate)
        lg.handlers[:] = [_LogToEvents(self)]
        lg.setLevel(logging.INFO)
        lg.propagate = False
        # A simulated cluster keeps thousands of long-lived objects per node
        # (connections, clients, parsers, tasks) and allocates a few dozen
        # short-lived ones per request: with Python's default first-generation
        # threshold (700) the collector runs every few requests and often
        # rescans the second generation; 10000 measured about 15 % less CPU
        # per request in cluster-load. No node code may depend on when
        # garbage is collected (no side effects in __del__), and the
        # threshold is the same in every run, so runs stay identical.
        gc_saved = gc.get_threshold()
        gc.set_threshold(max(gc_saved[0], SIM_GC_GEN0), *gc_saved[1:])
        try:
            return sched.run(main, *args, seed=sched_seed, clock=self.clock,
                             instruments=[self.tasks])
        finally:
            gc.set_threshold(*gc_saved)
            lg.handlers[:], lg.level, lg.propagate = saved[0], saved[1], saved[2]


def _describe(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:  # noqa: F821
        e = e.exceptions[0]
    return "%s: %s" % (type(e).__name__, e)


def _node_of_host(world: SimWorld, host: str) -> str:
    for s in world.nodes.values():
        if s.host == host:
            return s.name
    return ""


def _label(world: SimWorld, host: str) -> str:
    return _node_of_host(world, host) or host
