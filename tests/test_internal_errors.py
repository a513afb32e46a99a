"""Never a silent failure: an internal error is answered, counted in INFO
(``frtrio_internal_errors`` in ``# Stats``), logged with its traceback and
the command name, and fails the test session (conftest)."""

from __future__ import annotations

import logging
import random

import pytest

import frtrio.commands  # noqa: F401
from frtrio import internal_errors
from frtrio.commands import table
from frtrio.config import Config
from frtrio.engine import Server


def _info_field(srv, c, name: bytes) -> int:
    srv.execute(c, [b"INFO", b"stats"])
    for line in c.take_output().split(b"\r\n"):
        if line.startswith(name + b":"):
            return int(line.split(b":", 1)[1])
    raise AssertionError("no %r in INFO" % name)


@pytest.mark.internal_errors_expected
def test_internal_error_is_answered_counted_and_logged(caplog, monkeypatch):
    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    assert _info_field(srv, c, b"frtrio_internal_errors") == 0
    cmd = table.TABLE[b"echo"]

    def broken(c, argv):
        raise KeyError("boom")

    monkeypatch.setattr(cmd, "handler", broken)
    before = internal_errors.total
    with caplog.at_level(logging.ERROR, logger="frtrio"):
        srv.execute(c, [b"ECHO", b"x"])
    assert c.take_output() == b"-ERR internal error in 'echo': KeyError\r\n"
    assert internal_errors.total == before + 1
    rec = [r for r in caplog.records if internal_errors.LOG_MARKER in r.getMessage()]
    assert rec and "'echo'" in rec[0].getMessage() and rec[0].exc_info is not None
    monkeypatch.undo()
    assert _info_field(srv, c, b"frtrio_internal_errors") == 1
    # Redis's own unexpected_error_replies (errors from a master/AOF) is not touched
    assert _info_field(srv, c, b"unexpected_error_replies") == 0
    srv.execute(c, [b"ECHO", b"x"])
    assert c.take_output() == b"$1\r\nx\r\n"


def test_connection_guard_counts_into_the_same_field():
    from frtrio.runtime import env

    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    base = _info_field(srv, c, b"frtrio_internal_errors")
    total = internal_errors.total
    shell = env.shell_internal_errors
    env.note_internal_error()
    try:
        assert env.shell_internal_errors == shell + 1
        assert _info_field(srv, c, b"frtrio_internal_errors") == base + 1
    finally:
        # this test only checks the wiring; take the count back so the
        # session check does not see a bug that did not happen
        env.shell_internal_errors -= 1
        internal_errors.total = total
        internal_errors.shell -= 1
