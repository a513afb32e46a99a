"""Client flow control, client eviction and serving clients while the
dataset loads at startup, each against redis-server 7.0 (issue 16):

* a client that pipelines more than the socket buffers hold, reading
  nothing until it has sent everything, gets every reply (the server keeps
  reading and executing while replies queue up);
* client-output-buffer-limit closes a client that does not read;
* maxmemory-clients evicts the client redis-server evicts;
* a client connecting while dump.rdb loads sees -LOADING and loading:1,
  then the data.
"""

from __future__ import annotations

import socket
import time

import pytest

from support import HAVE_REDIS, RawConn, ServerProc, encode_request, reply_end

pytestmark = pytest.mark.skipif(not HAVE_REDIS, reason="redis-server not installed")


def _read_replies(sock, n: int, timeout: float = 30.0) -> bytes:
    """Read exactly n replies (raw bytes) from sock."""
    sock.settimeout(timeout)
    buf = b""
    pos = 0
    got = 0
    while got < n:
        end = reply_end(buf, pos) if pos < len(buf) else -1
        if end >= 0:
            pos = end
            got += 1
            continue
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed after %d of %d replies" % (got, n))
        buf += data
    return buf[:pos]


def test_flow_pipeline_beyond_socket_buffers(diff):
    """50,000 GETs of a 200-byte value (10 MB of replies) are all sent
    before the first reply is read: the send finishes, and every reply
    arrives, the same bytes as redis-server's."""
    diff("SET", "k", "v" * 200)
    n = 50_000
    req = encode_request(["GET", "k"]) * n
    out = []
    for conn in (diff.f, diff.r):
        s = socket.create_connection(conn.sock.getpeername())
        try:
            s.settimeout(20)
            s.sendall(req)  # (a server that stops reading makes this time out)
            out.append(_read_replies(s, n))
        finally:
            s.close()
    assert out[0] == out[1]
    assert out[0] == (b"$200\r\n" + b"v" * 200 + b"\r\n") * n


def test_flow_output_buffer_limit_closes_client(diff):
    """A client that does not read its replies is closed once they pass
    the normal class's hard limit; the others go on."""
    diff("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0")
    diff("SET", "big", "x" * 10_000)
    n = 3000  # 30 MB of replies: far more than the socket buffers and the limit
    req = encode_request(["GET", "big"]) * n
    for conn in (diff.f, diff.r):
        s = socket.create_connection(conn.sock.getpeername())
        try:
            s.settimeout(20)
            try:
                s.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: that is the point
            time.sleep(0.2)
            got = 0
            closed = False
            s.settimeout(5)
            try:
                while True:
                    d = s.recv(1 << 20)
                    if not d:
                        closed = True
                        break
                    got += len(d)
            except ConnectionResetError:
                closed = True
            assert closed
            assert got < n * 10_000
        finally:
            s.close()
    assert diff("PING") == b"+PONG\r\n"
    # the closed clients are gone on both
    f, r = diff.both("CLIENT", "LIST")
    assert f.count(b"cmd=get ") == r.count(b"cmd=get ") == 0


def _fill_qbuf(port: int, name: bytes, size: int) -> socket.socket:
    """A client named ``name`` holding ``size`` bytes of a bulk argument it
    has not finished sending."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    s.sendall(encode_request(["CLIENT", "SETNAME", name]))
    assert s.recv(100) == b"+OK\r\n"
    s.sendall(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % (size + 10) + b"v" * size)
    return s


def _client_field(conn: RawConn, name: bytes, field: bytes) -> int | None:
    raw = conn.cmd("CLIENT", "LIST")
    for line in raw.split(b"\n"):
        if b" name=%s " % name in line:
            for f in line.split():
                if f.startswith(field + b"="):
                    return int(f.split(b"=", 1)[1])
    return None


def _names(conn: RawConn) -> set:
    raw = conn.cmd("CLIENT", "LIST")
    out = set()
    for line in raw.split(b"\n"):
        for f in line.split():
            if f.startswith(b"name=") and f != b"name=":
                out.add(f[5:])
    return out


def test_flow_client_eviction_picks_the_largest_client(diff):
    """Three clients hold 100 KB, 600 KB and 250 KB of query buffer; with
    maxmemory-clients 1 MB the next command evicts the 600 KB one only, as
    on redis-server; INFO counts it."""
    diff("CONFIG", "RESETSTAT")
    diff("CLIENT", "NO-EVICT", "on")
    diff("CONFIG", "SET", "maxmemory-clients", "0")
    results = []
    for conn in (diff.f, diff.r):
        port = conn.sock.getpeername()[1]
        socks = []
        try:
            for name, size in ((b"small", 100_000), (b"large", 600_000), (b"medium", 250_000)):
                socks.append(_fill_qbuf(port, name, size))
                deadline = time.monotonic() + 10
                while (_client_field(conn, name, b"qbuf") or 0) < size:
                    assert time.monotonic() < deadline, "query buffer of %r not filled" % name
                    time.sleep(0.01)
            conn.cmd("CONFIG", "SET", "maxmemory-clients", "1mb")
            names = _names(conn)
            info = conn.cmd("INFO", "stats")
            evicted = int(info.split(b"evicted_clients:")[1].split(b"\r\n")[0])
            results.append((names, evicted))
        finally:
            conn.cmd("CONFIG", "SET", "maxmemory-clients", "0")
            for s in socks:
                s.close()
    assert results[0] == results[1]
    assert results[0] == ({b"small", b"medium"}, 1)


def test_flow_client_eviction_of_own_large_argument(diff):
    """A command whose arguments alone pass maxmemory-clients closes its own
    client without a reply; a no-evict client is never evicted."""
    diff("CONFIG", "SET", "maxmemory-clients", "200000")
    diff("CLIENT", "NO-EVICT", "on")
    for conn in (diff.f, diff.r):
        port = conn.sock.getpeername()[1]
        with RawConn(port) as c:
            assert c.cmd("SET", "k", "v" * 1000) == b"+OK\r\n"
            c.send(encode_request(["SET", "k", "v" * 400_000]))
            data, closed = c.read_until_close(5)
            assert (data, closed) == (b"", True)
        assert conn.cmd("GET", "k") == b"$1000\r\n" + b"v" * 1000 + b"\r\n"
        with RawConn(port) as c:
            assert c.cmd("CLIENT", "NO-EVICT", "on") == b"+OK\r\n"
            assert c.cmd("SET", "k", "v" * 400_000) == b"+OK\r\n"
    diff("CONFIG", "SET", "maxmemory-clients", "0")


def _info_field(raw: bytes, field: bytes) -> bytes:
    for line in raw.split(b"\r\n"):
        if line.startswith(field + b":"):
            return line.split(b":", 1)[1]
    raise KeyError(field)


@pytest.mark.parametrize("kind,persist", [
    ("frtrio", "rdb"), ("redis", "rdb"),
    pytest.param("frtrio", "aof", marks=pytest.mark.slow),
    pytest.param("redis", "aof", marks=pytest.mark.slow),
])
def test_flow_clients_served_while_loading_at_startup(kind, persist):
    """A client connecting while dump.rdb (or the AOF, its base an RDB)
    loads, slowed down by key-load-delay, gets -LOADING for GET, loading:1
    from INFO, may CONFIG SET loglevel but not dir; once loaded it reads
    the data."""
    args = ["--appendonly", "yes"] if persist == "aof" else []
    p = ServerProc(kind, args=list(args)).start()
    try:
        with p.conn() as c:
            assert c.cmd("DEBUG", "POPULATE", "1500", "key", "100") == b"+OK\r\n"
            if persist == "aof":
                c.cmd("BGREWRITEAOF")
                deadline = time.monotonic() + 15
                while _info_field(c.cmd("INFO", "persistence"),
                                  b"aof_rewrite_in_progress") != b"0" or _info_field(
                                      c.cmd("INFO", "persistence"),
                                      b"aof_rewrite_scheduled") != b"0":
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                assert c.cmd("SET", "after", "rewrite") == b"+OK\r\n"
            else:
                assert c.cmd("SAVE") == b"+OK\r\n"
        p.stop()
        p.args = args + ["--key-load-delay", "400",
                         "--loading-process-events-interval-bytes", "1024",
                         "--enable-protected-configs", "yes"]
        p.start(wait=False)
        deadline = time.monotonic() + 15
        while True:
            try:
                c = p.conn()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        with c:
            assert c.cmd("GET", "key:1") == b"-LOADING Redis is loading the dataset in memory\r\n"
            info = c.cmd("INFO", "persistence")
            assert _info_field(info, b"loading") == b"1"
            assert int(_info_field(info, b"loading_total_bytes")) > 0
            assert c.cmd("CONFIG", "SET", "loglevel", "debug") == b"+OK\r\n"
            assert c.cmd("CONFIG", "SET", "dir", "/nonexistent").startswith(b"-LOADING")
            while _info_field(c.cmd("INFO", "persistence"), b"loading") == b"1":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.cmd("GET", "key:1").startswith(b"$100\r\nvalue:1\x00")
            assert c.cmd("DBSIZE") == (b":1501\r\n" if persist == "aof" else b":1500\r\n")
    finally:
        p.cleanup()


def test_flow_client_recent_max_input_buffer():
    """INFO's client_recent_max_input_buffer shows the room reserved for a
    half-sent 200 KB argument, in redis-server's figure (the allocator's
    size class, plus the arguments read so far). Fresh servers: the figure
    is the peak of the last 8 seconds."""
    seen = []
    for kind in ("frtrio", "redis"):
        p = ServerProc(kind).start()
        try:
            with p.conn() as conn:
                s = socket.create_connection(("127.0.0.1", p.port))
                try:
                    s.sendall(b"*2\r\n$4\r\nECHO\r\n$200000\r\n" + b"v" * 100_000)
                    deadline = time.monotonic() + 5
                    while True:
                        v = int(_info_field(conn.cmd("INFO", "clients"),
                                            b"client_recent_max_input_buffer"))
                        if v >= 200_000 or time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
                    seen.append(v)
                finally:
                    s.close()
        finally:
            p.cleanup()
    assert seen[0] == seen[1] == 229396


def test_flow_eviction_core_order_and_limits():
    """The pure core (frtrio/core/client_evict.py): the limit (bytes, a
    percentage of maxmemory, 128 KB at least, 0 off); the largest bucket
    goes first and, within a bucket, the client that entered it first;
    no-evict clients stay; eviction stops once the sum is below the limit."""
    from support import engine, run

    from frtrio.core import client_evict as ce

    assert ce.eviction_limit(0, 10**9) == 0
    assert ce.eviction_limit(1000, 0) == 128 * 1024
    assert ce.eviction_limit(-10, 100 * 1024 * 1024) == 10 * 1024 * 1024
    assert ce.eviction_limit(-10, 0) == 0
    assert ce.bucket_of(0) == ce.bucket_of(32767) == 0
    assert ce.bucket_of(32768) == 1
    assert ce.bucket_of(1 << 40) == ce.NBUCKETS - 1

    srv = engine()
    ctl = srv.new_client("ctl")
    run(srv, ctl, "CLIENT", "NO-EVICT", "on")
    a, b, c, d = (srv.new_client(x) for x in "abcd")
    # b and c share the 512 KB-1 MB bucket, b entered it first
    a.qbuf, b.qbuf, c.qbuf, d.qbuf = 300_000, 600_000, 700_000, 900_000
    d.flags |= ce.F.NO_EVICT
    assert run(srv, ctl, "CONFIG", "SET", "maxmemory-clients", "2200000") == b"+OK\r\n"
    # no-evict clients enter the sum when the cron counts them
    assert srv.cev.total < 2_200_000
    srv.cev.refresh_all()
    # the jemalloc classes of the query buffers (8 bytes for ctl's empty
    # one: it has read nothing) + 17,152 each (the client struct and a new
    # client's 16 KB reply buffer)
    assert srv.cev.total == 2_772_744
    run(srv, ctl, "PING")  # before it runs: b goes (first in the top bucket), then the sum is below
    assert sorted(x.addr for x in srv.clients.values()) == ["a", "c", "ctl", "d"]
    assert srv.stats["evicted_clients"] == 1
    assert srv.cev.total < srv.cev.limit
    # the no-evict client alone over the limit: nothing else to evict
    assert run(srv, ctl, "CONFIG", "SET", "maxmemory-clients", "128kb") == b"+OK\r\n"
    run(srv, ctl, "PING")
    assert sorted(x.addr for x in srv.clients.values()) == ["ctl", "d"]
    assert srv.stats["evicted_clients"] == 3
    run(srv, ctl, "CONFIG", "SET", "maxmemory-clients", "0")
    assert srv.cev is None


def test_flow_transaction_runs_whole_when_its_output_passes_the_limit(frtrio_proc, redis_proc):
    """A transaction whose replies pass the normal class's hard limit runs
    to its end, but the client gets nothing of it and is closed (upstream
    unit/obuf-limits 'Execute transactions completely even if client output
    buffer limit is enforced')."""
    for proc in (frtrio_proc, redis_proc):
        with proc.conn() as r:
            r.cmd("FLUSHALL")
            r.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 100000 0 0")
            try:
                for _ in range(150):
                    r.cmd("LPUSH", "mylist2", "x" * 1000)
                with proc.conn() as t:
                    t.cmd("SET", "k1", "v1")
                    assert t.cmd("MULTI") == b"+OK\r\n"
                    for args in (("SET", "k2", "v2"), ("GET", "k2"), ("LRANGE", "mylist2", "0", "-1"),
                                 ("SET", "k3", "v3"), ("DEL", "k1")):
                        assert t.cmd(*args) == b"+QUEUED\r\n"
                    t.send(encode_request(["EXEC"]))
                    assert t.read_until_close(5) == (b"", True), proc.kind
                assert r.cmd("GET", "k1") == b"$-1\r\n"
                assert r.cmd("GET", "k3") == b"$2\r\nv3\r\n"
            finally:
                r.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")


def test_flow_soft_output_limit_enforced_by_the_cron_without_new_output():
    """A client that stays over the soft limit is closed once the limit's
    seconds pass even when nothing more is written to it: the clients cron
    checks it (upstream unit/obuf-limits 'Client output buffer soft limit is
    not enforced too early and is enforced when no traffic')."""
    from support import engine, run

    srv = engine()
    ctl = srv.new_client("ctl")
    sub = srv.new_client("sub")
    run(srv, ctl, "CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 100000 2")
    run(srv, sub, "SUBSCRIBE", "foo")
    sub.out.clear()
    sub.out_bytes = 0
    for _ in range(120):
        run(srv, ctl, "PUBLISH", "foo", "x" * 1000)
    from frtrio.core.client import F

    assert sub.out_bytes > 100000
    for step in range(40):  # 4 s of cron runs at hz 10, no traffic
        srv.now_ms += 100
        srv.resize_client_buffers(10)
        if step < 15:  # (1.5 s: the soft limit's time is not up)
            assert not sub.flags & F.CLOSE_ASAP, step
    assert sub.flags & F.CLOSE_ASAP and sub.out_bytes == 0
    assert srv.obuf.disconnections == 1


def test_flow_huge_random_count_stops_at_the_output_limit():
    """A random pick with a huge negative count under an output limit: the
    client is closed and gets nothing, the server goes on (upstream
    unit/obuf-limits 'Obuf limit, HRANDFIELD with huge count stopped
    mid-run'; frtrio used to try to build the whole reply). Servers of its
    own: Redis's picks move the C library's random state, which LOLWUT's
    differential test counts on."""
    cmds = [["HRANDFIELD", "rnd:h", "-999999999"],
            ["HRANDFIELD", "rnd:h", "-999999999", "WITHVALUES"],
            ["SRANDMEMBER", "rnd:s", "-999999999"],
            ["ZRANDMEMBER", "rnd:z", "-999999999", "WITHSCORES"]]
    for kind in ("frtrio", "redis"):
        with ServerProc(kind) as proc, proc.conn() as r:
            r.cmd("HSET", "rnd:h", "a", "b")
            r.cmd("SADD", "rnd:s", "a")
            r.cmd("ZADD", "rnd:z", "1", "a")
            r.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1000000 0 0")
            for cmd in cmds:
                with proc.conn() as t:
                    t.send(encode_request(cmd))
                    assert t.read_until_close(20) == (b"", True), (kind, cmd)
                assert r.cmd("PING") == b"+PONG\r\n"
