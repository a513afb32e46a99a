"""The simulated network: ordered byte streams between hosts, with faults.

Every connection is two one-way pipes. A pipe is a queue of chunks, each
stamped with the virtual time it may be delivered (now + the link's latency,
never earlier than the chunk before it, so bytes stay in order as TCP keeps
them). End of stream (FIN) is a chunk too, so it is delayed and held like
data.

Faults, all driven by the simulator (never by node code):

* ``reset(conn)``: both ends see ``BrokenResourceError`` on their next
  operation and data in flight is gone. TCP never drops bytes silently, so a
  lost packet is modelled as a reset.
* latency per directed host pair (``set_latency``), a delay fault;
* ``cut(src, dst)``: a one-way partition; chunks from src to dst are held (as
  TCP retransmits them) and delivered after ``heal``. ``partition(groups)``
  cuts both ways between groups. New connections across a cut time out.
* ``pause(host, until)``: the host's process is stopped (SIGSTOP, DEBUG
  SLEEP): its ends neither read nor write nor accept until then; peers keep
  sending into the buffers.
* ``kill_host(host)``: every connection of the host is reset and its
  listeners disappear.

Streams return ``bytes`` (never ``bytearray``), as ``SocketStream`` does.
Everything is keyed by host names and connection ids (ints in creation
order), never by ``id()``, so iteration order is deterministic.
"""

from __future__ import annotations

import errno
import math
from collections import deque

import trio

from frtrio.sim import sched

FIN = b""


class _Pipe:
    __slots__ = ("src", "dst", "chunks", "waiter", "broken", "reader_closed", "last_at")

    def __init__(self, src: str, dst: str):
        self.src = src
        self.dst = dst
        self.chunks: deque = deque()  # [deliver_at, bytes]; b"" = FIN
        self.waiter = None  # the reader parked on this pipe (sched.park)
        self.broken = False
        self.reader_closed = False
        self.last_at = 0.0

    def kick(self) -> None:
        if self.waiter is not None:
            sched.wake(self)

    async def wait(self, until: float = math.inf, clock=None) -> None:
        """Until something changes on the pipe, or virtual time ``until``."""
        await sched.park(until, self, clock)


class SimConnection:
    __slots__ = ("id", "client", "server", "a2b", "b2a", "client_addr", "server_addr",
                 "a_host", "b_host", "open_ends", "tag")

    def __init__(self, cid, a_host, a_port, b_host, b_port, net, tag=""):
        self.id = cid
        self.a_host = a_host
        self.b_host = b_host
        self.client_addr = "%s:%d" % (a_host, a_port)
        self.server_addr = "%s:%d" % (b_host, b_port)
        self.a2b = _Pipe(a_host, b_host)
        self.b2a = _Pipe(b_host, a_host)
        self.client = SimStream(net, self, a_host, self.b2a, self.a2b)
        self.server = SimStream(net, self, b_host, self.a2b, self.b2a)
        self.open_ends = 2
        self.tag = tag


class SimStream(trio.abc.HalfCloseableStream):
    """One end of a simulated TCP connection."""

    __slots__ = ("net", "conn", "host", "inp", "out", "closed", "eof_sent",
                 "_recv_busy", "_send_busy")

    def __init__(self, net: "SimNet", conn: SimConnection, host: str, inp: _Pipe, out: _Pipe):
        self.net = net
        self.conn = conn
        self.host = host
        self.inp = inp
        self.out = out
        self.closed = False
        self.eof_sent = False
        self._recv_busy = False
        self._send_busy = False

    @property
    def local_address(self) -> str:
        c = self.conn
        return c.client_addr if self is c.client else c.server_addr

    @property
    def peer_address(self) -> str:
        c = self.conn
        return c.server_addr if self is c.client else c.client_addr

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        # Same yield pattern as trio's SocketStream: a cancel point first; if
        # data is there, take it and make a shielded schedule point; else
        # wait and return as soon as data arrives.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._recv_busy:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._recv_busy = True
        try:
            p = self.inp
            net = self.net
            clock = net.clock
            first = True
            while True:
                if self.closed:
                    raise trio.ClosedResourceError("this stream was closed")
                if p.broken:
                    raise trio.BrokenResourceError("connection reset by peer")
                now = clock._now if clock is not None else trio.current_time()
                pu = net.paused_until.get(self.host)
                if pu is not None and pu > now:
                    await net.wait_unpaused(self.host)
                    first = False
                    continue
                chunks = p.chunks
                if chunks and (not net.cuts or (p.src, p.dst) not in net.cuts):
                    at = chunks[0][0]
                    if at <= now:
                        data = _take(chunks, now, max_bytes)
                        if first:
                            await trio.lowlevel.cancel_shielded_checkpoint()
                        return data
                    await p.wait(at, clock)
                else:
                    await p.wait(math.inf, clock)
                first = False
        finally:
            self._recv_busy = False

    def receive_nowait(self, max_bytes: int | None = None):
        """``receive_some`` without waiting, for a client driven from the
        clock (``frtrio/sim/client.py``): the bytes due now (``b""`` at end
        of stream), or None when nothing is due yet (``arm_receive`` then
        calls back when something may be). Raises ``BlockingIOError`` when
        only a task can wait for the bytes (the host is paused, the path
        is cut, another task is receiving), else as ``receive_some``."""
        if self.closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._recv_busy:
            raise BlockingIOError(errno.EAGAIN, "another task is receiving on this stream")
        p = self.inp
        if p.broken:
            raise trio.BrokenResourceError("connection reset by peer")
        net = self.net
        clock = net.clock
        now = clock._now if clock is not None else trio.current_time()
        pu = net.paused_until.get(self.host)
        if pu is not None and pu > now:
            raise BlockingIOError(errno.EAGAIN, "the host is paused")
        chunks = p.chunks
        if not chunks:
            return None
        if net.cuts and (p.src, p.dst) in net.cuts:
            raise BlockingIOError(errno.EAGAIN, "the path is cut")
        if chunks[0][0] <= now:
            return _take(chunks, now, max_bytes)
        return None

    def arm_receive(self, fn) -> None:
        """Call ``fn()`` from the clock when ``receive_nowait`` may have
        something: at the next queued chunk's delivery time, or when a chunk
        arrives, the connection breaks or the network changes."""
        p = self.inp
        chunks = p.chunks
        sched.arm(p, fn, chunks[0][0] if chunks else math.inf,
                  self.net.clock or trio.lowlevel.current_clock())

    async def serve_from_clock(self, steps, n: int):
        """A node's reader served from the clock (``runtime/client_conn.py``
        ``ClientConn._reader``, when the world sets ``conns_from_clock``):
        park the calling task; whenever bytes are due, take at most ``n``
        of them (``receive_nowait``) and send them into the generator
        ``steps`` from a clock callback, for as long as it asks for more
        bytes (an int, the new ``n``). Returns, to the task, the first
        other thing it asks for (an async callable), or ``n`` when only a
        task can read the bytes (the host is paused, the path is cut, the
        connection broke or closed: the task's own ``receive_some`` then
        waits or raises as usual), or None when ``steps`` returned. What
        ``steps`` raises is raised here. A request costs no trip through
        Trio's scheduler this way: the reader's work runs between two steps
        of Trio's run loop, as the simulator's own clients do."""
        clock = self.net.clock or trio.lowlevel.current_clock()
        box = _Served(n)
        inp = self.inp
        # from the clock, the generator runs in its task's context (the
        # node it belongs to: its log lines, the tasks it starts)
        run_in_task_context = trio.lowlevel.current_task().context.run
        send = steps.send

        def on_clock(in_task=False):
            while True:
                try:
                    data = self.receive_nowait(box.n)
                except (BlockingIOError, trio.BrokenResourceError, trio.ClosedResourceError):
                    box.req = box.n  # (the task reads)
                    break
                if data is None:
                    self.arm_receive(on_clock)
                    return
                try:
                    req = send(data) if in_task else run_in_task_context(send, data)
                except StopIteration:
                    box.req = None
                    break
                except BaseException as e:  # noqa: BLE001 - raised in the task instead
                    box.exc = e
                    break
                if type(req) is not int:
                    box.req = req
                    break
                box.n = req  # (more may be due already)
            sched.wake(box)

        on_clock(True)
        if box.req is _Served.NONE and box.exc is None:
            try:
                await sched.park(math.inf, box, clock)
            finally:
                sched.disarm(inp)
        if box.exc is not None:
            raise box.exc
        return box.req

    async def send_all(self, data) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._send_busy:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._send_busy = True
        try:
            net = self.net
            await net.wait_unpaused(self.host)  # a stopped process sends nothing
            self._push_checked(data)
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._send_busy = False

    def send_nowait(self, data) -> bool:
        """``send_all`` without its schedule point, for the simulator's own
        clients (node code uses ``send_all``, which yields as a socket send
        does): True once the bytes are queued; False when the stream would
        make the sender wait (its host is paused, another task is sending):
        then call ``send_all``. Raises as ``send_all`` does otherwise."""
        try:
            self.try_send(data)
        except BlockingIOError:
            return False
        return True

    def try_send(self, data) -> int:
        """A non-blocking socket's ``send``, for the node's reply path
        (``runtime/client_conn.py`` hands replies to a real socket the same
        way, without a schedule point): queues all of ``data`` and returns
        its length; raises ``BlockingIOError`` when the host is paused (the
        caller leaves the bytes to its writer task, whose ``send_all``
        waits), the errors of ``send_all`` otherwise."""
        if self.closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self._send_busy:
            raise BlockingIOError(errno.EAGAIN, "another task is sending on this stream")
        net = self.net
        if net.paused_until:
            pu = net.paused_until.get(self.host)
            if pu is not None and pu > trio.current_time():
                raise BlockingIOError(errno.EAGAIN, "the host is paused")
        self._push_checked(data)
        return len(data)

    def _push_checked(self, data) -> None:
        """Queue ``data`` toward the peer, or raise as a socket send does on
        a closed, half-closed or reset connection."""
        if self.closed:
            raise trio.ClosedResourceError("this stream was closed")
        if self.eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        p = self.out
        if p.broken or p.reader_closed:
            raise trio.BrokenResourceError("connection reset by peer")
        if data:
            self.net._push(p, bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        if self.closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("this stream was closed")
        if not self.eof_sent:
            self.eof_sent = True
            if not self.out.broken:
                self.net._push(self.out, FIN)
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.close_now()
        await trio.lowlevel.checkpoint()

    def close_now(self) -> None:
        """Close without a checkpoint (what a dying process's kernel does)."""
        if self.closed:
            return
        self.closed = True
        if not self.eof_sent and not self.out.broken:
            self.eof_sent = True
            self.net._push(self.out, FIN)
        inp = self.inp
        inp.reader_closed = True
        inp.chunks.clear()
        inp.kick()
        self.conn.open_ends -= 1
        if self.conn.open_ends <= 0:
            self.net.conns.pop(self.conn.id, None)


class _Served:
    """``SimStream.serve_from_clock``'s state: the task parked on it
    (``waiter``), the byte count asked for, and the outcome for the task."""

    __slots__ = ("n", "req", "exc", "waiter")
    NONE = object()

    def __init__(self, n: int):
        self.n = n
        self.req = _Served.NONE
        self.exc = None
        self.waiter = None


def _take(chunks: deque, now: float, max_bytes: int | None) -> bytes:
    first = chunks[0]
    data = first[1]
    if data is FIN or not data:
        return b""  # EOF: stays queued, so every later read sees EOF too
    if max_bytes is not None and len(data) > max_bytes:
        first[1] = data[max_bytes:]
        return data[:max_bytes]
    chunks.popleft()
    if not chunks or chunks[0][0] > now or not chunks[0][1]:
        return data
    parts = [data]
    n = len(data)
    while chunks:
        at, d = chunks[0]
        if at > now or not d:
            break
        if max_bytes is not None and n + len(d) > max_bytes:
            room = max_bytes - n
            if room > 0:
                parts.append(d[:room])
                chunks[0][1] = d[room:]
            break
        parts.append(d)
        n += len(d)
        chunks.popleft()
    return b"".join(parts)


class _Listener:
    __slots__ = ("host", "port", "owner", "pending", "ev", "closed")

    def __init__(self, host, port, owner):
        self.host = host
        self.port = port
        self.owner = owner
        self.pending: deque = deque()
        self.ev: trio.Event | None = None
        self.closed = False

    def kick(self):
        ev = self.ev
        if ev is not None:
            self.ev = None
            ev.set()

    async def accept(self, net) -> SimConnection:
        while True:
            now = trio.current_time()
            pu = net.paused_until.get(self.host)
            if pu is not None and pu > now:
                await net.wait_unpaused(self.host)
                continue
            if self.pending:
                await trio.lowlevel.checkpoint()
                if self.pending and not (
                    net.paused_until.get(self.host, 0) > trio.current_time()
                ):
                    return self.pending.popleft()
                continue
            if self.ev is None:
                self.ev = trio.Event()
            await self.ev.wait()


class SimNet:
    def __init__(self, rng, *, latency: tuple[float, float] = (0.0, 0.0),
                 connect_timeout: float = 3.0, clock=None):
        self.rng = rng  # draws latencies; seeded by the world
        # the run's SimClock, if known: its time is read directly (the same
        # value as trio.current_time(), without the run-context lookup)
        self.clock = clock
        self.default_latency = latency
        self.latency: dict[tuple[str, str], tuple[float, float]] = {}
        self.cuts: dict[tuple[str, str], None] = {}
        self.paused_until: dict[str, float] = {}
        self.self_paused: dict[str, float] = {}  # DEBUG SLEEP's share of paused_until
        self.listeners: dict[tuple[str, int], _Listener] = {}
        self.conns: dict[int, SimConnection] = {}
        self.next_conn = 0
        self.next_port: dict[str, int] = {}
        self.connect_timeout = connect_timeout
        self.changed: trio.Event | None = None
        self.bytes_sent = 0
        self.chunks_sent = 0

    # --- delivery -------------------------------------------------------------

    def _delay(self, src: str, dst: str) -> float:
        # (no per-link latency in most runs: no key tuple to build)
        lo, hi = self.latency.get((src, dst), self.default_latency) if self.latency \
            else self.default_latency
        if hi <= 0:
            return 0.0
        if hi <= lo:
            return lo
        return lo + (hi - lo) * self.rng.random()

    def _push(self, p: _Pipe, data: bytes) -> None:
        clock = self.clock
        now = clock._now if clock is not None else trio.current_time()
        at = now + self._delay(p.src, p.dst)
        if at < p.last_at:
            at = p.last_at
        p.last_at = at
        p.chunks.append([at, data])
        self.bytes_sent += len(data)
        self.chunks_sent += 1
        if p.waiter is not None:
            if at > now and not self.cuts:
                # the reader could only park again until the chunk is due:
                # let it sleep until then instead of waking it twice
                sched.wake_at(p, at, clock)
            else:
                sched.wake(p)

    def _notify_change(self) -> None:
        ev = self.changed
        if ev is not None:
            self.changed = None
            ev.set()
        for conn in list(self.conns.values()):
            conn.a2b.kick()
            conn.b2a.kick()

    async def wait_unpaused(self, host: str) -> None:
        """Until ``host`` is no longer paused: its pause ends, or is lifted
        early (``unpause_all`` when the faults are healed)."""
        while True:
            pu = self.paused_until.get(host)
            if pu is None or pu <= trio.current_time():
                return
            with trio.move_on_at(pu):
                await self._wait_change()

    async def _wait_change(self) -> None:
        if self.changed is None:
            self.changed = trio.Event()
        await self.changed.wait()

    # --- listen / connect -------------------------------------------------------

    def listen(self, host: str, port: int, owner: str) -> _Listener:
        key = (host, port)
        if key in self.listeners:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        lst = _Listener(host, port, owner)
        self.listeners[key] = lst
        return lst

    def unlisten(self, lst: _Listener) -> None:
        if self.listeners.get((lst.host, lst.port)) is lst:
            del self.listeners[(lst.host, lst.port)]
        lst.closed = True
        while lst.pending:
            self.reset(lst.pending.popleft())

    def _ephemeral(self, host: str) -> int:
        p = self.next_port.get(host, 40000)
        self.next_port[host] = p + 1 if p < 60999 else 40000
        return p

    async def connect(self, src: str, dst: str, port: int, tag: str = "") -> SimStream:
        """Open a connection from host src to dst:port (raises OSError)."""
        deadline = trio.current_time() + self.connect_timeout
        while (src, dst) in self.cuts or (dst, src) in self.cuts:
            with trio.move_on_at(deadline):
                await self._wait_change()
                continue
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        rtt = self._delay(src, dst) + self._delay(dst, src)
        if rtt > 0:
            clock = self.clock
            if clock is not None:
                await sched.park(clock._now + rtt, None, clock)  # (no cancel scope)
            else:
                await trio.sleep(rtt)
        else:
            await trio.lowlevel.checkpoint()
        lst = self.listeners.get((dst, port))
        if lst is None or lst.closed:
            raise OSError(errno.ECONNREFUSED, "Connection refused")
        self.next_conn += 1
        conn = SimConnection(self.next_conn, src, self._ephemeral(src), dst, port, self, tag)
        self.conns[conn.id] = conn
        lst.pending.append(conn)
        lst.kick()
        return conn.client

    # --- faults -----------------------------------------------------------------

    def reset(self, conn: SimConnection) -> None:
        for p in (conn.a2b, conn.b2a):
            p.broken = True
            p.chunks.clear()
            p.kick()
        self.conns.pop(conn.id, None)

    def conns_of(self, host: str) -> list[SimConnection]:
        return [c for c in self.conns.values() if c.a_host == host or c.b_host == host]

    def kill_host(self, host: str) -> int:
        n = 0
        for conn in self.conns_of(host):
            self.reset(conn)
            n += 1
        for key in [k for k in self.listeners if k[0] == host]:
            self.unlisten(self.listeners[key])
        self.paused_until.pop(host, None)
        self.self_paused.pop(host, None)
        return n

    def cut(self, src: str, dst: str) -> None:
        self.cuts[(src, dst)] = None
        self._notify_change()

    def partition(self, groups: list[list[str]]) -> None:
        """Cut both ways between every pair of groups."""
        for i, g in enumerate(groups):
            for h in groups[i + 1 :]:
                for a in g:
                    for b in h:
                        self.cuts[(a, b)] = None
                        self.cuts[(b, a)] = None
        self._notify_change()

    def heal(self) -> None:
        self.cuts.clear()
        self._notify_change()

    def set_latency(self, a: str, b: str, lo: float, hi: float) -> None:
        self.latency[(a, b)] = (lo, hi)
        self.latency[(b, a)] = (lo, hi)

    def clear_latency(self) -> None:
        self.latency.clear()

    def pause(self, host: str, until: float, fault: bool = True) -> None:
        """Stop ``host``'s I/O until ``until``: a fault (lifted early by
        ``unpause_all``) or the node's own doing (DEBUG SLEEP: it lasts)."""
        if self.paused_until.get(host, 0.0) < until:
            self.paused_until[host] = until
        if not fault and self.self_paused.get(host, 0.0) < until:
            self.self_paused[host] = until

    def unpause_all(self) -> None:
        """End the faults' pauses (a node's own DEBUG SLEEP goes on)."""
        now = trio.current_time()
        self.paused_until.clear()
        for host, until in list(self.self_paused.items()):
            if until > now:
                self.paused_until[host] = until
            else:
                del self.self_paused[host]
        self._notify_change()
