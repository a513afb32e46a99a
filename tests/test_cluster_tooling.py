"""The cluster tooling flows users run, end to end with real processes:
``redis-cli --cluster reshard / add-node [--cluster-slave] / rebalance /
del-node / fix / import / check``,
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

import support
from support import HAVE_REDIS, REDIS_CLI, ServerProc, wait_for

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


def _migration_transcript(procs, si, di):
    """Redis-cli's per-slot steps, done by hand on one slot of procs[si]
    towards procs[di], with client commands in between; every reply with
    addresses, ids and the slot number masked (so pairs of different kinds
    give the same transcript when they behave alike)."""
    s, d = procs[si], procs[di]
    sid, did = node_id(s), node_id(d)
    slot = next(x for x in reversed(my_slots(s)) if count_in_slot(s, x) == 0)
    t = "{%s}" % tag_for(slot)
    sc, dc = s.conn(), d.conn()
    out = []

    def run(conn, who, *args):
        raw = conn.cmd(*args)
        raw = raw.replace(b"127.0.0.1:%d" % s.port, b"SRC").replace(b"127.0.0.1:%d" % d.port, b"DST")
        raw = raw.replace(sid.encode(), b"SID").replace(did.encode(), b"DID")
        raw = re.sub(rb"\b%d\b" % slot, b"SLOT", raw)
        out.append((who, " ".join(str(a) for a in args).replace(t, "{t}"), raw))
        return raw

    try:
        run(sc, "src", "SET", t + "a", "1")
        run(sc, "src", "SET", t + "b", "2")
        run(dc, "dst", "CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
        run(sc, "src", "CLUSTER", "SETSLOT", slot, "MIGRATING", did)
        run(sc, "src", "CLUSTER", "COUNTKEYSINSLOT", slot)
        run(sc, "src", "MIGRATE", "127.0.0.1", d.port, "", 0, 5000, "KEYS", t + "a")
        run(sc, "src", "GET", t + "b")            # still here: served
        run(sc, "src", "GET", t + "a")            # moved away: ASK
        run(sc, "src", "SET", t + "c", "x")       # a write of a missing key: ASK too
        run(sc, "src", "EXISTS", t + "a")
        run(sc, "src", "MGET", t + "a", t + "b")  # one here, one not: TRYAGAIN
        run(sc, "src", "MGET", t + "b", t + "b")
        run(sc, "src", "DEL", t + "a", t + "c")   # all missing: ASK
        run(sc, "src", "MULTI")
        run(sc, "src", "GET", t + "a")
        run(sc, "src", "EXEC")
        run(dc, "dst", "GET", t + "a")            # no ASKING: MOVED back to the owner
        run(dc, "dst", "ASKING")
        run(dc, "dst", "GET", t + "a")
        run(dc, "dst", "GET", t + "a")            # ASKING was one-shot
        run(dc, "dst", "ASKING")
        run(dc, "dst", "MGET", t + "a", t + "b")  # multi-key, one missing: TRYAGAIN
        run(dc, "dst", "ASKING")
        run(dc, "dst", "MGET", t + "a", t + "a")
        run(dc, "dst", "ASKING")
        run(dc, "dst", "SET", t + "c", "3")
        run(dc, "dst", "CLUSTER", "COUNTKEYSINSLOT", slot)
        run(sc, "src", "MIGRATE", "127.0.0.1", d.port, "", 0, 5000, "KEYS", t + "b")
        run(sc, "src", "MIGRATE", "127.0.0.1", d.port, "", 0, 5000, "KEYS", t + "b")  # NOKEY
        run(sc, "src", "CLUSTER", "GETKEYSINSLOT", slot, 10)
        run(sc, "src", "GET", t + "b")
        run(dc, "dst", "CLUSTER", "SETSLOT", slot, "NODE", did)
        run(sc, "src", "CLUSTER", "SETSLOT", slot, "NODE", did)
        for p in procs:
            if p is not s and p is not d:
                run(p.conn(), "other", "CLUSTER", "SETSLOT", slot, "NODE", did)
        run(sc, "src", "GET", t + "a")            # now MOVED to the new owner
        run(dc, "dst", "MGET", t + "a", t + "b", t + "c")
        run(dc, "dst", "DEL", t + "a", t + "b", t + "c")
    except BaseException:
        # leave no open slot behind for the other tests
        for conn in (sc, dc):
            conn.cmd("CLUSTER", "SETSLOT", slot, "STABLE")
        raise
    finally:
        sc.close()
        dc.close()
    return out


def test_c03_c04_redirects_during_a_migration_are_redis_s(mixed):
    """ASK, TRYAGAIN, MOVED and ASKING during a slot migration, frtrio
    pairs and mixed pairs against a redis-server pair, reply for reply."""
    procs = mixed
    settle(procs)
    want = _migration_transcript(procs, 2, 3)  # redis-server -> redis-server
    assert (b"-ASK SLOT DST\r\n") in [r for _, _, r in want]
    assert b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n" in [r for _, _, r in want]
    for si, di in [(0, 1), (1, 3), (2, 0)]:
        got = _migration_transcript(procs, si, di)
        for (who, cmd, w), (_, _, g) in zip(want, got):
            assert g == w, (si, di, who, cmd, g, w)
        assert len(got) == len(want)
    settle(procs)
    check_ok(procs[0])


# --- 4. redis-py through a reshard ---------------------------------------------------------


@pytest.mark.parametrize("src,dst", [(1, 0), (0, 3)], ids=["frtrio-to-frtrio", "frtrio-to-redis"])
def test_c03_redis_py_cluster_keeps_working_through_a_reshard(mixed, src, dst):
    """Writers and readers hammer the slots being moved while redis-cli
    reshards them; redis-py follows ASK / MOVED (and retries TRYAGAIN), no
    operation fails, no write is lost."""
    from redis.cluster import RedisCluster

    procs = mixed
    settle(procs)
    s, d = procs[src], procs[dst]
    moving = my_slots(s)[:30]
    prefix = "py%d%d" % (src, dst)
    keys = [k for slot in moving for k in keys_for(slot, 4, prefix)]
    errors: list = []
    counts = {k: 0 for k in keys}
    stop = threading.Event()
    ops = [0]

    def worker(part):
        rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
        try:
            while not stop.is_set():
                for k in part:
                    n = rc.incr(k)
                    counts[k] += 1
                    if n != counts[k]:
                        errors.append((k, n, counts[k]))
                    if rc.get(k) != b"%d" % counts[k]:
                        errors.append((k, "get"))
                    ops[0] += 2
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            errors.append(repr(e))
        finally:
            rc.close()

    threads = [threading.Thread(target=worker, args=(keys[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: ops[0] > 300, 10)
        r = cli("--cluster", "reshard", addr(s), "--cluster-from", node_id(s),
                "--cluster-to", node_id(d), "--cluster-slots", len(moving), "--cluster-yes")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        done = ops[0]
        assert wait_for(lambda: ops[0] > done + 300, 10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    settle(procs)
    rc = RedisCluster(host="127.0.0.1", port=procs[2].port)
    try:
        for k in keys:
            assert rc.get(k) == b"%d" % counts[k]
    finally:
        rc.close()
    for slot in moving:
        assert count_in_slot(s, slot) == 0
        assert count_in_slot(d, slot) == 4
    check_ok(procs[0])


# --- 2. add-node / rebalance / del-node; 3. RESET HARD and re-MEET --------------------------


@pytest.fixture(scope="module")
def trio3():
    procs = start_nodes(["frtrio"] * 3)
    try:
        create(procs)
        yield procs
    finally:
        for p in procs:
            p.cleanup()


def knows(p, nid) -> bool:
    return nid in nodes_view(p)


@pytest.mark.slow  # (about 15 s: in CI's slow target)
def test_c14_add_node_rebalance_then_del_node_and_forget_blacklist(trio3):
    procs = list(trio3)
    settle(procs)
    from redis.cluster import RedisCluster

    rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
    try:
        for i in range(600):
            rc.set("an:%d" % i, i)
    finally:
        rc.close()
    total = total_keys(procs)
    new = start_nodes(["frtrio"])[0]
    try:
        r = cli("--cluster", "add-node", addr(new), addr(procs[0]))
        assert r.returncode == 0 and "[OK] New node added correctly." in r.stdout, r.stdout + r.stderr
        everyone = procs + [new]
        settle(everyone)
        new_id = node_id(new)
        assert all(nodes_view(p)[new_id][1] == "master" for p in everyone)
        # the empty master gets slots (a small weight keeps the move short)
        r = cli("--cluster", "rebalance", addr(procs[0]), "--cluster-use-empty-masters",
                "--cluster-weight", "%s=0.02" % new_id)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        got = my_slots(new)
        assert 90 <= len(got) <= 120, len(got)
        settle(everyone)
        check_ok(new)
        assert total_keys(everyone) == total
        assert int(cli("dbsize", port=new.port).stdout) > 0
        # move its slots away, then remove it
        r = cli("--cluster", "reshard", addr(procs[0]), "--cluster-from", new_id,
                "--cluster-to", node_id(procs[1]), "--cluster-slots", len(got), "--cluster-yes")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        assert my_slots(new) == [] and int(cli("dbsize", port=new.port).stdout) == 0
        settle(everyone)
        r = cli("--cluster", "del-node", addr(procs[1]), new_id)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Sending CLUSTER RESET SOFT to the deleted node." in r.stdout
        settle(procs)
        assert not any(knows(p, new_id) for p in procs)
        # the deleted node was reset: it knows only itself, same id
        assert list(nodes_view(new)) == [new_id]
        # One node meets it again (MEET ignores the FORGET blacklist); it
        # gossips about it and the node itself pings the others, but they
        # forgot it less than 60 s ago: they do not take it back.
        assert cli("cluster", "meet", "127.0.0.1", new.port, port=procs[1].port).stdout.strip() == "OK"
        assert wait_for(lambda: knows(procs[1], new_id) and len(nodes_view(new)) == 4, 10)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            assert not knows(procs[0], new_id) and not knows(procs[2], new_id)
            time.sleep(0.2)
        assert cli("cluster", "forget", new_id, port=procs[1].port).stdout.strip() == "OK"
        assert cli("cluster", "reset", "soft", port=new.port).stdout.strip() == "OK"
        settle(procs)
        assert not any(knows(p, new_id) for p in procs)
        assert total_keys(procs) == total
        check_ok(procs[2])
    finally:
        new.cleanup()


def test_c14_reset_hard_then_meet_again_rejoins_with_a_new_id(trio3):
    procs = list(trio3)
    settle(procs)
    new = start_nodes(["frtrio"])[0]
    try:
        r = cli("--cluster", "add-node", addr(new), addr(procs[0]))
        assert r.returncode == 0, r.stdout + r.stderr
        everyone = procs + [new]
        settle(everyone)
        old_id = node_id(new)
        assert cli("cluster", "reset", "hard", port=new.port).stdout.strip() == "OK"
        new_id = node_id(new)
        assert new_id != old_id
        assert list(nodes_view(new)) == [new_id]
        info = cli("cluster", "info", port=new.port).stdout
        assert "cluster_current_epoch:0" in info and "cluster_my_epoch:0" in info
        # the others reach its address, find another id there: the old
        # entry loses its address (noaddr) and is not contacted again
        assert wait_for(lambda: all("noaddr" in nodes_view(p).get(old_id, ("", ""))[1]
                                    for p in procs), 10), [nodes_view(p) for p in procs]
        assert cli("cluster", "meet", "127.0.0.1", new.port, port=procs[1].port).stdout.strip() == "OK"
        assert wait_for(lambda: all(knows(p, new_id) for p in procs)
                        and all(len(nodes_view(new)) >= 4 for p in procs), 10)
        for p in everyone:
            if knows(p, old_id):
                assert cli("cluster", "forget", old_id, port=p.port).stdout.strip() == "OK"
        settle(everyone)
        assert not any(knows(p, old_id) for p in everyone)
        assert all(nodes_view(p)[new_id][:2] == (addr(new), "master") for p in everyone)
        r = cli("--cluster", "check", addr(procs[0]))
        assert r.returncode == 0 and "[OK] All nodes agree about slots configuration." in r.stdout
        # and out again, with del-node
        r = cli("--cluster", "del-node", addr(procs[0]), new_id)
        assert r.returncode == 0, r.stdout + r.stderr
        settle(procs)
    finally:
        new.cleanup()


# --- 5. DEBUG test hooks ---------------------------------------------------------------


def _links(p, resp3=False) -> list[dict]:
    """CLUSTER LINKS as a list of dicts, with the raw RESP type of each value."""
    c = p.conn()
    try:
        if resp3:
            c.cmd("HELLO", "3")
        raw = c.cmd("CLUSTER", "LINKS")
    finally:
        c.close()
    return _parse_links(raw)


def _parse_links(raw: bytes) -> list[dict]:
    lines = raw.split(b"\r\n")
    assert lines[0][:1] == b"*"
    n = int(lines[0][1:])
    out = []
    i = 1
    for _ in range(n):
        head = lines[i]
        i += 1
        kind = head[:1]
        fields = int(head[1:]) * (2 if kind == b"%" else 1)
        d = {"_type": kind}
        keys = []
        for _k in range(fields // 2):
            vals = []
            for _v in range(2):
                t = lines[i][:1]
                if t == b"$":
                    vals.append((t, lines[i + 1]))
                    i += 2
                else:
                    vals.append((t, lines[i][1:]))
                    i += 1
            key = vals[0][1].decode()
            keys.append(key)
            d[key] = vals[1]
        d["_keys"] = keys
        out.append(d)
    return out


def _link(p, peer_id, direction):
    for ln in _links(p):
        if ln["node"][1].decode() == peer_id and ln["direction"][1] == direction.encode():
            return ln
    return None


def test_c12_debug_clusterlink_kill_frees_links_that_come_back(mixed):
    procs = mixed
    settle(procs)
    f0, r2 = procs[0], procs[2]
    peer = node_id(r2)
    for p, other in ((f0, r2), (r2, f0)):  # frtrio first, redis-server as the reference
        oid = node_id(other)
        to0 = _link(p, oid, "to")
        from0 = _link(p, oid, "from")
        assert to0 and from0
        c = p.conn()
        try:
            # in one transaction: the link is gone right after the kill
            c.cmd("MULTI")
            c.cmd("DEBUG", "CLUSTERLINK", "KILL", "to", oid)
            c.cmd("CLUSTER", "LINKS")
            raw = c.cmd("EXEC")
        finally:
            c.close()
        assert raw.startswith(b"*2\r\n+OK\r\n")
        after = _parse_links(raw[len(b"*2\r\n+OK\r\n"):])
        assert not any(ln["node"][1].decode() == oid and ln["direction"][1] == b"to" for ln in after)
        # the cron reconnects it: a new link (later create-time)
        assert wait_for(lambda: (_link(p, oid, "to") or {"create-time": (b":", b"0")})["create-time"][1]
                        > to0["create-time"][1], 5)
        assert cli("debug", "clusterlink", "kill", "from", oid, port=p.port).stdout.strip() == "OK"
        # the peer sees its outbound link closed and reconnects: a new inbound one
        assert wait_for(lambda: (_link(p, oid, "from") or {"create-time": (b":", b"0")})["create-time"][1]
                        > from0["create-time"][1], 5)
        assert cli("debug", "clusterlink", "kill", "all", oid, port=p.port).stdout.strip() == "OK"
        assert wait_for(lambda: _link(p, oid, "to") and _link(p, oid, "from"), 5)
    settle(procs)
    # errors, byte for byte with redis-server
    for args in (("DEBUG", "CLUSTERLINK", "KILL", "to", "nosuchnode"),
                 ("DEBUG", "CLUSTERLINK", "KILL", "to", "a" * 40),
                 ("DEBUG", "CLUSTERLINK", "KILL", "to"),
                 ("DEBUG", "CLUSTERLINK", "KILL", "to", peer, "x"),
                 ("DEBUG", "CLUSTERLINK", "kill2", "to", peer),
                 ("DEBUG", "DROP-CLUSTER-PACKET-FILTER"),
                 ("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "x"),
                 ("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "1.5"),
                 ("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "99999999999999999999"),
                 ("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1")):
        with f0.conn() as a, procs[3].conn() as b:
            assert a.cmd(*args) == b.cmd(*args), args


def test_c12_debug_hooks_outside_cluster_mode(diff):
    diff("DEBUG", "CLUSTERLINK", "KILL", "to", "a" * 40)
    diff("DEBUG", "CLUSTERLINK", "KILL", "all", "x")
    diff("DEBUG", "CLUSTERLINK", "KILL", "to")
    diff("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "1")
    diff("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1")
    diff("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "nan")


def _flags(p, nid) -> str:
    return nodes_view(p).get(nid, ("", ""))[1]


@pytest.mark.slow  # (11 s: the default run is at its 10-minute budget)
def test_c12_dropped_pongs_make_a_live_peer_pfail_after_the_node_timeout(mixed):
    """DEBUG DROP-CLUSTER-PACKET-FILTER 1 (PONG) on an frtrio node and on a
    redis-server node. Each stops getting answers to its pings; since each
    also stops pinging while a ping is pending, neither hears from the other
    and after the node timeout each marks the other PFAIL, both alive. A
    third node, which still pings them, is never marked: its PINGs count as
    proof of life (Redis's data_received) though its PONGs are dropped.
    Without the filter the PFAILs clear on the next PONG; a node with a
    ping pending only pings again on a fresh link, and it recycles its link
    only after half a node timeout without any data from the peer. Once one
    side has cleared, its regular PINGs can keep the other side from ever
    seeing that silence: in an all-redis-server cluster the same steps took
    0.06 to 22 s to clear (10 runs), so after 3 x node-timeout the test
    recycles the links itself (DEBUG CLUSTERLINK KILL, what the silence
    would have done) and then wants the PFAILs gone at once."""
    procs = mixed
    settle(procs)
    f0, f1, r2, r3 = procs
    ids = [node_id(p) for p in procs]
    t0 = time.monotonic()
    for p in (f0, r2):
        assert cli("debug", "drop-cluster-packet-filter", 1, port=p.port).stdout.strip() == "OK"
    try:
        both = wait_for(lambda: _flags(f0, ids[2]) == "master,fail?" and _flags(r2, ids[0]) == "master,fail?",
                        5 * NT / 1000, step=0.05)
        elapsed = time.monotonic() - t0
        assert both, ([nodes_view(p) for p in procs])
        assert elapsed >= NT / 1000 * 0.9, elapsed
        # nobody else is suspected, by anyone
        for p, i in ((f0, 1), (f0, 3), (r2, 1), (r2, 3)):
            assert "fail" not in _flags(p, ids[i])
        for p in (f1, r3):
            assert all("fail" not in v[1] for v in nodes_view(p).values())
        # a PFAIL seen by one master only never becomes FAIL
        assert "cluster_state:ok" in cli("cluster", "info", port=f1.port).stdout
    finally:
        for p in (f0, r2):
            cli("debug", "drop-cluster-packet-filter", -1, port=p.port)

    def cleared():
        return _flags(f0, ids[2]) == "master" and _flags(r2, ids[0]) == "master"

    if not wait_for(cleared, 3 * NT / 1000, step=0.05):
        for p, peer in ((f0, ids[2]), (r2, ids[0])):
            assert cli("debug", "clusterlink", "kill", "to", peer, port=p.port).stdout.strip() == "OK"
    assert wait_for(cleared, 5 * NT / 1000, step=0.05), \
        (f"frtrio n0 sees n2 {_flags(f0, ids[2])!r}, redis n2 sees n0 {_flags(r2, ids[0])!r}",
         cli("cluster", "links", port=f0.port).stdout, cli("cluster", "links", port=r2.port).stdout)
    settle(procs)


# --- 6. CLUSTER LINKS and cluster_connections beside redis-server ----------------------------


def test_c06_cluster_links_shape_matches_redis(mixed):
    procs = mixed
    settle(procs)
    ids = [node_id(p) for p in procs]

    def complete():  # one "to" and one "from" link per peer, everywhere
        for i, p in enumerate(procs):
            got = {(ln["direction"][1].decode(), ln["node"][1].decode()) for ln in _links(p, False)}
            if got != {(d, x) for j, x in enumerate(ids) if j != i for d in ("to", "from")}:
                return False
        return True

    assert wait_for(complete, 15, step=0.1)  # links freed by the previous test come back
    for resp3 in (False, True):
        shapes = {}
        for i, p in enumerate(procs):
            links = _links(p, resp3)
            peers = {x for j, x in enumerate(ids) if j != i}
            # one "to" and one "from" per healthy peer
            assert sorted((ln["direction"][1].decode(), ln["node"][1].decode()) for ln in links) == \
                sorted((d, x) for x in peers for d in ("to", "from")), p.kind
            shape = {(ln["_type"], tuple(ln["_keys"]),
                      tuple(ln[k][0] for k in ln["_keys"])) for ln in links}
            for ln in links:
                assert ln["events"][1] in (b"r", b"rw")
                assert abs(int(ln["create-time"][1]) / 1000 - time.time()) < 600
            shapes[p.kind] = shape
        assert shapes["frtrio"] == shapes["redis"], shapes
        assert len(shapes["redis"]) == 1
    conns = [re.search(r"cluster_connections:(\d+)", cli("info", "clients", port=p.port).stdout).group(1)
             for p in procs]
    assert conns == ["6"] * 4


# --- 7. PUBLISH / SPUBLISH across frtrio and redis-server nodes ------------------------------


def _quiet(conn, wait=0.3) -> bytes:
    """Whatever arrives within ``wait`` seconds (nothing, normally)."""
    conn.sock.settimeout(wait)
    try:
        return conn.buf + conn.sock.recv(65536)
    except (socket.timeout, TimeoutError):
        return conn.buf
    finally:
        conn.sock.settimeout(10)


def _msg(*parts) -> bytes:
    out = b"*%d\r\n" % len(parts)
    for x in parts:
        x = x.encode() if isinstance(x, str) else x
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out


def all_links_up(procs) -> bool:
    """Every node has an outbound bus link to every other one (a PUBLISH is
    broadcast on outbound links only, in Redis as here)."""
    for p in procs:
        out = cli("cluster", "links", port=p.port).stdout.split()
        if out.count("to") < len(procs) - 1:
            return False
    return True


def test_c09_publish_crosses_between_frtrio_and_redis_nodes(mixed):
    procs = mixed
    settle(procs)
    assert wait_for(lambda: all_links_up(procs), 10)
    f0, f1, r2, r3 = procs
    subs = {}
    try:
        for name, p, cmd in (("f1", f1, "SUBSCRIBE"), ("r3", r3, "SUBSCRIBE"),
                             ("r2p", r2, "PSUBSCRIBE"), ("f0p", f0, "PSUBSCRIBE")):
            c = p.conn()
            c.cmd(cmd, "news" if cmd == "SUBSCRIBE" else "n*s")
            subs[name] = c
        with f0.conn() as pub:
            # receivers counted here: the local pattern subscriber only
            assert pub.cmd("PUBLISH", "news", "from-frtrio") == b":1\r\n"
        with r2.conn() as pub:
            assert pub.cmd("PUBLISH", "news", "from-redis") == b":1\r\n"
        # (two publishers: the two messages may arrive in either order)
        texts = ("from-frtrio", "from-redis")
        for name in ("f1", "r3"):
            got = sorted(subs[name].read_reply() for _ in texts)
            assert got == sorted(_msg("message", "news", t) for t in texts), name
        for name in ("r2p", "f0p"):
            got = sorted(subs[name].read_reply() for _ in texts)
            assert got == sorted(_msg("pmessage", "n*s", "news", t) for t in texts), name
        # exactly once each: a node delivers what it gets from the bus and
        # never forwards it again
        for c in subs.values():
            assert _quiet(c) == b""
    finally:
        for c in subs.values():
            c.close()


def test_c09_spublish_reaches_the_shard_replicas_of_either_kind(mixed):
    """Replicas joined with add-node --cluster-slave: a redis-server replica
    of an frtrio master and an frtrio replica of a redis-server master.
    SPUBLISH on the master reaches SSUBSCRIBE clients on its replica (and
    only its shard's nodes get it)."""
    procs = mixed
    settle(procs)
    f0, f1, r2, r3 = procs
    rrep, frep = start_nodes(["redis", "frtrio"])
    subs = []
    try:
        for rep, master in ((rrep, f0), (frep, r2)):
            r = cli("--cluster", "add-node", addr(rep), addr(f1), "--cluster-slave",
                    "--cluster-master-id", node_id(master))
            assert r.returncode == 0, r.stdout + r.stderr
        everyone = procs + [rrep, frep]
        assert wait_for(lambda: all_agree(everyone), 20), [nodes_view(p) for p in everyone]
        assert nodes_view(f1)[node_id(rrep)][1:3] == ("slave", node_id(f0))
        assert nodes_view(r3)[node_id(frep)][1:3] == ("slave", node_id(r2))
        ch_f = "sh{%s}" % tag_for(next(s for s in my_slots(f0)))
        ch_r = "sh{%s}" % tag_for(next(s for s in my_slots(r2)))
        for rep, ch in ((rrep, ch_f), (frep, ch_r)):
            c = rep.conn()
            assert c.cmd("SSUBSCRIBE", ch) == b"*3\r\n$10\r\nssubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (
                len(ch), ch.encode())
            subs.append((c, ch))
        def shard_msgs(p):
            m = re.search(r"cluster_stats_messages_publishshard_received:(\d+)",
                          cli("cluster", "info", port=p.port).stdout)
            return int(m.group(1)) if m else 0

        before = [shard_msgs(p) for p in (f1, r3)]
        for (c, ch), master in zip(subs, (f0, r2)):
            with master.conn() as pub:
                assert pub.cmd("SPUBLISH", ch, "to-" + master.kind) == b":0\r\n"
            assert c.read_reply() == _msg("smessage", ch, "to-" + master.kind)
            assert _quiet(c) == b""
        assert [shard_msgs(p) for p in (f1, r3)] == before  # other shards: nothing
        for c, _ in subs:
            c.close()
        subs = []
        for rep in (rrep, frep):
            r = cli("--cluster", "del-node", addr(f1), node_id(rep))
            assert r.returncode == 0, r.stdout + r.stderr
        settle(procs)
    finally:
        for c, _ in subs:
            c.close()
        rrep.cleanup()
        frep.cleanup()


# --- long runs ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kinds,new_kind", [(("frtrio", "frtrio", "frtrio"), "frtrio"),
                                            (("frtrio", "redis", "frtrio"), "redis"),
                                            (("redis", "frtrio", "redis"), "frtrio")],
                         ids=["frtrio-only", "mixed-new-redis", "mixed-new-frtrio"])
def test_c14_full_rebalance_onto_an_empty_master_and_back(kinds, new_kind):
    """A quarter of the slots (with keys) moves to a new empty master, then
    everything moves off it again (weight 0) and it is deleted."""
    procs = start_nodes(list(kinds) + [new_kind])
    try:
        old, new = procs[:3], procs[3]
        create(old)
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=old[0].port)
        try:
            for i in range(3000):
                rc.set("rb:%d" % i, i)
        finally:
            rc.close()
        # redis-cli add-node copies functions when the node it is given
        # answers FUNCTION DUMP (a redis-server does) with FUNCTION LIST /
        # RESTORE on the new node, which frtrio lacks: enter through an
        # frtrio node, whose FUNCTION DUMP error makes redis-cli skip that.
        entry = next(p for p in old if p.kind == "frtrio")
        r = cli("--cluster", "add-node", addr(new), addr(entry))
        assert r.returncode == 0, r.stdout + r.stderr
        settle(procs)
        r = cli("--cluster", "rebalance", addr(old[0]), "--cluster-use-empty-masters", timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert len(my_slots(new)) == 4096
        settle(procs)
        for p in procs:
            check_ok(p)
        assert total_keys(procs) == 3000
        r = cli("--cluster", "rebalance", addr(old[0]), "--cluster-weight",
                "%s=0" % node_id(new), timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert my_slots(new) == []
        settle(procs)
        new_id = node_id(new)
        r = cli("--cluster", "del-node", addr(old[0]), new_id)
        assert r.returncode == 0, r.stdout + r.stderr
        settle(old)
        assert not any(knows(p, new_id) for p in old)
        check_ok(old[0])
        assert total_keys(old) == 3000
    finally:
        for p in procs:
            p.cleanup()


def test_c03_cluster_fix_closes_an_interrupted_migration(mixed):
    """A migration left half done (slot open on both sides, keys split):
    redis-cli --cluster fix moves the keys to one owner and closes the slot."""
    procs = mixed
    settle(procs)
    for si, di in ((0, 2), (3, 1)):  # frtrio -> redis, redis -> frtrio
        s, d = procs[si], procs[di]
        slot = next(x for x in reversed(my_slots(s)) if count_in_slot(s, x) == 0)
        keys = keys_for(slot, 6, "fix%d" % si)
        with s.conn() as c:
            for k in keys:
                assert c.cmd("SET", k, k) == b"+OK\r\n"
        assert cli("cluster", "setslot", slot, "importing", node_id(s), port=d.port).stdout.strip() == "OK"
        assert cli("cluster", "setslot", slot, "migrating", node_id(d), port=s.port).stdout.strip() == "OK"
        r = cli("migrate", "127.0.0.1", d.port, "", 0, 5000, "KEYS", *keys[:3], port=s.port)
        assert r.stdout.strip() == "OK"
        r = cli("--cluster", "check", addr(s))
        assert r.returncode == 1 and "[WARNING] The following slots are open: %d." % slot in r.stdout
        r = cli("--cluster", "fix", addr(s), "--cluster-yes")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        settle(procs)
        check_ok(s)
        owner = s if slot in my_slots(s) else d
        other = d if owner is s else s
        assert count_in_slot(owner, slot) == 6 and count_in_slot(other, slot) == 0
        with owner.conn() as c:
            for k in keys:
                assert c.cmd("GET", k) == b"$%d\r\n%s\r\n" % (len(k), k.encode())
            assert c.cmd("DEL", *keys) == b":6\r\n"


def test_c03_cluster_import_from_a_standalone_frtrio(mixed):
    """redis-cli --cluster import: MIGRATE from a standalone frtrio server to
    the owner of each key, frtrio or redis-server (COPY keeps the source)."""
    procs = mixed
    settle(procs)
    src = ServerProc("frtrio").start()
    try:
        with src.conn() as c:
            for i in range(150):
                c.cmd("SET", "imp:%d" % i, "v%d" % i)
            c.cmd("RPUSH", "imp:list", "a", "b", "c")
            c.cmd("HSET", "imp:hash", "f", "v")
        before = total_keys(procs)
        r = cli("--cluster", "import", addr(procs[0]), "--cluster-from", addr(src), "--cluster-copy")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        assert total_keys(procs) == before + 152
        assert int(cli("dbsize", port=src.port).stdout) == 152
        per_node = [int(cli("dbsize", port=p.port).stdout) for p in procs]
        r = cli("--cluster", "import", addr(procs[0]), "--cluster-from", addr(src), "--cluster-replace")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        assert int(cli("dbsize", port=src.port).stdout) == 0
        assert [int(cli("dbsize", port=p.port).stdout) for p in procs] == per_node
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=procs[3].port)
        try:
            assert rc.lrange("imp:list", 0, -1) == [b"a", b"b", b"c"]
            assert rc.hgetall("imp:hash") == {b"f": b"v"}
            for i in range(150):
                assert rc.get("imp:%d" % i) == b"v%d" % i
                rc.delete("imp:%d" % i)
            rc.delete("imp:list", "imp:hash")
        finally:
            rc.close()
        check_ok(procs[1])
    finally:
        src.cleanup()


# --- the pure parts, without sockets -----------------------------------------------------------


def _server(cluster=False):
    return support.engine({"cluster-enabled": "yes"} if cluster else None, now_ms=0)


def test_migrate_in_flight_keys_hold_other_clients_commands():
    from frtrio.commands.dump import waits_for_migrate

    srv = _server()
    a, b = srv.new_client(), srv.new_client()
    for k in (b"k1", b"k2", b"other"):
        srv.execute(a, [b"SET", k, b"v"])
    a.take_output()
    srv.execute(a, [b"MIGRATE", b"h", b"1", b"", b"0", b"100", b"KEYS", b"k1", b"k2"])
    (eff,) = srv.effects; srv.effects.clear(); job = eff.job
    assert waits_for_migrate(srv, b, [b"GET", b"k1"])
    assert waits_for_migrate(srv, b, [b"MSET", b"other", b"1", b"k2", b"2"])
    assert waits_for_migrate(srv, b, [b"del", b"k2"])
    assert not waits_for_migrate(srv, b, [b"GET", b"other"])
    assert not waits_for_migrate(srv, b, [b"PING"])
    assert not waits_for_migrate(srv, a, [b"GET", b"k1"])  # its own keys
    srv.execute(b, [b"MULTI"])
    assert not waits_for_migrate(srv, b, [b"GET", b"k1"])  # only queued
    srv.execute(b, [b"GET", b"k1"])
    assert waits_for_migrate(srv, b, [b"EXEC"])  # EXEC runs it
    srv.execute(b, [b"DISCARD"])
    # another db: another key
    srv.execute(b, [b"SELECT", b"1"])
    assert not waits_for_migrate(srv, b, [b"GET", b"k1"])
    job.release(srv)
    srv.execute(b, [b"SELECT", b"0"])
    assert not waits_for_migrate(srv, b, [b"GET", b"k1"])
    # COPY leaves the key in place: nothing waits for it
    srv.execute(a, [b"MIGRATE", b"h", b"1", b"k1", b"0", b"100", b"COPY"])
    (eff,) = srv.effects; srv.effects.clear(); job = eff.job
    assert not waits_for_migrate(srv, b, [b"GET", b"k1"])
    job.release(srv)


def test_slot_ranges_match_a_slot_by_slot_scan():
    import random

    from frtrio.cluster.state import ClusterNode

    def naive(n):
        out, start = [], -1
        for s in range(16385):
            on = s < 16384 and n.owns(s)
            if on and start < 0:
                start = s
            elif not on and start >= 0:
                out.append((start, s - 1))
                start = -1
        return out

    rng = random.Random(7)
    n = ClusterNode("a" * 40)
    for _ in range(60):
        for _ in range(rng.choice((1, 5, 300))):
            a = rng.randrange(16384)
            b = min(16383, a + rng.choice((0, 1, 7, 8, 9, 100, 5000)))
            for s in range(a, b + 1):
                if rng.random() < 0.5:
                    n._set_bit(s)
                else:
                    n._clear_bit(s)
        assert n.slot_ranges() == naive(n)
        assert n.slot_ranges() == naive(n)  # memoised


def test_c10_packets_on_a_link_of_a_deleted_node_are_not_processed():
    """After FORGET / RESET a node's links go with it (freeClusterNode): a
    packet still read from such a link must not act for that node (it used
    to re-bind the node's slots to the deleted node object)."""
    from frtrio.cluster import bus_codec as bc
    from frtrio.cluster.bus_types import PING
    from frtrio.cluster.core import ClusterCore
    from frtrio.cluster.gossip import BusCore
    from frtrio.cluster.state import ClusterNode, ClusterState

    srv = _server(cluster=True)
    me = ClusterNode("b" * 40, ("myself", "master"))
    st = ClusterState(me)
    core = ClusterCore(srv, st)
    srv.cluster = core
    bus = BusCore(core)
    other = ClusterNode("a" * 40, ("master",))
    other.config_epoch = 1
    st.add_node(other)

    class Link:
        node = other
        inbound = True
        ctime = 0
        local_ip = peer_ip = "127.0.0.1"
        closed = False

    link = Link()
    st.delete_node(other)
    m = bc.Message(PING)
    m.sender = other.id
    m.config_epoch = 1
    m.myslots = bytes([0xFF] * 10) + bytes(2038)
    eff = bus.handle(link, m, 1000)
    from frtrio.core.effects import FreeLink

    assert eff == [FreeLink(link)]
    assert all(s is None for s in st.slots[:80])
    assert list(st.nodes) == [me.id]


def test_info_cluster_connections_is_two_per_known_node():
    from frtrio.cluster.core import ClusterCore
    from frtrio.cluster.state import ClusterNode, ClusterState
    from frtrio.commands.info import info_text

    srv = _server(cluster=True)
    st = ClusterState(ClusterNode("b" * 40, ("myself", "master")))
    srv.cluster = ClusterCore(srv, st)
    assert "cluster_connections:0\r\n" in info_text(srv, ["clients"])
    for c in "acd":
        st.add_node(ClusterNode(c * 40, ("master",)))
    st.add_node(ClusterNode("e" * 40, ("handshake",)))
    assert "cluster_connections:8\r\n" in info_text(srv, ["clients"])  # no links needed
