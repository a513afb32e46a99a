"""CLIENT TRACKING (client-side caching), side by side with redis-server:
the invalidation messages a tracking client gets (RESP3 pushes, RESP2
through a redirect to a subscriber), BCAST with prefixes, OPTIN/OPTOUT with
CLIENT CACHING, NOLOOP, flushes, TRACKINGINFO/GETREDIR and the errors."""

from __future__ import annotations

import time

import pytest
from support import HAVE_REDIS, ServerProc

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]


def _drain(conn, wait=0.2):
    """Everything the server sent that no reply read has taken yet."""
    time.sleep(wait)
    conn.sock.settimeout(0.05)
    buf, conn.buf = conn.buf, b""
    try:
        while True:
            d = conn.sock.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    conn.sock.settimeout(10)
    return buf


def _session(kind):
    out = []
    with ServerProc(kind) as p:
        t = p.conn()  # a RESP3 tracking client
        w = p.conn()  # a writer
        out.append(t.cmd("HELLO", "3")[:1])
        out.append(t.cmd("CLIENT", "TRACKING", "on"))
        out.append(t.cmd("CLIENT", "TRACKINGINFO"))
        out.append(t.cmd("CLIENT", "GETREDIR"))
        w.cmd("SET", "a", "1")
        w.cmd("SET", "b", "2")
        out.append(t.cmd("GET", "a"))
        out.append(t.cmd("MGET", "a", "b"))
        w.cmd("SET", "a", "x")          # -> invalidate a (once)
        w.cmd("SET", "a", "y")          # (no longer tracked)
        w.cmd("DEL", "b")               # -> invalidate b
        out.append(_drain(t))
        out.append(t.cmd("GET", "a"))
        out.append(t.cmd("SET", "a", "mine"))  # own change: push after the reply
        out.append(_drain(t))
        out.append(t.cmd("GET", "a"))
        w.cmd("FLUSHALL")                # -> a null invalidation
        out.append(_drain(t))
        out.append(t.cmd("CLIENT", "TRACKING", "off"))
        # NOLOOP
        out.append(t.cmd("CLIENT", "TRACKING", "on", "NOLOOP"))
        out.append(t.cmd("GET", "n"))
        out.append(t.cmd("SET", "n", "1"))
        out.append(_drain(t))
        out.append(t.cmd("CLIENT", "TRACKING", "off"))
        # OPTIN: only after CLIENT CACHING yes
        out.append(t.cmd("CLIENT", "TRACKING", "on", "OPTIN"))
        out.append(t.cmd("GET", "o1"))
        out.append(t.cmd("CLIENT", "CACHING", "yes"))
        out.append(t.cmd("CLIENT", "TRACKINGINFO"))
        out.append(t.cmd("GET", "o2"))
        w.cmd("SET", "o1", "1")
        w.cmd("SET", "o2", "1")
        out.append(_drain(t))
        out.append(t.cmd("CLIENT", "CACHING", "no"))
        out.append(t.cmd("CLIENT", "TRACKING", "off"))
        # BCAST with prefixes
        out.append(t.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "x"))
        out.append(t.cmd("CLIENT", "TRACKINGINFO"))
        w.cmd("MSET", "user:1", "a", "user:2", "b", "other", "c", "xyz", "d")
        out.append(_drain(t))
        out.append(t.cmd("CLIENT", "TRACKING", "off"))
        # RESP2 with a redirect to a subscriber
        r = p.conn()
        rid = r.cmd("CLIENT", "ID")
        out.append(r.cmd("SUBSCRIBE", "__redis__:invalidate"))
        v = p.conn()
        out.append(v.cmd("CLIENT", "TRACKING", "on", "REDIRECT", rid[1:-2].decode()))
        out.append(v.cmd("GET", "k2"))
        w.cmd("SET", "k2", "1")
        out.append(_drain(r))
        # errors
        for args in (("CLIENT", "TRACKING", "on", "PREFIX", "a"),
                     ("CLIENT", "TRACKING", "on", "BCAST", "OPTIN"),
                     ("CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"),
                     ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
                     ("CLIENT", "TRACKING", "on", "REDIRECT", "999999"),
                     ("CLIENT", "TRACKING", "maybe"),
                     ("CLIENT", "TRACKING", "on", "nope"),
                     ("CLIENT", "CACHING", "yes")):
            out.append(w.cmd(*args))
        out.append(w.cmd("INFO", "stats").count(b"tracking_total"))
    return out


def test_tracking_messages_match_redis():
    f, r = _session("frtrio"), _session("redis")
    for i, (a, b) in enumerate(zip(f, r)):
        assert a == b, (i, a, b)
    assert len(f) == len(r)
