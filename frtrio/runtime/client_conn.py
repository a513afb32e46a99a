"""The shell of one client connection: the reader loop (parse, execute,
carry out the command's effects, hand the replies to the socket without
waiting), the writer for what the socket did not take at once and for
out-of-band output (pub/sub messages, unblocked replies, killed clients),
and parking a blocked client until the engine unblocks it, its deadline
passes or it disconnects. The reader never waits for a client to read its
replies: like Redis it goes on reading and executing, and the output
buffer limits and client eviction bound what piles up. Part of the nursery
tree of ``runtime/node.py``.
"""

from __future__ import annotations

import math
import threading
from functools import partial

import trio

from frtrio.core import iobufs
from frtrio.core.client import F
from frtrio.core.client_evict import PTR
from frtrio.core.iobufs import BIG_ARG, IOBUF_LEN
from frtrio.commands.dump import waits_for_migrate
from frtrio.core.effects import RunMigrate, RunScript, ServeMigration, ServeReplica, Sleep
from frtrio.core.policy import RESOURCE_CLAMP
from frtrio.protocol.parser import RequestParser
from frtrio.protocol.reply import encode_error
from frtrio.runtime import sockio

RECV_SIZE = 65536


class _Disconnected(Exception):
    pass


class ClientConn:
    """The shell of one client connection."""

    __slots__ = ("node", "c", "stream", "io", "parser", "send_lock", "wake", "scope", "_ident",
                 "_token", "_try_send", "_serve")

    def __init__(self, node, c, stream):
        self.node = node
        self.c = c
        self.stream = stream
        self.io = sockio.for_stream(stream)  # receive_some/send_all
        self.parser = RequestParser(node.config.get_int("proto-max-bulk-len"))
        self.send_lock = trio.Lock()
        self.wake = trio.Event()
        self.scope: trio.CancelScope | None = None
        # the Trio thread: a script runs its commands on a worker thread
        # (scripting/runner.py) while this one waits, and a pub/sub message or
        # keyspace event it publishes must wake writers from the Trio side
        self._ident = threading.get_ident()
        self._token = trio.lowlevel.current_trio_token()
        c.notify = self._notify
        # a socket's own non-blocking send (the simulator's streams have one
        # too; None for other streams): the reader hands replies to the
        # kernel without waiting, and what it does not take is left to the
        # writer task, so the reader goes on reading a client that does not
        # read its replies, as Redis does (their bytes pile up in c.out, where
        # client-output-buffer-limit and client eviction see them)
        io = self.io
        self._try_send = (io.sock.send if isinstance(io, sockio.ConnIO)
                          else getattr(io, "try_send", None))  # (the simulator's streams)
        # a simulated node whose world serves connections from the clock
        # (``frtrio/sim``: SimStream.serve_from_clock); None for real ones
        self._serve = (getattr(io, "serve_from_clock", None)
                       if getattr(node.env, "conns_from_clock", False) else None)

    def _notify(self) -> None:
        if threading.get_ident() != self._ident:
            self._token.run_sync_soon(self._notify)
            return
        self.wake.set()
        srv = self.node.server
        if srv.cev is not None:
            # a push (invalidation, pub/sub message) grew the output: counted
            # now, evicted by the next command if over maxmemory-clients
            srv.cev.update(self.c)
        if self.c.flags & F.CLOSE_ASAP and not self.c.out and self.scope is not None:
            # killed with nothing left to send (e.g. pub/sub output buffer
            # limit): close now, even if a send to a peer that does not read
            # is in progress
            self.scope.cancel()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as n:
                self.scope = n.cancel_scope
                n.start_soon(self._writer)
                await self._reader()
                n.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, _Disconnected, OSError):
            pass

    async def _flush(self) -> None:
        c = self.c
        self.node.flush_effects()
        if not c.out:
            return
        lock = self.send_lock
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()  # no extra trip through the scheduler: send_all checkpoints
        try:
            data = c.pop_output()
            if data:
                # c.out_bytes still counts these bytes until they are sent:
                # the output buffer limits and client eviction see them
                n = len(data)
                c.tot_net_out += n
                self.node.server.stats["total_net_output_bytes"] += n
                try:
                    await self.io.send_all(data)
                finally:
                    c.out_bytes = max(0, c.out_bytes - n)
                if self.node.server.cev is not None:
                    self.node.server.client_mem_changed(c)
        finally:
            lock.release()

    def _send_some(self) -> None:
        """The reader's flush: what the socket takes now, without waiting;
        the rest goes to the writer task. (The simulator's streams have
        such a send too: ``SimStream.try_send``.)"""
        c = self.c
        self.node.flush_effects()
        out = c.out
        if not out:
            return
        if self.send_lock.locked():
            self.wake.set()  # the writer is sending: it takes this after
            return
        data = c.pop_output()
        try:
            n = self._try_send(data)
        except BlockingIOError:
            n = 0
        if n:
            c.tot_net_out += n
            self.node.server.stats["total_net_output_bytes"] += n
        if n == len(data):
            c.out_bytes = 0
            return
        out.append(data[n:])
        c.out_bytes = len(data) - n
        self.wake.set()

    async def _writer(self) -> None:
        c = self.c
        while True:
            ev = self.wake
            await ev.wait()
            if self.wake is ev:  # (_wait_unblocked may have replaced it)
                self.wake = trio.Event()
            if c.flags & F.CLOSE_ASAP:
                await self._flush_quiet()
                self.scope.cancel()
                return
            if c.blocked is None and c.out:
                await self._flush()
            elif c.out and c.in_pubsub:
                await self._flush()

    async def _flush_quiet(self) -> None:
        try:
            await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _reader(self) -> None:
        """The reader: ``_steps`` does the work and asks for what it waits
        on, this carries the waits out. A simulated node may serve its
        connections from the simulator's clock (``serve_from_clock``):
        then the bytes of each request are fed to ``_steps`` from the clock,
        without a trip through Trio's scheduler, until it asks for
        anything else than bytes; this task does the rest."""
        steps = self._steps()
        send = steps.send
        serve = self._serve
        io = self.io
        try:
            req = next(steps)
            if serve is None:
                while True:
                    req = send(await (io.receive_some(req) if type(req) is int else req()))
            while True:
                if type(req) is not int:
                    req = send(await req())
                    continue
                req = await serve(steps, req)
                if req is None:
                    return  # (_steps returned)
                if type(req) is int:  # only a task can read these bytes
                    req = send(await io.receive_some(req))
        except StopIteration:
            return  # (the coroutines awaited here cannot raise it: PEP 479)
        finally:
            steps.close()

    def _steps(self):
        """The reader loop (parse, execute, carry out effects, hand the
        replies to the socket, read), as a generator: it yields an int for
        bytes to read (at most that many; the bytes are sent back) and an
        async callable for anything else to wait for (``_reader``)."""
        node = self.node
        srv = node.server
        env = node.env
        c = self.c
        parser = self.parser
        qlimit = node.config.get_int("client-query-buffer-limit")
        cmds: list = []
        while True:
            parser.auth_required = not c.authenticated  # Redis's authRequired()
            perr = parser.parse(cmds)
            if parser._argc:  # (parser.in_args(), inlined: once per read)
                # a half-read request: its arguments and the room Redis
                # would reserve for a big one count as client memory (and
                # in used_memory at once, as Redis's allocator counts them;
                # the cron recounts every client)
                old = c.argv_mem
                c.argv_mem = parser.argv_memory()
                c.argv_arr = PTR * parser.argv_count()  # (in tot-mem only)
                srv.clients_mem += c.argv_mem - old
                c.mem_counted += c.argv_mem - old
                c.qbuf_alloc = parser.query_alloc()
                c.qb_bulk = parser.bulk_len()
            elif c.argv_arr or c.qbuf_alloc or c.qb_bulk >= 0:  # (argv_mem > 0 means argv_arr > 0)
                srv.clients_mem -= c.argv_mem
                c.mem_counted -= c.argv_mem
                c.argv_mem = c.argv_arr = c.qbuf_alloc = 0
                c.qb_bulk = -1
            if srv.cev is not None:
                # the query buffer and a half-read request's arguments
                # count against maxmemory-clients
                c.qbuf = parser.pending()
                srv.client_mem_changed(c)
                if c.flags & F.CLOSE_ASAP:
                    return
            was_blocked = False
            if cmds:
                srv.now_ms = env.unix_ms()
                execute = srv.execute
                clamp = node.policy.batch_clamp()
                for argv in cmds:
                    if srv.migrate_inflight and waits_for_migrate(srv, c, argv):
                        # a key of this command is in another client's
                        # MIGRATE: run after it, as on redis-server
                        from frtrio.runtime import migrate as _migrate

                        yield self._flush
                        yield partial(_migrate.wait_keys_free, node, c, argv)
                        srv.now_ms = env.unix_ms()
                    if srv.pause_end_ms and srv.pause_holds(c, argv):
                        yield self._flush
                        yield partial(self._wait_unpaused, argv)
                    execute(c, argv)
                    if srv.effects:
                        yield self._carry_out_effects
                    if clamp:  # hardened ResourceClamp: long pipelines yield
                        clamp -= 1
                        if not clamp:
                            if node.policy.allow(RESOURCE_CLAMP, what="reader-batch"):
                                yield self._flush
                                yield trio.lowlevel.checkpoint
                                srv.now_ms = env.unix_ms()
                            clamp = node.policy.batch_clamp()
                    if c.blocked is not None:
                        was_blocked = True
                        yield self._flush
                        yield self._wait_unblocked
                        srv.now_ms = env.unix_ms()
                    if c.flags & (F.CLOSE_AFTER_REPLY | F.CLOSE_ASAP):
                        break
                cmds.clear()
            if perr is not None and not c.flags & (F.CLOSE_AFTER_REPLY | F.CLOSE_ASAP):
                msg = "ERR " + perr.reply_text
                if node.events is not None:
                    node.policy.note_protocol_error(c.addr, msg, parser.buf, parser.pos)
                srv.count_error(msg)
                c.out.append(encode_error(msg))
                c.flags |= F.CLOSE_AFTER_REPLY
            if c.flags & F.CLOSE_ASAP:
                # closed (output buffer limit, CLIENT KILL of itself...):
                # gone from CLIENT LIST now, as Redis frees it before it
                # serves the next client
                srv.free_client(c)
            if self._try_send is None or c.flags & (F.CLOSE_AFTER_REPLY | F.CLOSE_ASAP):
                yield self._flush
            else:
                self._send_some()
            if srv.shutdown_exiting:
                return  # the node is stopping (SHUTDOWN, or a signal's shutdown)
            if c.flags & (F.CLOSE_AFTER_REPLY | F.CLOSE_ASAP):
                return
            if (was_blocked or parser.paused) and perr is None:
                # data read while blocked may hold more commands; an
                # unauthenticated client's are parsed one at a time
                continue
            bl = parser._bulklen
            pending = c.qbuf = len(parser.buf) - parser.pos  # (parser.pending())
            if c.qb_bulk >= BIG_ARG:
                # a big argument's header was parsed: Redis makes room for all
                # of it at once (processMultibulkBuffer's hint), before it reads
                iobufs.before_read(c, pending, c.qb_bulk)
            if bl > RECV_SIZE:
                # a big argument: read what remains of it at once, as
                # Redis does (its query buffer is made room for it whole)
                data = yield max(RECV_SIZE, bl + 2 - parser.pending())
            else:
                data = yield RECV_SIZE
            if not data:
                if c.out:  # replies still queued for a client that stopped writing
                    yield self._flush_quiet
                return
            if c.qb_alloc - pending < IOBUF_LEN or c.qb_bulk >= BIG_ARG:
                # the room Redis's readQueryFromClient makes as it reads (so a
                # cron that trimmed or freed the buffer while this task waited
                # is undone by the read, as on redis-server)
                iobufs.before_read(c, pending, c.qb_bulk)
            c.tot_net_in += len(data)
            srv.stats["total_net_input_bytes"] += len(data)
            parser.feed(data)
            qbuf = c.qbuf = len(parser.buf) - parser.pos  # (parser.pending())
            if qbuf > c.qb_peak:
                c.qb_peak = qbuf
            if qbuf > qlimit:
                return  # Redis closes a client whose query buffer is too big

    async def _wait_unpaused(self, argv) -> None:
        """CLIENT PAUSE holds this command: wait until the pause ends (its
        time passes, or CLIENT UNPAUSE), then run it."""
        node = self.node
        srv = node.server
        env = node.env
        # counted in INFO's blocked_clients meanwhile (Redis blocks a
        # postponed client: BLOCKED_POSTPONE)
        srv.postponed_clients += 1
        try:
            while True:
                srv.now_ms = env.unix_ms()
                if not srv.pause_holds(self.c, argv):
                    return
                left = max(0.0, (srv.pause_end_ms - srv.now_ms) / 1000.0)
                with trio.move_on_after(left + 0.001):
                    await node.pause_changed.wait()
        finally:
            srv.postponed_clients -= 1

    async def _carry_out_effects(self) -> None:
        """What the command just run asked for (frtrio/core/effects.py), in order."""
        node = self.node
        srv = node.server
        effects = list(srv.effects)
        srv.effects.clear()
        try:
            await self._carry_out(effects)
        finally:
            if srv.pending_timing:  # DEBUG SLEEP and the like: their time is known now
                srv.finish_pending_timing()

    async def _carry_out(self, effects) -> None:
        node = self.node
        srv = node.server
        for e in effects:
            if type(e) is RunMigrate:
                # MIGRATE's network part (runtime/migrate.py): this client
                # waits for its reply, the others go on
                from frtrio.runtime import migrate as _migrate

                await _migrate.carry_out(node, self.c, e.job)
            elif type(e) is Sleep:
                await node.env.pause(e.ms / 1000.0)
            elif type(e) is RunScript:
                # a script past busy-reply-threshold: resume it in slices,
                # letting the other clients in between (they get -BUSY)
                from frtrio.protocol.reply import Raw
                from frtrio.scripting.engine import DONE

                # shielded: the script must end even if this client goes
                # away meanwhile (Redis's protectClient), or the node would
                # stay BUSY for ever
                with trio.CancelScope(shield=True):
                    while True:
                        try:
                            await self._flush()
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                            pass
                        # (trio's clock: virtual in the simulator; env.pause
                        # would freeze the whole process like DEBUG SLEEP)
                        await trio.sleep(0.001)
                        if srv.shutdown_exiting:
                            # SHUTDOWN NOSAVE while busy: the process exits
                            # with the script left suspended
                            raise _Disconnected()
                        state, data = e.scripting.resume()
                        if state == DONE:
                            self.c.reply(Raw(data))
                            if srv.ready_keys and srv.blocking is not None:
                                srv.blocking.serve_ready_keys()
                            break
            elif type(e) is ServeMigration:
                # a channel of an atomic slot migration from now on
                from frtrio.runtime.migration import serve_source_channel

                await serve_source_channel(self, e)
                raise _Disconnected()
            elif type(e) is ServeReplica:
                # this connection is a replica link from now on
                from frtrio.runtime.replication import serve_replica

                await serve_replica(self, e)
                raise _Disconnected()
            else:
                node.carry_out(e)
            srv.now_ms = node.env.unix_ms()

    async def _wait_unblocked(self) -> None:
        """Park until the engine unblocks us, the deadline passes or the
        client disconnects (then the registry forgets us)."""
        c = self.c
        srv = self.node.server
        env = self.node.env
        b = c.blocked
        if b is None:
            return
        deadline = math.inf
        if b.deadline_ms is not None:
            deadline = env.now() + max(0, b.deadline_ms - env.unix_ms()) / 1000.0
        gone = False
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as n:

                async def watch():
                    nonlocal gone
                    while True:
                        data = await self.io.receive_some(RECV_SIZE)
                        if not data:
                            gone = True
                            n.cancel_scope.cancel()
                            return
                        self.parser.feed(data)

                n.start_soon(watch)
                while c.blocked is not None and not c.flags & F.CLOSE_ASAP:
                    ev = self.wake
                    await ev.wait()
                    if self.wake is ev:  # (the writer waits on it too)
                        self.wake = trio.Event()
                n.cancel_scope.cancel()
        if gone or c.flags & F.CLOSE_ASAP:
            srv.blocking.unblock(c, None)  # a killed client gets no reply
            if gone:
                raise _Disconnected()
            return
        if c.blocked is not None:
            srv.now_ms = env.unix_ms()
            srv.blocking.timeout(c)
