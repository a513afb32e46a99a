"""C15: atomic slot migration (Redis 8.4's CLUSTER MIGRATION) between frtrio
processes, driven as an operator would: IMPORT on the destination, STATUS on
both sides, CANCEL, with clients writing all along.

Each test asserts what a user sees: every key of the moved slots exactly
once, on the new owner, with every acknowledged write in it; the slot owned
by exactly one node in every node's view; the task records with Redis's
fields and states; the error texts of Redis 8.4.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
import redis

from conftest import requires_redis
from support import REDIS_CLI, ServerProc, wait_for

pytestmark = [requires_redis, pytest.mark.e2e]

ARGS = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]


def _create(procs):
    r = subprocess.run([REDIS_CLI, "--cluster", "create"]
                       + ["127.0.0.1:%d" % p.port for p in procs] + ["--cluster-yes"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    cs = [p.client() for p in procs]
    wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                         for c in cs), 20, what="cluster ok")
    # every node knows every other as a Redis 8 / frtrio peer (the secret)
    wait_for(lambda: len({c.execute_command("CLUSTER", "MYID") for c in cs}) == 3, 5)
    return cs


@pytest.fixture(scope="module")
def cluster():
    procs = [ServerProc("frtrio", ARGS).start() for _ in range(3)]
    try:
        cs = _create(procs)
        yield procs, cs
    finally:
        for p in procs:
            p.stop()


def owner_port(c, slot: int) -> int:
    for s, e, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
        if s <= slot <= e:
            return master[1]
    return -1


def node_of(procs, cs, slot):
    port = owner_port(cs[0], slot)
    i = [p.port for p in procs].index(port)
    return i


def status(c, tid):
    st = c.execute_command("CLUSTER", "MIGRATION", "STATUS", "ID", tid)
    return st[0] if st else None


def wait_state(c, tid, states=(b"completed", b"canceled"), timeout=20):
    wait_for(lambda: (status(c, tid) or {}).get(b"state") in states, timeout,
             what="task %s in %s (now %s)" % (tid, states, status(c, tid)))
    return status(c, tid)


def keys_in(rc, lo, hi, n, prefix="k"):
    out = []
    i = 0
    while len(out) < n:
        k = "%s%d" % (prefix, i)
        i += 1
        if lo <= rc.keyslot(k) <= hi:
            out.append(k)
    return out


def views_agree(cs, lo, hi, port):
    return all(owner_port(c, s) == port for c in cs for s in (lo, hi))


class Writer:
    """A client thread applying ``op(rc, key)`` round-robin over ``keys``
    until stopped; ``acked`` counts the acknowledged calls per key (an error
    or a redirect the client cannot follow ends the thread and fails the
    counts the test compares)."""

    def __init__(self, rc, keys, op):
        self.rc, self.keys, self.op = rc, keys, op
        self.acked: dict = {}
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run)

    def run(self):
        n = 0
        while not self.stop.is_set():
            k = self.keys[n % len(self.keys)]
            self.op(self.rc, k)
            self.acked[k] = self.acked.get(k, 0) + 1
            n += 1

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()


def test_c15_import_under_writes_moves_every_acked_write(cluster):
    procs, cs = cluster
    src = node_of(procs, cs, 0)
    dst = (src + 1) % 3
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    # a node that never migrated answers CLUSTER INFO and INFO memory as 7.0
    assert b"slot_migration" not in procs[dst].conn().cmd("CLUSTER", "INFO")
    assert b"slot_migration" not in procs[dst].conn().cmd("INFO", "memory")
    keys = keys_in(rc, 0, 100, 300)
    for k in keys:
        rc.set(k, "v")
    rc.expire(keys[0], 1000)
    rc.rpush("{%s}list" % keys[1], *range(600))  # a big value: RESTORE of a quicklist
    with Writer(rc, keys, lambda rc, k: rc.append(k, "x")) as w:
        time.sleep(0.3)
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", "0", "100")
        assert len(tid) == 40
        imp = wait_state(cs[dst], tid)
        time.sleep(0.3)
    acked = w.acked
    assert imp[b"state"] == b"completed", imp
    assert imp[b"operation"] == b"import" and imp[b"slots"] == b"0-100"
    assert imp[b"last_error"] == b"" and imp[b"write_pause_ms"] == 0
    mig = wait_state(cs[src], tid)
    assert mig[b"operation"] == b"migrate" and mig[b"state"] == b"completed"
    assert mig[b"source"] == imp[b"source"] == cs[src].execute_command("CLUSTER", "MYID")
    assert mig[b"dest"] == imp[b"dest"] == cs[dst].execute_command("CLUSTER", "MYID")
    assert 0 <= mig[b"write_pause_ms"] < 10000
    assert list(imp) == [b"id", b"slots", b"source", b"dest", b"operation", b"state",
                         b"last_error", b"retries", b"create_time", b"start_time", b"end_time",
                         b"write_pause_ms"]
    wait_for(lambda: views_agree(cs, 0, 100, procs[dst].port), 10, what="all views agree")
    assert sum(acked.values()) > 100
    for k in keys:
        assert rc.get(k) == b"v" + b"x" * acked.get(k, 0), k
    assert 990 <= rc.ttl(keys[0]) <= 1000
    assert rc.lrange("{%s}list" % keys[1], 0, -1) == [b"%d" % i for i in range(600)]
    # the source trimmed them: each key exists once in the cluster
    assert cs[src].execute_command("CLUSTER", "COUNTKEYSINSLOT", rc.keyslot(keys[0])) == 0
    # Redis 8.4's fields, once ASM was used
    info = dict(ln.split(":") for ln in
                cs[src].execute_command("CLUSTER", "INFO").decode().split("\r\n") if ln)
    assert info["cluster_slot_migration_active_tasks"] == "0"
    # no client tracks keys: the trim ran in the background (the lazy free),
    # not as an active trim
    assert info["cluster_slot_migration_active_trim_running"] == "0"
    assert info["cluster_slot_migration_stats_active_trim_started"] == "0"
    wait_for(lambda: cs[src].info("memory")["lazyfreed_objects"] >= len(keys), 10,
             what="the background trim freed the moved keys")
    mem = cs[dst].info("memory")
    assert mem["mem_cluster_slot_migration_input_buffer"] == 0  # (the peak: test 24 below)
    assert "mem_cluster_slot_migration_input_buffer_peak" in mem
    assert cs[src].info("memory")["mem_cluster_slot_migration_output_buffer"] == 0


def test_c15_import_validation_errors(cluster):
    procs, cs = cluster
    c = cs[0]
    other = 1
    mine = [s for s in range(0, 16384, 97) if node_of(procs, cs, s) == 0][0]
    cases = [
        (("IMPORT",), "wrong number of arguments"),
        (("IMPORT", "1"), "wrong number of arguments"),
        (("IMPORT", "1", "2", "3"), "wrong number of arguments"),
        (("IMPORT", "a", "2"), "Invalid or out of range slot"),
        (("IMPORT", "0", "16384"), "Invalid or out of range slot"),
        (("IMPORT", "10", "5"), "start slot number 10 is greater than end slot number 5"),
        (("IMPORT", "1", "5", "3", "8"), "Slot 3 specified multiple times"),
        (("IMPORT", str(mine), str(mine)), "this node is already the owner of the slot range"),
        (("BOGUS", "1"), "unknown argument"),
        (("CANCEL", "ID"), "wrong number of arguments"),
        (("CANCEL", "ALL", "x"), "wrong number of arguments"),
        (("CANCEL", "WHAT", "x"), "unknown argument"),
        (("STATUS", "ID"), "wrong number of arguments"),
        (("STATUS", "NOPE", "x"), "unknown argument"),
    ]
    for args, text in cases:
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command("CLUSTER", "MIGRATION", *args)
        assert text in str(e.value), (args, str(e.value))
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        c.execute_command("CLUSTER", "MIGRATION")
    # slots of two owners
    first = {}
    for sl in range(0, 16384, 13):
        first.setdefault(node_of(procs, cs, sl), sl)
    x, y = first[1], first[2]
    with pytest.raises(redis.ResponseError, match="slots belong to different source nodes"):
        c.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(x), str(x), str(y), str(y))
    assert c.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ID", "") == 0
    assert c.execute_command("CLUSTER", "MIGRATION", "STATUS", "ID", "") == []
    # legacy migration in progress anywhere on the node blocks IMPORT
    myid = c.execute_command("CLUSTER", "MYID")
    otherid = cs[other].execute_command("CLUSTER", "MYID")
    c.execute_command("CLUSTER", "SETSLOT", str(mine), "MIGRATING", otherid)
    try:
        with pytest.raises(redis.ResponseError, match="all slot states must be STABLE"):
            c.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(x), str(x))
    finally:
        c.execute_command("CLUSTER", "SETSLOT", str(mine), "NODE", myid)


def test_c15_syncslots_needs_an_internal_connection(cluster):
    procs, cs = cluster
    from support import RawConn

    with RawConn(procs[0].port) as rc:
        rc.send(b"*5\r\n$7\r\nCLUSTER\r\n$9\r\nSYNCSLOTS\r\n$4\r\nCONF\r\n$7\r\nNODE-ID\r\n$1\r\nx\r\n")
        out, closed = rc.read_until_close()
        assert out == b"-ERR CLUSTER SYNCSLOTS subcommands are only allowed for internal clients\r\n"
        assert closed
    c = cs[0]
    with pytest.raises(redis.AuthenticationError):
        c.execute_command("AUTH", "internal connection", "0" * 40)


def test_c15_trimslots_errors(cluster):
    procs, cs = cluster
    c = cs[0]
    mine = [s for s in range(0, 16384, 97) if node_of(procs, cs, s) == 0][0]
    for args, text in [(("TRIMSLOTS", "RANGES", "1"), "wrong number of arguments"),
                       (("TRIMSLOTS", "RANGES", "2", "100"), "wrong number of arguments"),
                       (("TRIMSLOTS", "RANGEZ", "1", "1", "2"), "missing ranges argument"),
                       (("TRIMSLOTS", "RANGES", "2", "1", "2"), "invalid number of ranges"),
                       (("TRIMSLOTS", "RANGES", "0", "1", "2"), "invalid number of ranges"),
                       (("TRIMSLOTS", "RANGES", "1", "5", "1"), "greater than end slot"),
                       (("TRIMSLOTS", "RANGES", "1", str(mine), str(mine)),
                        "the slot %d is served by this node" % mine)]:
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command(*args)
        assert text in str(e.value), (args, str(e.value))
    # COMMAND stays Redis 7.0's
    names = subprocess.run([REDIS_CLI, "-p", str(procs[0].port), "COMMAND", "LIST"],
                           capture_output=True, text=True, timeout=10).stdout.split()
    assert "trimslots" not in names and "get" in names


def test_c15_cancel_on_the_destination_trims_and_keeps_the_source(cluster):
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = 3000, 3100
    src = node_of(procs, cs, lo)
    dst = (src + 2) % 3
    keys = keys_in(rc, lo, hi, 2000, prefix="c")
    pipe = rc.pipeline()
    for k in keys:
        pipe.set(k, "x" * 100)
    pipe.execute()
    # a slow snapshot (1 ms a key, as the upstream tests slow it): the
    # cancel comes while it streams
    cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "1000")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: status(cs[dst], tid)[b"state"] == b"accumulate-buffer", 10)
        assert rc.get(keys[0]) == b"x" * 100  # still served by the source
        # CLIENT LIST flags of Redis 8.4: o = importing (destination), g = migrating (source)
        flags = lambda c: [x["flags"] for x in c.client_list()]  # noqa: E731
        assert any("o" in f for f in flags(cs[dst]))
        assert sum("g" in f for f in flags(cs[src])) == 2  # main and RDB channels
        assert cs[dst].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ID", tid) == 1
    finally:
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
    st = wait_state(cs[dst], tid, (b"canceled",))
    assert st[b"last_error"].startswith(b"Cancelled due to user request (state: "), st
    assert cs[dst].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ID", tid) == 0
    # the source: not owner-changed, its task fails when the channel drops
    wait_for(lambda: (status(cs[src], tid) or {b"state": b"failed"})[b"state"]
             in (b"failed", b"completed", b"canceled"), 10)
    cs[src].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    time.sleep(0.5)
    assert views_agree(cs, lo, hi, procs[src].port)
    for s in range(lo, hi + 1):
        assert cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
    assert all(rc.get(k) == b"x" * 100 for k in keys)
    # and a new import of the same slots completes
    tid2 = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
    assert wait_state(cs[dst], tid2)[b"state"] == b"completed"
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)
    assert all(rc.get(k) == b"x" * 100 for k in keys)
    archived = cs[dst].execute_command("CLUSTER", "MIGRATION", "STATUS", "ALL")
    assert [a[b"id"] for a in archived[:2]] == [tid2, tid]  # newest first


def _nodes_at_rest(c) -> list:
    """CLUSTER NODES without each line's ping-sent and pong-received times,
    which move with every ping (a ping in flight made a comparison of the
    whole reply fail now and then)."""
    lines = c.execute_command("CLUSTER", "NODES").decode().splitlines()
    return sorted(w[:4] + w[6:] for w in (line.split() for line in lines))


def test_c15_mixed_cluster_source_without_syncslots_is_refused():
    """A redis-server 7.0 source cannot serve SYNCSLOTS: IMPORT fails with
    a clear error and nothing changes."""
    procs = [ServerProc("frtrio", ARGS).start(), ServerProc("redis", ARGS).start(),
             ServerProc("frtrio", ARGS).start()]
    try:
        cs = _create(procs)
        slot = [s for s in range(0, 16384, 11) if owner_port(cs[0], s) == procs[1].port][0]
        before = _nodes_at_rest(cs[0])
        with pytest.raises(redis.ResponseError, match="does not support atomic slot migration"):
            cs[0].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(slot), str(slot))
        assert cs[0].execute_command("CLUSTER", "MIGRATION", "STATUS", "ALL") == []
        assert _nodes_at_rest(cs[0]) == before
        # between the two frtrio nodes it works in the same cluster
        slot2 = [s for s in range(0, 16384, 11) if owner_port(cs[0], s) == procs[2].port][0]
        wait_for(lambda: _try_import(cs[0], slot2), 10, what="import from the frtrio peer")
    finally:
        for p in procs:
            p.stop()


def _try_import(c, slot):
    try:
        tid = c.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(slot), str(slot))
    except redis.ResponseError:
        return False
    return wait_state(c, tid)[b"state"] == b"completed"


def test_c15_frtrio_cluster_migrate_shows_progress(cluster):
    import sys

    procs, cs = cluster
    lo, hi = 9000, 9050
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    keys = keys_in(rc, lo, hi, 200, prefix="m")
    for k in keys:
        rc.set(k, k)
    r = subprocess.run([sys.executable, "-c", "import sys; from frtrio.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "cluster", "migrate",
                        "--slots", "%d-%d" % (lo, hi), "--to", "127.0.0.1:%d" % procs[dst].port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "importing slots %d-%d" % (lo, hi) in r.stdout
    assert "completed" in r.stdout.splitlines()[-1]
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)
    assert all(rc.get(k) == k.encode() for k in keys)
    # a refused import: the error, exit status 1
    r = subprocess.run([sys.executable, "-c", "import sys; from frtrio.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "cluster", "migrate",
                        "--slots", "%d-%d" % (lo, hi), "--to", "127.0.0.1:%d" % procs[dst].port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "this node is already the owner of the slot range" in r.stdout


def _slots_of(procs, cs, i, n=3, start=0):
    out = []
    s = start
    while len(out) < n:
        if node_of(procs, cs, s) == i:
            out.append(s)
        s += 1
    return out


def test_c15_import_ranges_are_sorted_and_merged_and_overlaps_refused(cluster):
    """Upstream 'IMPORT with unsorted and adjacent ranges' and 'IMPORT not
    allowed if there is an overlapping import'."""
    procs, cs = cluster
    owner = node_of(procs, cs, 12000)
    dst = (owner + 1) % 3
    c = cs[dst]
    c.execute_command("CONFIG", "SET", "cluster-slot-migration-handoff-max-lag-bytes", "0")
    src = cs[owner]
    src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "1000000")  # 1 s a key
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    for k in keys_in(rc, 12000, 12060, 20, prefix="o"):
        rc.set(k, "1")
    try:
        tid = c.execute_command("CLUSTER", "MIGRATION", "IMPORT",
                                "12050", "12051", "12010", "12049", "12000", "12005")
        assert status(c, tid)[b"slots"] == b"12000-12005 12010-12051"
        wait_for(lambda: status(c, tid)[b"state"] == b"accumulate-buffer", 10)
        for a, b in (("12000", "12000"), ("11990", "12001"), ("12051", "12060"),
                     ("11000", "13000")):
            with pytest.raises(redis.ResponseError, match="overlapping import exists for slot "
                                                          "range: %s-%s" % (a, b)):
                c.execute_command("CLUSTER", "MIGRATION", "IMPORT", a, b)
        other = [s for s in range(12070, 16384) if node_of(procs, cs, s) == owner][0]
        with pytest.raises(redis.ResponseError, match="another ASM task is already in progress"):
            c.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(other), str(other))
        # CLUSTER SETSLOT on a slot of the task is refused on both sides
        for node in (c, src):
            with pytest.raises(redis.ResponseError, match="Slot 12001 is currently in an active "
                                                          "atomic slot migration"):
                node.execute_command("CLUSTER", "SETSLOT", "12001", "STABLE")
        # the importing keys are hidden on the destination meanwhile
        assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", "12000") == 0
        assert c.execute_command("CLUSTER", "GETKEYSINSLOT", "12000", "10") == []
        assert not [k for k in c.keys("o*")]
        assert c.dbsize() == 0 or c.dbsize() < int(
            c.info("keyspace").get("db0", {}).get("keys", 0))
        assert c.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL") == 1
    finally:
        src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
        c.execute_command("CONFIG", "SET", "cluster-slot-migration-handoff-max-lag-bytes", "1mb")
    wait_for(lambda: status(src, tid) is None or status(src, tid)[b"state"] != b"send-bulk-and-stream", 10)
    src.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", "12000") == 0
    assert c.info("keyspace").get("db0", {}).get("keys", 0) == c.dbsize()


@pytest.mark.parametrize("how", ["flushall", "client-pause", "delslotsrange"])
def test_c15_flush_pause_and_slot_changes_cancel(cluster, how):
    procs, cs = cluster
    slot = 14000
    owner = node_of(procs, cs, slot)
    dst = (owner + 2) % 3
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    for k in keys_in(rc, slot, slot, 30, prefix=how):
        rc.set(k, "1")
    src = cs[owner]
    src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "100000")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(slot), str(slot))
        wait_for(lambda: status(cs[dst], tid)[b"state"] == b"accumulate-buffer", 10)
        if how == "flushall":
            cs[dst].execute_command("FLUSHALL")
            st = wait_state(cs[dst], tid, (b"canceled",))
        elif how == "client-pause":
            cs[dst].execute_command("CLIENT", "PAUSE", "100", "WRITE")
            st = wait_state(cs[dst], tid, (b"canceled",))
            assert b"client pause" in st[b"last_error"]
        else:
            src.execute_command("CLUSTER", "DELSLOTSRANGE", str(slot), str(slot))
            st = wait_state(src, tid, (b"canceled",))
            assert b"slots configuration updated" in st[b"last_error"]
            src.execute_command("CLUSTER", "ADDSLOTSRANGE", str(slot), str(slot))
    finally:
        src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
    cs[dst].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    src.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    assert cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", str(slot)) == 0
    wait_for(lambda: views_agree(cs, slot, slot, procs[owner].port), 10)


@pytest.fixture(scope="module")
def ha_cluster():
    """Three masters with a replica each."""
    procs = [ServerProc("frtrio", ARGS).start() for _ in range(6)]
    try:
        r = subprocess.run([REDIS_CLI, "--cluster", "create"]
                           + ["127.0.0.1:%d" % p.port for p in procs]
                           + ["--cluster-replicas", "1", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        cs = [p.client() for p in procs]
        wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                             for c in cs), 30, what="cluster ok")
        yield procs, cs
    finally:
        for p in procs:
            p.stop()


def _replica_of(procs, cs, master_port):
    mid = [c for c, p in zip(cs, procs) if p.port == master_port][0].execute_command(
        "CLUSTER", "MYID").decode()
    for c, p in zip(cs, procs):
        if c.execute_command("ROLE")[0] == b"slave" and c.execute_command("CLUSTER", "NODES") \
                .decode().count("myself,slave %s" % mid):
            return c, p
    raise AssertionError("no replica of %d" % master_port)


def _failover(rep, master, procs, cs):
    """CLUSTER FAILOVER on the replica, retried (up to three attempts) when
    an election expires without a majority, as an operator would: about one
    run in ten of this test needed a second attempt (issue 12 follows it)."""
    from support import wait_epochs_agree, wait_roles_agree

    wait_epochs_agree(cs)
    wait_roles_agree(cs)
    for _attempt in range(3):
        rep.execute_command("CLUSTER", "FAILOVER")
        if wait_for(lambda: rep.execute_command("ROLE")[0] == b"master", 12):
            return
    raise AssertionError("replica not promoted after three CLUSTER FAILOVER attempts")


def _by_port(procs, cs, port):
    return [c for c, p in zip(cs, procs) if p.port == port][0]


def _synced(c, master):
    """The replica's link is up and its master lists it as its replica (a
    master ignores a manual failover request from a node it does not yet
    know as its replica, as Redis does)."""
    if c.info("replication").get("master_link_status") != "up":
        return False
    rid = c.execute_command("CLUSTER", "MYID").decode()
    mid = master.execute_command("CLUSTER", "MYID").decode()
    # (and the replica's bus link to its master is up: MFSTART travels on it)
    return any(line.startswith(rid) and (" slave %s " % mid) in line
               for line in master.execute_command("CLUSTER", "NODES").decode().splitlines()) \
        and any(line.startswith(mid) and line.endswith(" connected") or
                line.startswith(mid) and " connected " in line
                for line in c.execute_command("CLUSTER", "NODES").decode().splitlines())


def test_c15_failover_of_the_source_is_followed_and_of_the_destination_cleans_up(ha_cluster):
    procs, cs = ha_cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = 100, 120
    keys = keys_in(rc, lo, hi, 40, prefix="f")
    for k in keys:
        rc.set(k, k)
    src_port = owner_port(cs[0], lo)
    dst_port = [p for p in {owner_port(cs[0], s) for s in (0, 6000, 12000)} if p != src_port][0]
    src, dst = _by_port(procs, cs, src_port), _by_port(procs, cs, dst_port)
    src_rep, _ = _replica_of(procs, cs, src_port)
    wait_for(lambda: _synced(src_rep, src), 20)
    wait_for(lambda: src_rep.dbsize() == src.dbsize(), 20)
    # a slow snapshot on the source only: the failover lands inside the task
    src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "200000")
    tid = dst.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
    wait_for(lambda: status(dst, tid)[b"state"] == b"accumulate-buffer", 10)
    _failover(src_rep, src, procs, cs)
    st = status(src, tid)
    assert st[b"state"] == b"canceled" and b"failover" in st[b"last_error"], st
    # the destination retries against the promoted replica and completes
    st = wait_state(dst, tid, timeout=30)
    assert st[b"state"] == b"completed" and st[b"retries"] >= 1, st
    assert st[b"source"] == src_rep.execute_command("CLUSTER", "MYID")
    src.execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
    wait_for(lambda: views_agree(cs, lo, hi, dst_port), 20, what="all views agree")
    assert all(rc.get(k) == k.encode() for k in keys)

    # now the destination fails over in the middle of an import
    lo2, hi2 = 3000, 3010
    keys2 = keys_in(rc, lo2, hi2, 30, prefix="g")
    for k in keys2:
        rc.set(k, k)
    port2 = wait_for(lambda: owner_port(cs[0], lo2) if owner_port(cs[0], lo2) > 0 else None, 10)
    src2 = _by_port(procs, cs, port2)
    assert src2 is not dst
    dst_rep, _ = _replica_of(procs, cs, dst_port)
    wait_for(lambda: _synced(dst_rep, dst), 20)
    src2.execute_command("CONFIG", "SET", "rdb-key-save-delay", "200000")
    try:
        tid2 = dst.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo2), str(hi2))
        wait_for(lambda: status(dst, tid2)[b"state"] == b"accumulate-buffer", 10)
        # some keys arrived on the destination and, replicated, on its replica
        wait_for(lambda: dst_rep.info("keyspace").get("db0", {}).get("keys", 0) > len(keys), 10)
        # hidden on the replica too (its master's import is mirrored to it)
        assert dst_rep.execute_command("READONLY")
        assert all(dst_rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
                   for s in range(lo2, hi2 + 1))
        assert dst_rep.dbsize() < dst_rep.info("keyspace")["db0"]["keys"]
        _failover(dst_rep, dst, procs, cs)
        st = status(dst, tid2)
        assert st[b"state"] == b"canceled" and b"failover" in st[b"last_error"], st
    finally:
        src2.execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
    # the promoted replica dropped the partial import; the source kept its data
    wait_for(lambda: all(dst_rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
                         for s in range(lo2, hi2 + 1)), 10)
    assert dst_rep.info("keyspace")["db0"]["keys"] == dst_rep.dbsize()
    src2.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    assert all(rc.get(k) == k.encode() for k in keys2)
    # the new master can import them
    tid3 = dst_rep.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo2), str(hi2))
    assert wait_state(dst_rep, tid3, timeout=30)[b"state"] == b"completed"
    new_port = [p.port for c, p in zip(cs, procs) if c is dst_rep][0]
    wait_for(lambda: views_agree(cs, lo2, hi2, new_port), 20)
    assert all(rc.get(k) == k.encode() for k in keys2)


def test_c15_import_of_a_slot_without_owner_is_refused(cluster):
    """Upstream 'IMPORT not allowed for a slot without an owner'."""
    procs, cs = cluster
    slot = 16000
    owner = node_of(procs, cs, slot)
    # the owner gives the slot up (DELSLOTS: in its own view it has no owner)
    cs[owner].execute_command("CLUSTER", "DELSLOTS", str(slot))
    try:
        with pytest.raises(redis.ResponseError, match="slot has no owner: %d" % slot):
            cs[owner].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(slot), str(slot))
    finally:
        cs[owner].execute_command("CLUSTER", "ADDSLOTS", str(slot))
    wait_for(lambda: views_agree(cs, slot, slot, procs[owner].port), 10)


def test_c15_two_migrations_in_opposite_directions_under_writes(cluster):
    """Upstream 'Simple slot migration with write load': A -> B, then B -> A,
    with a client writing all along: every acknowledged write is there once."""
    procs, cs = cluster
    lo, hi = 7000, 7100
    a = node_of(procs, cs, lo)
    b = (a + 1) % 3
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    keys = keys_in(rc, lo, hi, 100, prefix="w")
    with Writer(rc, keys, lambda rc, k: rc.incr(k)) as w:
        time.sleep(0.2)
        for to in (b, a):
            tid = cs[to].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
            assert wait_state(cs[to], tid)[b"state"] == b"completed"
            wait_for(lambda: views_agree(cs, lo, hi, procs[to].port), 10)
            time.sleep(0.2)
    acked = w.acked
    assert sum(acked.values()) > 50
    for k in keys:
        assert int(rc.get(k) or 0) == acked.get(k, 0), k
    for s in range(lo, hi + 1):
        assert cs[b].execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0


def test_c15_shutdown_cancels_the_task_and_says_so():
    """Upstream 'Server shutdown can cancel slot migration task': the
    destination exits cleanly and logs the cancel."""
    procs = [ServerProc("frtrio", ARGS).start() for _ in range(3)]
    try:
        cs = _create(procs)
        rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
        for k in keys_in(rc, 500, 510, 20, prefix="s"):
            rc.set(k, "1")
        src = node_of(procs, cs, 500)
        dst = (src + 1) % 3
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "1000000")
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", "500", "510")
        wait_for(lambda: status(cs[dst], tid)[b"state"] == b"accumulate-buffer", 10)
        try:
            cs[dst].execute_command("SHUTDOWN", "NOSAVE")
        except redis.ConnectionError:
            pass
        assert procs[dst].proc.wait(15) == 0
        log = open(procs[dst].log_path).read()
        assert "Cancelled due to server shutdown" in log
    finally:
        for p in procs:
            p.stop()


def _slow_snapshot_under_writes(procs, cs, rc, lo, hi, prefix, delay_us=1000):
    """Keys in lo..hi on their owner and a slow snapshot there (``delay_us``
    a key): a writer appending to them makes the stream outgrow small
    buffers."""
    src = node_of(procs, cs, lo)
    keys = keys_in(rc, lo, hi, 1500, prefix=prefix)
    pipe = rc.pipeline()
    for k in keys:
        pipe.set(k, "v")
    pipe.execute()
    cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", str(delay_us))
    return src, keys


def test_c15_source_output_buffer_limit_fails_the_task_then_a_retry_completes(cluster):
    """Upstream ASM test 23: the destination stops reading (its sync buffer
    is full), the stream backs up on the source past the replica class's
    output buffer limit: the source drops the main channel and its task
    fails in a streaming state; the destination retries and, with the
    limits lifted, completes. Every acknowledged write is kept."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = 6000, 6050
    # (the loopback's socket buffers hold megabytes: the writes are big)
    src, keys = _slow_snapshot_under_writes(procs, cs, rc, lo, hi, "ob", delay_us=5000)
    dst = (src + 1) % 3
    cs[dst].execute_command("CONFIG", "SET", "replica-full-sync-buffer-limit", "16384")
    cs[src].execute_command("CONFIG", "SET", "client-output-buffer-limit",
                            "replica 1048576 0 0")
    try:
        with Writer(rc, keys, lambda rc, k: rc.append(k, "y" * 4000)) as w:
            tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
            wait_for(lambda: b"send" in (status(cs[src], tid) or {}).get(b"last_error", b""),
                     30, what="the source's task to fail on its output buffer limit")
            err = status(cs[src], tid)[b"last_error"]
            assert b"output buffer limit" in err and b"stream" in err, err
            with open(procs[src].log_path) as f:
                assert "for overcoming of output buffer limits" in f.read()
            cs[src].execute_command("CONFIG", "SET", "client-output-buffer-limit",
                                    "replica 0 0 0")
            cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
            st = wait_state(cs[dst], tid, timeout=40)
            time.sleep(0.2)
        assert st[b"state"] == b"completed" and st[b"retries"] >= 1, st
    finally:
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
        cs[src].execute_command("CONFIG", "SET", "client-output-buffer-limit",
                                "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 "
                                "8388608 60")
        cs[dst].execute_command("CONFIG", "SET", "replica-full-sync-buffer-limit", "0")
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)
    for k in keys:
        assert rc.get(k) == b"v" + b"y" * 4000 * w.acked.get(k, 0), k


def test_c15_destination_sync_buffer_limit_backs_up_without_failing(cluster):
    """Upstream ASM test 24: the destination's sync buffer reaches
    replica-full-sync-buffer-limit: it stops reading (and says so in its
    log), the task does not fail, INFO shows the buffer's peak, and the
    migration completes with every acknowledged write."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = 9000, 9050
    src, keys = _slow_snapshot_under_writes(procs, cs, rc, lo, hi, "sb")
    dst = (src + 1) % 3
    cs[dst].execute_command("CONFIG", "SET", "replica-full-sync-buffer-limit", "16384")
    try:
        with Writer(rc, keys, lambda rc, k: rc.append(k, "z" * 50)) as w:
            tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
            wait_for(lambda: "Slots sync buffer limit has been reached"
                     in open(procs[dst].log_path).read(), 30, what="the limit in the log")
            cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
            st = wait_state(cs[dst], tid, timeout=40)
            time.sleep(0.2)
        assert st[b"state"] == b"completed" and st[b"retries"] == 0, st
        assert cs[dst].info("memory")["mem_cluster_slot_migration_input_buffer_peak"] >= 16384
    finally:
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
        cs[dst].execute_command("CONFIG", "SET", "replica-full-sync-buffer-limit", "0")
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)
    for k in keys:
        assert rc.get(k) == b"v" + b"z" * 50 * w.acked.get(k, 0), k


def test_c15_trim_redirects_blocked_stream_readers_and_touches_watched_keys(cluster):
    """Upstream ASM tests 45 and 46 (the default background trim):
    after a migration, a client of the source blocked in XREADGROUP on a
    stream of a moved slot gets MOVED, one blocked on another slot keeps
    waiting; a transaction that WATCHed a key of a moved slot fails (EXEC
    answers nil), one that watched a key elsewhere runs."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = 11000, 11010
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    moved = keys_in(rc, lo, hi, 2, prefix="tm")
    other = next(k for k in keys_in(rc, 0, 16383, 400, prefix="to")
                 if node_of(procs, cs, rc.keyslot(k)) == src
                 and not lo <= rc.keyslot(k) <= hi)
    for k in (moved[0], other):
        rc.xadd(k, {"f": "v"})
        rc.xgroup_create(k, "g", id="$")
    rc.set(moved[1], "w")
    rc.set("{%s}w" % other, "w")
    port = procs[src].port
    blocked = {}

    def reader(key):
        r = redis.Redis(port=port)
        try:
            blocked[key] = r.xreadgroup("g", "c", {key: ">"}, block=0)
        except redis.ResponseError as e:
            # (redis-py turns the MOVED reply into a MovedError of "slot host:port")
            blocked[key] = "%s %s" % (type(e).__name__, e)

    threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in (moved[0], other)]
    for t in threads:
        t.start()
    w_moved, w_other = redis.Redis(port=port), redis.Redis(port=port)
    p_moved, p_other = w_moved.pipeline(), w_other.pipeline()
    p_moved.watch(moved[1])
    p_other.watch("{%s}w" % other)
    wait_for(lambda: cs[src].info("clients")["blocked_clients"] == 2, 10, what="two readers blocked")
    tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
    assert wait_state(cs[dst], tid)[b"state"] == b"completed"
    wait_for(lambda: moved[0] in blocked, 10, what="the reader of the moved slot released")
    assert blocked[moved[0]] == "MovedError %d 127.0.0.1:%d" % (rc.keyslot(moved[0]),
                                                                procs[dst].port), blocked
    assert other not in blocked  # still waiting
    p_moved.multi()
    p_moved.ping()
    with pytest.raises(redis.WatchError):
        p_moved.execute()
    p_other.multi()
    p_other.ping()
    assert p_other.execute() == [True]
    rc.xadd(other, {"f": "again"})  # releases the other reader
    for t in threads:
        t.join(10)
    assert other in blocked and blocked[other][0][0] == other.encode()


FAILPOINTS = [  # (which side, channel, state): upstream ASM tests 19-22
    ("dst", "import-main-channel", "connecting"),
    ("dst", "import-main-channel", "handshake-reply"),
    ("dst", "import-main-channel", "syncslots-reply"),
    ("dst", "import-main-channel", "accumulate-buffer"),
    ("dst", "import-main-channel", "streaming-buffer"),
    ("dst", "import-main-channel", "wait-stream-eof"),
    ("dst", "import-rdb-channel", "auth-reply"),
    ("dst", "import-rdb-channel", "rdbchannel-transfer"),
    ("src", "migrate-main-channel", "send-bulk-and-stream"),
    ("src", "migrate-main-channel", "send-stream"),
    ("src", "migrate-rdb-channel", "send-bulk-and-stream"),
]


@pytest.mark.parametrize("side,channel,state", FAILPOINTS)
def test_c15_failure_in_each_state_is_reported_and_cleaned_up(cluster, side, channel, state):
    """DEBUG ASM-FAILPOINT makes the task fail when a channel reaches a
    state: last_error names the channel and the state; the destination
    retries; after CANCEL on both sides no partial key is left, the source
    keeps every key and a new import completes."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo = hi = 15000 + FAILPOINTS.index((side, channel, state))
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    keys = keys_in(rc, lo, hi, 20, prefix="fp")
    for k in keys:
        rc.set(k, "v")
    node = cs[dst] if side == "dst" else cs[src]
    node.execute_command("DEBUG", "ASM-FAILPOINT", channel, state)
    try:
        with Writer(rc, keys, lambda rc, k: rc.append(k, "w")) as w:
            tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
            wait_for(lambda: b"fail point" in (status(node, tid) or {}).get(b"last_error", b""),
                     15, what="the fail point to strike")
            err = status(node, tid)[b"last_error"]
            assert (b"Main channel" if "main" in channel else b"RDB channel") in err, err
            assert state.encode() in err, err
            node.execute_command("DEBUG", "ASM-FAILPOINT", "", "")
            for c in (cs[dst], cs[src]):
                c.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
            time.sleep(0.3)
        assert views_agree(cs, lo, hi, procs[src].port)
        assert cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", lo) == 0
        for k in keys:
            assert rc.get(k) == b"v" + b"w" * w.acked.get(k, 0), k
    finally:
        node.execute_command("DEBUG", "ASM-FAILPOINT", "", "")
    tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
    assert wait_state(cs[dst], tid)[b"state"] == b"completed"
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)


def test_c15_source_not_ready_is_retried_until_it_is(cluster):
    """Upstream ASM test 32: a source that cannot start a migrate task now
    answers SYNCSLOTS SYNC with -NOTREADY; the destination logs it, retries,
    and completes once the source is ready."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo = hi = 15500
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    rc.set(keys_in(rc, lo, hi, 1, prefix="nr")[0], "v")
    cs[src].execute_command("DEBUG", "ASM-FAILPOINT", "migrate-main-channel", "none")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: "replied to SYNCSLOTS SYNC with -NOTREADY, will retry later"
                 in open(procs[dst].log_path).read(), 10, what="the NOTREADY log line")
        assert status(cs[dst], tid)[b"state"] in (b"send-syncslots", b"syncslots-reply")
    finally:
        cs[src].execute_command("DEBUG", "ASM-FAILPOINT", "", "")
    assert wait_state(cs[dst], tid)[b"state"] == b"completed"
    with pytest.raises(redis.ResponseError, match="Unknown channel"):
        cs[src].execute_command("DEBUG", "ASM-FAILPOINT", "nonsense", "x")


def test_c15_destination_restarted_from_its_rdb_mid_import_drops_the_partial_keys():
    """The unfinished import is saved in the RDB (Redis 8.4's
    ``cluster-asm-task`` AUX field), as it is in the AOF: a destination
    killed mid-import and restarted from its RDB deletes the partial keys
    of slots it does not own, and the source keeps them all."""
    procs = [ServerProc("frtrio", ARGS).start() for _ in range(3)]
    try:
        cs = _create(procs)
        rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
        lo, hi = 100, 120
        src = node_of(procs, cs, lo)
        dst = (src + 1) % 3
        keys = keys_in(rc, lo, hi, 400, prefix="rdb")
        pipe = rc.pipeline()
        for k in keys:
            pipe.set(k, "v")
        pipe.execute()
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "5000")
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        # (INFO keyspace counts the hidden keys being imported, as Redis's does)
        wait_for(lambda: cs[dst].info("keyspace").get("db0", {}).get("keys", 0) >= 20, 20,
                 what="some keys imported")
        assert status(cs[dst], tid)[b"state"] == b"accumulate-buffer"
        cs[dst].execute_command("SAVE")
        procs[dst].kill9()
        procs[dst].start()
        cs[dst] = procs[dst].client()
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
        wait_for(lambda: "Detected keys in slots that do not belong"
                 in open(procs[dst].log_path).read(), 10, what="the trim at startup")
        for s in range(lo, hi + 1):
            assert cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
        assert cs[dst].dbsize() == 0
        wait_for(lambda: (status(cs[src], tid) or {b"state": b"failed"})[b"state"]
                 != b"send-bulk-and-stream", 20)
        cs[src].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
        assert all(rc.get(k) == b"v" for k in keys)
    finally:
        for p in procs:
            p.stop()


# --- held fail points (upstream tests 29 and 31) ------------------------------------


def _slots_with_keys(procs, cs, lo, hi, n, prefix):
    """A cluster client, the owner of slots lo..hi (source), the next node
    (destination) and n keys of those slots, each set to "v"."""
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    src = node_of(procs, cs, lo)
    keys = keys_in(rc, lo, hi, n, prefix=prefix)
    _fill(rc, keys)
    return rc, src, (src + 1) % 3, keys


def _cluster_info(c) -> dict:
    return dict(ln.split(":", 1) for ln in
                c.execute_command("CLUSTER", "INFO").decode().split("\r\n") if ln)


def test_c15_source_write_pause_times_out_when_the_destination_never_takes_over(cluster):
    """Upstream 'Source write pause timeout': the destination is held at
    takeover (DEBUG ASM-FAILPOINT import-main-channel takeover), so the
    source's writes stay paused until its write pause timeout fails the
    task; then writes resume there and the slot is still the source's."""
    procs, cs = cluster
    lo = hi = 13000
    rc, src, dst, keys = _slots_with_keys(procs, cs, lo, hi, 5, "wp")
    cs[src].execute_command("CONFIG", "SET", "cluster-slot-migration-write-pause-timeout", "300")
    cs[dst].execute_command("DEBUG", "ASM-FAILPOINT", "import-main-channel", "takeover")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: (status(cs[src], tid) or {}).get(b"state") == b"failed", 15,
                 what="the source's task failed")
        err = status(cs[src], tid)[b"last_error"]
        assert err.startswith(b"Write pause timeout during slot handoff: destination did not "
                              b"take ownership within 300 ms."), err
        assert status(cs[dst], tid)[b"state"] == b"takeover"  # held: it never claims
        r = redis.Redis(port=procs[src].port, socket_timeout=5)
        assert r.set(keys[0], "after")  # writes are no longer paused
        assert views_agree(cs, lo, hi, procs[src].port)
    finally:
        cs[dst].execute_command("DEBUG", "ASM-FAILPOINT", "", "")
        cs[src].execute_command("CONFIG", "SET", "cluster-slot-migration-write-pause-timeout",
                                "10000")
        for c in (cs[dst], cs[src]):
            c.execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    assert status(cs[dst], tid)[b"state"] == b"canceled"
    assert rc.get(keys[0]) == b"after" and all(rc.get(k) == b"v" for k in keys[1:])
    wait_for(lambda: cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", lo) == 0
             and cs[dst].info("keyspace").get("db0", {}).get("keys", 0) == cs[dst].dbsize(), 10,
             what="the destination's partial keys trimmed")


@pytest.mark.slow  # (2-4 s)
def test_c15_sync_buffer_drain_timeout_when_the_source_never_hands_off(cluster):
    """Upstream 'Sync buffer drain timeout': held before handoff (DEBUG
    ASM-FAILPOINT migrate-main-channel handoff-prep), the source never
    pauses writes; once the destination has applied the snapshot the drain
    timeout fails the task. With the fail point cleared the destination's
    retry completes the migration with every write."""
    procs, cs = cluster
    lo = hi = 13001
    rc, src, dst, keys = _slots_with_keys(procs, cs, lo, hi, 5, "dt")
    cs[src].execute_command("DEBUG", "ASM-FAILPOINT", "migrate-main-channel", "handoff-prep")
    cs[src].execute_command("CONFIG", "SET", "cluster-slot-migration-sync-buffer-drain-timeout",
                            "1000")
    try:
        with Writer(rc, keys, lambda rc, k: rc.append(k, "w")) as w:
            tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
            wait_for(lambda: (status(cs[src], tid) or {}).get(b"state") == b"failed", 15,
                     what="the source's task failed")
        err = status(cs[src], tid)[b"last_error"]
        assert err.startswith(b"Sync buffer drain timeout (state: send-stream"), err
        assert sum(w.acked.values()) > 0
    finally:
        cs[src].execute_command("DEBUG", "ASM-FAILPOINT", "", "")
        cs[src].execute_command("CONFIG", "SET",
                                "cluster-slot-migration-sync-buffer-drain-timeout", "60000")
    assert wait_state(cs[dst], tid)[b"state"] == b"completed"
    wait_for(lambda: views_agree(cs, lo, hi, procs[dst].port), 10)
    for k in keys:
        assert rc.get(k) == b"v" + b"w" * w.acked.get(k, 0), k


# --- active trim end to end (upstream tests 50, 54, 63) -----------------------------


def _fill(rc, keys):
    pipe = rc.pipeline()
    for k in keys:
        pipe.set(k, "v")
    pipe.execute()


@pytest.mark.slow  # (2-4 s)
def test_c15_active_trim_after_a_migration_counts_every_key(cluster):
    """Upstream 'Test active trim after a successful migration': with
    DEBUG ASM-TRIM-METHOD active the source deletes the moved keys from its
    cron; CLUSTER INFO's trim fields count them exactly."""
    procs, cs = cluster
    lo, hi = 13010, 13012
    rc, src, dst, keys = _slots_with_keys(procs, cs, lo, hi, 600, "at")
    before = _cluster_info(cs[src])
    cs[src].execute_command("DEBUG", "ASM-TRIM-METHOD", "active")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        assert wait_state(cs[dst], tid)[b"state"] == b"completed"
        wait_for(lambda: _cluster_info(cs[src])[
            "cluster_slot_migration_active_trim_running"] == "0", 10, what="the trim done")
        i = _cluster_info(cs[src])
        assert i["cluster_slot_migration_active_trim_current_job_keys"] == "600"
        assert i["cluster_slot_migration_active_trim_current_job_trimmed"] == "600"
        for f in ("started", "completed"):
            name = "cluster_slot_migration_stats_active_trim_" + f
            assert int(i[name]) == int(before.get(name, "0")) + 1, (name, i, before)
        for s in range(lo, hi + 1):
            assert cs[src].execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
        assert all(rc.get(k) == b"v" for k in keys[:50])
    finally:
        cs[src].execute_command("DEBUG", "ASM-TRIM-METHOD", "default")


@pytest.mark.slow  # (2-4 s)
def test_c15_import_does_not_start_while_a_trim_holds_its_slots(cluster):
    """Upstream 'Test import task does not start if active trim is in
    progress for the same slots': the source's active trim is scheduled but
    held (DEBUG ASM-TRIM-METHOD active -1); importing the slots back logs
    'trim in progress' and waits in state none; once the trim runs the
    import starts and brings every key back."""
    procs, cs = cluster
    lo, hi = 13020, 13021
    rc, src, dst, keys = _slots_with_keys(procs, cs, lo, hi, 200, "it")
    cs[src].execute_command("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    try:
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        assert wait_state(cs[dst], tid)[b"state"] == b"completed"
        wait_for(lambda: _cluster_info(cs[src])[
            "cluster_slot_migration_active_trim_running"] == "1", 10)
        # the held keys are invisible meanwhile
        assert cs[src].execute_command("CLUSTER", "COUNTKEYSINSLOT", lo) == 0
        back = cs[src].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: ("Can not start import task %s due to trim in progress for some of "
                          "the slots" % back.decode()) in open(procs[src].log_path).read(), 10,
                 what="the 'trim in progress' log line")
        time.sleep(0.3)
        assert status(cs[src], back)[b"state"] == b"none"
        cs[src].execute_command("DEBUG", "ASM-TRIM-METHOD", "active", "0")
        assert wait_state(cs[src], back)[b"state"] == b"completed"
    finally:
        cs[src].execute_command("DEBUG", "ASM-TRIM-METHOD", "default")
    assert sum(cs[src].execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
               for s in (lo, hi)) == 200
    assert all(rc.get(k) == b"v" for k in keys)


def test_c15_client_tracking_makes_the_trim_active_and_invalidates(cluster):
    """Upstream 'Test active trim is used when client tracking is used': a
    client tracking a key of the moved slot (its invalidations redirected
    to a subscriber) makes the source trim actively; the subscriber gets an
    invalidation for the key."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo = hi = 13030
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    key = keys_in(rc, lo, hi, 1, prefix="tr")[0]
    rc.set(key, "1")
    sub = procs[src].conn()
    sid = int(sub.cmd("CLIENT", "ID")[1:-2])
    sub.cmd("SUBSCRIBE", "__redis__:invalidate")
    tr = procs[src].conn()
    assert tr.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", str(sid)) == b"+OK\r\n"
    assert tr.cmd("GET", key) == b"$1\r\n1\r\n"
    before = int(_cluster_info(cs[src]).get("cluster_slot_migration_stats_active_trim_completed",
                                            "0"))
    tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
    assert wait_state(cs[dst], tid)[b"state"] == b"completed"
    wait_for(lambda: int(_cluster_info(cs[src])[
        "cluster_slot_migration_stats_active_trim_completed"]) == before + 1, 10,
        what="an active trim")
    k = key.encode()
    assert sub.read_reply() == (b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                                b"*1\r\n$%d\r\n%s\r\n" % (len(k), k))


def _ha_pair(procs, cs, slot):
    """In the six-node cluster: a cluster client, the slot's owner (source),
    another master (destination), the source's replica in sync (client and
    process) and the source's port."""
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    src_port = owner_port(cs[0], slot)
    src = _by_port(procs, cs, src_port)
    dst_port = [p for p in {owner_port(cs[0], s) for s in (0, 6000, 12000)} if p != src_port][0]
    dst = _by_port(procs, cs, dst_port)
    rep, rep_proc = _replica_of(procs, cs, src_port)
    wait_for(lambda: _synced(rep, src), 20, what="the source's replica in sync")
    return rc, src, dst, rep, rep_proc, src_port


@pytest.mark.slow  # (a six-node cluster, two migrations)
def test_c15_replica_trims_after_its_master_and_blocks_its_link_until_done(ha_cluster):
    """Upstream 'Test bgtrim after a successful migration' (replica side) and
    'Test importing slots while active-trim is in progress for the same
    slots on replica': the source's replica trims the moved keys when its
    master's TRIMSLOTS arrives; when the slots come back while the replica
    still trims them (its active trim held), the replica's master link
    waits ('Blocking master client until trim job is done') and resumes
    once the trim ran; in the end master and replica hold every key once."""
    procs, cs = ha_cluster
    lo, hi = 14000, 14001
    rc, src, dst, rep, rep_proc, src_port = _ha_pair(procs, cs, lo)
    keys = keys_in(rc, lo, hi, 300, prefix="rb")
    _fill(rc, keys)
    wait_for(lambda: rep.dbsize() == src.dbsize(), 10, what="the replica has the keys")
    rep.execute_command("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    try:
        tid = dst.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        assert wait_state(dst, tid)[b"state"] == b"completed"
        wait_for(lambda: _cluster_info(rep)["cluster_slot_migration_active_trim_running"] == "1",
                 10, what="the replica's trim held")
        assert rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", lo) == 0  # invisible
        # the slots come back to the source while its replica still trims them
        back = src.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: "Blocking master client until trim job is done"
                 in open(rep_proc.log_path).read(), 20, what="the replica's link blocked")
        rep.execute_command("DEBUG", "ASM-TRIM-METHOD", "active", "0")
        wait_for(lambda: "Unblocking master client after active trim is completed"
                 in open(rep_proc.log_path).read(), 20, what="the replica's link unblocked")
        assert wait_state(src, back)[b"state"] == b"completed"
    finally:
        rep.execute_command("DEBUG", "ASM-TRIM-METHOD", "default")
    assert all(rc.get(k) == b"v" for k in keys)
    wait_for(lambda: rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", lo)
             + rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", hi) == 300, 20,
             what="the replica holds every key again")
    i = _cluster_info(rep)
    assert int(i["cluster_slot_migration_stats_active_trim_completed"]) >= 1
    assert dst.execute_command("CLUSTER", "COUNTKEYSINSLOT", lo) == 0


@pytest.mark.slow  # (a six-node cluster, a full resync)
def test_c15_full_resync_of_a_replica_cancels_its_active_trim(ha_cluster):
    """Upstream 'Test fullsync cancels active trim': the source's replica
    holds an active trim (DEBUG ASM-TRIM-METHOD active -1) when its master
    drops it (replica output buffer limit) and it resyncs in full: the trim
    job is cancelled (CLUSTER INFO counts it) and the replica ends with its
    master's dataset, without the moved keys."""
    procs, cs = ha_cluster
    lo, hi = 14100, 14101
    rc, src, dst, rep, _, src_port = _ha_pair(procs, cs, lo)
    _fill(rc, keys_in(rc, lo, hi, 300, prefix="fs"))
    rep.execute_command("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    cob = src.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    try:
        tid = dst.execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        assert wait_state(dst, tid)[b"state"] == b"completed"
        wait_for(lambda: _cluster_info(rep)["cluster_slot_migration_active_trim_running"] == "1",
                 10, what="the replica's trim held")
        cancelled = int(_cluster_info(rep)["cluster_slot_migration_stats_active_trim_cancelled"])
        src.config_set("client-output-buffer-limit", "replica 1024 0 0")
        other = next(k for k in keys_in(rc, 0, 16383, 2000, prefix="big")
                     if owner_port(cs[0], rc.keyslot(k)) == src_port)
        rc.set(other, "x" * 2_000_000)  # (more than the backlog: a full resync)
        wait_for(lambda: int(_cluster_info(rep)[
            "cluster_slot_migration_stats_active_trim_cancelled"]) == cancelled + 1, 30,
            what="the replica's trim cancelled by the full resync")
        assert _cluster_info(rep)["cluster_slot_migration_active_trim_running"] == "0"
    finally:
        src.config_set("client-output-buffer-limit", cob)
        rep.execute_command("DEBUG", "ASM-TRIM-METHOD", "default")
    wait_for(lambda: _synced(rep, src) and rep.dbsize() == src.dbsize(), 20,
             what="the replica has its master's dataset")
    for s in (lo, hi):
        assert rep.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0
    assert rc.get(other) == b"x" * 2_000_000
    rc.delete(other)


@pytest.mark.parametrize("method", ["bg", "active"])
def test_c15_cancelled_import_trims_its_partial_keys(cluster, method):
    """Upstream 'Test bgtrim after a failed migration' and 'Test
    active-trim clears partially imported keys on cancel': an import
    cancelled mid-snapshot leaves no key on the destination, by the lazy
    free (bg) or by an active trim that counts them (active); the source
    keeps them all."""
    procs, cs = cluster
    rc = redis.RedisCluster(host="127.0.0.1", port=procs[0].port)
    lo, hi = (13040, 13041) if method == "bg" else (13042, 13043)
    src = node_of(procs, cs, lo)
    dst = (src + 1) % 3
    keys = keys_in(rc, lo, hi, 200, prefix="cp" + method)
    _fill(rc, keys)
    cs[dst].execute_command("DEBUG", "ASM-TRIM-METHOD", method)
    cs[dst].execute_command("CONFIG", "RESETSTAT")
    cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "5000")
    try:
        base = cs[dst].info("keyspace").get("db0", {}).get("keys", 0)
        tid = cs[dst].execute_command("CLUSTER", "MIGRATION", "IMPORT", str(lo), str(hi))
        wait_for(lambda: cs[dst].info("keyspace").get("db0", {}).get("keys", 0) >= base + 20,
                 10, what="some keys imported")
        started = int(_cluster_info(cs[dst])["cluster_slot_migration_stats_active_trim_started"])
        assert cs[dst].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ID", tid) == 1
        wait_for(lambda: sum(cs[dst].execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
                             for s in (lo, hi)) == 0
                 and cs[dst].info("keyspace").get("db0", {}).get("keys", 0)
                 == cs[dst].dbsize(), 10, what="the partial keys trimmed")
        i = _cluster_info(cs[dst])
        if method == "bg":
            wait_for(lambda: cs[dst].info("memory")["lazyfreed_objects"] > 0
                     and cs[dst].info("memory")["lazyfree_pending_objects"] == 0, 10,
                     what="the lazy free ran")
            assert int(i["cluster_slot_migration_stats_active_trim_started"]) == started
        else:
            wait_for(lambda: _cluster_info(cs[dst])[
                "cluster_slot_migration_active_trim_running"] == "0", 10)
            i = _cluster_info(cs[dst])
            assert int(i["cluster_slot_migration_stats_active_trim_started"]) == started + 1
            assert int(i["cluster_slot_migration_active_trim_current_job_keys"]) > 0
            assert (i["cluster_slot_migration_active_trim_current_job_trimmed"]
                    == i["cluster_slot_migration_active_trim_current_job_keys"])
    finally:
        cs[dst].execute_command("DEBUG", "ASM-TRIM-METHOD", "default")
        cs[src].execute_command("CONFIG", "SET", "rdb-key-save-delay", "0")
    cs[src].execute_command("CLUSTER", "MIGRATION", "CANCEL", "ALL")
    assert all(rc.get(k) == b"v" for k in keys)
