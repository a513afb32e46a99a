"""Cluster bus: codec (C10), gossip/failure detection (C12), epochs (C09),
before-sleep order (C13), on constructed states (no sockets)."""

from __future__ import annotations

import glob
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frtrio.commands  # noqa: F401
from frtrio.core.effects import Broadcast, SendOnLink, SendToNode
from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_types import (
    FAIL,
    FAILOVER_AUTH_ACK,
    FAILOVER_AUTH_REQUEST,
    MEET,
    MFSTART,
    MODULE,
    PING,
    PONG,
    PUBLISH,
    PUBLISHSHARD,
    UPDATE,
)
from frtrio.cluster.core import ClusterCore
from frtrio.cluster.gossip import BusCore
from frtrio.cluster.state import ClusterNode, ClusterState
from frtrio.config import Config
from frtrio.core.engine import Server

FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures", "bus", "*.bin")))


def nid(c: str) -> str:
    return c * 40


class FakeLink:
    def __init__(self, node=None, inbound=False, ctime=0):
        self.node = node
        self.inbound = inbound
        self.ctime = ctime
        self.local_ip = "127.0.0.1"
        self.peer_ip = "127.0.0.1"
        self.closed = False


def make_cluster(my="b", others=("a", "c"), node_timeout=3000, slots_each=True):
    """A node `my` that knows masters `others`, all with links and slots."""
    cfg = Config()
    cfg.values["cluster-enabled"] = "yes"
    cfg.values["cluster-node-timeout"] = str(node_timeout)
    srv = Server(cfg, random.Random(1))
    me = ClusterNode(nid(my), ("myself", "master"))
    me.ip, me.port, me.cport = "127.0.0.1", 7000, 17000
    state = ClusterState(me)
    core = ClusterCore(srv, state)
    srv.cluster = core
    bus = BusCore(core)
    core.bus_core = bus
    names = [my] + list(others)
    per = 16384 // len(names)
    for i, name in enumerate(names):
        n = me if name == my else ClusterNode(nid(name), ("master",))
        if n is not me:
            n.ip, n.port, n.cport = "127.0.0.1", 7001 + i, 17001 + i
            n.link = FakeLink(n)
            state.add_node(n)
        n.config_epoch = i + 1
        if slots_each:
            hi = 16383 if i == len(names) - 1 else (i + 1) * per - 1
            state.assign_slots(range(i * per, hi + 1), n)
    state.current_epoch = len(names)
    state.state_ok = True
    state.size = len(names)
    return srv, core, bus


def digest(core) -> str:
    st = core.state
    parts = [st.config_text(), str(st.current_epoch), str(st.last_vote_epoch), str(st.state_ok)]
    for n in st.nodes.values():
        parts.append("%s %s %d %d %d %s %s %s" % (
            n.id, ",".join(n.flags), n.ping_sent, n.pong_received, n.config_epoch, n.ip,
            sorted(n.fail_reports.items()), n.hostname))
    return "\n".join(parts)


# --- codec ---------------------------------------------------------------------


def sample_messages():
    msgs = []
    for t in (PING, PONG, MEET):
        m = bc.Message(t, sender=nid("a"), port=7000, cport=17000, flags=17, current_epoch=5,
                       config_epoch=3, offset=99, myip="10.1.2.3", state=0)
        m.gossip = [bc.Gossip(nid("b"), 1, 2, "127.0.0.1", 7001, 17001, 257, 0, 0),
                    bc.Gossip(nid("c"), 0, 1795897748, "127.0.0.1", 7002, 17002, 2, 0, 0)]
        m.extensions = [bc.hostname_extension("host-1.example")]
        msgs.append(m)
    msgs.append(bc.Message(FAIL, sender=nid("a"), fail_node=nid("c")))
    msgs.append(bc.Message(PUBLISH, sender=nid("a"), channel=b"chanA", message=b"hello-world"))
    msgs.append(bc.Message(PUBLISHSHARD, sender=nid("a"), channel=b"x", message=b""))
    msgs.append(bc.Message(FAILOVER_AUTH_REQUEST, sender=nid("a"), slaveof=nid("d"), mflags=bc.MF_FORCEACK))
    msgs.append(bc.Message(FAILOVER_AUTH_ACK, sender=nid("a")))
    msgs.append(bc.Message(MFSTART, sender=nid("a")))
    bm = bytearray(2048)
    bm[0] = 0xFF
    msgs.append(bc.Message(UPDATE, sender=nid("a"), update_epoch=7, update_node=nid("b"), update_slots=bytes(bm)))
    msgs.append(bc.Message(MODULE, sender=nid("a"), module_id=b"\x01\x02\x03\x04\x05\x06\x07\x08",
                           module_type=3, module_payload=b"payload"))
    return msgs


@pytest.mark.parametrize("m", sample_messages(), ids=lambda m: repr(m))
def test_c10_codec_roundtrip_every_type(m):
    raw = bc.encode(m)
    d = bc.decode(raw)
    assert d == m
    assert bc.encode(d) == raw


def test_c10_expected_lengths():
    assert len(bc.encode(bc.Message(FAIL, sender=nid("a"), fail_node=nid("b")))) == 2296
    assert len(bc.encode(bc.Message(UPDATE, sender=nid("a")))) == 4352
    pub = bc.Message(PUBLISH, sender=nid("a"), channel=b"chanA", message=b"hello-world")
    assert len(bc.encode(pub)) == 2280
    m = bc.Message(PING, sender=nid("a"))
    m.extensions = [bc.hostname_extension("host-1.example")]
    assert len(bc.encode(m)) == 2256 + 24


@pytest.mark.skipif(not FIXTURES, reason="no captured fixtures")
@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_c10_packets_captured_from_redis_decode_and_reencode_byte_identical(path):
    raw = open(path, "rb").read()
    m = bc.decode(raw)
    assert bc.encode(m) == raw
    if "meet" in path or "ping" in path:
        assert m.hostname() == "host-1.example"
        assert m.flags & bc.F_MYSELF and m.flags & bc.F_MASTER
    if "publish" in path:
        assert (m.channel, m.message) == (b"chanA", b"hello-world")
    if "update" in path:
        assert m.update_slots[0] & 1


def test_c10_link_level_rejections_close_the_link():
    raw = bc.encode(bc.Message(PING, sender=nid("a")))
    with pytest.raises(bc.PacketRejected) as e:
        bc.decode(b"XXXX" + raw[4:])
    assert e.value.close_link
    short = raw[:4] + (2255).to_bytes(4, "big") + raw[8:2255]
    with pytest.raises(bc.PacketRejected) as e:
        bc.decode(short)
    assert e.value.close_link


@pytest.mark.parametrize("mutate", [
    lambda r: r[:8] + b"\x00\x02" + r[10:],                      # version 2
    lambda r: r[:14] + b"\x00\x01" + r[16:],                     # count=1, no gossip bytes
    lambda r: r[:4] + (len(r) + 8).to_bytes(4, "big") + r[8:] + bytes(8),  # trailing bytes
    lambda r: r[:12] + b"\x00\x2a" + r[14:],                     # type 42
    lambda r: r[:12] + b"\x00\x03" + r[14:],                     # FAIL of length 2256
])
def test_c10_packet_level_rejections_keep_the_link(mutate):
    raw = bc.encode(bc.Message(PING, sender=nid("a")))
    with pytest.raises(bc.PacketRejected) as e:
        bc.decode(mutate(raw))
    assert not e.value.close_link


def test_c10_bad_extension_padding_and_missing_nul_rejected():
    m = bc.Message(PING, sender=nid("a"))
    m.extensions = [(0, b"abcdefgh")]  # hostname without NUL
    with pytest.raises(bc.PacketRejected):
        bc.decode(bc.encode(m))
    m.extensions = [(7, b"1234")]  # length 12: not a multiple of 8
    with pytest.raises(bc.PacketRejected):
        bc.decode(bc.encode(m))
    m.extensions = [(7, b"12345678")]  # unknown type, proper length: accepted
    assert bc.decode(bc.encode(m)).extensions == [(7, b"12345678")]


def _seed_packets():
    out = [bc.encode(m) for m in sample_messages()]
    out += [open(p, "rb").read() for p in FIXTURES]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_c10_mutation_fuzz_never_raises_and_rejected_packets_change_nothing(data):
    seeds = _seed_packets()
    raw = bytearray(data.draw(st.sampled_from(seeds)))
    op = data.draw(st.sampled_from(["truncate", "extend", "flip", "field"]))
    if op == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif op == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    elif op == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    else:
        off, size = data.draw(st.sampled_from([(4, 4), (8, 2), (12, 2), (14, 2), (2214, 2),
                                               (2253, 1), (2256, 4), (2260, 4)]))
        if off + size <= len(raw):
            raw[off:off + size] = data.draw(st.binary(min_size=size, max_size=size))
    raw = bytes(raw)
    srv, core, bus = make_cluster()
    before = digest(core)
    link = FakeLink(None, inbound=True)
    try:
        effects, close = bus.receive_raw(link, raw, 10_000)
    except Exception as e:  # pragma: no cover - the property is that this never happens
        raise AssertionError("receive_raw raised %r" % e)
    try:
        bc.decode(raw)
        ok = True
    except bc.PacketRejected:
        ok = False
    if not ok:
        assert effects == [] and digest(core) == before


# --- gossip, failure detection, epochs -------------------------------------------


def header_from(bus_of_sender, type=PING):
    return bus_of_sender.header(type)


def test_c09_config_epoch_collision_smaller_id_bumps():
    srv, core, bus = make_cluster(my="a", others=("b",))
    st_ = core.state
    st_.myself.config_epoch = 5
    b = st_.nodes[nid("b")]
    b.config_epoch = 5
    st_.current_epoch = 5
    m = bc.Message(PING, sender=b.id, config_epoch=5, current_epoch=5, flags=bc.F_MASTER | bc.F_MYSELF,
                   myslots=bytes(b.slots), port=b.port, cport=b.cport)
    bus.handle(FakeLink(b), m, 1000)
    assert st_.myself.config_epoch == 6 and st_.current_epoch == 6
    assert st_.todo_save and st_.todo_fsync


def test_c09_config_epoch_collision_greater_id_keeps_its_epoch():
    srv, core, bus = make_cluster(my="c", others=("b",))
    st_ = core.state
    st_.myself.config_epoch = 5
    b = st_.nodes[nid("b")]
    b.config_epoch = 5
    m = bc.Message(PING, sender=b.id, config_epoch=5, current_epoch=5, flags=17,
                   myslots=bytes(b.slots), port=b.port, cport=b.cport)
    bus.handle(FakeLink(b), m, 1000)
    assert st_.myself.config_epoch == 5


def test_c09_bumpepoch_and_set_config_epoch_rules():
    srv, core, bus = make_cluster(my="a", others=())
    st_ = core.state
    st_.myself.config_epoch = 0
    st_.current_epoch = 0
    assert st_.bump_epoch_without_consensus() is True
    assert st_.myself.config_epoch == 1
    assert st_.bump_epoch_without_consensus() is False


def test_c12_pfail_after_node_timeout_then_fail_with_majority_reports():
    srv, core, bus = make_cluster(my="b", others=("a", "c"), node_timeout=3000)
    st_ = core.state
    a, c = st_.nodes[nid("a")], st_.nodes[nid("c")]
    now = 100_000
    for n in (a, c):
        n.pong_received = now
        n.data_received = now
    c.ping_sent = now - 3500
    c.data_received = now - 3500
    bus.cron(now)
    assert c.has("fail?") and not c.has("fail")
    assert st_.todo_update_state
    # master a reports c as PFAIL in its gossip: with me (a master) that is 2 of 3
    m = bc.Message(PING, sender=a.id, flags=17, config_epoch=a.config_epoch, myslots=bytes(a.slots),
                   port=a.port, cport=a.cport)
    m.gossip = [bc.Gossip(c.id, 0, 0, c.ip, c.port, c.cport, bc.F_MASTER | bc.F_PFAIL)]
    effects = bus.handle(FakeLink(a), m, now + 10)
    assert c.has("fail") and not c.has("fail?")
    fails = [e for e in effects if isinstance(e, Broadcast) and e.msg.type == FAIL]
    assert fails and fails[0].msg.fail_node == c.id


def test_c12_failure_reports_expire_after_twice_node_timeout():
    srv, core, bus = make_cluster(my="b", others=("a", "c", "d", "e"), node_timeout=1000)
    st_ = core.state
    c = st_.nodes[nid("c")]
    c.fail_reports[nid("a")] = 1000
    assert bus.failure_reports_count(c, 2900) == 1
    assert bus.failure_reports_count(c, 3001) == 0


def test_c12_fail_cleared_for_master_with_slots_only_after_undo_time():
    srv, core, bus = make_cluster(my="b", others=("a", "c"), node_timeout=1000)
    c = core.state.nodes[nid("c")]
    c.set_flag("fail")
    c.fail_time = 10_000
    bus.clear_failure_if_needed(c, 11_000)
    assert c.has("fail")
    bus.clear_failure_if_needed(c, 12_001)
    assert not c.has("fail")


def test_c12_cron_pings_nodes_whose_pong_is_older_than_half_timeout():
    srv, core, bus = make_cluster(my="b", others=("a",), node_timeout=2000)
    a = core.state.nodes[nid("a")]
    a.pong_received = 0
    a.ping_sent = 0
    effects = bus.cron(5000)
    pings = [e for e in effects if isinstance(e, SendToNode) and e.node_id == a.id
             and e.msg.type == PING]
    assert pings and a.ping_sent == 5000


def test_c12_dead_node_pfail_cadence_follows_the_keepalive_ping_not_the_failed_connect():
    """A node killed right after answering a PING: its link breaks and every
    reconnect is refused. In Redis the refusal is asynchronous (EINPROGRESS,
    then the connect handler frees the link) and does not touch ping_sent;
    the cron sees the connecting link as a link, so the keep-alive PING
    (pong older than node_timeout/2) sets ping_sent, and PFAIL comes
    node_timeout after that: about 1.5 + 3 s after the last PONG with a
    3000 ms node timeout, not 3 s after the first refused connect."""
    from frtrio.core.effects import Connect

    srv, core, bus = make_cluster(my="b", others=("a", "c"), node_timeout=3000)
    st_ = core.state
    a, c = st_.nodes[nid("a")], st_.nodes[nid("c")]
    now = 100_000
    for n in (a, c):
        n.pong_received = n.data_received = now
        n.ping_sent = 0
    c.link = None  # killed: the link broke at once
    bus.cron_iteration = 0  # the random PING runs on the tick at now + 1000
    pfail_at = ping_at = None
    for t in range(now + 100, now + 6000, 100):
        for n in (a,):  # a answers everything
            n.pong_received = n.data_received = t
            n.ping_sent = 0
        eff = bus.cron(t)
        if c.link is None:
            assert any(isinstance(e, Connect) and e.node_id == c.id for e in eff)
            assert c.connecting  # Redis: node->link exists while connecting
            bus.link_failed(c, t + 1)  # refused, before the next tick
            assert not c.connecting
        if ping_at is None and c.ping_sent:
            ping_at = c.ping_sent
        if pfail_at is None and c.has("fail?"):
            pfail_at = t
    assert ping_at is not None and pfail_at is not None
    # the keep-alive PING at pong + nt/2 at the latest (the 1 s random PING
    # may pick c earlier), never at the first refused connect
    assert now + 1000 <= ping_at <= now + 1600
    assert pfail_at - ping_at > 3000 and pfail_at - ping_at <= 3100
    assert pfail_at > now + 3100


def test_c12_gossip_discovers_new_nodes_but_not_blacklisted_ones():
    srv, core, bus = make_cluster(my="b", others=("a",))
    st_ = core.state
    a = st_.nodes[nid("a")]
    st_.blacklist[nid("e")] = 10**9
    m = bc.Message(PING, sender=a.id, flags=17, config_epoch=a.config_epoch, myslots=bytes(a.slots),
                   port=a.port, cport=a.cport)
    m.gossip = [bc.Gossip(nid("d"), 0, 0, "127.0.0.1", 7009, 17009, bc.F_MASTER),
                bc.Gossip(nid("e"), 0, 0, "127.0.0.1", 7010, 17010, bc.F_MASTER)]
    bus.handle(FakeLink(a), m, 1000)
    assert nid("d") in st_.nodes and nid("e") not in st_.nodes
    assert st_.nodes[nid("d")].is_master


def test_c14_slot_config_rule_higher_epoch_wins_and_stale_claims_get_update():
    srv, core, bus = make_cluster(my="b", others=("a",))
    st_ = core.state
    a = st_.nodes[nid("a")]
    me = st_.myself
    # a claims slot 0 (mine) with a higher epoch: it takes it
    bm = bytearray(a.slots)
    bm[0] |= 1
    m = bc.Message(PONG, sender=a.id, flags=17, config_epoch=me.config_epoch + 10,
                   myslots=bytes(bm), port=a.port, cport=a.cport)
    bus.handle(FakeLink(a), m, 1000)
    assert st_.slots[0] is a
    assert not st_.check_consistency()
    # now a stale claim: a claims a slot of mine with a lower epoch -> UPDATE to a
    a.config_epoch = 1
    me.config_epoch = 50
    bm2 = bytearray(a.slots)
    bm2[0] |= 0x20  # slot 5, mine
    m2 = bc.Message(PONG, sender=a.id, flags=17, config_epoch=1, myslots=bytes(bm2),
                    port=a.port, cport=a.cport)
    effects = bus.handle(FakeLink(a), m2, 2000)
    assert st_.slots[5] is me
    ups = [e for e in effects if isinstance(e, SendToNode) and e.msg.type == UPDATE]
    assert ups and ups[0].msg.update_node == me.id


def test_c13_before_sleep_updates_state_before_saving_config():
    srv, core, bus = make_cluster(my="b", others=("a",))
    core.state.state_ok = True
    core.state.unassign_slot(0)  # coverage lost
    core.state.first_update_call = 1
    srv.now_ms = 10_000
    core.state.todo_update_state = True
    core.state.todo_save = True
    core.state.todo_fsync = True
    text, fsync = core.flush_todo()
    # the text to save is taken after the state update: it is what the update left
    assert fsync and core.state.state_ok is False and text == core.state.config_text()


def test_c10_handshake_rename_on_first_pong():
    srv, core, bus = make_cluster(my="b", others=())
    st_ = core.state
    core.start_handshake("127.0.0.1", 7005, 17005)
    hs = [n for n in st_.nodes.values() if n.has("handshake")][0]
    link = FakeLink(hs)
    hs.link = link
    m = bc.Message(PONG, sender=nid("9"), flags=17, port=7005, cport=17005)
    bus.handle(link, m, 1000)
    assert nid("9") in st_.nodes and not st_.nodes[nid("9")].has("handshake")
    assert st_.nodes[nid("9")].is_master


def test_c10_meet_from_unknown_sender_creates_handshake_node_and_pongs():
    srv, core, bus = make_cluster(my="b", others=())
    link = FakeLink(None, inbound=True)
    link.peer_ip = "127.0.0.9"
    m = bc.Message(MEET, sender=nid("7"), flags=17, port=7777, cport=17777)
    effects = bus.handle(link, m, 1000)
    assert any(isinstance(e, SendOnLink) and e.msg.type == PONG for e in effects)
    hs = [n for n in core.state.nodes.values() if n.has("handshake")]
    assert len(hs) == 1 and (hs[0].ip, hs[0].port) == ("127.0.0.9", 7777)


# --- the cron's empty ticks (an idle node sleeps through them: issue 15) -------------------


def _calm_tick(bus, t):
    """One clusterCron tick at t that is not the random-PING tick: its
    effects, and whether any node's flags changed."""
    st_ = bus.st
    before = {n.id: dict(n.flags) for n in st_.nodes.values()}
    bus.cron_iteration = 0
    eff = bus.cron(t)
    changed = any(dict(n.flags) != before.get(n.id) for n in st_.nodes.values())
    return eff, changed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nt=st.integers(500, 20000),
       peers=st.lists(st.tuples(st.integers(0, 30000), st.integers(0, 30000), st.integers(0, 30000),
                                st.integers(0, 30000), st.booleans()), min_size=1, max_size=5))
def test_c12_quiet_until_is_the_first_ms_a_cron_tick_has_work(nt, peers):
    """``BusCore.quiet_until`` (what lets an idle node's cron sleep through
    ticks): a tick 1 ms before it does nothing, not even a flag change; a
    tick at it acts (a PING, a link recycled or a PFAIL mark)."""
    names = "acdefg"[:len(peers)]
    srv, core, bus = make_cluster(my="b", others=tuple(names), node_timeout=nt)
    now = 40_000
    for name, (pong_ago, ping_ago, data_ago, link_age, pending) in zip(names, peers):
        n = core.state.nodes[nid(name)]
        n.pong_received = now - pong_ago
        n.data_received = now - data_ago
        n.ping_sent = now - ping_ago if pending else 0
        n.link.ctime = now - link_age
    due = core.quiet_until(now)
    assert due is not None and due >= now
    if due > now:
        eff, changed = _calm_tick(bus, due - 1)
        assert eff == [] and not changed, (due, eff)
    eff, changed = _calm_tick(bus, due)
    assert eff or changed


def test_c12_quiet_until_none_while_something_is_under_way():
    """Every tick may have work (None) while a link is down or connecting,
    a peer is suspected or in handshake, the state is not ok or an update
    is pending, a manual failover or a slot migration runs, or myself is a
    replica; a node with no address is left out as clusterCron does; with
    no other node, nothing is due."""
    def fresh():
        srv, core, bus = make_cluster(my="b", others=("a", "c"), node_timeout=2000)
        for n in core.state.nodes.values():
            n.pong_received = n.data_received = 10_000
        return core, core.state.nodes[nid("a")]

    core, a = fresh()
    assert core.quiet_until(10_000) == 10_000 + 1001  # (the PING of no PONG for nt/2)
    for spoil in (lambda c, a: setattr(a, "link", None),
                  lambda c, a: setattr(a, "connecting", True),
                  lambda c, a: a.set_flag("fail?"),
                  lambda c, a: a.set_flag("fail"),
                  lambda c, a: a.set_flag("handshake"),
                  lambda c, a: a.set_flag("meet"),
                  lambda c, a: setattr(c.state, "state_ok", False),
                  lambda c, a: setattr(c.state, "todo_update_state", True),
                  lambda c, a: setattr(c.bus_core, "mf_end", 20_000),
                  lambda c, a: setattr(c, "mf_slave", a),
                  lambda c, a: c.migrations.tasks.append(object()),
                  lambda c, a: (c.state.myself.flags.pop("master"), c.state.myself.set_flag("slave"))):
        core, a = fresh()
        spoil(core, a)
        assert core.quiet_until(10_000) is None
    core, a = fresh()
    a.set_flag("noaddr")
    a.link = None
    assert core.quiet_until(10_000) == 10_000 + 1001  # (c's PING)
    core, a = fresh()
    core.state.blacklist[nid("z")] = 10  # (unix seconds: goes at the first tick of second 11)
    assert core.quiet_until(10_000) == 11_000
    srv, core, bus = make_cluster(my="b", others=(), node_timeout=2000)
    assert core.quiet_until(10_000) == float("inf")
