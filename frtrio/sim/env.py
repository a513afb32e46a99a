"""SimEnv: the Env interface of ``frtrio.runtime.env.RealEnv`` on the
simulator's virtual clock, seeded randomness, network and disks.

One ``SimEnv`` per node incarnation; they all share one ``SimWorld``.
"""

from __future__ import annotations

import random

import trio

from frtrio.sim import sched

from frtrio.core.engine import HostInfo
from frtrio.sim.fs import SimFS

_LOCAL_BINDS = ("", "*", "0.0.0.0", "::", "::*", "127.0.0.1", "::1", "localhost")


class SimHostInfo(HostInfo):
    """Host facts for INFO that do not depend on the real machine (no
    memory or CPU figures: those would make runs differ)."""

    os = "Linux 6.1.0-sim x86_64"
    executable = "/usr/local/bin/frtrio-server"

    def __init__(self, pid: int):
        self.pid = pid


class SimEnv:
    """Clock, RNG, network and disk of one simulated node process."""

    def __init__(self, world, node: str, host: str, incarnation: int = 1):
        self.world = world
        self.node = node
        self.host = host
        self.incarnation = incarnation
        self.seed = world.seed
        self.fs = SimFS(world.disk(node))
        self._rngs: dict[str, random.Random] = {}
        # the run's clock, read directly (trio.current_time() is the same
        # value behind a run-context lookup), and the node's slot (its wall
        # clock offset: clock jumps)
        self._clock = world.clock
        self._slot = world.nodes.get(node)
        # serve the node's client connections from the clock between two
        # requests (runtime/client_conn.py, SimStream.serve_from_clock)
        self.conns_from_clock = world.conns_from_clock

    # --- time -------------------------------------------------------------------

    async def sleep_until(self, deadline: float, owner=None) -> None:
        """Sleep until virtual time ``deadline`` on the simulator's clock
        timer (no cancel scope: see ``sched.park``); with an ``owner``,
        ``wake(owner)`` ends the sleep early."""
        if deadline <= self._clock._now:
            await trio.lowlevel.checkpoint()
            return
        await sched.park(deadline, owner, self._clock)

    can_wake = True

    @staticmethod
    def wake(owner) -> bool:
        """End the sleep of the task in ``sleep_until(..., owner)`` now."""
        if owner.waiter is None:
            return False
        sched.wake(owner)
        return True

    def now(self) -> float:
        return self._clock._now

    def work_clock(self) -> float:
        # virtual time: work takes none, so chunk sizes depend on the seed only
        return self._clock._now

    def mono_ns(self) -> int:
        # virtual time: a command takes none unless it sleeps (DEBUG SLEEP)
        return int(self._clock._now * 1e9)

    async def offload(self, fn):
        # no threads in a replayable run: inline, then a scheduling point
        r = fn()
        await trio.lowlevel.checkpoint()
        return r

    def unix_ms(self) -> int:
        return self.unix_us() // 1000

    def unix_us(self) -> int:
        slot = self._slot
        if slot is None:
            return self.world.unix_us(self.node)
        return self.world.epoch_us + int(round(self._clock._now * 1_000_000)) + slot.clock_offset_us

    # --- randomness ---------------------------------------------------------------

    def rng(self, purpose: str) -> random.Random:
        """The seeded stream for ``purpose``: ``Random(f"{seed}:{node}:{purpose}")``
        (a str seed is hashed with sha512, independent of PYTHONHASHSEED).
        Later incarnations of a node (restarts) get their own streams, and a
        purpose asked twice continues the same stream."""
        r = self._rngs.get(purpose)
        if r is None:
            who = self.node if self.incarnation == 1 else "%s#%d" % (self.node, self.incarnation)
            r = self._rngs[purpose] = random.Random("%s:%s:%s" % (self.seed, who, purpose))
        return r

    def random_hex(self, n: int, purpose: str = "id") -> str:
        r = self.rng(purpose)
        return "".join("0123456789abcdef"[r.randrange(16)] for _ in range(n))

    # --- network ------------------------------------------------------------------

    async def serve(self, host: str, port: int, handler, *, task_status=trio.TASK_STATUS_IGNORED):
        """Accept connections to this node's host on ``port``; run
        ``handler(stream, peer, local)`` in a task per connection."""
        net = self.world.net
        bind = self.host if host in _LOCAL_BINDS or host == self.host else host
        lst = net.listen(bind, port, self.node)
        try:
            async with trio.open_nursery() as n:
                task_status.started([(bind, port)])
                while True:
                    conn = await lst.accept(net)
                    n.start_soon(handler, conn.server, conn.client_addr, conn.server_addr)
        finally:
            net.unlisten(lst)

    async def connect(self, host: str, port: int, source: str | None = None):
        """(``source``, bind-source-addr, has no meaning on the simulated
        network: a node's connections come from its host.)"""
        dst = self.world.resolve(host, self.host)
        return await self.world.net.connect(self.host, dst, port, tag=self.node)

    def local_address(self, stream) -> str:
        return stream.local_address

    # --- process ------------------------------------------------------------------

    async def pause(self, seconds: float) -> None:
        """DEBUG SLEEP: the whole node stops for ``seconds`` of virtual time.

        Its streams and listener neither read nor write until then (its peers
        keep sending into the buffers); the rest of the world runs on."""
        if seconds <= 0:
            await trio.lowlevel.checkpoint()
            return
        until = trio.current_time() + seconds
        self.world.net.pause(self.host, until, fault=False)
        await trio.sleep_until(until)

    def stop_listening(self, listeners) -> None:
        """(The simulated network: listeners end with the node's scope.)"""

    def freeze(self, seconds: float) -> None:
        """Synchronous freeze (the RealEnv interface): the simulator cannot
        stop one node synchronously, so it moves the whole world's clock, as
        if every process had been stopped. Node code should ``await
        env.pause()`` instead."""
        if seconds > 0:
            self.world.log.emit("sim.freeze_fallback", self.node, seconds=seconds)
            self.world.clock.jump(seconds)

    def host_info(self):
        return SimHostInfo(self.world.pid_of(self.node, self.incarnation))

    # --- observability --------------------------------------------------------------

    def node_event_log(self, mode: str):
        """The world's event log, bound to this node (``events.open_node_event_log``)."""
        return self.world.log.for_node(self.node, mode=mode)
