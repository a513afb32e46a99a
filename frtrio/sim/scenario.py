"""Scenarios: nodes, topology, client workload, faults and checks, by name.

A scenario is registered with a name, a description and typed default
parameters; its factory turns (possibly overridden) parameters into a
``Scenario``::

    @scenario("aof-kill-always", "AOF recovery after kill, appendfsync always",
              clients=4, duration=5.0)
    def _(p):
        return Scenario(
            nodes=1,
            node_config={"appendonly": "yes", "appendfsync": "always"},
            clients_per_node=p["clients"],
            workload=AppendLog(),
            faults=RandomFaults({"kill": 3, "drop": 2}),
            duration=p["duration"],
        )

``run_scenario(name, seed, params)`` runs it inside one ``trio.run`` on the
seeded schedule and returns a ``RunResult``. A run:

1. logs ``sim.start`` (seed, parameters, Trio and Python versions);
2. starts the nodes, then the clients (``clients_per_node`` per node, each
   running ``workload.step`` in a loop), the nemesis and the workload's
   monitor (checks *during* the run);
3. after ``duration`` stops the clients and the nemesis, heals every fault
   and restarts killed nodes;
4. waits up to ``settle`` for the clients' last calls: a call still in flight
   then is a client blocked forever (``sim.client_blocked_forever``);
5. runs the workload's final check and the generic checks (blocked-client
   registry empty, no task leaked past its node's nursery);
6. stops the nodes and logs ``sim.end`` with the fingerprint inputs.

The event log of a run is a function of (scenario, parameters, seed, code,
Trio and Python versions) only: two runs give byte-identical logs.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field

import trio

from frtrio.sim import sched
from frtrio.sim.client import Disconnected, SimClient
from frtrio.sim.world import SimWorld


class Workload:
    """What the clients do, and how their results are checked."""

    def setup(self, world, scenario: "Scenario") -> None:
        pass

    async def prepare(self, world) -> None:
        """Runs once the nodes serve, before the clients and faults start
        (cluster formation, preloading data)."""
        return None

    async def step(self, world, client: SimClient, rng) -> None:
        """One unit of work; raise Disconnected freely (the runner backs off)."""
        raise NotImplementedError

    # A workload whose step is "one request, then think" may also run its
    # clients without a task between steps (``_Driven``: the requests are
    # sent and their replies read from the simulator's clock), which costs
    # the simulator two trips through Trio's run loop less per request.
    # ``fast_begin`` is the step up to the request, ``fast_end`` the rest;
    # together they must draw from ``rng`` and note what ``step`` would.

    def fast_begin(self, world, client: SimClient, rng):
        """The next step's request, if it can be made without a task:
        (the SimClient to send on, the commands (lists of bytes), a token
        for ``fast_end``). None: run the step as a task (``step``), which
        must then make the draws from ``rng`` the fast path would have (a
        workload that drew before finding it cannot go on keeps the draw for
        its step: ClusterLoad.drawn)."""
        return None

    def fast_end(self, world, client: SimClient, rng, conn: SimClient, argvs, replies, token):
        """The replies of ``fast_begin``'s request: the think time until the
        next step, or None to finish the step in a task (``fast_finish``)."""
        raise NotImplementedError

    async def fast_finish(self, world, client: SimClient, rng, conn: SimClient, argvs, replies,
                          token) -> None:
        """The rest of a step whose replies ``fast_end`` did not take (a
        redirect to follow, say), think time included."""
        raise NotImplementedError

    async def monitor(self, world) -> None:
        """Checks while the run goes on (optional; return when stopping)."""
        return None

    async def check(self, world) -> None:
        """Final checks, after faults are healed; report with world.violation."""
        return None

    def summary(self) -> dict:
        return {}


@dataclass
class Scenario:
    workload: Workload
    nodes: int = 1
    node_config: dict = field(default_factory=dict)
    clients_per_node: int = 2
    faults: object = None
    duration: float = 5.0
    settle: float = 10.0
    latency: tuple = (0.0002, 0.001)
    mode: str = "strict"
    log_ops: bool = True
    node_configs: dict = field(default_factory=dict)  # per node name overrides
    backoff: tuple = (0.05, 0.3)
    # clients without a task between requests where the workload can
    # (Workload.fast_begin): the same kind of run, cheaper to simulate
    driven_clients: bool = True
    # the nodes' client connections served from the clock between two
    # requests (SimStream.serve_from_clock): no trip through Trio's
    # scheduler per request; the node's reader code is the same
    driven_nodes: bool = False


@dataclass
class ScenarioDef:
    name: str
    description: str
    defaults: dict
    factory: object
    tags: tuple = ()


SCENARIOS: dict[str, ScenarioDef] = {}


def scenario(name: str, description: str, tags=(), **defaults):
    """Register a scenario factory. Every scenario also takes ``mode``
    (strict|hardened: the nodes' frtrio-mode)."""
    defaults.setdefault("mode", "strict")

    def deco(fn):
        SCENARIOS[name] = ScenarioDef(name, description, defaults, fn, tuple(tags))
        return fn

    return deco


def _load_library() -> None:
    import frtrio.sim.scenarios  # noqa: F401  (registers the library)


def get(name: str) -> ScenarioDef:
    _load_library()
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError("unknown scenario %r (frtrio sim list shows them)" % name) from None


def all_scenarios() -> list[ScenarioDef]:
    _load_library()
    return [SCENARIOS[k] for k in sorted(SCENARIOS)]


def resolve_params(sdef: ScenarioDef, overrides: dict | None) -> dict:
    """Defaults with overrides applied; string values converted to the
    default's type. Unknown names raise KeyError."""
    out = dict(sdef.defaults)
    for k, v in (overrides or {}).items():
        if k not in sdef.defaults:
            raise KeyError("scenario %s has no parameter %r (it has: %s)"
                           % (sdef.name, k, ", ".join(sorted(sdef.defaults)) or "none"))
        d = sdef.defaults[k]
        if isinstance(v, str) and not isinstance(d, str):
            if isinstance(d, bool):
                v = v.lower() in ("1", "yes", "true", "on")
            elif isinstance(d, int):
                v = int(v)
            elif isinstance(d, float):
                v = float(v)
        out[k] = v
    return out


def load_node_class(spec: str | None):
    """``module:Class`` -> the class (None -> the real Node)."""
    if not spec:
        from frtrio.runtime.node import Node

        return Node
    mod, _, cls = spec.partition(":")
    if not cls:
        raise ValueError("--node-class wants module:Class, got %r" % spec)
    return getattr(importlib.import_module(mod), cls)


def replay_command(name: str, seed: int, params: dict | None = None,
                   node_class: str | None = None) -> str:
    cmd = "frtrio sim run --scenario %s --seed %d" % (name, seed)
    for k in sorted(params or {}):
        cmd += " --param %s=%s" % (k, params[k])
    if node_class:
        cmd += " --node-class %s" % node_class
    return cmd


@dataclass
class RunResult:
    scenario: str
    seed: int
    params: dict
    violations: list
    fingerprint: str
    events: int
    virtual_s: float
    wall_s: float
    ops: int
    op_errors: int
    disconnects: int
    faults: int
    replay_cmd: str
    lines: list | None = None
    summary: dict = field(default_factory=dict)
    phase_marks: dict = field(default_factory=dict)
    driven_to_task: int = 0  # steps clients driven from the clock handed to a task

    @property
    def ok(self) -> bool:
        return not self.violations


def run_scenario(name: str, seed: int, params: dict | None = None, *,
                 node_class: str | None = None, log_file=None, keep_lines: bool = False,
                 log_ops: bool | None = None) -> RunResult:
    """Run one scenario on one seed. ``params``: overrides (strings or
    typed values); ``node_class``: ``module:Class`` replacing the Node."""
    sched.check_available()
    sdef = get(name)
    explicit = {k: v for k, v in (params or {}).items()}
    resolved = resolve_params(sdef, explicit)
    sc: Scenario = sdef.factory(resolved)
    if resolved["mode"] not in ("strict", "hardened"):
        raise KeyError("mode must be strict or hardened, not %r" % resolved["mode"])
    sc.mode = resolved["mode"]
    cls = load_node_class(node_class)
    replay = replay_command(name, seed, explicit, node_class)
    world = SimWorld(
        seed=seed, scenario_id=name, mode=sc.mode, replay_cmd=replay, latency=sc.latency,
        log_file=log_file, keep_lines=keep_lines,
        log_ops=sc.log_ops if log_ops is None else log_ops,
    )
    world.conns_from_clock = sc.driven_nodes
    for i in range(sc.nodes):
        nname = "n%d" % (i + 1)
        cfg = dict(sc.node_config)
        cfg["frtrio-mode"] = sc.mode
        cfg.update(sc.node_configs.get(nname, {}))
        world.add_node(nname, cfg, cls)
    t0 = time.perf_counter()
    world.run(_main, world, sc, sdef, resolved, explicit, node_class)
    wall = time.perf_counter() - t0
    return RunResult(
        scenario=name, seed=seed, params=resolved, violations=world.violations,
        fingerprint=world.fingerprint(), events=world.log.count,
        virtual_s=world.end_time, wall_s=wall, ops=world.ops, op_errors=world.op_errors,
        disconnects=world.disconnects, faults=world.faults, replay_cmd=replay,
        lines=world.lines, summary=sc.workload.summary(), phase_marks=world.phase_marks,
        driven_to_task=world.driven_to_task,
    )


async def _guard(world, what: str, fn, *args) -> None:
    """Run a workload hook; an exception in it (a reply the workload did not
    expect, say) is reported as a violation instead of ending the run."""
    try:
        await fn(*args)
    except Disconnected:
        world.violation("sim.check_error", "%s could not reach a node" % what)
    except Exception as e:  # noqa: BLE001
        world.violation("sim.check_error", "%s raised %s: %s" % (what, type(e).__name__, e))


async def _client_loop(world, sc: Scenario, client: SimClient, rng, done, nursery=None,
                       first=None) -> None:
    """A client's steps in a task. With ``nursery`` (the clients'), the
    client goes on without a task (``_Driven``) once its workload can make
    the next request that way; ``first``: what to do before the next step
    (a step ``_Driven`` handed back: a coroutine, or BACKOFF)."""
    handed_over = False
    try:
        while first is not None or not world.stopping:
            try:
                if first is not None:
                    # (the rest of a step runs even if the run is stopping,
                    # as a step in a task would go on)
                    f, first = first, None
                    if f is BACKOFF:
                        raise Disconnected("connection lost")
                    await f
                else:
                    await sc.workload.step(world, client, rng)
            except Disconnected:
                await world.sleep(rng.uniform(*sc.backoff))
                continue
            if nursery is not None and not world.stopping:
                if _Driven(world, sc, client, rng, done, nursery).start():
                    handed_over = True
                    return
    except Exception as e:  # noqa: BLE001 - an unexpected reply is a finding
        world.violation("sim.workload_error", "client %s: %s: %s"
                        % (client.name, type(e).__name__, e), client.target, client=client.name)
    finally:
        if first is not None and first is not BACKOFF:
            first.close()  # (cancelled before it could run)
        if not handed_over:
            client._drop()
            done()


BACKOFF = object()  # _client_loop's first: back off as after a Disconnected


class _Driven:
    """A client between two of its steps without a task: its think time is
    a timer on the simulator's clock, its request is sent from the timer's
    callback (``Workload.fast_begin``) and its reply read in the clock
    callback of ``SimClient.call_nowait`` (``Workload.fast_end``). Anything
    else (no connection, a broken one, a redirect, a paused host) hands the
    client back to a task (``_client_loop``) at the point it reached, so the
    run is the same function of the seed, only cheaper. While it waits for
    its think time the world's ``begin_stop`` wakes it like a sleeping task."""

    __slots__ = ("world", "sc", "client", "rng", "done", "nursery", "waiter", "req", "key")

    def __init__(self, world, sc, client, rng, done, nursery):
        self.world = world
        self.sc = sc
        self.client = client
        self.rng = rng
        self.done = done
        self.nursery = nursery
        self.waiter = None  # the think timer (sched.arm)
        self.req = None
        self.key = None

    def start(self) -> bool:
        """From the client's task, after a step: True if the client goes on
        without it (its next request is sent already)."""
        world = self.world
        req = self.sc.workload.fast_begin(world, self.client, self.rng)
        if req is None:
            return False
        world._driven_seq += 1
        self.key = world._driven_seq
        world.driven[self.key] = self
        self._send(req)
        return True

    def _step(self) -> None:
        """(clock callback) The think time is over: the next request."""
        try:
            world = self.world
            if world.stopping:
                self._finish()
                return
            req = self.sc.workload.fast_begin(world, self.client, self.rng)
            if req is None:
                self._to_task(None)
                return
            self._send(req)
        except Exception as e:  # noqa: BLE001
            self._crash(e)

    def _send(self, req) -> None:
        self.req = req
        conn, argvs, token = req
        if not conn.call_nowait(argvs, self._replied):
            self._to_task(self._resume(conn.pipeline(argvs)))

    def _replied(self, conn, kind: str, replies) -> None:
        """(clock callback) The request's outcome (SimClient.call_nowait)."""
        try:
            if kind == "ok":
                world = self.world
                _, argvs, token = self.req
                think = self.sc.workload.fast_end(world, self.client, self.rng, conn, argvs,
                                                  replies, token)
                if think is None:
                    self._to_task(self.sc.workload.fast_finish(
                        world, self.client, self.rng, conn, argvs, replies, token))
                elif world.stopping:
                    self._finish()
                else:
                    clock = world.clock
                    sched.arm(self, self._step, clock._now + think, clock)
            elif kind == "lost":
                self._to_task(BACKOFF)
            else:
                self._to_task(self._resume(conn.finish_in_task()))
        except Exception as e:  # noqa: BLE001
            self._crash(e)

    async def _resume(self, replies_coro) -> None:
        """The rest of a step in a task, from its replies on."""
        replies = await replies_coro
        world = self.world
        conn, argvs, token = self.req
        wl = self.sc.workload
        think = wl.fast_end(world, self.client, self.rng, conn, argvs, replies, token)
        if think is None:
            await wl.fast_finish(world, self.client, self.rng, conn, argvs, replies, token)
        else:
            await world.sleep(think)

    def _leave(self) -> None:
        self.world.driven.pop(self.key, None)
        sched.disarm(self)

    def _to_task(self, first) -> None:
        self._leave()
        self.world.driven_to_task += 1
        self.nursery.start_soon(_client_loop, self.world, self.sc, self.client, self.rng,
                                self.done, self.nursery, first)

    def _finish(self) -> None:
        self._leave()
        self.client._drop()
        self.done()

    def _crash(self, e: BaseException) -> None:
        c = self.client
        self.world.violation("sim.workload_error", "client %s: %s: %s"
                             % (c.name, type(e).__name__, e), c.target, client=c.name)
        try:
            self._finish()
        except Exception:  # noqa: BLE001 - already reported
            pass

    def cancel(self) -> None:
        """The run is over (the clients' nursery is cancelled): as a task
        would be, without a word."""
        if self.req is not None:
            self.req[0].abandon()
        self._leave()
        self.client._drop()
        self.done()


async def _main(world: SimWorld, sc: Scenario, sdef: ScenarioDef, resolved: dict,
                explicit: dict, node_class: str | None) -> None:
    log = world.log
    log.emit(
        "sim.start", "", outcome="info", scenario=sdef.name, seed=world.seed,
        args=explicit, params=resolved, node_class=node_class or "",
        nodes=list(world.nodes), **sched.versions(),
    )
    async with trio.open_nursery() as root:
        world.nursery = root
        for nname in list(world.nodes):
            ok = await world.start_node(nname)
            log.emit("node.start", nname, outcome="ok" if ok else "error",
                     host=world.nodes[nname].host, port=world.nodes[nname].port)
        sc.workload.setup(world, sc)
        await _guard(world, "prepare", sc.workload.prepare, world)
        log.emit("sim.prepared", "", outcome="info")
        # CPU and op counts at the start and end of the load phase, for the
        # speed benchmark (scripts/bench_sim.py); never logged
        world.phase_marks["load_start"] = (time.process_time(), world.ops, trio.current_time())
        clients = []
        for nname in list(world.nodes):
            for i in range(sc.clients_per_node):
                clients.append(SimClient(world, "%s.c%d" % (nname, i + 1), nname))
        remaining = [len(clients)]
        all_done = trio.Event()

        def one_done():
            remaining[0] -= 1
            if remaining[0] == 0:
                all_done.set()

        if not clients:
            all_done.set()
        async with trio.open_nursery() as wl:
            driven = wl if sc.driven_clients else None
            for c in clients:
                wl.start_soon(_client_loop, world, sc, c, world.rng("client:" + c.name), one_done,
                              driven)
            nemesis_done = trio.Event()

            async def nemesis():
                try:
                    if sc.faults is not None:
                        await sc.faults.run(world, world.rng("nemesis"))
                finally:
                    nemesis_done.set()

            wl.start_soon(nemesis)
            wl.start_soon(_guard, world, "monitor", sc.workload.monitor, world)
            await trio.sleep(sc.duration)
            log.emit("sim.stop_requested", "", outcome="info", ops=world.ops)
            world.phase_marks["load_end"] = (time.process_time(), world.ops, trio.current_time())
            world.begin_stop()
            # the nemesis reverts its current fault and returns; then end them all
            await nemesis_done.wait()
            await world.quiesce()
            with trio.move_on_after(sc.settle):
                await all_done.wait()
            stuck = [c for c in clients if c.pending is not None]
            for c in stuck:
                argv, since = c.pending
                world.violation(
                    "sim.client_blocked_forever",
                    "client %s still waiting for a reply %.3fs after faults were healed"
                    % (c.name, sc.settle), c.target, client=c.name,
                    cmd=[a.decode("latin-1") for a in argv[:4]],
                    waiting_s=round(trio.current_time() - since, 6),
                )
            wl.cancel_scope.cancel()
            for d in list(world.driven.values()):
                d.cancel()
        await world.quiesce()
        log.emit("sim.checks", "", outcome="info")
        await _guard(world, "final check", sc.workload.check, world)
        check_blocked_registry(world)
        check_policy(world)
        for leak in world.tasks.system_leaks:
            world.violation("sim.task_leaked", "system task spawned by node code: %s" % leak)
        await world.stop_all_nodes()
        root.cancel_scope.cancel()
    world.end_time = trio.current_time()
    log.emit(
        "sim.end", "", outcome="violation" if world.violations else "ok",
        reason_code=world.violations[0]["reason_code"] if world.violations else "",
        violations=len(world.violations), ops=world.ops, op_errors=world.op_errors,
        disconnects=world.disconnects, faults=world.faults,
        virtual_s=round(world.end_time, 6), summary=sc.workload.summary(),
    )


def check_blocked_registry(world) -> None:
    """After the clients are gone no node may hold a blocked client, a
    waiter entry or a pending ready key (I05's standalone part: nobody stays
    blocked, and the registry forgets clients that left)."""
    for slot in world.live_nodes():
        srv = slot.node.server
        reg = srv.blocking
        if reg is None:
            continue
        blocked = [c.id for c in srv.clients.values() if c.blocked is not None]
        stale = [
            (dbid, key.decode("latin-1"), cid)
            for (dbid, key), w in reg.waiters.items()
            for cid in w
            if cid not in srv.clients
        ]
        if blocked or reg.waiters or reg.keyless or stale:
            world.violation(
                "sim.blocked_registry_leak",
                "node keeps blocked state after every client left",
                slot.name, blocked_clients=blocked, waiter_keys=len(reg.waiters),
                keyless=len(reg.keyless), stale=stale[:10],
            )
        if srv.ready_keys:
            world.violation("sim.blocked_registry_leak", "ready keys never served", slot.name,
                            ready=len(srv.ready_keys))


def check_policy(world) -> None:
    """I12: a node never took a hardened deviation outside the allowlist
    (and a strict node took none)."""
    from frtrio.core.policy import ALLOWLIST, HARDENED, REASON_POLICY_VIOLATION

    for slot in world.live_nodes():
        pol = getattr(slot.node, "policy", None)
        if pol is None:
            continue
        bad = [d for d in pol.taken if d not in ALLOWLIST or pol.mode != HARDENED]
        if bad:
            world.violation(REASON_POLICY_VIOLATION, "deviations taken outside the policy",
                            slot.name, deviations=sorted(bad), mode=pol.mode)


async def reader_for(world, node: str, name: str = "checker") -> SimClient:
    """A client for checks (not part of the workload)."""
    c = SimClient(world, "%s@%s" % (name, node), node)
    return c
