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
        world = self.world
        argvs = [[a if type(a) is bytes else _b(a) for a in cmd] for cmd in cmds]
        if self.stream is None:
            await self.connect()
        t0 = trio.current_time()
        self.pending = (argvs[0], t0)
        self.calls += 1
        replies = []
        try:
            try:
                data = b"".join(encode_command(a) for a in argvs)
                if not self.stream.send_nowait(data):
                    await self.stream.send_all(data)
                for _ in argvs:
                    replies.append(await self._read())
            except (trio.BrokenResourceError, trio.ClosedResourceError, Disconnected):
                self._drop()
                for argv, r in zip(argvs, replies):
                    world.note_op(self, argv, r, "error" if isinstance(r, ReplyError) else "ok", t0)
                for argv in argvs[len(replies):]:
                    world.note_op(self, argv, None, "disconnected", t0)
                raise Disconnected("connection lost") from None
        finally:
            self.pending = None
        for argv, r in zip(argvs, replies):
            world.note_op(self, argv, r, "error" if isinstance(r, ReplyError) else "ok", t0)
        return replies
