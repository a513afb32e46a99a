"""MONITOR, side by side with redis-server: the line format, what is shown
(scripts' commands as [db lua] after their EVAL, MULTI/EXEC, not admin
commands), and what a monitoring client may still do."""

from __future__ import annotations

import re
import time

import pytest
from support import HAVE_REDIS, ServerProc

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]

LINE = re.compile(rb'^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$')


def _session(kind):
    with ServerProc(kind) as p:
        mon = p.conn()
        assert mon.cmd("MONITOR") == b"+OK\r\n"
        c = p.conn()
        c.cmd("SET", "k", "v with \"quotes\"\n")
        c.cmd("SELECT", "3")
        c.cmd("GET", "k")
        c.cmd("CONFIG", "GET", "port")  # admin: not shown
        c.cmd("MULTI")
        c.cmd("INCR", "n")
        c.cmd("EXEC")
        c.cmd("EVAL", "redis.call('set', KEYS[1], ARGV[1]); return 1", "1", "sk", "\x01")
        c.cmd("PING")
        time.sleep(0.3)
        mon.sock.settimeout(2)
        buf = b""
        while buf.count(b"\r\n") < 9:
            buf += mon.sock.recv(65536)
        lines = buf.split(b"\r\n")[:-1]
        # a monitoring client may not touch keys, may PING
        assert mon.cmd("GET", "k") == b"-ERR Replica can't interact with the keyspace\r\n"
        out = []
        for ln in lines:
            m = LINE.match(ln)
            assert m, ln
            who = m.group(4)
            out.append((m.group(3), b"lua" if who == b"lua" else b"client", m.group(5)))
        return out


def test_monitor_shows_what_redis_shows():
    assert _session("frtrio") == _session("redis")


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_monitor_in_multi_is_refused_at_exec(kind):
    with ServerProc(kind) as p:
        c = p.conn()
        assert c.cmd("MULTI") == b"+OK\r\n"
        assert c.cmd("MONITOR") == b"+QUEUED\r\n"
        assert c.cmd("EXEC") == (b"*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING "
                                 b"client\r\n")
