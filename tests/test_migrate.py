"""MIGRATE between a frtrio and a redis-server process (both directions), and
MIGRATE's replies compared with redis-server's: the same MIGRATE is run by
frtrio and by redis-server towards a third server (a redis-server target),
for successes, target errors (BUSYKEY, AUTH, db out of range), argument
errors, a dead port, an unknown host, and a target that never answers
(timeout). The engine side of the design (the job the shell carries out, the
guard that keeps a key changed in flight, DEL propagation, RESTORE-ASKING in
cluster mode) is checked without sockets.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import requires_redis
import support
from support import ServerProc

pytestmark = requires_redis


@pytest.fixture(scope="module")
def target():
    p = ServerProc("redis").start()
    yield p
    p.cleanup()


def content(cli, key):
    t = cli.type(key).decode()
    if t == "string":
        return t, cli.get(key)
    if t == "list":
        return t, cli.lrange(key, 0, -1)
    if t == "set":
        return t, sorted(cli.smembers(key))
    if t == "hash":
        return t, sorted(cli.hgetall(key).items())
    if t == "zset":
        return t, cli.zrange(key, 0, -1, withscores=True)
    return t, None


def fill(cli, prefix=""):
    cli.set(prefix + "str", "value")
    cli.set(prefix + "int", "12345")
    cli.set(prefix + "big", b"abc" * 20000)
    cli.rpush(prefix + "list", *[str(i) for i in range(2000)])
    cli.sadd(prefix + "iset", *range(100))
    cli.sadd(prefix + "set", *["m%d" % i for i in range(700)])
    cli.hset(prefix + "hash", mapping={"f%d" % i: "v%d" % i for i in range(50)})
    cli.hset(prefix + "bighash", mapping={"f%d" % i: "v" * 100 for i in range(600)})
    cli.zadd(prefix + "zset", {"a": 1, "b": 2.5, "c": float("-inf")})
    cli.zadd(prefix + "bigzset", {"m%d" % i: i / 3 for i in range(300)})
    cli.pexpire(prefix + "str", 100000)
    cli.pexpire(prefix + "zset", 100000)
    return [prefix + k for k in ("str", "int", "big", "list", "iset", "set", "hash",
                                 "bighash", "zset", "bigzset")]


def test_migrate_both_directions(frtrio_proc, redis_proc, diff):
    f = frtrio_proc.client()
    r = redis_proc.client()
    try:
        keys = fill(f)
        expect = {k: content(f, k) for k in keys}
        # one key, then the rest with KEYS, frtrio -> redis
        assert f.execute_command("MIGRATE", "127.0.0.1", redis_proc.port, "str", 0, 5000) == b"OK"
        assert f.execute_command("MIGRATE", "127.0.0.1", redis_proc.port, "", 0, 5000,
                                 "KEYS", *keys[1:], "nosuchkey") == b"OK"
        for k in keys:
            assert f.exists(k) == 0, k
            assert content(r, k) == expect[k], k
        assert 90000 < r.pttl("str") <= 100000
        assert 90000 < r.pttl("zset") <= 100000
        assert r.pttl("list") == -1
        # and back, redis -> frtrio, into another db, with COPY
        assert r.execute_command("MIGRATE", "127.0.0.1", frtrio_proc.port, "", 3, 5000,
                                 "COPY", "KEYS", *keys) == b"OK"
        f.execute_command("SELECT", 3)
        fc = frtrio_proc.client(db=3)
        for k in keys:
            assert content(fc, k) == expect[k], k
            assert r.exists(k) == 1
        assert 90000 < fc.pttl("str") <= 100000
        # REPLACE over existing keys, without COPY: they leave redis
        assert r.execute_command("MIGRATE", "127.0.0.1", frtrio_proc.port, "", 3, 5000,
                                 "REPLACE", "KEYS", *keys) == b"OK"
        assert r.exists(*keys) == 0
        fc.close()
    finally:
        f.flushall()
        r.flushall()
        f.close()
        r.close()


def _run_both(frtrio_proc, redis_proc, target, setup, cmd, check=None):
    """Run the same MIGRATE from frtrio and from redis-server to ``target``;
    the replies and the resulting source/target states must be equal."""
    results = []
    for src in (frtrio_proc, redis_proc):
        s = src.client()
        t = target.client()
        s.flushall()
        t.flushall()
        setup(s, t)
        conn = src.conn()
        reply = conn.cmd(*[a.replace("$TPORT", str(target.port)) if isinstance(a, str) else a
                           for a in cmd])
        conn.close()
        state = (sorted(s.keys()), sorted(t.keys()))
        extra = check(s, t) if check else None
        results.append((reply, state, extra))
        s.flushall()
        t.flushall()
        s.close()
        t.close()
    assert results[0] == results[1], (cmd, results)
    return results[0][0]


def test_migrate_replies_match_redis(frtrio_proc, redis_proc, target):
    def plain(s, t):
        s.set("a", "1")
        s.set("b", "2")
        s.rpush("c", "x")

    run = lambda setup, *cmd, check=None: _run_both(  # noqa: E731
        frtrio_proc, redis_proc, target, setup, cmd, check)
    assert run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000") == b"+OK\r\n"
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "zz", "0", "1000")  # NOKEY
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "", "0", "1000", "KEYS", "zz", "yy")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "", "0", "1000", "KEYS", "a", "zz", "c")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000", "KEYS", "b")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000", "BADOPT")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000", "AUTH")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000", "AUTH2", "u")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "x")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "x", "1000")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "-5")  # 1000 ms instead
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "99", "1000")  # target db error
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "5", "1000", "COPY")
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "-1", "1000")  # no SELECT at all
    run(plain, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000", "AUTH", "pw")

    def busy(s, t):
        plain(s, t)
        t.set("b", "there")

    # BUSYKEY for one key: the others move, that one stays
    run(busy, "MIGRATE", "127.0.0.1", "$TPORT", "", "0", "1000", "KEYS", "a", "b", "c",
        check=lambda s, t: (s.get("b"), t.get("b")))
    run(busy, "MIGRATE", "127.0.0.1", "$TPORT", "", "0", "1000", "REPLACE", "KEYS", "a", "b",
        check=lambda s, t: t.get("b"))
    run(busy, "MIGRATE", "127.0.0.1", "$TPORT", "b", "0", "1000", "COPY")

    def expiring(s, t):
        s.set("a", "1", px=60000)

    run(expiring, "MIGRATE", "127.0.0.1", "$TPORT", "a", "0", "1000",
        check=lambda s, t: 50000 < t.pttl("a") <= 60000)


def test_migrate_cached_connection_count(frtrio_proc, redis_proc, target):
    """INFO's migrate_cached_sockets counts the cached connections, like
    Redis's (one per target, kept after use)."""
    counts = []
    for src in (frtrio_proc, redis_proc):
        s = src.client()
        s.set("cc", "1")
        s.execute_command("MIGRATE", "127.0.0.1", target.port, "cc", 0, 1000, "COPY",
                          "REPLACE")
        counts.append(s.info("stats")["migrate_cached_sockets"])
        s.delete("cc")
        s.close()
    assert counts[0] == counts[1] >= 1


def test_migrate_auth(frtrio_proc, redis_proc):
    """AUTH / AUTH2 towards a password-protected target (a fresh one, so that
    neither source has a cached connection to it; the cached connection
    stays authenticated, as Redis's)."""
    with ServerProc("redis") as target:
        tc = target.client()
        tc.config_set("requirepass", "secret")
        tc.close()
        results = []
        for src in (frtrio_proc, redis_proc):
            s = src.client()
            t = target.client(password="secret")
            s.flushall()
            t.flushall()
            s.set("a", "1")
            conn = src.conn()
            got = []
            for cmd in (("MIGRATE", "127.0.0.1", target.port, "a", "0", "1000"),
                        ("MIGRATE", "127.0.0.1", target.port, "a", "0", "1000", "AUTH", "bad"),
                        ("MIGRATE", "127.0.0.1", target.port, "a", "0", "1000", "AUTH2",
                         "default", "bad"),
                        ("MIGRATE", "127.0.0.1", target.port, "a", "0", "1000", "AUTH",
                         "secret", "COPY"),
                        ("MIGRATE", "127.0.0.1", target.port, "a", "0", "1000", "REPLACE")):
                got.append(conn.cmd(*cmd))
                got.append((s.exists("a"), t.get("a")))
            t.flushall()
            conn.close()
            s.close()
            t.close()
            results.append(got)
        assert results[0] == results[1]
        assert results[0][0].startswith(b"-ERR Target instance replied with error: NOAUTH")
        assert results[0][-2] == b"+OK\r\n"


def test_migrate_key_positions(diff):
    for args in (("k", "0", "10", "KEYS", "a", "b"), ("", "0", "10", "AUTH", "x", "KEYS", "a"),
                 ("", "0", "10", "AUTH2", "x", "y", "KEYS", "a", "b"), ("k", "0", "10"),
                 ("", "0", "10"), ("", "0", "10", "COPY", "REPLACE", "KEYS", "a"),
                 ("", "0", "10", "AUTH", "KEYS", "a"), ("k", "0", "10", "AUTH2", "KEYS", "a")):
        diff("COMMAND", "GETKEYS", "MIGRATE", "h", "1", *args)
    diff("COMMAND", "INFO", "MIGRATE", "DUMP", "RESTORE", "RESTORE-ASKING")


class SilentTarget:
    """Accepts connections (via the backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class ClosingTarget:
    """Accepts each connection and closes it at once."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def test_migrate_io_errors_match(frtrio_proc, redis_proc):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    silent = SilentTarget()
    closing = ClosingTarget()
    try:
        got = []
        for src in (frtrio_proc, redis_proc):
            c = src.conn()
            c.cmd("SET", "k", "v")
            row = [
                c.cmd("MIGRATE", "127.0.0.1", str(dead), "k", "0", "300"),  # refused
                c.cmd("MIGRATE", "127.0.0.1", "0", "k", "0", "300"),
                c.cmd("MIGRATE", "127.0.0.1", "-5", "k", "0", "300"),
                c.cmd("MIGRATE", "no-such-host.invalid", "6379", "k", "0", "300"),
                c.cmd("MIGRATE", "127.0.0.1", str(closing.port), "k", "0", "300"),
            ]
            t0 = time.monotonic()
            row.append(c.cmd("MIGRATE", "127.0.0.1", str(silent.port), "k", "0", "300"))
            elapsed = time.monotonic() - t0
            assert elapsed > 0.25, elapsed  # it waited for the timeout
            row.append(c.cmd("GET", "k"))  # nothing was lost
            got.append(row)
            c.cmd("DEL", "k")
            c.close()
        assert got[0] == got[1]
        assert got[0][-2] == b"-IOERR error or timeout reading to target instance\r\n"
    finally:
        silent.close()
        closing.close()


@pytest.mark.timing
def test_migrate_does_not_block_other_clients(frtrio_proc):
    """While one client's MIGRATE waits for a silent target, other clients
    are served (redis-server would block everyone; documented difference),
    except for commands on a key in flight: those run after the MIGRATE, as
    on redis-server."""
    silent = SilentTarget()
    try:
        a = frtrio_proc.conn()
        b = frtrio_proc.conn()
        a.cmd("SET", "mk", "v")
        a.send(b"*6\r\n$7\r\nMIGRATE\r\n$9\r\n127.0.0.1\r\n$%d\r\n%d\r\n$2\r\nmk\r\n$1\r\n0\r\n"
               b"$4\r\n1000\r\n" % (len(str(silent.port)), silent.port))
        a.send(b"*1\r\n$4\r\nPING\r\n")  # pipelined behind the MIGRATE
        time.sleep(0.1)
        t0 = time.monotonic()
        assert b.cmd("PING") == b"+PONG\r\n"
        assert b.cmd("SET", "other", "x") == b"+OK\r\n"
        assert time.monotonic() - t0 < 0.5
        assert b.cmd("SET", "mk", "changed") == b"+OK\r\n"  # waited for the MIGRATE
        assert time.monotonic() - t0 > 0.5
        b.cmd("DEL", "other")
        assert a.read_reply() == b"-IOERR error or timeout reading to target instance\r\n"
        assert a.read_reply() == b"+PONG\r\n"
        assert a.cmd("GET", "mk") == b"$7\r\nchanged\r\n"
        a.cmd("DEL", "mk")
        a.close()
        b.close()
    finally:
        silent.close()


def test_migrate_inside_multi_is_refused(frtrio_proc):
    c = frtrio_proc.conn()
    c.cmd("SET", "k", "v")
    c.cmd("MULTI")
    c.cmd("MIGRATE", "127.0.0.1", "1", "k", "0", "100")
    c.cmd("MIGRATE", "127.0.0.1", "1", "nokey", "0", "100")
    assert c.cmd("EXEC") == (b"*2\r\n-ERR MIGRATE is not supported inside MULTI/EXEC by frtrio"
                             b"\r\n+NOKEY\r\n")
    c.cmd("DEL", "k")
    c.close()


# --- the engine side, without sockets -------------------------------------------------


def _engine():
    return support.engine(ndb=16, now_ms=10_000_000)


_run = support.run


def test_engine_job_guard_and_propagation():
    from frtrio.commands.dump import MigrateOutcome

    srv = _engine()
    c = srv.new_client()
    other = srv.new_client()
    _run(srv, c, "SET", "a", "1")
    _run(srv, c, "SET", "b", "2")
    _run(srv, c, "SET", "t", "3", "PX", "5000")
    srv.propagated.clear()
    assert _run(srv, c, "MIGRATE", "h", "7000", "", "2", "100", "AUTH2", "u", "p",
                "KEYS", "a", "b", "t", "zz") == b""
    (eff,) = srv.effects; srv.effects.clear(); job = eff.job
    assert job.keys == [b"a", b"b", b"t"]
    assert job.port == 7000 and job.timeout_ms == 100 and job.auth
    assert job.cache_name == "h:7000"
    assert job.auth_cmd == b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n"
    assert job.select_cmd() == b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
    req = job.restore_cmds
    assert req.startswith(b"*4\r\n$7\r\nRESTORE\r\n$1\r\na\r\n")
    assert b"$1\r\nt\r\n$4\r\n5000\r\n" in req
    job.select = True
    # another client changes b while the copy is in flight
    _run(srv, other, "APPEND", "b", "x")
    out = MigrateOutcome()
    out.auth_line = b"+OK"
    out.select_line = b"+OK"
    out.lines = [b"+OK", b"+OK", b"+OK"]
    srv.propagated.clear()
    job.finish(c, out)
    assert c.take_output() == b"+OK\r\n"
    assert b"a" not in srv.dbs[0].data and b"t" not in srv.dbs[0].data
    assert srv.dbs[0].data[b"b"] == b"2x"  # kept: the target has the old value
    assert srv.propagated == [(0, [b"DEL", b"a", b"t"])]
    assert not srv.watched_keys  # the guards are gone


def test_engine_partial_failure_and_cluster_restore_asking():
    from frtrio.commands.dump import MigrateOutcome
    from frtrio.commands.table import TABLE

    srv = _engine()
    c = srv.new_client()
    for k in ("a", "b", "c"):
        _run(srv, c, "SET", k, k)
    _run(srv, c, "MIGRATE", "h", "1", "", "0", "100", "KEYS", "a", "b", "c")
    (eff,) = srv.effects; srv.effects.clear(); job = eff.job
    job.select = True
    out = MigrateOutcome()
    out.select_line = b"+OK"
    out.lines = [b"+OK", b"-BUSYKEY Target key name already exists."]
    out.io_error = "reading"
    job.finish(c, out)
    assert c.take_output() == (b"-ERR Target instance replied with error: BUSYKEY Target key "
                               b"name already exists.\r\n")
    assert sorted(srv.dbs[0].data) == [b"b", b"c"]
    # cluster mode: RESTORE-ASKING
    srv.cluster = object()
    try:
        TABLE[b"migrate"].handler(c, [b"MIGRATE", b"h", b"1", b"b", b"0", b"100"])
    finally:
        srv.cluster = None
    (eff,) = srv.effects; srv.effects.clear(); job = eff.job
    assert b"RESTORE-ASKING" in job.restore_cmds
    job.release(srv)
    assert not srv.watched_keys
