"""Replication interop with real processes (spec §8.1, §8.2): a
redis-server 7.0.15 replica of an frtrio master, and an frtrio replica of a
redis-server master: full sync, live stream, partial resync after a killed
link, WAIT, and the same dataset on both sides after a random write load of
every data type."""

from __future__ import annotations

import random
import threading
import time

import pytest
from support import HAVE_REDIS, ServerProc, encode_request, wait_for

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]




def link_up(r):
    return r.info("replication").get("master_link_status") == "up"


def dataset(r, dbs=(0, 1, 3)):
    """Every key of these dbs with its type, value and absolute expire time."""
    out = {}
    for db in dbs:
        r.execute_command("SELECT", db)
        for k in r.scan_iter(count=1000):
            t = r.type(k).decode()
            if t == "string":
                v = r.get(k)
            elif t == "list":
                v = r.lrange(k, 0, -1)
            elif t == "hash":
                v = sorted(r.hgetall(k).items())
            elif t == "set":
                v = sorted(r.smembers(k))
            elif t == "zset":
                v = r.zrange(k, 0, -1, withscores=True)
            elif t == "stream":
                v = [(i, sorted(f.items())) for i, f in r.xrange(k)]
            else:
                v = None
            out[(db, k)] = (t, v, r.execute_command("PEXPIRETIME", k))
    r.execute_command("SELECT", 0)
    return out


def random_load(r, n, seed):
    """Writes of every type, in several dbs, with MULTI/EXEC and TTLs."""
    rnd = random.Random(seed)
    p = r.pipeline(transaction=False)
    for i in range(n):
        db = rnd.choice((0, 0, 0, 1, 3))
        p.execute_command("SELECT", db)
        k = "k%d" % rnd.randrange(300)
        op = rnd.randrange(16)
        key = "%s:%s" % (["str", "list", "hash", "set", "zset", "stream"][op % 6], k)
        if op % 6 == 0:
            p.execute_command(rnd.choice(["SET", "APPEND"]), key, "v%d" % i)
            if rnd.random() < 0.2:
                p.execute_command("INCRBYFLOAT", "f:" + k, "1.5")
            if rnd.random() < 0.1:
                p.execute_command("SET", key, "x", "EX", 1000)
        elif op % 6 == 1:
            p.execute_command(rnd.choice(["RPUSH", "LPUSH"]), key, *["e%d" % j for j in range(3)])
            if rnd.random() < 0.3:
                p.execute_command("LPOP", key)
        elif op % 6 == 2:
            p.execute_command("HSET", key, "f%d" % rnd.randrange(20), i)
            if rnd.random() < 0.2:
                p.execute_command("HINCRBYFLOAT", key, "fl", "0.25")
        elif op % 6 == 3:
            p.execute_command("SADD", key, *[rnd.randrange(50) for _ in range(3)])
            if rnd.random() < 0.2:
                p.execute_command("SPOP", key)
        elif op % 6 == 4:
            p.execute_command("ZADD", key, rnd.randrange(100), "m%d" % rnd.randrange(30))
            if rnd.random() < 0.2:
                p.execute_command("ZINCRBY", key, 2, "m1")
        else:
            p.execute_command("XADD", key, "*", "f", i)
        if rnd.random() < 0.05:
            p.execute_command("EXPIRE", key, 10000)
        if rnd.random() < 0.03:
            p.execute_command("DEL", key)
        if rnd.random() < 0.05:
            p.execute_command("MULTI")
            p.execute_command("SET", "tx:" + k, i)
            p.execute_command("INCR", "cnt")
            p.execute_command("EXEC")
    p.execute_command("SELECT", 0)
    p.execute()


def offsets_equal(master, replica):
    return (master.info("replication")["master_repl_offset"]
            == replica.info("replication")["master_repl_offset"])


@pytest.fixture
def frtrio_master_redis_replica():
    m = ServerProc("frtrio").start()
    s = None
    try:
        r = m.client()
        random_load(r, 1500, 1)
        s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
        rs = s.client()
        wait_for(lambda: link_up(rs), what="redis replica link up")
        yield m, r, s, rs
    finally:
        if s is not None:
            s.cleanup()
        m.cleanup()


@pytest.fixture
def redis_master_frtrio_replica():
    m = ServerProc("redis").start()
    s = None
    try:
        r = m.client()
        random_load(r, 1500, 2)
        s = ServerProc("frtrio", ["--replicaof", "127.0.0.1", str(m.port)]).start()
        rs = s.client()
        wait_for(lambda: link_up(rs), what="frtrio replica link up")
        yield m, r, s, rs
    finally:
        if s is not None:
            s.cleanup()
        m.cleanup()


def _full_sync_stream_and_digest(m, r, s, rs):
    # full sync: the same dataset
    assert r.dbsize() > 100
    wait_for(lambda: offsets_equal(r, rs), what="offsets equal")
    assert dataset(r) == dataset(rs)
    # live stream, every type, several dbs, MULTI/EXEC
    random_load(r, 1500, 3)
    wait_for(lambda: offsets_equal(r, rs), what="offsets equal after load")
    assert dataset(r) == dataset(rs)
    assert r.execute_command("DEBUG", "DIGEST") == rs.execute_command("DEBUG", "DIGEST")
    # WAIT: the write is acknowledged by the one replica
    r.set("waited", "1")
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert rs.get("waited") == b"1"
    assert r.execute_command("WAIT", 2, 300) == 1
    # ROLE on both sides
    role = r.execute_command("ROLE")
    assert role[0] == b"master" and len(role[2]) == 1
    rrole = rs.execute_command("ROLE")
    assert rrole[0] == b"slave" and rrole[3] == b"connected" and rrole[2] == m.port


def test_redis_replica_of_frtrio_master_full_sync_stream_wait(frtrio_master_redis_replica):
    _full_sync_stream_and_digest(*frtrio_master_redis_replica)


def test_frtrio_replica_of_redis_master_full_sync_stream_wait(redis_master_frtrio_replica):
    _full_sync_stream_and_digest(*redis_master_frtrio_replica)


def _partial_after_kill(r, rs, kill_on_replica: bool):
    st0 = r.info("stats")
    rst0 = rs.info("stats")
    if kill_on_replica:
        assert rs.execute_command("CLIENT", "KILL", "TYPE", "master") == 1
    else:
        assert r.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
    random_load(r, 300, 4)  # written while the link may be down
    wait_for(lambda: link_up(rs) and offsets_equal(r, rs), what="link back, offsets equal")
    st = r.info("stats")
    assert st["sync_partial_ok"] == st0["sync_partial_ok"] + 1
    assert st["sync_full"] == st0["sync_full"]
    assert rs.info("stats")["sync_full"] == rst0["sync_full"]
    assert dataset(r) == dataset(rs)


def test_redis_replica_partial_resync_after_client_kill_type_master(frtrio_master_redis_replica):
    m, r, s, rs = frtrio_master_redis_replica
    _partial_after_kill(r, rs, kill_on_replica=True)
    _partial_after_kill(r, rs, kill_on_replica=False)


def test_frtrio_replica_partial_resync_after_client_kill_type_replica(redis_master_frtrio_replica):
    m, r, s, rs = redis_master_frtrio_replica
    _partial_after_kill(r, rs, kill_on_replica=False)
    _partial_after_kill(r, rs, kill_on_replica=True)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_replica_errors_side_by_side(kind):
    """READONLY, the WAIT error, REPLICAOF replies: the same on both servers."""
    with ServerProc("redis") as m, ServerProc(kind) as s:
        rs = s.client()
        c = s.conn()
        assert c.cmd("REPLICAOF", "127.0.0.1", "70000") == b"-ERR Invalid master port\r\n"
        assert c.cmd("REPLICAOF", "127.0.0.1", "notaport") == b"-ERR Invalid master port\r\n"
        assert c.cmd("REPLCONF", "listening-port") == b"-ERR syntax error\r\n"
        assert c.cmd("REPLCONF", "nope", "1") == b"-ERR Unrecognized REPLCONF option: nope\r\n"
        assert c.cmd("REPLCONF") == b"+OK\r\n"
        assert c.cmd("ROLE") == b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
        assert c.cmd("REPLICAOF", "127.0.0.1", str(m.port)) == b"+OK\r\n"
        assert c.cmd("REPLICAOF", "127.0.0.1", str(m.port)) == \
            b"+OK Already connected to specified master\r\n"
        wait_for(lambda: link_up(rs), what="link up")
        assert c.cmd("SET", "a", "1") == b"-READONLY You can't write against a read only replica.\r\n"
        assert c.cmd("WAIT", "0", "0").startswith(b"-ERR WAIT cannot be used with replica instances")
        m.client().set("a", "from-master")
        wait_for(lambda: rs.get("a") == b"from-master", what="stream")
        assert c.cmd("REPLICAOF", "no", "one") == b"+OK\r\n"
        assert c.cmd("SET", "a", "2") == b"+OK\r\n"
        info = rs.info("replication")
        assert info["role"] == "master" and info["master_replid2"] != "0" * 40
        assert info["second_repl_offset"] > 0


def test_expired_keys_reach_the_replica_as_del(frtrio_master_redis_replica):
    """Lazy and active expiry on the frtrio master are streamed as DEL: the
    real replica, which never expires keys itself, ends with none of them."""
    m, r, s, rs = frtrio_master_redis_replica
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    r.set("lazy", "1", px=100)
    r.set("active", "1", px=100)
    wait_for(lambda: offsets_equal(r, rs), what="offsets")
    n0 = rs.dbsize()
    time.sleep(0.3)
    assert r.get("lazy") is None  # lazy expiry on the master
    wait_for(lambda: rs.dbsize() == n0 - 1, what="DEL of the lazily expired key")
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    wait_for(lambda: rs.dbsize() == n0 - 2, what="DEL of the actively expired key")
    assert dataset(r) == dataset(rs)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_min_replicas_and_stale_data_errors_side_by_side(kind):
    """-NOREPLICAS on a master short of good replicas (writes and EXEC with
    writes; reads still served) and -MASTERDOWN on a replica whose link is
    down with replica-serve-stale-data no."""
    from support import free_port

    with ServerProc(kind, ["--min-replicas-to-write", "1"]) as m:
        c = m.conn()
        assert c.cmd("SET", "a", "1") == b"-NOREPLICAS Not enough good replicas to write.\r\n"
        assert c.cmd("GET", "a") == b"$-1\r\n"
        assert c.cmd("MULTI") == b"+OK\r\n"
        assert c.cmd("SET", "a", "1") == b"-NOREPLICAS Not enough good replicas to write.\r\n"
        assert c.cmd("EXEC") == (b"-EXECABORT Transaction discarded because of previous "
                                 b"errors.\r\n")
        noreplicas = b"-NOREPLICAS Not enough good replicas to write.\r\n"
        # scripts: a flagged script is refused up front, an unflagged one at
        # its first write, a no-writes one runs
        assert c.cmd("EVAL", "redis.call('set','a','1')", "0") == (
            b"-NOREPLICAS Not enough good replicas to write. script: "
            b"2bd54cf896593e0f67829606ba9f4de698309825, on @user_script:1.\r\n")
        assert c.cmd("EVAL", "#!lua\nredis.call('set','a','1')", "0") == noreplicas
        assert c.cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0") == \
            b"$-1\r\n"
        lib = ("#!lua name=lib\nredis.register_function('f', "
               "function(k, a) return redis.call('set', k[1], 'x') end)")
        assert c.cmd("FUNCTION", "LOAD", lib) == noreplicas  # a write, too
        assert c.cmd("CONFIG", "SET", "min-replicas-to-write", "0") == b"+OK\r\n"
        assert c.cmd("FUNCTION", "LOAD", lib) == b"$3\r\nlib\r\n"
        assert c.cmd("CONFIG", "SET", "min-replicas-to-write", "1") == b"+OK\r\n"
        assert c.cmd("FCALL", "f", "1", "a") == noreplicas
        assert c.cmd("CONFIG", "SET", "min-replicas-to-write", "0") == b"+OK\r\n"
        assert c.cmd("SET", "a", "1") == b"+OK\r\n"
        assert m.client().info("replication")["role"] == "master"
    dead = free_port()
    # (started with serve-stale-data yes: the readiness PING would get -MASTERDOWN)
    with ServerProc(kind, ["--replicaof", "127.0.0.1", str(dead)]) as s:
        c = s.conn()
        assert c.cmd("CONFIG", "SET", "replica-serve-stale-data", "no") == b"+OK\r\n"
        masterdown = (b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is "
                      b"set to 'no'.\r\n")
        assert c.cmd("GET", "a") == masterdown
        assert c.cmd("PING") == masterdown
        readonly = b"-READONLY You can't write against a read only replica.\r\n"
        # a script is judged by the flags it declares (Redis's getCommandFlags)
        assert c.cmd("EVAL", "return 1", "0") == masterdown
        assert c.cmd("EVAL", "#!lua\nreturn 1", "0") == readonly
        assert c.cmd("EVAL", "#!lua flags=no-writes\nreturn 1", "0") == masterdown
        assert c.cmd("EVAL", "#!lua flags=allow-stale,no-writes\nreturn 1", "0") == b":1\r\n"
        assert c.cmd("EVAL", "#!lua flags=allow-stale\nreturn 1", "0") == readonly
        assert c.cmd("ROLE").startswith(b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n")
        assert c.cmd("CONFIG", "SET", "replica-serve-stale-data", "yes") == b"+OK\r\n"
        assert c.cmd("GET", "a") == b"$-1\r\n"
        assert c.cmd("EVAL", "#!lua\nreturn 1", "0") == readonly
        assert c.cmd("EVAL", "return redis.call('set','a','1')", "0") == (
            b"-READONLY You can't write against a read only replica. script: "
            b"67ed14c1cb086d8c2fcf91ebe13410ba087fd0f8, on @user_script:1.\r\n")
        info = s.client().info("replication")
        assert info["master_link_status"] == "down"
        assert info["master_link_down_since_seconds"] == -1


def test_backlog_resize_and_partial_resync_rules_on_frtrio_master():
    """CONFIG SET repl-backlog-size applies at once; a replica that asks for
    an offset beyond the master's gets a full resync (raw PSYNC, spec §5.2)."""
    with ServerProc("frtrio") as m:
        r = m.client()
        c = m.conn()
        assert c.cmd("REPLCONF", "capa", "eof", "capa", "psync2") == b"+OK\r\n"
        c.send(b"PSYNC ? -1\r\n")
        line = c.sock.recv(200)
        while line.strip(b"\n") == b"":  # keepalives while the diskless sync is delayed
            line = c.sock.recv(200)
        assert line.lstrip(b"\n").startswith(b"+FULLRESYNC ")
        line = line.lstrip(b"\n")
        rid = line.split()[1]
        r.config_set("repl-backlog-size", "32768")
        info = r.info("replication")
        assert info["repl_backlog_size"] == 32768 and info["repl_backlog_active"] == 1
        r.set("x", "1")
        off = wait_for(lambda: r.info("replication")["master_repl_offset"], what="offset")
        with m.conn() as c2:
            c2.cmd("REPLCONF", "capa", "psync2")
            c2.send(b"PSYNC %s %d\r\n" % (rid, off + 2))
            assert c2.sock.recv(200).startswith(b"+FULLRESYNC " + rid)
        with m.conn() as c3:
            c3.cmd("REPLCONF", "capa", "psync2")
            c3.send(b"PSYNC %s %d\r\n" % (rid, off + 1))
            assert c3.sock.recv(200) == b"+CONTINUE " + rid + b"\r\n"
        st = r.info("stats")
        assert st["sync_partial_ok"] == 1 and st["sync_partial_err"] == 1 and st["sync_full"] == 2


def test_chain_redis_frtrio_redis_with_masterauth():
    """redis master (requirepass) -> frtrio replica (masterauth) -> redis
    sub-replica: the frtrio replica proxies the stream byte for byte, so all
    three end with the same data and the same offset; a partial resync of
    the sub-replica goes through the frtrio replica's backlog."""
    with ServerProc("redis", ["--repl-diskless-sync-delay", "0"]) as m, \
            ServerProc("frtrio", ["--masterauth", "pw"]) as f, \
            ServerProc("redis", ["--masterauth", "pw2"]) as s:
        # (passwords set once started: the readiness PING would get -NOAUTH)
        m.client().config_set("requirepass", "pw")
        f.client().config_set("requirepass", "pw2")
        r = m.client(password="pw")
        rf = f.client(password="pw2")
        rs = s.client()
        random_load(r, 800, 5)
        assert rf.execute_command("REPLICAOF", "127.0.0.1", m.port) == b"OK"
        wait_for(lambda: link_up(rf), what="frtrio link up")
        assert rs.execute_command("REPLICAOF", "127.0.0.1", f.port) == b"OK"
        wait_for(lambda: link_up(rs), what="sub-replica link up")
        random_load(r, 800, 6)
        wait_for(lambda: offsets_equal(r, rf) and offsets_equal(r, rs), what="offsets equal")
        want = dataset(r)
        assert dataset(rf) == want
        assert dataset(rs) == want
        assert r.execute_command("WAIT", 1, 5000) == 1
        st0 = rf.info("stats")["sync_partial_ok"]
        rs.execute_command("CLIENT", "KILL", "TYPE", "master")
        random_load(r, 200, 7)
        wait_for(lambda: link_up(rs) and offsets_equal(r, rs), what="sub-replica back")
        assert rf.info("stats")["sync_partial_ok"] == st0 + 1
        assert dataset(rs) == dataset(r)


def _deterministic_load(r):
    p = r.pipeline(transaction=False)
    for db in (0, 2):
        p.execute_command("SELECT", db)
        p.set("s", "v")
        p.set("n", 12345)
        p.set("ttl", "x", ex=1000)
        p.rpush("l", "a", "b", 1, 2, "c" * 100)
        p.sadd("set", "x", "y", "z")
        p.sadd("iset", 1, 2, 3, -5)
        p.hset("h", mapping={"f1": "v1", "f2": 2})
        p.hset("hbig", mapping={"f%d" % i: "v" * 70 for i in range(5)})
        p.zadd("z", {"a": 1.5, "b": -2, "c": 1e20, "d": 3})
        p.zadd("zbig", {"m%d" % i: i / 7 for i in range(200)})
        p.zadd("zinf", {"p": float("inf"), "q": float("-inf")})
        p.execute_command("XADD", "st", "1-1", "f", "v", "g", "w")
        p.execute_command("XADD", "st", "2-5", "f", "v2")
        p.execute_command("XADD", "st", "3-0", "other", "x")
        p.execute_command("XDEL", "st", "2-5")
    p.execute_command("SELECT", 0)
    p.execute()


def test_debug_digest_equals_redis_server():
    """DEBUG DIGEST and DEBUG DIGEST-VALUE: the same data gives the same
    digests on frtrio and redis-server (Redis's SHA1 xor/mix scheme)."""
    with ServerProc("frtrio") as f, ServerProc("redis") as rd:
        rf, rr = f.client(), rd.client()
        assert rf.execute_command("DEBUG", "DIGEST") == b"0" * 40
        assert rr.execute_command("DEBUG", "DIGEST") == b"0" * 40
        _deterministic_load(rf)
        _deterministic_load(rr)
        keys = ["s", "n", "ttl", "l", "set", "iset", "h", "hbig", "z", "zbig", "zinf", "st", "nokey"]
        assert (rf.execute_command("DEBUG", "DIGEST-VALUE", *keys)
                == rr.execute_command("DEBUG", "DIGEST-VALUE", *keys))
        assert rf.execute_command("DEBUG", "DIGEST") == rr.execute_command("DEBUG", "DIGEST")
        rf.execute_command("SELECT", 0)


def test_digest_equal_master_and_replica_both_ways(frtrio_master_redis_replica):
    m, r, s, rs = frtrio_master_redis_replica
    random_load(r, 1000, 8)
    wait_for(lambda: offsets_equal(r, rs), what="offsets equal")
    assert r.execute_command("DEBUG", "DIGEST") == rs.execute_command("DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "DIGEST") != b"0" * 40


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_replica_output_buffer_limit_drops_a_stalled_replica(kind):
    """client-output-buffer-limit replica: a replica that stops reading
    (SIGSTOP) while its master writes is disconnected once its unsent stream
    passes the hard limit (the master keeps serving); resumed, it reconnects and ends with its master's data. Both
    kinds of master, a redis-server replica."""
    import os
    import signal

    m = ServerProc(kind, ["--client-output-buffer-limit", "replica 256kb 0 0"]).start()
    s = None
    try:
        r = m.client()
        s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
        rs = s.client()
        wait_for(lambda: link_up(rs), what="replica link up")
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            big = "x" * 20_000
            i = 0
            # 20 kB a write until the master gives up on the replica (the
            # kernel's socket buffers take several MB first)
            while r.info("replication")["connected_slaves"] and i < 3000:
                r.set("k%d" % (i % 400), big)
                i += 1
            assert i < 3000, "the stalled replica was never dropped"
            assert r.ping()
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        wait_for(lambda: link_up(rs) and offsets_equal(r, rs), 30, "replica back in sync")
        assert rs.get("k%d" % ((i - 1) % 400)) == big.encode()
        assert r.dbsize() == rs.dbsize() == min(i, 400)
    finally:
        if s is not None:
            s.cleanup()
        m.cleanup()


def _read_until(sock, pred, timeout=20.0):
    sock.settimeout(timeout)
    buf = b""
    while not pred(buf):
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    return buf


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_diskless_full_sync_framing_delay_and_first_ack(kind):
    """repl-diskless-sync with a delay: newlines while the sync waits, then
    +FULLRESYNC, `$EOF:<mark>` framing ending with the mark, and the stream
    held back until the replica's first REPLCONF ACK; the same on both."""
    with ServerProc(kind, ["--repl-diskless-sync-delay", "2"]) as m:
        r = m.client()
        r.set("k", "v")
        c = m.conn()
        assert c.cmd("REPLCONF", "capa", "eof", "capa", "psync2") == b"+OK\r\n"
        t0 = time.monotonic()
        c.send(b"PSYNC ? -1\r\n")
        def has_mark(b):
            i = b.find(b"\r\n$EOF:")
            return i >= 0 and len(b) >= i + 7 + 40 + 2

        got = _read_until(c.sock, has_mark)
        waited = time.monotonic() - t0
        assert got.startswith(b"\n"), got[:20]  # a keepalive came first
        assert waited >= 1.5
        i = got.find(b"\r\n$EOF:")
        assert got[:i].lstrip(b"\n").startswith(b"+FULLRESYNC ")
        mark = got[i + 7:i + 47]
        assert got[i + 47:i + 49] == b"\r\n"
        body = got[i + 49:]
        if not body.endswith(mark):
            body += _read_until(c.sock, lambda b: (body + b).endswith(mark))
        assert body.startswith(b"REDIS0010") and body.endswith(mark)
        r.set("after", "1")  # not sent before the first ACK
        c.sock.settimeout(0.5)
        with pytest.raises(OSError):
            c.sock.recv(100)
        c.send(b"REPLCONF ACK 0\r\n")
        stream = _read_until(c.sock, lambda b: b"after" in b, timeout=5)
        assert b"SET" in stream and b"after" in stream
        c.close()


def _fake_master(payload: bytes, stop, close_after: bool = False):
    """A master that answers the handshake and sends ``payload`` as a
    diskless ($EOF) full sync (closing the link right after the payload's
    first bytes with ``close_after``), then keeps the link open."""
    import socket as _s
    import threading

    import hiredis

    srv = _s.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.settimeout(0.2)
            reader = hiredis.Reader()
            psync = False
            while not stop.is_set() and not psync:
                try:
                    d = conn.recv(4096)
                except OSError:
                    continue
                if not d:
                    break
                reader.feed(d)
                while (cmd := reader.gets()) is not False:
                    name = cmd[0].upper()
                    if name == b"PSYNC":
                        psync = True
                        break
                    try:
                        conn.sendall(b"+PONG\r\n" if name == b"PING" else b"+OK\r\n")
                    except OSError:
                        break
            mark = b"x" * 40
            try:
                if psync:
                    conn.sendall(b"+FULLRESYNC " + b"a" * 40 + b" 0\r\n$EOF:" + mark
                                 + b"\r\n" + payload + (b"" if close_after else mark))
            except OSError:
                pass
            if close_after:
                conn.close()
                continue
            while not stop.is_set():
                try:
                    if not conn.recv(4096):
                        break
                except OSError:
                    continue
            conn.close()
        srv.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return port, th


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_a_sync_cut_mid_transfer_keeps_the_old_dataset(kind):
    """A master that dies in the middle of a diskless payload: the
    replica keeps serving its previous dataset, in every
    repl-diskless-load mode, on both servers."""
    import threading

    stop = threading.Event()
    port, th = _fake_master(b"REDIS0010\xfa\x09redis-ver", stop, close_after=True)
    try:
        for mode in ("swapdb", "disabled"):
            with ServerProc(kind, ["--repl-diskless-load", mode]) as s:
                r = s.client()
                r.set("old", "data")
                r.execute_command("REPLICAOF", "127.0.0.1", port)
                time.sleep(1.5)
                assert r.get("old") == b"data", (mode, kind)
                r.execute_command("REPLICAOF", "NO", "ONE")
    finally:
        stop.set()
        th.join(5)


def test_swapdb_keeps_the_old_dataset_when_the_payload_does_not_load():
    """repl-diskless-load swapdb: a payload that arrived whole but does not
    load (an unknown value type) leaves the replica's previous dataset in
    place; with the default (disabled) the dataset was flushed first.
    redis-server 7.0 exits on such a payload in either mode, which frtrio
    does not copy (bad input gets an error and a retry, not a crash)."""
    import threading

    stop = threading.Event()
    bad = b"REDIS0010\xfe\x00\x63\x03key\x05value\xff" + b"\x00" * 8  # an unknown type
    port, th = _fake_master(bad, stop)
    try:
        for mode, kept in (("swapdb", True), ("disabled", False)):
            with ServerProc("frtrio", ["--repl-diskless-load", mode]) as s:
                r = s.client()
                r.set("old", "data")
                r.execute_command("REPLICAOF", "127.0.0.1", port)
                time.sleep(1.5)
                r.execute_command("REPLICAOF", "NO", "ONE")
                assert (r.get("old") == b"data") is kept, mode
                log = open(s.log_path).read()
                assert "Failed trying to load the MASTER synchronization DB" in log
    finally:
        stop.set()
        th.join(5)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_shutdown_waits_for_lagging_replicas_and_abort_cancels(kind):
    """SHUTDOWN (without NOW) on a master whose replica lags: writes wait,
    reads go on, SHUTDOWN ABORT keeps the node running; with the replica
    back the shutdown completes once it has acknowledged everything. The
    same on both servers."""
    import os
    import signal as _sig

    m = ServerProc(kind, ["--shutdown-timeout", "30"]).start()
    s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
    try:
        rm, rs = m.client(), s.client()
        wait_for(lambda: link_up(rs), what="link up")
        c = m.conn()
        assert c.cmd("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
        assert c.cmd("SHUTDOWN", "NOW", "ABORT") == b"-ERR syntax error\r\n"
        assert c.cmd("SHUTDOWN", "SAVE", "NOSAVE") == b"-ERR syntax error\r\n"
        os.kill(s.proc.pid, _sig.SIGSTOP)
        try:
            rm.set("k", "v")  # the replica cannot acknowledge it
            c2 = m.conn()
            c2.send(b"SHUTDOWN NOSAVE\r\n")
            time.sleep(1.0)
            assert m.proc.poll() is None  # still running, waiting
            assert rm.get("k") == b"v"
            info = rm.info("replication")
            assert info["role"] == "master"
            assert c.cmd("SHUTDOWN", "ABORT") == b"+OK\r\n"
            assert rm.set("k2", "v2")  # writes flow again
        finally:
            os.kill(s.proc.pid, _sig.SIGCONT)
        wait_for(lambda: rs.get("k2") == b"v2", what="replica caught up")
        c3 = m.conn()
        c3.send(b"SHUTDOWN NOSAVE\r\n")
        m.proc.wait(15)  # nothing lags: it stops at once
        log = open(m.log_path).read()
        assert "Waiting for replicas before shutting down." in log
        assert "Shutdown manually aborted." in log
        assert "1 of 1 replicas are in sync when shutting down." in log
    finally:
        s.cleanup()
        m.cleanup()


def _empty_rdb() -> bytes:
    """An empty RDB payload, as redis-server sends it to SYNC."""
    with ServerProc("redis") as m:
        c = m.conn()
        c.send(b"SYNC\r\n")
        buf = _read_until(c.sock, lambda b: b.lstrip(b"\n").startswith(b"$")
                          and b"\r\n" in b.lstrip(b"\n")
                          and len(b.lstrip(b"\n")) >= b.lstrip(b"\n").index(b"\r\n") + 2
                          + int(b.lstrip(b"\n")[1:b.lstrip(b"\n").index(b"\r\n")]))
        b = buf.lstrip(b"\n")
        i = b.index(b"\r\n")
        return b[i + 2:i + 2 + int(b[1:i])]


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_replica_offset_moves_past_a_transaction_only_at_exec(kind):
    """A master's stream stops in the middle of a MULTI block: the
    replica's ACKed offset stays before the MULTI, and when the link
    breaks there it asks PSYNC from the MULTI again (nothing of the block
    is lost); the same on both servers."""
    import socket as _s

    import hiredis

    rdb = _empty_rdb()
    srv = _s.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    srv.settimeout(20)

    def enc(*args):
        return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)

    def handshake(conn):
        reader = hiredis.Reader()
        while True:
            reader.feed(conn.recv(4096))
            while (cmd := reader.gets()) is not False:
                if cmd[0].upper() == b"PSYNC":
                    return cmd
                conn.sendall(b"+PONG\r\n" if cmd[0].upper() == b"PING" else b"+OK\r\n")

    def acks(conn, seconds):
        got = b""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conn.settimeout(max(0.01, end - time.monotonic()))
            try:
                d = conn.recv(4096)
            except OSError:
                break
            if not d:
                break
            got += d
        return [int(x) for x in __import__("re").findall(rb"ACK\r\n\$\d+\r\n(\d+)", got)]

    select = enc(b"SELECT", b"0")
    block1 = enc(b"MULTI") + enc(b"SET", b"a", b"1")
    block2 = enc(b"SET", b"b", b"2") + enc(b"EXEC")
    with ServerProc(kind) as s:
        r = s.client()
        r.execute_command("REPLICAOF", "127.0.0.1", port)
        conn, _ = srv.accept()
        handshake(conn)
        conn.sendall(b"+FULLRESYNC " + b"f" * 40 + b" 0\r\n$%d\r\n" % len(rdb) + rdb)
        conn.sendall(select + block1)
        assert max(acks(conn, 2.5)) == len(select)  # not past the MULTI
        conn.close()  # the link breaks inside the transaction
        conn2, _ = srv.accept()
        ask = handshake(conn2)
        assert ask[1:3] == [b"f" * 40, b"%d" % (len(select) + 1)]
        conn2.sendall(b"+CONTINUE\r\n" + block1 + block2)
        total = len(select) + len(block1) + len(block2)
        assert max(acks(conn2, 2.5)) == total
        assert r.get("a") == b"1" and r.get("b") == b"2"
        r.execute_command("REPLICAOF", "NO", "ONE")
        conn2.close()
    srv.close()


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_paused_replica_reads_but_does_not_apply_its_masters_writes(kind):
    """CLIENT PAUSE WRITE on a replica holds its master's writes like any
    client's (upstream unit/pause 'Test when replica paused, offset would
    not grow'): the stream is still read (slave_read_repl_offset), not
    applied (slave_repl_offset, the key), until CLIENT UNPAUSE; the same for
    a redis-server replica and an frtrio replica of a redis-server master."""
    with ServerProc("redis") as m, ServerProc(kind) as s:
        rm, rs = m.client(), s.client()
        rs.execute_command("REPLICAOF", "127.0.0.1", str(m.port))
        wait_for(lambda: link_up(rs), what="link up")
        rm.set("foo", "bar")
        old = rm.info("replication")["master_repl_offset"]
        wait_for(lambda: rs.info("replication")["slave_repl_offset"] == old, what="caught up")
        rs.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        rm.set("foo2", "bar2")
        now = rm.info("replication")["master_repl_offset"]
        wait_for(lambda: rs.info("replication")["slave_read_repl_offset"] == now,
                 what="stream read while paused")
        time.sleep(0.2)
        info = rs.info("replication")
        assert info["slave_repl_offset"] == old
        assert rs.get("foo2") is None
        assert rs.info("clients")["blocked_clients"] == 1
        rs.execute_command("CLIENT", "UNPAUSE")
        wait_for(lambda: rs.info("replication")["slave_repl_offset"] == now, what="applied")
        assert rs.get("foo2") == b"bar2"
        assert rs.info("clients")["blocked_clients"] == 0


def test_c16_redis_cli_functions_rdb_holds_only_the_functions(tmp_path):
    """redis-cli --functions-rdb (REPLCONF rdb-filter-only functions): the
    payload holds the function libraries and no key; --rdb holds both. The
    same on both servers (upstream integration/redis-cli 'Dumping an RDB -
    functions only: yes')."""
    import shutil
    import subprocess

    cli = shutil.which("redis-cli")
    lib = "#!lua name=fnrdblib\nredis.register_function('fnrdbfunc', function() return 123 end)"
    # (servers of its own: the dumps leave redis-server's background save
    # child running for a moment, which INFO's tests would see)
    for kind in ("frtrio", "redis"):
        proc = ServerProc(kind).start()
        r = proc.client()
        r.set("fnrdb-key", "v")
        r.execute_command("FUNCTION", "LOAD", "REPLACE", lib)
        try:
            for flag, want_key in (("--functions-rdb", False), ("--rdb", True)):
                path = tmp_path / ("%s%s.rdb" % (proc.kind, flag))
                out = subprocess.run([cli, "-p", str(proc.port), flag, str(path)],
                                     capture_output=True, text=True, timeout=60)
                assert "Transfer finished with success" in out.stdout + out.stderr, out
                data = path.read_bytes()
                assert b"name=fnrdblib" in data, (proc.kind, flag)
                assert (b"fnrdb-key" in data) == want_key, (proc.kind, flag)
        finally:
            proc.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_c16_a_stalled_replicas_buffer_is_used_memory_not_counted_for_eviction(kind):
    """A replica that stops reading: the stream it has not taken shows in
    used_memory, mem_clients_slaves and mem_not_counted_for_evict, and does
    not make keys go under maxmemory (upstream unit/maxmemory 'slave buffer
    are counted correctly', 'replica buffer don't induce eviction')."""
    import signal as _signal

    with ServerProc(kind) as m, ServerProc("redis") as s:
        rm, rs = m.client(), s.client()
        for i in range(100):
            rm.setrange("key:%d" % i, 100_000, "asdf")
        rm.config_set("repl-backlog-size", 10 * 1024)  # (a backlog still growing would count)
        rm.config_set("client-output-buffer-limit", "replica 100000000 100000000 300")
        rm.config_set("latency-tracking", "no")
        rm.config_set("slowlog-log-slower-than", -1)
        rs.execute_command("REPLICAOF", "127.0.0.1", str(m.port))
        wait_for(lambda: link_up(rs), what="link up")
        wait_for(lambda: offsets_equal(rm, rs), what="caught up")
        info = rm.info("memory")
        base = info["used_memory"] - info["mem_not_counted_for_evict"]
        rm.config_set("maxmemory", base + 512 * 1024)  # (room for a 50 KB request; not 10 MB)
        rm.config_set("maxmemory-policy", "allkeys-random")
        s.proc.send_signal(_signal.SIGSTOP)
        try:
            for _ in range(200):  # (one at a time: a pipeline's query buffer would count)
                rm.setrange("key:0", 0, "A" * 50_000)
            info = rm.info("memory")
            assert info["mem_clients_slaves"] > 2 * 1024 * 1024, info
            assert info["mem_not_counted_for_evict"] > 2 * 1024 * 1024, info
            counted = info["used_memory"] - info["mem_not_counted_for_evict"]
            assert counted < base + 1024 * 1024, (counted, base)
            assert rm.dbsize() == 100
            assert rm.info("stats")["evicted_keys"] == 0
        finally:
            s.proc.send_signal(_signal.SIGCONT)
            rm.config_set("maxmemory", 0)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_c11_link_killed_before_a_debug_sleep_is_down_since_the_kill(kind):
    """A replica kills its master link and sleeps in the same EXEC (upstream
    cluster 06-slave-stop-cond's trick) while its master, paused, keeps the
    replica from reconnecting. The link counts as down since the kill, not
    since the replica woke: what the election's data age reads. The
    master's writes reach the replica right up to the sleep, so its stream
    task may meet the killed client first (that race once lost
    the kill's time, and a stale replica won its election)."""
    with ServerProc("redis", ["--repl-ping-replica-period", "1"]) as m, ServerProc(kind) as s:
        rs = s.client()
        s.conn().cmd("REPLICAOF", "127.0.0.1", str(m.port))
        wait_for(lambda: link_up(rs), what="link up")
        c = s.conn()
        stop = threading.Event()

        def writes():  # (the replica's stream task always has data to read)
            w = m.conn()
            while not stop.is_set():
                w.cmd("SET", "k", "v" * 100)

        t = threading.Thread(target=writes)
        t.start()
        try:
            time.sleep(0.3)
            for args in (("MULTI",), ("CLIENT", "KILL", "TYPE", "master"), ("DEBUG", "SLEEP", "3")):
                c.cmd(*args)
            c.send(encode_request(("EXEC",)))
            time.sleep(0.3)
        finally:
            stop.set()
            t.join()
        m.conn().cmd("CLIENT", "PAUSE", "20000")
        assert c.read_reply() == b"*2\r\n:1\r\n+OK\r\n"
        time.sleep(0.5)
        info = rs.info("replication")
        assert info["master_link_status"] == "down"
        assert info["master_link_down_since_seconds"] >= 3, info
