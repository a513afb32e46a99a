"""Shutdown: SIGTERM/SIGINT are carried out by the cron (so DEBUG PAUSE-CRON
holds them and SHUTDOWN ABORT cancels them), the shutdown-on-sig* flags, a
failed final snapshot keeps the server running; end to end against a real
frtrio-server and redis-server 7.0.15 side by side, and the pure decisions
of frtrio/core/shutdown.py."""

from __future__ import annotations

import os
import signal
import time

import pytest

from frtrio.core import shutdown as sd
from support import HAVE_REDIS, ServerProc, engine, run, wait_for

KINDS = ["frtrio", "redis"]
# (the end-to-end tests: real processes, redis-server 7.0.15 beside frtrio)
e2e = [pytest.mark.e2e, pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]


def _e2e(fn):
    for m in e2e:
        fn = m(fn)
    return fn


def _log(p) -> str:
    with open(p.log_path, errors="replace") as f:
        return f.read()


def _wait_log(p, text, timeout=10.0):
    wait_for(lambda: text in _log(p), timeout=timeout, what=text)


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_held_by_pause_cron_then_aborted_then_carried_out(kind):
    p = ServerProc(kind, ["--shutdown-on-sigterm", "save"]).start()
    try:
        c = p.conn()
        assert c.cmd("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        assert c.cmd("DEBUG", "PAUSE-CRON", "1") == b"+OK\r\n"
        os.kill(p.proc.pid, signal.SIGTERM)
        _wait_log(p, "Received SIGTERM scheduling shutdown...")
        time.sleep(0.3)  # several cron periods: the paused cron holds it
        assert p.proc.poll() is None
        assert c.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("SHUTDOWN", "ABORT") == b"+OK\r\n"
        _wait_log(p, "Shutdown manually aborted.")
        assert c.cmd("DEBUG", "PAUSE-CRON", "0") == b"+OK\r\n"
        time.sleep(0.3)
        assert c.cmd("PING") == b"+PONG\r\n"  # the aborted signal is forgotten
        assert not os.path.exists(os.path.join(p.dir, "dump.rdb"))
        # again, with the cron running: it shuts down and saves (shutdown-on-sigterm save)
        os.kill(p.proc.pid, signal.SIGTERM)
        assert p.proc.wait(15) == 0
        log = _log(p)
        for line in ("User requested shutdown...",
                     "Saving the final RDB snapshot before exiting.",
                     "DB saved on disk", "is now ready to exit, bye bye..."):
            assert line in log, line
        assert log.index("User requested shutdown...") > log.index("Shutdown manually aborted.")
        p.start()  # same dir: the snapshot comes back
        assert p.conn().cmd("GET", "k") == b"$1\r\nv\r\n"
    finally:
        p.cleanup()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_sigint_nosave_flag_and_second_sigint_exits_at_once(kind):
    # save points, but shutdown-on-sigint nosave: nothing is written
    p = ServerProc(kind, ["--save", "900 1", "--shutdown-on-sigint", "nosave"]).start()
    try:
        assert p.conn().cmd("SET", "k", "v") == b"+OK\r\n"
        os.kill(p.proc.pid, signal.SIGINT)
        assert p.proc.wait(15) == 0
        assert not os.path.exists(os.path.join(p.dir, "dump.rdb"))
        assert "Saving the final RDB snapshot" not in _log(p)
        # a second SIGINT while the first is pending: exit 1 at once
        p.start()
        c = p.conn()
        assert c.cmd("DEBUG", "PAUSE-CRON", "1") == b"+OK\r\n"
        os.kill(p.proc.pid, signal.SIGINT)
        # (this log has the first run's line too; a signal sent while the
        # same one is still pending would be merged with it)
        wait_for(lambda: _log(p).count("Received SIGINT scheduling shutdown...") == 2,
                 timeout=10, what="the second run's SIGINT")
        os.kill(p.proc.pid, signal.SIGINT)
        assert p.proc.wait(15) == 1
        assert "You insist... exiting now." in _log(p)
    finally:
        p.cleanup()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_failed_final_snapshot_keeps_the_server_running(kind):
    """dump.rdb is a directory: the snapshot of a signal's or a SHUTDOWN's
    shutdown fails, the server says so and goes on serving (writes too:
    a failed shutdown save is not a failed background save); NOSAVE or
    FORCE get it to exit."""
    p = ServerProc(kind, ["--save", "900 1"]).start()
    try:
        c = p.conn()
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        os.mkdir(os.path.join(p.dir, "dump.rdb"))
        os.kill(p.proc.pid, signal.SIGINT)
        _wait_log(p, "Error trying to save the DB, can't exit.")
        _wait_log(p, "Errors trying to shut down the server. Check the logs for more information.")
        assert c.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("SHUTDOWN") == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        assert c.cmd("SET", "k2", "v2") == b"+OK\r\n"
        assert p.proc.poll() is None
        c2 = p.conn()
        c2.send(b"SHUTDOWN FORCE\r\n")
        assert p.proc.wait(15) == 0
        assert "Error trying to save the DB. Exit anyway." in _log(p)
    finally:
        p.cleanup()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_is_refused_in_multi(kind):
    p = ServerProc(kind).start()
    try:
        c = p.conn()
        assert c.cmd("MULTI") == b"+OK\r\n"
        assert c.cmd("SHUTDOWN", "NOW") == b"-ERR Command not allowed inside a transaction\r\n"
        assert c.cmd("EXEC") == (b"-EXECABORT Transaction discarded because of previous "
                                 b"errors.\r\n")
        assert c.cmd("PING") == b"+PONG\r\n"
    finally:
        p.cleanup()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_blocked_shutdown_clients_get_an_error_on_abort(kind):
    """Two SHUTDOWNs wait for a stopped replica: both clients are blocked
    (the replica is not a connected client), INFO shows the time left;
    SHUTDOWN ABORT answers both with an error and writes flow again."""
    m = ServerProc(kind, ["--shutdown-timeout", "30"]).start()
    s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
    try:
        c = m.conn()
        wait_for(lambda: b"master_link_status:up" in s.conn().cmd("INFO", "replication"),
                 what="link up")
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            assert c.cmd("INCR", "k") == b":1\r\n"
            rd1, rd2 = m.conn(), m.conn()
            rd1.send(b"SHUTDOWN\r\n")
            rd2.send(b"SHUTDOWN\r\n")
            wait_for(lambda: b"blocked_clients:2" in c.cmd("INFO", "clients"), what="blocked")
            info = c.cmd("INFO", "clients")
            assert b"connected_clients:3\r\n" in info
            left = [ln for ln in c.cmd("INFO", "server").split(b"\r\n")
                    if ln.startswith(b"shutdown_in_milliseconds:")]
            assert left and 0 < int(left[0].split(b":")[1]) <= 30000
            assert c.cmd("SHUTDOWN", "ABORT") == b"+OK\r\n"
            for rd in (rd1, rd2):
                assert rd.read_reply() == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
            assert c.cmd("INCR", "k") == b":2\r\n"
            assert b"shutdown_in_milliseconds" not in c.cmd("INFO", "server")
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        assert "Shutdown manually aborted." in _log(m)
    finally:
        s.cleanup()
        m.cleanup()


# --- the pure decisions ------------------------------------------------------------


def test_core_signal_cron_prepare_abort():
    srv = engine()
    cfg = srv.config
    assert sd.cron_step(srv, cfg, False) is None
    assert sd.signal_received(srv, "SIGTERM") == ("scheduled",
                                                  "Received SIGTERM scheduling shutdown...")
    cfg.set("shutdown-on-sigterm", "nosave now")
    assert sd.cron_step(srv, cfg, True) == ("prepare", sd.NOSAVE | sd.NOW)
    assert sd.abort(srv) and not srv.shutdown_asap
    assert not sd.abort(srv)
    # SIGINT twice: the second one exits
    assert sd.signal_received(srv, "SIGINT")[0] == "scheduled"
    assert sd.signal_received(srv, "SIGINT") == ("exit", "You insist... exiting now.")
    assert sd.cron_step(srv, cfg, False) == ("prepare", 0)  # shutdown-on-sigint default
    # a lagging replica and a timeout: the shutdown waits, writes paused
    assert sd.prepare(srv, 0, 10, True) == "wait"
    assert sd.initiated(srv) and srv.pause_end_ms
    assert sd.remaining_ms(srv) == 10000
    assert sd.prepare(srv, sd.NOW, 10, True) == "busy"  # already initiated
    assert sd.cron_step(srv, cfg, True) is None  # still lagging, time not up
    assert sd.cron_step(srv, cfg, False) == ("finish", 0)  # caught up
    srv.now_ms += 10000
    assert sd.cron_step(srv, cfg, True) == ("finish", 0)  # time is up
    assert sd.abort(srv)
    assert not sd.initiated(srv) and not srv.pause_end_ms and sd.remaining_ms(srv) is None
    # NOW, no timeout or nobody lagging: finish at once; loading forces NOSAVE
    assert sd.prepare(srv, sd.NOW, 10, True) == "finish"
    srv.loading = True
    assert sd.prepare(srv, sd.SAVE, 0, False) == "finish"
    assert srv.shutdown_flags == sd.NOSAVE
    assert sd.save_at_exit(0, True) and not sd.save_at_exit(sd.NOSAVE, True)
    assert sd.save_at_exit(sd.SAVE, False) and not sd.save_at_exit(0, False)


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_debug_log_writes_a_log_line(kind):
    with ServerProc(kind) as p:
        assert p.conn().cmd("DEBUG", "LOG", "hello there") == b"+OK\r\n"
        _wait_log(p, "DEBUG LOG: hello there")


def test_core_cancel_answers_only_clients_still_blocked_in_shutdown():
    """SHUTDOWN blocks its client and leaves the Shutdown effect; a cancel
    answers it with Redis's error, but not a client CLIENT UNBLOCK released
    that has blocked in something else since."""
    from frtrio.core.effects import Shutdown

    srv = engine()
    a = srv.new_client("127.0.0.1:1", "127.0.0.1:6379")
    b = srv.new_client("127.0.0.1:2", "127.0.0.1:6379")
    for cl in (a, b):
        cl.authenticated = True
        srv.execute(cl, [b"SHUTDOWN", b"NOSAVE"])
        assert cl.blocked is not None and cl.take_output() == b""
    assert [e for e in srv.effects if type(e) is Shutdown] == [Shutdown(sd.NOSAVE)] * 2
    srv.effects.clear()
    # CLIENT UNBLOCK leaves a client blocked in SHUTDOWN alone (Redis 7.0.15
    # panics on it)
    for how in (b"TIMEOUT", b"ERROR"):
        assert run(srv, a, "CLIENT", "UNBLOCK", b.id, how) == b":0\r\n"
    assert b.blocked is not None
    srv.blocking.unblock(b, None)  # (released some other way)
    srv.execute(b, [b"BLPOP", b"list", b"0"])
    assert b.blocked is not None
    sd.cancel(srv)
    assert a.blocked is None
    assert a.take_output() == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    assert b.blocked is not None and b.take_output() == b""


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_while_loading_stops_without_saving(kind, tmp_path):
    """SIGTERM while dump.rdb loads (slowed by key-load-delay): the server
    says so, stops without saving the half-loaded dataset (dump.rdb is left
    as it was, save points or not) and exits 0."""
    with ServerProc("redis", ["--save", ""]) as src:
        c = src.conn()
        assert c.cmd("DEBUG", "POPULATE", "2000", "key", "100") == b"+OK\r\n"
        assert c.cmd("SAVE") == b"+OK\r\n"
        data = open(os.path.join(src.dir, "dump.rdb"), "rb").read()
    (tmp_path / "dump.rdb").write_bytes(data)
    p = ServerProc(kind, ["--save", "900 1", "--key-load-delay", "2000",
                          "--loading-process-events-interval-bytes", "1024"],
                   workdir=str(tmp_path))
    try:
        p.start(wait=False)
        def loading():
            try:
                return b"loading:1" in p.conn().cmd("INFO", "persistence")
            except OSError:  # not listening yet
                return False

        wait_for(loading, timeout=10, what="loading")
        os.kill(p.proc.pid, signal.SIGTERM)
        assert p.proc.wait(15) == 0
        log = _log(p)
        assert "Received shutdown signal during loading, scheduling shutdown." in log
        assert "Saving the final RDB snapshot" not in log
        assert (tmp_path / "dump.rdb").read_bytes() == data
    finally:
        p.stop()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_with_force_flag_exits_though_the_snapshot_fails(kind):
    p = ServerProc(kind, ["--save", "900 1", "--shutdown-on-sigterm", "force"]).start()
    try:
        assert p.conn().cmd("SET", "k", "v") == b"+OK\r\n"
        os.mkdir(os.path.join(p.dir, "dump.rdb"))
        os.kill(p.proc.pid, signal.SIGTERM)
        assert p.proc.wait(15) == 0
        log = _log(p)
        assert "Error trying to save the DB. Exit anyway." in log
        assert "can't exit" not in log
    finally:
        p.cleanup()


@_e2e
@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_with_now_flag_does_not_wait_for_a_lagging_replica(kind):
    m = ServerProc(kind, ["--shutdown-timeout", "30", "--shutdown-on-sigterm", "now"]).start()
    s = ServerProc("redis", ["--replicaof", "127.0.0.1", str(m.port)]).start()
    try:
        wait_for(lambda: b"master_link_status:up" in s.conn().cmd("INFO", "replication"),
                 what="link up")
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            assert m.conn().cmd("INCR", "k") == b":1\r\n"
            os.kill(m.proc.pid, signal.SIGTERM)
            assert m.proc.wait(10) == 0
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        log = _log(m)
        assert "Waiting for replicas before shutting down." not in log
        assert "0 of 1 replicas are in sync when shutting down." in log
    finally:
        s.cleanup()
        m.cleanup()
