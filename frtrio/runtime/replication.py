"""Replication shells (Trio): the bytes side of frtrio/replication/.

* On a master, a replica is an ordinary client connection that sent
  PSYNC/SYNC: its connection task runs :func:`serve_replica` until the link
  ends (one task per attached replica). For a full sync it produces the
  point-in-time snapshot a few keys per scheduler turn (keepalive newlines
  once a second meanwhile), checksums the payload in a worker thread, sends
  it disk-style (``$len``), then the buffered stream.
* On a replica, one master-link task (:meth:`ReplicationShell._link`) in
  the node's nursery under its own cancel scope: REPLICAOF NO ONE, a new
  master or shutdown cancel exactly that scope.
"""

from __future__ import annotations

import logging

import trio

from frtrio.core.client import F
from frtrio.persist.rdbfile import RdbLoadError, load_rdb, load_rdb_steps
from frtrio.protocol.parser import RequestParser
from frtrio.replication import handshake as hs
from frtrio.replication.core import FAILOVER_IN_PROGRESS, ONLINE, SEND_BULK, WAIT_BGSAVE
from frtrio.replication.state import encode_command
from frtrio.store import crc64 as _crc64

log = logging.getLogger("frtrio")

STEP_SECONDS = 0.004  # target work per snapshot step between scheduler turns
CRC_CHUNK = 32768  # payload bytes checksummed per scheduler turn


class LinkError(Exception):
    def __init__(self, msg: str, retry_now: bool = False, cache: bool = True,
                 at_s: int | None = None):
        super().__init__(msg)
        self.retry_now = retry_now
        self.cache = cache
        self.at_s = at_s  # when the link was lost, if not now (CLIENT KILL)


# --- master side --------------------------------------------------------------


async def serve_replica(conn, eff) -> None:
    """Run a replica link on this client connection until it ends."""
    node = conn.node
    srv = node.server
    repl = srv.repl
    r = eff.replica
    c = conn.c
    stream = conn.stream
    wake = [trio.Event()]

    def _wake():
        wake[0].set()

    r.wake = _wake
    snap = eff.snapshot
    srv.stats.setdefault("total_net_repl_output_bytes", 0)

    async def send(data: bytes) -> None:
        async with conn.send_lock:
            await stream.send_all(data)
        c.tot_net_out += len(data)
        srv.stats["total_net_repl_output_bytes"] = srv.stats.get(
            "total_net_repl_output_bytes", 0) + len(data)

    async def reader(cancel):
        parser = conn.parser
        cmds: list = []
        while True:
            parser.parse(cmds)
            if cmds:
                srv.now_ms = node.env.unix_ms()
                for argv in cmds:
                    srv.execute(c, argv)
                c.out.clear()
                c.out_bytes = 0
                cmds.clear()
                node.flush_effects()
            data = await stream.receive_some(65536)
            if not data:
                cancel.cancel()
                return
            r.ack_time_ms = node.env.unix_ms()  # a bare newline counts too
            parser.feed(data)

    try:
        async with trio.open_nursery() as n:
            n.start_soon(reader, n.cancel_scope)
            if eff.delayed:
                await _diskless_delay(node, r, send)
                from frtrio.commands.replication import start_snapshot

                srv.now_ms = node.env.unix_ms()
                snap = start_snapshot(srv, c, r, True)
            await conn._flush()  # +FULLRESYNC / +CONTINUE
            if snap is not None and eff.diskless:
                # EOF framing: the payload streams while it is produced (the
                # stream then waits for the replica's first ACK, which it
                # sends once it found the mark and loaded)
                t0 = node.env.now()
                keys = snap.keys_total
                mark = node.env.random_hex(40, "eofmark").encode()
                r.hold_until_ack = True
                r.state = SEND_BULK
                await send(b"$EOF:" + mark + b"\r\n")
                size = await _stream_payload(node, snap, send)
                await send(mark)
                srv.end_snapshot(snap)
                snap = None
                log.info("Synchronization with replica %s:%d: %d keys, %d bytes RDB streamed in "
                         "%.3f s", r.ip, r.port, keys, size, node.env.now() - t0)
                r.state = ONLINE
                r.ack_time_ms = node.env.unix_ms()
                repl.refresh_good(node.config, r.ack_time_ms)
                log.info("Synchronization with replica %s:%d succeeded", r.ip, r.port)
            elif snap is not None:
                t0 = node.env.now()
                keys = snap.keys_total
                payload = await _produce(node, snap, send)
                srv.end_snapshot(snap)
                snap = None
                r.state = SEND_BULK
                log.info("Synchronization with replica %s:%d: %d keys, %d bytes RDB produced in "
                         "%.3f s", r.ip, r.port, keys, len(payload), node.env.now() - t0)
                await send(b"$%d\r\n" % len(payload))
                await send(payload)
                del payload
                r.state = ONLINE
                r.ack_time_ms = node.env.unix_ms()
                repl.refresh_good(node.config, r.ack_time_ms)
                log.info("Synchronization with replica %s:%d succeeded", r.ip, r.port)
            elif eff.data:
                await send(eff.data)
            while True:
                if c.flags & F.CLOSE_ASAP:  # killed (CLIENT KILL, output buffer limit)
                    return
                if r.buf and not r.hold_until_ack:
                    await send(r.take())
                    continue
                ev = wake[0]
                await ev.wait()
                if wake[0] is ev:
                    wake[0] = trio.Event()
    finally:
        if snap is not None:
            srv.end_snapshot(snap)
        repl.detach(r, node.env.unix_ms())
        repl.refresh_good(node.config, node.env.unix_ms())
        log.info("Connection with replica %s:%d lost.", r.ip, r.port)


async def _diskless_delay(node, r, send) -> None:
    """repl-diskless-sync-delay: wait (a newline a second) until this
    replica has waited that long, or repl-diskless-sync-max-replicas
    replicas wait for a diskless sync, so one fork point serves a batch as
    in Redis (here each replica still gets its own snapshot)."""
    srv = node.server
    cfg = node.config
    last_ka = node.env.now()
    while True:
        delay_ms = int(cfg.get("repl-diskless-sync-delay")) * 1000
        most = int(cfg.get("repl-diskless-sync-max-replicas"))
        waiting = sum(1 for x in srv.repl.replicas.values()
                      if x.state == WAIT_BGSAVE and not x.buffering)
        now = node.env.unix_ms()
        if now - r.since_ms >= delay_ms or (most > 0 and waiting >= most):
            return
        if node.env.now() - last_ka >= 1.0:
            last_ka = node.env.now()
            await send(b"\n")
        await trio.sleep(0.1)


async def _stream_payload(node, snap, send) -> int:
    """Produce and send the snapshot at once (diskless), a few keys per
    scheduler turn, with its checksum at the end; ``rdb-key-save-delay``
    (µs a key, a test hook) slows it down. Returns the payload size."""
    env = node.env
    cfg = node.config
    if _crc64._T64 is None:
        await env.offload(_crc64._t64)
    checksum = cfg.get("rdbchecksum") == "yes"
    crc = size = 0
    budget = 256
    while True:
        delay = cfg.get_int("rdb-key-save-delay")
        t = env.work_clock()
        done = snap.step(1 if delay > 0 else budget)
        dt = env.work_clock() - t
        if dt < STEP_SECONDS / 2:
            budget = min(budget * 2, 1 << 16)
        elif dt > STEP_SECONDS and budget > 16:
            budget //= 2
        data = snap.take()
        if data:
            if checksum:
                crc = _crc64.crc64(data, crc)
            size += len(data)
            await send(data)
        if done:
            break
        await trio.sleep(delay / 1e6 if delay > 0 else 0)
    await send(crc.to_bytes(8, "little"))
    return size + 8


async def _produce(node, snap, send) -> bytes:
    """The snapshot, a few keys per scheduler turn; newlines once a second."""
    env = node.env
    budget = 256
    last_ka = env.now()
    while True:
        t = env.work_clock()
        done = snap.step(budget)
        dt = env.work_clock() - t
        if dt < STEP_SECONDS / 2:
            budget = min(budget * 2, 1 << 16)
        elif dt > STEP_SECONDS and budget > 16:
            budget //= 2
        if done:
            break
        if env.now() - last_ka >= 1.0:
            last_ka = env.now()
            await send(b"\n")
        await trio.sleep(0)
    parts = snap.payload_parts()
    if _crc64._T64 is None:
        # the CRC's lookup tables, built once per process, off the event loop
        await env.offload(_crc64._t64)
    checksum = node.config.get("rdbchecksum") == "yes"
    out = []
    crc = 0
    chunk: list = []
    size = 0
    for p in parts:
        chunk.append(p)
        size += len(p)
        if size >= CRC_CHUNK:
            data = b"".join(chunk)
            if checksum:
                crc = _crc64.crc64(data, crc)
            out.append(data)
            chunk = []
            size = 0
            if env.now() - last_ka >= 1.0:
                last_ka = env.now()
                await send(b"\n")
            await trio.sleep(0)
    data = b"".join(chunk)
    if checksum:
        crc = _crc64.crc64(data, crc)
    out.append(data)
    out.append(crc.to_bytes(8, "little"))
    return b"".join(out)


# --- replica side --------------------------------------------------------------


class _Lines:
    """Buffered reads from the master: lines (CR stripped) and raw bytes."""

    def __init__(self, stream, timeout: float, on_io):
        self.stream = stream
        self.buf = bytearray()
        self.timeout = timeout
        self.on_io = on_io

    async def _more(self, what: str) -> None:
        with trio.move_on_after(self.timeout) as cs:
            data = await self.stream.receive_some(65536)
        if cs.cancelled_caught:
            raise LinkError(what)
        if not data:
            raise LinkError("Master closed the connection (%s)" % what)
        self.on_io(len(data))
        self.buf += data

    async def line(self, what: str) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[: i + 1]
                return ln[:-1] if ln.endswith(b"\r") else ln
            await self._more(what)

    async def exactly(self, n: int, what: str) -> bytes:
        while len(self.buf) < n:
            await self._more(what)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def take_all(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


class ReplicationShell:
    def __init__(self, node):
        self.node = node
        self.scope: trio.CancelScope | None = None
        self.gen = 0
        self.send_lock = trio.Lock()
        self.target: tuple[str, int] | None = None  # where the link task points

    @property
    def repl(self):
        return self.node.server.repl

    def start(self) -> None:
        """At startup: the replicaof directive."""
        v = self.node.config.get("replicaof")
        if v:
            host, port = v.rsplit(" ", 1)
            from frtrio.commands.replication import set_master

            srv = self.node.server
            set_master(srv, host, int(port), effect=False)
            self.set_master(host, int(port))

    def set_master(self, host: str, port: int) -> None:
        self.target = (host, port)
        if self.scope is not None:
            self.scope.cancel()
        self.gen += 1
        self.scope = trio.CancelScope()
        self.node.nursery.start_soon(self._link, host, port, self.gen, self.scope)
        for fn in self.node.on_role_change:
            fn()

    def unset_master(self, drop_replicas: bool = True) -> None:
        self.target = None
        if self.scope is not None:
            self.scope.cancel()
            self.scope = None
        self.gen += 1
        if drop_replicas:
            self.drop_replicas()
        for fn in self.node.on_role_change:
            fn()

    def failover_tick(self) -> None:
        """Every server cron tick while a standalone FAILOVER runs (Redis
        runs its replication cron at 10 Hz then): the pure step decides,
        this carries out its effects (the switch to the target, an abort)."""
        from frtrio.commands.replication import update_failover

        srv = self.node.server
        update_failover(srv)
        self._carry_out()

    def _carry_out(self) -> None:
        srv = self.node.server
        while srv.effects:
            effects = list(srv.effects)
            srv.effects.clear()
            for e in effects:
                self.node.carry_out(e)

    def _failover_psync_result(self, accepted: bool) -> None:
        """The old master's PSYNC ... FAILOVER was answered: on CONTINUE or
        FULLRESYNC the failover is done and writes resume; anything else
        aborts it (the old master turns back into a master)."""
        from frtrio.commands.replication import abort_failover, clear_failover

        srv = self.node.server
        if accepted:
            clear_failover(srv)
        else:
            abort_failover(srv, "Failover target rejected psync request")
        self._carry_out()

    def reconcile_cluster(self) -> None:
        """Cluster mode: replication follows the cluster's view of myself
        (clusterCron and replicationSetMaster/UnsetMaster in Redis): a
        replica replicates its master's announced address; a promoted node
        stops replicating (shifting its replication id)."""
        srv = self.node.server
        core = srv.cluster
        if core is None:
            return
        repl = self.repl
        # what the election reads (cluster/election.py): link state and data age
        core.repl_link_up = repl.link_up
        core.repl_last_io_ms = repl.last_io_ms
        core.repl_down_since_ms = repl.down_since_s * 1000
        me = core.state.myself
        want = None
        if me.is_replica and me.master_id:
            m = core.state.nodes.get(me.master_id)
            if m is not None and m.ip and m.port:
                want = (m.ip, m.port)
        if want == self.target:
            return
        cur = (repl.masterhost, repl.masterport) if repl.masterhost is not None else None
        if want is None:
            if cur is not None:
                log.info("%s", repl.unset_master(self.node.env.random_hex(40, "replid"),
                                                 self.node.env.unix_ms()))
                log.info("MASTER MODE enabled (cluster promotion)")
            self.unset_master()
            return
        if cur != want:
            from frtrio.commands.replication import set_master

            set_master(srv, want[0], want[1], effect=False)
        self.set_master(*want)

    def drop_replicas(self) -> None:
        srv = self.node.server
        for r in list(self.repl.replicas.values()):
            srv.kill_client(r.client)

    def cron(self) -> None:
        """Once a second."""
        repl = self.repl
        node = self.node
        srv = node.server
        cfg = node.config
        now = node.env.unix_ms()
        core = srv.cluster
        timed_failover = repl.failover_end_ms and srv.pause_end_ms > srv.now_ms
        if (core is None or not core.manual_failover_paused()) and not timed_failover:
            # (no PING while paused for a manual failover or a FAILOVER with
            # a timeout: the offset freezes)
            repl.cron_ping(int(cfg.get("repl-ping-replica-period")))
        for r in repl.timed_out(cfg, now):
            log.warning("Disconnecting timedout replica (streaming sync): %s:%d", r.ip, r.port)
            srv.kill_client(r.client)
        if repl.backlog_expired(cfg, now):
            repl.free_backlog_new_id(node.env.random_hex(40, "replid"))
            log.info("Replication backlog freed after %s seconds without connected replicas.",
                     cfg.get("repl-backlog-ttl"))
        repl.refresh_good(cfg, now)
        if repl.waiters:
            repl.check_waiters()

    # --- the master link ----------------------------------------------------

    async def _link(self, host: str, port: int, gen: int, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                retry_now = False
                try:
                    await self._attempt(host, port, gen)
                except LinkError as e:
                    log.warning("%s", e)
                    retry_now = e.retry_now
                    if self.gen == gen:
                        at = e.at_s if e.at_s is not None else self.node.env.unix_ms() // 1000
                        self.repl.link_lost(at, e.cache)
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as e:
                    log.warning("Error condition on socket for SYNC: %s", e)
                    if self.gen == gen:
                        self.repl.link_lost(self.node.env.unix_ms() // 1000, True)
                except RdbLoadError as e:
                    log.warning("Failed trying to load the MASTER synchronization DB from "
                                "socket: %s", e)
                    if self.gen == gen:
                        self.repl.link_lost(self.node.env.unix_ms() // 1000, False)
                if not retry_now:
                    await trio.sleep(1.0)

    async def _attempt(self, host: str, port: int, gen: int) -> None:
        node = self.node
        srv = node.server
        repl = self.repl
        cfg = node.config
        env = node.env
        timeout = float(cfg.get("repl-timeout"))
        repl.repl_state = hs.CONNECTING
        log.info("Connecting to MASTER %s:%d", host, port)
        with trio.fail_after(timeout):
            # (bind-source-addr: the master sees the replica at that address)
            stream = await env.connect(host, port, cfg.get("bind-source-addr") or None)
        log.info("MASTER <-> REPLICA sync started")
        mc = None
        try:
            def on_io(n):
                repl.last_io_ms = env.unix_ms()
                srv.stats["total_net_repl_input_bytes"] = srv.stats.get(
                    "total_net_repl_input_bytes", 0) + n

            rd = _Lines(stream, timeout, on_io)
            lport = int(cfg.get("replica-announce-port") or 0) or int(cfg.get("port"))
            h = hs.Handshake(lport, cfg.get("replica-announce-ip") or None,
                             cfg.get("masteruser") or None, cfg.get("masterauth") or None,
                             repl.cached, failover=repl.failover_state == FAILOVER_IN_PROGRESS)
            await stream.send_all(h.connected().data)
            repl.repl_state = h.state
            step = None
            while True:
                line = await rd.line("Timeout connecting to the MASTER...")
                asked_psync = h.state == hs.RECEIVE_PSYNC_REPLY
                step = h.on_line(line)
                repl.repl_state = h.state
                if step is None:
                    continue
                if isinstance(step, hs.Send):
                    await stream.send_all(step.data)
                    if h.state == hs.RECEIVE_SYNC_REPLY:
                        step = hs.FullSync("", -1, psync=False)
                        break
                    continue
                if isinstance(step, hs.Fail):
                    if h.failover and asked_psync:
                        self._failover_psync_result(False)
                    raise LinkError(step.log)
                break
            if h.failover:
                self._failover_psync_result(True)
            if isinstance(step, hs.FullSync):
                log.info("Full resync from master: %s:%d", step.replid, step.offset)
                await self._full_sync(stream, rd, step)
            else:
                log.info("Successful partial resynchronization with master.")
                cached_db = repl.master_db
                if repl.partial_done(step.new_replid, int(cfg.get("repl-backlog-size"))):
                    self.drop_replicas()
                repl.master_db = cached_db
                log.info("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.")
            repl.last_io_ms = env.unix_ms()
            mc = srv.new_client("%s:%d" % (host, port), "")
            mc.flags |= F.MASTER
            srv.set_client_user(mc, srv.acl.superuser)  # Redis's NULL user: may do everything
            mc.authenticated = True
            mc.reply_mode = 1
            mc.select(repl.master_db)
            notify = trio.Event()
            killed_at: list = []

            def _kill():
                # the link is lost when the client is killed (Redis frees the
                # master client at once), not when this task next runs: a
                # DEBUG SLEEP in the same EXEC must count as time without data
                if mc.flags & F.CLOSE_ASAP:
                    if not killed_at:
                        killed_at.append(env.unix_ms() // 1000)
                    notify.set()

            mc.notify = _kill
            failure: list = []

            async def guarded(fn, *args):
                try:
                    await fn(*args)
                except (LinkError, OSError, trio.BrokenResourceError,
                        trio.ClosedResourceError) as e:
                    failure.append(e)
                    n.cancel_scope.cancel()

            async with trio.open_nursery() as n:
                n.start_soon(guarded, self._acks, stream)
                n.start_soon(guarded, self._stream, stream, rd, mc, timeout)
                await notify.wait()  # CLIENT KILL TYPE master
                n.cancel_scope.cancel()
            if failure:
                e = failure[0]
                if isinstance(e, LinkError):
                    if killed_at and e.at_s is None:
                        # (the stream task met the kill first: the link was
                        # still lost at the kill, not when that task ran)
                        e.at_s = killed_at[0]
                    raise e
                raise LinkError("Connection with master lost: %s" % e, retry_now=True)
            log.info("Connection with master lost (client killed).")
            raise LinkError("Caching the disconnected master state.", retry_now=True,
                            at_s=killed_at[0] if killed_at else None)
        finally:
            if mc is not None:
                srv.free_client(mc)
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    async def _send(self, stream, data: bytes) -> None:
        async with self.send_lock:
            await stream.send_all(data)

    async def _acks(self, stream) -> None:
        repl = self.repl
        while True:
            await trio.sleep(1.0)
            if repl.master_psync and repl.master_reploff >= 0:
                await self._send(stream, encode_command(
                    [b"REPLCONF", b"ACK", b"%d" % repl.master_reploff]))

    async def _full_sync(self, stream, rd: _Lines, step: hs.FullSync) -> None:
        node = self.node
        srv = node.server
        repl = self.repl
        cfg = node.config
        repl.repl_state = hs.TRANSFER
        repl.transfer_size = -1
        repl.transfer_read = 0
        while True:
            line = await rd.line("Timeout receiving bulk data from MASTER... If the problem "
                                 "persists try to set the 'repl-timeout' parameter in "
                                 "redis.conf to a larger value.")
            hdr = hs.bulk_header(line)
            if hdr is None:
                continue
            if isinstance(hdr, hs.Fail):
                raise LinkError(hdr.log)
            break
        what = "Timeout receiving bulk data from MASTER..."
        if isinstance(hdr, hs.BulkLen):
            repl.transfer_size = hdr.length
            log.info("MASTER <-> REPLICA sync: receiving %d bytes from master to disk",
                     hdr.length)
            chunks = []
            left = hdr.length
            while left:
                if not rd.buf:
                    await rd._more(what)
                k = min(left, len(rd.buf))
                chunks.append(bytes(rd.buf[:k]))
                del rd.buf[:k]
                left -= k
                repl.transfer_read += k
            data = b"".join(chunks)
            eof = False
        else:
            repl.transfer_size = 0
            log.info("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to "
                     "disk")
            mark = hdr.mark
            acc = bytearray()
            # swapdb: the old dataset is served until the new one is in
            # (Redis's async loading; frtrio parses the payload once whole)
            srv.async_loading = cfg.get("repl-diskless-load") == "swapdb"
            try:
                while True:
                    acc += rd.buf
                    rd.buf.clear()
                    repl.transfer_read = len(acc)
                    if len(acc) >= 40 and acc[-40:] == mark:
                        break
                    await rd._more(what)
            except BaseException:
                srv.async_loading = False
                raise
            data = bytes(acc[:-40])
            eof = True
        if eof and cfg.get("repl-diskless-load") == "swapdb":
            # swapdb: the old dataset is given up only for a payload that
            # loads; a broken one leaves it in place (tried on a scratch core)
            try:
                self._try_load(data)
            finally:
                srv.async_loading = False
        log.info("MASTER <-> REPLICA sync: Flushing old data")
        if srv.cluster is not None:
            # the dataset is replaced: its trim jobs have nothing left to do
            srv.cluster.migrations.cancel_trim_jobs()
        self.drop_replicas()
        repl.state.free_backlog()
        for db in srv.dbs:
            db.clear()
        if srv.scripting is not None:  # Redis's emptyData empties the libraries too
            srv.scripting.flush_functions()
        log.info("MASTER <-> REPLICA sync: Loading DB in memory")
        srv.now_ms = node.env.unix_ms()
        aux: dict = {}
        try:
            # (a replica keeps keys that are already expired: its master's
            # DELs remove them)
            await self._load_payload(data, aux)
        except (RdbLoadError, trio.Cancelled):
            for db in srv.dbs:
                db.clear()
            raise
        replid = step.replid
        offset = step.offset
        if not replid:
            replid, offset = repl.state.replid, 0
            repl.master_psync = False
        else:
            repl.master_psync = step.psync
        repl.full_sync_done(replid, offset, int(cfg.get("repl-backlog-size")))
        aof = node.aof
        if aof is not None and aof.enabled:
            # Redis's restartAOFAfterSYNC: the AOF starts anew from the loaded
            # dataset (else a restart would replay the old history plus the
            # stream, without what the payload brought)
            try:
                aof.rewrite()
            except OSError as e:
                log.warning("Failed to rewrite the AOF after a full sync: %s", e)
        try:
            repl.master_db = int(aux.get(b"repl-stream-db", b"0"))
        except ValueError:
            repl.master_db = 0
        log.info("MASTER <-> REPLICA sync: Finished with success")
        if eof and repl.master_psync:
            await self._send(stream, encode_command([b"REPLCONF", b"ACK", b"%d" % offset]))

    async def _load_payload(self, data: bytes, aux: dict) -> None:
        """Load a full-sync payload, in the 'loading' state as Redis does:
        every loading-process-events-interval-bytes of payload the node
        serves what is pending (clients are answered -LOADING, the bus goes
        on and announces replication offset 0), and ``key-load-delay`` (a
        test hook: microseconds per key; -N: one in N keys waits 1 us)
        slows the load down. A payload shorter than the interval loads in
        one go, as before."""
        from frtrio.runtime.persistence import load_steps_serving

        node = self.node
        srv = node.server
        cfg = node.config
        delay = cfg.get_int("key-load-delay")
        interval = max(1, cfg.get_int("loading-process-events-interval-bytes"))
        if not delay and len(data) <= interval:
            load_rdb(data, srv, cfg, aux=aux, keep_expired=True)
            return
        steps = load_rdb_steps(data, srv, cfg, aux=aux, keep_expired=True)
        await load_steps_serving(node, steps, len(data))

    def _try_load(self, data: bytes) -> None:
        """Load a payload into a throwaway core; RdbLoadError if it fails."""
        from frtrio.config import Config
        from frtrio.core.engine import Server

        srv = self.node.server
        cfg = Config()
        cfg.values = dict(self.node.config.values)
        scratch = Server(cfg, self.node.env.rng("scratch-load"), ndb=len(srv.dbs))
        scratch.now_ms = srv.now_ms
        try:
            load_rdb(data, scratch, cfg, keep_expired=True)
        except RdbLoadError:
            log.warning("MASTER <-> REPLICA sync: the payload does not load; the previous "
                        "dataset stays (repl-diskless-load swapdb)")
            raise

    async def _wait_trim(self, argv) -> None:
        """Replica protection (§6.7): my master writes to a slot I am still
        trimming (it was migrated away and back quickly); its stream waits
        until the trim is done, else the trim would delete the new keys."""
        mig = self.node.server.cluster.migrations
        log.info("Blocking master client until trim job is done")
        while mig.trim_blocks(argv):
            await trio.sleep(0.01)
        self.node.server.now_ms = self.node.env.unix_ms()
        log.info("Unblocking master client after active trim is completed")

    def _took(self, data: bytes, parser) -> None:
        """Bytes read from the master: counted as read (slave_read_repl_offset)
        and queued for the parser."""
        if not data:
            raise LinkError("Connection with master lost.", retry_now=True)
        srv = self.node.server
        self.repl.last_io_ms = self.node.env.unix_ms()
        self.repl.master_read_reploff += len(data)
        srv.stats["total_net_repl_input_bytes"] = srv.stats.get(
            "total_net_repl_input_bytes", 0) + len(data)
        parser.feed(data)

    async def _hold_while_paused(self, stream, parser, mc, argv, timeout: float) -> None:
        """CLIENT PAUSE holds the master's next command (Redis postpones the
        master client like any other: a replica paused for writes does not
        apply them, and its applied offset stays). What the master sends
        meanwhile is still read, so slave_read_repl_offset moves on."""
        node = self.node
        srv = node.server
        env = node.env
        failed: list = []

        async def read_meanwhile(scope) -> None:
            try:
                while True:
                    with trio.move_on_after(timeout) as cs:
                        data = await stream.receive_some(65536)
                    if cs.cancelled_caught:
                        raise LinkError("MASTER timeout: no data nor PING received...",
                                        retry_now=True)
                    self._took(data, parser)
            except LinkError as e:
                failed.append(e)
                scope.cancel()

        srv.postponed_clients += 1  # (INFO blocked_clients, as Redis counts it)
        try:
            async with trio.open_nursery() as n:
                n.start_soon(read_meanwhile, n.cancel_scope)
                while True:
                    srv.now_ms = env.unix_ms()
                    if not srv.pause_holds(mc, argv) or mc.flags & F.CLOSE_ASAP:
                        break
                    left = max(0.0, (srv.pause_end_ms - srv.now_ms) / 1000.0)
                    with trio.move_on_after(left + 0.001):
                        await node.pause_changed.wait()
                n.cancel_scope.cancel()
        finally:
            srv.postponed_clients -= 1
        if failed:
            raise failed[0]
        if mc.flags & F.CLOSE_ASAP:
            raise LinkError("Connection with master lost (client killed).")
        srv.now_ms = env.unix_ms()

    async def _stream(self, stream, rd: _Lines, mc, timeout: float) -> None:
        node = self.node
        srv = node.server
        repl = self.repl
        env = node.env
        parser = RequestParser(1 << 40)
        leftover = rd.take_all()
        if leftover:
            repl.master_read_reploff += len(leftover)
            parser.feed(leftover)
        cmds: list = []
        # the bytes of a MULTI block not yet applied: like Redis, the applied
        # offset (ACKs, the cached master for PSYNC) and what goes on to our
        # backlog and sub-replicas move past a transaction only at its EXEC,
        # so a link lost inside one resumes at its MULTI
        pending: list = []
        while True:
            parser.parse(cmds)
            if cmds:
                srv.now_ms = env.unix_ms()
                for argv in cmds:
                    if mc.flags & F.CLOSE_ASAP:
                        # killed (CLIENT KILL TYPE master): Redis frees the
                        # master client at once, so what it had not read yet
                        # is never applied, even after a DEBUG SLEEP that ran
                        # in the same EXEC before this task could notice
                        raise LinkError("Connection with master lost (client killed).")
                    raw = encode_command(argv)
                    if (len(argv) >= 2 and argv[0].lower() == b"replconf"
                            and argv[1].lower() == b"getack"):
                        if repl.master_psync:
                            await self._send(stream, encode_command(
                                [b"REPLCONF", b"ACK", b"%d" % repl.master_reploff]))
                    else:
                        if srv.cluster is not None and srv.cluster.migrations.trim_blocks(argv):
                            await self._wait_trim(argv)
                        if srv.pause_end_ms and srv.pause_holds(mc, argv):
                            await self._hold_while_paused(stream, parser, mc, argv, timeout)
                        srv.execute(mc, argv)
                        mc.out.clear()
                        mc.out_bytes = 0
                    if mc.multi is not None:
                        pending.append(raw)
                        continue
                    if pending:
                        pending.append(raw)
                        raw = b"".join(pending)
                        pending.clear()
                    repl.master_reploff += len(raw)
                    repl.state.append(raw)
                    repl.broadcast(raw)
                    repl.master_db = mc.dbid
                cmds.clear()
                node.flush_effects()
            with trio.move_on_after(timeout) as cs:
                data = await stream.receive_some(65536)
            if cs.cancelled_caught:
                raise LinkError("MASTER timeout: no data nor PING received...", retry_now=True)
            self._took(data, parser)
