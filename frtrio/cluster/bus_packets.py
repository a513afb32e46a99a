"""The cluster bus packets a node builds (pure): the message header every
packet carries (my slots or my master's, epochs, flags, replication
offset, manual-failover pause), PING/PONG/MEET with their gossip section
(max(3, N/10) random healthy nodes, then every PFAIL node; the hostname
extension), FAIL, UPDATE and PUBLISH. A mixin of ``BusCore``
(cluster/gossip.py). Facts: ``spec/cluster-bus.md``.
"""

from __future__ import annotations

from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_types import FAIL, MEET, PING, PONG, PUBLISH, PUBLISHSHARD, UPDATE
from frtrio.cluster.state import ClusterNode
from frtrio.core.effects import Broadcast, SendOnLink, SendToNode

_FLAG_BITS = {name: bit for bit, name in bc.FLAG_NAMES}


def node_flag_bits(n: ClusterNode) -> int:
    v = 0
    for f in n.flags:
        b = _FLAG_BITS.get(f)
        if b:
            v |= b
    if n.migrate_to:
        v |= bc.F_MIGRATE_TO
    return v



class PacketBuilder:
    """Builds what ``BusCore`` sends."""

    # --- building packets -----------------------------------------------------------

    def header(self, type: int) -> bc.Message:
        st = self.st
        cfg = self.server.config
        me = st.myself
        master = st.nodes.get(me.master_id) if (me.is_replica and me.master_id) else None
        src = master if master is not None else me
        m = bc.Message(type)
        m.sender = me.id
        m.port = me.port
        m.cport = me.cport
        m.myip = cfg.get("cluster-announce-ip") or ""
        m.myslots = bytes(src.slots)
        m.config_epoch = src.config_epoch
        m.slaveof = me.master_id if me.is_replica else None
        m.flags = node_flag_bits(me) | bc.F_MYSELF
        m.state = 0 if st.state_ok else 1
        m.current_epoch = st.current_epoch
        m.offset = self.core.my_repl_offset()
        if me.is_master and self.core.manual_failover_paused():
            m.mflags |= bc.MF_PAUSED
        return m

    def gossip_entry(self, n: ClusterNode) -> bc.Gossip:
        return bc.Gossip(n.id, n.ping_sent // 1000, n.pong_received // 1000, n.ip, n.port,
                         n.cport, node_flag_bits(n), 0, 0)

    def ping_message(self, type: int, to: str | None = None) -> bc.Message:
        """PING/PONG/MEET with gossip: max(3, N/10) random healthy nodes, then
        every PFAIL node; plus the hostname extension when configured."""
        st = self.st
        rng = self.server.rng
        m = self.header(type)
        nodes = list(st.nodes.values())
        freshnodes = len(nodes) - 2
        wanted = max(3, len(nodes) // 10)
        if wanted > freshnodes:
            wanted = freshnodes
        added: dict[str, None] = {}
        maxiter = wanted * 3
        while freshnodes > 0 and len(added) < wanted and maxiter > 0:
            maxiter -= 1
            n = nodes[rng.randrange(len(nodes))]
            if n is st.myself:
                continue
            if n.has("fail?"):
                continue
            if n.has("handshake") or n.has("noaddr") or (n.link is None and n.numslots == 0):
                freshnodes -= 1
                continue
            if n.id in added:
                continue
            added[n.id] = None
            m.gossip.append(self.gossip_entry(n))
        for n in nodes:
            if n.has("fail?") and not n.has("handshake") and not n.has("noaddr") and n.id not in added:
                m.gossip.append(self.gossip_entry(n))
        host = self.server.config.get("cluster-announce-hostname")
        if host:
            m.extensions.append(bc.hostname_extension(host))
        if to is None or to not in self.no_secret_peers:
            # Redis 8's internal secret (atomic slot migration authenticates
            # with it), to every node but those whose packets came without
            # it: a Redis 7.0 node, which logs each unknown extension, sees
            # it about once per frtrio process
            m.extensions.append(bc.internal_secret_extension(self.st.internal_secret))
        return m

    def broadcast_pong(self) -> None:
        """A PONG to every node (an ownership change to announce now)."""
        self.core.to_bus(Broadcast(self.ping_message(PONG)))

    def send_ping(self, n: ClusterNode, type: int, now: int, link=None):
        """A PING/MEET on the node's outbound link (records ping_sent)."""
        if type == PING:
            n.ping_sent = now
        msg = self.ping_message(type, n.id)
        if link is not None:
            return SendOnLink(link, msg)
        return SendToNode(n.id, msg)

    def fail_message(self, node_id: str) -> bc.Message:
        m = self.header(FAIL)
        m.fail_node = node_id
        return m

    def update_message(self, n: ClusterNode) -> bc.Message:
        m = self.header(UPDATE)
        m.update_epoch = n.config_epoch
        m.update_node = n.id
        bm = bytearray(n.slots)
        for i in range(len(bm)):
            bm[i] &= ~self.not_claiming[i] & 0xFF
        m.update_slots = bytes(bm)
        return m

    def publish_message(self, channel: bytes, message: bytes, shard: bool) -> bc.Message:
        m = self.header(PUBLISHSHARD if shard else PUBLISH)
        m.channel = channel
        m.message = message
        return m
