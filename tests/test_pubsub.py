"""Pub/Sub: the same clients against frtrio and redis-server 7.0, comparing
the bytes every connection receives (RESP2 and RESP3), plus the registry's
bookkeeping and the pubsub output buffer limit.

Run: python -m pytest -q tests/test_pubsub.py
"""

from __future__ import annotations

import random
import socket
import time

import pytest

import frtrio.commands  # noqa: F401  (registers the commands before the engine import)
from frtrio.config import Config
from frtrio.core.engine import Server

from support import RawConn, encode_request


class Twin:
    """One client, opened on both servers; every step is compared."""

    def __init__(self, fp, rp, resp=2, rcvbuf=None):
        self.f = _conn(fp.port, rcvbuf)
        self.r = _conn(rp.port, rcvbuf)
        if resp == 3:
            self.f.cmd("HELLO", "3")
            self.r.cmd("HELLO", "3")

    def send(self, *args):
        self.f.send(encode_request(args))
        self.r.send(encode_request(args))

    def read(self, n=1, unordered=False):
        fa = [self.f.read_reply() for _ in range(n)]
        ra = [self.r.read_reply() for _ in range(n)]
        if unordered:
            assert sorted(fa) == sorted(ra), (fa, ra)
        else:
            assert fa == ra, (fa, ra)
        return fa

    def unsubscribe_all(self, cmd, n):
        """An unsubscribe-all whose order follows Redis's hash table: the
        same channels and the same count sequence."""
        self.send(cmd)
        out = []
        for conn in (self.f, self.r):
            msgs = [conn.read_reply().split(b"\r\n") for _ in range(n)]
            out.append((sorted(m[4] for m in msgs), [m[5] for m in msgs], [m[2] for m in msgs]))
        assert out[0] == out[1], out

    def __call__(self, *args, n=1, unordered=False):
        self.send(*args)
        r = self.read(n, unordered)
        return r[0] if n == 1 else r

    def close(self):
        self.f.close()
        self.r.close()


def _conn(port, rcvbuf=None):
    c = RawConn.__new__(RawConn)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    c.sock = s
    c.buf = b""
    return c


@pytest.fixture
def twins(frtrio_proc, redis_proc):
    made = []

    def make(resp=2, rcvbuf=None):
        t = Twin(frtrio_proc, redis_proc, resp, rcvbuf)
        made.append(t)
        return t

    admin = make()
    admin("FLUSHALL")
    yield make
    for t in made:
        t.close()
    # wait until both servers have forgotten the subscribers of this test
    for proc in (frtrio_proc, redis_proc):
        c = proc.conn()
        for _ in range(100):
            if c.cmd("PUBSUB", "NUMPAT") == b":0\r\n" and c.cmd("PUBSUB", "CHANNELS") == b"*0\r\n" \
                    and c.cmd("PUBSUB", "SHARDCHANNELS") == b"*0\r\n":
                break
            time.sleep(0.02)
        c.close()


@pytest.mark.parametrize("resp", [2, 3])
def test_subscribe_unsubscribe_replies(twins, resp):
    s = twins(resp)
    s("UNSUBSCRIBE")
    s("PUNSUBSCRIBE")
    s("SUNSUBSCRIBE")
    s("SUBSCRIBE", "a", "b", "a", n=3)
    s("PSUBSCRIBE", "p*", "q?", "p*", n=3)
    s("SSUBSCRIBE", "s1", "s2", n=2)
    s("UNSUBSCRIBE", "a", "nope", n=2)
    s("PUNSUBSCRIBE", "nope", "q?", n=2)
    s("SUNSUBSCRIBE", "s1", "zz", n=2)
    s("SUBSCRIBE", "c", "d", n=2)
    s.unsubscribe_all("UNSUBSCRIBE", 3)  # Redis walks a hash table here
    s("PSUBSCRIBE", "x*", "y*", n=2)
    s("PUNSUBSCRIBE", n=3)  # patterns are kept in subscription order
    s("SUNSUBSCRIBE")
    s("SUNSUBSCRIBE")
    s("UNSUBSCRIBE")
    s("PING")
    s("GET", "k")
    s("SUBSCRIBE")
    s("PSUBSCRIBE")
    s("SSUBSCRIBE")


def test_resp2_subscriber_restrictions(twins):
    s = twins()
    s("SUBSCRIBE", "a")
    for cmd in (["GET", "k"], ["SET", "k", "v"], ["PUBLISH", "a", "m"], ["PUBSUB", "NUMPAT"],
                ["MULTI"], ["CLIENT", "ID"], ["PING"], ["PING", "hello"], ["PING", "a", "b"],
                ["HELLO", "2"], ["SELECT", "0"], ["nosuchcommand"], ["SUBSCRIBE"]):
        s(*cmd)
    s("UNSUBSCRIBE", "a")
    s("GET", "k")
    # shard-only subscribers are in pubsub mode too; UNSUBSCRIBE does not end it
    s("SSUBSCRIBE", "sh")
    s("UNSUBSCRIBE")
    s("GET", "k")
    s("PSUBSCRIBE", "p")
    s("SUNSUBSCRIBE")
    s("GET", "k")
    s("PUNSUBSCRIBE")
    s("GET", "k")
    # RESET leaves pubsub mode and forgets everything silently
    s("SUBSCRIBE", "a", "b", n=2)
    s("PSUBSCRIBE", "z*")
    s("RESET")
    s("GET", "k")
    s("PUBSUB", "NUMSUB", "a", "b")
    s("PUBSUB", "NUMPAT")


def test_resp3_subscriber_runs_commands(twins):
    s = twins(3)
    s("SUBSCRIBE", "me")
    s("SET", "k", "v")
    s("GET", "k")
    s("PING")
    s("PUBLISH", "me", "hello", n=2)  # the message comes before the reply
    s("PSUBSCRIBE", "m*")
    s("PUBLISH", "me", "again", n=3)
    s("UNSUBSCRIBE", n=1)
    s("PUNSUBSCRIBE", n=1)
    s("PUBLISH", "me", "gone")


def test_publish_delivery(twins):
    pub = twins()
    chan = twins()
    pat = twins()
    both = twins(3)
    shard = twins()
    multi = twins()
    chan("SUBSCRIBE", "news", "other", n=2)
    pat("PSUBSCRIBE", "n*", "[abc]x", "esc\\*", n=3)
    both("SUBSCRIBE", "news")
    both("PSUBSCRIBE", "news")
    shard("SSUBSCRIBE", "news")
    multi("PSUBSCRIBE", "*", "ne?s", "n*s", n=3)
    assert pub("PUBLISH", "news", "m1") == b":7\r\n"
    chan.read()
    pat.read()
    both.read(2)
    multi.read(3, unordered=True)  # Redis walks its pattern table in hash order
    pub("PUBLISH", "bx", "m2")
    pat.read()
    multi.read()
    pub("PUBLISH", "esc*", "m3")
    pat.read()
    multi.read()
    pub("PUBLISH", "escX", "m4")
    multi.read()
    pub("PUBLISH", "nobody", "")
    pat.read()
    multi.read()
    pub("PUBLISH", "news", b"\x00\r\n binary \xff")
    chan.read()
    pat.read()
    both.read(2)
    multi.read(3, unordered=True)
    pub("SPUBLISH", "news", "sm")
    shard.read()
    pub("SPUBLISH", "other", "sm")
    for t in (chan, pat, both, shard, multi):
        t("PING")  # nothing else was delivered
    # many messages keep their order
    for i in range(50):
        pub.send("PUBLISH", "other", "n%d" % i)
    pub.read(50)
    chan.read(50)
    pub("PUBLISH", "other")
    pub("PUBLISH", "a", "b", "c")
    pub("SPUBLISH", "a")


def test_pubsub_introspection(twins):
    pub = twins()
    a = twins()
    b = twins(3)
    a("SUBSCRIBE", "ch1", "ch2", "x", n=3)
    b("SUBSCRIBE", "ch1")
    a("PSUBSCRIBE", "p1", "p2", n=2)
    b("PSUBSCRIBE", "p1")
    a("SSUBSCRIBE", "s1", "s2", n=2)
    b("SSUBSCRIBE", "s1")
    pub("PUBSUB", "NUMSUB")
    pub("PUBSUB", "NUMSUB", "ch1", "ch2", "nope", "ch1")
    pub("PUBSUB", "NUMPAT")
    pub("PUBSUB", "SHARDNUMSUB", "s1", "s2", "ch1")
    pub("PUBSUB", "SHARDNUMSUB")
    for args in (["CHANNELS"], ["CHANNELS", "ch*"], ["CHANNELS", "[x]"], ["SHARDCHANNELS"],
                 ["SHARDCHANNELS", "s?"]):
        f, r = pub.f.cmd("PUBSUB", *args), pub.r.cmd("PUBSUB", *args)
        assert sorted(f.split(b"\r\n")) == sorted(r.split(b"\r\n")), args
    for args in (["CHANNELS", "a", "b"], ["SHARDCHANNELS", "a", "b"], ["NUMPAT", "x"],
                 ["HELP"], ["help"], ["NOPE"], ["HELP", "x"]):
        pub("PUBSUB", *args)
    pub("PUBSUB")
    b("PUBSUB", "NUMSUB", "ch1")
    r3 = twins(3)
    r3("PUBSUB", "NUMSUB", "ch1", "x")
    r3("PUBSUB", "NUMPAT")


def test_subscriber_disconnect_leaves_nothing(frtrio_proc, twins):
    pub = twins()
    subs = [twins(resp) for resp in (2, 3, 2)]
    for i, s in enumerate(subs):
        s("SUBSCRIBE", "c%d" % i, "shared", n=2)
        s("PSUBSCRIBE", "p%d*" % i, "shared*", n=2)
        s("SSUBSCRIBE", "s%d" % i, "sshared", n=2)
    pub("PUBLISH", "shared", "x")
    for s in subs:
        s.read(2)
    subs[0].close()
    subs[1].close()
    time.sleep(0.1)
    pub("PUBLISH", "shared", "y")
    subs[2].read(2)
    subs[2].close()
    time.sleep(0.1)
    pub("PUBLISH", "shared", "z")
    pub("PUBSUB", "NUMPAT")
    pub("PUBSUB", "CHANNELS")
    pub("PUBSUB", "SHARDCHANNELS")
    pub("PUBSUB", "NUMSUB", "shared", "c0")
    pub("SPUBLISH", "sshared", "z")
    for line in (b"pubsub_channels:0", b"pubsub_patterns:0", b"pubsubshard_channels:0"):
        assert line in pub.f.cmd("INFO", "stats")


def test_subscribe_in_multi(twins):
    s = twins()
    s("MULTI")
    s("SUBSCRIBE", "a", "b")
    s("SSUBSCRIBE", "x")
    s("PSUBSCRIBE", "p*")
    s("PING")
    # EXEC's array counts 4 replies but holds 5 (SUBSCRIBE a b answers
    # twice): the same bytes as Redis, read here as two replies
    s("EXEC", n=2)
    s("GET", "k")
    s("UNSUBSCRIBE", "a", "b", n=2)
    s("PUNSUBSCRIBE")
    s("GET", "k")


def _wait_gone(conn, channel, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.cmd("PUBSUB", "NUMSUB", channel).endswith(b":0\r\n"):
            return True
        time.sleep(0.05)
    return False


def _closed(conn) -> bool:
    conn.sock.settimeout(5)
    try:
        while True:
            d = conn.sock.recv(1 << 20)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def test_output_buffer_hard_limit(frtrio_proc, redis_proc):
    """A subscriber that never reads is disconnected once its output buffer
    passes the pubsub hard limit, on both servers; a reading one is not."""
    big = b"x" * 100_000
    for proc in (frtrio_proc, redis_proc):
        admin = proc.conn()
        admin.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0")
        try:
            lazy = _conn(proc.port, rcvbuf=4096)
            lazy.cmd("SUBSCRIBE", "flood")
            keen = proc.conn()
            keen.cmd("SUBSCRIBE", "flood")
            got = 0
            for i in range(120):
                admin.cmd("PUBLISH", "flood", big)
                keen.read_reply()
                got += 1
            assert admin.cmd("PUBSUB", "NUMSUB", "flood").endswith(b":1\r\n"), proc.kind
            assert _closed(lazy), proc.kind
            assert admin.cmd("PUBLISH", "flood", "last") == b":1\r\n"
            assert keen.read_reply().endswith(b"$4\r\nlast\r\n")
            keen.close()
            lazy.close()
        finally:
            admin.cmd("CONFIG", "SET", "client-output-buffer-limit",
                      "pubsub 33554432 8388608 60")
            admin.close()


def test_output_buffer_soft_limit(frtrio_proc, redis_proc):
    """Over the soft limit for longer than its seconds: disconnected."""
    big = b"y" * 100_000
    for proc in (frtrio_proc, redis_proc):
        admin = proc.conn()
        admin.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 512kb 0")
        try:
            lazy = _conn(proc.port, rcvbuf=4096)
            lazy.cmd("SUBSCRIBE", "soft")
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                if admin.cmd("PUBLISH", "soft", big) == b":0\r\n":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("%s kept the slow subscriber" % proc.kind)
            assert _closed(lazy)
            lazy.close()
        finally:
            admin.cmd("CONFIG", "SET", "client-output-buffer-limit",
                      "pubsub 33554432 8388608 60")
            admin.close()


# --- the registry, without sockets ---------------------------------------------------


def test_registry_bookkeeping():
    srv = Server(Config(), random.Random(1))
    ps = srv.pubsub
    rnd = random.Random(5)
    clients = [srv.new_client() for _ in range(6)]
    names = [b"a", b"b", b"c", b"d"]
    ops = [ps.subscribe, ps.unsubscribe, ps.psubscribe, ps.punsubscribe, ps.ssubscribe,
           ps.sunsubscribe]
    for _ in range(2000):
        rnd.choice(ops)(rnd.choice(clients), rnd.choice(names))
        # the server side and the client side always agree
        for table, attr in ((ps.channels, "subscriptions"), (ps.patterns, "psubscriptions"),
                            (ps.shard_channels, "ssubscriptions")):
            for name, subs in table.items():
                assert subs
                for cid, c in subs.items():
                    assert name in getattr(c, attr)
            for c in clients:
                for name in getattr(c, attr):
                    assert c.id in table[name]
    for c in clients:
        srv.free_client(c)
    assert not ps.channels and not ps.patterns and not ps.shard_channels
    assert ps.channel_count() == ps.pattern_count() == ps.shard_channel_count() == 0


def test_registry_publish_counts():
    srv = Server(Config(), random.Random(1))
    ps = srv.pubsub
    a, b = srv.new_client(), srv.new_client()
    ps.subscribe(a, b"news")
    ps.psubscribe(a, b"n*")
    ps.psubscribe(b, b"n*")
    ps.psubscribe(b, b"*")
    assert ps.publish(b"news", b"m") == 4
    assert a.take_output() == (b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nm\r\n"
                               b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nm\r\n")
    b.take_output()
    b.resp = 3
    assert ps.publish(b"x", b"m") == 1
    assert b.take_output().startswith(b">4\r\n$8\r\npmessage\r\n$1\r\n*\r\n")
    assert ps.spublish(b"news", b"m") == 0


@pytest.mark.parametrize("resp", [2, 3])
def test_confirmations_ignore_client_reply_off(twins, resp):
    s = twins(resp)
    pub = twins()
    s.send("CLIENT", "REPLY", "OFF")
    s("SUBSCRIBE", "ch", "ch2", n=2)
    s("PSUBSCRIBE", "p")
    pub("PUBLISH", "ch", "m")
    s.read()
    s.unsubscribe_all("UNSUBSCRIBE", 2)
    s("PUNSUBSCRIBE")
    s.send("CLIENT", "REPLY", "ON")
    s.read()
    s("GET", "k")


def test_pattern_matching(twins):
    patterns = ["h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "\\*",
                "[", "a\\", "*[", "[]]", "[\\]]x", "h\\?llo", "**", "?", ""]
    channels = ["hello", "hallo", "hbllo", "hllo", "heeello", "*", "[", "a\\", "x[", "]",
                "]x", "h?llo", "h\x00llo", "", "HELLO", "h\xffllo"]
    pub = twins()
    subs = []
    for p in patterns:
        s = twins()
        s("PSUBSCRIBE", p)
        subs.append(s)
    for ch in channels:
        n = pub("PUBLISH", ch, "m")
        got = 0
        for s in subs:
            s.send("PING")
            first = s.read()[0]
            if first.startswith(b"*4\r\n$8\r\npmessage"):
                got += 1
                s.read()  # the PING reply
        assert n == b":%d\r\n" % got
    for p in ("h*", "[a-z]*", "*\\*", "h[^e]*"):
        s = twins()
        s("SUBSCRIBE", *channels, n=len(channels))
        f, r = pub.f.cmd("PUBSUB", "CHANNELS", p), pub.r.cmd("PUBSUB", "CHANNELS", p)
        assert sorted(f.split(b"\r\n")) == sorted(r.split(b"\r\n")), p
        s.close()


def test_publish_is_propagated_to_replicas(frtrio_proc, redis_proc):
    """PUBLISH goes down the replication stream (a replica's subscribers get
    the message), alone or inside MULTI/EXEC (Redis's unit/multi 'MULTI
    propagation of PUBLISH')."""
    import support as _s

    streams = []
    for p in (frtrio_proc, redis_proc):
        s = _s.ReplStream(p.port)
        c = p.conn()
        for args in (("PUBLISH", "pch", "m1"), ("MULTI",), ("PUBLISH", "pch", "m2"), ("EXEC",),
                     ("MULTI",), ("SET", "pk", "v"), ("PUBLISH", "pch", "m3"), ("EXEC",),
                     ("DEL", "pk")):
            c.cmd(*args)
        streams.append(s.commands_until(b"del"))
        s.close()
        c.close()
    assert streams[0] == streams[1]
    assert streams[0][:2] == [[b"publish", b"pch", b"m1"], [b"publish", b"pch", b"m2"]]
