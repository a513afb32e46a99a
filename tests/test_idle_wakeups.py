"""The idle path's cheaper wake-ups (issue 15): the real cron's deadline-heap
wake-up (RealEnv._wake_at) and the bus link's direct send."""

from __future__ import annotations

import socket

import trio
import trio.testing

from frtrio.runtime.bus import Link
from frtrio.runtime.env import RealEnv, _deadlines, _wake_at


async def test_wake_at_wakes_at_its_deadline(autojump_clock):
    env = RealEnv()
    t0 = trio.current_time()
    for i in range(1, 6):
        await env.sleep_until(t0 + i * 0.1)
        assert trio.current_time() >= t0 + i * 0.1 - 1e-9
    assert trio.current_time() < t0 + 0.5 + 1e-6  # (no wake-up late by a tick)


async def test_wake_at_cancelled_leaves_trio_heap_consistent(autojump_clock):
    """A sleeper cancelled before its deadline (a shutdown) leaves a stale
    heap entry that Trio discards; enough of them make Trio prune its heap,
    which asserts that its count of live deadlines is right."""
    dl = _deadlines()
    assert dl is not None  # (trio's run loop as this module knows it)
    active = dl._active
    for _ in range(2500):  # > Trio's prune threshold (1000 stale entries)
        with trio.move_on_after(0.01):
            await _wake_at(trio.current_time() + 100.0)
    assert dl._active == active
    t0 = trio.current_time()
    await _wake_at(t0 + 1.0)  # still wakes on time after all that
    assert trio.current_time() >= t0 + 1.0


async def test_wake_at_and_cancel_scopes_interleave(autojump_clock):
    order = []

    async def sleeper(name, delay):
        await _wake_at(trio.current_time() + delay)
        order.append(name)

    async with trio.open_nursery() as n:
        n.start_soon(sleeper, "b", 0.2)
        n.start_soon(sleeper, "a", 0.1)
        with trio.move_on_after(0.15):
            await trio.sleep_forever()
        order.append("scope")
        n.start_soon(sleeper, "c", 0.01)
    assert order == ["a", "scope", "c", "b"]


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), b


async def test_bus_link_sends_at_once_on_a_real_socket():
    stream, peer = _pair()
    link = Link(inbound=False)
    link.attach(stream)
    assert link.sock is not None
    link.send(b"one")
    link.send(b"two")
    # nothing queued for the writer: both went to the socket in order
    assert link.out == [] and link.out_bytes == 0
    assert peer.recv(100) == b"onetwo"
    # while the writer is in a send, a packet waits behind it (never interleaved)
    link.sending = True
    link.send(b"three")
    assert link.out == [b"three"] and link.wake.is_set()
    link.sending = False
    link.send(b"four")  # something queued already: behind it, in order
    assert link.out == [b"three", b"four"]
    link.close()
    link.send(b"five")  # a closed link drops what is sent to it
    assert link.out == [b"three", b"four"]
    await stream.aclose()
    peer.close()


async def test_bus_link_writer_sends_what_was_queued_in_order():
    stream, peer = _pair()
    link = Link(inbound=False)
    link.attach(stream)
    peer_stream = trio.SocketStream(trio.socket.from_stdlib_socket(peer))
    link.sending = True
    link.send(b"a" * 10)
    link.send(b"b" * 10)
    link.sending = False
    from frtrio.runtime.bus import BusShell

    async with trio.open_nursery() as n:
        n.start_soon(BusShell._writer, None, link)
        got = b""
        while len(got) < 20:
            got += await peer_stream.receive_some(100)
        link.send(b"c")  # the writer idle again: straight to the socket
        while len(got) < 21:
            got += await peer_stream.receive_some(100)
        n.cancel_scope.cancel()
    assert got == b"a" * 10 + b"b" * 10 + b"c"
    await stream.aclose()
    await peer_stream.aclose()


def test_bus_link_without_a_socket_queues_for_the_writer():
    """The simulator's streams (no raw socket): every packet goes through
    the writer task, as before (the simulator's schedules are unchanged)."""

    class FakeStream:
        async def send_all(self, data):
            pass

        async def receive_some(self, n):
            return b""

    link = Link(inbound=True)
    link.attach(FakeStream())
    assert link.sock is None
    link.send(b"x")
    assert link.out == [b"x"] and link.wake.is_set()


async def test_sleep_with_owner_ends_early_on_wake_and_heap_stays_consistent(autojump_clock):
    """The node cron's long sleep (an idle node sleeps through empty
    ticks): ``wake(owner)`` ends it at once; a wake with nobody asleep is
    False; Trio's count of live deadlines is back where it was."""
    from frtrio.runtime.node import _Sleeper

    env = RealEnv()
    owner = _Sleeper()
    dl = _deadlines()
    active = dl._active
    t0 = trio.current_time()
    woke = []

    async def waker():
        await trio.sleep(0.3)
        woke.append(env.wake(owner))

    async with trio.open_nursery() as n:
        n.start_soon(waker)
        await env.sleep_until(t0 + 10.0, owner)
        assert abs(trio.current_time() - (t0 + 0.3)) < 1e-6
    assert woke == [True] and owner.waiter is None
    assert env.wake(owner) is False
    assert dl._active == active
    await env.sleep_until(trio.current_time() + 1.0, owner)  # (a plain timed sleep still)
    assert owner.waiter is None and dl._active == active


def test_ticks_to_keeps_the_cron_grid():
    from frtrio.runtime.node import _ticks_to

    assert _ticks_to(5.0, 5.0, 0.1) == 0
    assert _ticks_to(4.9, 5.0, 0.1) == 0
    assert _ticks_to(5.05, 5.0, 0.1) == 1
    assert _ticks_to(5.1, 5.0, 0.1) == 1
    assert _ticks_to(5.1001, 5.0, 0.1) == 2
    assert _ticks_to(6.0, 5.0, 0.1) == 10
