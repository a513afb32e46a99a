"""Security: requirepass / AUTH / HELLO AUTH, what an unauthenticated client
may run, bind and protected-mode, compared with redis-server 7.0.

Both servers run with the same options; every case is sent to both on fresh
connections and the reply bytes must be equal (client ids in HELLO replies
excepted). protected-mode is checked for real from a non-loopback address
when the host has one (connecting to our own non-loopback IP gives a peer
address that is not 127.0.0.1).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest
from conftest import requires_redis
from support import REDIS_SERVER, ServerProc, encode_request, free_port

pytestmark = requires_redis


class _PwServer(ServerProc):
    """A server with requirepass: ready when it answers at all (NOAUTH)."""

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited" % self.kind)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(100):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s did not start" % self.kind)


@pytest.fixture(scope="module")
def pw_servers():
    ps = []
    try:
        for k in ("frtrio", "redis"):
            ps.append(_PwServer(k, args=["--requirepass", "s3cret"]).start(timeout=20))
        yield ps
    finally:
        for p in ps:
            p.cleanup()


_ID = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")


def _norm(b: bytes) -> bytes:
    return _ID.sub(b"$2\r\nid\r\n:ID\r\n", b)


def _session(p, steps):
    """Run commands on a fresh connection; the list of raw replies."""
    out = []
    with p.conn() as c:
        for args in steps:
            if isinstance(args, bytes):
                c.send(args)
                out.append(_norm(c.read_reply()))
            else:
                out.append(_norm(c.cmd(*args)))
    return out


SESSIONS = [
    [("PING",), ("GET", "k"), ("SET", "k", "v"), ("NOSUCH", "x"), ("GET",),
     ("AUTH", "wrong"), ("AUTH", "s3cret"), ("PING",), ("GET", "k")],
    [("AUTH", "default", "s3cret"), ("SET", "k", "1"), ("RESET",), ("GET", "k")],
    [("AUTH", "nosuch", "s3cret"), ("AUTH", "a", "b", "c"), ("AUTH",)],
    [("HELLO", "3"), ("HELLO", "3", "AUTH", "default", "bad"),
     ("HELLO", "3", "AUTH", "default", "s3cret"), ("PING",)],
    [("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "me"), ("CLIENT", "GETNAME")],
    [("HELLO",), ("HELLO", "4"), ("HELLO", "x")],
    [("MULTI",), ("DISCARD",), ("CLIENT", "SETNAME", "x"), ("COMMAND", "COUNT"),
     ("SELECT", "1"), ("CONFIG", "GET", "requirepass"), ("QUIT",)],
    [b"PING\r\n", b"AUTH s3cret\r\n", b"PING\r\n"],
    [("AUTH", "s3cret"), ("MULTI",), ("AUTH", "s3cret"), ("EXEC",)],
]


@pytest.mark.parametrize("steps", SESSIONS, ids=lambda s: str(s[0])[:40])
def test_auth_sessions_same(pw_servers, steps):
    f, r = pw_servers
    assert _session(f, steps) == _session(r, steps)


def test_rejected_exec_is_execabort(pw_servers):
    f, r = pw_servers
    steps = [("EXEC",), ("AUTH", "s3cret"), ("EXEC", "x")]
    assert _session(f, steps) == _session(r, steps)


def test_auth_without_password_configured(diff):
    for steps in ([("AUTH", "x")], [("AUTH", "default", "anything")], [("AUTH", "bob", "x")],
                  [("HELLO", "3", "AUTH", "default", "x")]):
        a = _session_on(diff.f, steps)
        b = _session_on(diff.r, steps)
        assert a == b


def _session_on(conn, steps):
    return [_norm(conn.cmd(*s)) for s in steps]


def test_requirepass_set_and_cleared_at_runtime(diff):
    """CONFIG SET requirepass: existing connections stay authenticated, new
    ones must AUTH; clearing it lets new ones in."""
    procs = {}
    for name, conn in (("f", diff.f), ("r", diff.r)):
        procs[name] = conn
    ports = {"f": diff.f.sock.getpeername()[1], "r": diff.r.sock.getpeername()[1]}
    out = {}
    for k in ("f", "r"):
        conn = procs[k]
        res = [conn.cmd("CONFIG", "SET", "requirepass", "pw2"), conn.cmd("PING")]
        with socket.create_connection(("127.0.0.1", ports[k])) as s:
            s.sendall(encode_request(["PING"]) + encode_request(["AUTH", "pw2"]) +
                      encode_request(["PING"]))
            res.append(_recv_n(s, 3))
        res.append(conn.cmd("CONFIG", "SET", "requirepass", ""))
        with socket.create_connection(("127.0.0.1", ports[k])) as s:
            s.sendall(encode_request(["PING"]))
            res.append(_recv_n(s, 1))
        out[k] = res
    assert out["f"] == out["r"]


def _recv_n(s, n):
    data = b""
    s.settimeout(5)
    while data.count(b"\r\n") < n:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


# --- bind and protected mode ---------------------------------------------------------


def _non_loopback_ip():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        ip = s.getsockname()[0]
        s.close()
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def _start_raw(kind, args):
    port = free_port()
    cmd = ([REDIS_SERVER] if kind == "redis" else [sys.executable, "-m", "frtrio.cli"])
    p = subprocess.Popen(cmd + ["--port", str(port), "--save", ""] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, cwd="/tmp")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(100):
                    return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    p.wait()
    raise AssertionError("%s did not start" % kind)


def _probe(ip, port):
    """What a client at `ip` gets for PING: reply bytes, or the connect error."""
    try:
        with socket.create_connection((ip, port), timeout=3) as s:
            s.sendall(b"PING\r\n")
            data = b""
            s.settimeout(3)
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
                if data.endswith(b"\r\n") and not data.startswith(b"-DENIED"):
                    break
            return data
    except OSError as e:
        return type(e).__name__


IP = _non_loopback_ip()


@pytest.mark.skipif(IP is None, reason="the host has no non-loopback IPv4 address")
@pytest.mark.parametrize("args", [
    [],  # the default bind "* -::*"
    ["--bind", "0.0.0.0"],
    ["--bind", "0.0.0.0", "--protected-mode", "no"],
    ["--bind", "0.0.0.0", "--requirepass", "x"],
    ["--bind", "127.0.0.1"],
    ["--bind", "* -::*"],
], ids=lambda a: " ".join(a) or "default")
def test_protected_mode_and_bind_same(args):
    got = {}
    for kind in ("frtrio", "redis"):
        p, port = _start_raw(kind, args)
        try:
            got[kind] = (_probe(IP, port), _probe("127.0.0.1", port))
        finally:
            p.kill()
            p.wait()
    assert got["frtrio"] == got["redis"]


def _command_names(conn):
    raw = conn.cmd("COMMAND", "LIST")
    return sorted(x.decode() for x in raw.split(b"\r\n") if x and x[:1] not in b"*$")


def test_every_command_unauthenticated_same(pw_servers):
    """Every command frtrio implements, sent unauthenticated with as many
    arguments as its arity asks: the same reply as redis-server (NOAUTH for
    all but the few no-auth commands)."""
    f, r = pw_servers
    with f.conn() as fc, r.conn() as rc:
        arity = {}
        with f.conn() as ac:
            ac.cmd("AUTH", "s3cret")
            names = _command_names(ac)
            assert len(names) > 100
            for n in names:
                info = ac.cmd("COMMAND", "INFO", n)
                m = re.match(rb"\*1\r\n\*\d+\r\n\$\d+\r\n[^\r]+\r\n:(-?\d+)", info)
                arity[n] = int(m.group(1)) if m else 1
        diffs = []
        for n in names:
            if "|" in n or n in ("quit", "reset", "shutdown"):
                continue
            argc = abs(arity[n])
            args = [n] + ["x"] * max(0, argc - 1)
            a, b = fc.cmd(*args), rc.cmd(*args)
            if _norm(a) != _norm(b):
                diffs.append((n, a[:80], b[:80]))
    assert not diffs
