"""The clients cron's buffer visit (Redis's clientsCron resizing the query
and reply buffers, recounting client memory): the shortcut it takes for a
quiet client must leave every client exactly as the full visit does
(issue 15: a busy cluster node has hundreds of connections, most of them
quiet at any moment, and visits each once a second)."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from frtrio.config import Config
from frtrio.core import iobufs
from frtrio.core.client import F
from frtrio.core.engine import Server

FIELDS = ("qbuf", "qbuf_alloc", "argv_mem", "argv_arr", "out_bytes", "qb_alloc", "qb_peak", "qb_bulk",
          "rb_size", "rb_peak", "rb_reset_ms", "mem_counted", "last_interaction_ms")

# values around every threshold the visit compares against
_SIZES = [0, 1, 5, 40, 511, 512, 1023, 1024, 1025, 1535, 1536, 2047, 2048, 4095, 4096, 4097,
          16384, 20000, 32768, 32769, 40000, 70000]
_TIMES = [0, 1, 999, 1000, 2999, 3000, 3001, 4999, 5000, 5001, 10000]
CHOICES = {
    "qbuf": [0, 0, 0, 10],
    "qbuf_alloc": [0, 0, 0, 40000],
    "argv_mem": [0, 0, 0, 64],
    "argv_arr": [0, 0, 0, 16],
    "out_bytes": [0, 0, 0, 5, 2000, 20000],
    "qb_alloc": _SIZES,
    "qb_peak": _SIZES,
    "qb_bulk": [-1, -1, 0, 100, 40000],
    "rb_size": [1024, 1024, 1536, 2048, 4096, 16384],
    "rb_peak": _SIZES,
    "rb_reset_ago": _TIMES,
    "mem_counted": [0, 0, 5, 100],
    "idle_ms": _TIMES,
    "flags": [0, 0, 0, F.MASTER, F.SLAVE],
}
client_state = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in CHOICES.items()})


def _server(states, resizing, reset):
    srv = Server(Config(), random.Random(1))
    srv.now_ms = 1_000_000
    srv.reply_buffer_resizing = resizing
    srv.reply_buffer_peak_reset_ms = reset
    for s in states:
        c = srv.new_client("10.0.0.1:1000", "")
        for k in FIELDS:
            if k in s:
                setattr(c, k, s[k])
        c.rb_reset_ms = srv.now_ms - s["rb_reset_ago"]
        c.last_interaction_ms = srv.now_ms - s["idle_ms"]
        c.flags |= s["flags"]
        srv.clients_mem += c.mem_counted
    return srv


def _snapshot(srv):
    return ([tuple(getattr(c, k) for k in FIELDS) for c in srv.clients.values()],
            srv.clients_mem, dict(srv.stats), srv.client_peaks.inp[:], srv.client_peaks.out[:])


@settings(max_examples=100, deadline=None)
@given(st.lists(client_state, min_size=1, max_size=12), st.booleans(),
       st.sampled_from([-1, 0, 5000]))
def test_c16_a_quiet_clients_cron_visit_is_the_full_visit(states, resizing, reset):
    assert _same_visit(states, resizing, reset)


def _same_visit(states, resizing, reset):
    fast = _server(states, resizing, reset)
    full = _server(states, resizing, reset)
    fast.resize_client_buffers(1)  # hz 1: every client in one call
    full.client_peaks.tick(full.now_ms)
    for c in list(full.clients.values()):
        full._visit_buffers(c, full.now_ms, reset, resizing, full.client_peaks)
    return _snapshot(fast) == _snapshot(full)


def test_c16_quiet_visit_sweep_of_the_thresholds():
    """The same, over many single-client states drawn around every
    threshold, with the quiet-looking fields most often at rest (the
    shortcut's edges: a reply peak equal to the size, an idle time of
    exactly 3 s, room of exactly 4096 bytes)."""
    rng = random.Random(15)
    quiet = {"qbuf": 0, "qbuf_alloc": 0, "argv_mem": 0, "out_bytes": 0, "qb_bulk": -1}
    for i in range(1200):
        s = {k: rng.choice(v) for k, v in CHOICES.items()}
        if i % 4:
            s.update(quiet)
        for resizing in (True, False):
            for reset in (-1, 5000):
                assert _same_visit([s], resizing, reset), (s, resizing, reset)


def test_c16_the_shortcut_is_taken_for_an_idle_client_and_frees_its_room_on_time():
    """A client that made one request: the cron first keeps its query
    buffer's room (idle 2 s), frees it once idle for more than 2 s, and
    resets its reply buffer's peak after 5 s, as Redis does."""
    srv = Server(Config(), random.Random(1))
    srv.now_ms = 1_000_000
    c = srv.new_client("10.0.0.1:1000", "")
    c.qb_alloc = iobufs.sds_room(16384 + 30)
    c.qb_peak = 30
    c.rb_size = 1024
    c.rb_peak = 5
    c.last_interaction_ms = srv.now_ms
    c.rb_reset_ms = srv.now_ms
    srv.now_ms += 2500
    srv.resize_client_buffers(1)
    assert c.qb_alloc > 16384 and c.qb_peak == 0 and c.rb_peak == 5
    srv.now_ms += 1000
    srv.resize_client_buffers(1)
    assert c.qb_alloc == 0 and c.rb_peak == 5
    srv.now_ms += 2000
    srv.resize_client_buffers(1)
    assert c.rb_peak == 0 and c.rb_reset_ms == srv.now_ms and c.rb_size == 1024


def test_c16_the_cron_visits_clients_in_redis_rotation():
    """The clients cron visits numclients/hz clients a call (5 at least) in
    turn, the rotation taken from a snapshot of the clients (newest last)
    and renewed when it runs out; a client freed meanwhile uses up its turn
    unvisited. The visits (every client made busy so each takes the full
    visit) come in the order of that rule, written out plainly here, while
    clients come and go between calls."""
    rng = random.Random(16)
    srv = Server(Config(), random.Random(1))
    srv.now_ms = 1_000_000
    seen: list = []
    srv._visit_buffers = lambda c, *a: seen.append(c.id)
    queue: list = []
    want: list = []
    for step in range(400):
        op = rng.random()
        if op < 0.3 or not srv.clients:
            for _ in range(rng.randrange(1, 4)):
                c = srv.new_client("10.0.0.1:%d" % step, "")
                c.out_bytes = 1  # (not quiet: the full visit)
        elif op < 0.5:
            srv.free_client(rng.choice(list(srv.clients.values())))
        else:
            hz = rng.choice([1, 3, 10, 50])
            clients = srv.clients
            n = len(clients)
            todo = max(n // hz, min(n, 5))
            while todo > 0:
                if not queue:
                    queue = list(clients.values())[::-1]
                    if not queue:
                        break
                c = queue.pop()
                todo -= 1
                if clients.get(c.id) is c:
                    want.append(c.id)
            srv.now_ms += 100
            srv.resize_client_buffers(hz)
            assert seen == want
    assert len(want) > 500


# --- a cron visit while a big argument is half read (simulator) -------------------

_HALF_SEEN: list = []


class _HalfBigArgument:
    """A client sends a 400 KB SET's header and the first 100 000 bytes of
    its argument, waits 0.35 s (the cron trims the query buffer to the
    argument's length: its peak is under half the room), then sends the
    rest in one write; another client reads CLIENT LIST after each part."""

    async def run(self, world, rng):
        from frtrio.persist.aof_format import encode_command
        from frtrio.sim.client import SimClient

        def qbuf_free(listing: bytes) -> int:
            line = next(x for x in listing.decode().splitlines() if " name=big " in x)
            return int(line.split(" qbuf-free=")[1].split()[0])

        t, ctl = SimClient(world, "big", "n1"), SimClient(world, "ctl", "n1")
        assert await t.call("CLIENT", "SETNAME", "big") == b"OK"
        req = encode_command([b"SET", b"x", b"A" * 400000])
        half = req.index(b"AAAA") + 100000
        await t.stream.send_all(req[:half])
        await world.sleep(0.35)
        _HALF_SEEN.append(qbuf_free(await ctl.call("CLIENT", "LIST")))
        await t.stream.send_all(req[half:])
        assert await t._read() == b"OK"
        _HALF_SEEN.append(qbuf_free(await ctl.call("CLIENT", "LIST")))


def test_c16_the_read_that_ends_a_big_argument_makes_room_again(monkeypatch):
    """Redis makes room in the query buffer as it reads: a cron visit that
    trimmed the buffer to a half-read 400 KB argument's length (400000) is
    undone by the read that brings the rest, and once the command is done
    the buffer has a fresh one's room (458742, what redis-server 7.0.15
    shows: test_c16_cron_during_a_big_argument_side_by_side). frtrio made
    room only before waiting for data, so a cron during that wait left
    400000 (a failure of the official CI at stop 28). The simulator's
    network hands the rest over in one read, which a real socket rarely
    does on time."""
    from frtrio.sim import scenario as scn
    from frtrio.sim.scenario import Scenario, Workload

    class NoClients(Workload):
        async def step(self, world, client, rng):  # pragma: no cover - no clients
            await world.sleep(1.0)

    def make(p):
        return Scenario(workload=NoClients(), nodes=1, clients_per_node=0,
                        faults=_HalfBigArgument(), duration=2.0, settle=1.0)

    scn.all_scenarios()
    monkeypatch.setitem(scn.SCENARIOS, "half-big-arg",
                        scn.ScenarioDef("half-big-arg", "test", {"mode": "strict"}, make))
    _HALF_SEEN.clear()
    r = scn.run_scenario("half-big-arg", 1)
    assert r.ok, r.violations
    assert _HALF_SEEN == [300000, 458742]
