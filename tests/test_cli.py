"""The frtrio-server command line as a real process, next to redis-server.

``test_config.py`` compares the config loader in-process on many cases; here
a sample goes through the real binaries, plus what only a process shows:
exit codes, stdout/stderr, pidfile, logfile, daemonize, signals, a port in
use, rename-command, config from stdin.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import requires_redis
from support import REDIS_SERVER, RawConn, free_port

pytestmark = requires_redis

FRTRIO = [sys.executable, "-m", "frtrio.cli"]
ENTRY = shutil.which("frtrio-server")
LOG_LINE = re.compile(r"^\d+:[CM] \d\d \w\w\w \d{4} \d\d:\d\d:\d\d\.\d{3} [.\-*#] ")


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="cli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_many(cmds, cwd, stdin=b"", timeout=30):
    """Run commands concurrently; [(rc, stdout, stderr)]. Each must exit."""
    procs = [subprocess.Popen(c, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for c in cmds]
    out = []
    for p in procs:
        try:
            o, e = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
            out.append((None, o, e))
            continue
        out.append((p.returncode, o, e))
    return out


def strip_log(b: bytes) -> list[str]:
    return [LOG_LINE.sub("", ln) for ln in b.decode().splitlines()]


CASES = [
    ["--port", "abc"],
    ["--save", "--port", "abc"],
    ["--appendfsync", "sometimes", "--port", "1"],
    ["--bind"] + ["127.0.0.%d" % i for i in range(1, 18)],
    ["my.conf", "--hz", "x"],
    ["my.conf", "-"],
    ["--logfile", "/nonexistent/x.log"],
]


def test_bad_configs_same_as_redis_as_processes(work):
    with open(os.path.join(work, "my.conf"), "w") as f:
        f.write("# c\nport 7000\n\nmaxmemory 1xb\n")
    cmds = []
    for args in CASES:
        cmds.append([REDIS_SERVER] + args)
        cmds.append(FRTRIO + args)
    res = run_many(cmds, work, stdin=b"timeout x\n")
    for i, args in enumerate(CASES):
        r, f = res[2 * i], res[2 * i + 1]
        assert r[0] == 1 and f[0] == 1, args
        assert f[2] == r[2], (args, r[2], f[2])


def test_entry_point_and_missing_config_file(work):
    cmd = [ENTRY] if ENTRY else FRTRIO
    (r, f) = run_many([[REDIS_SERVER, "nope.conf"], cmd + ["nope.conf"]], work)
    assert r[0] == f[0] == 1
    assert strip_log(f[1]) == strip_log(r[1]) == [
        "Fatal error, can't open config file '%s/nope.conf': No such file or directory"
        % os.path.realpath(work)]


def test_version_and_help(work):
    res = run_many([FRTRIO + ["--version"], FRTRIO + ["-v"], FRTRIO + ["-h"],
                    [REDIS_SERVER, "--help"]], work)
    assert res[0][0] == res[1][0] == 0
    assert res[0][1].startswith(b"Redis server v=7.0.15 sha=")
    assert res[2][0] == res[3][0] == 1
    assert res[2][2].startswith(b"Usage: ./frtrio-server [/path/to/redis.conf] [options] [-]")


def _wait_port(port, timeout=20, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("exited: %r" % (proc.communicate(),))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(100):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d not answering" % port)


def _shutdown(port):
    with RawConn(port) as c:
        c.send(b"SHUTDOWN\r\n")
        data, closed = c.read_until_close(15)
    assert closed


def _wait_gone(pid, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_pidfile_logfile_and_signals(work):
    port = free_port()
    pidfile = os.path.join(work, "s.pid")
    log = os.path.join(work, "s.log")
    p = subprocess.Popen(FRTRIO + ["--port", str(port), "--pidfile", pidfile, "--logfile", log,
                                   "--save", ""],
                         cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_port(port, proc=p)
        assert open(pidfile).read().strip() == str(p.pid)
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait(15) == 0
        assert not os.path.exists(pidfile)
        out, err = p.communicate()
        assert out == b"" and err == b""  # everything went to the logfile
        lines = open(log).read().splitlines()
        assert all(LOG_LINE.match(ln) for ln in lines), lines
        text = "\n".join(lines)
        for needle in ("Redis is starting", "Ready to accept connections",
                       "Received SIGTERM scheduling shutdown", "ready to exit, bye bye"):
            assert needle in text
    finally:
        p.kill()
        p.wait()
    # SIGINT and SHUTDOWN exit 0 as well, and remove the pidfile
    for how in ("SIGINT", "SHUTDOWN"):
        p = subprocess.Popen(FRTRIO + ["--port", str(port), "--pidfile", pidfile,
                                       "--save", "", "--loglevel", "warning"],
                             cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_port(port, proc=p)
            if how == "SIGINT":
                os.kill(p.pid, signal.SIGINT)
            else:
                _shutdown(port)
            assert p.wait(15) == 0
            assert not os.path.exists(pidfile)
            out, _ = p.communicate()
            # loglevel warning: notices such as "Ready to accept connections" are not logged
            assert b"Ready to accept connections" not in out
        finally:
            p.kill()
            p.wait()


def test_daemonize_yes(work):
    port = free_port()
    pidfile = os.path.join(work, "d.pid")
    log = os.path.join(work, "d.log")
    launcher = subprocess.run(FRTRIO + ["--daemonize", "yes", "--port", str(port), "--pidfile",
                                        pidfile, "--logfile", log, "--save", "",
                                        "--dir", work],
                              cwd=work, capture_output=True, timeout=30)
    assert launcher.returncode == 0
    pid = None
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(open(pidfile).read())
        _wait_port(port)
        with RawConn(port) as c:
            assert c.cmd("CONFIG", "GET", "daemonize") == \
                b"*2\r\n$9\r\ndaemonize\r\n$3\r\nyes\r\n"
        _shutdown(port)
        assert _wait_gone(pid)
        assert not os.path.exists(pidfile)
        assert "Ready to accept connections" in open(log).read()
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_port_in_use_exits_1(work):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        res = run_many([[REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                        FRTRIO + ["--port", str(port), "--bind", "127.0.0.1", "--save", ""]],
                       work)
    finally:
        s.close()
    assert res[0][0] == res[1][0] == 1
    assert b"Address already in use" in res[1][1] + res[1][2]


def test_config_from_stdin_and_rename_command(work):
    """Config from stdin, then rename-command seen from a client, on both."""
    conf = b"rename-command GET \"\"\nrename-command SET myset\nsave \"\"\n"
    got = []
    for base in ([REDIS_SERVER], FRTRIO):
        port = free_port()
        p = subprocess.Popen(base + ["-", "--port", str(port)], cwd=work,
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        p.stdin.write(conf)
        p.stdin.close()
        try:
            _wait_port(port, proc=p)
            with RawConn(port) as c:
                got.append([c.cmd("SET", "a", "1"), c.cmd("MYSET", "a", "1"),
                            c.cmd("GET", "a"), c.cmd("MGET", "a"),
                            c.cmd("CONFIG", "GET", "save")])
        finally:
            p.kill()
            p.wait()
    assert got[0] == got[1]


def test_config_rewrite_error_without_file(work):
    port = free_port()
    p = subprocess.Popen(FRTRIO + ["--port", str(port), "--save", ""], cwd=work,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc=p)
        with RawConn(port) as c:
            assert c.cmd("CONFIG", "REWRITE") == \
                b"-ERR The server is running without a config file\r\n"
            c.cmd("CONFIG", "SET", "loglevel", "debug")
            assert c.cmd("CONFIG", "GET", "loglevel").endswith(b"debug\r\n")
    finally:
        p.kill()
        p.wait()


def test_config_rewrite_then_restart_same_config(work):
    conf = os.path.join(work, "r.conf")
    with open(conf, "w") as f:
        f.write("# mine\nport %d\nsave \"\"\n" % free_port())
    port = int(open(conf).read().split("port ")[1].split()[0])
    p = subprocess.Popen(FRTRIO + [conf], cwd=work, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc=p)
        with RawConn(port) as c:
            assert c.cmd("CONFIG", "SET", "maxmemory", "1gb") == b"+OK\r\n"
            assert c.cmd("CONFIG", "SET", "requirepass", "pw") == b"+OK\r\n"
            assert c.cmd("CONFIG", "REWRITE") == b"+OK\r\n"
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        p.kill()
        p.wait()
    text = open(conf).read()
    assert text.startswith("# mine\nport %d\nsave \"\"\n" % port)
    assert "maxmemory 1gb\n" in text and 'requirepass "pw"\n' in text
    # the rewritten file starts the server again, with the same settings
    p = subprocess.Popen(FRTRIO + [conf], cwd=work, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        _wait_port(port, proc=p)
        with RawConn(port) as c:
            assert c.cmd("GET", "x") == b"-NOAUTH Authentication required.\r\n"
            assert c.cmd("AUTH", "pw") == b"+OK\r\n"
            assert c.cmd("CONFIG", "GET", "maxmemory") == \
                b"*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n"
    finally:
        p.kill()
        p.wait()


def test_startup_banner_with_always_show_logo(work):
    """With always-show-logo yes the banner carries the `` PID: <pid>`` line
    Redis's test harness waits for; without it, Redis's one-line
    ``Running mode=..., port=...`` notice (both kinds print it)."""
    for logo, kinds in (("yes", (FRTRIO,)), ("no", ([REDIS_SERVER], FRTRIO))):
        for base in kinds:
            port = free_port()
            p = subprocess.Popen(base + ["--port", str(port), "--save", "", "--always-show-logo", logo],
                                 cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                _wait_port(port, proc=p)
            finally:
                p.terminate()
                out = p.communicate(timeout=10)[0].decode()
            if logo == "yes":
                assert " PID: %d" % p.pid in out
            else:
                assert "Running mode=standalone, port=%d." % port in out, out
