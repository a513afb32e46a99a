"""Test support: start real frtrio-server / redis-server processes on loopback,
talk raw RESP to them, and compare replies byte for byte.

Every process started here is stopped by its pid when the test (or fixture)
ends; ports come from the kernel (bind to port 0), so parallel runs do not
collide.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from frtrio.core.engine import INTERNAL_ERROR_MARK  # noqa: E402

# Caught bugs logged by frtrio processes started here (see ServerProc.stop).
INTERNAL_ERRORS: list[str] = []
_scanned_logs: set[str] = set()

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
HAVE_REDIS = REDIS_SERVER is not None


def wait_for(pred, timeout: float = 30.0, what: str | None = None, step: float = 0.05):
    """Poll pred until it returns something true and return that. On timeout:
    raise AssertionError naming ``what`` if given, else return None (for a
    caller that asserts with its own context)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError("timed out waiting for " + what)
            return None
        time.sleep(step)


def free_port() -> int:
    """A TCP port free now on 127.0.0.1 whose +10000 bus port is free too."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port + 10000 > 65535:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        finally:
            t.close()
        return port
    raise RuntimeError("no free port")


_STARTED: list = []  # every ServerProc started by this process


@atexit.register
def _stop_leftovers() -> None:
    """A test process that ends without its fixtures' teardown (interrupted,
    or a test that lost track of a server) stops what it started."""
    for p in _STARTED:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()


class ServerProc:
    """A frtrio-server or redis-server process."""

    def __init__(self, kind: str, args: list[str] | None = None, port: int | None = None,
                 workdir: str | None = None, config_text: str | None = None):
        self.kind = kind
        self.port = port or free_port()
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix=f"{kind}-")
        self.args = list(args or [])
        self.config_text = config_text
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(self.dir, "server.log")

    def command(self) -> list[str]:
        base = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--enable-debug-command", "yes",
                # full syncs start at once (Redis's default waits 5 s to batch
                # replicas; tests of that delay set it themselves)
                "--repl-diskless-sync-delay", "0",
                "--logfile", self.log_path]
        pre = []
        if self.config_text is not None:
            path = os.path.join(self.dir, "server.conf")
            if not os.path.exists(path):  # (a restart keeps what CONFIG REWRITE wrote)
                with open(path, "w") as f:
                    f.write(self.config_text)
            pre = [path]
        if self.kind == "redis":
            return [REDIS_SERVER] + pre + base + self.args
        return [sys.executable, "-m", "frtrio.cli"] + pre + base + self.args

    def start(self, wait: bool = True, timeout: float = 15.0) -> "ServerProc":
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("%s on port %d is already running" % (self.kind, self.port))
        _STARTED.append(self)
        self.proc = subprocess.Popen(
            self.command(), cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}: {out!r} {err!r}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(100).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start on port {self.port}")

    def conn(self, timeout: float = 10.0) -> "RawConn":
        return RawConn(self.port, timeout)

    def client(self, **kw):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else 0

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    pass
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()
            self.collect_internal_errors()

    def collect_internal_errors(self) -> None:
        """Record every caught bug this frtrio process logged (the session
        fails on any: tests/conftest.py)."""
        if self.kind != "frtrio" or self.log_path in _scanned_logs:
            return
        _scanned_logs.add(self.log_path)
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
            for i, line in enumerate(lines):
                if INTERNAL_ERROR_MARK in line:
                    tb = [x for x in lines[i + 1:i + 40] if not x[:1].isdigit()]  # its traceback
                    INTERNAL_ERRORS.append("%s: %s\n    %s" % (self.log_path, line.strip(),
                                                              "\n    ".join(tb)))
        except OSError:
            pass

    def cleanup(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        # (``with ServerProc(...).start() as p`` must not start a second one)
        return self if self.proc is not None and self.proc.poll() is None else self.start()

    def __exit__(self, *exc):
        self.cleanup()


def reply_end(buf: bytes, pos: int = 0) -> int:
    """Offset just past one complete RESP reply starting at pos, or -1."""
    if pos >= len(buf):
        return -1
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return -1
    t = buf[pos : pos + 1]
    line = buf[pos + 1 : nl]
    end = nl + 2
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return end
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return end
        return end + n + 2 if len(buf) >= end + n + 2 else -1
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(line)
        if n < 0:
            return end
        if t in (b"%", b"|"):
            n *= 2
        p = end
        for _ in range(n):
            p = reply_end(buf, p)
            if p < 0:
                return -1
        return p
    raise ValueError(f"not RESP: {buf[pos:pos+40]!r}")


class RawConn:
    """A raw socket speaking RESP; replies are compared as bytes."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, *args) -> bytes:
        """Send one command (multibulk) and return the raw bytes of its reply."""
        self.send(encode_request(args))
        return self.read_reply()

    def read_reply(self) -> bytes:
        while True:
            end = reply_end(self.buf) if self.buf else -1
            if end >= 0:
                r, self.buf = self.buf[:end], self.buf[end:]
                return r
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += data

    def read_until_close(self, timeout: float = 5.0) -> tuple[bytes, bool]:
        """Everything the server sends until it closes the connection."""
        self.sock.settimeout(timeout)
        data = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except (socket.timeout, TimeoutError):
            return data, False
        except ConnectionResetError:
            return data, True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def encode_request(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def parse_reply(buf: bytes):
    """A RESP2/RESP3 reply as Python values (status/error lines as bytes,
    maps as flat lists), for tests that compare contents, not bytes."""
    v, _ = _parse_reply(buf, 0)
    return v


def _parse_reply(buf, pos):
    t = buf[pos : pos + 1]
    nl = buf.find(b"\r\n", pos)
    line = buf[pos + 1 : nl]
    p = nl + 2
    if t in (b"+", b"-"):
        return line, p
    if t == b":":
        return int(line), p
    if t == b"_":
        return None, p
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, p
        return buf[p : p + n], p + n + 2
    if t in (b"*", b"~", b"%"):
        n = int(line)
        if n < 0:
            return None, p
        if t == b"%":
            n *= 2
        out = []
        for _ in range(n):
            v, p = _parse_reply(buf, p)
            out.append(v)
        return out, p
    raise ValueError(buf[pos:])


def run_script(diff, script):
    """Send each command of a script through the differential fixture."""
    for line in script:
        diff(*line)


def switch_to_resp3(diff):
    a, b = diff.both("HELLO", "3")
    assert a.startswith(b"%7") and b.startswith(b"%7")


# --- the in-process engine (no sockets, no Trio) --------------------------------------


def engine(conf: dict | None = None, *, ndb: int | None = None, now_ms: int = 1_000_000,
           seed: int = 1):
    """A fresh ``engine.Server`` with every command registered: ``conf`` maps
    parameter names to values (set as a config file would), ``now_ms`` is
    its clock, ``seed`` its RNG."""
    import random

    import frtrio.commands  # noqa: F401  (registers every command)
    from frtrio.config import Config
    from frtrio.core.engine import Server

    cfg = Config()
    for k, v in (conf or {}).items():
        cfg.values[k] = v
    srv = Server(cfg, random.Random(seed), ndb=ndb)
    srv.now_ms = now_ms
    return srv


def run(srv, c, *args) -> bytes:
    """Execute one command for client ``c``; its reply bytes."""
    srv.execute(c, [a if isinstance(a, bytes) else str(a).encode() for a in args])
    return c.take_output()


def wait_epochs_agree(clients, timeout: float = 20.0) -> None:
    """Every node reports the same cluster_current_epoch (gossip has spread
    it). A replica that starts an election from a stale current epoch asks
    for votes in an epoch the masters have already passed and is refused,
    in Redis too; tests wait for this before a CLUSTER FAILOVER, as Redis's
    own suite waits for a consistent cluster."""

    def epochs():
        out = set()
        for c in clients:
            info = c.execute_command("CLUSTER", "INFO")
            info = info.decode() if isinstance(info, bytes) else info
            for line in info.splitlines():
                if line.startswith("cluster_current_epoch:"):
                    out.add(line.split(":", 1)[1].strip())
        return len(out) == 1

    wait_for(epochs, timeout, what="every node on the same current epoch")


def wait_roles_agree(clients, timeout: float = 20.0) -> None:
    """Every node's CLUSTER NODES gives every node the same role and master.
    A master that still takes a new replica for a master refuses it a
    failover vote ("it is a master node"), in Redis too."""

    def view(c):
        text = c.execute_command("CLUSTER", "NODES")
        text = text.decode() if isinstance(text, bytes) else text
        out = set()
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 4:
                role = "slave" if "slave" in f[2] else "master"
                out.add((f[0], role, f[3]))
        return out

    wait_for(lambda: len({frozenset(view(c)) for c in clients}) == 1, timeout,
             what="every node agrees on every node's role")


class ReplStream:
    """What a server propagates to its replicas: a connection that sent
    SYNC, past the snapshot, reading the commands that follow (PING and
    SELECT left out). For differential tests of propagation."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.conn = RawConn(port, timeout)
        self.conn.send(encode_request(("SYNC",)))
        c = self.conn
        while True:  # newlines (keepalives while the snapshot is made), then $<len> or $EOF:<mark>
            while b"\r\n" not in c.buf:
                c.buf += c.sock.recv(65536)
            c.buf = c.buf.lstrip(b"\n")
            if c.buf.startswith(b"$"):
                break
        nl = c.buf.index(b"\r\n")
        head, c.buf = c.buf[1:nl], c.buf[nl + 2:]
        if head.startswith(b"EOF:"):
            mark = head[4:]
            while mark not in c.buf:
                c.buf += c.sock.recv(65536)
            c.buf = c.buf[c.buf.index(mark) + len(mark):]
        else:
            n = int(head)
            while len(c.buf) < n:
                c.buf += c.sock.recv(65536)
            c.buf = c.buf[n:]

    def commands_until(self, last: bytes) -> list[list[bytes]]:
        """The propagated commands up to the first whose name is ``last``
        (included), lowercased names, PING and SELECT left out."""
        out = []
        while True:
            cmd = parse_reply(self.conn.read_reply())
            cmd[0] = cmd[0].lower()
            if cmd[0] in (b"ping", b"select"):
                continue
            out.append(cmd)
            if cmd[0] == last:
                return out

    def close(self) -> None:
        self.conn.close()
