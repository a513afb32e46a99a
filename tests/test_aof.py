"""AOF persistence, end to end with real processes.

* ``appendfsync always``: every acknowledged write survives ``kill -9``.
* Expiry times survive restarts (written as absolute PEXPIREAT / PXAT).
* Truncated tails and corrupt files: frtrio and redis-server 7.0 get the same
  damaged directory and must agree on starting or refusing (exit 1).
* Cross-compatibility: an appendonlydir written by frtrio loads in
  redis-server 7.0 with the same data, and one written by redis-server
  (``aof-use-rdb-preamble no``) loads in frtrio.
* SHUTDOWN and SIGTERM flush and exit 0; BGREWRITEAOF, CONFIG SET
  appendonly, SAVE/BGSAVE, INFO persistence.

The secondary cases are marked slow (each starts several servers): run them
with ``-m slow``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import requires_redis
import support
from support import REDIS_SERVER, ServerProc, free_port

pytestmark = requires_redis

AOF_DIR = "appendonlydir"


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="aof-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(kind, d, *args):
    p = ServerProc(kind, args=["--appendonly", "yes"] + list(args), workdir=d)
    p.start(timeout=20)
    return p


def run_to_exit(kind, d, *args, timeout=20):
    """Start a server expected to refuse: (exit code, stdout+log, stderr),
    or (None, ...) if it started (it is then stopped)."""
    port = free_port()
    base = ["--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
            "--appendonly", "yes"] + list(args)
    cmd = ([REDIS_SERVER] if kind == "redis" else [sys.executable, "-m", "frtrio.cli"]) + base
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    import socket

    while time.monotonic() < deadline:
        if p.poll() is not None:
            out, err = p.communicate()
            return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(10).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    p.kill()
    out, err = p.communicate()
    return None, out.decode(errors="replace"), err.decode(errors="replace")


def manifest(d):
    with open(os.path.join(d, AOF_DIR, "appendonly.aof.manifest")) as f:
        return f.read()


def aof_files(d):
    return sorted(os.listdir(os.path.join(d, AOF_DIR)))


def last_incr(d):
    lines = [ln.split() for ln in manifest(d).splitlines() if ln.strip()]
    incr = [w[1] for w in lines if w[-1] == "i"]
    return os.path.join(d, AOF_DIR, incr[-1])


def redis_rewrite(r):
    """BGREWRITEAOF on redis-server and wait for the child to finish."""
    def idle():
        i = r.info("persistence")
        return not i["aof_rewrite_in_progress"] and not i["aof_rewrite_scheduled"]

    deadline = time.monotonic() + 20
    while not idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    r.bgrewriteaof()
    time.sleep(0.1)
    while not idle() and time.monotonic() < deadline:
        time.sleep(0.05)


def write_dataset(r):
    """Writes of every type, in two dbs, with expiries; returns nothing."""
    r.set("s", b"bin\x00\xff\r\nary")
    r.set("n", 10)
    r.incrby("n", 5)
    r.set("ex", "v", ex=1000)
    r.rpush("l", *[b"e%d" % i for i in range(150)])
    r.lpush("l", "first")
    r.hset("h", mapping={"f%d" % i: "v%d" % i for i in range(100)})
    r.sadd("set", *["m%d" % i for i in range(70)])
    r.zadd("z", {"a": 1.5, "b": -2.25, "c": 1e20, "d": 0.1, "inf": float("inf")})
    r.expire("h", 2000)
    r.pexpireat("set", int(time.time() * 1000) + 3_000_000)
    r.delete("gone")
    r.set("gone", 1)
    r.delete("gone")
    r.execute_command("SELECT", 5)
    r.set("db5", "five")
    r.execute_command("SELECT", 0)


def read_dataset(r):
    out = {}
    for db in (0, 5):
        r.execute_command("SELECT", db)
        for k in sorted(r.keys("*")):
            t = r.type(k)
            if t == b"string":
                v = r.get(k)
            elif t == b"list":
                v = r.lrange(k, 0, -1)
            elif t == b"hash":
                v = sorted(r.hgetall(k).items())
            elif t == b"set":
                v = sorted(r.smembers(k))
            elif t == b"zset":
                v = r.zrange(k, 0, -1, withscores=True)
            else:
                v = t
            ttl = r.pttl(k)
            out[(db, k)] = (t, v, -1 if ttl < 0 else round(ttl / 100000))
    r.execute_command("SELECT", 0)
    return out


# --- durability ----------------------------------------------------------------------


def test_acknowledged_writes_survive_kill9(work):
    p = start("frtrio", work, "--appendfsync", "always")
    try:
        r = p.client()
        n = 300
        for i in range(n):
            assert r.set("key:%d" % i, "value:%d" % i)
        r.incr("counter")
        p.kill9()
    finally:
        p.stop()
    p = start("frtrio", work, "--appendfsync", "always")
    try:
        r = p.client()
        assert r.dbsize() == n + 1
        assert r.mget(["key:%d" % i for i in range(n)]) == [b"value:%d" % i for i in range(n)]
        assert r.get("counter") == b"1"
    finally:
        p.cleanup()


def test_expiry_survives_restart(work):
    p = start("frtrio", work)
    try:
        r = p.client()
        r.set("a", 1, ex=100)
        r.set("b", 1)
        r.expire("b", 200)
        r.set("c", 1, px=300)
        r.set("d", 1)
        r.pexpireat("d", int(time.time() * 1000) + 50_000)
        r.set("e", "x", ex=1000)
        r.getex("e", persist=True)
        assert p.terminate() == 0
    finally:
        p.stop()
    time.sleep(0.5)
    p = start("frtrio", work)
    try:
        r = p.client()
        assert 90 <= r.ttl("a") <= 100
        assert 190 <= r.ttl("b") <= 200
        assert r.exists("c") == 0
        assert 40 <= r.ttl("d") <= 50
        assert r.ttl("e") == -1
    finally:
        p.cleanup()


def _shutdown(p, *args):
    """SHUTDOWN over a raw connection (redis-py retries a lost connection)."""
    with p.conn() as c:
        c.send(b"*%d\r\n$8\r\nSHUTDOWN\r\n" % (1 + len(args)) +
               b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        data, closed = c.read_until_close(10)
    assert closed and data == b""
    return p.proc.wait(15)


def test_shutdown_and_sigterm_flush_and_exit_0(work):
    p = start("frtrio", work, "--appendfsync", "no")
    try:
        p.client().set("x", "1")
        assert _shutdown(p) == 0
    finally:
        p.stop()
    p = start("frtrio", work, "--appendfsync", "no")
    try:
        r = p.client()
        assert r.get("x") == b"1"
        r.set("y", "2")
        os.kill(p.proc.pid, signal.SIGTERM)
        assert p.proc.wait(15) == 0
    finally:
        p.stop()
    p = start("frtrio", work)
    try:
        assert p.client().mget("x", "y") == [b"1", b"2"]
    finally:
        p.cleanup()


# --- damaged files: frtrio and redis-server must agree ------------------------------


def _cmd(*args) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def _make_aof(work, name="src"):
    """An appendonlydir as redis-server 7.0 lays it out (AOF base + incr),
    written directly: base sets k0..k2, incr sets k3..k4."""
    d = os.path.join(work, name)
    os.makedirs(os.path.join(d, AOF_DIR))
    base = _cmd("SELECT", 0) + b"".join(_cmd("SET", "k%d" % i, "v%d" % i) for i in range(3))
    incr = _cmd("SELECT", 0) + b"".join(_cmd("set", "k%d" % i, "v%d" % i) for i in range(3, 5))
    files = {"appendonly.aof.1.base.aof": base, "appendonly.aof.1.incr.aof": incr,
             "appendonly.aof.manifest": b"file appendonly.aof.1.base.aof seq 1 type b\n"
                                        b"file appendonly.aof.1.incr.aof seq 1 type i\n"}
    for f, data in files.items():
        with open(os.path.join(d, AOF_DIR, f), "wb") as fh:
            fh.write(data)
    return d


def _both_on(work, damage, *args):
    """Apply damage(d) to a fresh copy of the same AOF for each server; return
    {kind: (rc or None, out, err, dir)}."""
    n = len(os.listdir(work))
    src = _make_aof(work, "src%d" % n)
    res = {}
    for kind in ("redis", "frtrio"):
        d = os.path.join(work, "%s%d" % (kind, n))
        shutil.copytree(src, d)
        damage(d)
        rc, out, err = run_to_exit(kind, d, "--aof-use-rdb-preamble", "no", *args)
        res[kind] = (rc, out, err, d)
    return res


def _append(d, data):
    with open(last_incr(d), "ab") as f:
        f.write(data)


def test_truncated_tail_loaded_with_warning(work):
    res = _both_on(work, lambda d: _append(d, b"*3\r\n$3\r\nSET\r\n$2\r\nk9\r\n$2\r\nv"))
    for kind, (rc, out, err, d) in res.items():
        assert rc is None, (kind, out, err)
    size = {k: os.path.getsize(last_incr(v[3])) for k, v in res.items()}
    assert size["frtrio"] == size["redis"]
    assert "short read while loading the AOF file" in res["frtrio"][1]


def test_truncated_tail_refused_when_not_allowed(work):
    res = _both_on(work, lambda d: _append(d, b"*3\r\n$3\r\nSET\r\n$2\r\nk9\r\n$2"),
                   "--aof-load-truncated", "no")
    assert res["redis"][0] == 1
    assert res["frtrio"][0] == 1
    assert "Unexpected end of file reading the append only file" in res["frtrio"][2]


def test_incomplete_multi_reverted(work):
    tail = b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$2\r\nk9\r\n$2\r\nv9\r\n"
    res = _both_on(work, lambda d: _append(d, tail))
    sizes = set()
    for kind, (rc, out, err, d) in res.items():
        assert rc is None, (kind, out, err)
        sizes.add(os.path.getsize(last_incr(d)))
    assert len(sizes) == 1
    res = _both_on(work, lambda d: _append(d, tail), "--aof-load-truncated", "no")
    assert res["redis"][0] == res["frtrio"][0] == 1


def _corrupt_middle(d):
    p = last_incr(d)
    data = open(p, "rb").read()
    i = data.index(b"*3", 20)
    open(p, "wb").write(data[:i] + b"X" + data[i + 1:])


def test_corrupt_middle_refused(work):
    res = _both_on(work, _corrupt_middle)
    assert res["redis"][0] == 1
    assert res["frtrio"][0] == 1
    assert "Bad file format reading the append only file" in res["frtrio"][2]


def test_unknown_command_refused(work):
    res = _both_on(work, lambda d: _append(d, b"*2\r\n$7\r\nNOSUCHX\r\n$1\r\na\r\n"))
    assert res["redis"][0] == res["frtrio"][0] == 1
    assert "Unknown command 'NOSUCHX'" in res["frtrio"][2]


@pytest.mark.slow
def test_truncated_file_not_last_refused(work):
    def damage(d):
        # the base gets a cut-off command and an incr file follows it
        m = [ln.split() for ln in manifest(d).splitlines() if ln.strip()]
        base = [w[1] for w in m if w[-1] == "b"][0]
        with open(os.path.join(d, AOF_DIR, base), "ab") as f:
            f.write(b"*2\r\n$3\r\nGET\r\n$1")

    res = _both_on(work, damage)
    assert res["redis"][0] == res["frtrio"][0] == 1


def test_redis_rdb_base_loads_in_frtrio(work):
    """redis-server's default layout: an RDB base (aof-use-rdb-preamble yes)
    holding every encoding (listpack, quicklist, intset, LZF strings)."""
    p = start("redis", work)
    try:
        r = p.client()
        write_dataset(r)
        r.set("big", b"abc" * 5000)
        r.sadd("ints", *range(100))
        r.rpush("biglist", *[b"x" * 100] * 500)
        redis_rewrite(r)
        r.set("tail", 1)
        expected = read_dataset(r)
        assert _shutdown(p, b"NOSAVE") == 0
    finally:
        p.stop()
    assert any(f.endswith(".base.rdb") for f in aof_files(work))
    p = start("frtrio", work)
    try:
        assert read_dataset(p.client()) == expected
    finally:
        p.cleanup()


# --- cross-compatibility with redis-server --------------------------------------------


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_frtrio_aof_loads_in_redis(work, preamble):
    p = start("frtrio", work, "--aof-use-rdb-preamble", preamble)
    try:
        r = p.client()
        write_dataset(r)
        r.bgrewriteaof()
        r.rpush("l", "after-rewrite")
        r.hset("h", "late", "1")
        r.zincrby("z", 3, "a")
        expected = read_dataset(r)
        assert p.terminate() == 0
    finally:
        p.stop()
    assert len(aof_files(work)) == 3  # base, incr, manifest
    assert aof_files(work)[0].endswith(".base.rdb" if preamble == "yes" else ".base.aof")
    p = start("redis", work)
    try:
        assert read_dataset(p.client()) == expected
    finally:
        p.stop()


def test_redis_aof_loads_in_frtrio(work):
    p = start("redis", work, "--aof-use-rdb-preamble", "no")
    try:
        r = p.client()
        write_dataset(r)
        redis_rewrite(r)  # the rewrite runs in a child
        r.rpush("l", "after-rewrite")
        r.hset("h", "late", "1")
        r.zincrby("z", 3, "a")
        expected = read_dataset(r)
        assert _shutdown(p, b"NOSAVE") == 0
    finally:
        p.stop()
    assert any(f.endswith(".base.aof") for f in aof_files(work))
    p = start("frtrio", work)
    try:
        assert read_dataset(p.client()) == expected
    finally:
        p.cleanup()


@pytest.mark.slow
def test_timestamp_annotations_load_in_both(work):
    p = start("frtrio", work, "--aof-timestamp-enabled", "yes")
    try:
        r = p.client()
        r.set("a", 1)
        time.sleep(1.1)
        r.set("b", 2)
        assert p.terminate() == 0
    finally:
        p.stop()
    assert b"#TS:" in open(last_incr(work), "rb").read()
    for kind in ("frtrio", "redis"):
        p = start(kind, work)
        try:
            assert p.client().mget("a", "b") == [b"1", b"2"]
        finally:
            p.stop()


@pytest.mark.slow
def test_legacy_single_file_upgraded(work):
    with open(os.path.join(work, "appendonly.aof"), "wb") as f:
        f.write(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n")
    other = os.path.join(work, "r")
    os.mkdir(other)
    shutil.copy(os.path.join(work, "appendonly.aof"), other)
    for kind, d in (("frtrio", work), ("redis", other)):
        p = start(kind, d)
        try:
            assert p.client().get("a") == b"1"
        finally:
            p.stop()
    assert manifest(work) == manifest(other)
    assert aof_files(work) == aof_files(other)
    assert not os.path.exists(os.path.join(work, "appendonly.aof"))


# --- commands and INFO ------------------------------------------------------------------


def _info_persistence(r):
    return r.info("persistence")


@pytest.mark.parametrize("preamble,ext", [("yes", "rdb"), ("no", "aof")])
def test_bgrewriteaof_and_info(work, preamble, ext):
    p = start("frtrio", work, "--aof-use-rdb-preamble", preamble)
    try:
        r = p.client()
        info = _info_persistence(r)
        assert info["aof_enabled"] == 1
        for i in range(50):
            r.set("k%d" % i, "x%d" % i * 100)
        assert manifest(work) == ("file appendonly.aof.1.base.%s seq 1 type b\n"
                                  "file appendonly.aof.1.incr.aof seq 1 type i\n" % ext)
        assert r.bgrewriteaof() is True
        assert manifest(work) == ("file appendonly.aof.2.base.%s seq 2 type b\n"
                                  "file appendonly.aof.2.incr.aof seq 2 type i\n" % ext)
        assert aof_files(work) == ["appendonly.aof.2.base.%s" % ext, "appendonly.aof.2.incr.aof",
                                   "appendonly.aof.manifest"]
        info = _info_persistence(r)
        assert info["aof_base_size"] > 1000
        assert info["aof_current_size"] == info["aof_base_size"]
        assert info["aof_last_bgrewrite_status"] == "ok"
        r.set("after", 1)
        assert p.terminate() == 0
    finally:
        p.stop()
    p = start("frtrio", work)
    try:
        r = p.client()
        assert r.dbsize() == 51
    finally:
        p.cleanup()


@pytest.mark.slow
def test_info_persistence_fields_match_redis(work):
    fields = {}
    for kind in ("frtrio", "redis"):
        for on in ("yes", "no"):
            d = os.path.join(work, kind + on)
            os.mkdir(d)
            p = ServerProc(kind, args=["--appendonly", on], workdir=d).start(timeout=20)
            try:
                fields[kind, on] = list(_info_persistence(p.client()))
            finally:
                p.stop()
    assert fields["frtrio", "yes"] == fields["redis", "yes"]
    assert fields["frtrio", "no"] == fields["redis", "no"]


def test_config_set_appendonly_at_runtime(work):
    p = ServerProc("frtrio", workdir=work).start(timeout=20)
    try:
        r = p.client()
        r.set("before", 1)
        assert _info_persistence(r)["aof_enabled"] == 0
        r.config_set("appendonly", "yes")
        assert _info_persistence(r)["aof_enabled"] == 1
        r.set("after", 2)
        r.config_set("appendonly", "no")
        r.set("not-logged", 3)
        r.config_set("appendonly", "yes")
        r.set("again", 4)
        assert p.terminate() == 0
    finally:
        p.stop()
    p = start("frtrio", work)
    try:
        assert p.client().mget("before", "after", "not-logged", "again") == [
            b"1", b"2", b"3", b"4"]
    finally:
        p.cleanup()


def test_save_writes_dump_rdb_both_ways(work):
    """SAVE/BGSAVE write dump.rdb; frtrio loads it at start (appendonly off),
    redis-server loads frtrio's, and frtrio loads redis-server's."""
    p = ServerProc("frtrio", workdir=work).start(timeout=20)
    try:
        r = p.client()
        write_dataset(r)
        r.set("gone-soon", 1, px=200)
        before = r.lastsave()
        time.sleep(1.05)
        assert r.execute_command("SAVE") in (b"OK", True)
        assert r.lastsave() > before
        assert r.info("persistence")["rdb_changes_since_last_save"] == 0
        assert r.execute_command("BGSAVE") in (True, b"Background saving started")
        with pytest.raises(Exception, match="syntax error"):
            r.execute_command("BGSAVE", "nope")
        assert r.execute_command("BGSAVE", "SCHEDULE") in (True, b"Background saving started")
        r.delete("gone-soon")
        expected = read_dataset(r)
        _shutdown(p, b"NOSAVE")
    finally:
        p.stop()
    time.sleep(0.3)  # gone-soon expires inside the file: dropped at load
    assert os.path.exists(os.path.join(work, "dump.rdb"))
    for kind in ("frtrio", "redis"):
        p = ServerProc(kind, workdir=work).start(timeout=20)
        try:
            r = p.client()
            assert read_dataset(r) == expected
            if kind == "redis":
                r.set("from-redis", 1)
                r.save()
        finally:
            p.stop()
    p = ServerProc("frtrio", workdir=work).start(timeout=20)
    try:
        assert p.client().get("from-redis") == b"1"
    finally:
        p.cleanup()


@pytest.mark.slow
def test_save_points_and_shutdown_save(work):
    dump = os.path.join(work, "dump.rdb")
    p = ServerProc("frtrio", args=["--save", "1 1"], workdir=work).start(timeout=20)
    try:
        p.client().set("a", 1)
        deadline = time.monotonic() + 10
        while not os.path.exists(dump) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.path.exists(dump)
        os.remove(dump)
        p.client().set("b", 2)
        assert _shutdown(p, b"NOSAVE") == 0  # save points, but NOSAVE
    finally:
        p.stop()
    assert not os.path.exists(dump)
    p = ServerProc("frtrio", args=["--save", "3600 1"], workdir=work).start(timeout=20)
    try:
        p.client().set("c", 3)
        os.kill(p.proc.pid, signal.SIGTERM)  # save points configured: final snapshot
        assert p.proc.wait(15) == 0
    finally:
        p.stop()
    p = ServerProc("frtrio", workdir=work).start(timeout=20)
    try:
        assert p.client().get("c") == b"3"
    finally:
        p.cleanup()


@pytest.mark.slow
def test_bgrewriteaof_with_aof_off_writes_base(work):
    other = os.path.join(work, "r")
    os.mkdir(other)
    for kind, d in (("frtrio", work), ("redis", other)):
        p = ServerProc(kind, workdir=d).start(timeout=20)
        try:
            r = p.client()
            r.set("a", 1)
            if kind == "redis":
                redis_rewrite(r)
            else:
                assert r.bgrewriteaof() is True
        finally:
            p.stop()
    assert manifest(work) == manifest(other)
    assert aof_files(work) == aof_files(other)


# --- in-process units (no server process) ----------------------------------------------


def _engine(**conf):
    return support.engine({k.replace("_", "-"): v for k, v in conf.items()},
                          now_ms=int(time.time() * 1000), seed=7)


def _run(srv, *cmds):
    c = srv.new_client("t", "")
    for argv in cmds:
        srv.execute(c, [a if isinstance(a, bytes) else str(a).encode() for a in argv])
    out = c.take_output()
    srv.free_client(c)
    return out


def _snapshot(srv):
    from frtrio.store.db import type_name

    out = {}
    for db in srv.dbs:
        for k, v in db.data.items():
            t = type_name(v)
            if t == b"zset":
                val = sorted(v.items())
            elif t in (b"set",):
                val = sorted(v)
            elif t == b"hash":
                val = sorted(v.items())
            elif t == b"list":
                val = list(v)
            else:
                val = v
            out[(db.id, k)] = (t, val, db.expires.get(k))
    return out


def _fill(srv):
    _run(srv, ("SET", "s", "v" * 50), ("SET", "i", "12345"), ("RPUSH", "l", *range(300)),
         ("HSET", "h", "a", "1", "b", "2"), ("SADD", "si", 1, 2, 3), ("SADD", "ss", "a", "b"),
         ("ZADD", "z", "1.5", "a", "-inf", "b", "2e300", "c"), ("PEXPIRE", "s", 100000),
         ("SELECT", 9), ("SET", "nine", "9"))


def test_parse_aof_units():
    from frtrio.persist.aof_format import BadFormat, Truncated, parse_aof

    ok = b"#TS:1\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert [a for a, _ in parse_aof(ok)] == [[b"PING"], [b"GET", b"k"]]
    # every cut inside the second command is a truncated tail after the first
    first_end = ok.index(b"*2")
    for cut in range(first_end + 1, len(ok)):
        got = []
        with pytest.raises(Truncated):
            for argv, end in parse_aof(ok[:cut]):
                got.append(end)
        assert got == [first_end]
    for bad in (b"X1\r\n", b"*0\r\n", b"*1\r\n#4\r\nPING\r\n", b"*1\r\n$-1\r\n"):
        with pytest.raises(BadFormat):
            list(parse_aof(bad))
    for short in (b"*", b"*1", b"*1\r\n", b"*1\r\n$4", b"*1\r\n$4\r\nPI", b"*1\r\n$4\r\nPING"):
        with pytest.raises(Truncated):
            list(parse_aof(short))


def test_manifest_units():
    from frtrio.persist.aof_format import AOFLoadError
    from frtrio.persist.aof_manifest import Manifest

    text = (b"# comment\nfile appendonly.aof.1.base.rdb seq 1 type b\n"
            b"file appendonly.aof.1.incr.aof seq 1 type h\n"
            b"file \"a b.aof\" seq 2 type i\nfile appendonly.aof.3.incr.aof seq 3 type i\n")
    m = Manifest.parse(text, "m")
    assert m.base == ("appendonly.aof.1.base.rdb", 1)
    assert m.incrs == [("a b.aof", 2), ("appendonly.aof.3.incr.aof", 3)]
    assert Manifest.parse(m.render(), "m").render() == m.render()
    assert b'file "a b.aof" seq 2 type i' in m.render()
    for bad in (b"file x seq 1\n", b"file x seq one type b\n", b"file x seq 1 type z\n",
                b"file a seq 1 type b\nfile b seq 2 type b\n",
                b"file a seq 2 type i\nfile b seq 1 type i\n", b"file a/b seq 1 type b\n"):
        with pytest.raises(AOFLoadError):
            Manifest.parse(bad, "m")


def test_rdb_and_command_base_round_trip():
    from frtrio.persist.rdbfile import load_rdb, rdb_bytes
    from frtrio.persist.rewrite import dataset_as_commands

    src = _engine()
    _fill(src)
    want = _snapshot(src)
    data = rdb_bytes(src, src.config)
    dst = _engine()
    end, loaded, expired = load_rdb(data, dst, dst.config)
    assert (end, loaded, expired) == (len(data), len(want), 0)
    assert _snapshot(dst) == want
    dst = _engine()
    from frtrio.persist.aof_format import parse_aof

    c = dst.new_client("t", "")
    for argv, _ in parse_aof(dataset_as_commands(src)):
        dst.execute(c, argv)
    assert _snapshot(dst) == want
    # a flipped byte is caught by the checksum
    from frtrio.persist.rdbfile import RdbLoadError

    bad = bytearray(data)
    bad[30] ^= 1
    with pytest.raises(RdbLoadError):
        load_rdb(bytes(bad), _engine(), dst.config)


def test_history_kept_with_auto_gc_disabled(work):
    from frtrio.persist.aof import AOF
    from frtrio.runtime.env import RealFS

    srv = _engine(dir=work, appendonly="yes", aof_disable_auto_gc="yes")
    aof = AOF(RealFS(), srv.config, srv)
    aof.load()
    aof.open_for_append()
    _fill(srv)
    aof.feed(srv.propagated)
    srv.propagated.clear()
    aof.write()
    aof.rewrite()
    assert manifest(work) == ("file appendonly.aof.2.base.rdb seq 2 type b\n"
                              "file appendonly.aof.1.base.rdb seq 1 type h\n"
                              "file appendonly.aof.1.incr.aof seq 1 type h\n"
                              "file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert len(aof_files(work)) == 5
    srv.config.values["aof-disable-auto-gc"] = "no"
    aof.rewrite()
    assert aof_files(work) == ["appendonly.aof.3.base.rdb", "appendonly.aof.3.incr.aof",
                               "appendonly.aof.manifest"]
    aof.close()
    again = _engine(dir=work, appendonly="yes")
    AOF(RealFS(), again.config, again).load()
    assert _snapshot(again) == _snapshot(srv)


def test_debug_loadaof_with_appendonly_off_loads_the_rewritten_aof():
    """With appendonly off, BGREWRITEAOF still writes an AOF and DEBUG
    LOADAOF empties the dataset and loads it, functions included (Redis's
    unit/aofrw 'AOF rewrite functions'); the replies match redis-server's."""
    lib = "#!lua name=aoflib\nredis.register_function('aoff', function() return 1 end)"
    outs = []
    for kind in ("frtrio", "redis"):
        p = ServerProc(kind, args=["--aof-use-rdb-preamble", "no"]).start(timeout=20)
        try:
            c = p.conn()
            # (no DEBUG LOADAOF before an AOF exists: redis-server exits there)
            seq = [c.cmd("SET", "kept", "1")]
            seq.append(c.cmd("FUNCTION", "LOAD", lib))
            c.cmd("BGREWRITEAOF")
            support.wait_for(lambda: b"aof_rewrite_in_progress:0" in c.cmd("INFO", "persistence")
                             and b"aof_rewrite_scheduled:0" in c.cmd("INFO", "persistence"),
                             timeout=10, what="rewrite done")
            seq.append(c.cmd("FUNCTION", "FLUSH"))
            seq.append(c.cmd("SET", "dropped", "1"))
            seq.append(c.cmd("DEBUG", "LOADAOF"))
            seq.append(c.cmd("FCALL", "aoff", 0))
            seq.append(c.cmd("KEYS", "*"))
            outs.append(seq)
            c.close()
        finally:
            p.cleanup()
    assert outs[0] == outs[1]
    assert outs[0][-1] == b"*1\r\n$4\r\nkept\r\n"


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_debug_aof_flush_sleep_delays_the_write_and_the_reply(kind):
    """DEBUG AOF-FLUSH-SLEEP <us>: the server stops that long before each
    AOF write of a non-empty buffer; the write's reply leaves after the
    record is in the file (appendfsync always), a read waits for nobody;
    0 turns it off. The same on both servers."""
    with ServerProc(kind, ["--appendonly", "yes", "--appendfsync", "always"]) as p:
        c = p.conn()
        assert c.cmd("DEBUG", "AOF-FLUSH-SLEEP", "300000") == b"+OK\r\n"
        incr = os.path.join(p.dir, "appendonlydir", "appendonly.aof.1.incr.aof")
        before = os.path.getsize(incr)
        t0 = time.monotonic()
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        took = time.monotonic() - t0
        assert took >= 0.28, took
        assert os.path.getsize(incr) > before  # written before the reply left
        t0 = time.monotonic()
        assert c.cmd("GET", "k") == b"$1\r\nv\r\n"  # nothing to write: no sleep
        assert time.monotonic() - t0 < 0.2
        assert c.cmd("DEBUG", "AOF-FLUSH-SLEEP", "0") == b"+OK\r\n"
        t0 = time.monotonic()
        assert c.cmd("SET", "k", "w") == b"+OK\r\n"
        assert time.monotonic() - t0 < 0.2


def test_manifest_refusals_are_redis_log_lines():
    """Each manifest Redis 7.0 refuses, with the line its log names (the
    upstream aof-multi-part unit counts these lines)."""
    from frtrio.persist.aof_format import AOFLoadError
    from frtrio.persist.aof_manifest import Manifest

    ok = b"file a.aof seq 1 type b\n"
    cases = [
        (b"", "Found an empty AOF manifest"),
        (ok + b"\n", "Invalid AOF manifest file format"),  # a blank line
        (b"file a.aof seq 1 type b", "The AOF manifest file contains too long line"),
        (b"file " + b"a" * 1100 + b" seq 1 type b\n",
         "The AOF manifest file contains too long line"),
        (b"file a.aof seq 1\n", "Invalid AOF manifest file format"),  # too short
        (b"file a.aof seq 1 type b x\n", "Invalid AOF manifest file format"),  # odd
        (b"file a.aof seq 0 type b\n", "Invalid AOF manifest file format"),  # seq 0
        (b"file a.aof sequence 1 type b\n", "Invalid AOF manifest file format"),
        (b"file d/a.aof seq 1 type b\n", "File can't be a path, just a filename"),
        (ok + b"file b.aof seq 2 type b\n", "Found duplicate base file information"),
        (b"file a.aof seq 2 type i\nfile b.aof seq 2 type i\n",
         "Found a non-monotonic sequence number"),
        (b"file a.aof seq 1 type x\n", "Unknown AOF file type"),
    ]
    for data, err in cases:
        with pytest.raises(AOFLoadError) as e:
            Manifest.parse(data, "m")
        lines = str(e.value).split("\n")
        assert lines[0] == "*** FATAL AOF MANIFEST FILE ERROR ***" and lines[-1] == err, data
    # keys in any case, unknown keys ignored, seq read as atoll, comments skipped
    m = Manifest.parse(b"# c\nFILE a.aof SEQ 3x TYPE b extra 1\n", "m")
    assert m.base == ("a.aof", 3)
    e = pytest.raises(AOFLoadError, Manifest.parse, ok + b"file a seq 1\n", "m").value
    assert str(e).split("\n")[1:3] == ["Reading the manifest file, at line 2",
                                       ">>> 'file a seq 1'"]


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_server_refuses_to_start_on_a_bad_manifest_or_a_missing_file(kind, tmp_path):
    """A manifest with a blank line, or naming a file that is not there:
    the server exits 1 at start with Redis's log line."""
    cases = [
        (b"file appendonly.aof.1.base.aof seq 1 type b\n\n", "Invalid AOF manifest file format"),
        (b"file appendonly.aof.1.base.aof seq 1 type b\n"
         b"file appendonly.aof.1.incr.aof seq 1 type i\n",
         "Unable to obtain the AOF file appendonly.aof.1.incr.aof length. stat: "
         "No such file or directory"),
    ]
    for i, (manifest, line) in enumerate(cases):
        d = tmp_path / ("c%d" % i)
        (d / "appendonlydir").mkdir(parents=True)
        (d / "appendonlydir" / "appendonly.aof.1.base.aof").write_bytes(
            b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n")
        (d / "appendonlydir" / "appendonly.aof.manifest").write_bytes(manifest)
        p = ServerProc(kind, ["--appendonly", "yes"], workdir=str(d))
        try:
            p.start(wait=False)
            assert p.proc.wait(15) == 1
            with open(p.log_path) as f:
                assert line in f.read()
        finally:
            p.stop()


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_server_refuses_to_start_on_an_rdb_with_a_bad_checksum(kind, tmp_path):
    """dump.rdb whose CRC64 was overwritten: the server exits 1 at start,
    logging Redis's checksum line and 'RDB CRC error'; the file is kept."""
    with ServerProc("redis", ["--save", ""]) as src:
        c = src.conn()
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        assert c.cmd("SAVE") == b"+OK\r\n"
        data = open(os.path.join(src.dir, "dump.rdb"), "rb").read()
    bad = data[:-8] + b"foobar00"
    (tmp_path / "dump.rdb").write_bytes(bad)
    p = ServerProc(kind, workdir=str(tmp_path))
    try:
        p.start(wait=False)
        assert p.proc.wait(15) == 1
        log = open(p.log_path).read()
        assert "Wrong RDB checksum expected: (%x) but got (%x). Aborting now." % (
            int.from_bytes(data[-8:], "little"), int.from_bytes(b"foobar00", "little")) in log
        assert "RDB CRC error" in log
        assert (tmp_path / "dump.rdb").read_bytes() == bad
    finally:
        p.stop()


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_interrupted_upgrade_of_an_old_aof_is_continued(kind, tmp_path):
    """An old single appendonly.aof in the server dir and a manifest that
    names it as the base, but the file was not moved yet (an upgrade cut
    short): the upgrade is finished (the file moves into the AOF dir) and
    the data loads; as redis-server."""
    (tmp_path / "appendonly.aof").write_bytes(b"*3\r\n$3\r\nset\r\n$2\r\nk1\r\n$2\r\nv1\r\n")
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.manifest").write_bytes(
        b"file appendonly.aof seq 1 type b\n")
    with ServerProc(kind, ["--appendonly", "yes"], workdir=str(tmp_path)) as p:
        assert p.conn().cmd("GET", "k1") == b"$2\r\nv1\r\n"
        assert not (tmp_path / "appendonly.aof").exists()
        assert (tmp_path / "appendonlydir" / "appendonly.aof").exists()
        assert (tmp_path / "appendonlydir" / "appendonly.aof.manifest").read_bytes() == (
            b"file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_nothing_expires_while_the_aof_loads(kind, tmp_path):
    """RPUSH, PEXPIREAT in the past, RPUSH again in the AOF: the second
    RPUSH works on the loaded key (not a fresh one), so once loaded the
    whole key is expired (upstream 'AOF+EXPIRE: List should be empty')."""
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(
        b"*3\r\n$5\r\nrpush\r\n$4\r\nlist\r\n$3\r\nfoo\r\n"
        b"*3\r\n$9\r\npexpireat\r\n$4\r\nlist\r\n$4\r\n1000\r\n"
        b"*3\r\n$5\r\nrpush\r\n$4\r\nlist\r\n$3\r\nbar\r\n")
    (tmp_path / "appendonlydir" / "appendonly.aof.manifest").write_bytes(
        b"file appendonly.aof.1.incr.aof seq 1 type i\n")
    with ServerProc(kind, ["--appendonly", "yes"], workdir=str(tmp_path)) as p:
        assert p.conn().cmd("LLEN", "list") == b":0\r\n"


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_command_base_starts_with_a_timestamp(kind):
    """aof-timestamp-enabled with aof-use-rdb-preamble no: BGREWRITEAOF's
    base starts with a #TS annotation (and loads back)."""
    with ServerProc(kind, ["--appendonly", "yes", "--aof-timestamp-enabled", "yes",
                           "--aof-use-rdb-preamble", "no"]) as p:
        c = p.conn()
        assert c.cmd("SET", "foo", "bar") == b"+OK\r\n"
        assert c.cmd("BGREWRITEAOF").startswith(b"+")
        d = os.path.join(p.dir, "appendonlydir")
        support.wait_for(lambda: any(n.endswith(".2.base.aof") for n in os.listdir(d)),
                         what="the new base")
        base = [n for n in os.listdir(d) if n.endswith(".2.base.aof")][0]
        with open(os.path.join(d, base), "rb") as f:
            assert f.readline().startswith(b"#TS:")
        assert c.cmd("DEBUG", "LOADAOF") == b"+OK\r\n"
        assert c.cmd("GET", "foo") == b"$3\r\nbar\r\n"
