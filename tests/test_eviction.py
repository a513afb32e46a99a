"""maxmemory eviction and per-key LRU/LFU (frtrio/core/evict.py).

Three layers: the pure core (LFU math, LRU clock, the eviction pool), the
in-process engine (which keys each policy evicts, propagation, counters,
access-time updates on a virtual clock), and real servers side by side
(error texts, LFU counters after N accesses with lfu-log-factor 0, the
order of 'evicted' notifications under volatile-ttl, redis-py filling
memory under each policy).
"""

from __future__ import annotations

import time

import pytest

from frtrio.core import evict
from support import engine as make_server
from support import run as ex

# --- the core -------------------------------------------------------------------


def test_lfu_log_incr_with_log_factor_0_always_increments():
    for counter in (0, 5, 6, 100, 254):
        assert evict.lfu_log_incr(counter, 0, 0.999) == counter + 1
    assert evict.lfu_log_incr(255, 0, 0.0) == 255


def test_lfu_log_incr_probability_is_one_over_baseval_times_factor_plus_one():
    # counter 15, factor 10: p = 1 / (10 * 10 + 1)
    p = 1.0 / 101
    assert evict.lfu_log_incr(15, 10, p * 0.99) == 16
    assert evict.lfu_log_incr(15, 10, p * 1.01) == 15
    # below the initial value the increment is certain
    assert evict.lfu_log_incr(3, 10, 0.99) == 4


def test_lfu_decr_subtracts_one_per_decay_period_and_stops_at_zero():
    now = 1000
    v = ((now - 3) << 8) | 10
    assert evict.lfu_decr(v, now, 1) == 7
    assert evict.lfu_decr(v, now, 2) == 9  # 3 // 2 periods
    assert evict.lfu_decr(v, now, 0) == 10  # decay off
    assert evict.lfu_decr(((now - 50) << 8) | 10, now, 1) == 0


def test_lfu_minutes_wrap_at_16_bits():
    assert evict.lfu_elapsed(3, 65530) == 8  # Redis's 65535 - ldt + now
    assert evict.lfu_minutes(65536 * 60000 + 120000) == 2


def test_lru_idle_time_wraps_with_the_24_bit_clock():
    assert evict.idle_ms(100, 40) == 60_000
    assert evict.idle_ms(5, evict.LRU_CLOCK_MAX - 5) == 10_000
    assert evict.lru_clock((1 << 24) * 1000 + 7000) == 7


def test_pool_keeps_the_16_best_candidates_and_pops_the_best():
    pool = evict.EvictionPool()
    for i in range(40):
        pool.insert(i * 7 % 40, 0, b"k%d" % i)
    idles = [e[0] for e in pool.entries]
    assert len(idles) == evict.EVPOOL_SIZE
    assert idles == sorted(idles) and idles[0] == 40 - evict.EVPOOL_SIZE
    pool.insert(2, 0, b"worse")  # full: a worse candidate than all is not taken
    assert b"worse" not in [e[2] for e in pool.entries]
    assert pool.pop_best()[0] == 39
    pool.insert(1, 0, b"worst")  # with room, it goes first (evicted last)
    assert pool.entries[0][2] == b"worst" and len(pool.entries) == evict.EVPOOL_SIZE


def test_tenacity_budget_follows_redis_time_curve():
    assert evict.time_limit_keys(0) == 16
    assert evict.time_limit_keys(10) == 50
    assert evict.time_limit_keys(50) > evict.time_limit_keys(20)
    assert evict.time_limit_keys(100) is None


# --- the engine --------------------------------------------------------------------


def _srv(**conf):
    srv = make_server({k.replace("_", "-"): str(v) for k, v in conf.items()})
    return srv, srv.new_client()


def _limit_after(srv, extra: int) -> None:
    srv.config.values["maxmemory"] = str(srv.used_memory() + extra)
    srv._maxmemory_config_changed("maxmemory", "")


def test_used_memory_moves_when_keys_are_added_and_removed():
    srv, c = _srv()
    base = srv.used_memory()
    ex(srv, c, "SET", "k", "x" * 1000)
    grown = srv.used_memory()
    assert grown - base > 1000
    ex(srv, c, "APPEND", "k", "y" * 500)
    assert srv.used_memory() - grown == 500
    ex(srv, c, "DEL", "k")
    assert srv.used_memory() == base


def test_lookup_updates_idle_time_but_type_ttl_exists_object_do_not():
    srv, c = _srv(enable_debug_command="yes")
    ex(srv, c, "SET", "foo", "bar")
    srv.now_ms += 5000
    for cmd in (("TYPE", "foo"), ("TTL", "foo"), ("EXISTS", "foo"), ("SCAN", "0"),
                ("OBJECT", "ENCODING", "foo")):
        ex(srv, c, *cmd)
    assert ex(srv, c, "OBJECT", "IDLETIME", "foo") == b":5\r\n"
    ex(srv, c, "GET", "foo")
    assert ex(srv, c, "OBJECT", "IDLETIME", "foo") == b":0\r\n"
    srv.now_ms += 3000
    ex(srv, c, "TOUCH", "foo")
    assert ex(srv, c, "OBJECT", "IDLETIME", "foo") == b":0\r\n"
    srv.now_ms += 7000
    assert b" lru_seconds_idle:7" in ex(srv, c, "DEBUG", "OBJECT", "foo")


def test_lfu_counter_grows_by_one_per_access_with_log_factor_0_and_decays():
    srv, c = _srv(maxmemory_policy="allkeys-lfu", lfu_log_factor=0, lfu_decay_time=1)
    ex(srv, c, "SET", "k", "v")
    assert ex(srv, c, "OBJECT", "FREQ", "k") == b":5\r\n"
    for _ in range(10):
        ex(srv, c, "GET", "k")
    assert ex(srv, c, "OBJECT", "FREQ", "k") == b":15\r\n"
    srv.now_ms += 4 * 60_000  # four decay periods
    assert ex(srv, c, "OBJECT", "FREQ", "k") == b":11\r\n"


def test_allkeys_lru_evicts_the_least_recently_used_keys():
    srv, c = _srv(maxmemory_policy="allkeys-lru", maxmemory_samples=10)
    for i in range(200):
        ex(srv, c, "SET", "key:%d" % i, "x" * 100)
    srv.now_ms += 100_000
    hot = ["key:%d" % i for i in range(0, 200, 4)]  # a quarter, read recently
    for k in hot:
        ex(srv, c, "GET", k)
    srv.now_ms += 1000
    _limit_after(srv, -60 * evict.key_cost(b"key:100", b"x" * 100))  # 60 keys must go
    ex(srv, c, "SET", "new", "x")
    evicted = srv.stats["evicted_keys"]
    assert 60 <= evicted <= 62
    assert all(srv.dbs[0].data.get(k.encode()) is not None for k in hot)


def test_allkeys_lfu_evicts_the_least_frequently_used_keys():
    srv, c = _srv(maxmemory_policy="allkeys-lfu", maxmemory_samples=10, lfu_log_factor=0)
    for i in range(200):
        ex(srv, c, "SET", "key:%d" % i, "x" * 100)
    hot = ["key:%d" % i for i in range(0, 200, 4)]
    for _ in range(5):
        for k in hot:
            ex(srv, c, "GET", k)
    _limit_after(srv, -60 * evict.key_cost(b"key:100", b"x" * 100))
    ex(srv, c, "SET", "new", "x")
    assert 60 <= srv.stats["evicted_keys"] <= 62
    assert all(srv.dbs[0].data.get(k.encode()) is not None for k in hot)


def test_volatile_ttl_evicts_the_nearest_expiry_first_and_keeps_persistent_keys():
    srv, c = _srv(maxmemory_policy="volatile-ttl", maxmemory_samples=10)
    for i in range(100):
        ex(srv, c, "SET", "p:%d" % i, "x" * 100)
    for i in range(100):
        ex(srv, c, "SET", "v:%d" % i, "x" * 100, "EX", str(1000 + i * 10))
    _limit_after(srv, -30 * (evict.key_cost(b"v:10", b"x" * 100) + evict.EXPIRE_ENTRY))
    ex(srv, c, "SET", "new", "x")
    data = srv.dbs[0].data
    assert all(b"p:%d" % i in data for i in range(100))
    gone = [i for i in range(100) if b"v:%d" % i not in data]
    assert 30 <= len(gone) <= 31
    # approximated: the evicted keys are mostly the soonest to expire
    assert sum(gone) / len(gone) < 40


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_never_evict_keys_without_ttl(policy):
    srv, c = _srv(maxmemory_policy=policy)
    for i in range(50):
        ex(srv, c, "SET", "p:%d" % i, "x" * 100)
        ex(srv, c, "SETEX", "v:%d" % i, "1000", "x" * 100)
    _limit_after(srv, -200 * 150)  # more than all volatile keys
    reply = ex(srv, c, "SET", "new", "x")
    assert reply == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    data = srv.dbs[0].data
    assert sum(1 for k in data if k.startswith(b"p:")) == 50
    assert not srv.dbs[0].expires
    assert ex(srv, c, "GET", "p:1") == b"$100\r\n" + b"x" * 100 + b"\r\n"  # reads still run


def test_noeviction_refuses_writes_but_not_reads_over_maxmemory():
    srv, c = _srv()
    ex(srv, c, "SET", "a", "1")
    _limit_after(srv, -10)
    assert ex(srv, c, "SET", "b", "1").startswith(b"-OOM command not allowed")
    assert ex(srv, c, "GET", "a") == b"$1\r\n1\r\n"
    assert srv.stats["evicted_keys"] == 0


def test_evictions_are_propagated_as_del_or_unlink_and_notified():
    for lazy, verb in (("no", b"DEL"), ("yes", b"UNLINK")):
        srv, c = _srv(maxmemory_policy="allkeys-random", lazyfree_lazy_eviction=lazy,
                      notify_keyspace_events="Ee")
        sub = srv.new_client()
        ex(srv, sub, "SUBSCRIBE", "__keyevent@0__:evicted")
        ex(srv, c, "SET", "a", "1")
        srv.propagated.clear()
        _limit_after(srv, -1)
        ex(srv, c, "PING")
        assert srv.propagated == [(0, [verb, b"a"])]
        assert srv.stats["evicted_keys"] == 1
        assert b"__keyevent@0__:evicted\r\n$1\r\na\r\n" in sub.take_output()


def test_config_set_maxmemory_evicts_from_the_cron_not_inside_exec():
    srv, c = _srv(maxmemory_policy="allkeys-lru")
    ex(srv, c, "MULTI")
    ex(srv, c, "INCR", "x")
    ex(srv, c, "CONFIG", "SET", "maxmemory", "1")
    ex(srv, c, "INCR", "x")
    assert ex(srv, c, "EXEC") == b"*3\r\n:1\r\n+OK\r\n:2\r\n"
    assert b"x" in srv.dbs[0].data and srv.evict_running
    srv.evict_cron()
    assert b"x" not in srv.dbs[0].data


def test_replica_ignoring_maxmemory_does_not_evict():
    srv, c = _srv(maxmemory_policy="allkeys-lru")
    ex(srv, c, "SET", "a", "1")
    srv.repl.masterhost = "127.0.0.1"
    _limit_after(srv, -10)
    assert evict.perform_evictions(srv) == evict.EVICT_OK
    assert b"a" in srv.dbs[0].data
    srv.config.values["replica-ignore-maxmemory"] = "no"
    evict.perform_evictions(srv)
    assert b"a" not in srv.dbs[0].data


def test_eviction_is_replayable_from_the_seed():
    def run(seed):
        srv = make_server({"maxmemory-policy": "allkeys-random"}, seed=seed)
        c = srv.new_client()
        for i in range(300):
            ex(srv, c, "SET", "k%d" % i, "v")
        _limit_after(srv, -100 * 60)
        ex(srv, c, "PING")
        return sorted(srv.dbs[0].data)

    assert run(7) == run(7)
    assert run(7) != run(8)


# --- against redis-server -------------------------------------------------------------

_FREQ_ERR = (b"-ERR An LFU maxmemory policy is not selected, access frequency not tracked.")
_IDLE_ERR = (b"-ERR An LFU maxmemory policy is selected, idle time not tracked.")


def test_object_freq_and_idletime_refusals_match_redis(diff):
    diff("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    diff("SET", "k", "v")
    assert diff("OBJECT", "FREQ", "k").startswith(_FREQ_ERR)
    diff("OBJECT", "IDLETIME", "k")
    diff("CONFIG", "SET", "maxmemory-policy", "volatile-lfu")
    assert diff("OBJECT", "IDLETIME", "k").startswith(_IDLE_ERR)
    diff("OBJECT", "FREQ", "missing")
    diff("OBJECT", "IDLETIME", "missing")


def test_lfu_counter_after_n_accesses_with_log_factor_0_matches_redis(diff):
    diff("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    diff("CONFIG", "SET", "maxmemory", "1gb")  # (no shared integers under LFU then)
    diff("CONFIG", "SET", "lfu-log-factor", "0")
    diff("SET", "k", "v")
    assert diff("OBJECT", "FREQ", "k") == b":5\r\n"
    for n in range(1, 13):
        diff("GET", "k")
        diff("EXISTS", "k")  # NOTOUCH: no increment
        diff("TYPE", "k")
        assert diff("OBJECT", "FREQ", "k") == b":%d\r\n" % (5 + n)
    diff("INCR", "n")
    diff("INCR", "n")  # the lookup of the second INCR counts
    diff("OBJECT", "FREQ", "n")
    diff("TOUCH", "n")
    diff("OBJECT", "FREQ", "n")


def _read_messages(conn, n, timeout=5.0):
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        out.append(conn.read_reply())
    return out


def test_evicted_notifications_under_volatile_ttl_match_redis(frtrio_proc, redis_proc):
    seqs = []
    for proc in (frtrio_proc, redis_proc):
        c = proc.conn()
        sub = proc.conn()
        c.cmd("FLUSHALL")
        c.cmd("CONFIG", "SET", "notify-keyspace-events", "Ee")
        c.cmd("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
        c.cmd("CONFIG", "SET", "maxmemory-samples", "10")
        sub.cmd("SUBSCRIBE", "__keyevent@0__:evicted")
        c.cmd("SET", "persistent", "x")
        for i, ttl in enumerate((300, 100, 500, 200, 400)):
            c.cmd("SET", "v%d" % i, "x", "EX", str(ttl))
        try:
            c.cmd("CONFIG", "SET", "maxmemory", "1")
            seqs.append(_read_messages(sub, 5))
            # nothing volatile left: writes are refused, the persistent key stays
            time.sleep(0.2)
            assert c.cmd("SET", "other", "y").startswith(b"-OOM command not allowed")
            assert c.cmd("EXISTS", "persistent") == b":1\r\n"
        finally:
            c.cmd("CONFIG", "SET", "maxmemory", "0")
            c.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
            c.cmd("CONFIG", "SET", "maxmemory-samples", "5")
            c.cmd("CONFIG", "SET", "notify-keyspace-events", "")
            c.cmd("FLUSHALL")
            sub.close()
            c.close()
    assert seqs[0] == seqs[1]
    assert [m.split(b"\r\n")[-2] for m in seqs[0]] == [b"v1", b"v3", b"v0", b"v4", b"v2"]


@pytest.mark.parametrize("policy", sorted(evict.POLICIES))
def test_redis_py_fill_memory_under_each_policy(frtrio_proc, policy):
    import redis

    r = frtrio_proc.client()
    r.flushall()
    r.config_resetstat()
    r.config_set("maxmemory-policy", policy)
    r.config_set("maxmemory", 0)
    used = r.info("memory")["used_memory"]
    limit = used + 64 * 1024
    r.config_set("maxmemory", limit)
    refused = 0
    written_persistent = []
    try:
        for i in range(3000):
            try:
                if i % 2:
                    r.set("vol:%d" % i, "x" * 50, ex=10000)
                else:
                    r.set("per:%d" % i, "x" * 50)
                    written_persistent.append("per:%d" % i)
            except redis.exceptions.OutOfMemoryError as e:
                assert "command not allowed when used memory > 'maxmemory'" in str(e)
                refused += 1
        info = r.info()
        if policy == "noeviction":
            assert refused > 0 and info["evicted_keys"] == 0
        elif policy.startswith("allkeys"):
            assert refused == 0 and info["evicted_keys"] > 0
            assert info["used_memory"] <= limit + 4096
            assert r.dbsize() < 3000
        else:
            # volatile policies: only keys with a TTL go; once they are
            # gone writes are refused, and every persistent key written stays
            assert info["evicted_keys"] > 0 and refused > 0
            assert r.exists(*written_persistent) == len(written_persistent)
    finally:
        r.config_set("maxmemory", 0)
        r.config_set("maxmemory-policy", "noeviction")
        r.flushall()
        r.close()


def test_restore_idletime_and_freq_and_rename_keep_access_data_as_redis(diff):
    diff("SET", "src", "v")
    payload = diff("DUMP", "src")
    body = payload.split(b"\r\n", 1)[1][:-2]
    diff("RESTORE", "idle", "0", body, "IDLETIME", "1000")
    diff("OBJECT", "IDLETIME", "idle")
    diff("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    diff("CONFIG", "SET", "maxmemory", "1gb")
    diff("CONFIG", "SET", "lfu-log-factor", "0")
    diff("RESTORE", "freq", "0", body, "FREQ", "100")
    assert diff("OBJECT", "FREQ", "freq") == b":100\r\n"
    diff("SET", "src", "v2")  # (an overwrite keeps the counter: a fresh key instead)
    diff("DEL", "src")
    diff("SET", "src", "v")
    for _ in range(7):
        diff("GET", "src")
    diff("RENAME", "src", "dst")
    assert diff("OBJECT", "FREQ", "dst") == b":13\r\n"
    diff("SELECT", "0")
    diff("COPY", "dst", "copied")
    diff("OBJECT", "FREQ", "copied")


def test_rdb_keeps_idle_time_and_lfu_counter_across_debug_reload_as_redis(diff):
    diff("SET", "src", "v")
    body = diff("DUMP", "src").split(b"\r\n", 1)[1][:-2]
    diff("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    diff("RESTORE", "idle", "0", body, "IDLETIME", "500")
    diff("DEBUG", "RELOAD")
    assert diff("OBJECT", "IDLETIME", "idle") == b":500\r\n"
    diff("CONFIG", "SET", "maxmemory-policy", "volatile-lfu")
    diff("RESTORE", "freq", "0", body, "FREQ", "77")
    diff("DEBUG", "RELOAD")
    assert diff("OBJECT", "FREQ", "freq") == b":77\r\n"


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-random", "allkeys-lfu"])
def test_c15_eviction_spares_keys_of_slots_being_imported(policy):
    """Upstream ASM test 34: on the destination of an atomic slot migration
    the keys of the importing slots are never evicted (they are not yet the
    node's to give up); its own keys are, and with only importing keys left
    a write gets -OOM."""
    from frtrio.cluster.core import ClusterCore
    from frtrio.cluster.slots import key_slot
    from frtrio.cluster.state import ClusterNode, ClusterState

    srv, c = _srv(maxmemory_policy=policy, maxmemory_samples=10, cluster_enabled="yes")
    me = ClusterNode("a" * 40, ["myself", "master"])
    st = ClusterState(me)
    for s in range(16384):
        st.assign_slot(s, me)
    st.state_ok = True
    srv.cluster = ClusterCore(srv, st)
    importing = [b"imp:{x}:%d" % i for i in range(100)]
    slot = key_slot(importing[0])
    own = [k for k in (b"own:%d" % i for i in range(300)) if key_slot(k) != slot][:100]
    for k in importing + own:
        ex(srv, c, "SET", k, "x" * 100)
    srv.cluster.migrations.hidden_slots = frozenset({slot})
    _limit_after(srv, -50 * evict.key_cost(own[0], b"x" * 100))
    ex(srv, c, "SET", "new", "x")
    assert srv.stats["evicted_keys"] >= 50
    assert all(srv.dbs[0].data.get(k) is not None for k in importing)
    _limit_after(srv, -10**6)  # more than all own keys together
    reply = ex(srv, c, "SET", "new2", "x")
    assert reply.startswith(b"-OOM"), reply
    assert all(srv.dbs[0].data.get(k) is not None for k in importing)
