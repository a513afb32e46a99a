"""Unit tests of the simulator's parts: seeded scheduling hooks, the virtual
clock, the network (ordering, faults), the disk (crash semantics) and SimEnv."""

from __future__ import annotations

import random
import types

import pytest
import trio
import trio.testing

from frtrio.sim import sched
from frtrio.sim.env import SimEnv
from frtrio.sim.fs import SimDisk, SimFS
from frtrio.sim.net import SimNet
from frtrio.sim.world import SimWorld

# --- seeded scheduling ----------------------------------------------------------------


def test_sched_hooks_present_in_pinned_trio():
    assert trio.__version__ == sched.PINNED_TRIO
    sched.check_available()


def test_sched_fails_loudly_without_hooks():
    fake = types.SimpleNamespace(_r=random.Random())
    with pytest.raises(sched.DeterminismUnavailable, match="_ALLOW_DETERMINISTIC_SCHEDULING"):
        sched.check_available(fake)
    fake2 = types.SimpleNamespace(_ALLOW_DETERMINISTIC_SCHEDULING=False)
    with pytest.raises(sched.DeterminismUnavailable, match="_r"):
        sched.enable(1, fake2)


def test_run_scenario_refuses_when_hooks_vanish(monkeypatch):
    import trio._core._run as r

    from frtrio.sim.scenario import run_scenario

    monkeypatch.delattr(r, "_ALLOW_DETERMINISTIC_SCHEDULING")
    with pytest.raises(sched.DeterminismUnavailable):
        run_scenario("smoke", 1)


def _trace(seed: int) -> list:
    """Tasks woken by one Event: their order is id()-dependent unless the
    deterministic flag is on, then a function of the seed."""
    out = []

    async def main():
        ev = trio.Event()

        async def waiter(i):
            await ev.wait()
            out.append(i)
            await trio.sleep(0.01 * (i % 3))
            out.append(-i)

        async with trio.open_nursery() as n:
            for i in range(12):
                n.start_soon(waiter, i)
            await trio.sleep(0.1)
            ev.set()

    sched.run(main, seed=seed)
    return out


def test_same_scheduler_seed_same_interleaving():
    assert _trace(5) == _trace(5)
    assert len({tuple(_trace(s)) for s in range(6)}) > 1


# --- the clock ----------------------------------------------------------------------------


def test_simclock_matches_mockclock_times():
    def times(clock):
        seen = []

        async def main():
            async def sleeper(d):
                await trio.sleep(d)
                seen.append((d, trio.current_time()))

            async with trio.open_nursery() as n:
                for d in (0.3, 0.1, 0.2, 5.0, 0.1):
                    n.start_soon(sleeper, d)
            with trio.move_on_after(1.5):
                await trio.sleep_forever()
            seen.append(("end", trio.current_time()))

        sched.run(main, seed=1, clock=clock)
        return sorted(seen, key=lambda x: (x[1], str(x[0])))

    assert times(sched.SimClock()) == times(trio.testing.MockClock(autojump_threshold=0))


def test_simclock_keeps_wait_all_tasks_blocked_working():
    async def main():
        async def bg():
            await trio.sleep(10)

        async with trio.open_nursery() as n:
            n.start_soon(bg)
            await trio.testing.wait_all_tasks_blocked()
            assert trio.current_time() == 0.0  # idle waiter ran before any jump
            n.cancel_scope.cancel()

    sched.run(main, seed=1)


# --- network ------------------------------------------------------------------------------


def _net(latency=(0.0, 0.0)):
    return SimNet(random.Random(1), latency=latency)


async def _serve_echo(net, host, port, nursery, upper=False):
    lst = net.listen(host, port, "srv")

    async def loop():
        while True:
            conn = await lst.accept(net)

            async def handle(s):
                while True:
                    try:
                        d = await s.receive_some(1000)
                    except trio.BrokenResourceError:
                        return
                    if not d:
                        await s.aclose()
                        return
                    await s.send_all(d.upper() if upper else d)

            nursery.start_soon(handle, conn.server)

    nursery.start_soon(loop)
    return lst


def test_stream_bytes_order_eof_and_latency():
    async def main():
        net = _net((0.001, 0.003))
        async with trio.open_nursery() as n:
            await _serve_echo(net, "h1", 1, n, upper=True)
            s = await net.connect("c1", "h1", 1)
            for i in range(20):
                await s.send_all(b"x%d," % i)
            got = b""
            while len(got) < len(b"".join(b"X%d," % i for i in range(20))):
                d = await s.receive_some(7)
                assert type(d) is bytes and 0 < len(d) <= 7
                got += d
            assert got == b"".join(b"X%d," % i for i in range(20))
            assert trio.current_time() >= 0.002  # one round trip at least
            await s.send_eof()
            assert await s.receive_some() == b""
            assert await s.receive_some() == b""  # EOF stays EOF
            n.cancel_scope.cancel()

    sched.run(main, seed=1)


def test_reset_breaks_both_ends():
    async def main():
        net = _net()
        async with trio.open_nursery() as n:
            lst = net.listen("h1", 1, "srv")
            c = await net.connect("c1", "h1", 1)
            conn = await lst.accept(net)
            errors = []

            async def reader(s, who):
                try:
                    await s.receive_some()
                except trio.BrokenResourceError:
                    errors.append(who)

            n.start_soon(reader, conn.server, "server")
            n.start_soon(reader, c, "client")
            await trio.testing.wait_all_tasks_blocked()
            net.reset(conn)
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(errors) == ["client", "server"]
            with pytest.raises(trio.BrokenResourceError):
                await c.send_all(b"x")
            assert not net.conns

    sched.run(main, seed=1)


def test_partition_holds_data_until_heal_and_blocks_connect():
    async def main():
        net = _net()
        async with trio.open_nursery() as n:
            await _serve_echo(net, "h1", 1, n)
            s = await net.connect("c1", "h1", 1)
            net.partition([["c1"], ["h1"]])
            await s.send_all(b"hello")
            with trio.move_on_after(5):
                await s.receive_some()
                raise AssertionError("data crossed a partition")
            with pytest.raises(OSError):
                await net.connect("c1", "h1", 1)  # times out (3 s)
            t = trio.current_time()
            net.heal()
            assert await s.receive_some() == b"hello"
            assert trio.current_time() == t
            # one way: c1 -> h1 cut, h1 -> c1 open
            net.cut("c1", "h1")
            await s.send_all(b"ping")
            with trio.move_on_after(1):
                await s.receive_some()
                raise AssertionError("echo came back through a one-way cut")
            net.heal()
            assert await s.receive_some() == b"ping"
            with pytest.raises(OSError):
                await net.connect("c1", "h9", 1)  # refused: nobody listens
            n.cancel_scope.cancel()

    sched.run(main, seed=1)


def test_pause_stops_a_host_both_ways():
    async def main():
        net = _net()
        async with trio.open_nursery() as n:
            await _serve_echo(net, "h1", 1, n)
            s = await net.connect("c1", "h1", 1)
            net.pause("h1", trio.current_time() + 2.0)
            await s.send_all(b"a")  # the peer's buffers take it
            assert await s.receive_some() == b"a"
            assert trio.current_time() == pytest.approx(2.0)
            n.cancel_scope.cancel()

    sched.run(main, seed=1)


def test_close_gives_peer_eof_then_reset_on_send():
    async def main():
        net = _net()
        lst = net.listen("h1", 1, "srv")
        c = await net.connect("c1", "h1", 1)
        srv = (await lst.accept(net)).server
        await srv.send_all(b"bye")
        await srv.aclose()
        assert await c.receive_some() == b"bye"
        assert await c.receive_some() == b""
        with pytest.raises(trio.BrokenResourceError):
            await c.send_all(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await srv.receive_some()

    sched.run(main, seed=1)


# --- disk -----------------------------------------------------------------------------------


def _disk_with_tail():
    d = SimDisk("n1")
    fs = SimFS(d)
    fs.makedirs("/data/aof")
    fh = fs.open_append("/data/aof/f")
    fh.write(b"synced;")
    fs.fsync(fh)
    fh.write(b"tail-not-synced")
    return d, fs


def test_crash_lose_keep_torn():
    d, fs = _disk_with_tail()
    info = d.crash("lose")
    assert fs.read("/data/aof/f") == b"synced;" and info["lost_bytes"] == 15
    d, fs = _disk_with_tail()
    d.crash("keep")
    assert fs.read("/data/aof/f") == b"synced;tail-not-synced"
    sizes = set()
    for seed in range(30):
        d, fs = _disk_with_tail()
        d.crash("torn", random.Random(seed))
        data = fs.read("/data/aof/f")
        assert b"synced;tail-not-synced".startswith(data) and data.startswith(b"synced;")
        sizes.add(len(data))
    assert len(sizes) > 3


def test_dead_disk_ignores_writes_until_revived():
    d, fs = _disk_with_tail()
    fh = fs.open_append("/data/aof/f")
    d.crash("lose")
    fh.write(b"after-death")
    fs.fsync(fh)
    fs.write_atomic("/data/x", b"x")
    assert fs.read("/data/aof/f") == b"synced;" and not fs.exists("/data/x")
    d.revive()
    fs.write_atomic("/data/x", b"x")
    assert fs.read("/data/x") == b"x"


def test_write_atomic_without_fsync_may_revert():
    d = SimDisk("n1")
    fs = SimFS(d)
    fs.write_atomic("/a", b"old")
    fs.write_atomic("/a", b"new", fsync=False)
    fs.write_atomic("/b", b"fresh", fsync=False)
    assert fs.read("/a") == b"new"
    d.crash("lose")
    assert fs.read("/a") == b"old" and not fs.exists("/b")


def test_fs_listing_truncate_locks():
    fs = SimFS(SimDisk("n1"))
    fs.makedirs("/d/sub")
    fs.write_atomic("/d/b", b"12345")
    fs.write_atomic("/d/a", b"1")
    assert fs.listdir("/d") == ["a", "b", "sub"]
    fs.truncate("/d/b", 2)
    assert fs.read("/d/b") == b"12" and fs.size("/d/b") == 2
    with pytest.raises(FileNotFoundError):
        fs.read("/d/nope")
    h = fs.lock_exclusive("/d/nodes.conf")
    with pytest.raises(BlockingIOError):
        fs.lock_exclusive("/d/nodes.conf")
    fs.unlock(h)
    fs.unlock(fs.lock_exclusive("/d/nodes.conf"))
    fs.remove("/d/a")
    assert not fs.exists("/d/a")


# --- env ---------------------------------------------------------------------------------------


def test_simenv_rng_streams():
    w = SimWorld(seed=42)
    w.add_node("n1")
    w.add_node("n2")
    e1 = SimEnv(w, "n1", "10.0.0.1")
    assert e1.rng("server").random() == random.Random("42:n1:server").random()
    # the same purpose continues its stream; other purposes and nodes differ
    a, b = e1.random_hex(40), e1.random_hex(40)
    assert a != b and len(a) == 40
    assert SimEnv(w, "n2", "10.0.0.2").random_hex(40) != SimEnv(w, "n1", "10.0.0.1").random_hex(40)
    # a restarted node (incarnation 2) gets fresh streams
    assert SimEnv(w, "n1", "10.0.0.1", 2).random_hex(40) != SimEnv(w, "n1", "10.0.0.1").random_hex(40)


def test_simenv_time_and_clock_jumps():
    w = SimWorld(seed=1)
    w.add_node("n1")
    env = SimEnv(w, "n1", "10.0.0.1")

    async def main():
        assert env.now() == 0.0
        t0 = env.unix_ms()
        await trio.sleep(1.5)
        assert env.unix_ms() - t0 == 1500 and env.unix_us() == (t0 + 1500) * 1000
        w.clock_jump("n1", -10_000)
        assert env.unix_ms() - t0 == -8500  # wall clock jumped back, monotonic did not
        assert env.now() == 1.5

    w.run(main)


# --- the request path's shortcuts (issue 15) ------------------------------------------------


def test_reader_wakes_once_at_the_delivery_time():
    """A chunk in flight does not wake the parked reader to park it again:
    it wakes once, at the chunk's delivery time, and gets the bytes."""
    async def main():
        net = _net((0.004, 0.004))
        async with trio.open_nursery() as n:
            lst = net.listen("h1", 1, "srv")
            c = await net.connect("c1", "h1", 1)
            conn = await lst.accept(net)
            got = []

            async def reader():
                got.append((await conn.server.receive_some(), trio.current_time()))

            n.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            t0 = trio.current_time()
            steps = []

            class Count(trio.abc.Instrument):
                def before_task_step(self, task):
                    if task.name.endswith("reader"):
                        steps.append(trio.current_time())

            inst = Count()
            trio.lowlevel.add_instrument(inst)
            assert c.send_nowait(b"hi")
            await trio.sleep(0.01)
            trio.lowlevel.remove_instrument(inst)
            assert got == [(b"hi", t0 + 0.004)]
            assert steps == [t0 + 0.004]  # one step: no early wake-up
            n.cancel_scope.cancel()

    sched.run(main, seed=1)


def test_send_nowait_and_try_send_behave_as_a_socket_send():
    async def main():
        net = _net()
        lst = net.listen("h1", 1, "srv")
        c = await net.connect("c1", "h1", 1)
        conn = await lst.accept(net)
        assert c.send_nowait(b"ab") and conn.server.try_send(b"xyz") == 3
        assert await conn.server.receive_some() == b"ab"
        assert await c.receive_some() == b"xyz"
        # a paused host's send would wait: refused, nothing queued
        net.pause("c1", trio.current_time() + 1.0)
        assert c.send_nowait(b"late") is False
        net.pause("h1", trio.current_time() + 1.0)
        with pytest.raises(BlockingIOError):
            conn.server.try_send(b"late")
        net.unpause_all()
        assert not conn.a2b.chunks and not conn.b2a.chunks
        net.reset(conn)
        with pytest.raises(trio.BrokenResourceError):
            c.send_nowait(b"x")
        with pytest.raises(trio.BrokenResourceError):
            conn.server.try_send(b"x")
        c.close_now()
        with pytest.raises(trio.ClosedResourceError):
            c.send_nowait(b"x")

    sched.run(main, seed=1)


def test_c14_convergence_check_compares_whole_slot_maps():
    """The fault scenarios' convergence check (``_owner_ids``) tells two
    nodes' slot maps apart when one slot differs, and not when they agree
    (each node has its own node objects, with the same ids)."""
    from frtrio.cluster.state import ClusterNode, ClusterState
    from frtrio.sim.scenarios import _owner_ids

    def view(moves=()):
        nodes = [ClusterNode("%040d" % i, flags=("master",)) for i in range(3)]
        st = ClusterState(nodes[0])
        for n in nodes[1:]:
            st.add_node(n)
        st.assign_slots(range(0, 5000), nodes[0])
        st.assign_slots(range(5000, 16000), nodes[1])
        for slot, who in moves:
            st.assign_slot(slot, nodes[who]) if who is not None else st.unassign_slot(slot)
        return st, nodes

    a, _ = view()
    assert _owner_ids(a) == _owner_ids(view()[0])
    for moves in ([(0, 1)], [(4999, 1)], [(5000, 0)], [(16383, 2)], [(100, None)], [(7, 2), (8, 0)]):
        assert _owner_ids(view(moves)[0]) != _owner_ids(a), moves
    # a slot bound to a node the table no longer lists still counts by its id
    b, nodes = view([(16001, 2)])
    del b.nodes[nodes[2].id]
    assert _owner_ids(b) == _owner_ids(view([(16001, 2)])[0])
    # two node objects of one id (an old one still bound, a new one listed)
    # side by side: one run, as in a map where one object holds them all
    c, nodes = view()
    twin = ClusterNode(nodes[1].id, flags=("master",))
    c.nodes[twin.id] = twin
    c.assign_slots(range(16000, 16100), twin)
    assert _owner_ids(c) == _owner_ids(view([(s, 1) for s in range(16000, 16100)])[0])
    assert len(_owner_ids(a)) == 3 and sum(k for _, k in _owner_ids(a)) == 16384
