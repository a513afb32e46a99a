"""The replica side of failover (pure): the election a replica runs when its
master is FAIL (Redis's clusterHandleSlaveFailover), the replica's steps of a
manual failover (CLUSTER FAILOVER default/FORCE/TAKEOVER), and the
promotion that ends both (clusterFailoverReplaceYourMaster). A mixin of
``BusCore`` (cluster/gossip.py): it builds packets with the bus core and
returns bus effects. Facts: ``spec/cluster-semantics.md`` §7.3-§7.4.

What the node's replication contributes is read from the cluster core as
plain state, kept there by the replication shell:

* ``core.repl_link_up`` / ``repl_last_io_ms`` / ``repl_down_since_ms``: the
  data age of §7.3 step 2 (how long since I last heard from my master);
* ``core.my_repl_offset()``: my processed offset, in every bus header, which
  ranks the replicas of one master.

Becoming master (or the replica of another node) is a change of
``myself.master_id`` in the cluster state; the replication shell follows it
(a replica whose master id becomes None is promoted as REPLICAOF NO ONE is).
"""

from __future__ import annotations

from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_types import FAILOVER_AUTH_REQUEST, MFSTART, PONG
from frtrio.core.effects import Broadcast, SendToNode

# Redis's CLUSTER_CANT_FAILOVER_* reasons (logged once per change, as Redis)
CANT_NONE = 0
CANT_DATA_AGE = 1
CANT_WAITING_DELAY = 2
CANT_EXPIRED = 3
CANT_WAITING_VOTES = 4

_CANT_TEXT = {
    CANT_DATA_AGE: "Disconnected from master for longer than allowed. "
                   "Please check the 'cluster-replica-validity-factor' configuration option.",
    CANT_WAITING_DELAY: "Waiting the delay before I can start a new failover.",
    CANT_EXPIRED: "Failover attempt expired.",
    CANT_WAITING_VOTES: "Waiting for votes, but majority still not reached.",
}

MF_TIMEOUT_MS = 5000  # CLUSTER_MF_TIMEOUT
MIGRATION_DELAY_MS = 5000  # CLUSTER_SLAVE_MIGRATION_DELAY


class ReplicaFailover:
    """Election and manual-failover state of a replica, for ``BusCore``."""

    def init_failover(self) -> None:
        self.failover_auth_time = 0
        self.failover_auth_count = 0
        self.failover_auth_sent = False
        self.failover_auth_rank = 0
        self.failover_auth_epoch = 0
        self.cant_failover_reason = CANT_NONE
        self.last_cant_log_ms = 0
        # manual failover, replica side: mf_end (0 = none), may the election
        # start, the master's offset from its first PAUSED packet (-1: none yet)
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_master_offset = -1
        self.mf_mode = None
        self.todo_failover = False  # run handle_failover in the before-sleep round

    # --- helpers ------------------------------------------------------------------

    def _rank(self) -> int:
        """How many other replicas of my master (not NOFAILOVER) have a
        greater replication offset than mine (clusterGetSlaveRank)."""
        st = self.st
        me = st.myself
        master = st.nodes.get(me.master_id or "")
        if master is None:
            return 0
        mine = self.core.my_repl_offset()
        rank = 0
        for rid in master.replicas:
            r = st.nodes.get(rid)
            if r is None or r is me or r.has("nofailover"):
                continue
            if r.repl_offset > mine:
                rank += 1
        return rank

    def _data_age(self, now: int) -> int:
        core = self.core
        if core.repl_link_up:
            age = (now // 1000 - core.repl_last_io_ms // 1000) * 1000
        else:
            age = (now // 1000 - core.repl_down_since_ms // 1000) * 1000
        nt = self.node_timeout()
        if age > nt:
            age -= nt
        return age

    def _cant_failover(self, reason: int, now: int) -> None:
        """Redis's clusterLogCantFailover: the reason is logged when it
        changes, or every 10 s while the master has been FAIL long enough."""
        nolog_period = 10_000
        if reason == self.cant_failover_reason and now - self.last_cant_log_ms < nolog_period:
            return
        self.cant_failover_reason = reason
        master = self.st.nodes.get(self.st.myself.master_id or "")
        if master is not None and master.fail_time and now - master.fail_time < nolog_period:
            return
        self.last_cant_log_ms = now
        self.emit("cluster.failover_blocked", outcome=_CANT_TEXT.get(reason, "none"))

    # --- manual failover (replica side) -----------------------------------------------

    def start_manual_failover(self, mode: str, now: int) -> list:
        """CLUSTER FAILOVER [FORCE|TAKEOVER] accepted on a replica (the
        command checked the preconditions). Returns bus effects."""
        self.reset_manual_failover()
        self.mf_end = now + MF_TIMEOUT_MS
        self.mf_mode = mode
        st = self.st
        master = st.nodes.get(st.myself.master_id or "")
        if mode == "takeover":
            # no election and no master: bump my epoch, take over at once
            if st.bump_epoch_without_consensus():
                self.emit("cluster.epoch_changed", outcome="bumped_takeover",
                          config_epoch=st.myself.config_epoch)
            return self.replace_my_master(now)
        if mode == "force":
            self.mf_can_start = True
            return []
        if master is None:
            return []
        # default: ask the master to pause and wait for its offset
        return [SendToNode(master.id, self.header(MFSTART))]

    def reset_manual_failover(self) -> None:
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_master_offset = -1
        self.mf_mode = None

    def paused_master_packet(self, sender, m) -> None:
        """A packet from my master while a manual failover of mine is on:
        its first PAUSED header gives the offset to reach."""
        me = self.st.myself
        if (self.mf_end and me.is_replica and me.master_id == sender.id
                and m.mflags & bc.MF_PAUSED and self.mf_master_offset == -1):
            self.mf_master_offset = m.offset
            self.emit("cluster.manual_failover", outcome="master_offset_received",
                      offset=m.offset)

    def manual_failover_step(self, now: int) -> None:
        """Replica side of clusterHandleManualFailover: may the election
        start (my offset reached the paused master's)?"""
        if self.mf_end == 0 or self.mf_can_start or self.mf_master_offset == -1:
            return
        if self.mf_master_offset == self.core.my_repl_offset():
            self.mf_can_start = True
            self.emit("cluster.manual_failover", outcome="can_start",
                      offset=self.mf_master_offset)

    def manual_failover_timed_out(self, now: int) -> bool:
        if self.mf_end and self.mf_end < now:
            self.emit("cluster.manual_failover", outcome="timed_out")
            self.reset_manual_failover()
            return True
        return False

    # --- the election -----------------------------------------------------------------

    def auth_ack(self, sender, m) -> None:
        """A FAILOVER_AUTH_ACK: counted when it comes from a master with
        slots for the epoch of my request. The election is then checked in
        this before-sleep round (CLUSTER_TODO_HANDLE_FAILOVER), not at the
        next cron tick: the vote that makes the majority promotes me at once."""
        if sender.is_master and sender.numslots > 0 and m.current_epoch >= self.failover_auth_epoch:
            self.failover_auth_count += 1
            self.todo_failover = True
            self.emit("cluster.failover_vote", outcome="ack_counted", node=sender.id,
                      votes=self.failover_auth_count)

    def handle_failover(self, now: int) -> list:
        """clusterHandleSlaveFailover, once (from the cron and the
        before-sleep round). Returns bus effects."""
        self.todo_failover = False  # (a cron run answers a pending before-sleep ask too)
        st = self.st
        me = st.myself
        core = self.core
        cfg = self.server.config
        nt = self.node_timeout()
        auth_age = now - self.failover_auth_time
        needed = st.size // 2 + 1
        manual = self.mf_end != 0 and self.mf_can_start
        auth_timeout = max(nt * 2, 2000)
        auth_retry = auth_timeout * 2
        master = st.nodes.get(me.master_id or "") if me.is_replica else None
        if (me.is_master or master is None or (not master.has("fail") and not manual)
                or (cfg.get("cluster-replica-no-failover") == "yes" and not manual)
                or master.numslots == 0):
            self.cant_failover_reason = CANT_NONE
            return []
        factor = int(cfg.get("cluster-replica-validity-factor") or 0)
        period = int(cfg.get("repl-ping-replica-period") or 10)
        if factor and self._data_age(now) > period * 1000 + nt * factor and not manual:
            self._cant_failover(CANT_DATA_AGE, now)
            return []
        if auth_age > auth_retry:
            self.failover_auth_time = now + 500 + self.server.rng.randrange(500)
            self.failover_auth_count = 0
            self.failover_auth_sent = False
            self.failover_auth_rank = self._rank()
            self.failover_auth_time += self.failover_auth_rank * 1000
            if self.mf_end:
                self.failover_auth_time = now
                self.failover_auth_rank = 0
                self.todo_failover = True
            self.emit("cluster.failover_scheduled", delay_ms=self.failover_auth_time - now,
                      rank=self.failover_auth_rank, offset=core.my_repl_offset())
            # my offset to the other replicas of my master (they rank by it)
            msg = self.ping_message(PONG)
            return [SendToNode(rid, msg) for rid in master.replicas if rid != me.id]
        if not self.failover_auth_sent and self.mf_end == 0:
            rank = self._rank()
            if rank > self.failover_auth_rank:
                self.failover_auth_time += (rank - self.failover_auth_rank) * 1000
                self.failover_auth_rank = rank
                self.emit("cluster.failover_rank_updated", rank=rank)
        if now < self.failover_auth_time:
            self._cant_failover(CANT_WAITING_DELAY, now)
            return []
        if auth_age > auth_timeout:
            self._cant_failover(CANT_EXPIRED, now)
            return []
        if not self.failover_auth_sent:
            st.current_epoch += 1
            self.failover_auth_epoch = st.current_epoch
            self.failover_auth_sent = True
            self._save(fsync=True, update=True)
            self.emit("cluster.failover_election", outcome="started", epoch=st.current_epoch)
            req = self.header(FAILOVER_AUTH_REQUEST)
            if self.mf_end:
                req.mflags |= bc.MF_FORCEACK
            return [Broadcast(req)]
        if self.failover_auth_count >= needed:
            self.emit("cluster.failover_election", outcome="won", epoch=self.failover_auth_epoch,
                      votes=self.failover_auth_count)
            if me.config_epoch < self.failover_auth_epoch:
                me.config_epoch = self.failover_auth_epoch
            return self.replace_my_master(now)
        self._cant_failover(CANT_WAITING_VOTES, now)
        return []

    def replace_my_master(self, now: int) -> list:
        """clusterFailoverReplaceYourMaster: become master, take every slot
        of the old master, save with fsync, tell everyone."""
        st = self.st
        me = st.myself
        old = st.nodes.get(me.master_id or "")
        if me.is_master or old is None:
            return []
        st.set_master(me, None)  # the replication shell promotes the node
        st.assign_slots([j for j, owner in enumerate(st.slots) if owner is old], me)
        self._save(fsync=True, update=True)
        self.reset_manual_failover()
        # my old master's unfinished import: its partial keys go (§6.6)
        self.core.migrations.trim_partial_import()
        self.emit("cluster.role_changed", outcome="promoted", old_master=old.id,
                  config_epoch=me.config_epoch)
        return [Broadcast(self.ping_message(PONG))]

    # --- replica migration (§7.5) ---------------------------------------------------

    def ok_replicas(self, master) -> int:
        """clusterCountNonFailingSlaves: replicas of master not FAIL."""
        nodes = self.st.nodes
        return sum(1 for rid in master.replicas
                   if (r := nodes.get(rid)) is not None and not r.has("fail"))

    def orphan_census(self) -> tuple[int, int, int]:
        """clusterCron's orphan bookkeeping (replicas only): how many
        orphaned masters (no working replica, slots, MIGRATE_TO), the
        largest count of working replicas of a master, and my master's."""
        st = self.st
        me = st.myself
        orphaned = max_replicas = mine = 0
        if not me.is_replica:
            return 0, 0, 0
        for n in st.nodes.values():
            if (n is me or n.has("noaddr") or n.has("handshake")
                    or not n.is_master or n.has("fail")):
                continue
            ok = self.ok_replicas(n)
            if ok == 0 and n.numslots > 0 and n.migrate_to:
                orphaned += 1
            max_replicas = max(max_replicas, ok)
            if me.master_id == n.id:
                mine = ok
        return orphaned, max_replicas, mine

    def maybe_migrate(self, now: int) -> list:
        """clusterCron step 7's second half: consider replica migration."""
        orphaned, max_replicas, mine = self.orphan_census()
        if (orphaned and max_replicas >= 2 and mine == max_replicas
                and self.server.config.get("cluster-allow-replica-migration") == "yes"):
            return self.handle_replica_migration(max_replicas, now)
        return []

    def handle_replica_migration(self, max_replicas: int, now: int) -> list:
        """clusterHandleSlaveMigration: the replica with the smallest ID
        among the masters with the most working replicas moves to the first
        orphaned master with slots, once it has been orphaned for 5 s, and
        only if my master keeps more than cluster-migration-barrier working
        replicas counting me."""
        st = self.st
        me = st.myself
        if not st.state_ok:
            return []
        mymaster = st.nodes.get(me.master_id or "")
        if mymaster is None:
            return []
        ok = sum(1 for rid in mymaster.replicas
                 if (r := st.nodes.get(rid)) is not None
                 and not r.has("fail") and not r.has("fail?"))
        if ok <= int(self.server.config.get("cluster-migration-barrier") or 0):
            return []
        target = None
        candidate = me.id
        for n in list(st.nodes.values()):
            orphan = n.is_master and not n.has("fail") and n.migrate_to
            n_ok = self.ok_replicas(n) if n.is_master else 0
            if n_ok > 0:
                orphan = False
            if orphan:
                if target is None and n.numslots > 0:
                    target = n
                if not n.orphaned_time:
                    n.orphaned_time = now
            else:
                n.orphaned_time = 0
            if n_ok == max_replicas:
                for rid in n.replicas:
                    if rid < candidate:
                        candidate = rid
        if target is None or candidate != me.id or now - target.orphaned_time <= MIGRATION_DELAY_MS:
            return []
        self.emit("cluster.replica_migration", outcome="migrating", target=target.id)
        self.set_my_master(target)
        return []

    def set_my_master(self, master) -> None:
        """clusterSetMaster for a replica (my slots are none): follow master;
        the replication shell re-points the link."""
        st = self.st
        st.set_master(st.myself, master)
        master.migrate_to = True
        self.reset_manual_failover()
        self._save(fsync=True, update=True)
        self.core.became_replica(master)
