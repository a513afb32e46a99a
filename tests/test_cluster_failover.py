"""Replica failover on constructed states (no sockets): the election of
spec/cluster-semantics.md §7.3 (rank delay, vote request, majority, epoch,
promotion, data age, expiry and retry) and the replica's side of CLUSTER
FAILOVER default/FORCE/TAKEOVER (§7.4). C11."""

from __future__ import annotations

import pytest

from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_types import FAILOVER_AUTH_ACK, FAILOVER_AUTH_REQUEST, MFSTART, PING, PONG
from frtrio.core.effects import Broadcast, SendToNode

from test_cluster_bus import FakeLink, make_cluster, nid

NT = 3000


def replica_of_a(extra_replica_offset=None, validity="10"):
    """Myself 'r', a replica of master 'a'; masters a, b, c share the slots.
    With ``extra_replica_offset``, 'q' is a second replica of 'a' with that
    offset."""
    srv, core, bus = make_cluster(my="r", others=("a", "b", "c"), node_timeout=NT)
    st = core.state
    me = st.myself
    a = st.nodes[nid("a")]
    for j, owner in enumerate(st.slots):
        if owner is me:
            st.assign_slot(j, a)
    me.config_epoch = 0
    st.set_master(me, a)
    if extra_replica_offset is not None:
        from frtrio.cluster.state import ClusterNode

        q = ClusterNode(nid("q"), ("slave",))
        q.ip, q.port, q.cport = "127.0.0.1", 7010, 17010
        q.link = FakeLink(q)
        st.add_node(q)
        st.set_master(q, a)
        q.repl_offset = extra_replica_offset
    st.size = 3
    srv.config.values["cluster-replica-validity-factor"] = validity
    srv.now_ms = 1_000_000
    core.repl_link_up = True
    core.repl_last_io_ms = srv.now_ms
    return srv, core, bus


def fail_master(core, now):
    a = core.state.nodes[nid("a")]
    a.clear_flag("fail?")
    a.set_flag("fail")
    a.fail_time = now


def ack_from(bus, core, name, now):
    m = bc.Message(FAILOVER_AUTH_ACK, sender=nid(name), current_epoch=core.state.current_epoch,
                   flags=1, port=7000, cport=17000)
    n = core.state.nodes[nid(name)]
    return bus.handle(FakeLink(n), m, now)


def requests(effects):
    return [e for e in effects if isinstance(e, Broadcast) and e.msg.type == FAILOVER_AUTH_REQUEST]


def run_until(bus, srv, pred, step=100, limit=20_000):
    """Cron ticks (100 ms each) until pred(effects) holds; the effects."""
    for _ in range(limit // step):
        srv.now_ms += step
        eff = bus.cron(srv.now_ms)
        if pred(eff):
            return eff
    raise AssertionError("condition never reached")


def test_c11_election_delay_request_majority_and_promotion():
    srv, core, bus = replica_of_a()
    st = core.state
    me = st.myself
    fail_master(core, srv.now_ms)
    epoch0 = st.current_epoch
    t_fail = srv.now_ms
    eff = bus.cron(srv.now_ms + 1)
    srv.now_ms += 1
    # scheduled: 500 ms fixed + up to 499 ms random, rank 0
    assert 500 <= bus.failover_auth_time - srv.now_ms < 1000
    assert not requests(eff)
    eff = run_until(bus, srv, lambda e: bool(requests(e)))
    assert 500 <= srv.now_ms - t_fail <= 1100
    (req,) = requests(eff)
    assert req.msg.current_epoch == epoch0 + 1 == st.current_epoch
    assert not req.msg.mflags & bc.MF_FORCEACK  # automatic failover
    assert st.todo_save and st.todo_fsync
    # one vote is not a majority of 3
    ack_from(bus, core, "b", srv.now_ms)
    srv.now_ms += 100
    bus.cron(srv.now_ms)
    assert me.is_replica
    ack_from(bus, core, "c", srv.now_ms)
    srv.now_ms += 100
    eff = bus.cron(srv.now_ms)
    assert me.is_master and me.master_id is None
    a = st.nodes[nid("a")]
    assert me.numslots > 0 and a.numslots == 0
    assert all(owner is not a for owner in st.slots)
    assert me.config_epoch == epoch0 + 1
    assert any(isinstance(e, Broadcast) and e.msg.type == PONG for e in eff)
    assert st.check_consistency() == []


def test_c11_majority_ack_promotes_in_the_same_before_sleep_round():
    """Redis's FAILOVER_AUTH_ACK handler flags CLUSTER_TODO_HANDLE_FAILOVER:
    the vote that completes the majority is acted on before the node
    sleeps, not at the next cron tick (up to 100 ms later)."""
    srv, core, bus = replica_of_a()
    fail_master(core, srv.now_ms)
    run_until(bus, srv, lambda e: bool(requests(e)))
    assert bus.before_sleep_failover(srv.now_ms) == []  # nothing asked yet
    ack_from(bus, core, "b", srv.now_ms)
    assert bus.todo_failover
    assert bus.before_sleep_failover(srv.now_ms) == [] and core.state.myself.is_replica
    ack_from(bus, core, "c", srv.now_ms)
    eff = bus.before_sleep_failover(srv.now_ms)  # same instant, no cron tick
    assert core.state.myself.is_master
    assert any(isinstance(e, Broadcast) and e.msg.type == PONG for e in eff)
    assert not bus.todo_failover


def test_c11_no_failover_without_fail_or_with_replica_no_failover():
    srv, core, bus = replica_of_a()
    for _ in range(50):
        srv.now_ms += 100
        assert not requests(bus.cron(srv.now_ms))
    srv.config.values["cluster-replica-no-failover"] = "yes"
    fail_master(core, srv.now_ms)
    for _ in range(50):
        srv.now_ms += 100
        assert not requests(bus.cron(srv.now_ms))
    assert core.state.myself.is_replica


def test_c11_stale_replica_refuses_automatic_failover():
    srv, core, bus = replica_of_a(validity="1")
    core.repl_link_up = False
    # link down for longer than repl-ping-replica-period + node_timeout * 1
    core.repl_down_since_ms = srv.now_ms - (10_000 + NT * 1 + NT + 5_000)
    fail_master(core, srv.now_ms)
    for _ in range(50):
        srv.now_ms += 100
        assert not requests(bus.cron(srv.now_ms))
    # validity factor 0: any age is fine
    srv.config.values["cluster-replica-validity-factor"] = "0"
    run_until(bus, srv, lambda e: bool(requests(e)))


def test_c11_rank_delays_the_less_up_to_date_replica():
    srv, core, bus = replica_of_a(extra_replica_offset=1000)  # q is ahead of me (offset 0)
    fail_master(core, srv.now_ms)
    srv.now_ms += 1
    eff = bus.cron(srv.now_ms)
    assert bus.failover_auth_rank == 1
    assert 1500 <= bus.failover_auth_time - srv.now_ms < 2000
    # the other replica of my master learns my offset
    assert any(isinstance(e, SendToNode) and e.node_id == nid("q") and e.msg.type == PONG
               for e in eff)


def test_c11_expired_election_retries_with_a_new_epoch():
    srv, core, bus = replica_of_a()
    fail_master(core, srv.now_ms)
    eff = run_until(bus, srv, lambda e: bool(requests(e)))
    first = requests(eff)[0].msg.current_epoch
    # no votes: auth_timeout = max(2*NT, 2000) expires, retry after 2*auth_timeout
    eff = run_until(bus, srv, lambda e: bool(requests(e)), limit=30_000)
    assert requests(eff)[0].msg.current_epoch == first + 1
    assert core.state.myself.is_replica


def test_c11_votes_from_replicas_or_slotless_masters_do_not_count():
    srv, core, bus = replica_of_a(extra_replica_offset=0)
    fail_master(core, srv.now_ms)
    run_until(bus, srv, lambda e: bool(requests(e)))
    m = bc.Message(FAILOVER_AUTH_ACK, sender=nid("q"), current_epoch=core.state.current_epoch,
                   flags=2, port=7010, cport=17010)
    bus.handle(FakeLink(core.state.nodes[nid("q")]), m, srv.now_ms)
    assert bus.failover_auth_count == 0


def test_c11_manual_failover_takeover_is_immediate():
    srv, core, bus = replica_of_a()
    st = core.state
    epoch0 = st.current_epoch
    bus.start_manual_failover("takeover", srv.now_ms)
    me = st.myself
    assert me.is_master and me.numslots > 0
    assert me.config_epoch == st.current_epoch == epoch0 + 1


def test_c11_manual_failover_force_elects_at_once_with_forceack():
    srv, core, bus = replica_of_a()
    assert bus.start_manual_failover("force", srv.now_ms) == []
    bus.before_sleep_manual_failover(srv.now_ms)
    eff = bus.before_sleep_failover(srv.now_ms)  # schedules with no delay, rank 0
    assert not requests(eff) and bus.failover_auth_time == srv.now_ms
    eff = bus.before_sleep_failover(srv.now_ms)
    (req,) = requests(eff)
    assert req.msg.mflags & bc.MF_FORCEACK
    ack_from(bus, core, "b", srv.now_ms)
    ack_from(bus, core, "c", srv.now_ms)
    srv.now_ms += 100
    bus.cron(srv.now_ms)
    assert core.state.myself.is_master


def test_c11_manual_failover_default_waits_for_the_paused_masters_offset():
    srv, core, bus = replica_of_a()
    st = core.state
    a = st.nodes[nid("a")]
    eff = bus.start_manual_failover("default", srv.now_ms)
    assert [(e.node_id, e.msg.type) for e in eff] == [(a.id, MFSTART)]
    offset = {"v": 500}
    core.my_repl_offset = lambda: offset["v"]
    paused = bc.Message(PING, sender=a.id, flags=1, port=7001, cport=17001, offset=800,
                        mflags=bc.MF_PAUSED, current_epoch=st.current_epoch,
                        config_epoch=a.config_epoch, myslots=bytes(a.slots))
    bus.handle(FakeLink(a), paused, srv.now_ms)
    assert bus.mf_master_offset == 800
    bus.before_sleep_manual_failover(srv.now_ms)
    assert not bus.mf_can_start  # my offset (500) has not reached 800
    offset["v"] = 800
    bus.before_sleep_manual_failover(srv.now_ms)
    assert bus.mf_can_start
    bus.before_sleep_failover(srv.now_ms)
    eff = bus.before_sleep_failover(srv.now_ms)
    assert requests(eff) and requests(eff)[0].msg.mflags & bc.MF_FORCEACK


def test_c11_manual_failover_times_out():
    srv, core, bus = replica_of_a()
    bus.start_manual_failover("default", srv.now_ms)
    assert bus.mf_end
    srv.now_ms += 5100
    bus.cron(srv.now_ms)
    assert bus.mf_end == 0 and core.state.myself.is_replica


@pytest.mark.parametrize("votes", [0, 1, 2])
def test_c11_master_side_vote_then_replica_side_count(votes):
    """End to end on cores: the replica's request goes to the masters' bus
    cores, which grant one vote each per epoch; with a majority the replica
    wins."""
    srv, core, bus = replica_of_a()
    fail_master(core, srv.now_ms)
    eff = run_until(bus, srv, lambda e: bool(requests(e)))
    req = requests(eff)[0].msg
    granted = 0
    for name in ("b", "c")[:votes]:
        vsrv, vcore, vbus = make_cluster(my=name, others=("a", "r"), node_timeout=NT)
        vst = vcore.state
        r = vst.nodes[nid("r")]
        va = vst.nodes[nid("a")]
        vst.set_master(r, va)
        va.set_flag("fail")
        vsrv.now_ms = srv.now_ms
        out = vbus.handle(FakeLink(r, inbound=True), req, vsrv.now_ms)
        acks = [e for e in out if isinstance(e, SendToNode) and e.msg.type == FAILOVER_AUTH_ACK]
        granted += len(acks)
        for e in acks:
            ack = bc.decode(bc.encode(e.msg))
            bus.handle(FakeLink(core.state.nodes[nid(name)]), ack, srv.now_ms)
    assert granted == votes
    srv.now_ms += 100
    bus.cron(srv.now_ms)
    assert core.state.myself.is_master == (votes >= 2)


def test_c11_link_killed_before_a_long_block_counts_as_data_age():
    """Upstream 06-slave-stop-cond: MULTI / CLIENT KILL <master> / DEBUG
    SLEEP 20 / EXEC. The link is lost at the kill (the shell reports that
    time, not the time its link task next runs); a second report of the
    same loss keeps the first time, so the replica's data is 20 s old and,
    with validity factor 2, it refuses to fail over."""
    from frtrio.replication.core import Replication

    srv, core, bus = replica_of_a(validity="2")
    repl = Replication("a" * 40, srv.now_ms)
    repl.set_master("127.0.0.1", 7000, srv.now_ms // 1000)
    repl.full_sync_done("b" * 40, 100, 1 << 20)
    killed_at = srv.now_ms // 1000
    srv.now_ms += 20_000  # the DEBUG SLEEP 20 in the same EXEC
    repl.link_lost(killed_at, True)
    repl.link_lost(srv.now_ms // 1000, True)  # reconnect attempts fail later
    assert repl.down_since_s == killed_at
    # what the replication shell feeds the election (reconcile_cluster)
    core.repl_link_up = repl.link_up
    core.repl_down_since_ms = repl.down_since_s * 1000
    fail_master(core, srv.now_ms)
    for _ in range(100):
        srv.now_ms += 100
        assert not requests(bus.cron(srv.now_ms))
    assert core.state.myself.is_replica


# --- C12: replica migration to orphaned masters -------------------------------------


def tick(bus, srv, core, n=1):
    """n cron ticks with every peer answering (no PFAIL from silence)."""
    for _ in range(n):
        srv.now_ms += 100
        bus.cron(srv.now_ms)
        for node in core.state.nodes.values():
            node.ping_sent = 0
            node.pong_received = node.data_received = srv.now_ms
            if node.has("fail?"):
                node.clear_flag("fail?")


def orphan_b(core):
    """Master b has slots and used to have a replica (MIGRATE_TO), none left."""
    b = core.state.nodes[nid("b")]
    b.migrate_to = True
    return b


def test_c12_smallest_id_replica_of_the_largest_shard_migrates_after_5s():
    # r and q replicate a (q's ID "qqq..." is smaller than mine "rrr...")
    srv, core, bus = replica_of_a(extra_replica_offset=0)
    b = orphan_b(core)
    me = core.state.myself
    tick(bus, srv, core, 100)
    assert me.master_id == nid("a")  # q is the candidate, not me
    # q goes away (FAIL): now I am alone under a, and 1 <= barrier 1: stay
    core.state.nodes[nid("q")].set_flag("fail")
    tick(bus, srv, core, 100)
    assert me.master_id == nid("a")
    assert b.master_id is None and not b.replicas


def test_c12_migration_barrier_and_allow_replica_migration():
    from frtrio.cluster.state import ClusterNode

    srv, core, bus = replica_of_a(extra_replica_offset=0)
    st = core.state
    # a third replica 'z' of a; q is FAIL?; my ID 'rrr' is the smallest working
    q = st.nodes[nid("q")]
    z = ClusterNode(nid("z"), ("slave",))
    z.ip, z.port, z.cport = "127.0.0.1", 7011, 17011
    z.link = FakeLink(z)
    st.add_node(z)
    st.set_master(z, st.nodes[nid("a")])
    st.delete_node(q)
    b = orphan_b(core)
    me = st.myself
    srv.config.values["cluster-migration-barrier"] = "2"  # 2 working (z, me): not > 2
    tick(bus, srv, core, 80)
    assert me.master_id == nid("a")
    srv.config.values["cluster-migration-barrier"] = "1"
    srv.config.values["cluster-allow-replica-migration"] = "no"
    tick(bus, srv, core, 80)
    assert me.master_id == nid("a")
    srv.config.values["cluster-allow-replica-migration"] = "yes"
    t0 = srv.now_ms
    while me.master_id == nid("a"):
        tick(bus, srv, core)
        assert srv.now_ms - t0 < 10_000
    assert me.master_id == nid("b") and me.id in b.replicas
    assert me.id not in st.nodes[nid("a")].replicas
    # b had been orphaned (census) for more than 5 s before I moved
    assert srv.now_ms - t0 > 5000


def test_c11_mfstart_pauses_the_masters_writes_until_it_steps_down():
    """Master side of CLUSTER FAILOVER (default): MFSTART from my replica
    holds my clients' writes (not reads) and my packets say PAUSED; when I
    become a replica of the winner the pause ends."""
    from frtrio.cluster.state import ClusterNode

    srv, core, bus = make_cluster(my="a", others=("b", "c"), node_timeout=NT)
    st = core.state
    r = ClusterNode(nid("r"), ("slave",))
    r.ip, r.port, r.cport = "127.0.0.1", 7010, 17010
    r.link = FakeLink(r)
    st.add_node(r)
    st.set_master(r, st.myself)
    srv.now_ms = 1_000_000
    c = srv.new_client()
    m = bc.Message(MFSTART, sender=nid("r"), current_epoch=st.current_epoch,
                   flags=2, port=7010, cport=17010, slaveof=nid("a"))
    bus.handle(FakeLink(r), m, srv.now_ms)
    assert srv.pause_holds(c, [b"SET", b"k", b"v"])
    assert not srv.pause_holds(c, [b"GET", b"k"])
    assert bus.ping_message(PING).mflags & bc.MF_PAUSED
    # I am not promoted away in time: the pause ends with the MF timeout
    srv.now_ms += 5001
    core.cron()
    assert not srv.pause_holds(c, [b"SET", b"k", b"v"])
    # again, and this time the replica wins: I become its replica
    bus.handle(FakeLink(r), m, srv.now_ms)
    assert srv.pause_holds(c, [b"SET", b"k", b"v"])
    core.became_replica(r)
    assert not srv.pause_holds(c, [b"SET", b"k", b"v"])


def test_c11_replica_keeps_expired_keys_of_its_rdb_at_load():
    """Redis 7.0's rdbLoad drops expired keys only when iAmMaster(): in
    cluster mode a node that nodes.conf makes a replica keeps them (its
    master's DELs remove them later). Upstream 14-consistency-check."""
    from frtrio.persist.rdbfile import load_rdb, rdb_bytes

    srv, core, bus = replica_of_a()
    src_srv, _c2, _b2 = make_cluster(my="a", others=("b", "c"), node_timeout=NT)
    src_srv.now_ms = srv.now_ms
    db = src_srv.dbs[0]
    db.set(b"live", b"1")
    db.set(b"gone", b"2")
    db.set_expire(b"gone", srv.now_ms + 1000)
    data = rdb_bytes(src_srv, src_srv.config)
    srv.now_ms += 5000  # "gone" is logically expired now
    _end, loaded, expired = load_rdb(data, srv, srv.config)
    assert expired == 0 and set(srv.dbs[0].data) == {b"live", b"gone"}
    # the same file on a master: the expired key is dropped
    src_srv.now_ms += 5000
    src_srv.dbs[0].data.clear()
    src_srv.dbs[0].expires.clear()
    src_srv.dbs[0].slot_keys.clear()
    _end, loaded, expired = load_rdb(data, src_srv, src_srv.config)
    assert expired == 1 and set(src_srv.dbs[0].data) == {b"live"}


def test_c11_script_with_flags_that_may_write_is_moved_from_a_replica():
    """Upstream 16-transactions-on-replica: EVAL of a shebang script
    without no-writes, on a READONLY replica, answers MOVED (Redis's
    evalGetCommandFlags gives it the WRITE flag); a no-writes script is
    served by the replica."""
    from frtrio.core.client import F

    srv, core, bus = replica_of_a()
    srv.repl.masterhost, srv.repl.masterport = "127.0.0.1", 7001
    c = srv.new_client()
    c.flags |= F.READONLY
    srv.execute(c, [b"EVAL", b"#!lua\nreturn redis.call('del',KEYS[1])", b"1", b"06S"])
    assert c.take_output().startswith(b"-MOVED ")
    srv.execute(c, [b"EVAL", b"#!lua flags=no-writes\nreturn redis.call('get',KEYS[1])", b"1", b"06S"])
    assert c.take_output() == b"$-1\r\n"
