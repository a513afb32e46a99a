"""CONFIG SET port / bind move the client listeners of a running server
(Redis's changeListenPort / changeBindAddr), next to redis-server 7.0.15.

Each test runs one script against a frtrio-server and a redis-server process
side by side and compares what a client sees: the replies (errors word for
word), which ports accept a new connection, and whether a connection opened
before the change still answers. Explicit assertions then pin the facts the
transcripts must show, so that a change to both servers' behaviour could not
go unnoticed either.
"""

from __future__ import annotations

import socket

import pytest
from conftest import requires_redis
from support import RawConn, ServerProc, free_port

pytestmark = requires_redis

PORT_ERR = (b"-ERR CONFIG SET failed (possibly related to argument 'port') - "
            b"Unable to listen on this port. Check server logs.")
BIND_ERR = (b"-ERR CONFIG SET failed (possibly related to argument 'bind') - "
            b"Failed to bind to specified addresses.")


def accepts(port: int) -> bool:
    """Does a new connection to 127.0.0.1:port get PONG?"""
    try:
        with RawConn(port, timeout=3) as c:
            return c.cmd("PING") == b"+PONG\r\n"
    except OSError:
        return False


@pytest.fixture
def busy_port():
    """A port something else is listening on (127.0.0.1)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def pair():
    procs = [ServerProc("frtrio"), ServerProc("redis")]
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.cleanup()


def side_by_side(pair, script):
    """Run ``script(proc, port_names)`` on both; its transcript, with each
    server's own ports written as names, must be the same."""
    out = []
    for p in pair:
        names = {p.port: "P0"}
        out.append(script(p, names))
    assert out[0] == out[1], "frtrio (left) and redis-server (right) differ"
    return out[0]


def test_port_change_moves_the_listener_and_keeps_clients(pair, busy_port):
    def script(p, names):
        t = []
        old = p.port
        new = free_port()
        names[new] = "P1"
        c = RawConn(old)
        t.append(c.cmd("SET", "k", "v"))
        t.append(c.cmd("CONFIG", "SET", "port", str(new)))
        t.append(c.cmd("GET", "k"))  # the connection made before the move
        t.append(c.cmd("CONFIG", "GET", "port").replace(str(new).encode(), b"P1"))
        t.append(("old accepts", accepts(old), "new accepts", accepts(new)))
        # a port in use: refused, nothing changes
        t.append(c.cmd("CONFIG", "SET", "port", str(busy_port)))
        t.append(c.cmd("CONFIG", "GET", "port").replace(str(new).encode(), b"P1"))
        t.append(("new accepts", accepts(new)))
        # the same port again: nothing to do
        t.append(c.cmd("CONFIG", "SET", "port", str(new)))
        t.append(("new accepts", accepts(new)))
        # port 0: no TCP listener, the connection stays
        t.append(c.cmd("CONFIG", "SET", "port", "0"))
        t.append(("new accepts", accepts(new), c.cmd("PING")))
        t.append(c.cmd("CONFIG", "SET", "port", str(old)))
        t.append(("old accepts", accepts(old)))
        c.close()
        return t

    t = side_by_side(pair, script)
    assert t[1] == b"+OK\r\n" and t[2] == b"$1\r\nv\r\n"
    assert t[4] == ("old accepts", False, "new accepts", True)
    assert t[5] == PORT_ERR + b"\r\n"
    assert b"P1" in t[6] and t[7] == ("new accepts", True)
    assert t[11] == ("new accepts", False, b"+PONG\r\n")
    assert t[13] == ("old accepts", True)


def test_bind_to_an_unusable_address_fails_and_keeps_the_old_listener(pair):
    def script(p, names):
        t = []
        c = RawConn(p.port)
        for value in ("999.999.999.999",  # not an address
                      "192.0.2.1",  # TEST-NET-1: not on this host
                      "127.0.0.1 192.0.2.1",  # one of two fails: all refused
                      "127.0.0.1 127.0.0.1"):  # the second bind finds the first
            t.append(c.cmd("CONFIG", "SET", "bind", value))
            t.append(c.cmd("CONFIG", "GET", "bind"))
            t.append(("accepts", accepts(p.port)))
        # an optional address ("-") that cannot be bound is skipped
        t.append(c.cmd("CONFIG", "SET", "bind", "-192.0.2.1 127.0.0.1"))
        t.append(c.cmd("CONFIG", "GET", "bind"))
        t.append(("accepts", accepts(p.port)))
        # no address at all: no TCP listener, this connection stays
        t.append(c.cmd("CONFIG", "SET", "bind", ""))
        t.append(("accepts", accepts(p.port), c.cmd("PING")))
        t.append(c.cmd("CONFIG", "SET", "bind", "127.0.0.1"))
        t.append(("accepts", accepts(p.port)))
        c.close()
        return t

    t = side_by_side(pair, script)
    for i in range(4):
        assert t[3 * i] == BIND_ERR + b"\r\n"
        assert t[3 * i + 1] == b"*2\r\n$4\r\nbind\r\n$9\r\n127.0.0.1\r\n"
        assert t[3 * i + 2] == ("accepts", True)
    assert t[12:15] == [b"+OK\r\n", b"*2\r\n$4\r\nbind\r\n$20\r\n-192.0.2.1 127.0.0.1\r\n",
                        ("accepts", True)]
    assert t[16] == ("accepts", False, b"+PONG\r\n")
    assert t[18] == ("accepts", True)


def test_multi_parameter_config_set_rolls_back_on_a_failed_listen(pair, busy_port):
    def script(p, names):
        t = []
        c = RawConn(p.port)
        busy = str(busy_port)
        # the first parameter whose apply fails is named; every value is put back
        t.append(c.cmd("CONFIG", "SET", "maxmemory", "12345", "port", busy,
                       "maxmemory-policy", "allkeys-lru"))
        t.append(c.cmd("CONFIG", "SET", "bind", "127.0.0.1", "port", busy))
        t.append(c.cmd("CONFIG", "SET", "port", busy, "bind", "127.0.0.1"))
        t.append(c.cmd("CONFIG", "GET", "maxmemory"))
        t.append(c.cmd("CONFIG", "GET", "maxmemory-policy"))
        t.append(c.cmd("CONFIG", "GET", "bind"))
        t.append(c.cmd("CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$%d\r\n%d\r\n"
                 % (len(str(p.port)), p.port))
        t.append(("accepts", accepts(p.port)))
        # inside MULTI: the error is that command's reply, the rest runs
        t.append(c.cmd("MULTI"))
        t.append(c.cmd("CONFIG", "SET", "hz", "50", "port", busy))
        t.append(c.cmd("PING"))
        t.append(c.cmd("EXEC"))
        t.append(c.cmd("CONFIG", "GET", "hz"))
        # both at once, successfully: the listener moves to the new pair
        new = free_port()
        names[new] = "P1"
        t.append(c.cmd("CONFIG", "SET", "bind", "127.0.0.1", "port", str(new), "hz", "20"))
        t.append(("old accepts", accepts(p.port), "new accepts", accepts(new)))
        c.close()
        return t

    t = side_by_side(pair, script)
    assert t[0] == PORT_ERR + b"\r\n"
    assert t[1] == BIND_ERR + b"\r\n"
    assert t[2] == PORT_ERR + b"\r\n"
    assert t[3] == b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    assert t[4] == b"*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n"
    assert t[5] == b"*2\r\n$4\r\nbind\r\n$9\r\n127.0.0.1\r\n"
    assert t[6] is True and t[7] == ("accepts", True)
    assert t[11] == b"*2\r\n" + PORT_ERR + b"\r\n+PONG\r\n"
    assert t[12] == b"*2\r\n$2\r\nhz\r\n$2\r\n10\r\n"
    assert t[13] == b"+OK\r\n" and t[14] == ("old accepts", False, "new accepts", True)


def unix_cmd(path: str, *args) -> bytes:
    from support import encode_request

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(encode_request(args))
        return s.recv(1000)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_unix_socket_alone_then_tcp_by_config_set(kind, tmp_path):
    """Started with no TCP listener (port 0) but a unix socket, the server
    runs; CONFIG SET port through the unix socket opens the TCP listener."""
    import time

    path = str(tmp_path / "s.sock")
    p = ServerProc(kind, args=["--unixsocket", path])
    p.port = 0  # (command() passes --port 0)
    try:
        p.start(wait=False)
        deadline = time.monotonic() + 15
        while True:
            try:
                assert unix_cmd(path, "PING") == b"+PONG\r\n"
                break
            except OSError:
                assert p.proc.poll() is None, p.proc.communicate()
                assert time.monotonic() < deadline, "no unix socket"
                time.sleep(0.05)
        port = free_port()
        assert unix_cmd(path, "CONFIG", "SET", "port", str(port)) == b"+OK\r\n"
        assert accepts(port)
    finally:
        p.cleanup()


def test_bind_source_addr_is_where_a_replica_connects_from():
    """A replica's connection to its master leaves from bind-source-addr
    (here a master stand-in: a listening socket that looks at its peer)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(10)
    p = ServerProc("frtrio", args=["--bind-source-addr", "127.0.0.2"])
    try:
        p.start()
        with RawConn(p.port) as c:
            assert c.cmd("REPLICAOF", "127.0.0.1", str(lst.getsockname()[1])) == b"+OK\r\n"
            conn, peer = lst.accept()
            conn.close()
            assert peer[0] == "127.0.0.2"
            # unset: the kernel's choice again
            assert c.cmd("CONFIG", "SET", "bind-source-addr", "") == b"+OK\r\n"
            conn, peer = lst.accept()  # (the replica reconnects)
            conn.close()
            assert peer[0] == "127.0.0.1"
            c.cmd("REPLICAOF", "NO", "ONE")
    finally:
        lst.close()
        p.cleanup()


def test_cluster_bus_listener_stays_when_the_port_moves():
    """Cluster mode: CONFIG SET port moves the client listener only; the
    bus listener (port + 10000 at start) stays where it was, as in Redis."""

    def script(p):
        old, new = p.port, free_port()
        with RawConn(old) as c:
            r = c.cmd("CONFIG", "SET", "port", str(new))
        out = [r, accepts(old), accepts(new)]
        for bus in (old + 10000, new + 10000):
            with socket.socket() as s:
                out.append(s.connect_ex(("127.0.0.1", bus)) == 0)
        return out

    procs = [ServerProc(k, args=["--cluster-enabled", "yes"]) for k in ("frtrio", "redis")]
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        res = [script(p) for p in procs]
    finally:
        for p in procs:
            p.cleanup()
    assert res[0] == res[1] == [b"+OK\r\n", False, True, True, False]
