"""The cluster tooling flows users run, end to end with real processes:
``redis-cli --cluster reshard / add-node / rebalance / del-node / check``,
CLUSTER RESET HARD and re-MEET, redis-py ``RedisCluster`` through a reshard,
the DEBUG test hooks of Redis's own cluster tests (CLUSTERLINK KILL,
DROP-CLUSTER-PACKET-FILTER), CLUSTER LINKS and INFO ``cluster_connections``
beside redis-server, and PUBLISH / SPUBLISH across frtrio and redis-server
nodes of one cluster.

Most tests share one mixed cluster (two frtrio and two redis-server masters,
``mixed``); the membership tests build their own frtrio clusters.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time

import pytest

from support import HAVE_REDIS, REDIS_CLI, RawConn, ServerProc

from frtrio.cluster.slots import key_slot

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server and redis-cli")]

NT = 2000  # cluster-node-timeout of every node here (ms)


# --- helpers -------------------------------------------------------------------------


def start_nodes(kinds):
    """Start the nodes in parallel (each waits for the others' startup)."""
    procs = [ServerProc(k, ["--cluster-enabled", "yes", "--cluster-node-timeout", str(NT)])
             for k in kinds]
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
    except Exception:
        for p in procs:
            p.cleanup()
        raise
    return procs


def cli(*args, port=None, timeout=120):
    cmd = [REDIS_CLI] + (["-p", str(port)] if port else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def addr(p) -> str:
    return "127.0.0.1:%d" % p.port


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def node_id(p) -> str:
    return cli("cluster", "myid", port=p.port).stdout.strip()


def nodes_view(p) -> dict:
    """id -> (address, flags without myself, master, epoch, slots) as p sees it."""
    rows = {}
    for line in cli("cluster", "nodes", port=p.port).stdout.strip().splitlines():
        f = line.split()
        flags = ",".join(x for x in f[2].split(",") if x != "myself")
        rows[f[0]] = (f[1].split("@")[0], flags, f[3], f[6], " ".join(f[8:]))
    return rows


def all_agree(procs) -> bool:
    views = [nodes_view(p) for p in procs]
    return len(views[0]) == len(procs) and all(v == views[0] for v in views)


def cluster_ok(p) -> bool:
    return "cluster_state:ok" in cli("cluster", "info", port=p.port).stdout


def settle(procs, timeout=20):
    assert wait_for(lambda: all_agree(procs) and all(cluster_ok(p) for p in procs), timeout), \
        "\n".join(cli("cluster", "nodes", port=p.port).stdout for p in procs)


def create(procs):
    r = cli("--cluster", "create", *[addr(p) for p in procs], "--cluster-yes")
    assert r.returncode == 0, r.stdout + r.stderr
    settle(procs)


def check_ok(p):
    r = cli("--cluster", "check", addr(p))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[OK] All nodes agree about slots configuration." in r.stdout, r.stdout
    assert "[OK] All 16384 slots covered." in r.stdout, r.stdout
    assert "[WARNING]" not in r.stdout and "[ERR]" not in r.stdout, r.stdout
    return r


def my_slots(p) -> list[int]:
    """The slots p owns, in order (from its own CLUSTER NODES line)."""
    for line in cli("cluster", "nodes", port=p.port).stdout.splitlines():
        f = line.split()
        if "myself" in f[2]:
            out = []
            for r in f[8:]:
                if r.startswith("["):
                    continue
                a, _, b = r.partition("-")
                out.extend(range(int(a), int(b or a) + 1))
            return out
    return []


_TAGS: dict[int, str] = {}


def tag_for(slot: int) -> str:
    """A hash tag whose slot is ``slot``."""
    if not _TAGS:
        i = 0
        while len(_TAGS) < 16384:
            t = "t%d" % i
            _TAGS.setdefault(key_slot(t.encode()), t)
            i += 1
    return _TAGS[slot]


def keys_for(slot: int, n: int, prefix: str = "") -> list[str]:
    t = tag_for(slot)
    return ["%s{%s}:%d" % (prefix, t, i) for i in range(n)]


def fill_slots(procs_by_id, slots, per_slot=5, prefix="") -> dict[str, str]:
    """Write per_slot string keys into each slot (plus one list, hash and
    zset with a TTL), directly on the owner. Returns key -> expected value
    of the strings."""
    from redis.cluster import RedisCluster

    p0 = next(iter(procs_by_id.values()))
    rc = RedisCluster(host="127.0.0.1", port=p0.port)
    expect = {}
    try:
        for s in slots:
            for k in keys_for(s, per_slot, prefix):
                rc.set(k, "v-" + k)
                expect[k] = "v-" + k
            t = prefix + "{%s}" % tag_for(s)
            rc.rpush(t + "list", *range(20))
            rc.hset(t + "hash", mapping={"a": 1, "b": 2})
            rc.zadd(t + "zset", {"x": 1.5, "y": 2})
            rc.pexpire(t + "zset", 600000)
    finally:
        rc.close()
    return expect


def total_keys(procs) -> int:
    return sum(int(cli("dbsize", port=p.port).stdout) for p in procs)


def count_in_slot(p, slot) -> int:
    return int(cli("cluster", "countkeysinslot", slot, port=p.port).stdout)


def mask(raw: bytes, procs) -> bytes:
    """Replace each node's address in a reply by its index (n0, n1...)."""
    for i, p in enumerate(procs):
        raw = raw.replace(b"127.0.0.1:%d" % p.port, b"n%d" % i)
    return raw


@pytest.fixture(scope="module")
def mixed():
    """Masters: frtrio, frtrio, redis-server, redis-server (slots 0-4095,
    4096-8191, 8192-12287, 12288-16383 as created)."""
    procs = start_nodes(["frtrio", "frtrio", "redis", "redis"])
    try:
        create(procs)
        yield procs
    finally:
        for p in procs:
            p.cleanup()


# --- 1. resharding -------------------------------------------------------------------


@pytest.mark.parametrize("src,dst", [(0, 1), (1, 2), (3, 0)],
                         ids=["frtrio-to-frtrio", "frtrio-to-redis", "redis-to-frtrio"])
def test_c03_reshard_with_keys_moves_everything_and_nodes_agree(mixed, src, dst):
    procs = mixed
    settle(procs)
    s, d = procs[src], procs[dst]
    moving = my_slots(s)[:25]  # redis-cli moves the source's lowest slots first
    before = total_keys(procs)
    in_slot = {slot: count_in_slot(s, slot) for slot in moving}
    prefix = "rs%d%d" % (src, dst)
    expect = fill_slots({node_id(p): p for p in procs}, moving, prefix=prefix)
    added = total_keys(procs) - before
    assert added == len(moving) * 8
    r = cli("--cluster", "reshard", addr(s), "--cluster-from", node_id(s),
            "--cluster-to", node_id(d), "--cluster-slots", len(moving), "--cluster-yes")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    # every key of the moved slots is on the target, none left behind
    for slot in moving:
        assert count_in_slot(s, slot) == 0
        assert count_in_slot(d, slot) == in_slot[slot] + 8
    assert total_keys(procs) == before + added
    settle(procs)
    for slot in moving:
        assert slot in my_slots(d)
    for p in procs:
        check_ok(p)
    from redis.cluster import RedisCluster

    rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
    try:
        for k, v in expect.items():
            assert rc.get(k) == v.encode()
        t = prefix + "{%s}" % tag_for(moving[0])
        assert rc.lrange(t + "list", 0, -1) == [b"%d" % i for i in range(20)]
        assert rc.hgetall(t + "hash") == {b"a": b"1", b"b": b"2"}
        assert 0 < rc.pttl(t + "zset") <= 600000
    finally:
        rc.close()
