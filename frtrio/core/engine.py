"""The command engine (pure): server state and the dispatch gate (client
state is in ``client.py``).

``Server`` holds everything a command can touch (databases, configuration,
clients, statistics) and ``Server.execute(client, argv)`` is the gate every
request passes: command lookup, arity, authentication, transaction queueing,
the cluster router, then the command itself, synchronously. Nothing here
awaits, sleeps, reads the wall clock or draws OS randomness: the runtime shell
sets ``Server.now_ms`` before each batch and passes an RNG in.

Side effects that the shell must carry out are left on the server or client
objects for it to pick up:

* ``Server.propagated``: write commands (argv lists, with their db) in
  execution order, for the AOF and the replicas (an argv of type
  ``AofOnly`` / ``ReplOnly`` goes to one of them only: a script's
  ``redis.set_repl``);
* ``Client.out``: encoded reply bytes, waiting to be sent;
* ``Client.notify``: called when bytes were added to ``out`` outside the
  client's own request (pub/sub messages, unblocked commands);
* ``Client.flags`` CLOSE_AFTER_REPLY / CLOSE_ASAP: the connection must close.
"""

from __future__ import annotations

import logging
from typing import Callable

from frtrio.core.client import F
from frtrio.commands import table as _table
from frtrio.core.obuf import OutputLimits
from frtrio.core.instmetric import InstMetrics
from frtrio.core import client_evict as _client_evict
from frtrio.protocol.reply import NO_REPLY, OK, QUEUED, ErrorReply
from frtrio.core.blocking import BlockOn  # noqa: F401  (re-exported)
from frtrio.core.client import Client
from frtrio.core.effects import AofOnly, ReplOnly, Sleep  # noqa: F401  (AofOnly, ReplOnly re-exported)
from frtrio.cluster.slots import key_slot
from frtrio.core import evict as _evict
from frtrio.core import iobufs as _iobufs
from frtrio.core.introspect import Histogram, LatencyMonitor, LazyFree, SlowLog, redact
from frtrio.core.notify import EVICTED, EXPIRED, NEW, notify, parse_flags
from frtrio.store.db import Db

# resize_client_buffers' quiet client: a reply buffer this small cannot shrink;
# a query buffer's spare room is freed after more than IDLE_FREE_S idle seconds
_QUIET_RB = 2 * _iobufs.REPLY_MIN
_QUIET_IDLE_MS = (_iobufs.IDLE_FREE_S + 1) * 1000

_log = logging.getLogger("frtrio")


# The log line of every caught bug starts with this; the test suite fails a
# run whose servers logged one (tests/support.py, tests/conftest.py).
INTERNAL_ERROR_MARK = "INTERNAL ERROR (a bug, caught; please report it):"

BGSAVE_ERROR = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if RDB snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the Redis logs for details about the "
    "RDB error."
)

# Every caught bug in this process, over all Servers (the test suite's
# in-process engines are checked against it after each test).
internal_errors_total = 0

# the slow log threshold when it is off (slowlog-log-slower-than < 0)
_NEVER = 1 << 62


def _no_clock() -> int:
    return 0


def _unknown_command_error(argv: list[bytes]) -> str:
    args = ""
    i = 1
    while i < len(argv) and len(args) < 128:
        a = argv[i].split(b"\0", 1)[0].decode("latin-1")[: 128 - len(args)]  # %.*s
        args += "'%s' " % a
        i += 1
    name = argv[0].split(b"\0", 1)[0].decode("latin-1")[:128]
    return "ERR unknown command '%s', with args beginning with: %s" % (name, args)


PUBSUB_ALLOWED = frozenset(
    [b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe", b"psubscribe",
     b"punsubscribe", b"ping", b"quit", b"reset"]
)

# in MULTI over maxmemory, every command is refused but these (processCommand)
_OOM_IN_MULTI_OK = frozenset([b"exec", b"discard", b"quit", b"reset"])

_TX_CONTROL = frozenset([b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"])


class HostInfo:
    """Facts about the host process for INFO; the runtime sets real ones."""

    os = "Linux"
    pid = 0
    executable = ""

    def rss(self) -> int:
        return 0

    def used_memory(self) -> int:
        return 0

    def total_memory(self) -> int:
        return 0

    def cpu(self) -> tuple[float, float]:
        return (0.0, 0.0)


class Server:
    """All server-wide state; one per node."""

    def __init__(self, config, rng, ndb: int | None = None):
        from frtrio.config import Config

        self.config: Config = config
        self.rng = rng
        self.now_ms = 0
        self.start_ms = 0
        n = ndb if ndb is not None else int(config.get("databases"))
        self.cluster = None  # set by cluster mode
        self.dbs = [Db(i) for i in range(n)]
        for db in self.dbs:
            db.on_delete = self._key_deleted
            # (on_overwrite: set while a client waits on a key, overwrites_signalled)
            db.on_expire = self._key_expired
        self.clients: dict[int, Client] = {}
        self.next_client_id = 1
        self.dirty = 0
        self.propagated: list = []  # (dbid, argv) of executed writes
        # set by a command that propagates only what it adds itself
        # (Redis's preventCommandPropagation: XREADGROUP, XCLAIM...)
        self.prevent_propagation = False
        self.propagate_hooks: list[Callable] = []
        self.watched_keys: dict = {}  # (dbid, key) -> {client_id: client}
        self.stats = {
            "total_connections_received": 0,
            "total_commands_processed": 0,
            "rejected_connections": 0,
            "expired_keys": 0,
            "evicted_keys": 0,
            "keyspace_hits": 0,
            "keyspace_misses": 0,
            "total_net_input_bytes": 0,
            "total_net_output_bytes": 0,
            "total_error_replies": 0,
            "unexpected_error_replies": 0,
            "frtrio_internal_errors": 0,
            "pubsub_channels": 0,
            "expired_stale_perc": 0,
        }
        # the command table, per server: rename-command renames (or removes)
        # commands here, never in the process-wide table (the simulator runs
        # many nodes in one process)
        self.commands = _table.TABLE
        renames = getattr(config, "renames", None)
        if renames:
            self.commands = dict(_table.TABLE)
            for old, new in renames:
                cmd = self.commands.pop(old.lower().encode("latin-1", "replace"), None)
                if cmd is not None and new:
                    self.commands[new.lower().encode("latin-1", "replace")] = cmd
        self.cmdstats: dict[str, list] = {}  # fullname -> [calls, usec, rejected, failed]
        self.errorstats: dict[str, int] = {}
        self.lastsave_ms = 0
        # shutdown (frtrio/core/shutdown.py): a signal's pending request, the
        # flags of the shutdown under way, its deadline while waiting for
        # replicas (0: not initiated), the clients blocked in SHUTDOWN
        self.shutdown_asap = False
        self.last_sig = ""  # "SIGTERM" | "SIGINT" while shutdown_asap
        self.shutdown_flags = 0
        self.shutdown_deadline_ms = 0
        self.shutdown_blocked: dict = {}  # client id -> (client, its BlockOn)
        self.shutdown_exiting = False  # set once the shutdown is finished: the process exits
        self.active_expire_enabled = True
        from frtrio.core.blocking import BlockingRegistry

        self.blocking = BlockingRegistry(self)
        self.host = HostInfo()
        self.unix_us = lambda: self.now_ms * 1000
        from frtrio.core.pubsub import PubSub

        self.pubsub = PubSub(self)
        self.events = None
        self.policy = None  # strict / hardened (frtrio/core/policy.py), set by the node
        # persistence counters and status (kept by persist/aof.py)
        self.aof_rewrites_total = 0
        self.rdb_saves = 0
        self.rdb_last_save_ok = True
        self.rdb_last_try_ms = 0
        # users, their permissions and the ACL LOG (frtrio/core/acl.py)
        from frtrio.core.acl import Acl

        self.acl = Acl(config.get("acl-pubsub-default") == "allchannels")
        self.acl.set_default_password(config.get("requirepass") or None)
        self._load_startup_users()
        config.listeners.append(self._acl_config_changed)
        config.acl_user_lines = self._acl_user_lines  # CONFIG REWRITE's user lines
        self.run_id = "".join("%x" % rng.randrange(16) for _ in range(40))
        self.listening = []  # (host, port) the shell listens on
        # what commands ask the client's shell to do after them (frtrio/core/effects.py)
        self.effects: list = []
        self.ready_keys: dict = {}  # (dbid, key) -> None, for blocked clients
        self.postponed_clients = 0  # held by CLIENT PAUSE (the shell counts them)
        self.loading = False
        self.async_loading = False  # a swapdb full sync arrives; the old data is served
        # progress of a load that serves events meanwhile (INFO persistence)
        self.loading_start_s = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self.scan_snapshots: dict = {}  # SSCAN/HSCAN snapshots (commands/sets.py)
        self.aof = None  # the AOF writer, when appendonly is on
        # client-output-buffer-limit (frtrio/core/obuf.py)
        self.obuf = OutputLimits(config)
        self.cev = None  # ClientEviction while maxmemory-clients is on (core/client_evict.py)
        self.client_peaks = _client_evict.PeakTracker()  # INFO client_recent_max_*
        # DEBUG REPLYBUFFER's settings (frtrio's modelled reply buffer is a
        # fixed 16 KB: they are kept, not acted on)
        self.reply_buffer_peak_reset_ms = 5000
        self.reply_buffer_resizing = True
        self._buffers_queue: list = []  # clients the buffer cron visits next
        self.to_free: list = []  # clients closed by the engine, freed before sleep
        config.listeners.append(self.obuf.on_config)
        # Redis's writeCommandsDeniedByDiskError: the -MISCONF text while
        # writes are refused (refresh_disk_error), from the two sources below
        self.disk_error: str | None = None
        self.aof_write_error: str | None = None  # strerror of the failed AOF write
        config.listeners.append(self._disk_config_changed)
        config.listeners.append(self._repl_config_changed)
        # maxmemory: over it, keys are evicted by the policy before each
        # command (frtrio/core/evict.py); when nothing can be evicted,
        # commands that may grow memory are refused, and a script knows
        # whether the node was out of memory when it started (Redis's
        # pre_command_oom_state)
        self.maxmemory = config.get_int("maxmemory")
        self.oom_at_start = False
        self.prev_err_count = 0  # total_error_replies when the last command ended
        self.evict_policy = 0  # evict.POLICIES flags of maxmemory-policy
        self.evict_pool = _evict.EvictionPool()
        self.evict_next_db = 0  # the random policies' round-robin db
        self.evict_running = False  # the cron goes on evicting (startEvictionTimeProc)
        self.clients_mem = 0  # clients' buffers: the sum of their mem_counted (the cron's)
        self.lfu_log_factor = config.get_int("lfu-log-factor")
        self.lfu_decay_time = config.get_int("lfu-decay-time")
        self._stamp_sec = -1  # the second Db.stamp was computed for
        self._maxmemory_config_changed("maxmemory-policy", "")
        config.listeners.append(self._maxmemory_config_changed)
        config.listeners.append(self._client_eviction_config)
        self._client_eviction_config("maxmemory-clients", "")
        # notify-keyspace-events as a bit mask (frtrio/core/notify.py)
        self.notify_flags = 0
        self._notify_config_changed("notify-keyspace-events", "")
        config.listeners.append(self._notify_config_changed)
        # (dbid, key) -> id of the client whose MIGRATE has that key in flight
        self.migrate_inflight: dict = {}
        # CLIENT PAUSE: until when (unix ms; 0 = none), and whether every
        # command waits or only those that may write (pause_holds)
        self.pause_end_ms = 0
        self.pause_all = False
        # each purpose's own pause (Redis's client_pause_per_purpose):
        # "client" (CLIENT PAUSE), "failover" (standalone FAILOVER) ->
        # (end ms, ALL?); pause_end_ms / pause_all are their sum
        self.pauses: dict[str, tuple[int, bool]] = {}
        # Lua scripting (frtrio/scripting), made on first use; the node shell
        # sets script_can_suspend: it resumes scripts suspended for BUSY
        self.scripting = None
        self.script_can_suspend = False
        # replication (frtrio/replication/): role, ids, offsets, replicas
        import hashlib

        from frtrio.replication.core import Replication

        # (derived from run_id: no extra draws from the seeded RNG)
        self.repl = Replication(hashlib.sha1(b"replid:" + self.run_id.encode()).hexdigest(), 0)
        self.repl.blocking = self.blocking
        self.repl.refresh_good(config, 0)
        self.snapshots: list = []  # full-sync snapshots being produced
        self.expire_props = 0  # deletions of expired keys propagated (DEL/UNLINK)
        self.in_master_cmd = False  # running a command from our master's stream
        # a writable replica: a client's write command is running (expired
        # keys it touches are deleted), and the keys such writes gave a TTL
        # (db id -> keys), which the replica expires itself (Redis's
        # slaveKeysWithExpire / expireSlaveKeys)
        self.rdb_last_load_keys_loaded = 0  # INFO persistence, set by each RDB load
        self.rdb_last_load_keys_expired = 0
        self.monitors: list = []  # MONITOR clients, fed by call()
        self.cron_paused = False  # DEBUG PAUSE-CRON
        # INFO's instantaneous_* rates (frtrio/core/instmetric.py), sampled
        # by the server cron every 100 ms; cronloops counts its ticks
        self.inst = InstMetrics(0)
        self.cronloops = 0
        self.aof_flush_sleep_us = 0  # DEBUG AOF-FLUSH-SLEEP
        from frtrio.core.tracking import Tracking

        self.tracking = Tracking(self.clients)  # CLIENT TRACKING (client-side caching)
        self.replica_local_write = False
        self.replica_keys_with_expire: dict[int, set] = {}
        # introspection (frtrio/core/introspect.py): the monotonic clock that
        # times commands (ns; the node sets the Env's), the slow log, the
        # latency monitor, per-command histograms, and the thresholds cached
        # from the config so that the command path only compares numbers
        self.clock_ns: Callable[[], int] = _no_clock
        self.slowlog = SlowLog()
        self.latency = LatencyMonitor()
        self.histograms: dict[str, Histogram] = {}
        self.slowlog_us = _NEVER
        self.latency_ms = 0
        self.latency_us = _NEVER  # latency_ms in usec (_NEVER: monitor off)
        self.timing_floor_us = _NEVER  # the lower of the two: below it, nothing to log
        self.latency_tracking = True
        self.latency_percentiles = [50.0, 99.0, 99.9]
        # commands whose time runs on in an effect the shell carries out
        # (DEBUG SLEEP, MIGRATE, a suspended script): recorded when it ends
        self.pending_timing: list = []
        self.lazyfree = LazyFree()
        for name in ("slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
                     "latency-tracking", "latency-tracking-info-percentiles"):
            self._introspect_config_changed(name, "")
        config.listeners.append(self._introspect_config_changed)

    # --- introspection ---------------------------------------------------------

    def _introspect_config_changed(self, name: str, value: str) -> None:
        cfg = self.config
        if name == "slowlog-log-slower-than" or name == "slowlog-max-len":
            v = cfg.get_int("slowlog-log-slower-than")
            self.slowlog_us = v if v >= 0 else _NEVER
            self.slowlog.max_len = cfg.get_int("slowlog-max-len")
            if v >= 0:
                # Redis trims after every command while the log is on: the
                # CONFIG SET itself trims it
                self.slowlog.trim()
            self.timing_floor_us = min(self.slowlog_us, self.latency_us)
        elif name == "latency-monitor-threshold":
            self.latency_ms = cfg.get_int("latency-monitor-threshold")
            self.latency_us = self.latency_ms * 1000 if self.latency_ms else _NEVER
            self.timing_floor_us = min(self.slowlog_us, self.latency_us)
        elif name == "latency-tracking":
            self.latency_tracking = cfg.get("latency-tracking") == "yes"
        elif name == "latency-tracking-info-percentiles":
            self.latency_percentiles = [float(x) for x in
                                        cfg.get("latency-tracking-info-percentiles").split()]

    def latency_sample(self, event: str, ms: int) -> None:
        """Redis's latencyAddSampleIfNeeded."""
        if self.latency_ms and ms >= self.latency_ms:
            self.latency.add(event, ms, self.unix_us() // 1000000)

    def _record_timing(self, c: Client, cmd, argv, us: int, blocked,
                       histogram: bool = True) -> None:
        """What call() does with a command's duration besides commandstats:
        the latency event, the slow log, the histogram (the command path
        does the histogram itself and comes here only past a threshold)."""
        ms = us // 1000
        if self.latency_ms and ms >= self.latency_ms:
            self.latency.add("fast-command" if "fast" in cmd.flags else "command", ms,
                             self.unix_us() // 1000000)
        if blocked is not None:
            blocked.timing = (cmd, argv, us)  # (recorded when it is served)
            return
        if us >= self.slowlog_us and "skip_slowlog" not in cmd.flags:
            self.slowlog.push(cmd.fullname, argv, us, self.unix_us() // 1000000,
                              c.addr or "?:0", c.name)  # (a script: no address)
        if histogram and self.latency_tracking:
            h = self.histograms.get(cmd.fullname)
            if h is None:
                h = self.histograms[cmd.fullname] = Histogram()
            h[us] = h.get(us, 0) + 1

    def note_unblocked(self, c: Client, b) -> None:
        """A blocked command answered (Redis's updateStatsOnUnblock): its
        slow log entry and histogram sample, timed by its first run."""
        t = getattr(b, "timing", None)
        if t is None:
            return
        cmd, argv, us = t
        b.timing = None
        self.cmd_stat(cmd.fullname)[1] += us
        if self.latency_tracking:
            h = self.histograms.get(cmd.fullname)
            if h is None:
                h = self.histograms[cmd.fullname] = Histogram()
            h.record_us(us)
        if us >= self.slowlog_us and "skip_slowlog" not in cmd.flags:
            self.slowlog.push(cmd.fullname, argv, us, self.unix_us() // 1000000,
                              c.addr or "?:0", c.name)  # (a script: no address)

    def finish_pending_timing(self) -> None:
        """The shell carried out the effects of the commands in
        ``pending_timing``: their time is now known."""
        pend = self.pending_timing
        self.pending_timing = []
        now = self.clock_ns()
        for c, cmd, argv, t0 in pend:
            us = (now - t0) // 1000
            self.cmd_stat(cmd.fullname)[1] += us
            self._record_timing(c, cmd, argv, us, None)

    # --- replication hooks ----------------------------------------------------

    def start_snapshot(self, snap) -> None:
        """Copy-on-write for a snapshot being produced (replication/snapshot.py)."""
        self.snapshots.append(snap)
        for db in self.dbs:
            db.cow = self._cow

    def end_snapshot(self, snap) -> None:
        if snap in self.snapshots:
            self.snapshots.remove(snap)
        if not self.snapshots:
            for db in self.dbs:
                db.cow = None

    def _key_expired(self, db, key: bytes) -> int:
        """A key was found expired (Db.on_expire): a master deletes it and
        propagates DEL (UNLINK with lazyfree-lazy-expire); a replica keeps
        it until its master's DEL arrives, alive for the master's commands.
        Nothing expires while a dataset loads (Redis's keyIsExpired): a
        command of the AOF that touches a key its own PEXPIREAT put in the
        past works on the whole key, which expires once loading is over."""
        if self.loading:
            return 2
        if self.repl.masterhost is not None:
            if self.in_master_cmd:
                return 2
            if not self.replica_local_write:
                return 1
            # a write on a writable replica deletes the expired key first
            # (Redis's lookupKeyWrite); a replica streams nothing onwards,
            # the DEL only reaches its AOF
        elif self.paused_now():
            # clients are paused: the dataset stays as it is, the key only
            # reads as missing (Redis's expireIfNeeded during a pause)
            return 1
        if self.tracking.tracking_clients:
            self.tracking.expiring = key  # deleted next, by no client
        self.stats["expired_keys"] += 1  # (lazy and active expiry alike, as Redis counts)
        self.expire_props += 1
        lazy = self.config.get("lazyfree-lazy-expire") == "yes"
        self.propagated.append((db.id, [b"UNLINK" if lazy else b"DEL", key]))
        if self.notify_flags:
            notify(self, EXPIRED, b"expired", key, db.id)
        return 0

    def _replica_write(self, on: bool) -> None:
        self.replica_local_write = on
        hook = self._remember_replica_expire if on else None
        for db in self.dbs:
            db.on_set_expire = hook

    def _remember_replica_expire(self, db, key: bytes) -> None:
        self.replica_keys_with_expire.setdefault(db.id, set()).add(key)

    def expire_replica_keys(self) -> int:
        """A writable replica's own keys with a TTL are deleted when it
        passes (the master's keys wait for the master's DEL). Keys that lost
        their TTL or are gone are forgotten. Returns how many expired."""
        n = 0
        for dbid, keys in list(self.replica_keys_with_expire.items()):
            db = self.dbs[dbid] if dbid < len(self.dbs) else None
            for k in list(keys):
                t = db.expires.get(k) if db is not None else None
                if t is None:
                    keys.discard(k)
                elif t <= self.now_ms:
                    keys.discard(k)
                    db.delete(k)
                    self.expire_props += 1
                    self.propagated.append((dbid, [b"DEL", k]))
                    n += 1
            if not keys:
                del self.replica_keys_with_expire[dbid]
        return n

    def master_repl_offset(self) -> int:
        """The replication offset the cluster bus header carries: a master's
        master_repl_offset; a replica's processed offset (live master, else
        cached master, else 0)."""
        repl = self.repl
        if repl.masterhost is None:
            return repl.state.master_repl_offset
        if self.loading:
            return 0  # Redis: no master client and no cached master while it loads
        if repl.master_reploff >= 0:
            return repl.master_reploff
        return repl.cached[1] if repl.cached is not None else 0

    def start_replication(self, node) -> None:
        """CLUSTER REPLICATE (and SETSLOT taking my last slot): the role
        changes now; the node's shell connects on its next cluster tick
        (ReplicationShell.reconcile_cluster)."""
        from frtrio.commands.replication import set_master

        set_master(self, node.ip, node.port, effect=False)

    def _repl_config_changed(self, name: str, value: str) -> None:
        if name == "repl-backlog-size" and self.repl.state.backlog is not None:
            self.repl.state.backlog.resize(int(self.config.get("repl-backlog-size")))
        elif name in ("min-replicas-to-write", "min-replicas-max-lag"):
            self.repl.refresh_good(self.config, self.now_ms)

    def _cow(self, key: bytes, value) -> None:
        for s in self.snapshots:
            s.preserve(key, value)

    # --- configuration shortcuts --------------------------------------------

    def requires_auth(self) -> bool:
        """Redis's authRequired for a client that did not authenticate: the
        default user has a password, or is off."""
        return not self.acl.default_open()

    # --- ACL -------------------------------------------------------------------

    def _acl_config_changed(self, name: str, value: str) -> None:
        if name == "requirepass":
            self.acl.set_default_password(self.config.get("requirepass") or None)
        elif name == "acl-pubsub-default":
            self.acl.pubsub_all = self.config.get("acl-pubsub-default") == "allchannels"

    def acl_denied(self, c: Client, cmd, argv: list[bytes], context: int) -> tuple[int, int]:
        """Check ``cmd`` for the client's user; a refusal is logged in the
        ACL LOG and returned as (kind, position), else (OK, 0)."""
        r, pos = c.auser.check_command(cmd, argv)
        if r:
            self.acl_log(c, r, context, pos, argv, cmd)
        return r, pos

    def acl_log(self, c: Client, reason: int, context: int, pos: int, argv, cmd=None,
                username: bytes | None = None, obj: bytes | None = None) -> None:
        """addACLLogEntry."""
        from frtrio.commands.connection import client_info_line
        from frtrio.core import acl as _acl

        if obj is None:
            if reason == _acl.DENIED_CMD:
                obj = cmd.name_bytes
            elif reason in (_acl.DENIED_KEY, _acl.DENIED_CHANNEL):
                obj = argv[pos]
            elif reason == _acl.DENIED_AUTH:
                obj = argv[0]
            else:
                obj = b""
        real = c
        if getattr(c, "in_script", False) and self.scripting is not None \
                and self.scripting.ctx is not None:
            real = self.scripting.ctx.caller
        e = _acl.LogEntry(reason, context, obj, username if username is not None else c.user,
                          self.unix_us() // 1000, client_info_line(real).encode("latin-1"))
        self.acl.log.add(e, self.config.get_int("acllog-max-len"))

    def _load_startup_users(self) -> None:
        """ACLLoadUsersAtStartup: the config file's user directives (the
        default user is reset first when it is declared; validated by the
        command line, cli.py). The node's shell loads the aclfile."""
        from frtrio.core import acl as _acl
        from frtrio.config import to_bytes

        acl = self.acl
        for args in getattr(self.config, "users", ()):
            name = to_bytes(args[0])
            u = acl.get_user(name)
            if u is None:
                u = acl.users[name] = _acl.User(name, acl.pubsub_all)
            else:
                u.apply(b"reset", acl.pubsub_all)
            merged = _acl.merge_selector_args([to_bytes(a) for a in args[1:]])[0] or []
            for op in merged:
                try:
                    u.apply(op, acl.pubsub_all)
                except _acl.RuleError:
                    pass

    def _acl_user_lines(self) -> list[str] | None:
        """rewriteConfigUserOption: no lines with an aclfile, else every user."""
        if self.config.get("aclfile"):
            return None
        return ["user " + (u.name + b" " + u.describe()).decode("latin-1")
                for u in self.acl.sorted_users()]

    def set_client_user(self, c: Client, user) -> None:
        c.auser = user
        c.user = user.name

    # --- clients ------------------------------------------------------------

    def new_client(self, addr: str = "", laddr: str = "") -> Client:
        cid = self.next_client_id
        self.next_client_id += 1
        c = Client(self, cid, addr, laddr)
        self.clients[cid] = c
        self.stats["total_connections_received"] += 1
        return c

    def free_client(self, c: Client) -> None:
        """Forget everything the client left behind (watches, blocks, subs)."""
        if c.id not in self.clients:
            return
        del self.clients[c.id]
        if c.tracking is not None:
            self.tracking.disable(c)
        if c.flags & F.MONITOR and c in self.monitors:
            self.monitors.remove(c)
        self.unwatch_all(c)
        if c.blocked is not None and self.blocking is not None:
            self.blocking.unblock(c, None)
        if self.pubsub is not None:
            self.pubsub.client_gone(c)
        c.flags |= F.CLOSE_ASAP
        if self.cev is not None:
            self.cev.remove(c)
        if c.mem_counted:  # (its buffers are freed now)
            self.clients_mem -= c.mem_counted
            c.mem_counted = 0

    def free_closed(self) -> None:
        """Before-sleep duty free_clients (Redis's freeClientsInAsyncFreeQueue):
        the clients the engine closed (CLIENT KILL, an output limit) are
        forgotten now, before the next command runs, though their shells
        close the connections a moment later."""
        if self.to_free:
            todo, self.to_free = self.to_free, []
            for c in todo:
                self.free_client(c)

    def refresh_disk_error(self) -> None:
        """Whether writes are refused for a persistence error, and with which
        message: a failed background save while stop-writes-on-bgsave-error
        is on and save points exist, else a failed AOF write."""
        cfg = self.config
        if (not self.rdb_last_save_ok and cfg.get("stop-writes-on-bgsave-error") == "yes"
                and cfg.save_params()):
            self.disk_error = BGSAVE_ERROR
        elif self.aof_write_error is not None:
            self.disk_error = "MISCONF Errors writing to the AOF file: " + self.aof_write_error
        else:
            self.disk_error = None

    def _notify_config_changed(self, name: str, value: str) -> None:
        if name == "notify-keyspace-events":
            self.notify_flags = parse_flags(self.config.get(name))
            if getattr(self.config, "keyspace_events_new", False):
                self.notify_flags |= NEW
            hook = self._key_created if self.notify_flags & NEW else None
            for db in self.dbs:
                db.on_new = hook

    def _key_created(self, db, key: bytes) -> None:
        notify(self, NEW, b"new", key, db.id)

    def _maxmemory_config_changed(self, name: str, value: str) -> None:
        if name == "maxmemory":
            self.maxmemory = self.config.get_int("maxmemory")
            if self.maxmemory:
                self.evict_running = True  # Redis's updateMaxmemory: evict soon
        elif name == "maxmemory-policy":
            self.evict_policy = _evict.policy_flags(self.config.get("maxmemory-policy"))
            self._stamp_sec = -1
            self.refresh_stamps()
        elif name == "lfu-log-factor":
            self.lfu_log_factor = self.config.get_int(name)
        elif name == "lfu-decay-time":
            self.lfu_decay_time = self.config.get_int(name)

    # --- per-key access data and eviction (frtrio/core/evict.py) ---------------

    def refresh_stamps(self) -> None:
        """Give every Db the access stamp of the current second (called per
        command: a compare unless the second changed)."""
        now = self.now_ms
        sec = now // 1000
        if sec == self._stamp_sec:
            return
        self._stamp_sec = sec
        stamp = _evict.lru_clock(now)
        if self.evict_policy & _evict.F_LFU:
            new, lfu = _evict.lfu_init(_evict.lfu_minutes(now)), self._lfu_access
        else:
            new, lfu = stamp, None
        for db in self.dbs:
            db.stamp = stamp
            db.new_stamp = new
            db.lfu = lfu

    def _lfu_access(self, db: Db, key: bytes) -> None:
        """An access under an LFU policy (Redis's updateLFU)."""
        d = db.slot_keys[key_slot(key)]
        d[key] = _evict.lfu_touch(d.get(key), _evict.lfu_minutes(self.now_ms),
                                  self.lfu_log_factor, self.lfu_decay_time, self.rng.random())

    def used_memory(self) -> int:
        """INFO's used_memory: the accounted memory (frtrio/core/evict.py):
        the dataset, plus the normal and pub/sub clients' buffers as the
        cron last summed them, plus the replication stream replicas have not
        taken yet."""
        return (_evict.BASE_MEMORY + _evict.dataset_memory(self.dbs) + self.clients_mem
                + self.replication_buffer())

    def replication_buffer(self) -> int:
        """The stream the slowest replica has not taken yet: Redis's replicas
        share one buffer, and what it holds beyond the backlog is in
        used_memory but not counted for eviction (mem_not_counted_for_evict:
        a stalled replica never makes keys go)."""
        reps = self.repl.replicas
        if not reps:
            return 0
        return max(r.buf_bytes for r in reps.values())

    def replica_clients_memory(self) -> int:
        """INFO's mem_clients_slaves: each replica's unsent stream and its
        connection's buffers."""
        return sum(r.buf_bytes + _client_evict.client_memory(r.client)
                   for r in self.repl.replicas.values())

    def counted_memory(self) -> int:
        """The memory the maxmemory decision counts (used_memory less what
        Redis's freeMemoryGetNotCountedMemory leaves out; frtrio's accounting
        holds no replication or AOF buffers)."""
        return _evict.BASE_MEMORY + _evict.dataset_memory(self.dbs) + self.clients_mem

    @staticmethod
    def _every_100ms(hz: int) -> int:
        """Every how many server cron ticks 100 ms pass (Redis's
        run_with_period(100): every tick at hz 10 or less)."""
        period = 1000 // hz
        return 1 if period >= 100 else 100 // period

    def cron_tick(self, hz: int) -> None:
        """Count a server cron tick; on the ticks of every 100 ms sample the
        instantaneous rates."""
        if self.cronloops % self._every_100ms(hz) == 0:
            s = self.stats
            self.inst.track(self.now_ms, (s["total_commands_processed"], s["total_net_input_bytes"],
                                          s["total_net_output_bytes"], 0, 0))
        self.cronloops += 1

    def cron_skipped(self, n: int, hz: int) -> None:
        """``n`` server cron ticks slept through (``cron_idle``: no counter
        moved): counted, and their samples are rates of 0."""
        every = self._every_100ms(hz)
        first = self.cronloops
        # (the loops first .. first+n-1 that are multiples of every)
        self.inst.skipped((first + n - 1) // every - (first - 1) // every if n > 0 else 0)
        self.cronloops += n

    def cron_idle(self) -> bool:
        """Would serverCron's per-tick work find nothing to do, now and on
        every tick until something happens (a connection, a signal)? True
        for a node with no clients at all (so no commands, blocked clients,
        client buffers or timeouts), no replication link either way, no keys
        that expire, no background job (lazy free, eviction, packing of
        small values), no pause and no shutdown pending. The node's cron
        then sleeps through the ticks up to its once-a-second duties (and,
        in cluster mode, up to what clusterCron has due)."""
        if (self.clients or self.replica_keys_with_expire or self.lazyfree.jobs
                or self.evict_running or self.tracking.table or self.loading
                or self.pause_end_ms or self.shutdown_asap or self.shutdown_deadline_ms
                or self.cron_paused):
            return False
        repl = self.repl
        if repl.masterhost is not None or repl.replicas or repl.failover_state != "no-failover":
            return False
        for db in self.dbs:
            if db.expires or db.unpacked or db.unpacked_old:
                return False
        return True

    def pack_small_values(self) -> int:
        """From the cron (once per period): small aggregates that no command
        used since the period before go back to their packed form
        (``store.db.pack``). Returns how many were packed."""
        n = 0
        for db in self.dbs:
            if db.unpacked_old or db.unpacked:
                n += db.pack_idle()
        return n

    def refresh_clients_mem(self) -> None:
        """Recount what every client's buffers add to used_memory now (the
        cron recounts numclients/hz clients a tick: ``resize_client_buffers``)."""
        n = 0
        for c in self.clients.values():
            m = 0 if c.flags & (F.MASTER | F.SLAVE) else c.out_bytes + c.qbuf + c.argv_mem
            c.mem_counted = m
            n += m
        self.clients_mem = n

    def resize_client_buffers(self, hz: int) -> None:
        """From the cron, Redis's clientsCron: numclients/hz clients a call
        (5 at least), in turn, so each is seen about once a second: resize
        their modelled query and reply buffers (frtrio/core/iobufs.py),
        close those whose output stayed over a soft limit too long, note
        their input and output memory for INFO's client_recent_max_*
        (clientsCronTrackExpansiveClients) and recount what their buffers
        add to used_memory and mem_clients_normal (``clients_mem``, as
        clientsCronTrackClientsMemUsage: each client's share is kept in
        ``c.mem_counted`` until its next visit or its end)."""
        q = self._buffers_queue
        n = len(self.clients)
        todo = max(n // hz, min(n, 5))
        clients = self.clients
        now = self.now_ms
        reset = self.reply_buffer_peak_reset_ms
        resizing = self.reply_buffer_resizing
        peaks = self.client_peaks
        peaks.tick(now)
        due = resizing and reset >= 0  # (the reply buffer's peak period runs)
        spare = _iobufs.SPARE_KEPT
        small = _iobufs.RESIZE_THRESHOLD
        while todo > 0:
            if not q:
                q = self._buffers_queue = list(clients.values())
                q.reverse()
                if not q:
                    break
            # the rotation's next clients: the queue's last ``todo``, last
            # first (one slice instead of a pop each)
            k = todo if todo < len(q) else len(q)
            batch = q[-k:]
            del q[-k:]
            todo -= k
            for c in reversed(batch):
                if clients.get(c.id) is not c:
                    continue  # gone meanwhile
                if (c.qbuf or c.out_bytes or c.argv_mem or c.argv_arr or c.qbuf_alloc
                        or c.qb_bulk >= 0 or not c.rb_peak < c.rb_size < _QUIET_RB):
                    self._visit_buffers(c, now, reset, resizing, peaks)
                    continue
                # a quiet client (most of them, in a busy cluster with many
                # connections): the visit's outcome without its arithmetic.
                # Nothing is buffered, and the reply buffer is too small to
                # shrink and was not filled: the query buffer's room is
                # freed if the client was idle for more than 2 s, else kept
                # unless the trim applies (then the full visit); the peaks
                # move (the query buffer's to 0; the reply buffer's to 0
                # when its reset is due) and its share of client memory is 0
                # (tested equal to _visit_buffers in tests/test_iobufs_cron.py)
                alloc = c.qb_alloc
                if alloc > spare:
                    if now - c.last_interaction_ms >= _QUIET_IDLE_MS:
                        c.qb_alloc = 0
                    elif alloc > small and alloc // 2 > c.qb_peak:
                        self._visit_buffers(c, now, reset, resizing, peaks)
                        continue
                c.qb_peak = 0
                if due and now - c.rb_reset_ms >= reset:
                    c.rb_peak = 0
                    c.rb_reset_ms = now
                if c.mem_counted:
                    self.clients_mem -= c.mem_counted
                    c.mem_counted = 0

    def _visit_buffers(self, c, now: int, reset: int, resizing: bool, peaks) -> None:
        """One client's clientsCron visit (``resize_client_buffers``)."""
        r = _iobufs.cron(c, now, c.qb_bulk, reset, resizing)
        if r:
            k = "reply_buffer_shrinks" if r == 1 else "reply_buffer_expands"
            self.stats[k] = self.stats.get(k, 0) + 1
        out = c.out_bytes
        qbuf = c.qbuf
        if qbuf or c.qbuf_alloc or c.argv_mem or out > c.rb_size:
            peaks.see(c)  # (an idle client's input and output count for 0)
        flags = c.flags
        m = 0 if flags & (F.MASTER | F.SLAVE) else out + qbuf + c.argv_mem
        if m != c.mem_counted:
            self.clients_mem += m - c.mem_counted
            c.mem_counted = m
        if out > c.rb_size and not flags & (F.CLOSE_ASAP | F.SLAVE | F.MASTER):
            self.check_output_limits(c)  # (a soft limit's time may be up)

    def evictions_safe(self) -> bool:
        """Redis's isSafeToPerformEvictions: not while loading, not on a
        replica that ignores maxmemory, not while clients are paused."""
        if self.loading or (self.repl.masterhost is not None
                            and self.config.get("replica-ignore-maxmemory") == "yes"):
            return False
        return not self.paused_now()

    def paused_now(self) -> bool:
        """A CLIENT PAUSE (WRITE or ALL) is in force: no key expires or is
        evicted meanwhile."""
        return bool(self.pause_end_ms and self.pause_end_ms > self.now_ms)

    def evict_key(self, db: Db, key: bytes) -> None:
        """Evict one key: delete it (tracking invalidated, WATCH touched, by
        no client), count it, notify 'evicted', propagate DEL (UNLINK with
        lazyfree-lazy-eviction)."""
        tr = self.tracking
        cur = tr.current
        tr.current = None  # by no client: NOLOOP never hides it, and the
        try:  # invalidation precedes the reply of the command about to run
            db.delete(key)
        finally:
            tr.current = cur
        self.stats["evicted_keys"] += 1
        if self.notify_flags:
            notify(self, EVICTED, b"evicted", key, db.id)
        lazy = self.config.get("lazyfree-lazy-eviction") == "yes"
        self.propagated.append((db.id, [b"UNLINK" if lazy else b"DEL", key]))

    def evict_cron(self) -> None:
        """The eviction time event: go on while a cycle is unfinished (or
        maxmemory was just set)."""
        if self.evict_running:
            self.evict_running = False
            if self.maxmemory:
                _evict.perform_evictions(self)

    def out_of_memory(self) -> bool:
        """Redis's performEvictions() == EVICT_FAIL: evict by the policy
        while over maxmemory; True when memory is still over it."""
        return _evict.perform_evictions(self) == _evict.EVICT_FAIL

    def _disk_config_changed(self, name: str, value: str) -> None:
        if name in ("stop-writes-on-bgsave-error", "save"):
            self.refresh_disk_error()

    def close_for_output_limits(self, c: Client) -> None:
        """Redis's closeClientOnOutputBufferLimitReached: drop what the client
        has not read and close it once this command is done. Nothing more is
        sent to it (the rest of a transaction runs, its replies dropped)."""
        c.out.clear()
        c.out_bytes = 0
        c.reply_mode = 1  # (as CLIENT REPLY OFF: Redis adds no reply to a closing client)
        self._close_over_limit(c)

    def check_output_limits(self, c: Client) -> None:
        """Close a normal or pubsub client over its output buffer limit
        (after a command, and from the cron: a soft limit's time runs out
        without new output too)."""
        if self.obuf.over(c, "pubsub" if c.in_pubsub else "normal", self.now_ms):
            if c.in_pubsub:
                self.pubsub.disconnect_for_limits(c)
            else:
                self.close_for_output_limits(c)

    def _close_over_limit(self, c: Client) -> None:
        """The log line, the stat and the close, for any client class over
        its output limit (its unsent output was dropped by the caller)."""
        _log.warning("Client id=%d addr=%s scheduled to be closed ASAP for overcoming of "
                     "output buffer limits.", c.id, c.addr)
        self.obuf.disconnections += 1
        self.obuf.forget(c)
        self.kill_client(c)

    def check_replica_output_limits(self) -> None:
        """The replica class of client-output-buffer-limit: a replica whose
        unsent stream (beyond the 16 KB Redis does not count) passes the
        hard limit, or stays over the soft one too long, is closed; it
        reconnects and resyncs (partially when the backlog still has its
        offset), as with Redis."""
        repl = self.repl
        if repl is None or not repl.replicas:
            return
        obuf = self.obuf
        hard, soft, _ = obuf.limits["replica"]
        if not hard and not soft:
            return
        from frtrio.core.obuf import STATIC_REPLY_BUFFER

        for r in list(repl.replicas.values()):
            c = r.client
            if c.flags & F.CLOSE_ASAP:
                continue
            if obuf.over_used(c.id, r.buf_bytes - STATIC_REPLY_BUFFER, "replica", self.now_ms):
                r.buf.clear()
                r.buf_bytes = 0
                self._close_over_limit(c)
                if r.wake is not None:
                    r.wake()

    def pause_clients(self, end_ms: int, all_commands: bool, purpose: str = "client") -> None:
        """Redis's pauseClients: each purpose's pause lasts until the latest
        end asked for; ALL wins over WRITE while both are on."""
        old = self.pauses.get(purpose)
        if old is not None and old[0] > self.now_ms:
            end_ms = max(old[0], end_ms)
            all_commands = all_commands or old[1]
        self.pauses[purpose] = (end_ms, all_commands)
        self._pause_update()

    def unpause_clients(self, purpose: str = "client") -> None:
        self.pauses.pop(purpose, None)
        self._pause_update()

    def _pause_update(self) -> None:
        live = [p for p in self.pauses.values() if p[0] > self.now_ms]
        self.pause_end_ms = max((p[0] for p in live), default=0)
        self.pause_all = any(p[1] for p in live)

    def pause_holds(self, c: Client, argv: list[bytes]) -> bool:
        """Must this command wait for the pause to end (Redis's
        processCommand: every command of a non-replica client under PAUSE
        ALL; under PAUSE WRITE those that may write or replicate)?"""
        if self.now_ms >= self.pause_end_ms or c.flags & F.SLAVE:
            return False
        if self.pause_all:
            self._pause_update()  # an ALL pause may have ended before a WRITE one
            if self.pause_all:
                return True
        cmd = self.commands.get(argv[0].lower())
        if cmd is None:
            return False
        if cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower(), cmd)
        if cmd.name == "exec" and c.multi:
            return any(self.pause_holds_cmd(q) for q in c.multi)
        if cmd.flags_from_script is not None:
            sflags = cmd.flags_from_script(self, argv)
            if sflags is not None:
                from frtrio.commands.scripting import ScriptedCommand

                cmd = ScriptedCommand(cmd, sflags)
        return cmd.is_write or cmd.may_replicate

    def pause_holds_cmd(self, queued) -> bool:
        cmd = queued[0] if isinstance(queued, tuple) else None
        return bool(cmd is not None and (cmd.is_write or cmd.may_replicate))

    def kill_client(self, c: Client) -> None:
        """Close another client's connection (CLIENT KILL)."""
        c.flags |= F.CLOSE_ASAP
        if not c.flags & (F.SLAVE | F.MASTER):
            self.to_free.append(c)  # gone from CLIENT LIST by the next command (free_closed)
        if self.cev is not None:
            self.cev.remove(c)
        if c.flags & F.SLAVE:
            # Redis frees a replica at once: INFO's connected_slaves drops now
            r = self.repl.replicas.get(c.id)
            if r is not None:
                self.repl.detach(r, self.now_ms)
                self.repl.refresh_good(self.config, self.now_ms)
        if c.notify is not None:
            c.notify()

    # --- keyspace signals -----------------------------------------------------

    def _key_deleted(self, db: Db, key: bytes) -> None:
        tr = self.tracking
        if tr.table or tr.prefixes:
            tr.invalidate(key)  # (expired and evicted keys too)
        if self.blocking is not None and self.blocking.has_waiters(db.id, key):
            # a blocked XREADGROUP is told that its stream is gone
            self.ready_keys[(db.id, key)] = None
        if self.watched_keys:
            # any removal (expiry included, as Redis 7.0) invalidates WATCH
            self.touch_key(db, key)

    def touch_key(self, db: Db, key: bytes) -> None:
        """A key was modified: invalidate WATCHes and tracked copies (Redis's
        signalModifiedKey).

        ``c.watched`` maps (dbid, key) to Redis's ``wk->expired``: the key was
        already logically expired when WATCHed; its removal then changes
        nothing (the flag is cleared), any other change does."""
        tr = self.tracking
        if tr.table or tr.prefixes:
            tr.invalidate(key)
        wk = self.watched_keys
        if wk:
            k = (db.id, key)
            watchers = wk.get(k)
            if watchers:
                for c in watchers.values():
                    w = c.watched
                    if w and w.get(k) and key not in db.data:
                        w[k] = False
                        continue
                    c.flags |= F.DIRTY_CAS

    def touch_all(self, dbid: int | None = None, swapped_with: int | None = None) -> None:
        """Redis's touchAllWatchedKeysInDb. FLUSHDB/FLUSHALL call it before
        emptying ``dbid`` (None: all dbs): watchers of keys that exist are
        invalidated (keys WATCHed while already expired are left to the
        removal itself, see touch_key). SWAPDB calls it after the swap for
        each db with ``swapped_with`` = the other one."""
        now = self.now_ms
        for k, watchers in list(self.watched_keys.items()):
            wdb, key = k
            if dbid is not None and wdb != dbid:
                continue
            if swapped_with is None:
                if key not in self.dbs[wdb].data:
                    continue
                for c in watchers.values():
                    if not (c.watched and c.watched.get(k)):
                        c.flags |= F.DIRTY_CAS
                continue
            old = self.dbs[swapped_with]  # what this db held before the swap
            new = self.dbs[wdb]
            in_old = key in old.data
            in_new = key in new.data
            if not (in_old or in_new):
                continue
            for c in watchers.values():
                w = c.watched
                if w and w.get(k):
                    if not in_new:
                        w[k] = False
                        continue
                    if new.is_expired(key, now):
                        continue
                elif not in_old and new.is_expired(key, now):
                    if w is not None:
                        w[k] = True
                    continue
                c.flags |= F.DIRTY_CAS

    def overwrites_signalled(self, on: bool) -> None:
        """Whether ``Db.set`` reports an overwritten key (``signal_key_ready``):
        only while some client waits on a key (the blocking registry turns it
        on with its first waiter and off with its last); any other overwrite
        would find nobody to serve, at the cost of a call per SET."""
        fn = self.signal_key_ready if on else None
        for db in self.dbs:
            db.on_overwrite = fn

    def signal_key_ready(self, db: Db, key: bytes) -> None:
        """A list/zset key got elements: blocked clients may be served."""
        b = self.blocking
        if b is not None and b.waiters:  # (every write comes here: no waiters, no tuple)
            k = (db.id, key)
            if k in b.waiters:
                self.ready_keys[k] = None

    def watch(self, c: Client, key: bytes) -> None:
        if c.watched is None:
            c.watched = {}
        k = (c.dbid, key)
        if k in c.watched:
            return
        c.watched[k] = c.db.is_expired(key, self.now_ms)
        self.watched_keys.setdefault(k, {})[c.id] = c

    def unwatch_all(self, c: Client) -> None:
        if not c.watched:
            c.watched = None
            c.flags &= ~F.DIRTY_CAS
            return
        for k in c.watched:
            w = self.watched_keys.get(k)
            if w is not None:
                w.pop(c.id, None)
                if not w:
                    del self.watched_keys[k]
        c.watched = None
        c.flags &= ~F.DIRTY_CAS

    # --- propagation --------------------------------------------------------

    def propagate(self, dbid: int, argv: list[bytes]) -> None:
        self.propagated.append((dbid, argv))

    # --- the gate -----------------------------------------------------------

    def execute(self, c: Client, argv: list[bytes]) -> None:
        """Run one request from client ``c`` and put its reply in ``c.out``."""
        cev = self.cev
        if cev is not None:
            # Redis's processCommand: clients over maxmemory-clients go
            # before the command runs, this one too (then it does not run)
            # (the running command's arguments are the client's, as Redis's
            # c->argv: CLIENT LIST's argv-mem shows them)
            c.argv_mem = sum(map(len, argv))
            cev.update(c, _client_evict.PTR * len(argv))
            if cev.total >= cev.limit:
                cev.evict()
                if c.flags & F.CLOSE_ASAP:
                    return
        self._execute(c, argv)
        cluster = self.cluster
        if cluster is not None:
            # ASKING is one-shot: cleared after any other command, unless in MULTI
            if c.flags & _ASKING and c.multi is None and argv[0].lower() != b"asking":
                c.flags &= ~_ASKING
            if cluster.state.version != cluster._released_version:
                cluster.after_command()  # (the cluster state changed)
        if cev is not None:
            c.argv_mem = 0
            if not c.flags & F.CLOSE_ASAP:
                cev.update(c)

    def client_mem_changed(self, c: Client) -> None:
        """A client's buffers changed outside a command (a read, a write):
        recount it and evict over maxmemory-clients (Redis does it after
        reads and writes, and before sleeping)."""
        cev = self.cev
        if cev is not None:
            cev.update(c)
            if cev.total >= cev.limit:
                cev.evict()

    def _client_eviction_config(self, name: str, value: str) -> None:
        if name not in ("maxmemory-clients", "maxmemory"):
            return
        limit = _client_evict.eviction_limit(self.config.get_int("maxmemory-clients"),
                                             self.config.get_int("maxmemory"))
        if not limit:
            self.cev = None
        elif self.cev is None:
            self.cev = _client_evict.ClientEviction(self, limit)
        else:
            self.cev.limit = limit

    def _execute(self, c: Client, argv: list[bytes]) -> None:
        self.stats["total_commands_processed"] += 1
        c.tot_cmds += 1
        c.last_interaction_ms = self.now_ms
        self.in_master_cmd = c.flags & _MASTER != 0
        self.tracking.current = c
        if self.now_ms // 1000 != self._stamp_sec:
            self.refresh_stamps()
        name = argv[0].lower()
        cmd = self.commands.get(name)
        if name == b"quit":
            c.reply(OK)
            c.flags |= F.CLOSE_AFTER_REPLY
            return
        if cmd is None:
            c.last_cmd = b"NULL"  # Redis's lastcmd is NULL after an unknown command
            return self._reject(c, _unknown_command_error(argv))
        if cmd.subcommands and len(argv) >= 2:
            sub = cmd.subcommands.get(argv[1].lower())
            if sub is None:
                return self._reject(
                    c,
                    "ERR unknown subcommand '%s'. Try %s HELP."
                    % (argv[1].split(b"\0", 1)[0].decode("latin-1")[:128], cmd.fullname.upper()),
                )
            cmd = sub
        arity = cmd.arity  # (cmd.arity_ok inlined: this is the hot path)
        if (len(argv) != arity) if arity >= 0 else (len(argv) < -arity):
            return self._reject(
                c, "ERR wrong number of arguments for '%s' command" % cmd.fullname, cmd=cmd
            )
        c.last_cmd = cmd.name_bytes
        if c.flags & F.MONITOR and (cmd.is_write or cmd.is_readonly or cmd.may_replicate):
            return self._reject(c, "ERR Replica can't interact with the keyspace", cmd=cmd)
        base = cmd
        if cmd.flags_from_script is not None:
            sflags = cmd.flags_from_script(self, argv)
            if sflags is not None:
                from frtrio.commands.scripting import ScriptedCommand

                cmd = ScriptedCommand(cmd, sflags)
        if not c.authenticated and not cmd.no_auth and not self.acl.default_open():
            return self._reject(c, "NOAUTH Authentication required.", cmd=cmd)
        if c.multi is not None and cmd.no_multi:
            return self._reject(c, "ERR Command not allowed inside a transaction", cmd=cmd)
        if not c.auser.allow_all:
            kind = self.acl_denied(c, base, argv, 1 if c.multi is not None else 0)[0]
            if kind:
                return self._reject(c, _NOPERM[kind] % base.fullname
                                    if kind == 1 else _NOPERM[kind], cmd=cmd)
        cluster = self.cluster
        if cluster is not None:
            err = cluster.route(c, cmd, argv)
            if err is not None:
                return self._reject(c, err, redirect=True)
        sc = self.scripting
        if self.maxmemory and (sc is None or sc.busy_ctx is None):
            oom = self.out_of_memory()
            if oom and (cmd.denyoom
                        or (name == b"exec" and c.multi and any(q[0].denyoom for q in c.multi))
                        or (c.multi is not None and name not in _OOM_IN_MULTI_OK)):
                return self._reject(c, "OOM command not allowed when used memory > 'maxmemory'.",
                                    cmd=cmd)
            self.oom_at_start = oom
        if sc is not None and sc.busy_ctx is not None and "allow_busy" not in cmd.flags:
            # a script is past busy-reply-threshold (Redis's slowevalerr/slowscripterr)
            from frtrio.scripting.engine import SLOWEVAL, SLOWSCRIPT

            return self._reject(c, SLOWEVAL if sc.busy_ctx.eval_mode else SLOWSCRIPT, cmd=cmd)
        if self.disk_error is not None and (
            cmd.is_write
            or name == b"ping"
            or (name == b"exec" and c.multi and any(q[0].is_write for q in c.multi))
        ):
            # Redis's writeCommandsDeniedByDiskError: the AOF cannot be written
            return self._reject(c, self.disk_error, cmd=cmd)
        repl = self.repl
        if repl.masterhost is not None and not c.flags & F.MASTER:
            # (for EXEC: the flags of what it queued, Redis's mstate.cmd_flags)
            if ((cmd.is_write or (name == b"exec" and c.multi
                                  and any(q[0].is_write for q in c.multi)))
                    and self.config.get("replica-read-only") == "yes"):
                return self._reject(c, "READONLY You can't write against a read only replica.",
                                    cmd=cmd)
            if ((not cmd.stale or (name == b"exec" and c.multi
                                   and not all(q[0].stale for q in c.multi)))
                    and not repl.link_up
                    and self.config.get("replica-serve-stale-data") == "no"):
                return self._reject(c, "MASTERDOWN Link with MASTER is down and "
                                       "replica-serve-stale-data is set to 'no'.", cmd=cmd)
        elif repl.too_few_good and (
                cmd.is_write
                or (name == b"exec" and c.multi and any(q[0].is_write for q in c.multi))):
            return self._reject(c, "NOREPLICAS Not enough good replicas to write.", cmd=cmd)
        if (
            (c.subscriptions or c.psubscriptions or c.ssubscriptions)  # in_pubsub
            and c.resp == 2
            and name not in PUBSUB_ALLOWED
        ):
            return self._reject(
                c,
                "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context" % cmd.fullname, cmd=cmd,
            )
        if self.loading and not cmd.loading:
            return self._reject(c, "LOADING Redis is loading the dataset in memory", cmd=cmd)
        if c.multi is not None and name not in _TX_CONTROL:
            c.multi.append((cmd, argv))
            c.reply(QUEUED)
            return
        self.call(c, cmd, argv)
        if self.ready_keys and self.blocking is not None:
            if self.effects and any(type(e) is Sleep for e in self.effects):
                # a DEBUG SLEEP inside this EXEC: Redis serves the blocked
                # clients after the sleep, at the time it ends (a key given a
                # short TTL in the transaction may have expired by then); the
                # before-sleep round serves them once the shell has slept
                return
            self.blocking.serve_ready_keys()

    def _reject(self, c: Client, msg: str, redirect: bool = False, cmd=None) -> None:
        """Redis's rejectCommand: flag the transaction; a rejected EXEC
        aborts it with EXECABORT naming the reason."""
        if cmd is not None and cmd.fullname == "exec" and not redirect:
            c.multi = None
            c.flags &= ~F.DIRTY_EXEC
            self.unwatch_all(c)
            msg = "EXECABORT Transaction discarded because of: " + (
                msg[4:] if msg.startswith("ERR ") else msg)
        elif c.multi is not None:
            c.flags |= F.DIRTY_EXEC
        if cmd is not None and not redirect:
            # rejectCommand: rejected_calls (a redirect counted it already)
            self.cmd_stat(cmd.fullname)[2] += 1
        self.count_error(msg)
        c.reply_error(msg)

    def note_internal_error(self, where: str) -> None:
        """Count and log (with the traceback of the exception being handled)
        a bug that was caught instead of crashing: INFO's
        ``frtrio_internal_errors``. Call it from inside an ``except`` block."""
        global internal_errors_total
        internal_errors_total += 1
        self.stats["frtrio_internal_errors"] += 1
        _log.exception("%s %s", INTERNAL_ERROR_MARK, where)

    def _after_tracked_command(self, c: Client, cmd, argv) -> None:
        """Client-side caching after a command (Redis's call()): keys a
        tracking client read are remembered; invalidations it caused for
        itself follow its reply; CLIENT CACHING applies to one command."""
        tr = self.tracking
        if tr.pending and c is tr.current and not c.flags & F.IN_EXEC:
            tr.after_command(c)  # (after EXEC's whole reply, not inside it)
        if tr.table:
            tr.limit(int(self.config.get("tracking-table-max-keys") or 0))
        st = c.tracking
        if st is None:
            if cmd.is_readonly and getattr(c, "in_script", False):
                # a read inside a script: its caller tracks the keys the
                # script declared (Redis's call() with script_caller)
                ctx = self.scripting.ctx if self.scripting is not None else None
                caller = ctx.caller if ctx is not None else None
                if caller is not None and caller.tracking is not None \
                        and not caller.tracking.bcast:
                    scmd = self.commands.get(ctx.argv[0].lower())
                    keys = scmd.get_keys(ctx.argv) if scmd is not None else ()
                    if keys:
                        tr.remember(caller, [ctx.argv[i] for i in keys])
            return
        if (cmd.is_readonly and not st.bcast and not cmd.pubsub
                and cmd.fullname not in ("eval_ro", "evalsha_ro", "fcall_ro")):
            keys = cmd.get_keys(argv)
            if keys:
                tr.remember(c, [argv[i] for i in keys])
        if st.caching and c.multi is None and not cmd.fullname.startswith("client"):
            st.caching = False

    def feed_monitors(self, c: Client, argv) -> None:
        """Redis's replicationFeedMonitors: one status line per command,
        `+<unix s>.<us> [<db> <client>] "arg" ...`, to every MONITOR client."""
        from frtrio.config.text import repr_bytes

        us = self.unix_us()
        if getattr(c, "in_script", False):
            who = "lua"
        elif c.addr.startswith("/"):
            who = "unix:" + c.addr[:-2]  # (a unix socket client shows as path:0)
        else:
            who = c.addr
        line = ("+%d.%06d [%d %s] %s\r\n" % (us // 1000000, us % 1000000, c.dbid, who,
                                              " ".join(repr_bytes(a) for a in argv))).encode(
                                                  "latin-1")
        for m in self.monitors:
            if m is c or m.flags & F.CLOSE_ASAP:
                continue
            m.out.append(line)
            m.out_bytes += len(line)
            if m.notify is not None:
                m.notify()

    def master_got_error(self, c: Client, msg: str) -> None:
        """A command from our master's stream failed (Redis's afterErrorReply
        for the master client): the reply goes nowhere, so log it loudly
        with the newest backlog bytes, and count it."""
        name = c.last_cmd.decode("latin-1") if c.last_cmd != b"NULL" else "<unknown>"
        _log.warning("== CRITICAL == This replica is sending an error to its master: '%s' "
                    "after processing the command '%s'", msg[:4096], name)
        bl = self.repl.state.backlog
        if bl is not None and bl.histlen > 0:
            n = min(256, bl.histlen)
            tail = bl.read_from(bl.first_byte_offset + bl.histlen - n)
            from frtrio.config.text import repr_bytes

            _log.warning("Latest backlog is: '%s'", repr_bytes(tail))
        self.stats["unexpected_error_replies"] += 1

    def cmd_stat(self, fullname: str) -> list:
        """INFO commandstats' [calls, usec, rejected_calls, failed_calls]."""
        st = self.cmdstats.get(fullname)
        if st is None:
            st = self.cmdstats[fullname] = [0, 0, 0, 0]
        return st

    def count_error(self, msg: str) -> None:
        """INFO errorstats, as Redis's afterErrorReply: the error code is the
        first word when a space comes within the first 32 bytes of the
        reply ("-" included), else ERR."""
        sp = msg.find(" ", 0, 31)
        code = msg[:sp] if sp > 0 else "ERR"
        self.stats["total_error_replies"] += 1
        self.errorstats[code] = self.errorstats.get(code, 0) + 1

    def call(self, c: Client, cmd, argv: list[bytes]) -> None:
        """Run a command (Redis's call()): the handler, reply, propagation."""
        dirty = self.dirty
        np = len(self.propagated)
        ep = self.expire_props
        dbid = c.dbid
        self.prevent_propagation = False
        local = (cmd.is_write and self.repl.masterhost is not None
                 and not c.flags & F.MASTER)
        if local:
            self._replica_write(True)
        stats = self.stats
        # Redis's incrCommandStatsOnError: the command failed if an error
        # reply was counted since the last (possibly nested) command ended
        self.prev_err_count = stats["total_error_replies"]
        clock = self.clock_ns
        ne = len(self.effects)
        t0 = clock()
        try:
            r = cmd.handler(c, argv)
        except ErrorReply as e:
            self.count_error(e.message)
            c.reply_error(e.message)
            r = _NO_REPLY
        except Exception as e:  # noqa: BLE001
            # A bug in a command must not take the whole server down: answer
            # an error, log it with its traceback, count it, keep serving.
            self.note_internal_error("command '%s'" % cmd.fullname)
            msg = "ERR internal error in '%s': %s" % (cmd.fullname, type(e).__name__)
            self.count_error(msg)
            c.reply_error(msg)
            r = _NO_REPLY
        us = (clock() - t0) // 1000
        st = self.cmdstats.get(cmd.fullname)
        if st is None:
            st = self.cmdstats[cmd.fullname] = [0, 0, 0, 0]
        st[0] += 1
        if not self.loading:
            if self.effects and len(self.effects) != ne and any(
                    getattr(e, "timed", False) for e in self.effects[ne:]):
                # its time runs on in the shell (DEBUG SLEEP...)
                self.pending_timing.append((c, cmd, argv, t0))
            elif type(r) is BlockOn:
                st[1] += us
                self._record_timing(c, cmd, argv, us, r)
            else:
                st[1] += us
                if self.latency_tracking:  # (inlined: every command comes here)
                    h = self.histograms.get(cmd.fullname)
                    if h is None:
                        h = self.histograms[cmd.fullname] = Histogram()
                    h[us] = h.get(us, 0) + 1
                if us >= self.timing_floor_us:
                    self._record_timing(c, cmd, argv, us, None, False)
        total = stats["total_error_replies"]
        if total > self.prev_err_count:  # (not after CONFIG RESETSTAT zeroed it)
            st[3] += 1
        self.prev_err_count = total
        if local:
            self._replica_write(False)
        if self.monitors and not (cmd.admin or cmd.skip_monitor) and not self.loading:
            self.feed_monitors(c, redact(cmd.fullname, argv))
        tracked = self.tracking.tracking_clients
        if r is not _NO_REPLY:
            t = type(r)
            if (r is OK or t is bytes or t is int) and not c.reply_mode:
                # the common replies, without the generic encoder's dispatch
                if r is OK:
                    b = _OK_BYTES
                elif t is int:
                    b = _SMALL_INT[r] if 0 <= r < 1024 else b":%d\r\n" % r
                else:
                    n = len(r)
                    b = (b"$%d\r\n" % n) + r + b"\r\n"
                c.out.append(b)
                c.out_bytes += len(b)
            elif t is BlockOn:
                if self.blocking is None:
                    raise RuntimeError("blocking command without a registry")
                self.blocking.block(c, r)
            else:
                c.reply(r)
        if tracked:
            self._after_tracked_command(c, cmd, argv)
        if c.out_bytes >= self.obuf.normal_from and not c.flags & F.CLOSE_ASAP:
            self.check_output_limits(c)
        if (self.dirty != dirty and cmd.is_write
                and len(self.propagated) - (self.expire_props - ep) == np
                and not self.prevent_propagation):
            # the command changed data and did not propagate something else
            self.propagated.append((dbid, argv))
        if len(self.propagated) != np:
            self.repl.woff_pending.append(c)  # (repl.wrote, inlined: its WAIT target moves)


_NO_REPLY = NO_REPLY
_NOPERM = {
    1: "NOPERM this user has no permissions to run the '%s' command",
    2: "NOPERM this user has no permissions to access one of the keys used as arguments",
    4: "NOPERM this user has no permissions to access one of the channels used as arguments",
}
_OK_BYTES = b"+OK\r\n"
_SMALL_INT = [b":%d\r\n" % i for i in range(1024)]
_ASKING = F.ASKING
_MASTER = F.MASTER
