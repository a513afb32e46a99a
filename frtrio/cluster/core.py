"""The cluster side of one node (pure): routing gate, slot-change effects,
startup reconciliation and the todo flags for the shell.

``ClusterCore`` is installed as ``Server.cluster``. The engine calls
``route(client, cmd, argv)`` for every command; CLUSTER subcommands
(``commands/cluster.py``) change ``state`` through it. Effects for the shell:

* ``state.todo_save`` / ``state.todo_fsync``: write nodes.conf before replies
  go out (Redis's clusterBeforeSleep SAVE_CONFIG / FSYNC_CONFIG);
* blocked clients whose slot is no longer served here are released at once
  (``release_blocked_clients``), with the reply Redis gives (contract C05).
"""

from __future__ import annotations

from binascii import crc_hqx

from frtrio.core.client import F
from frtrio.cluster import routing
from frtrio.cluster.slots import CLUSTER_SLOTS, key_slot
from frtrio.cluster.state import ClusterNode, ClusterState
from frtrio.core.effects import PauseChanged, SweepLinks
from frtrio.protocol.reply import OK, ErrorReply


_REJECTING = frozenset(["cluster.packet_rejected", "cluster.redirect",
                        "cluster.blocked_client_redirected"])


class StartupError(Exception):
    """The node cannot start in cluster mode (bad data or config)."""


class ClusterCore:
    def __init__(self, server, state: ClusterState):
        self.server = server
        self.state = state
        self.router = routing.Router(state)
        self.opts = routing.RoutingOptions()
        self.refresh_options()
        self._released_version = -1
        # route()'s fast path: per slot 0 unknown, 1 local, 2 ask routing.decide
        self._clean = bytearray(CLUSTER_SLOTS)
        # the EXEC command: routing.decide judges the keys of its queue
        self._exec = getattr(server, "commands", {}).get(b"exec")
        self._clean_version = -1
        self.events = []  # (reason_code, fields) for the event log
        # the bus core (cluster/gossip.py), set when the node has a bus
        self.bus_core = None
        # what the replication shell keeps here for the election's data age
        # (cluster/election.py): is the link to my master up, when did it
        # last carry data, since when is it down
        self.repl_link_up = False
        self.repl_last_io_ms = 0
        self.repl_down_since_ms = server.now_ms
        self.mf_slave = None  # master side of a manual failover: the replica
        self.mf_end = 0
        self.mf_pause_end = 0  # the write pause that MFSTART started (0: none)
        # bus effects (frtrio/core/effects.py) for the bus shell: found deep inside
        # packet handling, or left by CLUSTER/PUBLISH/DEBUG commands; drained by
        # the bus shell (its before-sleep duty ``cluster_broadcast``)
        self.bus_effects: list = []
        self.save_now_requested = False
        self._last_saved: tuple[str, bool] | None = None  # (text, fsynced) last written
        state.internal_secret = self.random_id().encode()
        from frtrio.cluster.migration import Migrations

        self.migrations = Migrations(self)  # atomic slot migration (CLUSTER MIGRATION)

    # --- configuration ------------------------------------------------------

    def refresh_options(self) -> None:
        cfg = self.server.config
        self.opts.allow_reads_when_down = cfg.get("cluster-allow-reads-when-down") == "yes"
        self.opts.allow_pubsubshard_when_down = cfg.get("cluster-allow-pubsubshard-when-down") == "yes"
        self.opts.endpoint_type = cfg.get("cluster-preferred-endpoint-type")

    def refresh_myself_address(self) -> None:
        """My announced address, bus port, hostname and nofailover flag,
        from the configuration."""
        cfg = self.server.config
        me = self.state.myself
        port = int(cfg.get("cluster-announce-port") or 0) or int(cfg.get("port"))
        bus = int(cfg.get("cluster-announce-bus-port") or 0) or int(cfg.get("cluster-port") or 0) \
            or int(cfg.get("port")) + 10000
        me.port, me.cport = port, bus
        if cfg.get("cluster-announce-ip"):
            me.ip = cfg.get("cluster-announce-ip")
        me.hostname = cfg.get("cluster-announce-hostname")
        if cfg.get("cluster-replica-no-failover") == "yes":
            me.set_flag("nofailover")
        else:
            me.clear_flag("nofailover")
        self.state.bump()

    def config_changed(self, name: str, value: str) -> None:
        """A config listener: CONFIG SET of what the cluster announces or
        how it routes."""
        if name.startswith("cluster-announce") or name in ("cluster-replica-no-failover", "port"):
            self.refresh_myself_address()
            self.state.todo_save = True
            self.state.todo_update_state = True
        self.refresh_options()

    def node_timeout(self) -> int:
        return self.server.config.get_int("cluster-node-timeout")

    def emit(self, reason_code: str, **fields) -> None:
        """One structured event (DESIGN.md §7) for a cluster decision.

        ``reason_code`` names the decision (``cluster.*``); ``outcome`` in
        ``fields`` is what happened, kept in the event's detail as ``what``.
        """
        ev = self.server.events
        if ev is not None:
            what = fields.pop("outcome", "")
            outcome = "rejected" if reason_code in _REJECTING else "info"
            ev.emit(reason_code, reason_code=reason_code, outcome=outcome, what=what, **fields)

    # --- routing gate ---------------------------------------------------------

    def route(self, c, cmd, argv) -> str | None:
        """None to serve locally, else the error text of the redirect."""
        st = self.state
        if st.state_ok and cmd is not self._exec:
            # the fast path: every key in one slot this node owns with no
            # migration either way, cluster ok: local, as routing.decide
            # would say (a slot's verdict is memoised until the cluster
            # state changes; key_slot inlined for keys without a "{")
            if st.version != self._clean_version:
                self._clean = bytearray(CLUSTER_SLOTS)
                self._clean_version = st.version
            clean = self._clean
            if cmd.single_key:
                if len(argv) > 1:
                    key = argv[1]
                    slot = key_slot(key) if 123 in key else crc_hqx(key, 0) & 16383
                    v = clean[slot] or self._judge(slot)
                    if v == 1:
                        return None
            elif cmd.movable or cmd.has_key_specs:
                slot = -1
                for pos in cmd.get_keys(argv):
                    key = argv[pos]
                    s = key_slot(key) if 123 in key else crc_hqx(key, 0) & 16383
                    if s != slot:
                        if slot >= 0:
                            break  # CROSSSLOT: routing.decide says it
                        slot = s
                else:
                    if slot < 0 or (clean[slot] or self._judge(slot)) == 1:
                        return None  # (no keys at all: local too)
            else:
                return None
        if c.flags & F.MASTER:
            return None
        is_exec = cmd.fullname == "exec"
        if not is_exec and not cmd.movable and not cmd.has_key_specs:
            return None
        srv = self.server
        r = self.router.decide(
            self.opts, cmd, argv,
            asking=bool(c.flags & F.ASKING), readonly=bool(c.flags & F.READONLY),
            queued=c.multi if is_exec else None, multi=c.multi,
            db=srv.dbs[0], now_ms=srv.now_ms,
        )
        if r.kind == routing.LOCAL:
            return None
        err = routing.error_text(r, self.opts.endpoint_type)
        if is_exec and c.multi is not None:
            # EXEC redirected: the transaction is discarded (Redis's
            # discardTransaction), not just flagged.
            c.multi = None
            c.flags &= ~F.DIRTY_EXEC
            srv.unwatch_all(c)
        st = srv.cmdstats.get(cmd.fullname)
        if st is None:
            st = srv.cmdstats[cmd.fullname] = [0, 0, 0, 0]
        st[2] += 1
        self.emit("cluster.redirect", outcome=err.split(" ", 1)[0], slot=r.slot,
                  command=cmd.fullname)
        return err

    def _judge(self, slot: int) -> int:
        """route()'s memo of one slot: 1 when this node owns it and it is
        not migrating or importing, else 2."""
        st = self.state
        v = self._clean[slot] = (
            1 if (st.slots[slot] is st.myself and slot not in st.migrating_to
                  and slot not in st.importing_from) else 2)
        return v

    # --- serving --------------------------------------------------------------

    def serves_slot(self, slot: int, c=None) -> bool:
        st = self.state
        owner = st.slots[slot]
        me = st.myself
        if owner is me:
            return True
        if slot in st.importing_from:
            return True
        if c is not None and c.flags & F.READONLY and owner is not None and me.is_replica and me.master_id == owner.id:
            last_write = c.blocked is not None and c.blocked.argv is not None and _is_write(c.server, c.blocked.argv)
            return not last_write
        return False

    def release_blocked_clients(self) -> int:
        """Release every client blocked on a key of a slot no longer served
        here, or on anything while the cluster is down. Returns how many."""
        srv = self.server
        reg = srv.blocking
        st = self.state
        n = 0
        for c in list(srv.clients.values()):
            b = c.blocked
            if b is None or not b.keys:
                continue
            if not st.state_ok:
                reg.unblock(c, ErrorReply(routing.ERR_DOWN))
                self.emit("cluster.blocked_client_redirected", outcome="CLUSTERDOWN", client=c.id)
                n += 1
                continue
            slot = key_slot(b.keys[0])
            if self.serves_slot(slot, c):
                continue
            owner = st.slots[slot]
            if owner is None:
                reply = ErrorReply(routing.ERR_UNBOUND)
            else:
                reply = ErrorReply(routing.error_text(routing.Route(routing.MOVED, slot, owner),
                                                      self.opts.endpoint_type))
            reg.unblock(c, reply)
            self.emit("cluster.blocked_client_redirected", outcome=reply.message.split(" ")[0],
                      slot=slot, client=c.id)
            n += 1
        return n

    def after_command(self) -> None:
        """Run after every command: react to state changes."""
        st = self.state
        if st.version != self._released_version:
            self._released_version = st.version
            self.update_state()
            if self.server.blocking.waiters:
                self.release_blocked_clients()
            if self.server.pubsub is not None and hasattr(self.server.pubsub, "drop_unserved_shard_channels"):
                self.server.pubsub.drop_unserved_shard_channels(self)

    def update_state(self) -> None:
        srv = self.server
        cfg = srv.config
        changed = self.state.update_state(
            srv.now_ms, self.node_timeout(), cfg.get("cluster-require-full-coverage") == "yes")
        if changed is not None:
            self.emit("cluster.state_changed", outcome=changed)
            self._released_version = self.state.version

    # --- startup reconciliation (C08) ------------------------------------------

    def verify_config_with_data(self) -> list[str]:
        """Redis 7.0's verifyClusterConfigWithData. Returns log lines; raises
        StartupError for keys outside db 0."""
        srv = self.server
        for db in srv.dbs[1:]:
            if db.data:
                raise StartupError(
                    "You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting.")
        st = self.state
        me = st.myself
        if me.is_replica:
            return []
        logs = []
        db0 = srv.dbs[0]
        # an import cut by the restart: its keys go in a trim job (it logs
        # Redis's "Detected keys in slots that do not belong to this node")
        self.migrations.trim_partial_import()
        trimming = self.migrations.trimming_slots()
        for slot in sorted(db0.slot_keys):
            if not db0.slot_keys[slot] or slot in trimming:
                continue
            owner = st.slots[slot]
            if owner is me or slot in st.importing_from:
                continue
            if owner is None:
                st.assign_slot(slot, me)
                logs.append("I have keys for unassigned slot %d. Taking responsibility for it." % slot)
                self.emit("cluster.verify_config_with_data", outcome="claimed", slot=slot)
            else:
                st.importing_from[slot] = owner
                st.bump()
                logs.append("I have keys for slot %d, but the slot is assigned to another node. "
                            "Setting it to importing state." % slot)
                self.emit("cluster.verify_config_with_data", outcome="importing", slot=slot)
        if logs:
            st.todo_save = True
            st.todo_fsync = True
        return logs

    # --- node-local parts of multi-node operations ------------------------------

    def random_id(self) -> str:
        rng = self.server.rng
        return "".join("0123456789abcdef"[rng.randrange(16)] for _ in range(40))

    def start_handshake(self, ip: str, port: int, cport: int) -> bool:
        """CLUSTER MEET: add a node in handshake state (the bus contacts it).
        Returns False if a handshake to that address is already pending."""
        st = self.state
        for n in st.nodes.values():
            if n.has("handshake") and n.ip == ip and n.port == port and n.cport == cport:
                return False
        n = ClusterNode(self.random_id(), ("handshake", "meet"), ctime=self.server.now_ms)
        n.ip, n.port, n.cport = ip, port, cport
        # "meet" is an internal flag Redis does not print
        st.add_node(n)
        self.emit("cluster.membership_changed", outcome="handshake", ip=ip, port=port)
        return True  # the next cron tick connects to it

    def request_manual_failover(self, mode: str) -> None:
        """CLUSTER FAILOVER accepted: the failover machinery takes it from here."""
        self.emit("cluster.manual_failover", outcome="requested_" + mode)
        if self.bus_core is not None:
            self.to_bus(*self.bus_core.start_manual_failover(mode, self.server.now_ms))

    def reset(self, hard: bool) -> None:
        """CLUSTER RESET [HARD|SOFT] (the caller checked the preconditions)."""
        srv = self.server
        st = self.state
        me = st.myself
        self.migrations.cancel_all("CLUSTER RESET")
        if me.is_replica:
            st.set_master(me, None)
            for db in srv.dbs:
                db.clear()
            srv.dirty += 1
        st.migrating_to.clear()
        st.importing_from.clear()
        for s in range(CLUSTER_SLOTS):
            st.unassign_slot(s)
        for n in list(st.nodes.values()):
            if n is not me:
                st.delete_node(n)
                self.to_bus(SweepLinks())
        if hard:
            st.current_epoch = 0
            st.last_vote_epoch = 0
            me.config_epoch = 0
            st.rename_node(me, self.random_id())
        st.bump()
        st.todo_save = True
        st.todo_fsync = True
        st.todo_update_state = True
        self.emit("cluster.reset", outcome="hard" if hard else "soft")

    def take_config_to_save(self) -> tuple[str, bool] | None:
        """The nodes.conf text to write now, with whether to fsync it, or
        None (nothing asked for). The shell writes it (before-sleep duty
        ``cluster_save_config``) and reports with ``config_saved``; an
        OSError there stops the node, as in Redis. A text equal to the last
        one written is skipped, unless it asks for an fsync the last write
        did not do: rewriting identical bytes is unobservable, and during a
        reshard most SETSLOT NODE calls repeat what gossip already saved
        (each atomic save costs a few ms)."""
        st = self.state
        if not st.todo_save:
            return None
        fsync = st.todo_fsync
        st.todo_save = False
        st.todo_fsync = False
        text = st.config_text()
        last = self._last_saved
        if last is not None and last[0] == text and (last[1] or not fsync):
            return None
        return text, fsync

    def config_saved(self, text: str, fsync: bool) -> None:
        self._last_saved = (text, fsync)

    def saveconfig_result(self, text: str, error: OSError | None):
        """CLUSTER SAVECONFIG's reply once the shell tried to write ``text``
        (with fsync): +OK, or Redis's error with the OS's reason."""
        if error is not None:
            return ErrorReply("ERR error saving the cluster node config: %s"
                              % (error.strerror or error))
        self.config_saved(text, True)
        return OK

    def flush_todo(self) -> tuple[str, bool] | None:
        """Both cluster duties at once, in Redis's order (used at load time
        and by unit tests, outside the node's before-sleep manager): the
        state update, then the nodes.conf text to write, if any."""
        self.todo_update_state()
        return self.take_config_to_save()

    def todo_update_state(self) -> None:
        """Before-sleep duty ``cluster_update_state`` (frtrio/core/beforesleep.py)."""
        st = self.state
        if st.todo_update_state:
            st.todo_update_state = False
            self.update_state()

    # --- hooks used by the bus core (gossip.py) ----------------------------------

    def to_bus(self, *effects) -> None:
        """Bus effects for the bus shell (nothing when there is no bus)."""
        if self.bus_core is not None:
            self.bus_effects.extend(effects)

    def take_bus_effects(self) -> list:
        eff = self.bus_effects[:]
        self.bus_effects.clear()
        return eff

    def manual_failover_paused(self) -> bool:
        return self.mf_end != 0 and self.server.now_ms < self.mf_end

    def mf_slave_is(self, n) -> bool:
        return self.mf_slave is n and self.manual_failover_paused()

    def manual_failover_requested_by(self, replica, now: int) -> None:
        """MFSTART from one of my replicas (master side of CLUSTER FAILOVER):
        as Redis, pause my clients' writes for 2 x CLUSTER_MF_TIMEOUT so my
        offset freezes, record the request (my packets carry PAUSED while it
        lasts) and ping the replica (the election is the replica's job)."""
        self.reset_master_manual_failover()
        if self.migrations.cancel_all("manual failover") and srv_has_feed(self.server):
            # the cancel's writes (trim, task mirror) go into the stream now,
            # so the offset my reply announces for the failover includes them
            self.server.repl.feed(self.server.propagated)
        self.mf_slave = replica
        self.mf_end = now + 5000
        srv = self.server
        srv.pause_clients(now + 2 * 5000, False, "failover")
        self.mf_pause_end = now + 2 * 5000
        self.emit("cluster.manual_failover", outcome="mfstart_received", node=replica.id)

    def reset_master_manual_failover(self) -> None:
        """resetManualFailover on the master side: the failover's pause ends
        (its own pause purpose: a CLIENT PAUSE is left alone, as in Redis)."""
        if self.mf_slave is None:
            return
        srv = self.server
        if self.mf_pause_end:
            srv.unpause_clients("failover")
            srv.effects.append(PauseChanged())
        self.mf_slave = None
        self.mf_end = 0
        self.mf_pause_end = 0

    def became_replica(self, master) -> None:
        srv = self.server
        self.migrations.cancel_all("switching to replica")
        self.reset_master_manual_failover()
        if hasattr(srv, "start_replication"):
            srv.start_replication(master)

    def delete_keys_in_slot(self, slot: int) -> int:
        """Drop every key of a slot this node lost to a newer config."""
        db = self.server.dbs[0]
        keys = list(db.slot_keys.get(slot, ()))
        for k in keys:
            db.delete(k)
            self.server.propagate(0, [b"DEL", k])
        self.emit("cluster.dirty_slot_keys_deleted", slot=slot, count=len(keys))
        return len(keys)

    def my_repl_offset(self) -> int:
        srv = self.server
        return srv.master_repl_offset() if hasattr(srv, "master_repl_offset") else 0

    def cron(self) -> None:
        """Node-local part of clusterCron: expire handshakes and blacklist
        entries, refresh the state, release blocked clients."""
        srv = self.server
        st = self.state
        now = srv.now_ms
        ttl = max(self.node_timeout(), 1000)
        for n in list(st.nodes.values()) if self.bus_core is None else ():
            if n.has("handshake") and now - n.ctime > ttl:
                st.delete_node(n)
                self.emit("cluster.membership_changed", outcome="handshake_timeout", node=n.id)
        secs = now // 1000
        for nid in [k for k, t in st.blacklist.items() if t < secs]:
            del st.blacklist[nid]
        if self.mf_slave is not None and now > self.mf_end:
            # manualFailoverCheckTimeout, master side
            self.emit("cluster.manual_failover", outcome="timed_out")
            self.reset_master_manual_failover()
        self.migrations.cron()
        self.update_state()
        if srv.blocking.waiters:
            self.release_blocked_clients()

    def quiet_until(self, now: int) -> float | None:
        """The earliest unix ms (``math.inf``: none) at which clusterCron (this :meth:`cron` and
        the bus core's) could have work, for a node whose cron sleeps
        through empty ticks; None: every tick may have work (the state is
        not ok or an update is pending, a manual failover or a slot
        migration is under way, or the bus core says so)."""
        st = self.state
        if (not st.state_ok or st.todo_update_state or self.mf_slave is not None
                or self.migrations.tasks or self.migrations.trim_active or self.bus_core is None):
            return None
        due = self.bus_core.quiet_until(now)
        if due is None:
            return None
        if st.blacklist:  # (an entry goes in the first tick of the second after its expiry)
            due = min(due, (min(st.blacklist.values()) + 1) * 1000)
        return due

    # --- helpers for the CLUSTER command ------------------------------------------

    def myself(self) -> ClusterNode:
        return self.state.myself

    def keys_in_slot(self, slot: int) -> int:
        return self.server.dbs[0].count_keys_in_slot(slot)

    def link_count(self) -> int:
        """INFO ``cluster_connections`` as Redis 7.0 counts it
        (getClusterConnectionsCount): two per known node other than myself,
        handshake nodes included, whatever links are actually up."""
        return (len(self.state.nodes) - 1) * 2


def srv_has_feed(srv) -> bool:
    return getattr(srv, "repl", None) is not None and bool(srv.propagated)


def _is_write(srv, argv) -> bool:
    cmd = srv.commands.get(argv[0].lower())
    return cmd is not None and cmd.is_write


__all__ = ["ClusterCore", "StartupError", "CLUSTER_SLOTS"]
