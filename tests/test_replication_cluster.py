"""Replication in cluster mode (spec §7): `redis-cli --cluster create
--cluster-replicas 1` on frtrio nodes starts real replication; replicas are
listed by CLUSTER NODES/SLOTS/SHARDS/REPLICAS with their offsets; READONLY
reads on a replica; a real redis-server replica of an frtrio cluster master
(CLUSTER REPLICATE)."""

from __future__ import annotations

import subprocess

import pytest
from support import HAVE_REDIS, REDIS_CLI, ServerProc, wait_for

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]




def node(kind):
    return ServerProc(kind, ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])


def create(masters, replicas):
    addrs = ["127.0.0.1:%d" % p.port for p in masters + replicas]
    out = subprocess.run([REDIS_CLI, "--cluster", "create", *addrs, "--cluster-replicas", "1",
                          "--cluster-yes"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()


@pytest.mark.parametrize("master_kind,replica_kind",
                         [("frtrio", "frtrio"),
                          # (the mixed pairs, 6-10 s each, run in CI's slow target)
                          pytest.param("frtrio", "redis", marks=pytest.mark.slow),
                          pytest.param("redis", "frtrio", marks=pytest.mark.slow)])
def test_cluster_create_with_replicas_replicates(master_kind, replica_kind):
    procs = [node(master_kind) for _ in range(3)] + [node(replica_kind) for _ in range(3)]
    try:
        for p in procs:
            p.start()
        masters, replicas = procs[:3], procs[3:]
        create(masters, replicas)
        cs = [p.client() for p in procs]
        wait_for(lambda: all(c.execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") >= 0
                             for c in cs), what="cluster ok")
        # each replica's link is up
        if not wait_for(lambda: all(c.info("replication").get("master_link_status") == "up"
                                    for c in cs[3:]), timeout=60):
            # (rare under heavy load: say what each replica was doing)
            detail = []
            for p, c in zip(procs[3:], cs[3:]):
                info = c.info("replication")
                with open(p.log_path, errors="replace") as f:
                    tail = f.read()[-1200:]
                detail.append("%s %s: %r\n%s" % (p.kind, p.port, info, tail))
            raise AssertionError("replica links not up in 60 s\n" + "\n".join(detail))
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=masters[0].port)
        for i in range(300):
            rc.set("key:%d" % i, i)
        wait_for(lambda: sum(c.dbsize() for c in cs[3:]) == 300, what="all keys on replicas")
        # WAIT on each master, on the connection that wrote: its replica acknowledges
        keys = {}
        for i in range(2000):
            k = "w%d" % i
            port = rc.nodes_manager.get_node_from_slot(rc.keyslot(k)).port
            keys.setdefault(port, k)
        assert len(keys) == 3
        for p in masters:
            conn = p.conn()
            assert conn.cmd("SET", keys[p.port], "1") == b"+OK\r\n"
            assert conn.cmd("WAIT", "1", "5000") == b":1\r\n"
            conn.close()
        # READONLY reads on a replica of the key's master; writes are redirected
        for c, p in zip(cs[3:], replicas):
            keys = c.execute_command("CLUSTER", "GETKEYSINSLOT",
                                     c.execute_command("CLUSTER", "KEYSLOT", "key:1"), 10)
            del keys
            conn = p.conn()
            assert conn.cmd("READONLY") == b"+OK\r\n"
            r = conn.cmd("GET", "key:1")
            assert r.startswith(b"$1\r\n1") or r.startswith(b"-MOVED")
            assert conn.cmd("SET", "key:1", "x").startswith(b"-MOVED")
        # CLUSTER NODES / SLOTS / SHARDS / REPLICAS on an frtrio master
        m = cs[0]
        wait_for(lambda: m.execute_command("CLUSTER", "NODES").decode().count("slave") == 3,
                 what="CLUSTER NODES shows the three replicas (gossip)")
        # (a replica is listed once the offset in its bus header is above 0)
        wait_for(lambda: all(len(entry) == 4 for entry in m.execute_command("CLUSTER", "SLOTS")),
                 what="CLUSTER SLOTS lists each master's replica")
        myid = m.execute_command("CLUSTER", "MYID").decode()
        reps = m.execute_command("CLUSTER", "REPLICAS", myid)
        assert len(reps) == 1
        def offsets():
            conn = masters[0].conn()
            from support import parse_reply

            shards = parse_reply(conn.cmd("CLUSTER", "SHARDS"))
            conn.close()
            return [n[n.index(b"replication-offset") + 1] for s in shards
                    for n in s[s.index(b"nodes") + 1]]

        assert len(offsets()) == 6
        wait_for(lambda: all(o > 0 for o in offsets()), what="replication offsets in SHARDS")
    finally:
        for p in procs:
            p.cleanup()


def test_manual_failover_old_master_resyncs_partially():
    """CLUSTER FAILOVER on an frtrio replica of an frtrio master: the replica
    is promoted (its replication id shifts, the old one stays valid as
    replid2), and the old master follows it with a partial resync; both end
    with the same digest."""
    procs = [node("frtrio") for _ in range(6)]
    try:
        for p in procs:
            p.start()
        create(procs[:3], procs[3:])
        cs = [p.client() for p in procs]
        wait_for(lambda: all(c.info("replication").get("master_link_status") == "up"
                             for c in cs[3:]), what="replica links up")
        wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                             for c in cs), what="every node says cluster_state:ok")
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
        for i in range(300):
            rc.set("key:%d" % i, i)
        rep = cs[3]
        old = cs[[p.port for p in procs].index(rep.execute_command("ROLE")[2])]
        wait_for(lambda: rep.info("replication")["master_repl_offset"]
                 == old.info("replication")["master_repl_offset"], what="caught up")
        old_id = old.info("replication")["master_replid"]
        # the master must know this replica as its own (gossip) or it ignores
        # the replica's MFSTART, in Redis too: wait until it lists it
        rep_id = rep.execute_command("CLUSTER", "MYID")
        old_node = old.execute_command("CLUSTER", "MYID").decode()
        wait_for(lambda: rep_id.decode() in str(old.execute_command("CLUSTER", "REPLICAS",
                                                                     old_node)),
                 what="the master lists its replica")
        from support import wait_epochs_agree, wait_roles_agree

        wait_epochs_agree(cs)
        wait_roles_agree(cs)
        assert rep.execute_command("CLUSTER", "FAILOVER") == b"OK"
        try:
            wait_for(lambda: rep.execute_command("ROLE")[0] == b"master", what="promotion")
        except AssertionError:
            raise AssertionError("no promotion: " + "".join(
                "\n--- %d\n%s" % (p.port, open(p.log_path).read()[-2500:]) for p in procs))
        wait_for(lambda: old.execute_command("ROLE")[0] == b"slave"
                 and old.info("replication")["master_link_status"] == "up",
                 what="old master follows")
        info = rep.info("replication")
        logs = "".join(open(p.log_path).read()[-3000:] for p in procs)
        assert info["master_replid2"] == old_id and info["master_replid"] != old_id, logs
        st = rep.info("stats")
        # (the old master may have to PSYNC twice if its first link is dropped
        # by the promotion's own reconciliation; never a full sync)
        assert st["sync_partial_ok"] >= 1 and st["sync_full"] == 0, (st, logs)
        wait_for(lambda: rep.info("replication")["master_repl_offset"]
                 == old.info("replication")["master_repl_offset"], what="offsets equal")
        assert rep.execute_command("DEBUG", "DIGEST") == old.execute_command("DEBUG", "DIGEST")
        assert rep.dbsize() == old.dbsize() > 0
    finally:
        for p in procs:
            p.cleanup()
