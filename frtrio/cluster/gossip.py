"""The cluster bus logic (pure): what a node does with each received packet,
what it sends, and the clusterCron duties. Packet building is in
``bus_packets.py``, failure detection, epochs and votes in ``failure.py``
(mixins of ``BusCore``).

``BusCore`` works on the ``ClusterState`` of a ``ClusterCore``. Its inputs
are decoded packets (with the link they came on), cron ticks and link
events; its outputs are typed effects for the shell (``frtrio/core/effects.py``):
``SendOnLink(link, msg)`` (PONG replies), ``SendToNode(node_id, msg)`` (on the
node's outbound link), ``Broadcast(msg)`` (every known node but myself and
handshake nodes), ``FreeLink(link)`` (the next cron tick re-creates outbound
links), ``Connect(node_id)`` and ``Deliver(channel, message, shard)`` (a
PUBLISH for local subscribers).

Links are opaque to this module except for the attributes ``node``
(ClusterNode or None), ``inbound`` (bool), ``ctime`` (ms), ``local_ip`` and
``peer_ip``. Time is the ``now`` argument (unix ms); randomness is the
server's seeded RNG. Facts: ``spec/cluster-bus.md`` §7-§10 and
``spec/cluster-semantics.md`` §7.
"""

from __future__ import annotations

import math

from frtrio.cluster import bus_codec as bc
from frtrio.cluster import bus_policy
from frtrio.cluster.bus_types import (
    FAIL,
    FAILOVER_AUTH_ACK,
    FAILOVER_AUTH_REQUEST,
    MEET,
    MFSTART,
    PING,
    PONG,
    PUBLISH,
    PUBLISHSHARD,
    UPDATE,
)
from frtrio.cluster.slots import CLUSTER_SLOTS
from frtrio.cluster.state import ClusterNode
from frtrio.cluster.bus_packets import PacketBuilder
from frtrio.cluster.election import ReplicaFailover
from frtrio.cluster.failure import FailureDetection
from frtrio.core.effects import Broadcast, Connect, Deliver, FreeLink, SendOnLink, SendToNode

def _bitmap_test(bm: bytes, j: int) -> bool:
    return bool(bm[j >> 3] & (1 << (j & 7)))


def _set_bits_not_in(bm: bytes, other: bytes):
    """Slots set in ``bm`` and not in ``other``, in slot order (the two
    compared as integers, so two equal bitmaps cost next to nothing)."""
    x = int.from_bytes(bm, "little") & ~int.from_bytes(other, "little")
    if not x:
        return
    for i, b in enumerate(x.to_bytes(CLUSTER_SLOTS // 8, "little")):
        if b:
            for k in range(8):
                if b & (1 << k):
                    yield (i << 3) | k


def _flags_from_bits(bits: int) -> list[str]:
    out = []
    for bit, name in bc.FLAG_NAMES:
        if bits & bit and name not in ("migrate_to", "myself"):
            out.append(name)
    return out


_BITS = tuple(1 << k for k in range(8))  # a bitmap byte's bits, slot order
_NO_OWNERS = [None] * 8  # eight slots of the owner table that nobody serves


def _changed_bytes(claims: bytes, have, nc):
    """The bitmap bytes of a slot claim that can change something: all but
    those where the sender already holds exactly what it claims and none of
    it is marked not-claiming. Compared 64 bytes at a time in C (the claims
    of a settled cluster match almost everywhere)."""
    for a in range(0, CLUSTER_SLOTS // 8, 64):
        b = a + 64
        if claims[a:b] == have[a:b] and nc[a:b].count(0) == 64:
            continue
        for i in range(a, b):
            claimed = claims[i]
            if claimed != have[i] or nc[i] & claimed:
                yield i


class BusCore(PacketBuilder, FailureDetection, ReplicaFailover):
    def __init__(self, core):
        self.core = core
        core.bus_core = self
        self.init_failover()
        self.state = core.state
        self.server = core.server
        self.drop_filter = -1
        self.cron_iteration = 0
        self.pfail_nodes = 0
        self.not_claiming = bytearray(CLUSTER_SLOTS // 8)  # owner_not_claiming_slot
        self.stats_pfail_gossip = 0
        self.secret_peers: set[str] = set()  # nodes that sent the internal secret
        self.no_secret_peers: set[str] = set()  # nodes whose packets came without

    def lacks_asm(self, node_id: str) -> bool:
        """Is this node known not to serve CLUSTER SYNCSLOTS (its packets
        come without the internal secret: Redis before 8)?"""
        return node_id in self.no_secret_peers

    # --- helpers --------------------------------------------------------------

    @property
    def st(self):
        return self.core.state

    def node_timeout(self) -> int:
        return self.core.node_timeout()

    def emit(self, code, **kw):
        self.core.emit(code, **kw)

    def _save(self, fsync=False, update=False):
        st = self.st
        st.todo_save = True
        if fsync:
            st.todo_fsync = True
        if update:
            st.todo_update_state = True
        st.bump()

    def slot_unclaimed(self, j: int) -> bool:
        return self.st.slots[j] is None or _bitmap_test(self.not_claiming, j)

    # --- requests from commands (CLUSTER, PUBLISH, DEBUG) --------------------------

    def publish_effects(self, channel: bytes, message: bytes, shard: bool) -> list:
        """PUBLISH goes to every node; SPUBLISH to my shard's nodes (Redis's
        clusterPropagatePublish)."""
        msg = self.publish_message(channel, message, shard)
        if not shard:
            return [Broadcast(msg)]
        st = self.st
        me = st.myself
        master = me if me.is_master else st.nodes.get(me.master_id or "")
        if master is None:
            return []
        return [SendToNode(nid, msg) for nid in [master.id] + list(master.replicas) if nid != me.id]

    def kill_links_effects(self, n: ClusterNode, direction: str) -> list:
        """DEBUG CLUSTERLINK KILL to|from|all: free the node's outbound and/or
        inbound link (the next cron tick reconnects the outbound one)."""
        out = []
        for ln in ((n.link,) if direction == "to" else (n.inbound_link,) if direction == "from"
                   else (n.link, n.inbound_link)):
            if ln is not None and not getattr(ln, "closed", False):
                # forgotten by the node at once (CLUSTER LINKS in the same
                # EXEC no longer lists it, as in Redis); the shell closes it
                if n.link is ln:
                    n.link = None
                if n.inbound_link is ln:
                    n.inbound_link = None
                out.append(FreeLink(ln))
                self.emit("cluster.link_state", outcome="killed", node=n.id,
                          direction="from" if ln.inbound else "to")
        return out

    # --- links --------------------------------------------------------------------

    def link_established(self, link, now: int) -> list:
        """An outbound link to ``link.node`` connected: MEET or PING it."""
        n = link.node
        if n is None or n.id not in self.st.nodes:
            return [FreeLink(link)]
        meet = n.has("meet")
        old = n.ping_sent
        n.connecting = False
        eff = self.send_ping(n, MEET if meet else PING, now, link)
        if old:
            n.ping_sent = old
        n.clear_flag("meet")
        return [eff]

    def link_failed(self, node: ClusterNode, now: int) -> None:
        """An outbound connect failed (refused, unreachable, timed out).

        Redis's non-blocking connect reports these asynchronously (connect()
        gives EINPROGRESS, the handler frees the link): ping_sent is not
        touched here. Failure detection still runs because the cron treats a
        node it is connecting to as linked: its keep-alive PING (pong older
        than node_timeout/2) and the random PING set ping_sent, as Redis's
        clusterSendPing does on a link still connecting. (Only a synchronous
        connect error sets ping_sent at once in Redis; sockets here are never
        synchronous.)"""
        node.connecting = False

    def connect_ended(self, node: ClusterNode) -> None:
        """The shell's connect attempt is over, whatever its outcome."""
        node.connecting = False

    @staticmethod
    def _linked(n: ClusterNode) -> bool:
        """node->link != NULL in Redis: connected, or being connected."""
        return n.link is not None or n.connecting

    # --- receiving ----------------------------------------------------------------

    def receive_raw(self, link, raw: bytes, now: int):
        """One framed packet from a link: count it, validate it, handle it.

        Returns (effects, close_link). A packet that fails validation
        changes nothing but the per-type received counter (as in Redis) and
        produces no effects (contract C10).
        """
        st = self.st
        if len(raw) >= 14:
            t = int.from_bytes(raw[12:14], "big")
            if t < 11:
                st.stats_received[t] = st.stats_received.get(t, 0) + 1
        try:
            msg = bc.decode(raw)
        except bc.PacketRejected as e:
            extra = bus_policy.on_rejected(self.server.policy, raw, e.reason)
            self.emit("cluster.packet_rejected", outcome="link_closed" if e.close_link else "ignored",
                      reason=e.reason, **extra)
            return [], e.close_link
        return self.handle(link, msg, now), False

    def handle(self, link, m: bc.Message, now: int) -> list:
        st = self.st
        eff: list = []
        t = m.type
        if t == self.drop_filter:
            return eff
        me = st.myself
        if link.node is not None and st.nodes.get(link.node.id) is not link.node:
            # the link of a node deleted since (FORGET, RESET): Redis frees
            # a node's links with it, so nothing more is read from it
            return [FreeLink(link)]
        if link.node is not None and not link.node.has("handshake"):
            sender = link.node
        else:
            sender = st.nodes.get(m.sender)
            if sender is not None and sender.has("handshake"):
                sender = None
            if sender is not None and link.inbound and link.node is None:
                if sender.inbound_link is not None and sender.inbound_link is not link:
                    eff.append(FreeLink(sender.inbound_link))
                sender.inbound_link = link
                link.node = sender
        if sender is not None:
            sender.data_received = now
        if sender is not None and not sender.has("handshake"):
            if m.current_epoch > st.current_epoch:
                st.current_epoch = m.current_epoch
                self._save()
            if m.config_epoch > sender.config_epoch:
                sender.config_epoch = m.config_epoch
                self._save(fsync=True)
                self.emit("cluster.epoch_changed", outcome="learned", node=sender.id,
                          config_epoch=m.config_epoch)
            sender.repl_offset = m.offset
            if self.mf_end:
                self.paused_master_packet(sender, m)
        if t in (PING, PONG, MEET):
            sec = m.internal_secret()
            if sec is not None:
                # a Redis 8 / frtrio peer; every node adopts the smallest
                # secret it has seen
                self.secret_peers.add(m.sender)
                self.no_secret_peers.discard(m.sender)
                if sec < st.internal_secret:
                    st.internal_secret = sec
            else:
                self.no_secret_peers.add(m.sender)
                self.secret_peers.discard(m.sender)
        if t in (PING, MEET):
            cfg = self.server.config
            if (t == MEET or not me.ip) and not cfg.get("cluster-announce-ip"):
                ip = link.local_ip
                if ip and ip != me.ip:
                    me.ip = ip
                    self._save()
                    self.emit("cluster.membership_changed", outcome="my_ip", ip=ip)
            if sender is None and t == MEET:
                n = ClusterNode(self.core.random_id(), ("handshake",), ctime=now)
                n.ip = m.myip or link.peer_ip
                n.port, n.cport = m.port, m.cport
                st.add_node(n)
                self._save()
                self.emit("cluster.membership_changed", outcome="handshake_from_meet", ip=n.ip,
                          port=n.port)
            eff.append(SendOnLink(link, self.ping_message(PONG, m.sender)))
        if t in (PING, PONG, MEET):
            return eff + self._handle_ping_pong(link, m, sender, now)
        if t == FAIL:
            if sender is None:
                return eff
            failing = st.nodes.get(m.fail_node)
            if failing is not None and failing is not me and not failing.has("fail"):
                failing.set_flag("fail")
                failing.fail_time = now
                failing.clear_flag("fail?")
                self._save(update=True)
                self.emit("cluster.node_fail", outcome="fail_received", node=failing.id,
                          reporter=sender.id)
            return eff
        if t in (PUBLISH, PUBLISHSHARD):
            if sender is None:
                return eff
            eff.append(Deliver(m.channel, m.message, t == PUBLISHSHARD))
            return eff
        if t == FAILOVER_AUTH_REQUEST:
            if sender is None:
                return eff
            return eff + self._handle_auth_request(sender, m, now)
        if t == FAILOVER_AUTH_ACK:
            if sender is None:
                return eff
            self.auth_ack(sender, m)
            return eff
        if t == UPDATE:
            if sender is None:
                return eff
            n = st.nodes.get(m.update_node)
            if n is None or m.update_epoch <= n.config_epoch:
                return eff
            if n.is_replica:
                self.set_node_as_master(n)
            n.config_epoch = m.update_epoch
            self._save(fsync=True)
            self.emit("cluster.update_received", node=n.id, config_epoch=m.update_epoch)
            return eff + self.update_slots_config_with(n, m.update_epoch, m.update_slots, now)
        if t == MFSTART:
            if sender is None or sender.master_id != me.id:
                return eff
            self.core.manual_failover_requested_by(sender, now)
            eff.append(SendOnLink(link, self.ping_message(PING)))
            return eff
        return eff

    def _handle_ping_pong(self, link, m, sender, now) -> list:
        st = self.st
        eff: list = []
        t = m.type
        me = st.myself
        if not link.inbound and link.node is not None:
            ln = link.node
            if ln.has("handshake"):
                known = st.nodes.get(m.sender)
                if known is not None and not known.has("handshake"):
                    self.update_address(known, link, m)
                    eff.append(FreeLink(link))
                    st.delete_node(ln)
                    self._save()
                    self.emit("cluster.membership_changed", outcome="handshake_duplicate",
                              node=known.id)
                    return eff
                if not bc.valid_node_id(m.sender.encode("latin-1")):
                    return eff
                st.rename_node(ln, m.sender)
                ln.clear_flag("handshake")
                if m.flags & bc.F_MASTER:
                    ln.set_flag("master")
                if m.flags & bc.F_SLAVE:
                    ln.set_flag("slave")
                self._save()
                self.emit("cluster.membership_changed", outcome="handshake_completed", node=ln.id)
            elif ln.id != m.sender:
                ln.set_flag("noaddr")
                ln.ip = ""
                ln.port = ln.cport = 0
                eff.append(FreeLink(link))
                self._save()
                self.emit("cluster.membership_changed", outcome="noaddr", node=ln.id)
                return eff
        if sender is not None:
            if m.flags & bc.F_NOFAILOVER:
                sender.set_flag("nofailover")
            else:
                sender.clear_flag("nofailover")
        if sender is not None and t == PING and not sender.has("handshake"):
            if self.update_address(sender, link, m):
                self._save(update=True)
        if not link.inbound and t == PONG and link.node is not None:
            ln = link.node
            ln.pong_received = now
            ln.ping_sent = 0
            if ln.has("fail?"):
                ln.clear_flag("fail?")
                self._save(update=True)
                self.emit("cluster.node_pfail_cleared", node=ln.id)
            elif ln.has("fail"):
                self.clear_failure_if_needed(ln, now)
        if sender is not None:
            if m.slaveof is None:
                self.set_node_as_master(sender)
            else:
                master = st.nodes.get(m.slaveof)
                if sender.is_master:
                    for s in range(CLUSTER_SLOTS):
                        if st.slots[s] is sender:
                            st.unassign_slot(s)
                    sender.clear_flag("master")
                    sender.migrate_to = False
                    sender.set_flag("slave")
                    self._save(update=True)
                    self.emit("cluster.role_changed", node=sender.id, outcome="replica")
                if master is not None and sender.master_id != master.id:
                    st.set_master(sender, master)
                    if len(master.replicas) == 1:
                        master.migrate_to = True
                    self._save()
        sender_master = None
        dirty = False
        if sender is not None:
            sender_master = sender if sender.is_master else st.nodes.get(sender.master_id or "")
            if sender_master is not None:
                dirty = bytes(sender_master.slots) != m.myslots
        if sender is not None and sender.is_master and dirty:
            eff += self.update_slots_config_with(sender, m.config_epoch, m.myslots, now)
        if sender is not None and dirty:
            # slots the sender claims that its bitmap here does not hold
            for j in _set_bits_not_in(m.myslots, sender.slots):
                owner = st.slots[j]
                if owner is sender or self.slot_unclaimed(j):
                    continue
                if owner.config_epoch > m.config_epoch:
                    if sender.link is not None:
                        eff.append(SendToNode(sender.id, self.update_message(owner)))
                    self.emit("cluster.update_sent", node=sender.id, owner=owner.id, slot=j)
                    break
        if (sender is not None and me.is_master and sender.is_master
                and m.config_epoch == me.config_epoch):
            self.handle_epoch_collision(sender)
        if sender is not None:
            eff += self.process_gossip(m, sender, now)
            host = m.hostname()
            if (host or "") != sender.hostname:
                sender.hostname = host or ""
                self._save()
        return eff

    def update_address(self, n: ClusterNode, link, m) -> bool:
        """Redis's nodeUpdateAddressIfNeeded. True if the address changed."""
        if link is n.link:
            return False
        ip = m.myip or link.peer_ip
        if n.ip == ip and n.port == m.port and n.cport == m.cport:
            return False
        n.ip, n.port, n.cport = ip, m.port, m.cport
        n.clear_flag("noaddr")
        if n.link is not None:
            self.core.bus_effects.append(FreeLink(n.link))
        self.emit("cluster.membership_changed", outcome="address_updated", node=n.id, ip=ip,
                  port=m.port)
        return True

    def set_node_as_master(self, n: ClusterNode) -> None:
        if n.is_master:
            return
        st = self.st
        if n.master_id:
            old = st.nodes.get(n.master_id)
            st.set_master(n, None)
            if old is not None and not old.replicas:
                old.migrate_to = False
            if n is not st.myself:
                n.migrate_to = True
        else:
            n.clear_flag("slave")
            n.set_flag("master")
        self._save(update=True)

    def process_gossip(self, m, sender: ClusterNode, now: int) -> list:
        st = self.st
        me = st.myself
        for g in m.gossip:
            gflags = g.flags
            node = st.nodes.get(g.node_id)
            if node is not None and not node.has("handshake"):
                if sender.is_master and node is not me:
                    if gflags & (bc.F_FAIL | bc.F_PFAIL):
                        if sender.id not in node.fail_reports:
                            self.emit("cluster.failure_report", node=node.id, reporter=sender.id)
                        node.fail_reports[sender.id] = now
                        self.mark_failing_if_needed(node, now)
                    else:
                        node.fail_reports.pop(sender.id, None)
                if (not gflags & (bc.F_FAIL | bc.F_PFAIL) and node.ping_sent == 0
                        and self.failure_reports_count(node, now) == 0):
                    pongtime = g.pong_received * 1000
                    if pongtime <= now + 500 and pongtime > node.pong_received:
                        node.pong_received = pongtime
                if ((node.has("fail") or node.has("fail?"))
                        and not gflags & bc.F_NOADDR
                        and not gflags & (bc.F_FAIL | bc.F_PFAIL)
                        and (node.ip.lower() != g.ip.lower() or node.port != g.port
                             or node.cport != g.cport)):
                    if node.link is not None:
                        self.core.bus_effects.append(FreeLink(node.link))
                    node.ip, node.port, node.cport = g.ip, g.port, g.cport
                    node.clear_flag("noaddr")
            elif node is None:
                if (not gflags & bc.F_NOADDR and g.node_id not in st.blacklist
                        and bc.valid_node_id(g.node_id.encode("latin-1"))):
                    n = ClusterNode(g.node_id, _flags_from_bits(gflags), ctime=now)
                    n.migrate_to = bool(gflags & bc.F_MIGRATE_TO)
                    n.ip, n.port, n.cport = g.ip, g.port, g.cport
                    st.add_node(n)
                    self._save()
                    self.emit("cluster.membership_changed", outcome="discovered", node=n.id,
                              via=sender.id)
        return self.core.take_bus_effects()

    # --- slot config ------------------------------------------------------------------

    def update_slots_config_with(self, sender: ClusterNode, epoch: int, slots: bytes, now: int) -> list:
        st = self.st
        me = st.myself
        if sender is me:
            return []
        curmaster = me if me.is_master else st.nodes.get(me.master_id or "")
        newmaster = None
        dirty_slots = []
        lost: set[int] = set()
        migrated = 0
        db0 = self.server.dbs[0]
        changed = False
        sender_slots = int.from_bytes(slots, "little").bit_count()
        nc = self.not_claiming
        have = sender.slots
        table = st.slots
        importing = st.importing_from
        won: list[int] = []  # slots the sender takes
        for i in _changed_bytes(slots, have, nc):
            claimed = slots[i]
            # (slot_unclaimed inlined, and the not-claiming bits set on
            # this byte directly: a new cluster's first PONGs bring
            # thousands of slots)
            j = i << 3
            if not importing and table[j:j + 8] == _NO_OWNERS:
                # eight slots nobody serves: the sender takes what it claims
                won.extend(range(j, j + 8) if claimed == 0xFF
                           else [j + k for k in range(8) if claimed & _BITS[k]])
                nc[i] &= ~claimed & 0xFF
                continue
            for bit in _BITS:
                if claimed & bit:
                    owner = table[j]
                    if owner is sender:
                        nc[i] &= ~bit & 0xFF
                    elif j in importing:
                        pass
                    elif owner is None or nc[i] & bit or owner.config_epoch < epoch:
                        if owner is me:
                            lost.add(j)
                            if db0.count_keys_in_slot(j) and sender is not me:
                                dirty_slots.append(j)
                        if owner is not None and owner is curmaster:
                            newmaster = sender
                            migrated += 1
                        won.append(j)
                        nc[i] &= ~bit & 0xFF
                elif table[j] is sender:
                    nc[i] |= bit
                j += 1
        if won:
            # (bound after the walk: no slot's verdict reads another's owner)
            st.assign_slots(won, sender)
            changed = True
        if changed:
            self._save(fsync=True, update=True)
            self.emit("cluster.slot_owner_state_update", outcome="gossip", node=sender.id,
                      config_epoch=epoch)
        if lost and me.is_master and self.core.migrations.tasks:
            if self.core.migrations.slots_lost(lost):
                dirty_slots = []  # the completed migration trimmed them
        cfg = self.server.config
        if (newmaster is not None and curmaster is not None and curmaster.numslots == 0
                and (cfg.get("cluster-allow-replica-migration") == "yes" or sender_slots == migrated)):
            if me.is_master:
                # clusterSetMaster: a master turning replica closes its open
                # slots (the last slot of a reshard is typically still
                # marked migrating here) and stops being a migration target
                st.migrating_to.clear()
                st.importing_from.clear()
                me.migrate_to = False
            st.set_master(me, sender)
            self._save(fsync=True, update=True)
            self.emit("cluster.role_changed", outcome="replica", master=sender.id)
            self.core.became_replica(sender)
        elif dirty_slots:
            for j in dirty_slots:
                self.core.delete_keys_in_slot(j)
        return []

    # --- cron ------------------------------------------------------------------------------

    def cron(self, now: int) -> list:
        """One clusterCron tick (every 100 ms)."""
        st = self.st
        nt = self.node_timeout()
        eff: list = []
        self.cron_iteration += 1
        update = False
        handshake_ttl = max(nt, 1000)
        pfail = 0
        me = st.myself
        # (flags tested inline in the two walks: this runs ten times a second)
        for n in list(st.nodes.values()):
            fl = n.flags
            if n is me or "noaddr" in fl:
                continue
            if "fail?" in fl:
                pfail += 1
            if "handshake" in fl and now - n.ctime > handshake_ttl:
                if n.link is not None:
                    eff.append(FreeLink(n.link))
                st.delete_node(n)
                self.emit("cluster.membership_changed", outcome="handshake_timeout", node=n.id)
                continue
            if n.link is None:
                eff.append(Connect(n.id))
                n.connecting = True
        self.pfail_nodes = pfail
        if self.cron_iteration % 10 == 0:
            rng = self.server.rng
            nodes = list(st.nodes.values())
            best = None
            for _ in range(5):
                n = nodes[rng.randrange(len(nodes))]
                if not self._linked(n) or n.ping_sent != 0 or n is me or n.has("handshake"):
                    continue
                if best is None or n.pong_received < best.pong_received:
                    best = n
            if best is not None:
                eff.append(self.send_ping(best, PING, now))
        for n in list(st.nodes.values()):
            fl = n.flags
            if n is me or "noaddr" in fl or "handshake" in fl:
                continue
            link = n.link
            if (link is not None and now - link.ctime > nt and n.ping_sent
                    and now - n.ping_sent > nt / 2 and now - n.data_received > nt / 2):
                eff.append(FreeLink(link))
                self.emit("cluster.link_state", outcome="recycled", node=n.id)
            if self._linked(n) and n.ping_sent == 0 and now - n.pong_received > nt / 2:
                # (on a link still connecting only ping_sent changes: the
                # connect handler sends the PING and keeps this ping_sent)
                eff.append(self.send_ping(n, PING, now))
                continue
            if self._linked(n) and self.core.mf_slave_is(n):
                eff.append(self.send_ping(n, PING, now))
                continue
            if n.ping_sent == 0:
                continue
            delay = min(now - n.ping_sent, now - n.data_received)
            if delay > nt and "fail?" not in fl and "fail" not in fl:
                n.set_flag("fail?")
                update = True
                self.emit("cluster.node_pfail", node=n.id, delay_ms=delay)
        # a manual failover that ran out of time; the replica's failover steps
        self.manual_failover_timed_out(now)
        if me.is_replica:
            self.manual_failover_step(now)
            eff += self.handle_failover(now)
            eff += self.maybe_migrate(now)
        if update or not st.state_ok:
            st.todo_update_state = True
        return eff

    # flags of another node that leave clusterCron nothing to do about it
    _CALM_FLAGS = frozenset(("master", "slave", "nofailover"))

    def quiet_until(self, now: int) -> float | None:
        """For the node's cron, which sleeps through ticks that have no
        work: the earliest unix ms at which a tick of :meth:`cron` could do
        more than count itself (send a PING, recycle a link, mark a PFAIL);
        ``math.inf`` when nothing is ever due (no other node); None when
        every tick may have work (a link down or connecting, a node in
        handshake or suspected, a manual failover, myself a replica).
        Time-driven conditions only: the random PING of every tenth tick is
        the caller's to schedule (:meth:`ticks_to_random_ping`), and what an
        event changes (a packet, a link) is judged again after it. A node
        with the ``noaddr`` flag is skipped here as in :meth:`cron`."""
        st = self.st
        me = st.myself
        if not me.is_master or self.mf_end or self.core.mf_slave is not None:
            return None
        nt = self.node_timeout()
        half = nt // 2 + 1  # (the first ms of "now - t > nt / 2", for odd nt too)
        calm = self._CALM_FLAGS
        due = math.inf  # (no other node: nothing time-driven at all)
        for n in st.nodes.values():
            if n is me:
                continue
            fl = n.flags
            if "noaddr" in fl:
                continue
            link = n.link
            if link is None or n.connecting or not calm.issuperset(fl):
                return None
            if n.ping_sent == 0:
                d = n.pong_received + half  # the PING of "no PONG for half the node timeout"
            else:
                # the PFAIL mark (no PONG and no data for the node timeout), or
                # before it the link's recycling (half of it, on an old link)
                d = min(max(n.ping_sent, n.data_received) + nt + 1,
                        max(link.ctime + nt + 1, n.ping_sent + half, n.data_received + half))
            if d < due:
                due = d
        return now if due < now else due

    def ticks_to_random_ping(self) -> int:
        """How many cron ticks from the last one to the next tick that
        PINGs a random node (every tenth)."""
        return 10 - self.cron_iteration % 10

    def skip_ticks(self, n: int) -> None:
        """The cron slept through ``n`` ticks that had nothing to do: they
        still count, so the random PING keeps its once-a-second cadence."""
        self.cron_iteration += n

    def before_sleep_manual_failover(self, now: int) -> None:
        """Before-sleep duty cluster_manual_failover (Redis's
        clusterBeforeSleep): a replica in a manual failover takes its step,
        and the election runs right after it."""
        if self.mf_end and self.st.myself.is_replica:
            self.manual_failover_step(now)
            self.todo_failover = True

    def before_sleep_failover(self, now: int) -> list:
        """Before-sleep duty cluster_failover: the election, when asked."""
        if not self.todo_failover:
            return []
        self.todo_failover = False
        if not self.st.myself.is_replica:
            return []
        return self.handle_failover(now)
