"""The Env: the only door from node code to the outside world.

Node code takes time, randomness, the network and the disk from an Env and
from nowhere else, so the same code runs on real TCP (``RealEnv``) and inside
the simulator (``sim.SimEnv``, which implements the same interface on a
virtual clock and an in-memory network).

Interface:

* ``now()``: monotonic seconds (trio's clock; virtual under MockClock).
* ``unix_ms()`` / ``unix_us()``: wall-clock time for EXPIRE, TIME, epochs.
* ``rng(purpose)``: a ``random.Random`` for one purpose; seeded from the
  Env's seed when it has one, so a seed names a run.
* ``random_hex(n)``: n random hex digits (node ids, run ids).
* ``serve(host, port, handler, task_status)``: accept connections and run
  ``handler(stream, peer_addr, local_addr)`` in a task per connection.
* ``listen_tcp(host, port, backlog)`` (RealEnv only): bind and listen at
  once, synchronously, so that a command (CONFIG SET port/bind) can answer
  whether it worked; ``serve_listeners(listeners, handler)`` then accepts on
  them until they are closed (``stop_listening``).
* ``connect(host, port, source)``: an outbound byte stream (``source``: the
  local address to bind, ``bind-source-addr``; the simulator ignores it).
* ``fs``: files (``read``, ``write_atomic``, ``open_append``...).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import os as _os
import random
import socket
import sys
import time

import trio
from trio._core import _run as _trio_run  # (the deadline heap: _wake_at)


class RealFS:
    """Files on the real disk."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def write_atomic(self, path: str, data: bytes, fsync: bool = True) -> None:
        tmp = "%s.tmp-%d" % (path, os.getpid())
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            try:
                os.remove(tmp)  # a full disk: do not leave a partial temp file behind
            except OSError:
                pass
            raise
        if fsync:
            _fsync_dir(os.path.dirname(os.path.abspath(path)))

    def overwrite_in_place(self, path: str, data: bytes, fsync: bool = True) -> None:
        """Rewrite an existing file's bytes from offset 0, as Redis saves
        nodes.conf: padded with newlines to the old size (so no new block is
        needed when it does not grow), then truncated to the new size."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            old = os.fstat(fd).st_size
            padded = data + b"\n" * (old - len(data)) if old > len(data) else data
            view = memoryview(padded)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if fsync:
                os.fsync(fd)
            if len(padded) != len(data):
                try:
                    os.ftruncate(fd, len(data))
                except OSError:
                    pass  # the padding is harmless newlines
        finally:
            os.close(fd)

    def open_append(self, path: str):
        return open(path, "ab", buffering=0)

    def fsync(self, fh) -> None:
        os.fsync(fh.fileno())

    def lock_exclusive(self, path: str):
        """Open (creating) ``path`` and take a non-blocking exclusive flock.
        Returns a handle to keep (and ``unlock`` later); raises
        BlockingIOError if another process holds the lock."""
        import fcntl

        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        return fd

    def unlock(self, handle) -> None:
        try:
            os.close(handle)
        except OSError:
            pass

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def truncate(self, path: str, size: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(size)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _FirstWokenFirst(random.Random):
    """Trio's scheduler RNG with its coin always on "reverse the batch"."""

    def random(self) -> float:
        return 0.0


def run_tasks_in_wakeup_order() -> bool:
    """Make a real server's Trio run ready tasks in the order they woke.

    Trio runs each batch of ready tasks in insertion order or reversed, at
    random (``trio._core._run._r``), to shake out code that depends on the
    order. A server must not randomise it: when one client sends a command
    on a connection and then another on a second connection, redis-server
    runs them in that order (its event loop takes ready sockets in the
    order the kernel reports them), and clients and Redis's own tests rely
    on it. With the coin fixed, a batch runs first-woken first: the order
    in which the I/O manager saw the sockets become readable.

    Only the ``frtrio-server`` process calls this (before ``trio.run``); the
    simulator seeds and shuffles the same RNG for its own schedules. Returns
    False, changing nothing, when Trio has no such RNG."""
    import trio._core._run as run_mod

    if not isinstance(getattr(run_mod, "_r", None), random.Random):
        return False
    if getattr(run_mod, "_ALLOW_DETERMINISTIC_SCHEDULING", False):
        return False  # (a seeded schedule: the simulator's or a test's)
    run_mod._r = _FirstWokenFirst()
    return True


class _Wake:
    """An entry of Trio's deadline heap that wakes a parked task instead of
    cancelling a scope: the heap's protocol is a ``_registered_deadline``
    (inf once stale) and a ``_cancel`` the run loop calls when it is due."""

    __slots__ = ("_registered_deadline", "task", "deadlines")

    def __init__(self, deadline: float, task, deadlines):
        self._registered_deadline = deadline
        self.task = task
        self.deadlines = deadlines

    def _cancel(self, reason=None) -> None:
        self._registered_deadline = math.inf
        self.deadlines._active -= 1  # (what CancelScope's cancel does through remove())
        trio.lowlevel.reschedule(self.task)

    def drop(self) -> None:
        """The sleeper was cancelled first: this entry is stale from now."""
        if self._registered_deadline != math.inf:
            self._registered_deadline = math.inf
            self.deadlines._active -= 1


def _deadlines():
    """Trio's heap of deadlines (trio 0.35's run loop), None if not found."""
    runner = getattr(getattr(_trio_run, "GLOBAL_RUN_CONTEXT", None), "runner", None)
    d = getattr(runner, "deadlines", None)
    return d if hasattr(d, "add") and hasattr(d, "_active") else None


async def _wake_at(deadline: float, owner=None) -> None:
    """``trio.sleep_until`` without its cancel scope. Trio wakes a timed
    sleeper by cancelling the sleep's scope, which costs an idle node about
    as much as the rest of its cron tick (measured: a bare Trio loop ticking
    at 10 Hz used 3.2 ms of CPU a second, 1.6 ms with this). The sleeper is
    parked and an entry in Trio's own deadline heap reschedules it when due,
    so it wakes on time even when the run loop never goes idle; a
    cancellation of the sleeper (shutdown) works as for any checkpoint."""
    dl = _deadlines()
    if dl is None:
        await trio.sleep_until(deadline)
        return
    w = _Wake(deadline, trio.lowlevel.current_task(), dl)
    dl.add(deadline, w)
    if owner is not None:
        owner.waiter = w

    def abort(_raise_cancel):
        w.drop()
        return trio.lowlevel.Abort.SUCCEEDED

    try:
        await trio.lowlevel.wait_task_rescheduled(abort)
    finally:
        if owner is not None and owner.waiter is w:
            owner.waiter = None


def _wake_now(owner) -> bool:
    """Wake the task sleeping in ``_wake_at(..., owner)`` before its
    deadline; False if none is (it woke already, or never slept)."""
    w = owner.waiter
    if w is None or w._registered_deadline == math.inf:
        return False  # (an entry the run loop served is stale: its task is runnable)
    owner.waiter = None
    w.drop()
    trio.lowlevel.reschedule(w.task)
    return True


class RealEnv:
    """Real time, OS randomness (or a logged seed), real TCP and files."""

    conns_from_clock = False  # (only a simulated node's connections can be)

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._sys = random.SystemRandom() if seed is None else None
        self._rngs: dict[str, random.Random] = {}
        self.fs = RealFS()

    def now(self) -> float:
        return trio.current_time()

    async def sleep_until(self, deadline: float, owner=None) -> None:
        """Sleep until ``now()`` reaches ``deadline`` (the node's cron):
        a plain wake-up at the deadline (``_wake_at``), not a cancellation.
        With an ``owner`` (an object with a ``waiter`` attribute),
        ``wake(owner)`` ends the sleep early."""
        await _wake_at(deadline, owner)

    # whether ``wake`` can end a sleep early here (Trio's deadline heap was
    # found): the node's cron sleeps through ticks with no work only then
    can_wake = property(lambda self: _deadlines() is not None)

    @staticmethod
    def wake(owner) -> bool:
        """End the sleep of the task in ``sleep_until(..., owner)`` now."""
        return _wake_now(owner)

    def work_clock(self) -> float:
        """Seconds of real elapsed time, to size chunks of work so that one
        scheduler turn stays short (the simulator's stands still)."""
        return time.perf_counter()

    # the clock that times commands (SLOWLOG, LATENCY, commandstats): a
    # builtin, so a command pays two cheap calls
    mono_ns = staticmethod(time.perf_counter_ns)

    async def offload(self, fn):
        """Run a slow pure function off the event loop (a worker thread)."""
        return await trio.to_thread.run_sync(fn)

    def unix_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def unix_us(self) -> int:
        return time.time_ns() // 1000

    def rng(self, purpose: str) -> random.Random:
        """One RNG per purpose: asking again continues the same stream."""
        r = self._rngs.get(purpose)
        if r is None:
            if self.seed is None:
                r = random.Random(self._sys.getrandbits(64))
            else:
                r = random.Random(f"{self.seed}:{purpose}")
            self._rngs[purpose] = r
        return r

    def random_hex(self, n: int, purpose: str = "id") -> str:
        r = self.rng(purpose)
        return "".join("0123456789abcdef"[r.randrange(16)] for _ in range(n))

    async def serve(self, host: str, port: int, handler, *, task_status=trio.TASK_STATUS_IGNORED):
        """Listen on host:port; ``handler(stream, peer, local)`` per connection.

        Only a failure to *bind* ends this (the caller reports it as
        "Failed listening on port ..."). Once listening, nothing a client does
        can end it: transient accept errors are logged and skipped, the
        descriptor-exhaustion errors back off as Redis does, and an error on
        one connection (a peer gone before getpeername, a reset mid-command,
        even a bug in the handler) ends that connection only.
        """
        listeners = await trio.open_tcp_listeners(port, host=host or None, backlog=511)
        await self.serve_listeners(listeners, handler, task_status=task_status)

    def listen_tcp(self, host: str | None, port: int, backlog: int = 511, *,
                   ipv6: bool = False) -> trio.SocketListener:
        """Bind and listen on one address now, without waiting (a plain
        non-blocking bind + listen, as Redis's anetTcpServer): ``host`` None
        is the wildcard of the family (``ipv6`` picks it; an address with a
        colon is IPv6). The first address the name resolves to is used.
        Raises OSError (``socket.gaierror`` for a name that does not
        resolve); nothing is left open then."""
        family = socket.AF_INET6 if ipv6 or (host and ":" in host) else socket.AF_INET
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        last: OSError | None = None
        for fam, typ, proto, _, addr in infos:
            try:
                sock = socket.socket(fam, typ, proto)
            except OSError as e:
                last = e
                continue
            try:
                if fam == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(addr)
                sock.listen(backlog)
                sock.setblocking(False)
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            except BaseException:
                sock.close()
                raise
            return trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        raise last if last is not None else OSError(errno.EADDRNOTAVAIL, "no address to bind")

    async def serve_listeners(self, listeners, handler, *, task_status=trio.TASK_STATUS_IGNORED):
        """Accept on listeners already open until each is closed; each
        connection runs in this task's nursery, so closing the listeners
        (``stop_listening``) stops accepting and leaves the connections be."""
        for ln in listeners:
            try:
                ln.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        async with trio.open_nursery() as n:
            for ln in listeners:
                n.start_soon(_accept_loop, ln, handler, n)
            task_status.started(listeners)

    async def serve_unix(self, path: str, perm: int, handler, *,
                         task_status=trio.TASK_STATUS_IGNORED):
        """Listen on a unix socket (``unixsocket``/``unixsocketperm``): an
        existing file at ``path`` is replaced, as Redis does; clients show
        as ``path:0``."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(path)
            if perm:
                os.chmod(path, perm)
            sock.listen(511)
        except OSError:
            sock.close()
            raise
        listener = trio.SocketListener(sock)
        addr = "%s:0" % path
        async with trio.open_nursery() as n:
            n.start_soon(_accept_loop, listener, handler, n, addr)
            task_status.started(listener)

    async def connect(self, host: str, port: int, source: str | None = None):
        """An outbound TCP stream; ``source`` is the local address to bind
        first (``bind-source-addr``), None the kernel's choice."""
        stream = await trio.open_tcp_stream(host, port, local_address=source or None)
        try:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return stream

    def stop_listening(self, listeners) -> None:
        """Close listening sockets at once (SHUTDOWN): a client connecting
        after the SHUTDOWN's connection closed is refused, as when Redis has
        exited, instead of sitting in the backlog until the node unwinds."""
        for ln in listeners:
            sock = getattr(ln, "socket", None)
            if sock is not None:
                sock.close()

    def crash(self, node, e) -> None:
        """DEBUG SEGFAULT / ASSERT / PANIC: the crash report, then death."""
        from frtrio.runtime import crash

        crash.crash(node, e)

    def freeze(self, seconds: float) -> None:
        """Stop the whole process for a while (DEBUG SLEEP), as Redis does."""
        if seconds > 0:
            time.sleep(seconds)

    async def pause(self, seconds: float) -> None:
        """DEBUG SLEEP: block the whole process, as Redis does (no checkpoint:
        nothing else runs meanwhile). The simulator's Env pauses one node on
        virtual time instead."""
        self.freeze(seconds)

    def local_address(self, stream) -> str:
        return _fmt_addr(stream.socket.getsockname())

    def host_info(self):
        return RealHostInfo()


def _fmt_addr(a) -> str:
    host, port = a[0], a[1]
    if ":" in host:
        return "[%s]:%d" % (host, port) if False else "%s:%d" % (host, port)
    return "%s:%d" % (host, port)


class RealHostInfo:
    os = "%s %s %s" % (_os.uname().sysname, _os.uname().release, _os.uname().machine)
    executable = _os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""

    @property
    def pid(self) -> int:
        return _os.getpid()

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * _os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def used_memory(self) -> int:
        return self.rss()

    def total_memory(self) -> int:
        try:
            return _os.sysconf("SC_PAGE_SIZE") * _os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return 0

    def cpu(self) -> tuple[float, float]:
        t = _os.times()
        return (t.user, t.system)


# errnos after which accepting again at once would only fail again: Redis logs
# and goes on, the next event-loop turn retries; we wait a moment first
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_BACKOFF_S = 0.1

accept_log = logging.getLogger("frtrio")


async def _accept_loop(listener, handler, nursery, addr: str | None = None) -> None:
    """Accept connections on one listener until cancelled (``addr``: the
    fixed peer/local address of a unix socket's clients)."""
    while True:
        try:
            stream = await listener.accept()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the listener itself was closed (shutdown)
        except OSError as e:
            # trio already skips ECONNABORTED/EPROTO and friends; anything
            # else is still one client's problem, never the node's
            accept_log.warning("Accepting client connection: %s", e.strerror or e)
            if e.errno in _ACCEPT_CAPACITY_ERRNOS:
                await trio.sleep(ACCEPT_BACKOFF_S)
            continue
        nursery.start_soon(_guarded_connection, stream, handler, addr)


async def _guarded_connection(stream, handler, addr: str | None = None) -> None:
    """Run one connection; whatever happens to it stays with it."""
    try:
        try:
            if addr is None:
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        try:
            if addr is not None:
                peer = local = addr
            else:
                peer = _fmt_addr(stream.socket.getpeername())
                local = _fmt_addr(stream.socket.getsockname())
        except OSError as e:
            # reset before we looked at it (ENOTCONN): Redis logs the same way
            accept_log.warning("Accepting client connection: %s", e.strerror or e)
            return
        await handler(stream, peer, local)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
        pass
    except Exception as e:  # noqa: BLE001 - one connection must never end the node
        if isinstance(e, OSError):
            accept_log.warning("Client connection error: %s", e.strerror or e)
        else:
            from frtrio.core.engine import INTERNAL_ERROR_MARK

            accept_log.exception("%s accepting a connection (connection closed)", INTERNAL_ERROR_MARK)
    finally:
        with trio.CancelScope(shield=True):
            try:
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
