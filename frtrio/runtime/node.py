"""One server node: the Trio shell around the pure ``engine.Server``.

Nursery tree::

    Node.run                         (root nursery; cancelled on SHUTDOWN)
      listener (Env.serve)           -> one task per connection:
        ClientConn.run               (client nursery; runtime/client_conn.py)
          reader loop                 parse, execute, flush (this task)
          writer                      sends out-of-band output (pub/sub,
                                      unblocked replies), closes killed clients
      cron ticker                    active expire, client timeouts, AOF fsync

Everything about *what* happens lives in the engine; this module only moves
bytes, keeps time and carries out the effects the engine leaves behind.
"""

from __future__ import annotations

import errno
import logging
import math
import os

import trio
from trio_util import RepeatedEvent

from frtrio.core.client import F
import frtrio.commands  # noqa: F401  (registers all commands)
from frtrio.core.beforesleep import BeforeSleep
from frtrio.config import Config
from frtrio.core.effects import (
    PERSISTENCE, AclFile, ApplyConfig, Crash, PauseChanged, SaveClusterConfig, SetMaster,
    Shutdown, UnsetMaster,
)
from frtrio.core import shutdown as _sd
from frtrio.core.engine import Server
from frtrio.core.events import open_node_event_log
from frtrio.core.policy import Policy
from frtrio.runtime.client_conn import ClientConn

log = logging.getLogger("frtrio")

# a bind address of a family this host cannot listen on is skipped (listenToPort)
_SKIP_FAMILY_ERRNOS = {errno.ENOPROTOOPT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT,
                       errno.EPFNOSUPPORT, errno.EAFNOSUPPORT}


def _bind_error(e: OSError) -> str:
    """A listener's failure as Redis's anetTcpServer words it."""
    return "bind: " + os.strerror(e.errno) if e.errno else str(e)


class _Sleeper:
    """What ``Env.wake`` finds the cron's sleep by."""

    __slots__ = ("waiter",)

    def __init__(self):
        self.waiter = None


def _ticks_to(t: float, nxt: float, period: float) -> int:
    """How many periods from the tick at ``nxt`` to the first tick at or
    after ``t`` (0 if ``nxt`` is already there)."""
    if t <= nxt + 1e-6:
        return 0
    return math.ceil((t - nxt) / period - 1e-6)


class Node:
    def __init__(self, config: Config, env, name: str = ""):
        self.config = config
        self.env = env
        self.name = name or config.get("port")
        self.server = Server(config, env.rng("server"))
        srv = self.server
        srv.now_ms = env.unix_ms()
        srv.start_ms = srv.now_ms
        srv.lastsave_ms = srv.now_ms
        srv.unix_us = env.unix_us
        srv.clock_ns = getattr(env, "mono_ns", srv.clock_ns)
        srv.script_can_suspend = True
        self.load_acl_at_startup()
        if hasattr(env, "host_info"):
            srv.host = env.host_info()
        self.nursery: trio.Nursery | None = None
        self.cancel_scope: trio.CancelScope | None = None
        self.ready = trio.Event()
        self.stopped = trio.Event()
        self.aof = None
        self.listen_addrs: list[tuple[str, int]] = []
        self._listeners: list = []  # what env.serve started (closed at shutdown)
        # the client TCP listeners a RealEnv opened synchronously (CONFIG SET
        # port/bind close and reopen them) and the (port, bind words) they are for
        self._tcp_listeners: list = []
        self._tcp_spec: tuple | None = None
        self.exit_code = 0
        self.on_shutdown = []  # callables run at shutdown (pidfile removal...)
        # the final snapshot of a shutdown: fn(flags) -> False when it failed
        # (runtime/persistence.py sets it for the real server)
        self.final_save = None
        self.cron_hooks = []  # callables run from the cron once a second (save points)
        self.on_role_change: list = []  # callables run when this node becomes a replica or master
        # name -> fn(value): how this node applies a parameter flagged SHELL
        # (CONFIG SET's ApplyConfig effect); fn raises ConfigError to refuse
        self.config_appliers: dict = {}
        # the real server loads dump.rdb at start and saves it by save points
        # and at shutdown (the simulator's nodes do not)
        self.persist_rdb = False
        # a big dump.rdb loads with the listeners open, serving clients
        # (-LOADING) in between, as Redis does; the real server sets it
        self.load_serving = False
        self.pending_load = None  # that load, awaited by run()
        self.on_listening: list = []  # called once the client listeners are open
        self.pause_changed = RepeatedEvent()  # CLIENT PAUSE/UNPAUSE changed
        self.bus = None
        # the cron's sleep through ticks with nothing to do (_cron): the
        # tick it sleeps to (None: not in such a sleep), what it needs to
        # judge again (cron_poke), what ends the sleep early, and the run's
        # token (a signal handler pokes through it)
        self._quiet_wake: float | None = None
        self._quiet_ctx: tuple = ()
        self._cron_sleep = _Sleeper()
        self.cron_wakeups = 0  # (how often the cron woke: tests and benchmarks)
        self.trio_token = None
        from frtrio.runtime.replication import ReplicationShell

        self.replication = ReplicationShell(self)  # master link, replica links
        # the one place that orders deferred duties (frtrio/core/beforesleep.py);
        # duties are registered in load(), once the node's parts exist
        self.before_sleep = BeforeSleep()
        # structured event log (None when off: each emission site is one test)
        self.events = open_node_event_log(config, env, str(self.name))
        self.policy = Policy.from_config(config, self.events)  # strict / hardened
        srv.events = self.events
        srv.policy = self.policy

    # --- lifecycle ------------------------------------------------------------

    def load(self) -> None:
        """Load persisted data (AOF) before accepting clients."""
        if self.config.get("cluster-enabled") == "yes":
            self._load_cluster_config()
        from frtrio.runtime.persistence import attach

        attach(self)  # loads the AOF or dump.rdb (or leaves it to run()); save points
        if self.pending_load is None:
            self._after_load()

    def _after_load(self) -> None:
        self._register_duties()
        if self.server.cluster is not None:
            for line in self.server.cluster.verify_config_with_data():
                log.info("%s", line)
            self._write_cluster_config(self.server.cluster.flush_todo())

    def _load_cluster_config(self) -> None:
        """Cluster mode: nodes.conf (locked), the cluster core on the server."""
        import os

        from frtrio.cluster.core import ClusterCore
        from frtrio.runtime.cluster_files import ClusterFile

        cfg = self.config
        path = cfg.get("cluster-config-file")
        if not os.path.isabs(path):
            path = os.path.join(cfg.get("dir") or ".", path)
        self.cluster_file = ClusterFile(self.env, path)
        new_id = self.env.random_hex(40, "node-id")
        state, fresh = self.cluster_file.load(self.server.now_ms, new_id)
        core = ClusterCore(self.server, state)
        self.server.cluster = core
        core.refresh_myself_address()
        cfg.listeners.append(core.config_changed)
        if fresh:
            log.info("No cluster configuration found, I'm %s", state.myself.id)
            self._write_cluster_config((state.config_text(), True))
        else:
            log.info("Node configuration loaded, I'm %s", state.myself.id)
        self.on_shutdown.append(self.cluster_file.close)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.trio_token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as n:
                self.nursery = n
                self.cancel_scope = n.cancel_scope
                binds = self._bind_addresses()
                port = int(self.config.get("port"))
                # The unix socket first: a client that reached the TCP port
                # may count on the socket file being there already.
                unix = self.config.get("unixsocket")
                if unix:
                    self._listeners.append(await n.start(
                        self.env.serve_unix, unix,
                        int(self.config.get("unixsocketperm") or "0", 8), self._handle_conn))
                    self.on_shutdown.append(self._remove_unix_socket)
                if hasattr(self.env, "listen_tcp"):
                    # real sockets: bound synchronously, so CONFIG SET port/bind
                    # can move them later and answer at once (_apply_listeners)
                    self._open_tcp(self._tcp_wanted())
                    for name in ("port", "bind"):
                        self.config_appliers[name] = (
                            lambda _value, name=name: self._apply_listeners(name))
                else:
                    for host in binds:
                        self._listeners += await n.start(self.env.serve, host, port, self._handle_conn)
                        self.listen_addrs.append((host, port))
                for fn in self.on_listening:
                    fn()
                # the data once the listeners are open and the banner is out,
                # as Redis (initServer, the logo, then the manifest and the
                # load): a manifest or RDB it refuses is logged after the PID
                # line the test harness waits for. A load done in one go
                # leaves connections in the backlog until it is over.
                self.load()
                if self.pending_load is not None:
                    # clients may connect meanwhile: they are answered -LOADING
                    load, self.pending_load = self.pending_load, None
                    await load(self)
                    self._after_load()
                n.start_soon(self._cron)
                self.replication.start()  # the replicaof directive
                if self.server.cluster is not None:
                    await self._start_bus(n, binds)
                self.ready.set()
                if self.events is not None:
                    self.events.emit("node.ready", outcome="ok", run_id=self.server.run_id,
                                     listen=["%s:%d" % a for a in self.listen_addrs])
                task_status.started(self)
        finally:
            self._final_flush()
            if self.events is not None:
                self.events.emit("node.stopped", outcome="info")
                self.events.close()
            self.stopped.set()

    async def _start_bus(self, nursery, binds) -> None:
        from frtrio.runtime.bus import BusShell

        self.bus = BusShell(self)
        me = self.server.cluster.state.myself
        cport = int(self.config.get("cluster-port") or 0) or int(self.config.get("port")) + 10000
        for host in binds:
            try:
                await nursery.start(self.bus.run, host, cport)
            except* OSError as group:
                for e in group.exceptions:
                    log.warning("Warning: Could not create server TCP listening socket %s:%d: %s",
                                host, cport, _bind_error(e))
                    e.listen_port = (cport, "cluster")  # (the exit message: Redis's clusterInit)
                raise
        del me

    def _cluster_cron(self, flush: bool = True) -> None:
        """clusterCron (every 100 ms, whatever hz is; driven by _cron).
        ``flush`` False: serverCron runs on the same wake-up and its
        before-sleep round follows (one round for both, as Redis's
        beforeSleep after all the time events of a loop iteration)."""
        core = self.server.cluster
        core.cron()
        self.bus.tick()
        core.after_command()
        self.replication.reconcile_cluster()
        if flush:
            self.flush_effects()

    def after_cluster_event(self) -> None:
        """After bus packets or cron changed the cluster state: release
        blocked clients, then carry out the before-sleep duties."""
        core = self.server.cluster
        core.after_command()
        self.replication.reconcile_cluster()
        self.flush_effects()
        if self._quiet_wake is not None:
            self.cron_poke()

    def _bind_addresses(self) -> list[str]:
        words = self.config.get("bind").split()
        out = []
        for w in words:
            optional = w.startswith("-")
            w = w.lstrip("-")
            if w == "*":
                w = "0.0.0.0"
            if optional and w in ("::*", "::"):
                continue  # IPv6 is optional in Redis; loopback tests use IPv4
            if w == "::*":
                w = "::"
            out.append(w)
        return out or ["0.0.0.0"]

    # --- client TCP listeners (RealEnv) ------------------------------------------

    def _tcp_wanted(self) -> tuple:
        """(port, bind words) the configuration asks the client listeners for."""
        return (int(self.config.get("port") or 0), tuple(self.config.get("bind").split()))

    def _open_tcp(self, spec: tuple) -> None:
        """Listen on every bind address at ``spec``'s port and start
        accepting, as Redis's listenToPort: no port or no bind address means
        no TCP listener; an optional address (``-`` prefix) that is not
        available here, or an address family the host lacks, is skipped with
        a warning; any other failure closes what this call opened and raises
        the OSError. (An optional IPv6 wildcard is skipped outright, as the
        simulator's nodes and earlier frtrio did: tests reach nodes on IPv4.)"""
        port, words = spec
        opened, addrs = [], []
        backlog = int(self.config.get("tcp-backlog") or 511)
        for w in words if port else ():
            optional = w.startswith("-")
            addr = w[1:] if optional else w
            if optional and addr in ("::*", "::"):
                continue
            ipv6 = ":" in addr
            host = None if addr in ("*", "::*") else addr
            try:
                opened.append(self.env.listen_tcp(host, port, backlog, ipv6=ipv6))
            except OSError as e:
                log.warning("Warning: Could not create server TCP listening socket %s:%d: %s",
                            addr, port, _bind_error(e))
                if (optional and e.errno == errno.EADDRNOTAVAIL) or e.errno in _SKIP_FAMILY_ERRNOS:
                    continue
                self.env.stop_listening(opened)
                raise
            addrs.append((addr, port))
        self._tcp_listeners = opened
        self._tcp_spec = spec
        self.listen_addrs = addrs
        if opened:
            self.nursery.start_soon(self.env.serve_listeners, opened, self._handle_conn)

    def _close_tcp(self) -> None:
        """Stop accepting on the client TCP listeners; the clients they
        accepted stay connected."""
        self.env.stop_listening(self._tcp_listeners)
        self._tcp_listeners = []
        self._tcp_spec = None
        self.listen_addrs = []

    def _apply_listeners(self, name: str) -> None:
        """CONFIG SET port / bind (Redis's changeListenPort and
        changeBindAddr): when the configured (port, bind) differs from what
        is listening, close the listeners, then listen anew, synchronously.
        When that fails the old listeners are opened again and CONFIG SET
        answers Redis's error (and puts the values back). A CONFIG SET of
        both runs this twice; the second finds nothing left to do."""
        from frtrio.config import ConfigError

        want = self._tcp_wanted()
        if want == self._tcp_spec:
            return
        old = self._tcp_spec
        self._close_tcp()
        try:
            self._open_tcp(want)
        except OSError:
            if name == "bind":
                log.warning("Failed to bind")
            if old is not None:
                try:
                    self._open_tcp(old)
                except OSError as e:
                    log.warning("Could not listen again on port %d: %s", old[0], e.strerror or e)
            raise ConfigError("Unable to listen on this port. Check server logs." if name == "port"
                              else "Failed to bind to specified addresses.", name) from None

    def shutdown(self) -> None:
        core = self.server.cluster
        if core is not None and core.migrations.tasks:
            for t in list(core.migrations.tasks):
                core.migrations.cancel(t, "server shutdown")
                log.warning("Slot migration task %s: %s", t.id, t.last_error)
        self.env.stop_listening(self._listeners + self._tcp_listeners)
        self._listeners = []
        self._tcp_listeners = []
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()

    def request_shutdown(self, flags: int) -> bool:
        """Prepare a shutdown (SHUTDOWN, or a signal from the cron; Redis's
        prepareForShutdown): finish it at once, or, when a replica lags and
        shutdown-timeout allows, start waiting for it (the cron finishes
        it). True when the node is stopping."""
        from frtrio.commands.server import replicas_lagging

        srv = self.server
        srv.now_ms = self.env.unix_ms()
        timeout = int(self.config.get("shutdown-timeout") or 0)
        lagging = replicas_lagging(srv) and self.nursery is not None
        if srv.shutdown_deadline_ms:
            return False  # already waiting for replicas (Redis: C_ERR, nothing logged)
        log.warning("User requested shutdown...")
        step = _sd.prepare(srv, flags, timeout, lagging)
        if step == "wait":
            self.pause_changed.set()
            log.info("Waiting for replicas before shutting down.")
            self._carry_out_pending()
            self.flush_effects()  # the GETACK goes out now
            return False
        return self._finish_shutdown()

    def shutdown_tick(self) -> bool:
        """serverCron's shutdown duty: act on a signal received since the
        last tick, or finish a shutdown waiting for replicas once they have
        caught up or its time is up. True when the node is stopping."""
        from frtrio.commands.server import replicas_lagging

        srv = self.server
        if not srv.shutdown_asap and not srv.shutdown_deadline_ms:
            return False
        srv.now_ms = self.env.unix_ms()
        step = _sd.cron_step(srv, self.config, replicas_lagging(srv))
        if step is None:
            return False
        what, flags = step
        if what == "prepare":
            if self.request_shutdown(flags):
                return True
            if srv.shutdown_asap and not srv.shutdown_deadline_ms and srv.loading:
                log.warning("SIGTERM received but errors trying to shut down the server, "
                            "check the logs for more information")
                srv.shutdown_asap = False
                srv.last_sig = ""
            return False
        return self._finish_shutdown()

    def _finish_shutdown(self) -> bool:
        """Redis's finishShutdown: report lagging replicas, flush and fsync
        the AOF, the final snapshot; then stop. When the snapshot fails
        (without FORCE) the shutdown is cancelled instead: the clients
        blocked in SHUTDOWN get an error and the node goes on. True when
        the node is stopping."""
        srv = self.server
        repl = srv.repl
        off = repl.state.master_repl_offset
        n = lagging = 0
        for r in repl.replicas.values():
            n += 1
            if r.ack_off != off:
                lagging += 1
                lag = (srv.now_ms - r.ack_time_ms) // 1000 if r.state == "online" else 0
                log.warning("Lagging replica %s:%d reported offset %d behind master, lag=%d, "
                            "state=%s.", r.ip, r.port, off - r.ack_off, lag, r.state)
        if n:
            log.info("%d of %d replicas are in sync when shutting down.", n - lagging, n)
        flags = srv.shutdown_flags
        if self.aof is not None:
            log.info("Calling fsync() on the AOF file.")
            try:
                self.flush_effects()
                self.aof.write()
                self.aof.fsync()
            except OSError as e:
                log.warning("Fail to fsync the AOF file: %s.", e.strerror or e)
        if self.final_save is not None and not self.final_save(flags):
            if flags & _sd.FORCE:
                log.warning("Error trying to save the DB. Exit anyway.")
            else:
                log.warning("Error trying to save the DB, can't exit.")
                log.warning("Errors trying to shut down the server. "
                            "Check the logs for more information.")
                _sd.cancel(srv)
                self.pause_changed.set()
                self._carry_out_pending()
                return False
        srv.shutdown_exiting = True
        self.shutdown()
        return True

    def _carry_out_pending(self) -> None:
        """Effects a core function left outside a command (PauseChanged)."""
        srv = self.server
        effects = list(srv.effects)
        srv.effects.clear()
        for e in effects:
            self.carry_out(e)

    def _final_flush(self) -> None:
        if self.aof is not None:
            try:
                self.flush_effects()
                self.aof.fsync()
                self.aof.close()
            except OSError as e:  # pragma: no cover - disk trouble at exit
                log.warning("AOF flush at shutdown failed: %s", e)
        for fn in self.on_shutdown:
            fn()

    # --- effects ----------------------------------------------------------------

    def flush_effects(self) -> None:
        """Before anything is sent (a client reply, a bus packet, a cron
        result): run the before-sleep duties, in Redis's order, through the
        node's one manager (frtrio/core/beforesleep.py)."""
        if self.before_sleep.run():
            self.server.propagated.clear()
            self.server.repl.propagated_cleared()

    def _register_duties(self) -> None:
        """The node's duties, each in its before-sleep slot."""
        bs = self.before_sleep
        srv = self.server
        core = srv.cluster
        if core is not None:
            from frtrio.runtime.migration import MigrationShell

            bs.register("cluster_update_state", core.todo_update_state)
            bs.register("cluster_save_config", self._cluster_save_config)
            self.migration = MigrationShell(self)
            bs.register("slot_migration", self.migration.duty)
        bs.register("blocked_clients", self._serve_ready_keys)
        def tracking_broadcast():
            if srv.tracking.prefixes:
                srv.tracking.broadcast()

        bs.register("tracking_broadcast", tracking_broadcast)
        bs.register("aof_flush", self._aof_flush)
        def feed_replicas():
            repl = srv.repl
            if srv.propagated or repl.fed or repl.getack_wanted or repl.woff_pending:
                repl.feed(srv.propagated)  # (else it would do nothing)
            if repl.replicas:
                srv.check_replica_output_limits()

        bs.register("replication_feed", feed_replicas)
        bs.register("free_clients", srv.free_closed)

    def _serve_ready_keys(self) -> None:
        srv = self.server
        if srv.ready_keys and srv.blocking is not None:
            srv.blocking.serve_ready_keys()

    def _aof_flush(self) -> None:
        srv = self.server
        if srv.propagated and self.aof is not None:
            self.aof.feed(srv.propagated)
            if srv.aof_flush_sleep_us and self.aof.buf:
                # DEBUG AOF-FLUSH-SLEEP: the whole node stops before the
                # write, as Redis's usleep in flushAppendOnlyFile (replies
                # wait for this duty, so none leaves before the record)
                self.env.freeze(srv.aof_flush_sleep_us / 1e6)
            self.aof.write()

    def _cluster_save_config(self) -> None:
        """Before-sleep duty: nodes.conf when the cluster core asked for it
        (an OSError stops the node, as Redis's clusterSaveConfigOrDie)."""
        if not self.server.cluster.state.todo_save:
            return  # (nothing asked for: the usual case, before every reply)
        try:
            self._write_cluster_config(self.server.cluster.take_config_to_save())
        except OSError as e:
            log.warning("Fatal: can't update cluster config file: %s", e)
            self.exit_code = 1
            self.shutdown()

    def _write_cluster_config(self, pending: tuple[str, bool] | None) -> None:
        if pending is not None:
            text, fsync = pending
            self.cluster_file.save(text, fsync)
            self.server.cluster.config_saved(text, fsync)

    def carry_out(self, e) -> None:
        """A command's effect that needs no waiting (frtrio/core/effects.py)."""
        if type(e) is SaveClusterConfig:
            core = self.server.cluster
            text = core.state.config_text()
            error = None
            try:
                self.cluster_file.save(text, True)
            except OSError as ex:
                error = ex
            result = core.saveconfig_result(text, error)
            if e.reply is not None:
                e.reply.fill(result)
        elif type(e) is SetMaster:
            self.replication.set_master(e.host, e.port)
        elif type(e) is UnsetMaster:
            self.replication.unset_master(e.drop_replicas)
        elif type(e) is ApplyConfig:
            result = self.apply_config(e.changes)
            if e.reply is not None:
                e.reply.fill(result)
        elif type(e) is AclFile:
            self.acl_file(e)
        elif type(e) is Shutdown:
            self.request_shutdown(e.flags)  # (a failure unblocks its client with an error)
        elif type(e) is PauseChanged:
            # clients held by CLIENT PAUSE look again (runtime/client_conn.py)
            self.pause_changed.set()
        elif type(e) is Crash:
            crash = getattr(self.env, "crash", None)
            if crash is None:  # (the simulator's nodes do not die of it)
                log.warning("DEBUG %s: no crash under this Env", e.kind.upper())
            else:
                crash(self, e)
        elif isinstance(e, PERSISTENCE):
            from frtrio.runtime import persistence

            persistence.carry_out(self, e)
        else:  # pragma: no cover - a new effect type without a handler
            raise TypeError("no handler for effect %r" % (e,))

    def acl_file(self, e) -> None:
        """ACL SAVE / ACL LOAD: the aclfile through the Env's files."""
        from frtrio.commands import acl as _acl
        from frtrio.protocol.reply import OK, ErrorReply

        srv = self.server
        name = srv.config.get("aclfile")
        if e.op == "save":
            try:
                self.env.fs.write_atomic(name, srv.acl.save_text(), fsync=False)
                result = OK
            except OSError as ex:
                log.warning("Writing ACL file for ACL SAVE: %s", ex.strerror or ex)
                result = ErrorReply(_acl.SAVE_ERROR)
        else:
            try:
                errors = _acl.apply_acl_text(srv, self.env.fs.read(name), e.client)
            except OSError as ex:
                errors = _acl.read_error(srv, ex)
            result = OK if errors is None else ErrorReply("ERR " + errors)
        if e.reply is not None:
            e.reply.fill(result)

    def load_acl_at_startup(self) -> None:
        """ACLLoadUsersAtStartup's aclfile part (the command line checked
        the file already: cli.py)."""
        from frtrio.commands import acl as _acl

        srv = self.server
        name = srv.config.get("aclfile")
        if not name:
            return
        try:
            errors = _acl.apply_acl_text(srv, self.env.fs.read(name))
        except OSError as ex:
            errors = _acl.read_error(srv, ex)
        if errors is not None:
            log.warning("Aborting Redis startup because of ACL errors: %s", errors)

    def apply_config(self, changes):
        """Apply, in order, what a CONFIG SET changed that needs this shell.
        When one is refused, every value of that CONFIG SET is put back and
        what was applied already is applied again with its old value; the
        answer is the error. Returns CONFIG SET's reply."""
        from frtrio.commands.config_cmd import config_set_failed, undo_config_set
        from frtrio.config import ConfigError
        from frtrio.protocol.reply import OK

        cfg = self.config
        applied = []
        for name, old, new in changes:
            fn = self.config_appliers.get(name)
            if fn is None:
                continue
            try:
                fn(new)
            except ConfigError as ex:
                log.warning("Failed applying new configuration. Possibly related to new %s "
                            "setting. Restoring previous settings.", name)
                undo_config_set(cfg, changes)
                for done, was in reversed(applied):
                    try:
                        self.config_appliers[done](was)
                    except ConfigError:
                        log.warning("CONFIG SET: could not put %s back to '%s'", done, was)
                return config_set_failed(name, ex.message)
            applied.append((name, old))
        return OK

    # --- cron -------------------------------------------------------------------

    def _quiet_until(self, last_fsync: float, next_cluster: float) -> float | None:
        """When the cron next has work (``env.now()`` time), for a node whose
        ticks until then would find none; None: it may have work on every
        tick. What is due by time: the once-a-second duties, and in cluster
        mode what clusterCron has due (a PING, a PFAIL mark, a link to
        recycle) and its random PING of every tenth tick. Everything else
        the cron does needs clients, replication links, keys with a TTL or a
        background job, which ``Server.cron_idle`` rules out; and what could
        bring work sooner (a connection, a signal, a cluster packet or a
        link that dropped) calls ``cron_poke``."""
        srv = self.server
        if not srv.cron_idle():
            return None
        env = self.env
        q = last_fsync + 1.0
        bus = self.bus
        if bus is not None:
            if not bus.quiet():
                return None
            now_ms = env.unix_ms()
            due = srv.cluster.quiet_until(now_ms)
            if due is None:
                return None
            now = env.now()
            if due - now_ms < (q - now) * 1000:
                q = now + (due - now_ms) / 1000
            q = min(q, next_cluster + (bus.bus.ticks_to_random_ping() - 1) * 0.1)
        return q

    def cron_poke(self) -> None:
        """Something happened that may give the cron work before the tick
        it sleeps to (a connection, a signal, a cluster packet or a link
        that changed): end its sleep if so; it then judges again."""
        t = self._quiet_wake
        if t is None:
            return
        q = self._quiet_until(*self._quiet_ctx)
        if q is None or q < t - 1e-6:
            self._quiet_wake = None
            self.env.wake(self._cron_sleep)

    async def _cron(self) -> None:
        """One ticker for serverCron (every 1/hz s) and, in cluster mode,
        clusterCron (every 100 ms): with the default hz both run on the same
        wake-up, which halves the timer wake-ups of a cluster node.

        A node with no clients and nothing under way sleeps through the
        ticks that would find no work (``_quiet_until``), as if they had
        run: they stay on the same grid of times, and clusterCron's tick
        count moves on (its random PING stays once a second). Every duty
        still runs on the tick it would have run on in Redis's loop."""
        srv = self.server
        env = self.env
        last_fsync = env.now()
        next_server = env.now()
        next_cluster = env.now() + 0.1
        can_sleep_long = getattr(env, "can_wake", False)
        while True:
            hz = max(1, min(500, int(self.config.get("hz") or 10)))
            period = 1.0 / hz
            next_server += period
            cluster = self.bus is not None
            wake = min(next_server, next_cluster) if cluster else next_server
            q = self._quiet_until(last_fsync, next_cluster) if can_sleep_long else None
            if q is not None and q > wake + 1e-6:
                wake = await self._sleep_quietly(q, next_server, period, next_cluster if cluster else None,
                                                 (last_fsync, next_cluster))
                n = _ticks_to(wake, next_server, period)
                next_server += n * period
                srv.cron_skipped(n, hz)
                if cluster:
                    n = _ticks_to(wake, next_cluster, 0.1)
                    next_cluster += n * 0.1
                    self.bus.bus.skip_ticks(n)
            else:
                await env.sleep_until(wake)
            self.cron_wakeups += 1
            if srv.cron_paused:  # DEBUG PAUSE-CRON 1
                continue
            if (srv.shutdown_asap or srv.shutdown_deadline_ms) and self.shutdown_tick():
                return  # a signal's shutdown, or replicas caught up
            now = env.now()
            srv.now_ms = env.unix_ms()
            server_due = now >= next_server - 1e-9
            if cluster and now >= next_cluster - 1e-9:
                next_cluster = max(next_cluster + 0.1, now)
                self._cluster_cron(flush=not server_due)
            if not server_due:
                next_server -= 1.0 / hz  # this wake-up was only for the cluster cron
                continue
            if next_server < now - 1.0:
                next_server = now  # fell far behind (a pause): do not replay ticks
            srv.cron_tick(hz)
            if srv.active_expire_enabled and srv.replica_keys_with_expire:
                srv.stats["expired_keys"] += srv.expire_replica_keys()
            if (srv.active_expire_enabled and srv.repl.masterhost is None
                    and not srv.paused_now()):
                t0 = srv.clock_ns()
                for db in srv.dbs:
                    if db.expires:
                        db.active_expire(srv.now_ms)  # (on_expire counts each key)
                if srv.latency_ms:  # Redis's activeExpireCycle latency event
                    srv.latency_sample("expire-cycle", (srv.clock_ns() - t0) // 1000000)
            if srv.lazyfree.jobs:  # UNLINK / FLUSHALL ASYNC, background trims
                srv.lazyfree.drain()
            srv.pack_small_values()
            if cluster and srv.cluster.migrations.trim_active:
                # atomic slot migration's active trim (25% of a cron period)
                srv.cluster.migrations.active_trim_cycle(hz)
            self._client_timeouts()
            srv.resize_client_buffers(hz)  # (and client memory: numclients/hz a tick)
            if srv.cev is not None:  # (Redis's clientsCron recounts every client)
                srv.cev.refresh_all()
                if srv.cev.total >= srv.cev.limit:
                    srv.cev.evict()
            if srv.evict_running:
                srv.evict_cron()  # (Redis's eviction time event)
            if srv.tracking.table:  # (CONFIG SET tracking-table-max-keys takes effect here)
                srv.tracking.limit(int(self.config.get("tracking-table-max-keys") or 0))
            if srv.repl.failover_state != "no-failover":
                self.replication.failover_tick()
            self.flush_effects()
            if env.now() - last_fsync >= 1.0 - 1e-6:
                last_fsync = next_server  # (the tick's own time: every hz-th tick, no drift)
                if self.aof is not None:
                    self.aof.everysec()
                self.replication.cron()
                for fn in self.cron_hooks:
                    fn()

    async def _sleep_quietly(self, q: float, next_server: float, period: float,
                             next_cluster: float | None, ctx: tuple) -> float:
        """Sleep to the first tick (of either grid) at or after ``q``, or,
        when ``cron_poke`` ends the sleep early, to the first tick at or
        after the time then due. Returns the tick's time."""
        env = self.env
        while True:
            t = next_server + _ticks_to(q, next_server, period) * period
            if next_cluster is not None:
                t = min(t, next_cluster + _ticks_to(q, next_cluster, 0.1) * 0.1)
            self._quiet_wake = t
            self._quiet_ctx = ctx
            try:
                await env.sleep_until(t, self._cron_sleep)
            finally:
                self._quiet_wake = None
            now = env.now()
            if now >= t - 1e-6:
                return t
            q2 = self._quiet_until(*ctx)  # (poked)
            q = now if q2 is None else max(now, q2)

    def _client_timeouts(self) -> None:
        srv = self.server
        t = int(self.config.get("timeout") or 0)
        if not t:
            return
        limit = srv.now_ms - t * 1000
        for c in list(srv.clients.values()):
            if (
                c.last_interaction_ms < limit
                and c.blocked is None
                and not c.in_pubsub
                and not c.flags & F.MASTER
            ):
                srv.kill_client(c)

    # --- connections ------------------------------------------------------------

    async def _handle_conn(self, stream, peer: str, local: str) -> None:
        srv = self.server
        srv.now_ms = self.env.unix_ms()
        if len(srv.clients) >= int(self.config.get("maxclients")):
            srv.stats["rejected_connections"] += 1
            await _send_and_close(stream, b"-ERR max number of clients reached\r\n")
            return
        if self._protected_denied(peer):
            srv.stats["rejected_connections"] += 1
            await _send_and_close(stream, _DENIED)
            return
        c = srv.new_client(peer, local)
        if self._quiet_wake is not None:
            self.cron_poke()  # (a client: the cron ticks again)
        conn = ClientConn(self, c, stream)
        try:
            await conn.run()
        except Exception:  # noqa: BLE001 - a bug ends this connection, never the node
            srv.note_internal_error("on the connection of client %s (connection closed)" % peer)
        finally:
            srv.free_client(c)
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass

    def _remove_unix_socket(self) -> None:
        path = self.config.get("unixsocket")
        log.info("Removing the unix socket file.")
        try:
            self.env.fs.remove(path)
        except OSError as e:
            log.warning("Error removing the unix socket file: %s", e.strerror)

    def _protected_denied(self, peer: str) -> bool:
        cfg = self.config
        if cfg.get("protected-mode") != "yes" or cfg.get("requirepass"):
            return False
        if peer.startswith("/"):
            return False  # a unix socket client is local
        # (Redis 7.0 applies it whatever `bind` says: --bind 0.0.0.0 is denied too)
        host = peer.rsplit(":", 1)[0]
        return not (host.startswith("127.") or host in ("::1", "[::1]", "localhost"))


_DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and "
    b"no password is set for the default user. In this mode connections are only accepted "
    b"from the loopback interface. If you want to connect from external computers to Redis "
    b"you may adopt one of the following solutions: 1) Just disable protected mode sending "
    b"the command 'CONFIG SET protected-mode no' from the loopback interface by connecting "
    b"to Redis from the same host the server is running, however MAKE SURE Redis is not "
    b"publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change "
    b"permanent. 2) Alternatively you can just disable the protected mode by editing the "
    b"Redis configuration file, and setting the protected mode option to 'no', and then "
    b"restarting the server. 3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. 4) Setup a an authentication password for the "
    b"default user. NOTE: You only need to do one of the above things in order for the server "
    b"to start accepting connections from the outside.\r\n"
)


async def _send_and_close(stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    with trio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
