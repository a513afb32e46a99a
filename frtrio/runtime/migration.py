"""Atomic slot migration, the Trio shell (the core: frtrio/cluster/migration.py).

Destination: one Trio task per import, started in the node's nursery under
its own cancel scope (``MigrationShell.scopes``). Its children are the main
channel reader and the ACK sender; the snapshot is read on the RDB channel
by the task itself. Whatever ends the task (the core's ``StopTask`` for a
cancel or a failure, a lost connection, a timeout) closes both connections
and frees the importing client before the scope exits; the core has already
recorded the state and scheduled the trim of partial keys.

Source: the two connections the destination opened arrive as ordinary
client connections; ``CLUSTER SYNCSLOTS SYNC`` / ``RDBCHANNEL`` hand them
over (the ``ServeMigration`` effect) to :func:`serve_source_channel`, which
also runs under the task's cancel scope: the main channel sends the stream
the core collected and reads ACKs; the RDB channel produces the slot
snapshot a few keys per turn (copy-on-write keeps it point-in-time).
"""

from __future__ import annotations

import logging

import trio

from frtrio.cluster import migration as m
from frtrio.core.client import F
from frtrio.protocol.parser import RequestParser

log = logging.getLogger("frtrio.migration")

ACK_EVERY = 0.1
REPLAY_BATCH = 256


class _Failed(Exception):
    def __init__(self, message: str, rdb_state: str | None = None):
        super().__init__(message)
        self.message = message
        self.rdb_state = rdb_state


class _Stopped(Exception):
    """The core ended the task (cancel, failure) while this shell task was
    about to resume with data already read: nothing more may be applied."""


class _Reader:
    """Lines and RESP commands from one stream (with what was read ahead)."""

    def __init__(self, stream, what: str):
        self.stream = stream
        self.buf = bytearray()
        self.what = what

    async def more(self) -> bytes:
        data = await self.stream.receive_some(65536)
        if not data:
            raise _Failed("%s - Connection is closed" % self.what)
        return data

    async def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln = bytes(self.buf[:i]).rstrip(b"\r")
                del self.buf[:i + 1]
                return ln
            self.buf += await self.more()


def _leaf(exc, types):
    """The first exception of ``types`` in ``exc`` (an ExceptionGroup from a
    nursery, or a plain exception); None if it holds only others."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for x in exc.exceptions:
            r = _leaf(x, types)
            if r is not None:
                return r
    return None


def _is(argv, sub: bytes) -> bool:
    return (len(argv) >= 3 and argv[0].lower() == b"cluster"
            and argv[1].lower() == b"syncslots" and argv[2].upper() == sub)


class MigrationShell:
    def __init__(self, node):
        self.node = node
        self.scopes: dict[str, trio.CancelScope] = {}

    @property
    def mig(self) -> m.Migrations:
        return self.node.server.cluster.migrations

    def carry_out(self) -> None:
        """The core's effects: start or stop tasks."""
        mig = self.mig
        effects, mig.effects = mig.effects, []
        for e in effects:
            if isinstance(e, m.StartImport):
                self.stop(e.task)
                scope = trio.CancelScope()
                self.scopes[e.task.id] = scope
                self.node.nursery.start_soon(self._import_task, e.task, scope)
            elif isinstance(e, m.StopTask):
                self.stop(e.task)

    def duty(self) -> None:
        """Before-sleep slot ``slot_migration``: this cycle's writes onto the
        stream, the deferred cross-slot cancel, then the core's effects."""
        mig = self.node.server.cluster.migrations
        if mig.tasks:
            mig.feed(self.node.server.propagated)
            mig.before_sleep()
        if mig.trim_pending:
            mig.process_pending_trims()
        if mig.pause_toggled:
            mig.pause_toggled = False
            self.node.pause_changed.set()
        if mig.effects:
            self.carry_out()

    def stop(self, t) -> None:
        scope = self.scopes.pop(t.id, None)
        if scope is not None:
            scope.cancel()

    # --- destination --------------------------------------------------------------

    async def _import_task(self, t, scope) -> None:
        node = self.node
        srv = node.server
        client = srv.new_client("asm:%s" % t.id[:8], "")
        client.flags |= F.MASTER | F.IMPORTING
        srv.set_client_user(client, srv.acl.superuser)  # Redis's NULL user: may do everything
        client.authenticated = True
        client.reply_mode = 1
        streams: list = []
        try:
            with scope:
                try:
                    await self._import(t, client, streams)
                except BaseException as exc:
                    e = _leaf(exc, (_Failed, OSError, trio.BrokenResourceError,
                                    trio.ClosedResourceError, m.StateViolation, _Stopped))
                    if e is None:
                        raise
                    srv.now_ms = node.env.unix_ms()
                    if isinstance(e, _Stopped):
                        pass
                    elif isinstance(e, _Failed):
                        self.mig.fail(t, e.message, e.rdb_state)
                    elif not isinstance(e, m.StateViolation):
                        # (a violation is recorded by the core; the task stays)
                        self.mig.fail(t, "Main channel - Read error: %s" % e)
        finally:
            if self.scopes.get(t.id) is scope:
                del self.scopes[t.id]
            srv.free_client(client)
            with trio.CancelScope(shield=True):
                for s in streams:
                    try:
                        await s.aclose()
                    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            self.carry_out()
            node.flush_effects()

    def _move(self, t, new: str) -> None:
        if t.state in ("failed", "canceled", "completed"):
            raise _Stopped()
        self.mig.move(t, new)
        self._failpoint(t, "import-main-channel", new)

    def _rdb(self, t, state: str) -> None:
        t.rdb_state = state
        self._failpoint(t, "import-rdb-channel", state)

    def _failpoint(self, t, channel: str, state: str) -> None:
        if self.mig.failpoint_hit(t, channel, state):
            raise _Failed("%s - Failed due to fail point" % (
                "Main channel" if "main" in channel else "RDB channel"))

    def _exec(self, client, argv, t) -> None:
        if t.state in ("failed", "canceled", "completed"):
            raise _Stopped()
        srv = self.node.server
        srv.execute(client, argv)
        client.out.clear()
        client.out_bytes = 0

    def _apply(self, t, client, cmds: list, stop: bytes, count: bool) -> bool:
        """Run the parsed commands up to the ``stop`` marker (True if met);
        ``count``: they are stream bytes the destination has now applied."""
        node = self.node
        node.server.now_ms = node.env.unix_ms()
        met = False
        for argv in cmds:
            if _is(argv, stop):
                met = True
                break
            if _is(argv, b"CONF"):
                continue  # SLOT-INFO: a size hint
            self._exec(client, argv, t)
            if count:
                t.dest_offset += len(m.resp(*argv))
        cmds.clear()
        node.flush_effects()
        return met

    async def _connect(self, t, what: str, rd_state: bool, streams: list):
        node = self.node
        src = node.server.cluster.state.get(t.source)
        if src is None:
            raise _Failed("%s - Failed to connect to source node: unknown node" % what)
        try:
            s = await node.env.connect(src.ip, src.port)
        except OSError as e:
            raise _Failed("%s - Failed to connect to source node: %s" % (what, e))
        streams.append(s)
        return s

    async def _import(self, t, client, streams) -> None:
        node = self.node
        srv = node.server
        mig = self.mig
        env = node.env
        secret = srv.cluster.state.internal_secret
        self._failpoint(t, "import-main-channel", t.state)
        main = await self._connect(t, "Main channel", False, streams)
        mr = _Reader(main, "Main channel")
        self._move(t, "auth-reply")
        await main.send_all(m.resp(b"AUTH", b"internal connection", secret))
        ln = await mr.line()
        if ln != b"+OK":
            raise _Failed("Main channel - Failed to sync with source node: Error reply to AUTH "
                          "from the source: %s" % ln.decode("latin-1"))
        self._move(t, "send-handshake")
        await main.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"CONF", b"NODE-ID",
                                   srv.cluster.state.myself.id.encode()))
        self._move(t, "handshake-reply")
        ln = await mr.line()
        if ln != b"+OK":
            raise _Failed("Main channel - Failed to sync with source node: Error reply to "
                          "CLUSTER SYNCSLOTS CONF from the source: %s" % ln.decode("latin-1"))
        while True:
            self._move(t, "send-syncslots")
            args = [b"CLUSTER", b"SYNCSLOTS", b"SYNC", t.id.encode()]
            for s, e in t.ranges:
                args += [b"%d" % s, b"%d" % e]
            await main.send_all(m.resp(*args))
            self._move(t, "syncslots-reply")
            ln = await mr.line()
            if ln.startswith(b"-NOTREADY"):
                log.info("Source node replied to SYNCSLOTS SYNC with -NOTREADY, will retry "
                         "later...")
                self._move(t, "send-syncslots")
                await trio.sleep(1.0)
                continue
            if ln != b"+RDBCHANNELSYNCSLOTS":
                raise _Failed("Main channel - Failed to sync with source node: Error reply to "
                              "CLUSTER SYNCSLOTS SYNC from the source: %s" % ln.decode("latin-1"))
            break
        self._move(t, "init-rdbchannel")
        self._rdb(t, "connecting")
        rdb = await self._connect(t, "RDB channel", True, streams)
        rr = _Reader(rdb, "RDB channel")
        self._rdb(t, "auth-reply")
        await rdb.send_all(m.resp(b"AUTH", b"internal connection", secret))
        ln = await rr.line()
        if ln != b"+OK":
            raise _Failed("RDB channel - Failed to sync with the source node: Error reply to "
                          "AUTH from source: %s" % ln.decode("latin-1"))
        self._rdb(t, "rdbchannel-request")
        await rdb.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"RDBCHANNEL", t.id.encode()))
        self._rdb(t, "rdbchannel-reply")
        while True:
            ln = await rr.line()
            if ln == b"":
                continue  # a keepalive
            if ln.startswith(b"+SLOTSSNAPSHOT"):
                break
            raise _Failed("RDB channel - Failed to sync with the source node: Error reply to "
                          "CLUSTER SYNCSLOTS RDBCHANNEL from the source: %s"
                          % ln.decode("latin-1"))
        self._rdb(t, "rdbchannel-transfer")
        self._move(t, "accumulate-buffer")
        buffer = bytearray()
        failure: list = []

        async def accumulate(task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as cs:
                task_status.started(cs)
                buffer.extend(mr.buf)
                mr.buf.clear()
                self.mig.note_input_buffer(len(buffer))
                limit = (node.config.get_int("replica-full-sync-buffer-limit")
                         or srv.obuf.limits["replica"][0])
                try:
                    while True:
                        if limit and len(buffer) >= limit:
                            # flow control: stop reading; the stream backs up
                            # on the source, bounded by its output buffer limit
                            log.info("Slots sync buffer limit has been reached (%d bytes): "
                                     "reading paused until the snapshot is applied",
                                     len(buffer))
                            await trio.sleep_forever()
                        buffer.extend(await mr.more())
                        self.mig.note_input_buffer(len(buffer))
                        t.last_io = env.unix_ms()
                except (_Failed, OSError, trio.BrokenResourceError) as e:
                    failure.append(e)

        async with trio.open_nursery() as n:
            acc = await n.start(accumulate)
            parser = RequestParser(1 << 40)
            parser.feed(bytes(rr.buf))
            rr.buf.clear()
            cmds: list = []
            done = False
            while not done:
                if failure:
                    raise failure[0] if isinstance(failure[0], _Failed) else _Failed(
                        "Main channel - Read error: %s" % failure[0])
                parser.parse(cmds)
                if cmds:
                    done = self._apply(t, client, cmds, b"SNAPSHOT-EOF", False)
                    await trio.sleep(0)
                    continue
                data = await rr.more()
                t.last_io = env.unix_ms()
                parser.feed(data)
            acc.cancel()
        if failure:
            raise failure[0] if isinstance(failure[0], _Failed) else _Failed(
                "Main channel - Read error: %s" % failure[0])
        await rdb.aclose()
        t.rdb_state = "completed"
        self._move(t, "ready-to-stream")
        self._move(t, "streaming-buffer")
        # the replay of what accumulated, then the live stream
        parser = RequestParser(1 << 40)
        parser.feed(bytes(buffer))
        buffer.clear()  # (the replay works on its own copy)
        self.mig.note_input_buffer(0)
        cmds = []
        eof = False
        while True:
            parser.parse(cmds)
            if not cmds:
                break
            eof = self._apply(t, client, cmds, b"STREAM-EOF", True)
            if eof:
                break
            await main.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"ACK", b"streaming-buffer",
                                       b"%d" % t.dest_offset))
            await trio.sleep(0)
        self._move(t, "wait-stream-eof")
        t.last_io = env.unix_ms()
        if not eof:
            async with trio.open_nursery() as n:
                async def acks():
                    while True:
                        await main.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"ACK",
                                                   b"wait-stream-eof", b"%d" % t.dest_offset))
                        await trio.sleep(ACK_EVERY)

                n.start_soon(acks)
                while not eof:
                    parser.parse(cmds)
                    if cmds:
                        eof = self._apply(t, client, cmds, b"STREAM-EOF", True)
                        continue
                    data = await mr.more()
                    t.last_io = env.unix_ms()
                    parser.feed(data)
                n.cancel_scope.cancel()
        srv.now_ms = env.unix_ms()
        if not mig.takeover(t):
            node.flush_effects()
            await trio.sleep_forever()  # held by a fail point until cancelled
        log.info("Slot migration %s completed: slots %s imported from %s", t.id,
                 m.format_ranges(t.ranges), t.source)


# --- source ------------------------------------------------------------------------


async def serve_source_channel(conn, eff) -> None:
    """A destination's connection, handed over by SYNCSLOTS SYNC (main) or
    RDBCHANNEL (rdb); runs until the task ends or the peer goes away."""
    node = conn.node
    srv = node.server
    mig = srv.cluster.migrations
    shell = node.migration
    t = eff.task
    scope = trio.CancelScope()
    key = t.id + ":" + eff.channel
    old = shell.scopes.pop(key, None)
    if old is not None:
        old.cancel()
    shell.scopes[key] = scope
    if eff.channel == "main":
        shell.scopes[t.id] = scope
    c = conn.c
    c.flags |= F.SLAVE | F.MIGRATING  # replica-class: never paused, replica limits
    try:
        with scope:
            try:
                await conn._flush()
                if eff.channel == "main":
                    await _serve_main(conn, t)
                else:
                    await _serve_rdb(conn, t, eff.snapshot)
            except BaseException as exc:
                if _leaf(exc, (OSError, trio.BrokenResourceError, trio.ClosedResourceError,
                               m.StateViolation)) is None:
                    raise
            srv.now_ms = node.env.unix_ms()
            if t.state not in m.TERMINAL and t.state not in ("failed", "stream-eof") and (
                    eff.channel == "main" or t.state in ("wait-bgsave-start",
                                                         "send-bulk-and-stream")):
                what = "Main channel - Connection is closed" if eff.channel == "main" else \
                    "RDB channel - Failed to send slots snapshot"
                mig.fail(t, what)
    finally:
        if eff.snapshot is not None:
            srv.end_snapshot(eff.snapshot)
        for k in (key, t.id):
            if shell.scopes.get(k) is scope:
                del shell.scopes[k]
        shell.carry_out()
        node.flush_effects()


async def _serve_main(conn, t) -> None:
    node = conn.node
    srv = node.server
    mig = srv.cluster.migrations
    stream = conn.stream
    parser = conn.parser
    cmds: list = []

    async def reader():
        while True:
            parser.parse(cmds)
            if cmds:
                srv.now_ms = node.env.unix_ms()
                for argv in cmds:
                    if _is(argv, b"ACK") and len(argv) == 5:
                        mig.ack(t, argv[3], argv[4])
                cmds.clear()
                node.flush_effects()
                shell_wake.set()
            data = await stream.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("closed")
            t.last_io = node.env.unix_ms()
            parser.feed(data)

    shell_wake = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(reader)
        while True:
            if mig.failpoint_hit(t, "migrate-main-channel", t.state):
                srv.now_ms = node.env.unix_ms()
                mig.fail(t, "Main channel - Failed due to fail point")
            if t.state in m.TERMINAL or t.state == "failed" or t.state == "stream-eof":
                if t.state != "stream-eof":
                    n.cancel_scope.cancel()
                    return
            if t.stream:
                data = bytes(t.stream)
                t.stream.clear()
                await stream.send_all(data)
                continue
            if t.state == "handoff":
                await stream.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"STREAM-EOF"))
                srv.now_ms = node.env.unix_ms()
                mig.stream_eof_sent(t)
                node.flush_effects()
                continue
            with trio.move_on_after(0.01):
                await shell_wake.wait()
            shell_wake = trio.Event()


async def _serve_rdb(conn, t, snap) -> None:
    node = conn.node
    srv = node.server
    mig = srv.cluster.migrations
    stream = conn.stream
    env = node.env
    await stream.send_all(b"+SLOTSSNAPSHOT\r\n")
    while True:
        if mig.failpoint_hit(t, "migrate-rdb-channel", t.state):
            srv.now_ms = env.unix_ms()
            mig.fail(t, "RDB channel - Failed due to fail point")
            return
        # rdb-key-save-delay (µs a key) slows it down, as the tests of
        # Redis do; else a few hundred keys per scheduler turn
        delay = node.config.get_int("rdb-key-save-delay")
        done = snap.step(1 if delay > 0 else 256)
        data = snap.take()
        if data:
            await stream.send_all(data)
        if done:
            break
        await trio.sleep(delay / 1e6 if delay > 0 else 0)
    await stream.send_all(m.resp(b"CLUSTER", b"SYNCSLOTS", b"SNAPSHOT-EOF"))
    srv.end_snapshot(snap)
    srv.now_ms = env.unix_ms()
    mig.snapshot_done(t)
    node.flush_effects()
    log.info("Slots snapshot of task %s sent: %d keys", t.id, snap.keys_total)
    # the destination closes this channel once it applied the snapshot
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
