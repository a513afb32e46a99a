"""Fault injection: random faults drawn from the seed, or a fixed schedule.

A nemesis is an object with ``async run(world, rng)``; the scenario runner
starts it with the clients and tells it to stop (``world.stopping``) at the
end of the run. A fault that has a duration (partition, delay, a kill before
the restart) is always reverted, even when the run stops in the middle, and
the runner heals everything again before the final checks.

Fault kinds:

``kill``       crash a node (crash mode drawn from ``crash_modes``), restart it later
``drop``       reset one client<->node connection (both ends see a reset)
``drop_node``  reset every connection of one node
``partition``  cut one node from everything else, both ways, then heal
``oneway``     cut one direction only (node -> rest, or rest -> node), then heal
``delay``      add latency between one node and everyone, then remove it
``pause``      stop a node's process for a while (SIGSTOP-like)
``clock``      jump a node's wall clock forwards or backwards
"""

from __future__ import annotations

import trio

KINDS = ("kill", "drop", "drop_node", "partition", "oneway", "delay", "pause", "clock")


def _pick_node(world, rng, live_only=True):
    names = [s.name for s in world.nodes.values() if s.up or not live_only]
    if not names:
        return None
    return names[rng.randrange(len(names))]


class RandomFaults:
    """Faults one at a time, at random intervals, kinds drawn by weight."""

    def __init__(self, kinds: dict[str, float], every=(0.2, 1.0), duration=(0.05, 0.5),
                 crash_modes=("lose", "torn", "keep"), clock_jump_ms=(-5000, 5000)):
        for k in kinds:
            if k not in KINDS:
                raise ValueError("unknown fault kind %r (known: %s)" % (k, ", ".join(KINDS)))
        self.kinds = dict(kinds)
        self.every = every
        self.duration = duration
        self.crash_modes = crash_modes
        self.clock_jump_ms = clock_jump_ms

    def _choose(self, rng) -> str:
        total = sum(self.kinds.values())
        x = rng.random() * total
        for k, w in self.kinds.items():
            x -= w
            if x < 0:
                return k
        return list(self.kinds)[-1]

    async def run(self, world, rng) -> None:
        while not world.stopping:
            if not await world.sleep(rng.uniform(*self.every)):
                return
            kind = self._choose(rng)
            await apply_fault(world, rng, kind, self)


async def apply_fault(world, rng, kind: str, cfg: RandomFaults) -> None:
    dur = rng.uniform(*cfg.duration)
    if kind == "kill":
        name = _pick_node(world, rng)
        if name is None:
            return
        mode = cfg.crash_modes[rng.randrange(len(cfg.crash_modes))]
        await world.kill(name, mode)
        await world.sleep(dur)
        await world.restart(name)
    elif kind == "drop":
        conns = [c for c in world.net.conns.values() if c.a_host in world.client_hosts]
        if conns:
            world.drop(conns[rng.randrange(len(conns))])
        await trio.lowlevel.checkpoint()
    elif kind == "drop_node":
        name = _pick_node(world, rng)
        if name is None:
            return
        host = world.nodes[name].host
        for c in world.net.conns_of(host):
            world.drop(c)
        await trio.lowlevel.checkpoint()
    elif kind in ("partition", "oneway"):
        name = _pick_node(world, rng, live_only=False)
        if name is None:
            return
        host = world.nodes[name].host
        rest = [h for h in world.all_hosts() if h != host]
        if kind == "partition":
            world.partition([[host], rest])
        elif rng.random() < 0.5:
            world.partition([[host], rest], oneway=True)
        else:
            world.partition([rest, [host]], oneway=True)
        await world.sleep(dur)
        world.heal()
    elif kind == "delay":
        name = _pick_node(world, rng, live_only=False)
        if name is None:
            return
        host = world.nodes[name].host
        hi = rng.choice((0.005, 0.02, 0.1))
        for h in world.all_hosts():
            if h != host:
                world.net.set_latency(host, h, hi / 4, hi)
        world.delay(host, "*", hi / 4, hi)
        await world.sleep(dur)
        world.clear_delays()
    elif kind == "pause":
        name = _pick_node(world, rng)
        if name is None:
            return
        world.pause(name, dur)
        await world.sleep(dur)
    elif kind == "clock":
        name = _pick_node(world, rng, live_only=False)
        if name is None:
            return
        world.clock_jump(name, rng.randint(*cfg.clock_jump_ms))
        await trio.lowlevel.checkpoint()
    else:  # pragma: no cover - validated in RandomFaults
        raise ValueError(kind)


class Schedule:
    """Faults at fixed virtual times: ``[(t, kind, {args}), ...]``.

    Kinds: ``kill`` (node, crash), ``restart`` (node), ``drop_node`` (node),
    ``partition`` (groups of node names; "*clients" = every client host),
    ``heal``, ``pause`` (node, seconds), ``clock`` (node, delta_ms),
    ``delay`` (node, lo, hi), ``clear_delays``."""

    def __init__(self, steps):
        self.steps = sorted(steps, key=lambda s: s[0])

    def _hosts(self, world, names):
        out = []
        for n in names:
            if n == "*clients":
                out.extend(world.client_hosts)
            else:
                out.append(world.nodes[n].host)
        return out

    async def run(self, world, rng) -> None:
        start = trio.current_time()
        for t, kind, args in self.steps:
            if not await world.sleep(max(0.0, start + t - trio.current_time())):
                return
            if kind == "kill":
                await world.kill(args["node"], args.get("crash", "lose"))
            elif kind == "restart":
                await world.restart(args["node"])
            elif kind == "drop_node":
                for c in world.net.conns_of(world.nodes[args["node"]].host):
                    world.drop(c)
            elif kind == "partition":
                world.partition([self._hosts(world, g) for g in args["groups"]],
                                oneway=args.get("oneway", False))
            elif kind == "heal":
                world.heal()
            elif kind == "pause":
                world.pause(args["node"], args["seconds"])
            elif kind == "clock":
                world.clock_jump(args["node"], args["delta_ms"])
            elif kind == "delay":
                host = world.nodes[args["node"]].host
                for h in world.all_hosts():
                    if h != host:
                        world.net.set_latency(host, h, args["lo"], args["hi"])
                world.delay(host, "*", args["lo"], args["hi"])
            elif kind == "clear_delays":
                world.clear_delays()
            else:
                raise ValueError("unknown scheduled fault %r" % kind)
