"""End to end, real processes: cluster mode of one frtrio node.

* redis-py's ``RedisCluster`` against one frtrio node owning every slot
  (hash tags, pipelines, cross-slot errors);
* nodes.conf compatibility both ways with redis-server 7.0.15 (same id,
  epochs, slots, open slots, other nodes);
* restart after ``kill -9`` right after CLUSTER ADDSLOTS / SETSLOT / BUMPEPOCH:
  same id, epochs and slots (the config is on disk before the reply leaves);
* a corrupt or truncated nodes.conf stops the start with an error naming the
  file and the line, and the file is not rewritten;
* two processes on one nodes.conf: the second refuses (exit 1, Redis's
  message), whichever of frtrio / redis-server holds it;
* startup reconciliation (C08) from real data: keys in db 1 refuse the start;
  keys of an unassigned slot are claimed, keys of another node's slot make it
  importing.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import requires_redis
from support import HAVE_REDIS, ServerProc, free_port

from frtrio.cluster.slots import key_slot

pytestmark = pytest.mark.e2e

ID_ME = "1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f"
ID_B = "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b"
ID_R = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
LOCKED = (b"Sorry, the cluster configuration file nodes.conf is already used by a different "
          b"Redis Cluster node. Please make sure that different nodes use different cluster "
          b"configuration files.")


def frtrio(workdir=None, port=None, extra=()):
    return ServerProc("frtrio", ["--cluster-enabled", "yes", *extra], port=port, workdir=workdir)


def redis_node(workdir=None, port=None, extra=()):
    return ServerProc("redis", ["--cluster-enabled", "yes", *extra], port=port, workdir=workdir)


def val(conn, *args) -> bytes:
    """The payload of a bulk reply (or the line of a simple one)."""
    raw = conn.cmd(*args)
    if raw[:1] in (b"$", b"="):
        body = raw.split(b"\r\n", 1)[1][:-2]
        return body[4:] if raw[:1] == b"=" else body
    return raw[1:-2]


def info(conn) -> dict:
    text = val(conn, "CLUSTER", "INFO").decode()
    return dict(ln.split(":", 1) for ln in text.split("\r\n") if ln)


def wait_ok(conn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info(conn)["cluster_state"] == "ok":
            return
        time.sleep(0.05)
    raise AssertionError("cluster_state did not become ok: %r" % info(conn))


def node_fields(text: bytes) -> dict:
    """CLUSTER NODES / nodes.conf lines by id, without the fields that are
    times or link state (ping-sent, pong-received, link-state)."""
    out = {}
    for ln in text.decode().splitlines():
        w = ln.split()
        if not w or w[0] == "vars":
            continue
        out[w[0]] = (w[1], w[2], w[3], w[6], tuple(w[8:]))
    return out


def vars_line(text: bytes) -> str:
    return [ln for ln in text.decode().splitlines() if ln.startswith("vars")][0]


def wait_exit(p: ServerProc, timeout=15.0) -> tuple[int, bytes]:
    rc = p.proc.wait(timeout)
    out, errb = p.proc.communicate()
    log = b""
    if os.path.exists(p.log_path):
        with open(p.log_path, "rb") as f:
            log = f.read()
    return rc, out + errb + log


# --- redis-py's cluster client --------------------------------------------------------


@pytest.fixture(scope="module")
def one_node():
    p = frtrio().start()
    try:
        c = p.conn()
        assert c.cmd("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK\r\n"
        wait_ok(c)
        c.close()
        yield p
    finally:
        p.cleanup()


def test_c02_redis_py_cluster_client(one_node):
    from redis.cluster import RedisCluster
    from redis.exceptions import RedisClusterException, ResponseError

    rc = RedisCluster(host="127.0.0.1", port=one_node.port, decode_responses=True)
    try:
        assert len(rc.get_nodes()) == 1
        assert rc.set("foo", "bar") and rc.get("foo") == "bar"
        assert rc.keyslot("{user1000}.following") == 3443
        assert rc.cluster_keyslot("{user1000}.following") == 3443
        # hash tags: multi-key commands on one slot
        rc.mset({"{u}a": "1", "{u}b": "2"})
        assert rc.mget("{u}a", "{u}b", "{u}c") == ["1", "2", None]
        assert rc.delete("{u}a", "{u}b") == 2
        # keys in different slots: the client refuses, and so does the server
        with pytest.raises(RedisClusterException):
            rc.mget("a", "b")
        node = rc.get_default_node()
        # (redis-py strips the CROSSSLOT code into its exception type)
        with pytest.raises(ResponseError, match="Keys in request don't hash to the same slot"):
            node.redis_connection.mget("a", "b")
        # the non-atomic helpers split by slot
        rc.mset_nonatomic({"a": "1", "b": "2", "c": "3"})
        assert rc.mget_nonatomic("a", "b", "c", "zz") == ["1", "2", "3", None]
        # pipelines: commands grouped by node
        with rc.pipeline() as pipe:
            for i in range(50):
                pipe.set("k%d" % i, i)
            pipe.get("k7")
            pipe.incr("{t}n")
            pipe.incr("{t}n")
            res = pipe.execute()
        assert res[:50] == [True] * 50 and res[50:] == ["7", 1, 2]
        assert sorted(rc.scan_iter(match="k1*")) == sorted(
            ["k1"] + ["k1%d" % i for i in range(10)])
        info_ = rc.cluster_info()
        assert info_["cluster_state"] == "ok" and int(info_["cluster_slots_assigned"]) == 16384
        slots = rc.cluster_slots()
        assert list(slots) == [(0, 16383)]
        assert rc.cluster_countkeysinslot(rc.keyslot("foo")) == 1
        assert rc.cluster_get_keys_in_slot(rc.keyslot("{t}n"), 5) == ["{t}n"]
        # a transaction on one slot
        with rc.pipeline(transaction=True) as tx:
            tx.set("{t}x", "1")
            tx.incr("{t}x")
            assert tx.execute() in ([True, 2], ["OK", 2])  # (redis-py's parsing)
    finally:
        rc.flushall()
        rc.close()


def test_c04_redis_py_sees_cluster_errors(one_node):
    import redis

    r = redis.Redis(host="127.0.0.1", port=one_node.port)
    try:
        with pytest.raises(redis.ResponseError, match="SELECT is not allowed in cluster mode"):
            r.execute_command("SELECT", "1")
        assert r.execute_command("READONLY") in (b"OK", True)
        assert r.execute_command("ASKING") in (b"OK", True)
    finally:
        r.close()


# --- nodes.conf compatibility -----------------------------------------------------------


def _seed_conf(d: str, port: int) -> None:
    """myself (no slots yet) + master B (8192-16383) + replica R of B, at
    ports nobody listens on."""
    bp, rp = free_port(), free_port()
    with open(os.path.join(d, "nodes.conf"), "w") as f:
        f.write("%s 127.0.0.1:%d@%d myself,master - 0 0 1 connected\n"
                "%s 127.0.0.1:%d@%d master - 0 0 2 connected 8192-16383\n"
                "%s 127.0.0.1:%d@%d slave %s 0 0 2 connected\n"
                "vars currentEpoch 2 lastVoteEpoch 0\n"
                % (ID_ME, port, port + 10000, ID_B, bp, bp + 10000, ID_R, rp, rp + 10000, ID_B))


def _shape_config(conn) -> None:
    for argv in (("CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "8191"),
                 ("CLUSTER", "SETSLOT", "50", "MIGRATING", ID_B),
                 ("CLUSTER", "SETSLOT", "9000", "IMPORTING", ID_B),
                 ("CLUSTER", "SETSLOT", "150", "IMPORTING", ID_B),
                 ("CLUSTER", "BUMPEPOCH"),
                 ("CLUSTER", "SAVECONFIG")):
        r = conn.cmd(*argv)
        assert r.startswith(b"+"), (argv, r)


def _check_loaded(conn, saved: bytes) -> None:
    """The node now running shows the saved configuration."""
    assert val(conn, "CLUSTER", "MYID") == ID_ME.encode()
    assert node_fields(val(conn, "CLUSTER", "NODES")) == node_fields(saved)
    epoch = int(vars_line(saved).split()[2])
    i = info(conn)
    assert int(i["cluster_current_epoch"]) == epoch
    assert int(i["cluster_my_epoch"]) == epoch  # BUMPEPOCH made mine the highest


@requires_redis
def test_c08_nodes_conf_from_redis_loads_in_frtrio(tmp_path):
    d, port = str(tmp_path), free_port()
    _seed_conf(d, port)
    r = redis_node(workdir=d, port=port).start()
    try:
        _shape_config(r.conn())
    finally:
        r.stop()
    with open(os.path.join(d, "nodes.conf"), "rb") as f:
        saved = f.read()
    assert b"[50->-" + ID_B.encode() + b"]" in saved and b"[150-<-" in saved
    f = frtrio(workdir=d, port=port).start()
    try:
        _check_loaded(f.conn(), saved)
    finally:
        f.stop()


@requires_redis
def test_c08_nodes_conf_from_frtrio_loads_in_redis(tmp_path):
    d, port = str(tmp_path), free_port()
    _seed_conf(d, port)
    f = frtrio(workdir=d, port=port).start()
    try:
        _shape_config(f.conn())
    finally:
        f.stop()
    with open(os.path.join(d, "nodes.conf"), "rb") as fh:
        saved = fh.read()
    r = redis_node(workdir=d, port=port).start()
    try:
        _check_loaded(r.conn(), saved)
    finally:
        r.stop()


# --- restart after kill -9 ------------------------------------------------------------


def test_c14_restart_after_kill9_keeps_id_epochs_slots(tmp_path):
    d = str(tmp_path)
    p = frtrio(workdir=d).start()
    port = p.port
    try:
        c = p.conn()
        me = val(c, "CLUSTER", "MYID")
        assert c.cmd("CLUSTER", "ADDSLOTS", "0", "1", "2", "100") == b"+OK\r\n"
        p.kill9()
        p = frtrio(workdir=d, port=port).start()
        c = p.conn()
        assert val(c, "CLUSTER", "MYID") == me
        mine = node_fields(val(c, "CLUSTER", "NODES"))[me.decode()]
        assert mine[4] == ("0-2", "100")
        # SETSLOT and an epoch bump, then kill -9 again
        for argv in (("CLUSTER", "ADDSLOTSRANGE", "200", "300"),
                     ("CLUSTER", "SETSLOT", "250", "MIGRATING", me),
                     ("CLUSTER", "SETSLOT", "5000", "IMPORTING", me),
                     ("CLUSTER", "BUMPEPOCH"), ("CLUSTER", "SETSLOT", "1", "STABLE")):
            assert c.cmd(*argv).startswith(b"+"), argv
        before = node_fields(val(c, "CLUSTER", "NODES"))
        i_before = info(c)
        p.kill9()
        p = frtrio(workdir=d, port=port).start()
        c = p.conn()
        assert val(c, "CLUSTER", "MYID") == me
        assert node_fields(val(c, "CLUSTER", "NODES")) == before
        assert before[me.decode()][4] == ("0-2", "100", "200-300", "[250->-%s]" % me.decode(),
                                          "[5000-<-%s]" % me.decode())
        i_after = info(c)
        for k in ("cluster_current_epoch", "cluster_my_epoch", "cluster_slots_assigned"):
            assert i_after[k] == i_before[k], k
        assert i_after["cluster_my_epoch"] == "1"
    finally:
        p.cleanup()


# --- corrupt nodes.conf ------------------------------------------------------------------
# (every kind of corruption is covered in process by test_cluster_unit; here
# the real start: exit status, message, file untouched)

_GOOD = ("%s 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-100\n"
         "%s 127.0.0.1:7001@17001 master - 0 0 2 connected 101-200\n"
         "vars currentEpoch 2 lastVoteEpoch 0\n" % (ID_ME, ID_B))

_CORRUPT = [
    (_GOOD[:30], b"at line 1 "),  # truncated in the myself line's address
    (_GOOD + "garbage line\n", b"at line 4 "),
]


def test_c08_corrupt_nodes_conf_refuses_start(tmp_path):
    procs = []
    try:
        for i, (content, where) in enumerate(_CORRUPT):
            d = str(tmp_path / ("n%d" % i))
            os.mkdir(d)
            path = os.path.join(d, "nodes.conf")
            with open(path, "w") as f:
                f.write(content)
            os.utime(path, (1_000_000_000, 1_000_000_000))
            p = frtrio(workdir=d)
            p.start(wait=False)  # all at once: they only have to fail
            procs.append((p, path, content, where))
        for p, path, content, where in procs:
            rc, out = wait_exit(p)
            assert rc == 1, out
            assert b"Unrecoverable error: corrupted cluster config file" in out
            assert path.encode() in out and where in out, out
            with open(path) as f:
                assert f.read() == content  # not rewritten
            assert os.stat(path).st_mtime == 1_000_000_000
    finally:
        for p, *_ in procs:
            p.cleanup()


# --- one nodes.conf, two processes ----------------------------------------------------------


def test_c08_second_process_on_same_nodes_conf_refuses(tmp_path):
    d = str(tmp_path)
    first = frtrio(workdir=d).start()
    try:
        c = first.conn()
        assert c.cmd("CLUSTER", "ADDSLOTS", "1") == b"+OK\r\n"  # a save: the lock follows the file
        second = frtrio(workdir=d)
        second.start(wait=False)
        rc, out = wait_exit(second)
        second.stop()
        assert rc == 1 and LOCKED in out
        assert val(c, "CLUSTER", "MYID")  # the first one is unharmed
        if HAVE_REDIS:
            r = redis_node(workdir=d)
            r.start(wait=False)
            rc, out = wait_exit(r)
            r.stop()
            assert rc == 1 and LOCKED in out
    finally:
        first.cleanup()


@requires_redis
def test_c08_frtrio_refuses_nodes_conf_held_by_redis(tmp_path):
    d = str(tmp_path)
    r = redis_node(workdir=d).start()
    try:
        f = frtrio(workdir=d)
        f.start(wait=False)
        rc, out = wait_exit(f)
        f.stop()
        assert rc == 1 and LOCKED in out
    finally:
        r.cleanup()


# --- startup reconciliation from real data ------------------------------------------------------


def _resp(*args) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def _aof_with(d: str, db1: bool) -> None:
    """An AOF directory in Redis 7.0's layout (manifest, empty base, incr)
    holding keys in slots 12182, 5061 and 0 of db 0, and one key in db 1."""
    ad = os.path.join(d, "appendonlydir")
    os.mkdir(ad)
    with open(os.path.join(ad, "appendonly.aof.manifest"), "w") as f:
        f.write("file appendonly.aof.1.base.aof seq 1 type b\n"
                "file appendonly.aof.1.incr.aof seq 1 type i\n")
    open(os.path.join(ad, "appendonly.aof.1.base.aof"), "wb").close()
    cmds = _resp("SELECT", "0")
    for k in ("foo", "{bar}1", "06S"):
        cmds += _resp("SET", k, "v")
    if db1:
        cmds += _resp("SELECT", "1") + _resp("SET", "k", "v")
    with open(os.path.join(ad, "appendonly.aof.1.incr.aof"), "wb") as f:
        f.write(cmds)


def test_c08_keys_outside_db0_refuse_start(tmp_path):
    """(redis-server 7.0.15 cannot refuse here: its AOF client's SELECT 1 is
    refused in cluster mode and the keys land in db 0; an RDB with db 1 keys
    crashes it. frtrio keeps the keys where they were written and refuses,
    as contract C08 asks.)"""
    d = str(tmp_path)
    _aof_with(d, db1=True)
    p = frtrio(workdir=d, extra=["--appendonly", "yes"])
    try:
        p.start(wait=False)
        rc, out = wait_exit(p)
        assert rc == 1
        assert (b"You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting."
                in out)
    finally:
        p.cleanup()


def test_c08_reconciliation_claims_and_imports(tmp_path):
    d = str(tmp_path)
    _aof_with(d, db1=False)
    port = free_port()
    _seed_conf(d, port)  # B owns 8192-16383 (foo's slot 12182); 0 and 5061 unbound
    p = frtrio(workdir=d, port=port, extra=["--appendonly", "yes"]).start()
    try:
        c = p.conn()
        mine = node_fields(val(c, "CLUSTER", "NODES"))[ID_ME]
        assert mine[4] == ("0", str(key_slot(b"bar")), "[12182-<-%s]" % ID_B)
        with open(os.path.join(d, "nodes.conf"), "rb") as f:
            saved = f.read()
        assert node_fields(saved)[ID_ME] == mine  # saved at once
        assert val(c, "DBSIZE") == b"3"  # nothing deleted
        assert val(c, "CLUSTER", "COUNTKEYSINSLOT", "12182") == b"1"
        with open(p.log_path, "rb") as f:
            log = f.read()
        assert b"I have keys for unassigned slot 0. Taking responsibility for it." in log
        assert (b"I have keys for slot 12182, but the slot is assigned to another node. "
                b"Setting it to importing state.") in log
    finally:
        p.cleanup()
