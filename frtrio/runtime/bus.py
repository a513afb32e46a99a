"""The cluster bus shell: listener, links, framing, carrying out effects.

Nursery tree (under the node's nursery)::

    BusShell.run
      bus listener (Env.serve on the bus port) -> one task per inbound link
      one task per outbound link (connect, then reader + writer)

All decisions are made by the pure ``cluster.gossip.BusCore``; this module
only moves bytes, frames packets and executes the effects it returns.
"""

from __future__ import annotations

import logging

import trio

from frtrio.cluster import bus_codec as bc
from frtrio.cluster import bus_policy
from frtrio.core.policy import RESOURCE_CLAMP
from frtrio.cluster.gossip import BusCore
from frtrio.runtime import sockio
from frtrio.core.effects import Broadcast, Connect, Deliver, FreeLink, SendOnLink, SendToNode, SweepLinks

log = logging.getLogger("frtrio.cluster")


class Link:
    __slots__ = ("node", "inbound", "ctime", "local_ip", "peer_ip", "out", "out_bytes",
                 "wake", "scope", "closed", "stream", "io", "sock", "sending")

    def __init__(self, inbound: bool, node=None, ctime: int = 0):
        self.node = node
        self.inbound = inbound
        self.ctime = ctime
        self.local_ip = ""
        self.peer_ip = ""
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.wake = trio.Event()
        self.scope: trio.CancelScope | None = None
        self.closed = False
        self.stream = None
        self.io = None  # what the reader and writer use (runtime/sockio.py)
        # the raw socket of a real link: a packet goes out at once when
        # nothing is queued before it (no writer wake-up, no extra trip
        # through the scheduler); None for the simulator's streams
        self.sock = None
        self.sending = False  # the writer is in a send (bytes of it may be unsent)

    def attach(self, stream) -> None:
        self.stream = stream
        self.io = sockio.for_stream(stream)
        if type(self.io) is sockio.ConnIO:
            self.sock = self.io.sock

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.sock is not None and not self.out and not self.sending:
            try:
                n = self.sock.send(data)
            except OSError:  # (would block, or a broken link: the writer meets it)
                n = 0
            if n == len(data):
                return
            data = data[n:]
        self.out.append(data)
        self.out_bytes += len(data)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        if self.scope is not None:
            self.scope.cancel()


def _host(addr: str) -> str:
    return addr.rsplit(":", 1)[0].strip("[]")


class BusShell:
    def __init__(self, node):
        self.node = node
        self.env = node.env
        self.srv = node.server
        self.core = self.srv.cluster
        self.bus = BusCore(self.core)  # (sets core.bus_core)
        # what commands asked of the bus (PUBLISH, CLUSTER FORGET/SETSLOT,
        # DEBUG CLUSTERLINK KILL) goes out in the before-sleep round
        node.before_sleep.register("cluster_broadcast", self.flush_core_effects)
        node.before_sleep.register("cluster_manual_failover", self._manual_failover_duty)
        node.before_sleep.register("cluster_failover", self._failover_duty)
        self.connecting: dict[str, None] = {}
        self.outbound: list[Link] = []
        self.inbound: list[Link] = []
        self.nursery: trio.Nursery | None = None
        self._swept_version = -1  # the node table's version at the last _sweep

    def flush_core_effects(self) -> None:
        if self.core.bus_effects:
            self._execute(self.core.take_bus_effects())

    # (the before-sleep round runs before every reply: a duty with nothing
    # to do returns after one test)

    def _manual_failover_duty(self) -> None:
        if self.bus.mf_end:
            self.bus.before_sleep_manual_failover(self.srv.now_ms)

    def _failover_duty(self) -> None:
        if self.bus.todo_failover:
            self._execute(self.bus.before_sleep_failover(self.srv.now_ms))

    # --- lifecycle --------------------------------------------------------------------

    async def run(self, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as n:
            self.nursery = n
            await n.start(self.env.serve, host, port, self._handle_inbound)
            task_status.started()

    def tick(self) -> None:
        """The bus part of clusterCron (every 100 ms); the node's cron
        carries out the before-sleep round after it (Node._cluster_cron)."""
        if self.nursery is None:
            return
        if self.core.state.version != self._swept_version:
            self._sweep()  # (only a change of the node table leaves links to free)
        self._free_links_over_sendbuf_limit()
        self._execute(self.bus.cron(self.srv.now_ms))

    def quiet(self) -> bool:
        """Would :meth:`tick`'s shell part find nothing to do (no sweep
        pending, no connection being made, no output waiting on a link)?
        Part of the node cron's judgement of empty ticks (Node._quiet_until)."""
        if self.nursery is None or self.connecting or self.core.state.version != self._swept_version:
            return False
        for ln in self.outbound:
            if ln.out_bytes:
                return False
        for ln in self.inbound:
            if ln.out_bytes:
                return False
        return True

    def _free_links_over_sendbuf_limit(self) -> None:
        """cluster-link-sendbuf-limit: a link whose unsent output passed the
        limit (a peer that stopped reading) is freed, as Redis's clusterCron
        does; an outbound link is then reconnected by the cron as usual."""
        limit = self.node.config.get_int("cluster-link-sendbuf-limit")
        if not limit:
            return
        st = self.core.state
        for ln in self.outbound + self.inbound:
            if ln.closed or ln.out_bytes <= limit:
                continue
            log.warning("Freeing cluster link(%s node %s, used memory: %d) due to exceeding send "
                        "buffer memory limit.", "from" if ln.inbound else "to",
                        ln.node.id if ln.node is not None else "", ln.out_bytes)
            st.links_buffer_limit_exceeded += 1
            self.core.emit("cluster.link_state", outcome="sendbuf_limit",
                           node=ln.node.id if ln.node is not None else "",
                           direction="from" if ln.inbound else "to")
            self._free(ln)

    def _sweep(self) -> None:
        """Free the links of nodes that were deleted (freeClusterNode frees
        both: a packet on an inbound link of a forgotten node must not be
        taken as coming from that node)."""
        st = self.core.state
        self._swept_version = st.version
        for ln in list(self.outbound):
            n = ln.node
            if ln.closed:
                continue
            if n is None or st.nodes.get(n.id) is not n:
                ln.close()
        for ln in list(self.inbound):
            n = ln.node
            if ln.closed or n is None:
                continue
            if st.nodes.get(n.id) is not n:
                self._free(ln)

    # --- effects --------------------------------------------------------------------------

    def _count_sent(self, t: int) -> None:
        d = self.core.state.stats_sent
        d[t] = d.get(t, 0) + 1

    def _execute(self, effects) -> None:
        """Carry out the bus core's effects (frtrio/core/effects.py), in order."""
        st = self.core.state
        me = st.myself
        for e in effects:
            t = type(e)
            if t is SendOnLink:
                if not e.link.closed:
                    e.link.send(bc.encode(e.msg))
                    self._count_sent(e.msg.type)
            elif t is SendToNode:
                n = st.nodes.get(e.node_id)
                if n is not None and n.link is not None and not n.link.closed:
                    n.link.send(bc.encode(e.msg))
                    self._count_sent(e.msg.type)
            elif t is Broadcast:
                data = bc.encode(e.msg)
                for n in st.nodes.values():
                    if n is me or n.has("handshake") or n.link is None or n.link.closed:
                        continue
                    n.link.send(data)
                    self._count_sent(e.msg.type)
            elif t is FreeLink:
                self._free(e.link)
            elif t is SweepLinks:
                self._sweep()
            elif t is Connect:
                nid = e.node_id
                if nid not in self.connecting and self.nursery is not None:
                    n = st.nodes.get(nid)
                    if n is not None and n.link is None:
                        self.connecting[nid] = None
                        self.nursery.start_soon(self._connect, n)
            elif t is Deliver:
                ps = self.srv.pubsub
                if ps is not None and hasattr(ps, "deliver_from_bus"):
                    ps.deliver_from_bus(e.channel, e.message, e.shard)
            else:  # pragma: no cover - a new effect type without a handler
                raise TypeError("no handler for bus effect %r" % (e,))

    def _free(self, link: Link) -> None:
        link.close()
        n = link.node
        if n is not None:
            if n.link is link:
                n.link = None
            if n.inbound_link is link:
                n.inbound_link = None

    # --- links ----------------------------------------------------------------------------

    async def _connect(self, n) -> None:
        core = self.core
        try:
            try:
                with trio.fail_after(max(core.node_timeout(), 1000) / 1000.0):
                    stream = await self.env.connect(
                        n.ip, n.cport, self.node.config.get("bind-source-addr") or None)
            except (OSError, trio.TooSlowError):
                self.srv.now_ms = self.env.unix_ms()
                self.bus.link_failed(n, self.srv.now_ms)
                return
        finally:
            self.connecting.pop(n.id, None)
            self.bus.connect_ended(n)
        st = core.state
        if st.nodes.get(n.id) is not n or n.link is not None:
            await _aclose(stream)
            return
        self.srv.now_ms = self.env.unix_ms()
        link = Link(inbound=False, node=n, ctime=self.srv.now_ms)
        link.attach(stream)
        try:
            link.local_ip = _host(self.env.local_address(stream)) if hasattr(self.env, "local_address") else ""
        except OSError:
            link.local_ip = ""
        link.peer_ip = n.ip
        n.link = link
        self.outbound.append(link)
        core.emit("cluster.link_state", outcome="connected", node=n.id, direction="to")
        try:
            self._execute(self.bus.link_established(link, self.srv.now_ms))
            await self._run_link(link)
        finally:
            if n.link is link:
                n.link = None
            if link in self.outbound:
                self.outbound.remove(link)
            core.emit("cluster.link_state", outcome="disconnected", node=n.id, direction="to")
            self.node.cron_poke()  # (the cron reconnects it on its next tick)
            with trio.CancelScope(shield=True):
                await _aclose(stream)

    async def _handle_inbound(self, stream, peer: str, local: str) -> None:
        if self.srv.loading and self.core.state.myself.is_master:
            return
        link = Link(inbound=True, ctime=self.env.unix_ms())
        link.attach(stream)
        link.peer_ip = _host(peer)
        link.local_ip = _host(local)
        self.inbound.append(link)
        try:
            await self._run_link(link)
        finally:
            self.inbound.remove(link)
            n = link.node
            if n is not None and n.inbound_link is link:
                n.inbound_link = None

    async def _run_link(self, link: Link) -> None:
        try:
            async with trio.open_nursery() as ln:
                link.scope = ln.cancel_scope
                if link.closed:
                    ln.cancel_scope.cancel()
                ln.start_soon(self._writer, link)
                await self._reader(link)
                ln.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            link.closed = True

    async def _writer(self, link: Link) -> None:
        """What Link.send could not hand to the socket at once (or all of
        it, on the simulator's streams), in order."""
        io = link.io
        while True:
            if not link.out:
                await link.wake.wait()
                link.wake = trio.Event()
                continue
            data = b"".join(link.out)
            link.out.clear()
            link.out_bytes = 0
            link.sending = True
            await io.send_all(data)
            link.sending = False

    async def _reader(self, link: Link) -> None:
        stream = link.io
        buf = bytearray()
        core = self.core
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
            handled = False
            npk = 0
            while len(buf) >= 8:
                try:
                    totlen = bc.frame_length(bytes(buf[:8]))
                except bc.PacketRejected as e:
                    extra = bus_policy.on_rejected(getattr(self.srv, "policy", None), bytes(buf[:256]), e.reason)
                    core.emit("cluster.packet_rejected", outcome="link_closed", reason=e.reason, **extra)
                    log.warning("%s", e.reason)
                    return
                if len(buf) < totlen:
                    break
                raw = bytes(buf[:totlen])
                del buf[:totlen]
                self.srv.now_ms = self.env.unix_ms()
                effects, close = self.bus.receive_raw(link, raw, self.srv.now_ms)
                if close:
                    return
                self._execute(effects)
                handled = True
                if link.closed:
                    return
                npk += 1
                pol = getattr(self.srv, "policy", None)
                clamp = bus_policy.batch_clamp(pol)
                if clamp and npk >= clamp and len(buf) >= 8 and pol.allow(RESOURCE_CLAMP, what="bus-batch"):
                    # hardened ResourceClamp: let other links and clients run
                    npk = 0
                    self.node.after_cluster_event()
                    handled = False
                    await trio.sleep(0)
            if handled:
                self.node.after_cluster_event()


async def _aclose(stream) -> None:
    try:
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
