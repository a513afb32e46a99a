"""Client libraries built on scripting, against a real frtrio process:
redis-py's ``Lock`` (its release / extend / reacquire are Lua scripts run by
EVALSHA) and redis-py's ``Script`` objects (EVALSHA first, SCRIPT LOAD and
again on NOSCRIPT). Every test runs against frtrio and against
redis-server 7.0.15 with the same assertions, and where the server's view
matters (INFO commandstats / errorstats) the two are compared.

No contract row of spec/contracts.md is about scripting clients, so the
names are descriptive."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError


@pytest.fixture(params=["frtrio", "redis"])
def server(request):
    proc = request.getfixturevalue(request.param + "_proc")
    r = proc.client()
    r.flushall()
    r.script_flush()
    r.config_resetstat()
    yield proc
    r.close()


def _stats(r) -> dict:
    """calls / failed_calls / rejected_calls of EVAL, EVALSHA, SCRIPT and the
    error counters (no timings: those differ)."""
    out = {}
    for name, v in r.info("commandstats").items():
        if name.startswith(("cmdstat_eval", "cmdstat_script")):
            out[name] = (v["calls"], v["failed_calls"], v["rejected_calls"])
    for name, v in r.info("errorstats").items():
        out[name] = v["count"]
    return out


# --- Lock ---------------------------------------------------------------------


def test_lock_acquire_release_and_ownership(server):
    r = server.client()
    lock = r.lock("res", timeout=10)
    assert lock.acquire(blocking=False)
    assert lock.locked() and lock.owned()
    assert r.get("res") == lock.local.token
    other = r.lock("res", timeout=10)
    assert not other.acquire(blocking=False)
    assert not other.owned()
    assert 0 < r.pttl("res") <= 10000
    lock.release()
    assert not lock.locked() and not r.exists("res")
    with pytest.raises(LockError):
        lock.release()  # released already: no token
    assert other.acquire(blocking=False)
    other.release()


def test_lock_release_of_a_lock_someone_else_holds(server):
    """The release script compares the token: a lock that expired and was
    taken by another holder is not deleted."""
    r = server.client()
    lock = r.lock("res", timeout=0.2)
    assert lock.acquire(blocking=False)
    time.sleep(0.3)
    assert not r.exists("res")
    thief = r.lock("res", timeout=10)
    assert thief.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert r.get("res") == thief.local.token
    r.set("res", "not-a-token")
    with pytest.raises(LockNotOwnedError):
        thief.release()
    assert r.get("res") == b"not-a-token"


def test_lock_extend_and_reacquire(server):
    r = server.client()
    lock = r.lock("res", timeout=2)
    assert lock.acquire(blocking=False)
    assert lock.extend(8)  # adds to the TTL
    assert 8000 < r.pttl("res") <= 10000
    assert lock.extend(3, replace_ttl=True)
    assert 2000 < r.pttl("res") <= 3000
    r.pexpire("res", 50)
    assert lock.reacquire()  # back to the lock's own timeout
    assert 1000 < r.pttl("res") <= 2000
    r.set("res", "someone-else")
    with pytest.raises(LockNotOwnedError):
        lock.extend(5)
    with pytest.raises(LockNotOwnedError):
        lock.reacquire()
    r.delete("res")
    forever = r.lock("res2")  # no timeout: nothing to extend
    assert forever.acquire(blocking=False)
    assert r.ttl("res2") == -1
    with pytest.raises(LockError):
        forever.extend(5)
    with pytest.raises(LockError):
        forever.reacquire()
    forever.release()


def test_lock_blocking_acquire_times_out(server):
    r = server.client()
    holder = r.lock("res", timeout=10)
    assert holder.acquire(blocking=False)
    waiter = r.lock("res", timeout=10, sleep=0.02)
    t0 = time.monotonic()
    assert not waiter.acquire(blocking=True, blocking_timeout=0.3)
    waited = time.monotonic() - t0
    assert 0.25 <= waited < 3
    holder.release()


def test_lock_blocking_acquire_gets_it_when_released(server):
    r = server.client()
    holder = r.lock("res", timeout=10, thread_local=False)  # released by another thread
    assert holder.acquire(blocking=False)
    threading.Timer(0.2, holder.release).start()
    waiter = server.client().lock("res", timeout=10, sleep=0.02)
    t0 = time.monotonic()
    assert waiter.acquire(blocking=True, blocking_timeout=5)
    assert 0.15 <= time.monotonic() - t0 < 4
    assert waiter.owned()
    waiter.release()


def test_lock_blocking_acquire_gets_it_when_it_expires(server):
    r = server.client()
    holder = r.lock("res", timeout=0.3)
    assert holder.acquire(blocking=False)
    waiter = r.lock("res", timeout=5, sleep=0.02)
    assert waiter.acquire(blocking=True, blocking_timeout=5)
    assert waiter.owned() and not holder.owned()
    with pytest.raises(LockNotOwnedError):
        holder.release()
    waiter.release()


def test_lock_as_context_manager_with_many_threads(server):
    """Mutual exclusion: threads increment a plain key read-modify-write
    under the lock; no increment is lost."""
    def worker():
        c = server.client()
        for _ in range(10):
            with c.lock("mutex", timeout=5, sleep=0.005, blocking_timeout=20):
                v = int(c.get("counter") or 0)
                c.set("counter", v + 1)
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    r = server.client()
    assert r.get("counter") == b"40"
    assert not r.exists("mutex")


def test_lock_scripts_run_by_evalsha_same_stats_as_redis(frtrio_proc, redis_proc):
    """The same Lock workload leaves the same INFO commandstats / errorstats
    on both servers (redis-py loads its scripts with SCRIPT LOAD only
    after EVALSHA answered NOSCRIPT)."""
    seen = []
    for proc in (frtrio_proc, redis_proc):
        r = proc.client()
        r.flushall()
        r.script_flush()
        r.config_resetstat()
        lock = r.lock("res", timeout=5)
        assert lock.acquire(blocking=False)
        assert lock.extend(1)
        assert lock.reacquire()
        lock.release()
        r.set("res", "x")
        lock2 = r.lock("res", timeout=5)
        lock2.local.token = b"mine"
        with pytest.raises(LockNotOwnedError):
            lock2.release()
        seen.append(_stats(r))
    assert seen[0] == seen[1]
    assert seen[0]["cmdstat_evalsha"][0] >= 4


# --- Script objects ---------------------------------------------------------------

INCRBY_SCRIPT = """
local v = redis.call('incrby', KEYS[1], ARGV[1])
if v > tonumber(ARGV[2]) then return redis.error_reply('LIMIT over ' .. ARGV[2]) end
return v
"""


def test_register_script_and_noscript_fallback(server):
    r = server.client()
    s = r.register_script(INCRBY_SCRIPT)
    assert s.sha == r.script_load(INCRBY_SCRIPT)  # the sha is the body's SHA1
    r.script_flush()
    assert r.script_exists(s.sha) == [False]
    with pytest.raises(NoScriptError):
        r.evalsha(s.sha, 1, "n", 1, 100)
    assert s(keys=["n"], args=[5, 100]) == 5  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA
    assert r.script_exists(s.sha) == [True]
    assert s(keys=["n"], args=[10, 100]) == 15
    with pytest.raises(redis.ResponseError, match="^LIMIT over 20$"):
        s(keys=["n"], args=[10, 20])
    assert r.get("n") == b"25"  # the write before the error stays
    # another client object sees the same cache
    assert server.client().evalsha(s.sha, 1, "n", 1, 100) == 26


def test_script_in_pipeline_loads_missing_scripts(server):
    r = server.client()
    s = r.register_script("return redis.call('rpush', KEYS[1], ARGV[1])")
    for transaction in (True, False):
        r.script_flush()
        r.delete("l")
        with r.pipeline(transaction=transaction) as p:
            s(keys=["l"], args=["a"], client=p)
            s(keys=["l"], args=["b"], client=p)
            p.lrange("l", 0, -1)
            assert p.execute() == [1, 2, [b"a", b"b"]]
        assert r.script_exists(s.sha) == [True]


def test_script_errors_reach_the_client(server):
    r = server.client()
    bad = r.register_script("return redis.call('nosuchcommand')")
    with pytest.raises(redis.ResponseError, match="Unknown Redis command called from script"):
        bad()
    syntax = r.register_script("return +")
    with pytest.raises(redis.ResponseError, match="Error compiling script"):
        syntax()
    ro = r.register_script("#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 1)")
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only scripts"):
        ro(keys=["x"])
    assert not r.exists("x")


def test_script_workload_same_stats_as_redis(frtrio_proc, redis_proc):
    """Script objects with a flush in between and an erroring script: the
    calls, failures and error counters the servers count are the same."""
    seen = []
    for proc in (frtrio_proc, redis_proc):
        r = proc.client()
        r.flushall()
        r.script_flush()
        r.config_resetstat()
        s = r.register_script(INCRBY_SCRIPT)
        s(keys=["n"], args=[1, 10])
        r.script_flush()
        s(keys=["n"], args=[1, 10])
        with pytest.raises(redis.ResponseError):
            s(keys=["n"], args=[100, 10])
        with r.pipeline() as p:
            r.script_flush()
            s(keys=["n"], args=[1, 1000], client=p)
            p.execute()
        seen.append(_stats(r))
    assert seen[0] == seen[1]
    assert seen[0]["errorstat_NOSCRIPT"] == 2  # the first call and the one after the flush
    assert seen[0]["errorstat_LIMIT"] == 1
