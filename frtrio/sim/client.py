"""A RESP client for simulated nodes (the workloads' redis-py).

Replies are parsed with ``hiredis.Reader``: error replies come back as
``hiredis.ReplyError`` values, not exceptions, so a workload sees exactly
what the server said. A broken connection raises ``Disconnected``; the
client reconnects on its next call.

While a call is in flight ``pending`` holds it, which is how the checker
finds clients that stay blocked forever.
"""

from __future__ import annotations

import hiredis
import trio

from frtrio.persist.aof_format import encode_command
from frtrio.sim import sched

ReplyError = hiredis.ReplyError


class Disconnected(Exception):
    """The connection broke (or could not be made); the outcome of the call
    in flight, if any, is unknown."""


def _b(a) -> bytes:
    if isinstance(a, bytes):
        return a
    if isinstance(a, (int, float)):
        return str(a).encode()
    return str(a).encode("utf-8")


class SimClient:
    def __init__(self, world, name: str, target: str, host: str | None = None):
        self.world = world
        self.name = name
        self.target = target
        self.host = host or world.add_client_host(name)
        self.stream = None
        self.reader = None
        self.pending: tuple | None = None  # (argv, t_start) while a call is in flight
        self.calls = 0
        self._nowait = None  # (argvs, t0, replies, on_done): call_nowait's call in flight

    async def connect(self) -> None:
        slot = self.world.nodes[self.target]
        try:
            self.stream = await self.world.net.connect(self.host, slot.host, slot.port, tag=self.name)
        except OSError as e:
            self.stream = None
            raise Disconnected("connect: %s" % (e.strerror or e)) from None
        self.reader = hiredis.Reader()

    def _drop(self) -> None:
        s = self.stream
        self.stream = None
        self.reader = None
        if s is not None:
            s.close_now()

    async def close(self) -> None:
        self._drop()
        await trio.lowlevel.checkpoint()

    async def _read(self):
        reader = self.reader
        stream = self.stream
        while True:
            r = reader.gets()
            if r is not False:
                return r
            data = await stream.receive_some(65536)
            if not data:
                raise Disconnected("connection closed by server")
            reader.feed(data)

    async def call(self, *args):
        """Send one command and return its reply (a ReplyError for -ERR)."""
        return (await self.pipeline([args]))[0]

    async def pipeline(self, cmds):
        """Send several commands in one write; return their replies."""
        argvs = [[a if type(a) is bytes else _b(a) for a in cmd] for cmd in cmds]
        if self.stream is None:
            await self.connect()
        t0 = self._begin(argvs)
        return await self._finish(argvs, t0, b"".join(encode_command(a) for a in argvs), [])

    def _begin(self, argvs) -> float:
        t0 = self.world.clock._now  # (trio.current_time(), without its three calls)
        self.pending = (argvs[0], t0)
        self.calls += 1
        return t0

    async def _finish(self, argvs, t0: float, data: bytes | None, replies: list):
        """The rest of a call begun with ``_begin``: send ``data`` (None:
        sent already), read the replies not yet in ``replies``, note the
        outcomes; raises Disconnected if the connection breaks."""
        world = self.world
        try:
            try:
                if data is not None and not self.stream.send_nowait(data):
                    await self.stream.send_all(data)
                while len(replies) < len(argvs):
                    replies.append(await self._read())
            except (trio.BrokenResourceError, trio.ClosedResourceError, Disconnected):
                self._lost(argvs, t0, replies)
                raise Disconnected("connection lost") from None
        finally:
            self.pending = None
        for argv, r in zip(argvs, replies):
            world.note_op(self, argv, r, "error" if isinstance(r, ReplyError) else "ok", t0)
        return replies

    def _lost(self, argvs, t0: float, replies: list) -> None:
        world = self.world
        self._drop()
        for argv, r in zip(argvs, replies):
            world.note_op(self, argv, r, "error" if isinstance(r, ReplyError) else "ok", t0)
        for argv in argvs[len(replies):]:
            world.note_op(self, argv, None, "disconnected", t0)

    # --- calls driven from the clock, without a task ------------------------------
    #
    # The load workloads' clients spend most of their life waiting (think
    # time, then a reply): a task per client costs a trip through Trio's
    # run loop for each wake-up. ``call_nowait`` sends at once and reads the
    # replies in callbacks from the simulator's clock (``sched.arm``); the
    # outcomes are noted exactly as ``pipeline`` notes them. Whatever a
    # callback cannot do without waiting (a paused host, a cut path) is left
    # to a task: ``finish_in_task``.

    def call_nowait(self, argvs, on_done) -> bool:
        """Send the commands ``argvs`` (lists of bytes) now. Returns False
        when that cannot be done without a task (no connection, the host is
        paused, the connection is closed or broken): nothing was sent, call
        ``pipeline`` in a task. Otherwise True, and ``on_done(self, kind,
        replies)`` is called later from the clock: kind "ok" with the
        replies; "lost" when the connection broke (noted as ``pipeline``
        does before it raises Disconnected); "task" when only a task can
        wait for the rest (then ``await finish_in_task()``)."""
        s = self.stream
        if s is None:
            return False
        data = (encode_command(argvs[0]) if len(argvs) == 1
                else b"".join(encode_command(a) for a in argvs))
        try:
            s.try_send(data)
        except (BlockingIOError, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self._nowait = (argvs, self._begin(argvs), [], on_done)
        if s.inp.chunks or self.reader.has_data():
            self._poll()
        else:
            s.arm_receive(self._poll)  # (nothing can be there before the reply)
        return True

    def _poll(self) -> None:
        """(a clock callback) Read what has arrived for the call in flight."""
        argvs, t0, replies, on_done = self._nowait
        reader = self.reader
        stream = self.stream
        try:
            if stream is None:  # dropped meanwhile (close_now woke us)
                raise trio.ClosedResourceError("this stream was closed")
            while True:
                while len(replies) < len(argvs):
                    r = reader.gets()
                    if r is False:
                        break
                    replies.append(r)
                else:
                    break
                data = stream.receive_nowait(65536)
                if data is None:
                    stream.arm_receive(self._poll)
                    return
                if not data:
                    raise Disconnected("connection closed by server")
                reader.feed(data)
        except BlockingIOError:
            on_done(self, "task", replies)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, Disconnected):
            self._nowait = None
            self.pending = None
            self._lost(argvs, t0, replies)
            on_done(self, "lost", replies)
            return
        self._nowait = None
        self.pending = None
        note = self.world.note_op
        for argv, r in zip(argvs, replies):
            note(self, argv, r, "error" if isinstance(r, ReplyError) else "ok", t0)
        on_done(self, "ok", replies)

    def abandon(self) -> None:
        """Forget the call ``call_nowait`` began (the run is over: as a
        cancelled task would, without noting it)."""
        if self._nowait is not None:
            self._nowait = None
            self.pending = None
            if self.stream is not None:
                sched.disarm(self.stream.inp)

    async def finish_in_task(self):
        """The call ``call_nowait`` began, finished by the calling task
        (after ``on_done`` said "task"): its replies, or Disconnected."""
        argvs, t0, replies, _ = self._nowait
        self._nowait = None
        return await self._finish(argvs, t0, None, replies)
