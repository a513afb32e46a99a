"""Cluster state (pure): nodes, slot owners, open slots, epochs, the OK/FAIL
reducer, and the textual views (CLUSTER NODES / SLOTS / SHARDS / INFO).

Every change of slot ownership goes through ``assign_slot`` / ``unassign_slot``
so the owner table, each node's slot bitmap and its slot count never disagree
(contract C14); every change bumps ``version`` so routing memos know when to
forget.

Time comes in as ``now_ms`` arguments; nothing here reads a clock.
"""

from __future__ import annotations

from frtrio.cluster.slots import CLUSTER_SLOTS

FLAG_ORDER = ("myself", "master", "slave", "fail?", "fail", "handshake", "noaddr", "nofailover")
KNOWN_FLAGS = frozenset(FLAG_ORDER + ("noflags",))


class ClusterNode:
    __slots__ = (
        "id", "ip", "port", "cport", "tls_port", "hostname", "flags", "master_id",
        "ping_sent", "pong_received", "data_received", "config_epoch", "slots",
        "numslots", "replicas", "fail_time", "voted_time", "repl_offset",
        "fail_reports", "ctime", "link", "inbound_link", "orphaned_time",
        "migrate_to", "_ranges", "connecting",
    )

    def __init__(self, id: str, flags=(), ctime: int = 0):
        self.id = id
        self.ip = ""
        self.port = 0
        self.cport = 0
        self.tls_port = 0
        self.hostname = ""
        self.flags: dict[str, None] = dict.fromkeys(flags)
        self.master_id: str | None = None
        self.ping_sent = 0
        self.pong_received = 0
        self.data_received = 0
        self.config_epoch = 0
        self.slots = bytearray(CLUSTER_SLOTS // 8)
        self.numslots = 0
        self.replicas: list[str] = []
        self.fail_time = 0
        self.voted_time = 0
        self.repl_offset = 0
        self.fail_reports: dict[str, int] = {}  # reporter id -> time ms
        self.ctime = ctime
        self.link = None  # outbound link object (shell), or None
        # an outbound connect asked for and not finished: Redis has a link
        # object (node->link) from the moment it starts connecting
        self.connecting = False
        self.inbound_link = None
        self.orphaned_time = 0
        self.migrate_to = False
        self._ranges: tuple[bytes, list] | None = None  # slot_ranges memo

    # flags ---------------------------------------------------------------
    def has(self, flag: str) -> bool:
        return flag in self.flags

    def set_flag(self, flag: str) -> None:
        self.flags[flag] = None

    def clear_flag(self, flag: str) -> None:
        self.flags.pop(flag, None)

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    def flags_text(self) -> str:
        fl = [f for f in FLAG_ORDER if f in self.flags]
        return ",".join(fl) if fl else "noflags"

    # slots bitmap ----------------------------------------------------------
    def owns(self, slot: int) -> bool:
        return bool(self.slots[slot >> 3] & (1 << (slot & 7)))

    def _set_bit(self, slot: int) -> bool:
        i, b = slot >> 3, 1 << (slot & 7)
        if self.slots[i] & b:
            return False
        self.slots[i] |= b
        self.numslots += 1
        return True

    def _clear_bit(self, slot: int) -> bool:
        i, b = slot >> 3, 1 << (slot & 7)
        if not self.slots[i] & b:
            return False
        self.slots[i] &= ~b & 0xFF
        self.numslots -= 1
        return True

    def slot_ranges(self) -> list[tuple[int, int]]:
        # byte-wise: whole 0x00 / 0xff bytes are skipped in one step (this
        # runs for every node on every nodes.conf save and CLUSTER NODES)
        out = []
        start = -1
        bm = self.slots
        if not self.numslots:
            return out
        memo = self._ranges
        if memo is not None and memo[0] == bm:
            return list(memo[1])
        for i in range(CLUSTER_SLOTS // 8):
            b = bm[i]
            if b == 0xFF:
                if start < 0:
                    start = i << 3
                continue
            if b == 0:
                if start >= 0:
                    out.append((start, (i << 3) - 1))
                    start = -1
                continue
            for k in range(8):
                s = (i << 3) | k
                if b & (1 << k):
                    if start < 0:
                        start = s
                elif start >= 0:
                    out.append((start, s - 1))
                    start = -1
        if start >= 0:
            out.append((start, CLUSTER_SLOTS - 1))
        self._ranges = (bytes(bm), out)
        return list(out)


class ClusterState:
    def __init__(self, myself: ClusterNode):
        self.myself = myself
        self.nodes: dict[str, ClusterNode] = {myself.id: myself}
        self.slots: list[ClusterNode | None] = [None] * CLUSTER_SLOTS
        self.migrating_to: dict[int, ClusterNode] = {}
        self.importing_from: dict[int, ClusterNode] = {}
        self.current_epoch = 0
        self.last_vote_epoch = 0
        self.state_ok = False
        self.size = 1
        self.among_minority_time = 0
        self.first_update_call = 0  # ms of the first state update call
        self.version = 0
        self.blacklist: dict[str, int] = {}  # node id -> expire unix seconds
        self.stats_sent: dict[int, int] = {}
        self.stats_received: dict[int, int] = {}
        self.links_buffer_limit_exceeded = 0
        self.todo_save = False
        self.todo_fsync = False
        self.todo_update_state = False
        # Redis 8's cluster-wide secret for internal connections (AUTH
        # "internal connection"), the smallest any node announced
        self.internal_secret = b"f" * 40

    def bump(self) -> None:
        self.version += 1

    # --- nodes --------------------------------------------------------------

    def add_node(self, node: ClusterNode) -> None:
        self.nodes[node.id] = node
        self.bump()

    def get(self, node_id: str) -> ClusterNode | None:
        return self.nodes.get(node_id)

    def delete_node(self, node: ClusterNode) -> None:
        """Forget a node: unbind its slots and open-slot marks, drop its
        failure reports and replica links."""
        for s in range(CLUSTER_SLOTS):
            if self.slots[s] is node:
                self.unassign_slot(s)
        for d in (self.migrating_to, self.importing_from):
            for s in [s for s, n in d.items() if n is node]:
                del d[s]
        for n in self.nodes.values():
            n.fail_reports.pop(node.id, None)
            if node.id in n.replicas:
                n.replicas.remove(node.id)
            if n.master_id == node.id:
                n.master_id = None  # freeClusterNode: its replicas' slaveof = NULL
        if node.master_id:
            m = self.nodes.get(node.master_id)
            if m is not None and node.id in m.replicas:
                m.replicas.remove(node.id)
        self.nodes.pop(node.id, None)
        self.bump()

    def rename_node(self, node: ClusterNode, new_id: str) -> None:
        del self.nodes[node.id]
        node.id = new_id
        self.nodes[new_id] = node
        self.bump()

    def set_master(self, node: ClusterNode, master: ClusterNode | None) -> None:
        if node.master_id:
            old = self.nodes.get(node.master_id)
            if old is not None and node.id in old.replicas:
                old.replicas.remove(node.id)
        if master is None:
            node.master_id = None
            node.clear_flag("slave")
            node.set_flag("master")
        else:
            node.master_id = master.id
            node.clear_flag("master")
            node.set_flag("slave")
            if node.id not in master.replicas:
                master.replicas.append(node.id)
        self.bump()

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.is_master]

    # --- slots --------------------------------------------------------------

    def assign_slot(self, slot: int, node: ClusterNode) -> bool:
        """Bind slot to node (unbinding it from its previous owner)."""
        return self.assign_slots((slot,), node) == 1

    def assign_slots(self, slots, node: ClusterNode) -> int:
        """``assign_slot`` for many slots at once (CLUSTER ADDSLOTS, a
        nodes.conf, a PONG claiming slots): the same bindings, the bit
        arithmetic inline and one version bump. Returns how many changed."""
        table = self.slots
        bm = node.slots
        if type(slots) is not list:
            slots = list(slots)
        k = len(slots)
        if k > 8:
            a = slots[0]
            prev = table[a] if a < CLUSTER_SLOTS else node
            if (prev is not node and a + k <= CLUSTER_SLOTS and table[a:a + k].count(prev) == k
                    and slots == list(range(a, a + k))):
                # a run of slots with one owner, or none (a new cluster's
                # ADDSLOTS, its first PONGs, a nodes.conf; a failover's
                # takeover): every one is bound, the table and the two
                # bitmaps in slices
                table[a:a + k] = [node] * k
                i0, i1 = a >> 3, (a + k - 1) >> 3
                mask = ((1 << k) - 1) << (a & 7)
                if prev is not None:
                    pm = prev.slots
                    was = int.from_bytes(pm[i0:i1 + 1], "little")
                    now = was & ~mask
                    prev.numslots -= (was ^ now).bit_count()
                    pm[i0:i1 + 1] = now.to_bytes(i1 - i0 + 1, "little")
                was = int.from_bytes(bm[i0:i1 + 1], "little")
                now = was | mask
                node.numslots += (now ^ was).bit_count()
                bm[i0:i1 + 1] = now.to_bytes(i1 - i0 + 1, "little")
                self.bump()
                return k
        n = 0
        for slot in slots:
            old = table[slot]
            if old is node:
                continue
            if old is not None:
                old._clear_bit(slot)
            i, b = slot >> 3, 1 << (slot & 7)
            if not bm[i] & b:  # (node._set_bit, inlined)
                bm[i] |= b
                node.numslots += 1
            table[slot] = node
            n += 1
        if n:
            self.bump()
        return n

    def unassign_slot(self, slot: int) -> bool:
        old = self.slots[slot]
        if old is None:
            return False
        old._clear_bit(slot)
        self.slots[slot] = None
        self.bump()
        return True

    def owner(self, slot: int) -> ClusterNode | None:
        return self.slots[slot]

    def check_consistency(self) -> list[str]:
        """Disagreements between the owner table and the nodes' bitmaps."""
        problems = []
        counts: dict[str, int] = {}
        for s, n in enumerate(self.slots):
            if n is not None:
                if not n.owns(s):
                    problems.append("slot %d owned by %s but not in its bitmap" % (s, n.id))
                counts[n.id] = counts.get(n.id, 0) + 1
        for n in self.nodes.values():
            if n.numslots != counts.get(n.id, 0):
                problems.append("node %s counts %d slots, table says %d" % (n.id, n.numslots, counts.get(n.id, 0)))
            for s in range(CLUSTER_SLOTS):
                if n.owns(s) and self.slots[s] is not n:
                    problems.append("node %s bitmap has slot %d owned by someone else" % (n.id, s))
                    break
        return problems

    # --- epochs -------------------------------------------------------------

    def max_config_epoch(self) -> int:
        return max((n.config_epoch for n in self.nodes.values()), default=0)

    def bump_epoch_without_consensus(self) -> bool:
        """Returns True if the epoch was bumped (BUMPED), False (STILL)."""
        me = self.myself
        mx = max(self.max_config_epoch(), self.current_epoch)
        if me.config_epoch == 0 or me.config_epoch != mx:
            self.current_epoch += 1
            me.config_epoch = self.current_epoch
            self.todo_save = True
            self.todo_fsync = True
            self.bump()
            return True
        return False

    # --- OK / FAIL reducer --------------------------------------------------

    def update_state(self, now_ms: int, node_timeout: int, require_full_coverage: bool) -> str | None:
        """Redis's clusterUpdateState. Returns "ok"/"fail" when the state
        changed, else None."""
        me = self.myself
        if self.first_update_call == 0:
            self.first_update_call = now_ms
        if me.is_master and not self.state_ok and now_ms - self.first_update_call < 2000:
            return None
        new_ok = True
        if require_full_coverage:
            # every slot bound, none to a FAIL node: the owner table and the
            # per-node counts agree (C14), so the counts answer this without
            # a walk over 16384 slots
            assigned = 0
            for n in self.nodes.values():
                if n.numslots:
                    assigned += n.numslots
                    if "fail" in n.flags:
                        new_ok = False
            if assigned != CLUSTER_SLOTS:
                new_ok = False
        size = 0
        reachable = 0
        for n in self.nodes.values():  # (flags tested inline: every cron tick comes here)
            if n.numslots:
                fl = n.flags
                if "master" in fl:
                    size += 1
                    if not ("fail" in fl or "fail?" in fl):
                        reachable += 1
        self.size = size
        quorum = size // 2 + 1
        if reachable < quorum:
            new_ok = False
            self.among_minority_time = now_ms
        if new_ok != self.state_ok:
            rejoin_delay = min(max(node_timeout, 500), 5000)
            if new_ok and me.is_master and now_ms - self.among_minority_time < rejoin_delay:
                return None
            self.state_ok = new_ok
            self.bump()
            return "ok" if new_ok else "fail"
        return None

    # --- views ----------------------------------------------------------------

    def my_epoch(self) -> int:
        me = self.myself
        if me.is_replica and me.master_id and me.master_id in self.nodes:
            return self.nodes[me.master_id].config_epoch
        return me.config_epoch

    def node_line(self, n: ClusterNode, for_config: bool = False, tls: bool = False) -> str:
        addr = "%s:%d@%d" % (n.ip, n.port, n.cport)
        if n.hostname:
            addr += "," + n.hostname
        epoch = n.config_epoch
        if n.is_replica and n.master_id and n.master_id in self.nodes:
            epoch = self.nodes[n.master_id].config_epoch
        link = "connected" if (n is self.myself or n.link is not None) else "disconnected"
        parts = [
            n.id, addr, n.flags_text(), n.master_id or "-",
            str(n.ping_sent), str(n.pong_received), str(epoch), link,
        ]
        for a, b in n.slot_ranges():
            parts.append(str(a) if a == b else "%d-%d" % (a, b))
        if n is self.myself:
            # by slot; a slot both migrating and importing shows migrating
            for s in sorted(set(self.migrating_to) | set(self.importing_from)):
                if s in self.migrating_to:
                    parts.append("[%d->-%s]" % (s, self.migrating_to[s].id))
                else:
                    parts.append("[%d-<-%s]" % (s, self.importing_from[s].id))
        return " ".join(parts)

    def nodes_text(self, for_config: bool = False) -> str:
        lines = []
        for n in self.nodes.values():
            if for_config and n.has("handshake"):
                continue
            lines.append(self.node_line(n, for_config) + "\n")
        return "".join(lines)

    def config_text(self) -> str:
        return self.nodes_text(True) + "vars currentEpoch %d lastVoteEpoch %d\n" % (
            self.current_epoch, self.last_vote_epoch)

    def slot_ranges_by_owner(self) -> list[tuple[int, int, ClusterNode]]:
        out = []
        start = 0
        cur = None
        for s in range(CLUSTER_SLOTS + 1):
            n = self.slots[s] if s < CLUSTER_SLOTS else None
            if n is not cur:
                if cur is not None:
                    out.append((start, s - 1, cur))
                cur = n
                start = s
        return out

    def info_lines(self, names: dict[int, str]) -> list[str]:
        assigned = ok = pfail = fail = 0
        for n in self.slots:
            if n is None:
                continue
            assigned += 1
            if n.has("fail"):
                fail += 1
            elif n.has("fail?"):
                pfail += 1
            else:
                ok += 1
        lines = [
            "cluster_state:" + ("ok" if self.state_ok else "fail"),
            "cluster_slots_assigned:%d" % assigned,
            "cluster_slots_ok:%d" % ok,
            "cluster_slots_pfail:%d" % pfail,
            "cluster_slots_fail:%d" % fail,
            "cluster_known_nodes:%d" % len(self.nodes),
            "cluster_size:%d" % self.size,
            "cluster_current_epoch:%d" % self.current_epoch,
            "cluster_my_epoch:%d" % self.my_epoch(),
        ]
        tot = 0
        for t in sorted(self.stats_sent):
            if self.stats_sent[t]:
                lines.append("cluster_stats_messages_%s_sent:%d" % (names.get(t, str(t)), self.stats_sent[t]))
                tot += self.stats_sent[t]
        lines.append("cluster_stats_messages_sent:%d" % tot)
        tot = 0
        for t in sorted(self.stats_received):
            if self.stats_received[t]:
                lines.append("cluster_stats_messages_%s_received:%d" % (names.get(t, str(t)), self.stats_received[t]))
                tot += self.stats_received[t]
        lines.append("cluster_stats_messages_received:%d" % tot)
        lines.append("total_cluster_links_buffer_limit_exceeded:%d" % self.links_buffer_limit_exceeded)
        return lines
