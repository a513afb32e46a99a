"""Crash reports (frtrio/runtime/crash.py): DEBUG SEGFAULT, DEBUG ASSERT,
DEBUG PANIC and a fatal signal end the process the way they end
redis-server, after a report in the log with Redis's markers (upstream
integration/logging)."""

from __future__ import annotations

import signal

import pytest
from support import HAVE_REDIS, ServerProc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server")]


def _log(p: ServerProc) -> bytes:
    with open(p.log_path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("how,args,code,marker", [
    ("DEBUG SEGFAULT", [], -signal.SIGSEGV, b"crashed by signal: 11"),
    ("SIGABRT", [], -signal.SIGABRT, b"crashed by signal: 6"),
    ("DEBUG ASSERT", [], -signal.SIGABRT, b"=== ASSERTION FAILED ==="),
    ("DEBUG PANIC", ["--use-exit-on-panic", "yes"], 1, b"Guru Meditation: DEBUG PANIC called"),
])
def test_c16_crash_report_then_death_like_redis(how, args, code, marker):
    for kind in ("frtrio", "redis"):
        p = ServerProc(kind, ["--crash-memcheck-enabled", "no"] + args).start()
        try:
            if how == "SIGABRT":
                p.proc.send_signal(signal.SIGABRT)
            else:
                with p.conn() as c:
                    c.send(b"%s\r\n" % how.encode())
                    c.read_until_close(10)
            rc = p.proc.wait(15)
            assert rc == code, (kind, how, rc)
            wait_for(lambda: b"REDIS BUG REPORT END" in _log(p), timeout=5, what="report's end")
            log = _log(p)
            assert b"=== REDIS BUG REPORT START: Cut & paste starting from here ===" in log
            assert marker in log, (kind, how)
        finally:
            p.cleanup()
