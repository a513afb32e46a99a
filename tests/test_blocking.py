"""Blocking list commands and CLIENT UNBLOCK.

Socket tests run one scenario against frtrio and against redis-server 7.0,
over real connections, and compare everything the clients saw (reply bytes,
in order). Engine tests drive the pure engine directly to check what is
propagated to the AOF and that nothing is left behind.
"""

from __future__ import annotations

import socket
import time

import pytest

from support import encode_request

# --- socket scenarios -----------------------------------------------------------


@pytest.fixture
def servers(frtrio_proc, redis_proc):
    for p in (frtrio_proc, redis_proc):
        with p.conn() as c:
            c.cmd("FLUSHALL")
            c.cmd("SELECT", "0")
    return frtrio_proc, redis_proc


def both(servers, scenario):
    """Run scenario(proc) on both servers; the observations must be equal."""
    f, r = servers
    got_r = scenario(r)
    got_f = scenario(f)
    assert got_f == got_r
    return got_f


def info_field(conn, name: str) -> int:
    raw = conn.cmd("INFO", "clients")
    for line in raw.split(b"\r\n"):
        if line.startswith(name.encode() + b":"):
            return int(line.split(b":")[1])
    raise AssertionError(f"{name} not in INFO: {raw!r}")


def wait_blocked(ctl, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        b = info_field(ctl, "blocked_clients")
        if b == n:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"blocked_clients={b}, expected {n}")
        time.sleep(0.001)


def send(conn, *args) -> None:
    conn.send(encode_request(args))


def no_reply_yet(conn, wait: float = 0.05) -> bool:
    conn.sock.settimeout(wait)
    try:
        data = conn.sock.recv(1, socket.MSG_PEEK)
    except (socket.timeout, TimeoutError, BlockingIOError):
        return True
    finally:
        conn.sock.settimeout(10)
    return False  # a reply (or EOF) is there


def test_fifo_order_many_clients(servers):
    """Hundreds of clients blocked on one key are served in the order they
    blocked, one element each."""
    n = 200

    def scenario(p):
        ctl = p.conn()
        conns = []
        for i in range(n):
            c = p.conn()
            send(c, "BLPOP", "q", "0")
            wait_blocked(ctl, i + 1)
            conns.append(c)
        assert ctl.cmd("RPUSH", "q", *[f"e{i}" for i in range(n)]) == b":%d\r\n" % n
        got = [c.read_reply() for c in conns]
        after = [ctl.cmd("EXISTS", "q"), info_field(ctl, "blocked_clients")]
        for c in conns:
            c.close()
        ctl.close()
        return got, after

    got, after = both(servers, scenario)
    assert got[0] == b"*2\r\n$1\r\nq\r\n$2\r\ne0\r\n"
    assert got[n - 1].endswith(b"$4\r\ne199\r\n")
    assert after == [b":0\r\n", 0]


def test_fifo_one_element_at_a_time(servers):
    def scenario(p):
        ctl = p.conn()
        conns = []
        for i in range(20):
            c = p.conn()
            send(c, "BRPOP", "q", "other", "0")
            wait_blocked(ctl, i + 1)
            conns.append(c)
        out = []
        for i in range(20):
            out.append(ctl.cmd("LPUSH", "q", f"x{i}"))
            out.append(conns[i].read_reply())
            out.append(info_field(ctl, "blocked_clients"))
        for c in conns:
            c.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_served_after_command_before_next(servers):
    """A key made ready by a command is served when that command completes,
    before the next command (here: the pusher's own pipelined LLEN); the
    pusher's reply counts the elements before serving."""

    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        b = p.conn()
        send(a, "BLPOP", "k", "0")
        wait_blocked(ctl, 1)
        send(b, "BLPOP", "k", "0")
        wait_blocked(ctl, 2)
        pusher = p.conn()
        send(pusher, "LPUSH", "k", "a", "b", "c")
        send(pusher, "LLEN", "k")
        send(pusher, "LRANGE", "k", "0", "-1")
        out = [pusher.read_reply() for _ in range(3)]
        out += [a.read_reply(), b.read_reply()]
        for c in (ctl, a, b, pusher):
            c.close()
        return out

    out = both(servers, scenario)
    assert out[0] == b":3\r\n" and out[1] == b":1\r\n"


def test_multi_key_and_timeouts(servers):
    def scenario(p):
        ctl = p.conn()
        out = []
        a = p.conn()
        send(a, "BLPOP", "k1", "k2", "k3", "0")
        wait_blocked(ctl, 1)
        out.append(ctl.cmd("RPUSH", "k2", "v"))
        out.append(a.read_reply())
        # timeouts: the reply is a null array, after about the timeout
        t0 = time.monotonic()
        out.append(a.cmd("BLPOP", "k1", "0.2"))
        t1 = time.monotonic()
        out.append(0.15 <= t1 - t0 < 2.0)
        out.append(a.cmd("BRPOPLPUSH", "k1", "d", "0.05"))
        out.append(a.cmd("BLMOVE", "k1", "d", "LEFT", "LEFT", "0.05"))
        out.append(a.cmd("BLMPOP", "0.05", "2", "k1", "k3", "RIGHT", "COUNT", "3"))
        # data arriving before the deadline is served
        send(a, "BLPOP", "k1", "5")
        wait_blocked(ctl, 1)
        out.append(ctl.cmd("RPUSH", "k1", "late"))
        out.append(a.read_reply())
        # the same key named twice
        send(a, "BLPOP", "k1", "k1", "0")
        wait_blocked(ctl, 1)
        out.append(ctl.cmd("RPUSH", "k1", "dup"))
        out.append(a.read_reply())
        # RESP3: the timeout reply is a null
        a.cmd("HELLO", "3")
        out.append(a.cmd("BLPOP", "k1", "0.01"))
        out.append(a.cmd("BLMOVE", "k1", "d", "LEFT", "LEFT", "0.01"))
        out.append(info_field(ctl, "blocked_clients"))
        a.close()
        ctl.close()
        return out

    out = both(servers, scenario)
    assert out[3] is True


def test_disconnect_while_blocked_leaves_nothing(servers):
    def scenario(p):
        ctl = p.conn()
        base = info_field(ctl, "connected_clients")
        conns = []
        for i in range(5):
            c = p.conn()
            send(c, "BLPOP", "k", "other", "0")
            wait_blocked(ctl, i + 1)
            conns.append(c)
        c = p.conn()
        send(c, "BLMOVE", "k", "dst", "LEFT", "RIGHT", "0")
        wait_blocked(ctl, 6)
        conns.append(c)
        for c in conns:
            c.close()
        deadline = time.monotonic() + 10
        while info_field(ctl, "blocked_clients") or info_field(ctl, "connected_clients") != base:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        out = [ctl.cmd("RPUSH", "k", "x"), ctl.cmd("LLEN", "k"), ctl.cmd("DBSIZE"),
               ctl.cmd("EXISTS", "dst"), ctl.cmd("CLIENT", "LIST").count(b"id=") == base]
        ctl.close()
        return out

    assert both(servers, scenario)[-1] is True


def test_client_kill_blocked(servers):
    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        aid = a.cmd("CLIENT", "ID")
        send(a, "BLPOP", "k", "0")
        wait_blocked(ctl, 1)
        out = [ctl.cmd("CLIENT", "KILL", "ID", aid[1:-2].decode())]
        data, closed = a.read_until_close(5)
        out += [data, closed, info_field(ctl, "blocked_clients"), ctl.cmd("RPUSH", "k", "x")]
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_blmove_chain(servers):
    """BLMOVE a->b, BLMOVE b->c, BRPOPLPUSH c->d, BLPOP d: one push to a
    travels the whole chain within one command."""

    def scenario(p):
        ctl = p.conn()
        waits = [
            ("BLMOVE", "a", "b", "LEFT", "RIGHT", "0"),
            ("BLMOVE", "b", "c", "RIGHT", "LEFT", "0"),
            ("BRPOPLPUSH", "c", "d", "0"),
            ("BLPOP", "d", "0"),
        ]
        conns = []
        for i, w in enumerate(waits):
            c = p.conn()
            send(c, *w)
            wait_blocked(ctl, i + 1)
            conns.append(c)
        out = [ctl.cmd("RPUSH", "a", "x", "y")]
        out += [c.read_reply() for c in conns]
        out += [ctl.cmd("LRANGE", k, "0", "-1") for k in "abcd"]
        out.append(ctl.cmd("DBSIZE"))
        # a circular move into the same list
        c = conns[0]
        send(c, "BLMOVE", "e", "e", "LEFT", "RIGHT", "0")
        wait_blocked(ctl, 1)
        out.append(ctl.cmd("RPUSH", "e", "1", "2"))
        out.append(c.read_reply())
        out.append(ctl.cmd("LRANGE", "e", "0", "-1"))
        for c in conns:
            c.close()
        ctl.close()
        return out

    out = both(servers, scenario)
    assert out[4] == b"*2\r\n$1\r\nd\r\n$1\r\nx\r\n"


def test_blmove_wrongtype_destination(servers):
    """The destination turned into a string while the client waited: it is
    unblocked with WRONGTYPE and the element stays in the source."""

    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        b = p.conn()
        send(a, "BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
        wait_blocked(ctl, 1)
        send(b, "BLPOP", "src", "0")
        wait_blocked(ctl, 2)
        out = [ctl.cmd("SET", "dst", "str"), ctl.cmd("RPUSH", "src", "x"),
               a.read_reply(), b.read_reply(), ctl.cmd("EXISTS", "src")]
        for c in (a, b, ctl):
            c.close()
        return out

    out = both(servers, scenario)
    assert out[2].startswith(b"-WRONGTYPE")


def test_blmpop_served_with_count(servers):
    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        b = p.conn()
        send(a, "BLMPOP", "0", "2", "x", "y", "RIGHT", "COUNT", "2")
        wait_blocked(ctl, 1)
        send(b, "BLMPOP", "0", "1", "y", "LEFT", "COUNT", "10")
        wait_blocked(ctl, 2)
        out = [ctl.cmd("RPUSH", "y", "1", "2", "3", "4", "5"), a.read_reply(), b.read_reply(),
               ctl.cmd("EXISTS", "y")]
        for c in (a, b, ctl):
            c.close()
        return out

    both(servers, scenario)


def test_other_types_do_not_serve(servers):
    """A waited-on key that becomes another type keeps the client blocked;
    a later list at that key serves it."""

    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        send(a, "BLPOP", "k", "0")
        wait_blocked(ctl, 1)
        out = [ctl.cmd("SADD", "k", "m"), ctl.cmd("SET", "k", "v"), ctl.cmd("DEL", "k"),
               info_field(ctl, "blocked_clients"), ctl.cmd("RPUSH", "k", "list"), a.read_reply()]
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_client_unblock(servers):
    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        aid = a.cmd("CLIENT", "ID")[1:-2].decode()
        out = [ctl.cmd("CLIENT", "UNBLOCK", aid), ctl.cmd("CLIENT", "UNBLOCK", aid, "ERROR")]
        for cmd in [("BLPOP", "k", "0"), ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"),
                    ("BLMPOP", "0", "1", "k", "LEFT")]:
            send(a, *cmd)
            wait_blocked(ctl, 1)
            out.append(ctl.cmd("CLIENT", "UNBLOCK", aid))
            out.append(a.read_reply())
            send(a, *cmd)
            wait_blocked(ctl, 1)
            out.append(ctl.cmd("CLIENT", "UNBLOCK", aid, "error"))
            out.append(a.read_reply())
            send(a, *cmd)
            wait_blocked(ctl, 1)
            out.append(ctl.cmd("CLIENT", "UNBLOCK", aid, "TIMEOUT"))
            out.append(a.read_reply())
        out.append(a.cmd("PING"))
        out.append(info_field(ctl, "blocked_clients"))
        for args in [(aid, "foo"), ("abc", "foo"), ("abc",), (aid, "timeout", "x"),
                     ("99999", "error"), ("-1",)]:
            out.append(ctl.cmd("CLIENT", "UNBLOCK", *args))
        es = ctl.cmd("INFO", "errorstats")
        out.append(b"errorstat_UNBLOCKED:count=3" in es)
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_pipelined_after_block(servers):
    """Commands pipelined behind a blocking command run after it is served."""

    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        send(a, "BLPOP", "k", "0")
        send(a, "PING")
        send(a, "RPUSH", "k", "mine")
        send(a, "LPOP", "k")
        wait_blocked(ctl, 1)
        out = [no_reply_yet(a), ctl.cmd("RPUSH", "k", "x")]
        out += [a.read_reply() for _ in range(4)]
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_blocking_inside_multi_is_immediate(servers):
    def scenario(p):
        a = p.conn()
        out = [a.cmd("MULTI")]
        for cmd in [("BLPOP", "k", "0"), ("BRPOP", "k", "0"),
                    ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"), ("BRPOPLPUSH", "k", "d", "0"),
                    ("BLMPOP", "0", "1", "k", "LEFT"), ("RPUSH", "k", "a", "b"),
                    ("BLPOP", "k", "0"), ("BLMOVE", "k", "d", "LEFT", "LEFT", "0")]:
            out.append(a.cmd(*cmd))
        out.append(a.cmd("EXEC"))
        out.append(a.cmd("LRANGE", "d", "0", "-1"))
        a.close()
        return out

    both(servers, scenario)


def test_exec_makes_keys_ready(servers):
    """Keys pushed inside MULTI/EXEC are served after EXEC; a key pushed and
    deleted in the same transaction serves nobody."""

    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        send(a, "BLPOP", "k", "0")
        wait_blocked(ctl, 1)
        out = [ctl.cmd("MULTI"), ctl.cmd("RPUSH", "k", "1"), ctl.cmd("DEL", "k"), ctl.cmd("EXEC"),
               info_field(ctl, "blocked_clients")]
        out += [ctl.cmd("MULTI"), ctl.cmd("RPUSH", "k", "1"), ctl.cmd("RPUSH", "k", "2"),
                ctl.cmd("LLEN", "k"), ctl.cmd("EXEC"), a.read_reply(), ctl.cmd("LRANGE", "k", "0", "-1")]
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


def test_move_and_db_isolation(servers):
    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        a.cmd("SELECT", "1")
        send(a, "BLPOP", "k", "0")
        wait_blocked(ctl, 1)
        out = [ctl.cmd("RPUSH", "k", "db0"), info_field(ctl, "blocked_clients"),
               ctl.cmd("MOVE", "k", "1"), a.read_reply(), ctl.cmd("DBSIZE")]
        a.close()
        ctl.close()
        return out

    both(servers, scenario)


# --- engine tests -------------------------------------------------------------------


from support import engine as make_server  # noqa: E402
from support import run as ex  # noqa: E402


def test_engine_propagation_of_served_clients():
    srv = make_server()
    a, b, c, d, w = (srv.new_client() for _ in range(5))
    ex(srv, a, "BLPOP", "k", "0")
    ex(srv, b, "BLMOVE", "k", "dst", "RIGHT", "LEFT", "0")
    ex(srv, c, "BRPOPLPUSH", "k", "dst2", "0")
    ex(srv, d, "BLMPOP", "0", "1", "k", "LEFT", "COUNT", "5")
    assert all(x.blocked is not None for x in (a, b, c, d))
    srv.propagated.clear()
    assert ex(srv, w, "RPUSH", "k", "1", "2", "3", "4", "5") == b":5\r\n"
    assert [argv for _, argv in srv.propagated] == [
        [b"RPUSH", b"k", b"1", b"2", b"3", b"4", b"5"],
        [b"LPOP", b"k"],
        [b"LMOVE", b"k", b"dst", b"RIGHT", b"LEFT"],
        [b"RPOPLPUSH", b"k", b"dst2"],
        [b"LPOP", b"k", b"2"],
    ]
    assert a.take_output() == b"*2\r\n$1\r\nk\r\n$1\r\n1\r\n"
    assert b.take_output() == b"$1\r\n5\r\n"
    assert c.take_output() == b"$1\r\n4\r\n"
    assert d.take_output() == b"*2\r\n$1\r\nk\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n"
    assert not srv.blocking.waiters and not srv.ready_keys


def test_engine_immediate_paths_propagate_non_blocking_forms():
    srv = make_server()
    c = srv.new_client()
    ex(srv, c, "RPUSH", "k", *"abcdefgh")
    srv.propagated.clear()
    ex(srv, c, "BLPOP", "nokey", "k", "0")
    ex(srv, c, "BRPOP", "k", "0")
    ex(srv, c, "BLMOVE", "k", "d", "LEFT", "RIGHT", "0")
    ex(srv, c, "BRPOPLPUSH", "k", "d", "0")
    ex(srv, c, "BLMPOP", "0", "1", "k", "RIGHT", "COUNT", "10")
    ex(srv, c, "LMPOP", "1", "d", "LEFT", "COUNT", "1")
    ex(srv, c, "LTRIM", "d", "0", "-1")  # removes nothing: not propagated
    ex(srv, c, "LREM", "d", "0", "zz")
    assert [argv for _, argv in srv.propagated] == [
        [b"LPOP", b"k"],
        [b"RPOP", b"k"],
        [b"LMOVE", b"k", b"d", b"LEFT", b"RIGHT"],
        [b"RPOPLPUSH", b"k", b"d"],
        [b"RPOP", b"k", b"4"],
        [b"LPOP", b"d", b"1"],
    ]


def test_engine_random_commands_propagate_their_choice():
    srv = make_server()
    c = srv.new_client()
    ex(srv, c, "SADD", "s", *[str(i) for i in range(10)])
    ex(srv, c, "HSET", "h", "f", "1")
    srv.propagated.clear()
    one = ex(srv, c, "SPOP", "s")
    three = ex(srv, c, "SPOP", "s", "3")
    ex(srv, c, "SPOP", "s", "100")
    ex(srv, c, "SRANDMEMBER", "s", "3")
    ex(srv, c, "HINCRBYFLOAT", "h", "f", "0.5")
    prop = [argv for _, argv in srv.propagated]
    m = one.split(b"\r\n")[1]
    assert prop[0] == [b"SREM", b"s", m]
    picked = three.split(b"\r\n")[2::2][:3]
    assert prop[1] == [b"MULTI"] and prop[5] == [b"EXEC"]
    assert prop[2:5] == [[b"SREM", b"s", x] for x in picked]
    assert prop[6] == [b"DEL", b"s"]
    assert prop[7] == [b"HSET", b"h", b"f", b"1.5"]
    assert len(prop) == 8


def test_engine_disconnect_and_timeout_leave_nothing():
    srv = make_server()
    a, b, w = (srv.new_client() for _ in range(3))
    ex(srv, a, "BLPOP", "k", "k2", "0")
    ex(srv, b, "BLMOVE", "k", "d", "LEFT", "LEFT", "1.5")
    assert b.blocked.deadline_ms == srv.now_ms + 1500
    srv.free_client(a)
    srv.blocking.timeout(b)
    assert b.take_output() == b"*-1\r\n"
    assert not srv.blocking.waiters
    ex(srv, w, "RPUSH", "k", "x")
    assert ex(srv, w, "LLEN", "k") == b":1\r\n"


@pytest.mark.parametrize("arg,deadline", [
    ("0", None), ("0.0001", 1), ("1e-4940", 1), ("-0.0001", None), ("1.5", 1500),
    ("0x10", 16000), ("2.0005", 2001), ("9223372036854775", None),
])
def test_parse_timeout(arg, deadline):
    from frtrio.core.blocking import parse_timeout

    srv = make_server()
    c = srv.new_client()
    got = parse_timeout(c, arg.encode())
    assert got == (None if deadline is None else srv.now_ms + deadline)


def test_serving_many_waiters_is_fast():
    srv = make_server()
    clients = [srv.new_client() for _ in range(2000)]
    for c in clients:
        ex(srv, c, "BLPOP", "k", "0")
    w = srv.new_client()
    t0 = time.perf_counter()
    for i in range(2000):
        ex(srv, w, "RPUSH", "k", str(i))
    assert time.perf_counter() - t0 < 5
    assert clients[1999].take_output().endswith(b"$4\r\n1999\r\n")
    assert not srv.blocking.waiters


def test_ready_keys_served_in_order_they_became_ready(servers):
    def scenario(p):
        ctl = p.conn()
        a = p.conn()
        b = p.conn()
        c = p.conn()
        send(a, "BLPOP", "k1", "k2", "0")
        wait_blocked(ctl, 1)
        send(b, "BLMOVE", "k1", "k3", "RIGHT", "LEFT", "0")
        wait_blocked(ctl, 2)
        send(c, "BLPOP", "k3", "0")
        wait_blocked(ctl, 3)
        out = [ctl.cmd("MULTI"), ctl.cmd("RPUSH", "k2", "a"), ctl.cmd("RPUSH", "k1", "b", "c"),
               ctl.cmd("EXEC"), a.read_reply(), b.read_reply(), c.read_reply(),
               ctl.cmd("LRANGE", "k1", "0", "-1"), ctl.cmd("DBSIZE"),
               info_field(ctl, "blocked_clients")]
        for x in (a, b, c, ctl):
            x.close()
        return out

    both(servers, scenario)


def test_client_unblock_error_counts_a_failed_call_of_the_blocked_command():
    """Redis's updateStatsOnUnblock (upstream unit/info 'errorstats: blocking
    commands'): BLPOP released by CLIENT UNBLOCK ... ERROR counts one call,
    one failed call, and one UNBLOCKED error."""
    from support import engine, run

    srv = engine()
    a, b = srv.new_client(), srv.new_client()
    run(srv, a, "BLPOP", "list1", "0")
    assert a.blocked is not None
    assert run(srv, b, "CLIENT", "UNBLOCK", str(a.id), "ERROR") == b":1\r\n"
    assert a.take_output().startswith(b"-UNBLOCKED")
    assert srv.cmdstats["blpop"][0] == 1 and srv.cmdstats["blpop"][3] == 1
    assert srv.errorstats["UNBLOCKED"] == 1


def test_clients_held_by_client_pause_count_as_blocked(frtrio_proc, redis_proc):
    """A command held by CLIENT PAUSE WRITE counts in INFO's blocked_clients
    until the pause ends (Redis blocks it as BLOCKED_POSTPONE; Redis's
    unit/pause waits for it with wait_for_blocked_clients_count)."""
    outs = []
    for p in (frtrio_proc, redis_proc):
        ctl, a = p.conn(), p.conn()
        out = [ctl.cmd("CLIENT", "PAUSE", 100000, "WRITE")]
        a.send(encode_request(("SET", "pausedk", "v")))
        wait_blocked(ctl, 1)
        out.append(ctl.cmd("GET", "pausedk"))
        out.append(ctl.cmd("CLIENT", "UNPAUSE"))
        out.append(a.read_reply())
        wait_blocked(ctl, 0)
        out.append(ctl.cmd("DEL", "pausedk"))
        outs.append(out)
        ctl.close()
        a.close()
    assert outs[0] == outs[1]


def test_client_pause_write_holds_may_replicate_commands(frtrio_proc, redis_proc):
    """CLIENT PAUSE WRITE also holds the commands Redis flags may-replicate
    without showing it in COMMAND (PFCOUNT, PUBLISH, EVAL without flags),
    not a script declared no-writes (Redis's unit/pause 'Test special
    commands are paused by RO', 'Test scripts are blocked by pause RO')."""
    outs = []
    for p in (frtrio_proc, redis_proc):
        ctl = p.conn()
        ctl.cmd("PFADD", "pause-hll", "x")
        out = [ctl.cmd("CLIENT", "PAUSE", 100000, "WRITE")]
        held = []
        for args in (("PFCOUNT", "pause-hll"), ("PUBLISH", "pch", "m"),
                     ("EVAL", "return 1", 0)):
            a = p.conn()
            a.send(encode_request(args))
            held.append(a)
            wait_blocked(ctl, len(held))
        free = p.conn()
        out.append(free.cmd("EVAL", "#!lua flags=no-writes\nreturn 2", 0))
        out.append(free.cmd("GET", "pause-hll")[:1])
        out.append(info_field(ctl, "blocked_clients"))
        out.append(ctl.cmd("CLIENT", "UNPAUSE"))
        out += [a.read_reply() for a in held]
        out.append(ctl.cmd("DEL", "pause-hll"))
        outs.append(out)
        for x in held + [free, ctl]:
            x.close()
    assert outs[0] == outs[1]


def test_keys_do_not_expire_while_clients_are_paused(frtrio_proc, redis_proc):
    """During CLIENT PAUSE WRITE an expired key reads as missing but is not
    deleted (no active nor lazy expiry: expired_keys stays); after UNPAUSE
    a lookup expires it (Redis's unit/pause 'Test both active and passive
    expires are skipped during client pause')."""
    def expired(conn):
        raw = conn.cmd("INFO", "stats")
        return int(raw.split(b"expired_keys:")[1].split(b"\r\n")[0])

    outs = []
    for p in (frtrio_proc, redis_proc):
        c = p.conn()
        base = expired(c)
        out = [c.cmd("MULTI"), c.cmd("SET", "pe1{t}", "v", "PX", 20),
               c.cmd("SET", "pe2{t}", "v", "PX", 20), c.cmd("CLIENT", "PAUSE", 50000, "WRITE"),
               c.cmd("EXEC")]
        time.sleep(0.3)  # past the TTL, and several active expire cycles
        out += [c.cmd("GET", "pe1{t}"), c.cmd("EXISTS", "pe2{t}"), expired(c) - base]
        out.append(c.cmd("CLIENT", "UNPAUSE"))
        out += [c.cmd("GET", "pe1{t}"), c.cmd("GET", "pe2{t}"), expired(c) - base]
        outs.append(out)
        c.close()
    assert outs[0] == outs[1]
    assert outs[0][7] == 0 and outs[0][-1] == 2


def test_engine_an_overwrite_signals_a_waited_key_and_the_hook_follows_the_waiters():
    """An overwrite of a key some client waits on marks the key ready, as
    Redis's setKey signals it (an XREAD waiting on a stream that a SET
    replaces is looked at again). Db.set reports overwrites only while a
    client waits on some key (one call less per SET otherwise): the hook
    is on from the first waiter to the last, a keyless block (WAIT) never
    turns it on."""
    srv = make_server()
    a, b, w = srv.new_client(), srv.new_client(), srv.new_client()
    assert all(db.on_overwrite is None for db in srv.dbs)
    ex(srv, w, "XADD", "s", "1-1", "f", "v")
    ex(srv, w, "SET", "plain", "1")
    ex(srv, a, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert a.blocked is not None
    assert all(db.on_overwrite is not None for db in srv.dbs)
    ex(srv, b, "BLPOP", "l1", "l2", "0")
    srv.ready_keys.clear()
    srv.dbs[0].set(b"plain", b"2")  # nobody waits on it
    assert not srv.ready_keys
    srv.dbs[0].set(b"s", b"now a string")
    assert (0, b"s") in srv.ready_keys
    srv.ready_keys.clear()
    srv.free_client(a)
    assert srv.dbs[0].on_overwrite is not None  # b still waits
    srv.free_client(b)
    assert not srv.blocking.waiters
    assert all(db.on_overwrite is None for db in srv.dbs)
    ex(srv, w, "WAIT", "1", "0")
    assert w.blocked is not None and srv.dbs[0].on_overwrite is None
