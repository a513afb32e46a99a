"""A replica that loads a full-sync payload is visibly loading, as on
redis-server 7.0.15 (side by side): INFO says ``loading:1`` with the
progress fields, commands without the ``loading`` flag are answered
``-LOADING``, INFO and CONFIG still work, and once loaded the data is
there. In a cluster the loading replica announces replication offset 0,
so its master leaves it out of CLUSTER SLOTS and CLUSTER SHARDS says
``health loading`` (upstream cluster tests 22 and 28). CLIENT KILL TYPE
REPLICA drops ``connected_slaves`` at once."""

from __future__ import annotations

import pytest
from support import HAVE_REDIS, ServerProc, wait_for

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]

KEYS = 600


def _loading(r) -> bool:
    return r.info("persistence").get("loading") == 1


def _observe_load(kind: str) -> dict:
    """Start a master with KEYS keys and a replica that loads them slowly;
    return what a client of the replica sees meanwhile and after."""
    seen = {}
    with ServerProc(kind).start() as m, ServerProc(kind).start() as r:
        mc, rc = m.client(), r.client()
        mc.execute_command("DEBUG", "POPULATE", KEYS, "key", 1000)
        rc.config_set("key-load-delay", 5000)  # 5 ms a key: about 3 s
        rc.config_set("loading-process-events-interval-bytes", 1024)
        rc.execute_command("REPLICAOF", "127.0.0.1", m.port)
        wait_for(lambda: _loading(rc), 20, "the replica to start loading")
        pers = rc.info("persistence")
        seen["fields"] = sorted(k for k in pers if k.startswith("loading"))
        seen["total"] = pers["loading_total_bytes"] > 0
        raw = r.conn()
        seen["get"] = raw.cmd("GET", "key:1")
        seen["dbsize"] = raw.cmd("DBSIZE")
        seen["ping"] = raw.cmd("PING")
        seen["config"] = raw.cmd("CONFIG", "GET", "key-load-delay")
        seen["multi"] = [raw.cmd("MULTI"), raw.cmd("SET", "a", "1"), raw.cmd("EXEC")]
        raw.close()
        rc.config_set("key-load-delay", 0)
        wait_for(lambda: not _loading(rc) and rc.info("replication")["master_link_status"]
                 == "up", 30, "the load to end")
        seen["after"] = rc.dbsize()
        seen["value"] = rc.get("key:7")
        # (one transaction: the killed replica reconnects within milliseconds)
        p = mc.pipeline(transaction=True)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        p.info("replication")
        seen["connected_after_kill"] = p.execute()[1]["connected_slaves"]
    return seen


def test_c05_loading_replica_answers_like_redis():
    ours, theirs = _observe_load("frtrio"), _observe_load("redis")
    assert ours == theirs
    assert ours["get"].startswith(b"-LOADING Redis is loading the dataset in memory")
    assert ours["after"] == KEYS and ours["connected_after_kill"] == 0


def _cluster_pair(keys: int):
    nodes = [ServerProc("frtrio", ["--cluster-enabled", "yes", "--cluster-node-timeout",
                                   "3000"]).start() for _ in range(2)]
    m, r = (n.client() for n in nodes)
    m.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    m.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[1].port)
    mid = m.execute_command("CLUSTER", "MYID").decode()
    wait_for(lambda: mid.encode() in nodes[1].conn().cmd("CLUSTER", "NODES"), 20, "the meet")
    m.execute_command("DEBUG", "POPULATE", keys, "{0}k", 1000)  # (not propagated)
    r.execute_command("CLUSTER", "REPLICATE", mid)
    return nodes, m, r


def _slots_list_replica(m, rid: str) -> bool:
    return any(len(s) > 3 and any(x[2].decode() == rid for x in s[3:])
               for s in m.execute_command("CLUSTER", "SLOTS"))


def _shard_health(m, rid: str):
    def as_dict(x):
        return x if isinstance(x, dict) else dict(zip(x[::2], x[1::2]))

    for shard in m.execute_command("CLUSTER", "SHARDS"):
        for node in as_dict(shard)[b"nodes"]:
            nd = as_dict(node)
            if nd[b"id"].decode() == rid:
                return nd[b"health"].decode()
    return None


@pytest.mark.slow  # (about 19 s: a six-node cluster and a slowed full sync)
def test_c06_loading_replica_is_hidden_from_cluster_slots():
    nodes, m, r = _cluster_pair(KEYS)
    try:
        rid = r.execute_command("CLUSTER", "MYID").decode()
        wait_for(lambda: _slots_list_replica(m, rid), 20, "the replica in CLUSTER SLOTS")
        assert _shard_health(m, rid) == "online"
        # a full resync that loads slowly
        m.config_set("repl-backlog-size", 16384)
        r.config_set("key-load-delay", 10000)
        r.config_set("loading-process-events-interval-bytes", 1024)
        # (in one transaction, as upstream's test: the replica cannot come
        # back before the writes, which overflow the backlog)
        p = m.pipeline(transaction=True)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        for i in range(100):
            p.set("{0}more:%d" % i, "x" * 1000)
        p.execute()
        wait_for(lambda: not _slots_list_replica(m, rid), 20,
                 "the loading replica to leave CLUSTER SLOTS")
        assert _loading(r)
        assert _shard_health(m, rid) == "loading"
        r.config_set("key-load-delay", 0)
        wait_for(lambda: _slots_list_replica(m, rid), 30, "the replica back in CLUSTER SLOTS")
        assert _shard_health(m, rid) == "online"
        assert r.dbsize() == KEYS + 100
    finally:
        for n in nodes:
            n.stop()
