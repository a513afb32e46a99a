"""The routing decision (Redis's getNodeByQuery) over constructed cluster
states: contract rows C02 (keys, CROSSSLOT, hash tags), C03 (every routing
outcome), C04 (redirect reply bytes), C07 (how ASKING / READONLY change the
decision), and the invariant I01 (routing is a deterministic function; the
memoised ``Router`` agrees with the direct ``decide``) as hypothesis
properties.

The states are built directly (no server, no sockets): myself = A owns
0-5460, B owns 5461-10922, C owns 10923-16382, slot 16383 is unbound; R is a
replica of B. Replica-side cases put myself in R's place.
"""

from __future__ import annotations

import copy
from binascii import crc_hqx

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import frtrio.commands  # noqa: F401  (registers commands)
from frtrio.cluster import routing
from frtrio.cluster.routing import (
    ASK,
    CROSSSLOT,
    DOWN_RO_STATE,
    DOWN_STATE,
    DOWN_UNBOUND,
    LOCAL,
    MOVED,
    TRYAGAIN,
    Route,
    Router,
    RoutingOptions,
    decide,
    error_text,
)
from frtrio.cluster.slots import CLUSTER_SLOTS, hash_tag, key_slot
from frtrio.cluster.state import ClusterNode, ClusterState
from frtrio.commands.table import TABLE, Command
from frtrio.protocol.reply import encode_error
from frtrio.store.db import Db

ID_A = "a" * 40
ID_B = "b" * 40
ID_C = "c" * 40
ID_R = "d" * 40
ID_X = "e" * 40  # an empty master


def cmd(name: str) -> Command:
    """The registered command, or one built from the recorded facts (so the
    routing of commands other families have not written yet can be tested)."""
    c = TABLE.get(name.encode())
    if c is not None and "|" not in name:
        return c
    return Command(name, None)  # keys: frtrio.commands.keyspec, as for served commands


_KEY_CACHE: dict[int, bytes] = {}


def key_for(slot: int, prefix: str = "k") -> bytes:
    """A key (without a hash tag) hashing to ``slot``."""
    k = _KEY_CACHE.get((slot, prefix))
    if k is None:
        i = 0
        while True:
            cand = ("%s%d" % (prefix, i)).encode()
            if crc_hqx(cand, 0) & 16383 == slot:
                k = _KEY_CACHE[(slot, prefix)] = cand
                break
            i += 1
    return k


def node(nid, flags, ip, port, hostname=""):
    n = ClusterNode(nid, flags)
    n.ip, n.port, n.cport, n.hostname = ip, port, port + 10000, hostname
    return n


_TEMPLATES: dict[bool, ClusterState] = {}


def make_state(myself_is_replica: bool = False) -> ClusterState:
    """A fresh copy of the layout described in the module docstring."""
    t = _TEMPLATES.get(myself_is_replica)
    if t is None:
        t = _TEMPLATES[myself_is_replica] = _build_state(myself_is_replica)
    return copy.deepcopy(t)


def _build_state(myself_is_replica: bool) -> ClusterState:
    a = node(ID_A, ("master",), "127.0.0.1", 7000)
    b = node(ID_B, ("master",), "127.0.0.2", 7001, "b.example")
    c = node(ID_C, ("master",), "127.0.0.3", 7002)
    r = node(ID_R, ("slave",), "127.0.0.4", 7003)
    x = node(ID_X, ("master",), "127.0.0.5", 7004)
    me = r if myself_is_replica else a
    me.set_flag("myself")
    st = ClusterState(me)
    for n in (a, b, c, r, x):
        st.add_node(n)
    st.set_master(r, b)
    st.assign_slots(range(0, 5461), a)
    st.assign_slots(range(5461, 10923), b)
    st.assign_slots(range(10923, 16383), c)
    st.state_ok = True
    assert st.check_consistency() == []
    return st


OPTS = RoutingOptions()

SLOT_A = 100
SLOT_B = 6000
SLOT_C = 12000
SLOT_FREE = 16383


def route(st, name, *args, db=None, opts=OPTS, asking=False, readonly=False, queued=None,
          multi=None, now_ms=1000):
    argv = [name.encode()] + [a if isinstance(a, bytes) else a.encode() for a in args]
    return decide(st, opts, cmd(name), argv, asking=asking, readonly=readonly, queued=queued,
                  multi=multi, db=db, now_ms=now_ms)


def q(name, *args):
    """One queued MULTI entry."""
    return (cmd(name), [name.encode()] + [a if isinstance(a, bytes) else a.encode() for a in args])


def text(r: Route, endpoint_type="ip"):
    return error_text(r, endpoint_type)


# --- C02: keys, slots, hash tags, CROSSSLOT ---------------------------------------


@pytest.mark.parametrize("key,slot", [
    (b"foo", 12182),
    (b"123456789", 12739),
    (b"{user1000}.following", 3443),
    (b"foo{}{bar}", 8363),
    (b"foo{{bar}}zap", 4015),
    (b"foo{bar}{zap}", 5061),
    (b"{}", 15257),
    (b"06S", 0),
])
def test_c02_verified_key_slots(key, slot):
    """The verified examples of cluster-semantics §1."""
    assert key_slot(key) == slot


def test_c02_crc16_xmodem():
    assert crc_hqx(b"123456789", 0) == 0x31C3
    assert key_slot(b"123456789") == 0x31C3 & 0x3FFF


@pytest.mark.parametrize("key,tag", [
    (b"{user1000}.following", b"user1000"),
    (b"foo{}{bar}", b"foo{}{bar}"),
    (b"foo{{bar}}zap", b"{bar"),
    (b"foo{bar}{zap}", b"bar"),
    (b"{}", b"{}"),
    (b"}{a}", b"a"),
    (b"{a", b"{a"),
    (b"a}", b"a}"),
    (b"", b""),
    (b"{\x00}", b"\x00"),
])
def test_c02_hash_tag_rule(key, tag):
    """First '{' to the first '}' after it, at least one byte between."""
    assert hash_tag(key) == tag
    assert key_slot(key) == crc_hqx(tag, 0) & 16383


@given(hs.binary(max_size=40))
def test_c02_key_slot_matches_hash_tag(key):
    assert 0 <= key_slot(key) < CLUSTER_SLOTS
    assert key_slot(key) == crc_hqx(hash_tag(key), 0) & 16383


@given(hs.binary(max_size=10), hs.binary(max_size=10), hs.binary(min_size=1, max_size=10).filter(
    lambda t: b"}" not in t))
def test_c02_hash_tag_groups_keys(pre, post, tag):
    """Keys sharing the first tag share the slot, whatever surrounds it."""
    if b"{" in pre:
        return
    assert key_slot(pre + b"{" + tag + b"}" + post) == key_slot(tag)


def test_c02_keys_from_key_positions():
    st = make_state()
    ka, kb = key_for(SLOT_A), key_for(SLOT_B)
    # MSET: keys at 1, 3 (values at 2, 4 are not keys)
    assert route(st, "mset", ka, kb, ka, kb).kind == LOCAL  # values hash elsewhere: ignored
    assert route(st, "mset", ka, "v", kb, "v").kind == CROSSSLOT
    assert route(st, "mget", ka, ka, ka).kind == LOCAL
    # the last key position of MSET-like commands: DEL k1 k2 ... all keys
    assert route(st, "del", ka, kb).kind == CROSSSLOT
    # a later key in a foreign slot of the same owner is still CROSSSLOT
    assert route(st, "mget", key_for(SLOT_A), key_for(SLOT_A + 1)).kind == CROSSSLOT


def test_c02_crossslot_before_anything_else():
    """CROSSSLOT is decided while walking the keys, before the cluster-down,
    migrating and MOVED checks."""
    st = make_state()
    st.state_ok = False
    r = route(st, "mget", key_for(SLOT_C), key_for(SLOT_B))
    assert r.kind == CROSSSLOT
    assert text(r) == "CROSSSLOT Keys in request don't hash to the same slot"


def test_c02_unbound_first_key_before_crossslot():
    """The first key's slot being unbound ends the walk: CLUSTERDOWN, even if a
    later key is in another slot."""
    st = make_state()
    r = route(st, "mget", key_for(SLOT_FREE), key_for(SLOT_A))
    assert r.kind == DOWN_UNBOUND


def test_c02_hash_tags_route_together():
    st = make_state()
    assert key_slot(b"t") != key_slot(b"u")
    r = route(st, "mset", "{t}1", "a", "{t}2", "b")
    assert r.kind in (LOCAL, MOVED) and (r.kind == LOCAL or r.slot == key_slot(b"t"))
    assert route(st, "mset", "{t}1", "a", "{u}2", "b").kind == CROSSSLOT
    st.unassign_slot(3443)
    assert route(st, "mget", "{user1000}.following", "{user1000}.followers") == \
        Route(DOWN_UNBOUND, 3443)


def test_c02_movable_keys_eval():
    """EVAL's declared numkeys keys are its keys; EVAL with 0 keys has none."""
    st = make_state()
    assert route(st, "eval", "return 1", "0").kind == LOCAL
    r = route(st, "eval", "return 1", "1", key_for(SLOT_C))
    assert r.kind == MOVED and r.slot == SLOT_C
    assert route(st, "eval", "return 1", "2", key_for(SLOT_A), key_for(SLOT_B)).kind == CROSSSLOT


def test_c02_movable_keys_streams_and_sort():
    """XREAD/XREADGROUP's keys are the first half after STREAMS; SORT's STORE
    destination is a key (Redis's getNodeByQuery takes the same keys as
    COMMAND GETKEYS)."""
    st = make_state()
    r = route(st, "xread", "COUNT", "1", "STREAMS", key_for(SLOT_C), "0")
    assert r.kind == MOVED and r.slot == SLOT_C
    r = route(st, "xreadgroup", "GROUP", "g", "c", "STREAMS", key_for(SLOT_A), key_for(SLOT_B),
              ">", ">")
    assert r.kind == CROSSSLOT
    assert route(st, "sort", key_for(SLOT_A), "STORE", key_for(SLOT_B)).kind == CROSSSLOT
    assert route(st, "sort", key_for(SLOT_A), "LIMIT", "0", "1").kind == LOCAL


def test_c02_numkeys_store_key_comes_last():
    """Z*STORE's keys for routing are Redis's getkeys procedure's: the sources,
    then the destination, so an unbound destination after a bound source is
    CROSSSLOT, not CLUSTERDOWN."""
    st = make_state()
    r = route(st, "zunionstore", key_for(SLOT_FREE), "1", key_for(SLOT_A))
    assert r.kind == CROSSSLOT
    r = route(st, "zunionstore", key_for(SLOT_A), "1", key_for(SLOT_FREE))
    assert r == Route(DOWN_UNBOUND, SLOT_FREE)


def test_c02_shard_channels_are_keys():
    st = make_state()
    assert route(st, "spublish", key_for(SLOT_C), "msg").kind == MOVED
    assert route(st, "ssubscribe", key_for(SLOT_A), key_for(SLOT_B)).kind == CROSSSLOT


# --- C03: each outcome ---------------------------------------------------------------


def test_c03_local_for_own_slot():
    st = make_state()
    assert route(st, "get", key_for(SLOT_A)).kind == LOCAL
    assert route(st, "set", key_for(SLOT_A), "v").kind == LOCAL


def test_c03_moved_for_foreign_slot():
    st = make_state()
    r = route(st, "get", key_for(SLOT_B))
    assert r == Route(MOVED, SLOT_B, st.nodes[ID_B])
    assert text(r) == "MOVED %d 127.0.0.2:7001" % SLOT_B


def test_c03_unbound_slot():
    st = make_state()
    r = route(st, "get", key_for(SLOT_FREE))
    assert r.kind == DOWN_UNBOUND
    assert text(r) == "CLUSTERDOWN Hash slot not served"


def test_c03_no_keys_is_served_even_when_down():
    st = make_state()
    st.state_ok = False
    assert route(st, "eval", "return 1", "0").kind == LOCAL
    assert route(st, "mget").kind == LOCAL  # argv without keys: nothing to route


def test_c03_cluster_down_default():
    st = make_state()
    st.state_ok = False
    for name, args in (("get", [key_for(SLOT_A)]), ("set", [key_for(SLOT_A), "v"]),
                       ("get", [key_for(SLOT_B)])):
        r = route(st, name, *args)
        assert r.kind == DOWN_STATE
        assert text(r) == "CLUSTERDOWN The cluster is down"


def test_c03_cluster_down_allow_reads():
    st = make_state()
    st.state_ok = False
    opts = RoutingOptions(allow_reads_when_down=True)
    assert route(st, "get", key_for(SLOT_A), opts=opts).kind == LOCAL
    # a read of a foreign slot falls through to MOVED
    assert route(st, "get", key_for(SLOT_B), opts=opts).kind == MOVED
    r = route(st, "set", key_for(SLOT_A), "v", opts=opts)
    assert r.kind == DOWN_RO_STATE
    assert text(r) == "CLUSTERDOWN The cluster is down and only accepts read commands"


def test_c03_cluster_down_unbound_slot_first():
    """An unbound slot is reported as such even while the state is FAIL."""
    st = make_state()
    st.state_ok = False
    assert route(st, "get", key_for(SLOT_FREE)).kind == DOWN_UNBOUND


def test_c03_cluster_down_pubsubshard():
    st = make_state()
    st.state_ok = False
    ch = key_for(SLOT_A)
    assert route(st, "spublish", ch, "m").kind == LOCAL  # allowed by default
    opts = RoutingOptions(allow_pubsubshard_when_down=False)
    assert route(st, "spublish", ch, "m", opts=opts).kind == DOWN_STATE
    # the reads option does not apply to shard pub/sub
    opts = RoutingOptions(allow_pubsubshard_when_down=False, allow_reads_when_down=True)
    assert route(st, "ssubscribe", ch, opts=opts).kind == DOWN_STATE


def _db_with(*keys, expired=()):
    db = Db(0)
    for k in keys:
        db.set(k, b"v")
    for k in expired:
        db.set(k, b"v")
        db.set_expire(k, 500)  # route() uses now_ms=1000
    return db


def test_c03_migrating_existing_key_served():
    st = make_state()
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    k = key_for(SLOT_A)
    assert route(st, "get", k, db=_db_with(k)).kind == LOCAL
    assert route(st, "set", k, "v", db=_db_with(k)).kind == LOCAL


def test_c03_migrating_missing_key_ask():
    st = make_state()
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    k = key_for(SLOT_A)
    r = route(st, "get", k, db=_db_with())
    assert r == Route(ASK, SLOT_A, st.nodes[ID_B])
    assert text(r) == "ASK %d 127.0.0.2:7001" % SLOT_A
    # writes too: SET newkey on the source is ASKed (verified on 7.0)
    assert route(st, "set", k, "v", db=_db_with()).kind == ASK


def test_c03_migrating_expired_key_is_missing():
    st = make_state()
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    k = key_for(SLOT_A)
    assert route(st, "get", k, db=_db_with(expired=[k])).kind == ASK
    assert route(st, "get", k, db=_db_with(expired=[k]), now_ms=100).kind == LOCAL


def test_c03_migrating_some_missing_tryagain():
    st = make_state()
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    k1, k2 = b"{%s}1" % key_for(SLOT_A), b"{%s}2" % key_for(SLOT_A)
    r = route(st, "mget", k1, k2, db=_db_with(k1))
    assert r.kind == TRYAGAIN
    assert text(r) == "TRYAGAIN Multiple keys request during rehashing of slot"
    assert route(st, "mget", k1, k2, db=_db_with(k1, k2)).kind == LOCAL
    assert route(st, "mget", k1, k2, db=_db_with()).kind == ASK


def test_c03_migrating_mark_on_foreign_slot_ignored():
    """A migrating mark counts only on a slot I own."""
    st = make_state()
    st.migrating_to[SLOT_B] = st.nodes[ID_C]
    assert route(st, "get", key_for(SLOT_B), db=_db_with()).kind == MOVED


def test_c03_importing_without_asking_moved():
    st = make_state()
    st.importing_from[SLOT_B] = st.nodes[ID_B]
    k = key_for(SLOT_B)
    r = route(st, "get", k, db=_db_with(k))
    assert r == Route(MOVED, SLOT_B, st.nodes[ID_B])


def test_c03_importing_with_asking_served():
    st = make_state()
    st.importing_from[SLOT_B] = st.nodes[ID_B]
    k = key_for(SLOT_B)
    assert route(st, "get", k, db=_db_with(), asking=True).kind == LOCAL
    assert route(st, "set", k, "v", db=_db_with(), asking=True).kind == LOCAL
    # the same key repeated is not "multiple keys"
    assert route(st, "mget", k, k, db=_db_with(), asking=True).kind == LOCAL


def test_c03_importing_multiple_keys_some_missing_tryagain():
    st = make_state()
    st.importing_from[SLOT_B] = st.nodes[ID_B]
    k1, k2 = b"{%s}1" % key_for(SLOT_B), b"{%s}2" % key_for(SLOT_B)
    assert route(st, "mget", k1, k2, db=_db_with(k1), asking=True).kind == TRYAGAIN
    assert route(st, "mget", k1, k2, db=_db_with(), asking=True).kind == TRYAGAIN
    assert route(st, "mget", k1, k2, db=_db_with(k1, k2), asking=True).kind == LOCAL


def test_c03_restore_asking_needs_no_asking():
    """RESTORE-ASKING carries the ASKING command flag."""
    st = make_state()
    st.importing_from[SLOT_B] = st.nodes[ID_B]
    k = key_for(SLOT_B)
    assert route(st, "restore-asking", k, "0", "payload", db=_db_with()).kind == LOCAL
    assert route(st, "restore", k, "0", "payload", db=_db_with()).kind == MOVED


def test_c03_migrate_in_open_slot_local():
    st = make_state()
    k = key_for(SLOT_A)
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    assert route(st, "migrate", "h", "1", k, "0", "10", db=_db_with()).kind == LOCAL
    kb = key_for(SLOT_B)
    assert route(st, "migrate", "h", "1", kb, "0", "10", db=_db_with()).kind == MOVED
    st.importing_from[SLOT_B] = st.nodes[ID_B]
    assert route(st, "migrate", "h", "1", kb, "0", "10", db=_db_with()).kind == LOCAL
    st.state_ok = False  # the down check comes first
    assert route(st, "migrate", "h", "1", kb, "0", "10", db=_db_with()).kind == DOWN_STATE


def test_c03_open_slot_down_check_before_ask():
    st = make_state()
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    st.state_ok = False
    assert route(st, "get", key_for(SLOT_A), db=_db_with()).kind == DOWN_STATE


def test_c03_readonly_replica_reads():
    st = make_state(myself_is_replica=True)  # I am R, replica of B
    kb, kc = key_for(SLOT_B), key_for(SLOT_C)
    assert route(st, "get", kb).kind == MOVED  # without READONLY
    assert route(st, "get", kb, readonly=True).kind == LOCAL
    r = route(st, "set", kb, "v", readonly=True)  # writes are MOVED to the master
    assert r == Route(MOVED, SLOT_B, st.nodes[ID_B])
    assert route(st, "get", kc, readonly=True).kind == MOVED  # not my master's slot
    # shard pub/sub on a replica needs no READONLY
    assert route(st, "spublish", kb, "m").kind == LOCAL
    assert route(st, "ssubscribe", kb).kind == LOCAL


def test_c03_readonly_on_master_changes_nothing():
    st = make_state()
    assert route(st, "get", key_for(SLOT_B), readonly=True).kind == MOVED


def test_c03_exec_routes_queued_keys():
    st = make_state()
    ka, ka2, kb = key_for(SLOT_A), key_for(SLOT_A + 1), key_for(SLOT_B)
    assert route(st, "exec").kind == LOCAL  # EXEC without MULTI: EXEC errors by itself
    assert route(st, "exec", queued=[]).kind == LOCAL
    assert route(st, "exec", queued=[q("set", ka, "1"), q("get", ka)]).kind == LOCAL
    assert route(st, "exec", queued=[q("set", ka, "1"), q("get", ka2)]).kind == CROSSSLOT
    assert route(st, "exec", queued=[q("ping"), q("get", kb)]) == Route(MOVED, SLOT_B, st.nodes[ID_B])
    st.state_ok = False
    assert route(st, "exec", queued=[q("get", ka)]).kind == DOWN_STATE
    assert route(st, "exec", queued=[q("ping")]).kind == LOCAL


def test_c03_exec_allow_reads_when_down_uses_exec_flags():
    """Redis checks the WRITE flag of EXEC itself (none) in the cluster-down
    step, so queued writes pass it (they were refused when queued)."""
    st = make_state()
    st.state_ok = False
    opts = RoutingOptions(allow_reads_when_down=True)
    ka = key_for(SLOT_A)
    assert route(st, "exec", queued=[q("set", ka, "1")], opts=opts).kind == LOCAL
    assert route(st, "set", ka, "1", opts=opts, multi=[]).kind == DOWN_RO_STATE


def test_c03_exec_on_readonly_replica():
    st = make_state(myself_is_replica=True)
    kb = key_for(SLOT_B)
    assert route(st, "exec", queued=[q("get", kb)], readonly=True).kind == LOCAL
    assert route(st, "exec", queued=[q("get", kb), q("set", kb, "v")],
                 readonly=True).kind == MOVED


def test_c03_queueing_in_multi_uses_the_queued_commands_own_flags():
    """Inside MULTI, Redis's replica-read check (getNodeByQuery) looks at
    the flags of the command being queued; only EXEC looks at the queued
    commands' flags. So a write queued on a READONLY replica is MOVED
    (upstream cluster 16-transactions-on-replica), a read is served."""
    st = make_state(myself_is_replica=True)
    kb = key_for(SLOT_B)
    assert route(st, "set", kb, "v", readonly=True, multi=[]).kind == MOVED
    assert route(st, "get", kb, readonly=True, multi=[q("set", kb, "v")]).kind == LOCAL
    assert route(st, "get", kb, readonly=True, multi=[q("get", kb)]).kind == LOCAL
    assert route(st, "set", kb, "v", readonly=True).kind == MOVED
    assert route(st, "exec", readonly=True, queued=[q("set", kb, "v")]).kind == MOVED
    assert route(st, "exec", readonly=True, queued=[q("get", kb)]).kind == LOCAL


def test_c03_endpoint_types():
    st = make_state()
    r = route(st, "get", key_for(SLOT_B))
    assert text(r, "ip") == "MOVED %d 127.0.0.2:7001" % SLOT_B
    assert text(r, "hostname") == "MOVED %d b.example:7001" % SLOT_B
    assert text(r, "unknown-endpoint") == "MOVED %d :7001" % SLOT_B
    r = route(st, "get", key_for(SLOT_C))
    assert text(r, "hostname") == "MOVED %d ?:7002" % SLOT_C
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    r = route(st, "get", key_for(SLOT_A), db=_db_with())
    assert text(r, "hostname") == "ASK %d b.example:7001" % SLOT_A


# --- C04: reply bytes ----------------------------------------------------------------


def test_c04_redirect_reply_bytes():
    st = make_state()
    b = st.nodes[ID_B]
    cases = [
        (Route(MOVED, 3999, b), b"-MOVED 3999 127.0.0.2:7001\r\n"),
        (Route(ASK, 3999, b), b"-ASK 3999 127.0.0.2:7001\r\n"),
        (Route(TRYAGAIN, 1), b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"),
        (Route(CROSSSLOT, 1), b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"),
        (Route(DOWN_STATE, 1), b"-CLUSTERDOWN The cluster is down\r\n"),
        (Route(DOWN_RO_STATE, 1),
         b"-CLUSTERDOWN The cluster is down and only accepts read commands\r\n"),
        (Route(DOWN_UNBOUND, 1), b"-CLUSTERDOWN Hash slot not served\r\n"),
    ]
    for r, wire in cases:
        assert encode_error(error_text(r)) == wire
    assert error_text(Route(LOCAL)) is None
    assert encode_error(error_text(Route(MOVED, 3999, b), "unknown-endpoint")) == \
        b"-MOVED 3999 :7001\r\n"


# --- I01: determinism and the memo -----------------------------------------------------

_NODE_IDS = [ID_A, ID_B, ID_C, ID_X]
_KEYS = [b"k1", b"k2", b"{t}a", b"{t}b", b"foo", b"06S", b"{06S}x", b"zz"]
_SLOTS = sorted({key_slot(k) for k in _KEYS})

_CMDS = [
    ("get", 1), ("set", 1), ("mget", 3), ("mset", 2), ("del", 2), ("exists", 2),
    ("spublish", 1), ("ssubscribe", 2), ("migrate", 1), ("restore-asking", 1), ("eval", 2),
    ("exec", 0), ("ping", 0),
]


def _argv(name, keys):
    if name in ("set", "spublish"):
        return [name.encode(), keys[0], b"v"]
    if name == "mset":
        out = [b"mset"]
        for k in keys:
            out += [k, b"v"]
        return out
    if name == "migrate":
        return [b"migrate", b"h", b"1", keys[0], b"0", b"10"]
    if name == "restore-asking":
        return [b"restore-asking", keys[0], b"0", b"p"]
    if name == "eval":
        return [b"eval", b"s", b"%d" % len(keys)] + keys
    if name in ("exec", "ping"):
        return [name.encode()]
    return [name.encode()] + keys


@hs.composite
def states(draw):
    replica = draw(hs.booleans())
    st = make_state(myself_is_replica=replica)
    for s in _SLOTS:
        owner = draw(hs.sampled_from(_NODE_IDS + [None]))
        if owner is None:
            st.unassign_slot(s)
        else:
            st.assign_slot(s, st.nodes[owner])
        if draw(hs.integers(0, 3)) == 0:
            st.migrating_to[s] = st.nodes[draw(hs.sampled_from(_NODE_IDS))]
        if draw(hs.integers(0, 3)) == 0:
            st.importing_from[s] = st.nodes[draw(hs.sampled_from(_NODE_IDS))]
    st.state_ok = draw(hs.booleans())
    st.bump()
    return st


@hs.composite
def requests(draw):
    name, nkeys = draw(hs.sampled_from(_CMDS))
    keys = draw(hs.lists(hs.sampled_from(_KEYS), min_size=max(1, nkeys) if nkeys else 0,
                         max_size=max(1, nkeys)))
    queued = None
    if name == "exec" and draw(hs.booleans()):
        queued = []
        for _ in range(draw(hs.integers(0, 3))):
            qn, qk = draw(hs.sampled_from([c for c in _CMDS if c[0] not in ("exec", "ping")]))
            qkeys = draw(hs.lists(hs.sampled_from(_KEYS), min_size=1, max_size=max(1, qk)))
            queued.append((cmd(qn), _argv(qn, qkeys)))
    return name, _argv(name, keys), queued


@hs.composite
def options(draw):
    return RoutingOptions(draw(hs.booleans()), draw(hs.booleans()),
                          draw(hs.sampled_from(["ip", "hostname", "unknown-endpoint"])))


_SETTINGS = settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(states(), hs.lists(requests(), min_size=1, max_size=5), options(),
       hs.booleans(), hs.booleans(), hs.lists(hs.sampled_from(_KEYS), max_size=4))
def test_c03_routing_deterministic_and_memo_agrees(st, reqs, opts, asking, readonly, present):
    db = Db(0)
    for k in present:
        db.set(k, b"v")
    router = Router(st)
    for name, argv, queued in reqs:
        c = cmd(name)
        kw = dict(asking=asking, readonly=readonly, queued=queued, db=db, now_ms=1000)
        direct = decide(st, opts, c, argv, **kw)
        assert decide(st, opts, c, argv, **kw) == direct  # deterministic
        assert router.decide(opts, c, argv, **kw) == direct  # memo == direct
        assert router.decide(opts, c, argv, **kw) == direct  # memo hit == direct
        if direct.kind != LOCAL:
            assert error_text(direct, opts.endpoint_type)


@_SETTINGS
@given(states(), hs.lists(hs.tuples(hs.sampled_from(_SLOTS), hs.sampled_from(_NODE_IDS + [None]),
                                    hs.sampled_from(["assign", "migrating", "importing", "stable"])),
                          min_size=1, max_size=8),
       requests())
def test_c03_memo_follows_state_changes(st, changes, req):
    """After every change made through the state's API the memoised router
    still agrees with a direct decision (the version bump invalidates it)."""
    router = Router(st)
    name, argv, queued = req
    c = cmd(name)
    kw = dict(asking=False, readonly=False, queued=queued, db=Db(0), now_ms=0)
    for slot, nid, what in changes:
        router.decide(OPTS, c, argv, **kw)  # fill the memo
        n = st.nodes.get(nid) if nid else None
        if what == "assign":
            if n is None:
                st.unassign_slot(slot)
            else:
                st.assign_slot(slot, n)
        elif what == "migrating" and n is not None:
            st.migrating_to[slot] = n
            st.bump()
        elif what == "importing" and n is not None:
            st.importing_from[slot] = n
            st.bump()
        else:
            st.migrating_to.pop(slot, None)
            st.importing_from.pop(slot, None)
            st.bump()
        assert router.decide(OPTS, c, argv, **kw) == decide(st, OPTS, c, argv, **kw)


def test_c03_all_outcomes_reachable():
    """Every outcome kind is produced by some constructed state (guards the
    tests above against vacuity)."""
    st = make_state()
    seen = {route(st, "get", key_for(SLOT_A)).kind, route(st, "get", key_for(SLOT_B)).kind,
            route(st, "get", key_for(SLOT_FREE)).kind,
            route(st, "mget", key_for(SLOT_A), key_for(SLOT_B)).kind}
    st.migrating_to[SLOT_A] = st.nodes[ID_B]
    k1, k2 = b"{%s}1" % key_for(SLOT_A), b"{%s}2" % key_for(SLOT_A)
    seen.add(route(st, "mget", k1, k2, db=_db_with(k1)).kind)
    seen.add(route(st, "get", k1, db=_db_with()).kind)
    st.state_ok = False
    seen.add(route(st, "get", k1).kind)
    seen.add(route(st, "set", k1, "v", opts=RoutingOptions(allow_reads_when_down=True)).kind)
    assert seen == {LOCAL, MOVED, ASK, TRYAGAIN, CROSSSLOT, DOWN_STATE, DOWN_RO_STATE,
                    DOWN_UNBOUND}
    assert routing.ERR_CROSSSLOT.startswith("CROSSSLOT ")


# --- I01: the node's routing gate (ClusterCore.route, with its memoised fast
# path for keys in clean own slots) says what decide says -------------------

_GATE_CMDS = [
    ("get", 1), ("set", 2), ("incr", 1), ("mset", -2), ("mget", -1), ("del", -1),
    ("exists", -1), ("rename", 2), ("ping", 0), ("dbsize", 0), ("eval", -3),
    ("zunionstore", -4), ("spublish", 2), ("sunionstore", -2), ("xread", -5),
]


@given(
    mig=hs.sets(hs.sampled_from([SLOT_A, SLOT_A + 1, SLOT_B]), max_size=2),
    imp=hs.sets(hs.sampled_from([SLOT_A + 2, SLOT_B + 1]), max_size=2),
    ok=hs.booleans(),
    asking=hs.booleans(),
    calls=hs.lists(hs.tuples(hs.integers(0, len(_GATE_CMDS) - 1),
                             hs.lists(hs.sampled_from(
                                 [SLOT_A, SLOT_A + 1, SLOT_A + 2, SLOT_B, SLOT_B + 1, SLOT_C,
                                  SLOT_FREE, -1]), min_size=1, max_size=4)),
                   min_size=1, max_size=12),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_i01_route_gate_agrees_with_decide(mig, imp, ok, asking, calls):
    import support
    from frtrio.cluster.core import ClusterCore
    from frtrio.core.client import F

    st = make_state()
    srv = support.engine({"cluster-enabled": "yes"}, now_ms=1000)
    core = ClusterCore(srv, st)
    srv.cluster = core
    b = st.nodes[ID_B]
    for s in mig:
        st.migrating_to[s] = b
    for s in imp:
        st.importing_from[s] = b
    st.state_ok = ok
    st.bump()
    c = srv.new_client()
    if asking:
        c.flags |= F.ASKING
    for i, (ci, slots) in enumerate(calls):
        name, nargs = _GATE_CMDS[ci]
        keys = [b"{%s}x" % key_for(s) if s >= 0 else b"{%s}y" % key_for(SLOT_A) for s in slots]
        if name in ("get", "incr"):
            args = [keys[0]]
        elif name == "set":
            args = [keys[0], b"v"]
        elif name == "rename":
            args = [keys[0], keys[-1]]
        elif name == "mset":
            args = [x for k in keys for x in (k, b"v")]
        elif name in ("ping", "dbsize"):
            args = []
        elif name == "eval":
            args = [b"return 1", b"%d" % len(keys)] + keys
        elif name == "zunionstore":
            args = [keys[0], b"%d" % len(keys)] + keys
        elif name == "spublish":
            args = [keys[0], b"msg"]
        elif name == "xread":
            args = [b"STREAMS"] + keys + [b"0"] * len(keys)
        else:
            args = keys
        argv = [name.encode()] + args
        command = srv.commands[name.encode()]
        want = decide(st, OPTS, command, argv, asking=asking, readonly=False,
                      db=srv.dbs[0], now_ms=1000)
        got = core.route(c, command, argv)
        assert got == (None if want.kind == LOCAL else text(want)), (name, slots)
        if i == len(calls) // 2:
            # a state change midway: the memo must be dropped
            if st.migrating_to.pop(SLOT_A, None) is None:
                st.migrating_to[SLOT_A] = b
            st.bump()
