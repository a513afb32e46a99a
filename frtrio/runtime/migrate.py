"""MIGRATE's network part (Trio shell).

``commands/dump.py`` turns a MIGRATE into a ``MigrateJob`` (the AUTH and
RESTORE commands, already serialized) and leaves it as
a ``RunMigrate`` effect (frtrio/core/effects.py). The client shell (``node.ClientConn``) picks it up
right after the command and awaits ``carry_out``, so that client waits for
its reply while every other client keeps being served (redis-server blocks
the whole server for the duration; that is the one intended difference).

What happens on the wire is Redis's migrateCommand:

* connections are cached per target (named "host:port" as given), for 10 s
  of idleness, at most 64 (a random one is closed to make room); each
  remembers the db it selected, so SELECT is sent only when the db changes,
  and it stays authenticated;
* ``timeout`` ms bounds the connect, each 64 KiB written and each reply line;
* a refused connection shows up as a write error ("IOERR error or timeout
  writing to target instance"), as Redis connects without blocking; a
  connect that times out or a host that does not resolve is "connecting";
* after a socket error that is not a timeout, before any RESTORE reply was
  read, the cached connection is dropped and the whole exchange is retried
  once on a new one;
* a socket error closes the cached connection; a target error forgets its
  selected db.

The outcome goes to ``MigrateJob.finish`` (pure), which removes the migrated
keys and answers.

While a MIGRATE (without COPY) is in flight, another client's command on one
of its keys waits for it (``wait_keys_free``), so it runs after the MIGRATE
as it would on redis-server.
"""

from __future__ import annotations

import socket

import trio
from trio_util import RepeatedEvent

from frtrio.core.client import F
from frtrio.commands.dump import MigrateJob, MigrateOutcome, error_from_target, waits_for_migrate

CHUNK = 64 * 1024
CACHE_TTL = 10.0  # seconds of idleness before a cached connection is closed
CACHE_ITEMS = 64


class _Cached:
    __slots__ = ("stream", "last_dbid", "last_use", "buf", "lock")

    def __init__(self, stream, now: float):
        self.stream = stream
        self.last_dbid = -1
        self.last_use = now
        self.buf = bytearray()
        self.lock = trio.Lock()


class SocketCache:
    """The node's cached MIGRATE connections (Redis's migrate_cached_sockets)."""

    def __init__(self, node):
        self.node = node
        self.sockets: dict[str, _Cached] = {}
        self.rng = node.env.rng("migrate")
        self.reaper_started = False
        self.done = RepeatedEvent()  # set whenever a MIGRATE ends

    def __len__(self) -> int:
        return len(self.sockets)

    def add(self, name: str, cs: _Cached) -> None:
        self.sockets[name] = cs
        self._count()

    def _count(self) -> None:
        # INFO stats: migrate_cached_sockets
        self.node.server.stats["migrate_cached_sockets"] = len(self.sockets)

    async def close(self, name: str, cs: _Cached | None = None) -> None:
        cur = self.sockets.get(name)
        if cur is not None and (cs is None or cur is cs):
            del self.sockets[name]
            self._count()
        target = cs or cur
        if target is not None:
            await trio.aclose_forcefully(target.stream)

    async def reap(self) -> None:
        """Close connections idle for more than CACHE_TTL (serverCron's
        migrateCloseTimedoutSockets, once a second)."""
        env = self.node.env
        while True:
            await trio.sleep(1.0)
            now = env.now()
            for name, cs in list(self.sockets.items()):
                if now - cs.last_use > CACHE_TTL and not cs.lock.locked():
                    await self.close(name, cs)


def _cache(node) -> SocketCache:
    cache = getattr(node, "migrate_sockets", None)
    if cache is None:
        cache = SocketCache(node)
        node.migrate_sockets = cache  # owned by the node, kept by this module
    if not cache.reaper_started and getattr(node, "nursery", None) is not None:
        cache.reaper_started = True
        node.nursery.start_soon(cache.reap)
    return cache


async def _line(cs: _Cached, timeout: float) -> tuple[bytes | None, bool]:
    """(line without CRLF or None, timed out)."""
    with trio.move_on_after(timeout):
        while True:
            i = cs.buf.find(b"\n")
            if i >= 0:
                line = bytes(cs.buf[:i])
                del cs.buf[: i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line, False
            try:
                data = await cs.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None, False
            if not data:
                return None, False
            cs.buf += data
    return None, True


async def _connect(env, job: MigrateJob, timeout: float):
    """A new stream, or "connecting" (None), or "refused" (a write error)."""
    if job.port < 0:
        return None  # the resolver refuses a negative port
    stream = None
    with trio.move_on_after(timeout):
        try:
            stream = await env.connect(job.host, job.port)
        except socket.gaierror:
            return None
        except (OSError, ValueError, OverflowError):
            return "refused"
    return stream


async def carry_out(node, c, job: MigrateJob) -> None:
    """Run a client's MIGRATE job and deliver its reply into ``c.out``."""
    srv = node.server
    try:
        try:
            out = await _exchange(node, job)
        except BaseException:
            job.release(srv)
            raise
        srv.now_ms = node.env.unix_ms()
        if c.flags & F.CLOSE_ASAP or c.id not in srv.clients:
            job.release(srv)
            return
        job.finish(c, out)
    finally:
        # wake the commands held by wait_keys_free
        cache = _cache(node)
        cache.done.set()


async def wait_keys_free(node, c, argv) -> None:
    """Hold client ``c``'s command until no other client's MIGRATE has one
    of its keys in flight (``dump.waits_for_migrate``)."""
    srv = node.server
    cache = _cache(node)
    while waits_for_migrate(srv, c, argv):
        await cache.done.wait()


async def _exchange(node, job: MigrateJob) -> MigrateOutcome:
    env = node.env
    cache = _cache(node)
    name = job.cache_name
    timeout = job.timeout_ms / 1000.0
    may_retry = True
    while True:
        out = MigrateOutcome()
        cs = cache.sockets.get(name)
        if cs is None:
            stream = await _connect(env, job, timeout)
            if stream is None:
                out.connect_failed = True
                return out
            if stream == "refused":
                # Redis's non-blocking connect "succeeds"; the write fails.
                out.io_error = "writing"
                if may_retry:
                    may_retry = False
                    continue
                return out
            if len(cache.sockets) >= CACHE_ITEMS:
                victim = list(cache.sockets)[cache.rng.randrange(len(cache.sockets))]
                await cache.close(victim)
            cs = _Cached(stream, env.now())
            cache.add(name, cs)
        async with cs.lock:
            cs.last_use = env.now()
            job.select = cs.last_dbid != job.dbid
            data = job.auth_cmd + (job.select_cmd() if job.select else b"") + job.restore_cmds
            timed_out = False
            failed = False
            for pos in range(0, len(data), CHUNK):
                with trio.move_on_after(timeout) as scope:
                    try:
                        await cs.stream.send_all(data[pos : pos + CHUNK])
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        failed = True
                if scope.cancelled_caught:
                    failed = timed_out = True
                if failed:
                    break
            if failed:
                out.io_error = "writing"
            else:
                if job.auth:
                    out.auth_line, timed_out = await _line(cs, timeout)
                    failed = out.auth_line is None
                if not failed and job.select:
                    out.select_line, timed_out = await _line(cs, timeout)
                    failed = out.select_line is None
                if failed:
                    out.io_error = "reading"
                else:
                    socket_error = False
                    for _ in job.keys:
                        ln, timed_out = await _line(cs, timeout)
                        if ln is None:
                            socket_error = True
                            break
                        out.lines.append(ln)
                    target_error = error_from_target(job, out)
                    if (not target_error and socket_error and not out.lines and may_retry
                            and not timed_out):
                        failed = True
                        out.io_error = "reading"
                    else:
                        if socket_error:
                            await cache.close(name, cs)
                            if not target_error:
                                out.io_error = "reading"
                            return out
                        cs.last_dbid = -1 if target_error else job.dbid
                        cs.last_use = env.now()
                        return out
        # a socket error: drop the connection, maybe try once more
        await cache.close(name, cs)
        if not timed_out and may_retry:
            may_retry = False
            continue
        return out
