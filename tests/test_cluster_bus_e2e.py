"""The cluster bus end to end, with real processes: frtrio-only clusters made
by redis-cli --cluster create, failure detection, and mixed clusters of
frtrio and redis-server 7.0 nodes (C09, C10, C12, C14)."""

from __future__ import annotations

import subprocess
import time

import pytest

from support import HAVE_REDIS, REDIS_CLI, ServerProc, wait_for

pytestmark = pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server and redis-cli")

NODE_TIMEOUT = 2000


def start_nodes(kinds):
    procs = []
    try:
        for k in kinds:
            p = ServerProc(k, ["--cluster-enabled", "yes", "--cluster-node-timeout", str(NODE_TIMEOUT)])
            procs.append(p.start())
    except Exception:
        for p in procs:
            p.cleanup()
        raise
    return procs


def cli(*args, port=None, timeout=60):
    cmd = [REDIS_CLI] + (["-p", str(port)] if port else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def create_cluster(procs):
    addrs = ["127.0.0.1:%d" % p.port for p in procs]
    r = cli("--cluster", "create", *addrs, "--cluster-yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[OK] All 16384 slots covered." in r.stdout
    return r


def nodes_view(port):
    out = cli("cluster", "nodes", port=port).stdout
    rows = {}
    for line in out.strip().splitlines():
        f = line.split()
        flags = [x for x in f[2].split(",") if x != "myself"]
        rows[f[0]] = (f[1].split("@")[0], ",".join(flags), f[3], f[6], " ".join(f[8:]))
    return rows




def flag_of(port, node_port):
    for line in cli("cluster", "nodes", port=port).stdout.splitlines():
        f = line.split()
        if f[1].startswith("127.0.0.1:%d@" % node_port):
            return f[2]
    return None


def all_agree(procs):
    views = [nodes_view(p.port) for p in procs]
    return all(v == views[0] for v in views) and len(views[0]) == len(procs)


@pytest.fixture
def frtrio_cluster():
    procs = start_nodes(["frtrio"] * 3)
    yield procs
    for p in procs:
        p.cleanup()


def test_c12_three_frtrio_nodes_form_a_cluster_with_redis_cli(frtrio_cluster):
    procs = frtrio_cluster
    create_cluster(procs)
    assert wait_for(lambda: all_agree(procs), 10)
    r = cli("--cluster", "check", "127.0.0.1:%d" % procs[1].port)
    assert r.returncode == 0 and "[OK] All nodes agree about slots configuration." in r.stdout
    assert wait_for(lambda: all("cluster_state:ok" in cli("cluster", "info", port=p.port).stdout
                                for p in procs), 15)
    from redis.cluster import RedisCluster

    rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
    try:
        # keys in every slot range, through redirects
        for i in range(300):
            rc.set("key:%d" % i, "v%d" % i)
        for i in range(300):
            assert rc.get("key:%d" % i) == b"v%d" % i
        owners = {rc.keyslot("key:%d" % i) // 5462 for i in range(300)}
        assert owners == {0, 1, 2}
    finally:
        rc.close()


@pytest.mark.timing
def test_c12_killed_node_flagged_fail_within_twice_node_timeout_and_cleared_on_return(frtrio_cluster):
    procs = frtrio_cluster
    create_cluster(procs)
    assert wait_for(lambda: all_agree(procs), 10)
    assert wait_for(lambda: all("cluster_state:ok" in cli("cluster", "info", port=p.port).stdout
                                for p in procs), 15)
    victim = procs[2]
    victim.kill9()
    t0 = time.monotonic()
    got = wait_for(lambda: all(flag_of(p.port, victim.port) == "master,fail" for p in procs[:2]),
                   4 * NODE_TIMEOUT / 1000)
    elapsed = time.monotonic() - t0
    assert got, "node not flagged FAIL"
    assert elapsed < 2 * NODE_TIMEOUT / 1000 + 0.5, elapsed
    assert "cluster_state:fail" in cli("cluster", "info", port=procs[0].port).stdout
    # it comes back with the same nodes.conf: FAIL clears (master with slots:
    # after 2 * node_timeout since the FAIL)
    back = ServerProc("frtrio", victim.args, port=victim.port, workdir=victim.dir).start()
    try:
        assert wait_for(lambda: all(flag_of(p.port, victim.port) == "master" for p in procs[:2]),
                        6 * NODE_TIMEOUT / 1000)
        assert wait_for(lambda: "cluster_state:ok" in cli("cluster", "info", port=procs[0].port).stdout, 10)
    finally:
        back.stop()


@pytest.mark.slow  # (about 11 s: in CI's slow target)
def test_c09_c12_mixed_cluster_of_redis_and_frtrio_nodes():
    procs = start_nodes(["frtrio", "redis", "frtrio", "redis", "frtrio", "redis"])
    try:
        create_cluster(procs)
        assert wait_for(lambda: all_agree(procs), 15), [nodes_view(p.port) for p in procs]
        for p in procs:
            r = cli("--cluster", "check", "127.0.0.1:%d" % p.port)
            assert r.returncode == 0 and "[OK] All 16384 slots covered." in r.stdout, r.stdout
        epochs = [v[3] for v in nodes_view(procs[0].port).values()]
        assert len(set(epochs)) == 6  # no two masters share a configEpoch (I08)
        # PUBLISH on a frtrio node reaches a subscriber on a redis node? (needs
        # pub/sub; checked where available)
        # kill a redis node: frtrio nodes detect it
        procs[1].kill9()
        assert wait_for(lambda: all(flag_of(p.port, procs[1].port) == "master,fail"
                                    for p in (procs[0], procs[2], procs[4])), 3 * NODE_TIMEOUT / 1000)
        # kill a frtrio node: redis nodes detect it
        procs[2].kill9()
        assert wait_for(lambda: all(flag_of(p.port, procs[2].port) == "master,fail"
                                    for p in (procs[3], procs[5])), 3 * NODE_TIMEOUT / 1000)
    finally:
        for p in procs:
            p.cleanup()


@pytest.mark.parametrize("kinds", [("frtrio", "redis"), ("redis", "frtrio")])
def test_c09_epoch_collision_between_frtrio_and_redis_resolves_the_redis_way(kinds):
    procs = start_nodes(list(kinds))
    try:
        for p in procs:
            assert cli("cluster", "set-config-epoch", 5, port=p.port).stdout.strip() == "OK"
        ids = [cli("cluster", "myid", port=p.port).stdout.strip() for p in procs]
        cli("cluster", "meet", "127.0.0.1", procs[1].port, port=procs[0].port)

        def settled():
            views = [nodes_view(p.port) for p in procs]
            if any(len(v) != 2 or any(i not in v for i in ids) for v in views):
                return None
            e = {i: int(views[0][i][3]) for i in ids}
            if len(set(e.values())) == 2 and all(
                    {i: int(v[i][3]) for i in ids} == e for v in views):
                return e
            return None

        e = wait_for(settled, 15)
        assert e, [nodes_view(p.port) for p in procs]
        bigger, smaller = max(ids), min(ids)
        assert e[bigger] == 5  # the greater id keeps its epoch
        assert e[smaller] == 6  # the smaller one takes ++currentEpoch
    finally:
        for p in procs:
            p.cleanup()
