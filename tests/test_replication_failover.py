"""Standalone FAILOVER (spec §6.7) with real processes: the master pauses
writes, waits for a replica to have its whole stream, becomes that
replica's replica and hands it the master role with PSYNC ... FAILOVER.
Every pairing of frtrio and redis-server 7.0.15, the errors side by side,
ABORT, and TIMEOUT with and without FORCE."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from support import HAVE_REDIS, ServerProc, wait_for
from test_replication import dataset, link_up, random_load

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]

KINDS = [("frtrio", "frtrio"), ("frtrio", "redis"), ("redis", "frtrio")]


def _pair(mkind, rkind):
    m = ServerProc(mkind).start()
    s = ServerProc(rkind, ["--replicaof", "127.0.0.1", str(m.port)]).start()
    return m, s


def _role(r):
    return r.execute_command("ROLE")[0].decode()


@pytest.mark.parametrize("mkind,rkind", KINDS)
def test_failover_swaps_roles_and_keeps_every_key(mkind, rkind):
    """FAILOVER on a master: its replica becomes the master with the same
    data and continues the history (partial resync of the old master)."""
    m, s = _pair(mkind, rkind)
    try:
        rm, rs = m.client(), s.client()
        random_load(rm, 800, 11)
        wait_for(lambda: link_up(rs) and rs.info("replication")["master_repl_offset"]
                 == rm.info("replication")["master_repl_offset"], what="replica caught up")
        before = dataset(rm)
        assert rm.execute_command("FAILOVER") == b"OK"
        wait_for(lambda: _role(rs) == "master" and _role(rm) == "slave",
                 what="roles swapped")
        wait_for(lambda: link_up(rm), what="old master replicates from the new one")
        assert rm.info("replication")["master_failover_state"] == "no-failover"
        # the old master is now a replica of the new master, partially resynced
        info = rm.info("replication")
        assert info["master_port"] == s.port
        assert rs.info("stats")["sync_partial_ok"] >= 1
        assert dataset(rs) == before
        rs.set("after", "failover")
        wait_for(lambda: rm.get("after") == b"failover", what="stream from the new master")
        assert rm.execute_command("DEBUG", "DIGEST") == rs.execute_command("DEBUG", "DIGEST")
    finally:
        s.cleanup()
        m.cleanup()


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_failover_errors_side_by_side(kind):
    """Every refusal of FAILOVER and PSYNC ... FAILOVER, byte for byte."""
    with ServerProc(kind) as m:
        c = m.conn()
        assert c.cmd("FAILOVER") == b"-ERR FAILOVER requires connected replicas.\r\n"
        assert c.cmd("FAILOVER", "ABORT") == b"-ERR No failover in progress.\r\n"
        assert c.cmd("FAILOVER", "TIMEOUT", "0") == \
            b"-ERR FAILOVER timeout must be greater than 0\r\n"
        assert c.cmd("FAILOVER", "TIMEOUT", "-5") == \
            b"-ERR FAILOVER timeout must be greater than 0\r\n"
        assert c.cmd("FAILOVER", "TIMEOUT", "x") == \
            b"-ERR value is not an integer or out of range\r\n"
        assert c.cmd("FAILOVER", "TO", "127.0.0.1", "x") == \
            b"-ERR value is not an integer or out of range\r\n"
        assert c.cmd("FAILOVER", "FORCE", "FORCE") == b"-ERR syntax error\r\n"
        assert c.cmd("FAILOVER", "nope") == b"-ERR syntax error\r\n"
        assert c.cmd("FAILOVER", "TO", "127.0.0.1") == b"-ERR syntax error\r\n"
        assert c.cmd("FAILOVER", "ABORT", "x") == b"-ERR syntax error\r\n"
        assert c.cmd("PSYNC", "?", "-1", "FAILOVER") == \
            b"-ERR PSYNC FAILOVER can't be sent to a master.\r\n"
        with ServerProc(kind, ["--replicaof", "127.0.0.1", str(m.port)]) as s:
            wait_for(lambda: link_up(s.client()), what="link up")
            c2 = s.conn()
            assert c2.cmd("FAILOVER") == b"-ERR FAILOVER is not valid when server is a replica.\r\n"
            assert c2.cmd("PSYNC", "0" * 40, "1", "FAILOVER") == \
                b"-ERR PSYNC FAILOVER replid must match my replid.\r\n"
            assert c.cmd("FAILOVER", "FORCE") == \
                b"-ERR FAILOVER with force option requires both a timeout and target HOST " \
                b"and IP.\r\n"
            assert c.cmd("FAILOVER", "TO", "127.0.0.1", "1") == \
                b"-ERR FAILOVER target HOST and PORT is not a replica.\r\n"
        c.close()


def _stop(p):
    os.kill(p.proc.pid, signal.SIGSTOP)


def _cont(p):
    os.kill(p.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_failover_pauses_writes_and_abort_resumes_them(kind):
    """While waiting for the replica, writes wait (reads do not); FAILOVER
    ABORT ends the wait and the held write runs; the same on both servers."""
    m, s = _pair(kind, "redis")
    try:
        rm, rs = m.client(), s.client()
        wait_for(lambda: link_up(rs), what="link up")
        rm.set("k", "v0")
        wait_for(lambda: rs.get("k") == b"v0", what="replica has k")
        _stop(s)  # the replica cannot acknowledge: the failover waits
        try:
            c = m.conn()
            rm.set("k", "v1")  # the replica is now behind
            assert c.cmd("FAILOVER") == b"+OK\r\n"
            assert rm.info("replication")["master_failover_state"] == "waiting-for-sync"
            assert c.cmd("FAILOVER") == b"-ERR FAILOVER already in progress.\r\n"
            assert c.cmd("REPLICAOF", "no", "one") == \
                b"-ERR REPLICAOF not allowed while failing over.\r\n"
            w = socket.create_connection(("127.0.0.1", m.port), timeout=10)
            w.sendall(b"SET k v2\r\n")
            time.sleep(0.5)
            w.setblocking(False)
            with pytest.raises(BlockingIOError):
                w.recv(100)  # held by the pause
            w.setblocking(True)
            assert rm.get("k") == b"v1"  # reads are not held
            assert c.cmd("FAILOVER", "ABORT") == b"+OK\r\n"
            assert w.recv(100) == b"+OK\r\n"
            w.close()
            assert rm.get("k") == b"v2"
            info = rm.info("replication")
            assert info["role"] == "master" and info["master_failover_state"] == "no-failover"
            c.close()
        finally:
            _cont(s)
    finally:
        s.cleanup()
        m.cleanup()


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_failover_timeout_aborts_without_force_and_switches_with_force(kind):
    """TIMEOUT without FORCE: the failover gives up and the node stays a
    master taking writes. TO ... TIMEOUT ... FORCE: it switches anyway."""
    m, s = _pair(kind, "frtrio")
    try:
        rm, rs = m.client(), s.client()
        wait_for(lambda: link_up(rs), what="link up")
        _stop(s)
        try:
            rm.set("lag", "1")
            assert rm.execute_command("FAILOVER", "TIMEOUT", "300") == b"OK"
            wait_for(lambda: rm.info("replication")["master_failover_state"] == "no-failover",
                     timeout=10, what="timed-out failover aborted")
            assert _role(rm) == "master"
            assert rm.set("after-abort", "1")
        finally:
            _cont(s)
        wait_for(lambda: rs.get("after-abort") == b"1", what="replica caught up")
        _stop(s)
        try:
            rm.set("lag2", "1")
            assert rm.execute_command("FAILOVER", "TO", "127.0.0.1", s.port, "TIMEOUT", "300",
                                      "FORCE") == b"OK"
            wait_for(lambda: rm.info("replication")["master_failover_state"]
                     == "failover-in-progress", timeout=10, what="forced switch")
        finally:
            _cont(s)
        wait_for(lambda: _role(rs) == "master" and _role(rm) == "slave", what="forced failover")
        wait_for(lambda: link_up(rm) and rm.get("lag2") == b"1", what="old master follows")
        assert rm.info("replication")["master_failover_state"] == "no-failover"
    finally:
        s.cleanup()
        m.cleanup()
