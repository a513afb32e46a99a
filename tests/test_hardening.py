"""A node never dies because of a client: connection-level abuse against a
real frtrio-server process, side by side with redis-server where Redis
defines the behaviour. Every test checks that the keys written before the
abuse are all there after it."""

from __future__ import annotations

import os
import signal
import socket
import struct

import pytest
from support import HAVE_REDIS, ServerProc

pytestmark = pytest.mark.e2e


def _rst_connect(port: int, n: int) -> None:
    """Open n connections and reset each at once (SO_LINGER 0)."""
    for _ in range(n):
        s = socket.socket()
        s.settimeout(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            pass
        s.close()


def _fill(r, n=200):
    for i in range(n):
        r.set(f"key:{i}", f"value:{i}")


def _check(r, n=200):
    assert r.dbsize() == n
    assert r.mget([f"key:{i}" for i in range(n)]) == [f"value:{i}".encode() for i in range(n)]


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_rst_flood_and_aborts_in_accept_queue_leave_node_serving(kind):
    """Resets before and after accept, and connections reset while queued in
    the accept backlog of a SIGSTOPped node: the node logs and goes on."""
    if kind == "redis" and not HAVE_REDIS:
        pytest.skip("no redis-server")
    with ServerProc(kind) as p:
        r = p.client()
        _fill(r)
        _rst_connect(p.port, 300)
        for _ in range(2):
            os.kill(p.proc.pid, signal.SIGSTOP)
            try:
                _rst_connect(p.port, 200)
            finally:
                os.kill(p.proc.pid, signal.SIGCONT)
            _rst_connect(p.port, 100)
        assert p.proc.poll() is None, "the node died"
        r = p.client()
        assert r.ping()
        _check(r)
        if kind == "frtrio":
            log = open(p.log_path).read()
            assert "Failed listening" not in log


# --- never a silent failure ------------------------------------------------------


@pytest.mark.expects_internal_error
def test_a_bug_in_a_command_is_answered_counted_and_logged(monkeypatch, caplog):
    """An unexpected exception inside a command answers -ERR internal error,
    shows in `INFO frtrio` as internal_errors, is logged with its traceback and
    the command name, and the next command is served normally."""
    import random

    import frtrio.commands  # noqa: F401
    from frtrio import engine
    from frtrio.commands.table import lookup
    from frtrio.config import Config

    srv = engine.Server(Config(), random.Random(1))
    srv.now_ms = 1_000_000
    c = srv.new_client()
    cmd = lookup([b"strlen"])

    def broken(c, argv):
        raise RuntimeError("boom")

    monkeypatch.setattr(cmd, "handler", broken)
    before = engine.internal_errors_total
    srv.execute(c, [b"STRLEN", b"k"])
    assert c.take_output() == b"-ERR internal error in 'strlen': RuntimeError\r\n"
    assert engine.internal_errors_total == before + 1
    monkeypatch.undo()
    srv.execute(c, [b"SET", b"k", b"v"])
    srv.execute(c, [b"STRLEN", b"k"])
    assert c.take_output() == b"+OK\r\n:1\r\n"
    srv.execute(c, [b"INFO", b"frtrio"])
    assert b"# Frtrio\r\ninternal_errors:1\r\n" in c.take_output()
    srv.execute(c, [b"INFO", b"everything"])
    assert b"internal_errors" not in c.take_output()  # INFO stays Redis's
    rec = [r for r in caplog.records if engine.INTERNAL_ERROR_MARK in r.getMessage()]
    assert rec and "strlen" in rec[0].getMessage() and rec[0].exc_info is not None
