"""Differential tests: connection commands (PING ECHO HELLO AUTH QUIT RESET
CLIENT ...), frtrio vs redis-server 7.0.15.

Client ids, addresses, ages and memory figures legitimately differ between
the two servers: HELLO replies are compared with the id masked, CLIENT LIST /
INFO by their field names and the fields that do not depend on the process.
"""

import re
import time

import pytest

from support import ServerProc, encode_request

_ID = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")


def masked(reply: bytes) -> bytes:
    return _ID.sub(b"$2\r\nid\r\n:<id>\r\n", reply)


def same_masked(diff, *args):
    a, b = diff.both(*args)
    assert masked(a) == masked(b), f"{args!r}: frtrio {a!r} != redis {b!r}"
    return a


def client_fields(reply: bytes) -> list[list[tuple[str, str]]]:
    """CLIENT LIST / INFO bulk -> one [(field, value)] per client line."""
    text = reply.split(b"\r\n", 1)[1]
    if text.startswith(b"txt:"):
        text = text[4:]
    out = []
    for line in text.decode("latin-1").split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        out.append([tuple(kv.split("=", 1)) for kv in line.split(" ")])
    return out


# fields whose values depend on the process, the socket or memory layout
_VOLATILE = {"id", "addr", "laddr", "fd", "age", "idle", "qbuf", "qbuf-free", "argv-mem",
             "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem"}


def same_client_info(a: bytes, b: bytes):
    fa, fb = client_fields(a), client_fields(b)
    assert len(fa) == len(fb)
    for la, lb in zip(fa, fb):
        assert [k for k, _ in la] == [k for k, _ in lb]
        assert [kv for kv in la if kv[0] not in _VOLATILE] == \
            [kv for kv in lb if kv[0] not in _VOLATILE]


def pipeline(conn, cmds, nreplies):
    """Send several commands in one write; read ``nreplies`` replies."""
    conn.send(b"".join(encode_request(c) for c in cmds))
    return [conn.read_reply() for _ in range(nreplies)]


def _int(reply: bytes) -> int:
    assert reply.startswith(b":"), reply
    return int(reply[1:-2])


# --- PING / ECHO ------------------------------------------------------------------


def test_ping_echo(diff):
    diff("PING")
    diff("PING", "hello")
    diff("PING", "")
    diff("PING", b"\x00\xff")
    diff("PING", "a", "b")
    diff("ping")
    diff("ECHO", "hi")
    diff("ECHO", "")
    diff("ECHO", b"\r\n\x00")
    diff("ECHO")
    diff("ECHO", "a", "b")
    same_masked(diff, "HELLO", "3")
    diff("PING")
    diff("PING", "x")
    diff("ECHO", "x")
    same_masked(diff, "HELLO", "2")


def test_ping_in_subscribed_context(diff):
    for proto in ("2", "3"):
        same_masked(diff, "HELLO", proto)
        diff("SUBSCRIBE", "ch")
        diff("PING")
        diff("PING", "msg")
        diff("ECHO", "x")
        diff("UNSUBSCRIBE", "ch")
        diff("PING")
    same_masked(diff, "HELLO", "2")


# --- HELLO ---------------------------------------------------------------------------


def test_hello(diff):
    same_masked(diff, "HELLO")
    same_masked(diff, "HELLO", "2")
    same_masked(diff, "HELLO", "3")
    diff("GET", "missing")  # RESP3 null
    same_masked(diff, "HELLO")  # shows the current protocol
    same_masked(diff, "HELLO", "2")
    diff("GET", "missing")
    for bad in ("1", "4", "0", "-1", "abc", "2.0", "", "9223372036854775808"):
        diff("HELLO", bad)
    diff("HELLO", "3", "foo")
    diff("HELLO", "3", "AUTH")
    diff("HELLO", "3", "AUTH", "default")
    diff("HELLO", "3", "SETNAME")
    diff("HELLO", "3", "setname", "a b")
    diff("HELLO", "3", b"fo\x00o")
    diff("GET", "missing")  # still RESP2 after the errors
    same_masked(diff, "HELLO", "2", "SETNAME", "myname")
    diff("CLIENT", "GETNAME")
    same_masked(diff, "HELLO", "2", "AUTH", "default", "anything")  # nopass user
    diff("HELLO", "2", "AUTH", "nosuchuser", "pw")
    same_masked(diff, "HELLO", "2", "AUTH", "default", "x", "SETNAME", "other")
    diff("CLIENT", "GETNAME")
    diff("HELLO", "2", "SETNAME", "bad name", "AUTH", "default", "x")
    diff("CLIENT", "GETNAME")
    same_masked(diff, "HELLO", "3", "SETNAME", "")
    diff("CLIENT", "GETNAME")
    same_masked(diff, "HELLO", "2")


def test_hello_id_is_client_id(frtrio_proc):
    c = frtrio_proc.conn()
    try:
        cid = _int(c.cmd("CLIENT", "ID"))
        assert b"$2\r\nid\r\n:%d\r\n" % cid in c.cmd("HELLO")
    finally:
        c.close()


# --- AUTH -------------------------------------------------------------------------------


def test_auth_without_password(diff):
    diff("AUTH")
    diff("AUTH", "x")
    diff("AUTH", "default", "x")  # the default user has nopass
    diff("AUTH", "someone", "x")
    diff("AUTH", "a", "b", "c")
    diff("PING")


@pytest.fixture(scope="module")
def auth_pair():
    f = ServerProc("frtrio", args=["--requirepass", "s3cret"]).start(wait=False)
    r = ServerProc("redis", args=["--requirepass", "s3cret"]).start(wait=False)
    for p in (f, r):
        deadline = time.monotonic() + 15
        while True:
            try:
                c = p.conn(timeout=1)
                c.close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    yield f, r
    f.cleanup()
    r.cleanup()


class _Pair:
    def __init__(self, f, r):
        self.f, self.r = f.conn(), r.conn()

    def __call__(self, *args):
        a, b = self.f.cmd(*args), self.r.cmd(*args)
        assert masked(a) == masked(b), f"{args!r}: frtrio {a!r} != redis {b!r}"
        return a

    def close(self):
        self.f.close()
        self.r.close()


def test_requirepass(auth_pair):
    d = _Pair(*auth_pair)
    try:
        d("PING")
        d("GET", "k")
        d("HELLO", "3")
        d("HELLO")
        d("ECHO", "x")
        d("AUTH", "wrong")
        d("AUTH", "default", "wrong")
        d("AUTH", "nobody", "s3cret")
        d("HELLO", "2", "AUTH", "default", "wrong")
        d("PING")
        d("AUTH", "s3cret")
        d("PING")
        d("SET", "k", "v")
        d("GET", "k")
        d("RESET")  # forgets the authentication
        d("GET", "k")
        d("AUTH", "default", "s3cret")
        d("GET", "k")
        d("RESET")
        d("HELLO", "3", "AUTH", "default", "s3cret")
        d("GET", "k")
        d("GET", "missing")
        d("HELLO", "2")
        d("AUTH", "wrong")  # a failed AUTH does not log out
        d("GET", "k")
        d("DEL", "k")
    finally:
        d.close()


def test_requirepass_quit_and_unknown(auth_pair):
    d = _Pair(*auth_pair)
    try:
        d("NOSUCHCOMMAND", "x")
        d("GET")  # arity is checked before authentication
        d("QUIT")
    finally:
        d.close()


# --- QUIT -------------------------------------------------------------------------------


def test_quit_closes(frtrio_proc, redis_proc):
    for args in (("QUIT",), ("QUIT", "extra", "args"), ("quit",)):
        outs = []
        for p in (frtrio_proc, redis_proc):
            c = p.conn()
            c.send(encode_request(args) + encode_request(("PING",)))
            data, closed = c.read_until_close(5)
            assert closed
            outs.append(data)
            c.close()
        assert outs[0] == outs[1] == b"+OK\r\n"


# --- RESET ----------------------------------------------------------------------------------


def test_reset(diff):
    same_masked(diff, "HELLO", "3", "SETNAME", "n1")
    diff("SELECT", "5")
    diff("SET", "in5", "v")
    diff("CLIENT", "NO-EVICT", "on")
    diff("WATCH", "in5")
    diff("MULTI")
    diff("SET", "x", "1")
    diff("RESET")
    diff("EXEC")  # the transaction was discarded
    diff("GET", "in5")  # back to db 0
    diff("GET", "missing")  # back to RESP2
    diff("CLIENT", "GETNAME")
    a, b = diff.both("CLIENT", "INFO")
    same_client_info(a, b)  # NO-EVICT survives RESET, as in Redis 7.0
    diff("SUBSCRIBE", "ch")
    diff("RESET")
    diff("PING")
    for who in (diff.f, diff.r):  # RESET turns replies back on
        assert pipeline(who, [("CLIENT", "REPLY", "OFF"), ("PING",), ("RESET",), ("PING",)],
                        2) == [b"+RESET\r\n", b"+PONG\r\n"]
    diff("RESET", "x")
    diff("SELECT", "5")
    diff("FLUSHDB")
    diff("SELECT", "0")


# --- CLIENT ---------------------------------------------------------------------------------


def test_client_help_and_unknown(diff):
    diff("CLIENT", "HELP")
    diff("CLIENT", "help")
    diff("CLIENT", "HELP", "x")
    diff("CLIENT")
    diff("CLIENT", "NOSUCH")
    diff("CLIENT", "NOSUCH", "a", "b")
    diff("CLIENT", "GETREDIR")
    diff("CLIENT", "TRACKINGINFO")
    diff("CLIENT", "CACHING", "yes")
    diff("CLIENT", "CACHING", "no")
    diff("CLIENT", "CACHING")
    same_masked(diff, "HELLO", "3")
    diff("CLIENT", "TRACKINGINFO")
    diff("CLIENT", "GETNAME")
    same_masked(diff, "HELLO", "2")


def test_client_id(frtrio_proc):
    a, b = frtrio_proc.conn(), frtrio_proc.conn()
    try:
        ia, ib = _int(a.cmd("CLIENT", "ID")), _int(b.cmd("CLIENT", "ID"))
        assert 0 < ia < ib
        assert _int(a.cmd("CLIENT", "ID")) == ia
        assert b"id=%d " % ia in a.cmd("CLIENT", "INFO")
        assert a.cmd("CLIENT", "ID", "x").startswith(b"-ERR wrong number of arguments")
    finally:
        a.close()
        b.close()


def test_client_setname_getname(diff):
    diff("CLIENT", "GETNAME")
    diff("CLIENT", "SETNAME", "conn-1")
    diff("CLIENT", "GETNAME")
    for bad in ("a b", "a\nb", "tab\there", b"\x7f", b"\x80", b"\xff", b"\x00", " "):
        diff("CLIENT", "SETNAME", bad)
    diff("CLIENT", "GETNAME")
    diff("CLIENT", "SETNAME", "!~")
    diff("CLIENT", "GETNAME")
    diff("CLIENT", "SETNAME", "")  # removes the name
    diff("CLIENT", "GETNAME")
    diff("CLIENT", "SETNAME")
    diff("CLIENT", "SETNAME", "a", "b")
    diff("CLIENT", "GETNAME", "x")
    same_masked(diff, "HELLO", "3")
    diff("CLIENT", "GETNAME")
    same_masked(diff, "HELLO", "2")


def test_client_info_and_list_shape(diff):
    diff("CLIENT", "SETNAME", "me")
    diff("SELECT", "3")
    a, b = diff.both("CLIENT", "INFO")
    same_client_info(a, b)
    same_masked(diff, "HELLO", "3")
    a, b = diff.both("CLIENT", "INFO")
    assert a.startswith(b"=") and b.startswith(b"=")  # a verbatim string
    same_client_info(a, b)
    same_masked(diff, "HELLO", "2")
    diff("SELECT", "0")
    # only this test's connections are guaranteed to exist: compare our line
    for who in (diff.f, diff.r):
        me = _int(who.cmd("CLIENT", "ID"))
        lines = client_fields(who.cmd("CLIENT", "LIST", "ID", str(me)))
        assert len(lines) == 1 and ("name", "me") in lines[0]
    diff("CLIENT", "INFO", "x")


def test_client_list_filters(diff):
    diff("CLIENT", "LIST", "TYPE", "foo")
    diff("CLIENT", "LIST", "TYPE")
    diff("CLIENT", "LIST", "foo")
    diff("CLIENT", "LIST", "TYPE", "normal", "x")
    diff("CLIENT", "LIST", "ID")
    diff("CLIENT", "LIST", "ID", "abc")
    diff("CLIENT", "LIST", "ID", "1", "abc")
    diff("CLIENT", "LIST", "ID", "0")
    diff("CLIENT", "LIST", "ID", "-5")
    diff("CLIENT", "LIST", "ID", "99999999")
    diff("CLIENT", "LIST", "TYPE", "master")
    diff("CLIENT", "LIST", "TYPE", "replica")
    diff("CLIENT", "LIST", "TYPE", "SLAVE")
    for who in (diff.f, diff.r):
        me = _int(who.cmd("CLIENT", "ID"))
        two = client_fields(who.cmd("CLIENT", "LIST", "ID", str(me), str(me), "99999999"))
        assert len(two) == 2  # an id asked twice is listed twice
        normal = client_fields(who.cmd("CLIENT", "LIST", "TYPE", "normal"))
        assert ("id", str(me)) in [kv for line in normal for kv in line]


def test_client_list_pubsub_type(frtrio_proc, redis_proc):
    for p in (frtrio_proc, redis_proc):
        sub, me = p.conn(), p.conn()
        try:
            sub_id = _int(sub.cmd("CLIENT", "ID"))
            sub.cmd("SUBSCRIBE", "chan")
            lines = client_fields(me.cmd("CLIENT", "LIST", "TYPE", "pubsub"))
            assert [dict(x)["id"] for x in lines] == [str(sub_id)]
            assert dict(lines[0])["sub"] == "1" and dict(lines[0])["flags"] == "P"
            assert dict(lines[0])["cmd"] == "subscribe"
        finally:
            sub.close()
            me.close()


def test_client_reply(diff):
    for who in (diff.f, diff.r):
        replies = pipeline(who, [("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("PING",),
                                 ("NOSUCH",), ("CLIENT", "REPLY", "SKIP"), ("PING", "x"),
                                 ("CLIENT", "REPLY", "ON"), ("GET", "a")], 2)
        assert replies == [b"+OK\r\n", b"$1\r\n1\r\n"]
        replies = pipeline(who, [("CLIENT", "REPLY", "SKIP"), ("PING", "a"), ("PING", "b")], 1)
        assert replies == [b"$1\r\nb\r\n"]
        replies = pipeline(who, [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"),
                                 ("PING", "a"), ("PING", "b")], 1)
        assert replies == [b"$1\r\nb\r\n"]
        replies = pipeline(who, [("CLIENT", "REPLY", "SKIP"), ("NOSUCH",), ("PING", "c")], 1)
        assert replies == [b"$1\r\nc\r\n"]
    diff("CLIENT", "REPLY", "ON")
    diff("CLIENT", "REPLY")
    diff("CLIENT", "REPLY", "maybe")
    diff("CLIENT", "REPLY", "on", "x")


def test_client_no_evict(diff):
    diff("CLIENT", "NO-EVICT", "on")
    a, b = diff.both("CLIENT", "INFO")
    same_client_info(a, b)
    assert b" flags=e " in a
    diff("CLIENT", "NO-EVICT", "OFF")
    a, b = diff.both("CLIENT", "INFO")
    same_client_info(a, b)
    diff("CLIENT", "NO-EVICT", "maybe")
    diff("CLIENT", "NO-EVICT")
    diff("CLIENT", "NO-EVICT", "on", "x")


def test_client_kill_errors(diff):
    for args in (("KILL",), ("KILL", "1.2.3.4:5"), ("KILL", "ID"), ("KILL", "ID", "0"),
                 ("KILL", "ID", "-1"), ("KILL", "ID", "abc"), ("KILL", "ID", "99999999"),
                 ("KILL", "TYPE", "foo"), ("KILL", "TYPE", "normal", "x"),
                 ("KILL", "TYPE", "foo", "x"), ("KILL", "SKIPME", "maybe"), ("KILL", "foo", "bar"),
                 ("KILL", "ADDR", "1.2.3.4:5"), ("KILL", "LADDR", "1.2.3.4:5"),
                 ("KILL", "USER", "nobody"), ("KILL", "USER", "default", "SKIPME", "yes",
                                            "ADDR", "9.9.9.9:1"),
                 ("KILL", "MAXAGE", "100"), ("KILL", "ID", "1", "ID")):
        diff("CLIENT", *args)


def test_client_kill_closes_connections(frtrio_proc, redis_proc):
    for p in (frtrio_proc, redis_proc):
        me, v1, v2 = p.conn(), p.conn(), p.conn()
        try:
            id1 = _int(v1.cmd("CLIENT", "ID"))
            assert me.cmd("CLIENT", "KILL", "ID", str(id1)) == b":1\r\n"
            assert v1.read_until_close(5) == (b"", True)
            info = client_fields(v2.cmd("CLIENT", "INFO"))[0]
            addr = dict(info)["addr"]
            assert me.cmd("CLIENT", "KILL", addr) == b"+OK\r\n"  # the old form
            assert v2.read_until_close(5) == (b"", True)
            assert me.cmd("CLIENT", "KILL", addr) == b"-ERR No such client\r\n"
            myid = _int(me.cmd("CLIENT", "ID"))
            assert me.cmd("CLIENT", "KILL", "ID", str(myid)) == b":0\r\n"  # SKIPME yes
            assert me.cmd("PING") == b"+PONG\r\n"
            assert me.cmd("CLIENT", "KILL", "ID", str(myid), "SKIPME", "no") == b":1\r\n"
            assert me.read_until_close(5) == (b"", True)
        finally:
            for c in (me, v1, v2):
                c.close()


def test_client_unblock(frtrio_proc, redis_proc):
    outs = []
    for p in (frtrio_proc, redis_proc):
        me, blocked = p.conn(), p.conn()
        try:
            bid = _int(blocked.cmd("CLIENT", "ID"))
            got = [me.cmd("CLIENT", "UNBLOCK", str(bid)),
                   me.cmd("CLIENT", "UNBLOCK", str(bid), "foo"),
                   me.cmd("CLIENT", "UNBLOCK", "abc"),
                   me.cmd("CLIENT", "UNBLOCK", "abc", "ERROR"),
                   me.cmd("CLIENT", "UNBLOCK", "99999999", "TIMEOUT")]
            for how in ("TIMEOUT", "ERROR"):
                blocked.send(encode_request(("BLPOP", "nolist%s" % how, "0")))
                for _ in range(1000):
                    if b" flags=b " in me.cmd("CLIENT", "LIST", "ID", str(bid)):
                        break
                    time.sleep(0.01)
                got.append(me.cmd("CLIENT", "UNBLOCK", str(bid), how))
                got.append(blocked.read_reply())
            got.append(me.cmd("CLIENT", "UNBLOCK", str(bid)))
            got.append(blocked.cmd("PING"))
            outs.append(got)
        finally:
            me.close()
            blocked.close()
    assert outs[0] == outs[1]


def test_client_flags(frtrio_proc, redis_proc):
    outs = []
    for p in (frtrio_proc, redis_proc):
        c, other = p.conn(), p.conn()
        try:
            cid = str(_int(c.cmd("CLIENT", "ID")))

            def flags():
                return dict(client_fields(other.cmd("CLIENT", "LIST", "ID", cid))[0])["flags"]

            seen = [flags()]
            c.cmd("CLIENT", "NO-EVICT", "on")
            c.cmd("WATCH", "wk")
            other.cmd("SET", "wk", "1")
            seen.append(flags())
            c.cmd("MULTI")
            seen.append(flags())
            c.cmd("DISCARD")
            c.cmd("SUBSCRIBE", "ch")
            seen.append(flags())
            outs.append(seen)
        finally:
            c.close()
            other.close()
    assert outs[0] == outs[1]


def test_client_pause_write_and_all_side_by_side(frtrio_proc, redis_proc):
    """CLIENT PAUSE WRITE holds writes (reads go on) until UNPAUSE or the
    timeout; PAUSE ALL holds every command; the errors are Redis's."""
    import threading

    got = []
    for proc in (frtrio_proc, redis_proc):
        a, b = proc.conn(), proc.conn()
        row = [a.cmd("CLIENT", "PAUSE"), a.cmd("CLIENT", "PAUSE", "x"),
               a.cmd("CLIENT", "PAUSE", "-1"), a.cmd("CLIENT", "PAUSE", "10", "SOME"),
               a.cmd("CLIENT", "PAUSE", "10", "WRITE", "x")]
        a.cmd("CLIENT", "UNPAUSE")
        b.cmd("SET", "pk", "1")
        row.append(a.cmd("CLIENT", "PAUSE", "5000", "WRITE"))
        t0 = time.monotonic()
        row.append(b.cmd("GET", "pk"))  # reads are not held
        quick = time.monotonic() - t0
        done = {}

        def writer():
            done["r"] = b.cmd("SET", "pk", "2")
            done["t"] = time.monotonic()

        th = threading.Thread(target=writer)
        th.start()
        time.sleep(0.3)
        held = "r" not in done  # the write waits for the pause
        t1 = time.monotonic()
        row.append(a.cmd("CLIENT", "UNPAUSE"))
        th.join(5)
        row.append(done.get("r"))
        row.append(a.cmd("GET", "pk"))
        # PAUSE ALL: even PING waits, until the timeout
        a.cmd("CLIENT", "PAUSE", "300", "ALL")
        t2 = time.monotonic()
        row.append(b.cmd("PING"))
        waited = time.monotonic() - t2
        got.append(row)
        assert quick < 1.0 and held and done["t"] >= t1 and waited >= 0.2, (proc.kind, quick, held, waited)
        a.cmd("DEL", "pk")
        a.close()
        b.close()
    assert got[0] == got[1]


_BUF_FIELDS = ("qbuf", "qbuf-free", "rbs", "rbp", "tot-mem")


def _buffers(conn, name: str) -> dict:
    """The buffer fields of the client named ``name`` in CLIENT LIST."""
    for line in client_fields(conn.cmd("CLIENT", "LIST")):
        d = dict(line)
        if d.get("name") == name:
            return {k: int(d[k]) for k in _BUF_FIELDS}
    raise AssertionError("no client named %s" % name)


@pytest.fixture(scope="module")
def buf_pair(redis_proc):
    """A frtrio and a redis-server of their own for the buffer tests below:
    the clients cron visits numclients/hz clients a tick (5 at least), so
    on the session's servers, with connections other tests left open, a
    client may wait up to a second for its first visit (``redis_proc``:
    skipped or failed as the session's servers are when redis-server is
    missing)."""
    procs = (ServerProc("frtrio").start(), ServerProc("redis").start())
    yield procs
    for p in procs:
        p.cleanup()


def _side_by_side(procs, name, steps):
    """Run ``steps`` (functions of (control conn, test conn)) on both
    servers in lockstep; after each, the buffer fields of the test client."""
    conns = []
    for p in procs:
        ctl, t = p.conn(), p.conn()
        assert t.cmd("CLIENT", "SETNAME", name) == b"+OK\r\n"
        conns.append((ctl, t))
    # a new client's first cron visits reset its reply-buffer peak and
    # shrink the buffer (see the last test here): let them come on both
    # servers before the first look, so none falls between a step and it
    time.sleep(0.3)
    seen = {p.kind: [] for p in procs}
    try:
        for step in steps:
            for (ctl, t), p in zip(conns, procs):
                step(ctl, t)
            for (ctl, t), p in zip(conns, procs):
                seen[p.kind].append(_buffers(ctl, name))
    finally:
        for ctl, t in conns:
            ctl.cmd("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "RESET")
            ctl.close()
            t.close()
    return seen


@pytest.mark.slow
def test_c16_reply_and_query_buffer_sizes_side_by_side(buf_pair):
    """CLIENT LIST's buffer fields follow Redis's resizing (upstream
    unit/replybufsize, unit/querybuf): an idle client's reply buffer
    shrinks to 1 KB once its peak is reset, a client reading big replies
    gets it back to 16 KB, doubling per cron run; a 400 KB argument leaves a
    query buffer the cron trims back to its recent peak. The fields are
    equal on both servers."""
    big = b"x" * 32768

    def sleep(s):
        return lambda ctl, t: time.sleep(s)

    def reset_fast(ctl, t):
        assert ctl.cmd("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "100") == b"+OK\r\n"
        time.sleep(0.4)

    def big_value(ctl, t):
        ctl.cmd("SET", "bigval", big)
        assert ctl.cmd("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "NEVER") == b"+OK\r\n"

    def get_big(ctl, t):
        assert len(t.cmd("GET", "bigval")) > 32768
        time.sleep(0.15)

    def big_arg(ctl, t):
        assert t.cmd("SET", "x", b"A" * 400000) == b"+OK\r\n"

    def small_arg(ctl, t):
        assert t.cmd("SET", "x", "y") == b"+OK\r\n"
        time.sleep(0.15)

    # (the sleeps let the cron, 10 runs a second, visit the client between
    # steps: its first visit after the big argument keeps the room, as the
    # argument was the peak; the next trims it to the new peak, none)
    steps = ([sleep(0), reset_fast, big_value] + [get_big] * 5
             + [big_arg, sleep(0.35), small_arg])
    seen = _side_by_side(buf_pair, "bufs", steps)
    assert seen["frtrio"] == seen["redis"]
    rbs = [s["rbs"] for s in seen["redis"]]
    assert rbs[1] == 1024 and rbs[-4] == 16384  # it did shrink, then grow back
    qfree = [s["qbuf-free"] for s in seen["redis"][-3:]]
    assert qfree[0] > 400000 and qfree[1] == 0 and 16384 < qfree[2] < 32768


def test_c16_cron_during_a_big_argument_side_by_side(buf_pair):
    """A cron run while a 400 KB argument is half read trims the query
    buffer to the argument's length; the read that brings the rest makes
    room again, so when the command is done the buffer has the room Redis
    gives a fresh one for such an argument. (The official CI run of stop 28
    failed here: frtrio made room only before waiting for data, so a cron
    during that wait left its trim in place, 400000 instead of 458742.)"""
    from support import encode_request

    req = encode_request(("SET", "x", b"A" * 400000))
    half = req.index(b"AAAA") + 100000

    def first_part(ctl, t):
        t.send(req[:half])
        time.sleep(0.35)  # (several cron runs see the half-read argument)

    def rest(ctl, t):
        t.send(req[half:])
        assert t.read_reply() == b"+OK\r\n"

    seen = _side_by_side(buf_pair, "halfbig", [first_part, rest])
    assert seen["frtrio"] == seen["redis"]
    # mid-argument: trimmed to the argument; after it: room for another
    assert [s["qbuf-free"] for s in seen["redis"]] == [400000 - 100000, 458742]


@pytest.mark.slow
def test_c16_idle_query_buffer_freed_side_by_side(buf_pair):
    """A client idle for more than 2 seconds has its query buffer's spare
    room freed (qbuf + qbuf-free = 0), on both servers alike."""
    def idle(ctl, t):
        time.sleep(3.3)

    def ping(ctl, t):
        assert t.cmd("PING") == b"+PONG\r\n"

    seen = _side_by_side(buf_pair, "idle", [ping, idle, ping])
    assert seen["frtrio"] == seen["redis"]
    q = [s["qbuf"] + s["qbuf-free"] for s in seen["redis"]]
    assert q[0] > 16384 and q[1] == 0 and q[2] > 16384


@pytest.mark.slow
def test_c16_query_buffer_room_is_made_as_the_client_reads_side_by_side(buf_pair):
    """Redis makes query-buffer room when it reads: a client that has sent
    nothing has an empty buffer's room (qbuf-free=4), and a client idle for
    more than 2 s, whose room the cron freed, gets room again with the read
    of its next command, so its own CLIENT INFO shows it. frtrio used to
    make the room before waiting for data (qbuf-free=20474 for a silent
    client, 0 in the idle client's own CLIENT INFO)."""
    got = {}
    for p in buf_pair:
        ctl, t = p.conn(), p.conn()
        try:
            time.sleep(0.3)  # (the cron's first visits)
            silent = [dict(line) for line in client_fields(ctl.cmd("CLIENT", "LIST"))
                      if dict(line).get("cmd") == "NULL"]
            time.sleep(3.3)
            own = dict(client_fields(t.cmd("CLIENT", "INFO"))[0])
            got[p.kind] = ([x["qbuf-free"] for x in silent], own["qbuf"], own["qbuf-free"])
        finally:
            ctl.close()
            t.close()
    assert got["frtrio"] == got["redis"]
    assert got["redis"][0] == ["4"] and int(got["redis"][2]) > 16384


def test_c16_new_client_peak_is_reset_at_the_crons_first_visit():
    """Redis 7.0 sets a new client's buf_peak_last_reset_time to the unix
    time in seconds and its cron compares it with milliseconds, so the
    first visit always resets the reply-buffer peak (rbp=0) and the next one
    shrinks the buffer to 1 KB, whatever the reset period. Measured on
    redis-server 7.0.15: rbs=16384 rbp=16384 at once, rbp=0 after 50 ms,
    rbs=1024 after 100 ms. (An earlier fix had the period start at the
    creation; the side-by-side tests now let both servers' crons visit a
    new client first, so neither depends on when the first visit comes.)"""
    import support

    srv = support.engine(None, now_ms=10_000_000)
    c = srv.new_client("127.0.0.1:1", "")
    assert (c.rb_size, c.rb_peak) == (16384, 16384)
    srv.now_ms += 100
    srv.resize_client_buffers(10)  # the cron's visit (at least 5 clients a tick)
    assert (c.rb_size, c.rb_peak) == (16384, 0)
    srv.now_ms += 100
    srv.resize_client_buffers(10)
    assert (c.rb_size, c.rb_peak) == (1024, 0)
