"""The node's replication state (pure): its role, its attached replicas
(master side) and its link to a master (replica side), plus what ROLE,
INFO replication and WAIT read. The Trio shells
(``frtrio/runtime/replication.py``) move the bytes and update it.
"""

from __future__ import annotations

from frtrio.core.client import F
from frtrio.replication import handshake as hs
from frtrio.replication.state import GETACK, PING, ReplState

# replica states on the master, as INFO spells them
WAIT_BGSAVE = "wait_bgsave"
SEND_BULK = "send_bulk"
ONLINE = "online"

# standalone FAILOVER states (spec §6.7), as INFO's master_failover_state spells them
NO_FAILOVER = "no-failover"
WAIT_FOR_SYNC = "waiting-for-sync"
FAILOVER_IN_PROGRESS = "failover-in-progress"


class Replica:
    """One attached replica connection, on the master."""

    __slots__ = ("client", "ip", "port", "state", "ack_off", "ack_time_ms", "capa_eof",
                 "capa_psync2", "presync", "buf", "buf_bytes", "wake", "buffering",
                 "hold_until_ack", "since_ms", "functions_only")

    def __init__(self, client, ip: str, port: int, capa_eof: bool, capa_psync2: bool,
                 presync: bool, now_ms: int):
        self.client = client
        self.ip = ip
        self.port = port
        self.state = WAIT_BGSAVE
        self.ack_off = 0
        self.ack_time_ms = now_ms
        self.capa_eof = capa_eof
        self.capa_psync2 = capa_psync2
        self.presync = presync
        self.buf: list[bytes] = []  # stream bytes not yet sent
        self.buf_bytes = 0
        self.wake = None  # set by the shell: called when buf gets data
        self.buffering = False  # True once its stream position is fixed
        # after a diskless (EOF-marked) payload the stream waits for the
        # replica's first ACK (it finds the mark in the last bytes it read)
        self.hold_until_ack = False
        self.since_ms = now_ms  # when it asked for the sync
        self.functions_only = False  # REPLCONF rdb-filter-only functions: no keys

    def push(self, data: bytes) -> None:
        if self.buffering and data:
            self.buf.append(data)
            self.buf_bytes += len(data)
            if self.wake is not None:
                self.wake()

    def take(self) -> bytes:
        data = b"".join(self.buf)
        self.buf.clear()
        self.buf_bytes = 0
        return data


class Replication:
    def __init__(self, replid: str, now_ms: int):
        self.state = ReplState(replid)
        self.replicas: dict[int, Replica] = {}  # client id -> Replica
        self.no_replicas_since_ms = now_ms  # for repl-backlog-ttl
        # --- replica side ---
        self.masterhost: str | None = None
        self.masterport = 0
        self.repl_state = hs.NONE
        self.master_psync = True  # False for a pre-PSYNC master (no ACKs)
        self.master_reploff = -1  # applied offset of the live master link (-1: none)
        self.master_read_reploff = -1
        self.cached: tuple[str, int] | None = None  # (replid, reploff) for the next PSYNC
        self.down_since_s = 0
        self.last_io_ms = 0
        self.transfer_size = -1
        self.transfer_read = 0
        self.getack_wanted = False
        self.since_ping_s = 0
        self.fed = 0  # entries of Server.propagated already fed
        self.woff_pending: list = []  # clients that wrote since the last feed
        self.waiters: dict = {}  # client id -> (client, numreplicas): blocked WAITs
        self.blocking = None  # the server's BlockingRegistry (set by the server)
        self.pending_conf: dict = {}  # client id -> REPLCONF options before PSYNC
        self.master_db = 0  # the db the upstream stream has selected (replica side)
        self.good_replicas = 0  # min-replicas: online replicas within max lag
        self.too_few_good = False  # writes refused with -NOREPLICAS
        # --- standalone FAILOVER (master side) ---
        self.failover_state = NO_FAILOVER
        self.failover_end_ms = 0  # 0: no TIMEOUT given, wait for ever
        self.failover_force = False
        self.failover_target: tuple[str, int] | None = None

    # --- roles ------------------------------------------------------------

    @property
    def is_replica(self) -> bool:
        return self.masterhost is not None

    @property
    def link_up(self) -> bool:
        return self.repl_state == hs.CONNECTED

    def set_master(self, host: str, port: int, now_s: int) -> None:
        """REPLICAOF host port: a master caches itself for PSYNC."""
        was_master = self.masterhost is None
        if self.masterhost is not None and self.master_reploff >= 0:
            self.cached = (self.state.replid, self.master_reploff)
        if was_master:
            self.cached = (self.state.replid, self.state.master_repl_offset)
        self.masterhost = host
        self.masterport = port
        self.repl_state = hs.CONNECT
        self.master_reploff = self.master_read_reploff = -1
        self.down_since_s = 0
        self.last_io_ms = 0

    def unset_master(self, new_replid: str, now_ms: int) -> str:
        """REPLICAOF NO ONE (spec §5.4); returns the shiftReplicationId log.
        The time without replicas that repl-backlog-ttl measures starts now
        (as Redis's replicationUnsetMaster): a promoted replica keeps the
        backlog its own replicas, the old master first, resync from."""
        line = self.state.shift_replid(new_replid)
        self.no_replicas_since_ms = now_ms
        self.masterhost = None
        self.masterport = 0
        self.repl_state = hs.NONE
        self.cached = None
        self.master_reploff = self.master_read_reploff = -1
        self.state.slaveseldb = -1
        self.down_since_s = 0
        return line

    def link_lost(self, now_s: int, cache: bool) -> None:
        if self.master_reploff >= 0:
            self.down_since_s = now_s  # only a link that was up was "lost"
        if self.master_reploff >= 0 and cache:
            self.cached = (self.state.replid, self.master_reploff)
        elif not cache:
            self.cached = None
        self.master_reploff = self.master_read_reploff = -1
        if self.masterhost is not None:
            self.repl_state = hs.CONNECT

    def full_sync_done(self, replid: str, offset: int, backlog_size: int) -> None:
        st = self.state
        st.replid = replid
        st.clear_replid2()
        st.master_repl_offset = offset
        st.create_backlog(backlog_size)
        self.master_reploff = self.master_read_reploff = offset
        self.repl_state = hs.CONNECTED
        self.down_since_s = 0
        self.cached = None

    def partial_done(self, new_replid: str | None, backlog_size: int) -> bool:
        """+CONTINUE [new]: returns True when the id changed (sub-replicas
        must be dropped)."""
        st = self.state
        changed = False
        if new_replid is not None and new_replid != self.cached[0]:
            st.replid2 = self.cached[0]
            st.second_replid_offset = st.master_repl_offset + 1
            st.replid = new_replid
            changed = True
        if st.backlog is None:
            st.create_backlog(backlog_size)
        self.master_reploff = self.master_read_reploff = self.cached[1]
        self.repl_state = hs.CONNECTED
        self.down_since_s = 0
        self.cached = None
        return changed

    # --- master side ----------------------------------------------------------

    def attach(self, r: Replica, backlog_size: int, new_replid: str) -> None:
        if self.state.backlog is None:
            self.state.replid = new_replid
            self.state.clear_replid2()
            self.state.create_backlog(backlog_size)
        self.replicas[r.client.id] = r

    def detach(self, r: Replica, now_ms: int) -> None:
        if self.replicas.pop(r.client.id, None) is not None and not self.replicas:
            self.no_replicas_since_ms = now_ms

    def broadcast(self, data: bytes) -> None:
        """Stream bytes to every replica whose position is fixed."""
        for r in self.replicas.values():
            r.push(data)

    def wrote(self, client) -> None:
        """A client's command propagated something (its WAIT target moves)."""
        self.woff_pending.append(client)

    def propagated_cleared(self) -> None:
        self.fed = 0

    def feed(self, propagated) -> None:
        """The before-sleep duty (also run by WAIT): executed writes not fed
        yet into the stream (masters only: a replica proxies its master's
        bytes instead)."""
        new = propagated[self.fed:] if self.fed else propagated
        self.fed = len(propagated)
        if self.masterhost is None and self.state.backlog is not None:
            if new:
                self.broadcast(self.state.feed(new))
            if self.getack_wanted and self.replicas:
                self.getack_wanted = False
                self.state.append(GETACK)
                self.broadcast(GETACK)
        else:
            self.getack_wanted = False
        if self.woff_pending:
            off = self.state.master_repl_offset
            for c in self.woff_pending:
                c.woff = off
            self.woff_pending.clear()

    def cron_ping(self, period_s: int) -> None:
        """Once a second: PING every repl-ping-replica-period seconds."""
        self.since_ping_s += 1
        if self.since_ping_s >= period_s:
            self.since_ping_s = 0
            if self.masterhost is None and self.replicas and self.state.backlog is not None:
                self.state.append(PING)
                self.broadcast(PING)

    def refresh_good(self, cfg, now_ms: int) -> None:
        """min-replicas-to-write / -max-lag (spec §6.8): recomputed each cron
        second, when a replica comes or goes, and on CONFIG SET."""
        to_write = int(cfg.get("min-replicas-to-write"))
        lag = int(cfg.get("min-replicas-max-lag"))
        if not (to_write and lag):
            self.good_replicas = 0
            self.too_few_good = False
            return
        self.good_replicas = sum(1 for r in self.replicas.values()
                                 if r.state == ONLINE and now_ms - r.ack_time_ms <= lag * 1000)
        self.too_few_good = self.masterhost is None and self.good_replicas < to_write

    def timed_out(self, cfg, now_ms: int) -> list:
        """Online replicas silent (no ACK, no newline) for repl-timeout."""
        limit = int(cfg.get("repl-timeout")) * 1000
        return [r for r in self.replicas.values()
                if r.state == ONLINE and not r.presync and now_ms - r.ack_time_ms > limit]

    def backlog_expired(self, cfg, now_ms: int) -> bool:
        """A master without replicas for repl-backlog-ttl frees its backlog."""
        ttl = int(cfg.get("repl-backlog-ttl"))
        return (self.masterhost is None and not self.replicas and ttl > 0
                and self.state.backlog is not None
                and now_ms - self.no_replicas_since_ms > ttl * 1000)

    def free_backlog_new_id(self, new_replid: str) -> None:
        self.state.free_backlog()
        self.state.replid = new_replid
        self.state.clear_replid2()

    def on_ack(self, r: Replica, off: int, now_ms: int) -> None:
        if off > r.ack_off:
            r.ack_off = off
        r.ack_time_ms = now_ms
        if r.hold_until_ack:
            r.hold_until_ack = False
            if r.wake is not None:
                r.wake()
        if self.waiters:
            self.check_waiters()

    def wait_block(self, c, n: int) -> None:
        """A WAIT client blocks: GETACK goes out before the loop sleeps."""
        self.waiters[c.id] = (c, n)
        self.getack_wanted = True

    def check_waiters(self) -> None:
        """Release WAITs with enough ACKs; keep the others' timeout reply
        current."""
        for cid, (c, n) in list(self.waiters.items()):
            b = c.blocked
            if b is None or c.flags & F.CLOSE_ASAP:
                del self.waiters[cid]
                continue
            k = self.acked(c.woff)
            b.on_timeout = k
            if k >= n:
                del self.waiters[cid]
                self.blocking.unblock(c, k)

    def acked(self, woff: int) -> int:
        return sum(1 for r in self.replicas.values() if r.state == ONLINE and r.ack_off >= woff)

    # --- standalone FAILOVER (spec §6.7) ----------------------------------------

    def find_replica(self, host: str, port: int) -> Replica | None:
        """The attached replica announced as host:port (Redis's findReplica:
        the host compared without case)."""
        for r in self.replicas.values():
            if r.ip.lower() == host.lower() and r.port == port:
                return r
        return None

    def failover_begin(self, target: tuple[str, int] | None, end_ms: int, force: bool) -> None:
        self.failover_state = WAIT_FOR_SYNC
        self.failover_target = target
        self.failover_end_ms = end_ms
        self.failover_force = force

    def failover_clear(self) -> None:
        self.failover_state = NO_FAILOVER
        self.failover_target = None
        self.failover_end_ms = 0
        self.failover_force = False

    def failover_step(self, now_ms: int):
        """Redis's updateFailoverStatus, run on the fast replication cron
        while waiting for a replica to catch up. Returns None (keep waiting),
        ("abort", reason) or ("switch", host, port, log line): become a
        replica of host:port and send it PSYNC ... FAILOVER."""
        if self.failover_state != WAIT_FOR_SYNC:
            return None
        off = self.state.master_repl_offset
        if self.failover_end_ms and self.failover_end_ms <= now_ms:
            if self.failover_force and self.failover_target is not None:
                host, port = self.failover_target
                self.failover_state = FAILOVER_IN_PROGRESS
                return ("switch", host, port,
                        "FAILOVER to %s:%d time out exceeded, failing over." % (host, port))
            return ("abort", "Replica never caught up before timeout")
        found = None
        if self.failover_target is not None:
            found = self.find_replica(*self.failover_target)
        else:
            for r in self.replicas.values():
                if r.ack_off == off:
                    found = r
                    self.failover_target = (r.ip, r.port)
                    break
        if found is not None and found.ack_off == off:
            host, port = self.failover_target
            self.failover_state = FAILOVER_IN_PROGRESS
            return ("switch", host, port,
                    "Failover target %s:%d is synced, failing over." % (host, port))
        return None

    def failover_aborted_line(self, reason: str) -> str:
        if self.failover_target is not None:
            return "FAILOVER to %s:%d aborted: %s" % (*self.failover_target, reason)
        return "FAILOVER to any replica aborted: %s" % reason

    # --- ROLE and INFO ---------------------------------------------------------

    def role(self):
        if self.masterhost is None:
            rows = [[r.ip.encode(), b"%d" % r.port, b"%d" % r.ack_off]
                    for r in self.replicas.values() if r.state == ONLINE]
            return [b"master", self.state.master_repl_offset, rows]
        return [b"slave", self.masterhost.encode(), self.masterport,
                hs.role_state(self.repl_state).encode(),
                self.master_reploff if self.link_up else -1]

    def info(self, cfg, now_ms: int) -> list[str]:
        st = self.state
        out = []
        if self.masterhost is None:
            out.append("role:master")
            out.append("connected_slaves:%d" % len(self.replicas))
            if int(cfg.get("min-replicas-to-write")) and int(cfg.get("min-replicas-max-lag")):
                out.append("min_slaves_good_slaves:%d" % self.good_replicas)
            for i, r in enumerate(self.replicas.values()):
                lag = (now_ms - r.ack_time_ms) // 1000 if r.state == ONLINE else 0
                out.append("slave%d:ip=%s,port=%d,state=%s,offset=%d,lag=%d"
                           % (i, r.ip, r.port, r.state, r.ack_off, lag))
        else:
            out.append("role:slave")
            out.append("master_host:%s" % self.masterhost)
            out.append("master_port:%d" % self.masterport)
            up = self.link_up
            out.append("master_link_status:%s" % ("up" if up else "down"))
            live = self.master_reploff >= 0
            out.append("master_last_io_seconds_ago:%d"
                       % ((now_ms - self.last_io_ms) // 1000 if live else -1))
            out.append("master_sync_in_progress:%d" % (self.repl_state == hs.TRANSFER))
            if live:
                rd, ap = self.master_read_reploff, self.master_reploff
            elif self.cached is not None:
                rd = ap = self.cached[1]
            else:
                rd = ap = 1
            out.append("slave_read_repl_offset:%d" % rd)
            out.append("slave_repl_offset:%d" % ap)
            if self.repl_state == hs.TRANSFER:
                total = self.transfer_size
                out.append("master_sync_total_bytes:%d" % total)
                out.append("master_sync_read_bytes:%d" % self.transfer_read)
                out.append("master_sync_left_bytes:%d" % (total - self.transfer_read))
                out.append("master_sync_perc:%.2f"
                           % ((self.transfer_read * 100.0 / total) if total > 0 else 0.0))
                out.append("master_sync_last_io_seconds_ago:%d"
                           % ((now_ms - self.last_io_ms) // 1000))
            if not up:
                out.append("master_link_down_since_seconds:%d"
                           % ((now_ms // 1000 - self.down_since_s) if self.down_since_s else -1))
            out.append("slave_priority:%s" % cfg.get("replica-priority"))
            out.append("slave_read_only:%d" % (cfg.get("replica-read-only") == "yes"))
            out.append("replica_announced:%d" % (cfg.get("replica-announced") == "yes"))
            out.append("connected_slaves:%d" % len(self.replicas))
            for i, r in enumerate(self.replicas.values()):
                lag = (now_ms - r.ack_time_ms) // 1000 if r.state == ONLINE else 0
                out.append("slave%d:ip=%s,port=%d,state=%s,offset=%d,lag=%d"
                           % (i, r.ip, r.port, r.state, r.ack_off, lag))
        bl = st.backlog
        out += [
            "master_failover_state:%s" % self.failover_state,
            "master_replid:%s" % st.replid,
            "master_replid2:%s" % st.replid2,
            "master_repl_offset:%d" % st.master_repl_offset,
            "second_repl_offset:%d" % st.second_replid_offset,
            "repl_backlog_active:%d" % (bl is not None),
            "repl_backlog_size:%d" % int(cfg.get("repl-backlog-size")),
            "repl_backlog_first_byte_offset:%d" % (bl.first_byte_offset if bl else 0),
            "repl_backlog_histlen:%d" % (bl.histlen if bl else 0),
        ]
        return out
