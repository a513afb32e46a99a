"""Failover end to end in clusters that mix redis-server 7.0.15 and frtrio
processes (C11, C05). The cluster is built by hand (SET-CONFIG-EPOCH, MEET,
ADDSLOTSRANGE, REPLICATE), so each test chooses which kind replicates which:

* automatic failover after kill -9 of a master, frtrio master / redis-server
  replica and the reverse: the replica is promoted, every surviving node
  agrees on the new owner (CLUSTER NODES and CLUSTER SLOTS), and keys that
  WAIT saw replicated are read back from the new master;
* CLUSTER FAILOVER (default, coordinated) in both pairings: the old master
  becomes a replica of the new one and the data is intact;
* C05: a client blocked in BLPOP 0 on a master that a manual failover
  demotes is released at once, with the same reply on an all-redis and an
  all-frtrio cluster.
"""

from __future__ import annotations

import pytest
from support import HAVE_REDIS, ServerProc, parse_reply, wait_for

from frtrio.cluster.slots import key_slot

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]

NODE_TIMEOUT = 1000
RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def _node(kind):
    return ServerProc(kind, ["--cluster-enabled", "yes",
                             "--cluster-node-timeout", str(NODE_TIMEOUT)])


def _cmd(p, *args):
    c = p.conn()
    try:
        return parse_reply(c.cmd(*args))
    finally:
        c.close()


def _text(p, *args) -> str:
    r = _cmd(p, *args)
    return r.decode() if isinstance(r, bytes) else str(r)


def _nodes(p) -> dict:
    """CLUSTER NODES of p: id -> (flags set, master id, slot ranges)."""
    out = {}
    for ln in _text(p, "CLUSTER", "NODES").splitlines():
        w = ln.split()
        if len(w) >= 8:
            out[w[0]] = (set(w[2].split(",")) - {"myself"}, w[3], tuple(w[8:]))
    return out


def _slots_owner(p) -> dict:
    """CLUSTER SLOTS of p: (start, end) -> master port."""
    return {(e[0], e[1]): e[2][1] for e in _cmd(p, "CLUSTER", "SLOTS")}


def _state_ok(p) -> bool:
    return "cluster_state:ok" in _text(p, "CLUSTER", "INFO")


def _link_up(p) -> bool:
    return "master_link_status:up" in _text(p, "INFO", "replication")


class Cluster:
    """Three shards; ``layout`` gives (master kind, replica kind) per shard."""

    def __init__(self, layout):
        self.masters = [_node(mk) for mk, _rk in layout]
        self.replicas = [_node(rk) for _mk, rk in layout]
        self.all = self.masters + self.replicas
        self.dead: set[int] = set()

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        for p in self.all:
            p.cleanup()

    def alive(self):
        return [p for p in self.all if p.port not in self.dead]

    def _build(self):
        for p in self.all:
            p.start()
        self.ids = {p.port: _text(p, "CLUSTER", "MYID") for p in self.all}
        for i, m in enumerate(self.masters):
            assert _text(m, "CLUSTER", "SET-CONFIG-EPOCH", i + 1) == "OK"
            assert _text(m, "CLUSTER", "ADDSLOTSRANGE", *RANGES[i]) == "OK"
        first = self.all[0]
        for p in self.all[1:]:
            assert _text(first, "CLUSTER", "MEET", "127.0.0.1", p.port) == "OK"
        wait_for(lambda: all(len(_nodes(p)) == 6 for p in self.all), timeout=30,
                 what="every node knows the six nodes")
        for m, r in zip(self.masters, self.replicas):
            assert _text(r, "CLUSTER", "REPLICATE", self.ids[m.port]) == "OK"
        wait_for(lambda: all(_link_up(r) for r in self.replicas), timeout=30,
                 what="replication links up")
        wait_for(self.agree, timeout=30, what="one view on every node")

    def agree(self) -> bool:
        """Every live node: cluster_state ok, the same CLUSTER NODES view
        (flags, masters, slots) and the same CLUSTER SLOTS owners."""
        nodes = [_nodes(p) for p in self.alive()]
        slots = [_slots_owner(p) for p in self.alive()]
        return (all(n == nodes[0] for n in nodes) and all(s == slots[0] for s in slots)
                and all(_state_ok(p) for p in self.alive()))

    def write_keys(self, master, n=50):
        """n keys in the master's slots, written and WAITed on one connection."""
        lo, hi = RANGES[self.masters.index(master)]
        keys = {}
        i = 0
        while len(keys) < n:
            k = "k%d" % i
            if lo <= key_slot(k.encode()) <= hi:
                keys[k] = "v%d" % i
            i += 1
        c = master.conn()
        try:
            for k, v in keys.items():
                assert c.cmd("SET", k, v) == b"+OK\r\n"
            assert c.cmd("WAIT", "1", "5000") == b":1\r\n"
        finally:
            c.close()
        return keys

    def kill(self, p):
        p.kill9()
        self.dead.add(p.port)


def _assert_keys(p, keys):
    c = p.conn()
    try:
        for k, v in keys.items():
            assert c.cmd("GET", k) == b"$%d\r\n%s\r\n" % (len(v), v.encode()), k
    finally:
        c.close()


def _role(p):
    return _cmd(p, "ROLE")


def _logs(cl):
    out = []
    for p in cl.all:
        try:
            with open(p.log_path, errors="replace") as f:
                out.append("--- %s %d\n%s" % (p.kind, p.port, f.read()[-2000:]))
        except OSError:
            pass
    return "\n".join(out)


@pytest.mark.parametrize("mkind,rkind", [("frtrio", "redis"), ("redis", "frtrio")])
def test_c11_kill9_master_promotes_replica_of_other_kind(mkind, rkind):
    """kill -9 of a master: its replica (the other kind) is elected by the
    two surviving masters (one of each kind), every survivor agrees on the
    new owner of the slots, and the WAITed keys are on the new master."""
    other = "redis" if mkind == "frtrio" else "frtrio"
    with Cluster([(mkind, rkind), (other, mkind), (mkind, other)]) as cl:
        m, r = cl.masters[0], cl.replicas[0]
        keys = cl.write_keys(m)
        cl.kill(m)
        try:
            wait_for(lambda: _role(r)[0] == b"master", timeout=30, what="replica promoted")
            wait_for(lambda: cl.agree() and all(
                _slots_owner(p)[RANGES[0]] == r.port for p in cl.alive()), timeout=30,
                what="every survivor agrees on the new owner")
        except AssertionError as e:
            raise AssertionError(str(e) + "\n" + _logs(cl))
        mid = cl.ids[m.port]
        for p in cl.alive():
            view = _nodes(p)
            assert "fail" in view[mid][0] and "master" in view[mid][0], (p.port, view[mid])
            assert view[cl.ids[r.port]][2] == ("%d-%d" % RANGES[0],)
            assert view[mid][2] == ()
        _assert_keys(r, keys)
        # the new master takes writes, redirected to it from the others
        assert _text(r, "SET", next(iter(keys)), "after") == "OK"
        moved = cl.masters[1].conn().cmd("GET", next(iter(keys)))
        assert moved == b"-MOVED %d 127.0.0.1:%d\r\n" % (
            key_slot(next(iter(keys)).encode()), r.port)


@pytest.mark.parametrize("mkind,rkind", [("frtrio", "redis"), ("redis", "frtrio")])
def test_c11_manual_failover_swaps_master_and_replica_of_other_kind(mkind, rkind):
    """CLUSTER FAILOVER on the replica: it becomes the master of the slots,
    the old master becomes its replica (link up, same data), and every node
    agrees."""
    other = "redis" if mkind == "frtrio" else "frtrio"
    with Cluster([(mkind, rkind), (other, mkind), (mkind, other)]) as cl:
        m, r = cl.masters[0], cl.replicas[0]
        keys = cl.write_keys(m)
        # the master must list this replica as its own or it ignores MFSTART
        wait_for(lambda: cl.ids[r.port] in _text(m, "CLUSTER", "REPLICAS", cl.ids[m.port]),
                 what="the master lists its replica")
        assert _text(r, "CLUSTER", "FAILOVER") == "OK"
        try:
            wait_for(lambda: _role(r)[0] == b"master", timeout=20, what="replica promoted")
            wait_for(lambda: _role(m)[0] == b"slave" and _role(m)[2] == r.port
                     and _link_up(m), timeout=20, what="old master follows the new one")
            wait_for(lambda: cl.agree() and all(
                _slots_owner(p)[RANGES[0]] == r.port for p in cl.all), timeout=20,
                what="every node agrees on the new owner")
        except AssertionError as e:
            raise AssertionError(str(e) + "\n" + _logs(cl))
        for p in cl.all:
            view = _nodes(p)
            assert "slave" in view[cl.ids[m.port]][0]
            assert view[cl.ids[m.port]][1] == cl.ids[r.port]
            assert view[cl.ids[r.port]][2] == ("%d-%d" % RANGES[0],)
        _assert_keys(r, keys)
        _assert_keys_readonly(m, keys)
        # the new master's writes reach the old one
        c = r.conn()
        assert c.cmd("SET", next(iter(keys)), "after") == b"+OK\r\n"
        assert c.cmd("WAIT", "1", "5000") == b":1\r\n"
        c.close()
        _assert_keys_readonly(m, {next(iter(keys)): "after"})


def _assert_keys_readonly(p, keys):
    c = p.conn()
    try:
        assert c.cmd("READONLY") == b"+OK\r\n"
        for k, v in keys.items():
            assert c.cmd("GET", k) == b"$%d\r\n%s\r\n" % (len(v), v.encode()), k
    finally:
        c.close()


def _blocked_reply_on_manual_failover(kind, option):
    """One master (all slots) and one replica of ``kind``; a client blocked
    in BLPOP 0 and one in WAIT 5 0 on the master; CLUSTER FAILOVER [option] on the
    replica. What each blocked client receives and whether the server then
    closes its connection, and the old master's role."""
    m, r = _node(kind), _node(kind)
    try:
        m.start()
        r.start()
        assert _text(m, "CLUSTER", "ADDSLOTSRANGE", 0, 16383) == "OK"
        assert _text(m, "CLUSTER", "MEET", "127.0.0.1", r.port) == "OK"
        mid = _text(m, "CLUSTER", "MYID")
        wait_for(lambda: mid in _nodes(r), what="the replica knows the master")
        assert _text(r, "CLUSTER", "REPLICATE", mid) == "OK"
        wait_for(lambda: _link_up(r), what="link up")
        rid = _text(r, "CLUSTER", "MYID")
        wait_for(lambda: rid in _text(m, "CLUSTER", "REPLICAS", mid), what="master lists replica")
        wait_for(lambda: _state_ok(m) and _state_ok(r), what="cluster ok")
        blocked = m.conn()
        blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n")
        waiter = m.conn()  # WAIT for more replicas than there are
        assert waiter.cmd("SET", "w", "1") == b"+OK\r\n"
        waiter.send(b"*3\r\n$4\r\nWAIT\r\n$1\r\n5\r\n$1\r\n0\r\n")
        wait_for(lambda: "blocked_clients:2" in _text(m, "INFO", "clients"), what="blocked")
        assert _text(r, "CLUSTER", "FAILOVER", *option) == "OK"
        out = []
        for conn in (blocked, waiter):
            conn.sock.settimeout(10)
            out.append(conn.read_reply())
            out.append(conn.read_until_close(timeout=10))
            conn.close()
        return out[0], out[1], out[2], out[3], _role(m)[0]
    finally:
        r.cleanup()
        m.cleanup()


@pytest.mark.parametrize("option", [(), ("FORCE",), ("TAKEOVER",)],
                         ids=["default", "force", "takeover"])
def test_c05_blocked_client_released_when_manual_failover_demotes_master(option):
    """Redis 7.0 (replicationSetMaster -> disconnectAllBlockedClients):
    -UNBLOCKED ... (master -> replica?), then the connection is closed
    (CLIENT_CLOSE_AFTER_REPLY); the same for a client blocked in WAIT. With
    FORCE and TAKEOVER the master learns it lost its slots to its replica
    from the bus and takes the same path."""
    got = {kind: _blocked_reply_on_manual_failover(kind, option) for kind in ("redis", "frtrio")}
    unblocked = (b"-UNBLOCKED force unblock from blocking operation, instance state changed "
                 b"(master -> replica?)\r\n")
    assert got["redis"] == (unblocked, (b"", True), unblocked, (b"", True), b"slave")
    assert got["frtrio"] == got["redis"]
