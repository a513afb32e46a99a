"""A node never dies because of a peer: abuse of the cluster bus against real
frtrio processes (garbage, truncated packets, a silent peer, a peer that stops
reading, a node paused past the node timeout). After each, the cluster is ok
and every key written before is still there."""

from __future__ import annotations

import os
import random
import signal
import socket
import time

import pytest
from test_cluster_bus_e2e import all_agree, cli, create_cluster, flag_of, start_nodes, wait_for

from support import HAVE_REDIS

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-cli")]


@pytest.fixture
def cluster():
    procs = start_nodes(["frtrio"] * 3)
    try:
        create_cluster(procs)
        assert wait_for(lambda: all_agree(procs), 15)
        assert wait_for(lambda: all("cluster_state:ok" in cli("cluster", "info", port=p.port).stdout
                                    for p in procs), 15)
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
        for i in range(300):
            rc.set("key:%d" % i, "v%d" % i)
        rc.close()
        yield procs
    finally:
        for p in procs:
            p.cleanup()


def _all_keys_there(procs):
    from redis.cluster import RedisCluster

    rc = RedisCluster(host="127.0.0.1", port=procs[0].port)
    try:
        return all(rc.get("key:%d" % i) == b"v%d" % i for i in range(300))
    finally:
        rc.close()


def _healthy(procs):
    assert all(p.proc.poll() is None for p in procs), "a node died"
    assert wait_for(lambda: all("cluster_state:ok" in cli("cluster", "info", port=p.port).stdout
                                for p in procs), 15)
    assert wait_for(lambda: all_agree(procs), 15)
    assert _all_keys_there(procs)


def _links(port):
    import redis

    r = redis.Redis(port=port)
    try:
        out = []
        for ln in r.execute_command("CLUSTER", "LINKS"):
            pairs = ln.items() if isinstance(ln, dict) else zip(ln[::2], ln[1::2])
            out.append({(k.decode() if isinstance(k, bytes) else k):
                        (v.decode() if isinstance(v, bytes) else v) for k, v in pairs})
        return out
    finally:
        r.close()


def _node_id(port):
    return cli("cluster", "myid", port=port).stdout.strip()


def test_garbage_and_truncated_packets_on_the_bus_port_change_nothing(cluster):
    procs = cluster
    bus = procs[0].port + 10000
    rnd = random.Random(7)
    ping = open(os.path.join(os.path.dirname(__file__), "fixtures", "bus", "redis70-ping.bin"),
                "rb").read()
    payloads = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4000))) for _ in range(20)]
    payloads += [ping[:n] for n in (1, 7, 8, 100, len(ping) - 1)]  # truncated, then closed
    payloads += [b"RCmb" + b"\xff" * 4 + b"\x00" * 64]  # absurd total length
    payloads += [b"RCmb" + (len(ping)).to_bytes(4, "big") + bytes(rnd.randrange(256)
                 for _ in range(len(ping) - 8))]  # right framing, random body
    for data in payloads:
        s = socket.create_connection(("127.0.0.1", bus))
        try:
            s.sendall(data)
        except OSError:
            pass
        s.close()
    _healthy(procs)


def test_a_peer_that_connects_and_never_sends_is_harmless(cluster):
    procs = cluster
    silent = [socket.create_connection(("127.0.0.1", p.port + 10000)) for p in procs for _ in range(5)]
    try:
        time.sleep(1.0)
        _healthy(procs)
        from redis.cluster import RedisCluster

        rc = RedisCluster(host="127.0.0.1", port=procs[1].port)
        rc.set("during", "silence")
        assert rc.get("during") == b"silence"
        rc.delete("during")
        rc.close()
    finally:
        for s in silent:
            s.close()
    _healthy(procs)


def test_a_node_paused_past_the_node_timeout_rejoins(cluster):
    procs = cluster
    victim = procs[2]
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        assert wait_for(lambda: all(flag_of(p.port, victim.port) == "master,fail"
                                    for p in procs[:2]), 15)
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    assert wait_for(lambda: all(flag_of(p.port, victim.port) == "master" for p in procs[:2]), 20)
    _healthy(procs)


def test_link_freed_when_send_buffer_limit_reached(cluster):
    """Port of the upstream 24-links.tcl test "Disconnect link when send
    buffer limit reached": a peer that stops reading makes the outbound
    link's buffer pass cluster-link-sendbuf-limit; the link is freed and
    recreated, the inbound link from that peer is untouched."""
    import redis

    procs = cluster
    p1, p2 = procs[0], procs[1]
    r1 = redis.Redis(port=p1.port)
    p2_id = _node_id(p2.port)

    def link(direction):
        for ln in _links(p1.port):
            if ln["node"] == p2_id and ln["direction"] == direction:
                return ln
        return None

    assert wait_for(lambda: link("to") and link("from"), 10)
    orig_to, orig_from = link("to"), link("from")
    r1.config_set("cluster-node-timeout", 3600 * 1000)
    r1.config_set("cluster-link-sendbuf-limit", 256 * 1024)

    def exceeded():
        info = r1.execute_command("CLUSTER", "INFO").decode()
        return int(info.split("total_cluster_links_buffer_limit_exceeded:")[1].split()[0])

    assert exceeded() == 0
    os.kill(p2.proc.pid, signal.SIGSTOP)
    try:
        msg = b"x" * (128 * 1024)
        for _ in range(100):
            r1.publish("channel", msg)
            time.sleep(0.2)
            if exceeded() >= 1:
                break
        assert exceeded() >= 1, "cluster link not freed"
        new_to = wait_for(lambda: (lambda ln: ln if ln and ln["create-time"] > orig_to["create-time"]
                                   else None)(link("to")), 10)
        assert new_to, "a new link to the peer was not created"
        assert link("from")["create-time"] == orig_from["create-time"]
        assert "due to exceeding send buffer memory limit" in open(p1.log_path).read()
    finally:
        os.kill(p2.proc.pid, signal.SIGCONT)
        r1.config_set("cluster-node-timeout", 2000)
        r1.config_set("cluster-link-sendbuf-limit", 0)
        r1.close()
    _healthy(procs)
