"""MIGRATE's network part (Trio shell).

``commands/dump.py`` turns a MIGRATE into a ``MigrateJob`` (the RESTORE
commands, already serialized) and leaves it in ``server.migrate_jobs``. The
client shell (``node.ClientConn``) picks it up right after the command and
awaits ``carry_out``, so that client waits for its reply while every other
client keeps being served. Here we do what Redis's migrateCommand does on
the wire, with its timeouts (``timeout`` ms for the connect, for each 64 KiB
written and for each reply line read) and its single retry (after a socket
error that is not a timeout, when no RESTORE reply was read yet), then hand
what we saw to ``MigrateJob.finish`` (pure), which removes the migrated
keys and answers.

Differences from Redis: the connection is opened per MIGRATE and closed after
it (Redis caches one per target for 10 s, so it sends SELECT only when the db
changes; here every MIGRATE to db >= 0 sends SELECT), and the server is not
blocked while the target answers.
"""

from __future__ import annotations

import trio

from frtrio.commands.dump import MigrateJob, MigrateOutcome

CHUNK = 64 * 1024


class _Lines:
    """Read CRLF-terminated lines from a stream, each under a timeout."""

    def __init__(self, stream, timeout: float):
        self.stream = stream
        self.timeout = timeout
        self.buf = bytearray()
        self.timed_out = False

    async def line(self) -> bytes | None:
        with trio.move_on_after(self.timeout) as scope:
            while True:
                i = self.buf.find(b"\n")
                if i >= 0:
                    line = bytes(self.buf[:i])
                    del self.buf[: i + 1]
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    return line
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    return None
                if not data:
                    return None
                self.buf += data
        if scope.cancelled_caught:
            self.timed_out = True
        return None


async def _attempt(env, job: MigrateJob) -> tuple[MigrateOutcome, bool]:
    """One try: (what happened, whether Redis would retry)."""
    out = MigrateOutcome()
    timeout = job.timeout_ms / 1000.0
    stream = None
    if 0 <= job.port <= 65535:
        with trio.move_on_after(timeout):
            try:
                stream = await env.connect(job.host, job.port)
            except (OSError, ValueError, OverflowError, trio.TrioInternalError):
                stream = None
    if stream is None:
        return out, False
    out.connected = True
    try:
        data = job.request
        for pos in range(0, len(data), CHUNK):
            with trio.move_on_after(timeout) as scope:
                try:
                    await stream.send_all(data[pos : pos + CHUNK])
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    out.write_error = True
                    return out, True
            if scope.cancelled_caught:
                out.write_error = True
                out.timed_out = True
                return out, False
        lines = _Lines(stream, timeout)
        if job.auth:
            out.auth_line = await lines.line()
            if out.auth_line is None:
                return out, not lines.timed_out
        if job.select:
            out.select_line = await lines.line()
            if out.select_line is None:
                return out, not lines.timed_out
        for _ in job.keys:
            ln = await lines.line()
            if ln is None:
                out.socket_error = True
                out.timed_out = lines.timed_out
                return out, not out.lines and not lines.timed_out
            out.lines.append(ln)
        return out, False
    finally:
        await trio.aclose_forcefully(stream)


async def carry_out(node, c, job: MigrateJob) -> None:
    """Run a client's MIGRATE job and deliver its reply into ``c.out``."""
    srv = node.server
    env = node.env
    try:
        out, retry = await _attempt(env, job)
        if retry:
            out, _ = await _attempt(env, job)
    except BaseException:
        job.release(srv)
        raise
    srv.now_ms = env.unix_ms()
    if c.killed or c.id not in srv.clients:
        job.release(srv)
        return
    job.finish(c, out)
