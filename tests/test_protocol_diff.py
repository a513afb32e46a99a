"""Request parsing over real sockets: frtrio-server against redis-server 7.0.

Every case sends raw bytes on a fresh connection to both servers and compares
what comes back (exact bytes) and whether the server closed the connection.
Cases run on parallel connections (one thread each), so the cases that
expect the connection to stay open cost one quiet period in total.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import requires_redis
from support import ServerProc, encode_request

pytestmark = requires_redis

QUIET = 0.5  # seconds without data after which an open connection is done
LIMIT = 8.0  # frtrio gets this long to match what redis-server did


def exchange(port: int, chunks, until=None, pause: float = 0.02, quiet: float = QUIET):
    """Send the chunks on a new connection; read until the server closes it,
    or (``until`` None) no data came for QUIET seconds, or (``until`` a
    (bytes, closed) pair to match) the same was seen, or LIMIT seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = b""
    closed = False
    try:
        for i, ch in enumerate(chunks):
            if i:
                time.sleep(pause)
            try:
                s.sendall(ch)
            except (BrokenPipeError, ConnectionResetError):
                break
        deadline = time.monotonic() + LIMIT
        last = time.monotonic()
        s.settimeout(0.05)
        while True:
            now = time.monotonic()
            if until is None:
                if now - last > quiet:
                    break
            else:
                want, want_closed = until
                if len(got) >= len(want) and not want_closed and now - last > quiet / 2:
                    break
                if now > deadline:
                    break
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            got += d
            last = time.monotonic()
    finally:
        s.close()
    return got, closed


def run_parallel(port, cases, until=None, quiet=QUIET):
    res = {}

    def one(name, chunks):
        res[name] = exchange(port, chunks, None if until is None else until[name], quiet=quiet)

    ts = [threading.Thread(target=one, args=(name, chunks)) for name, chunks in cases.items()]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def compare(frtrio_port, redis_port, cases):
    cases = {k: (v if isinstance(v, list) else [v]) for k, v in cases.items()}
    want = run_parallel(redis_port, cases)
    got = run_parallel(frtrio_port, cases, until=want)
    bad = [k for k in cases if got[k] != want[k]]
    if bad:
        # the machine may just be slow: run those again, patiently
        again = {k: cases[k] for k in bad}
        want.update(run_parallel(redis_port, again, quiet=4 * QUIET))
        got.update(run_parallel(frtrio_port, again, until=want, quiet=4 * QUIET))
    bad = {k: (got[k], want[k]) for k in cases if got[k] != want[k]}
    assert not bad, "\n".join(
        f"{k}: frtrio {g[0][:200]!r} closed={g[1]} / redis {w[0][:200]!r} closed={w[1]}"
        for k, (g, w) in bad.items()
    )
    return want


def healthy(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"


PING = encode_request(["PING"])

MULTIBULK_COUNTS = {
    "count-letters": b"*abc\r\n",
    "count-minus": b"*-\r\n",
    "count-leading-zero": b"*01\r\n$4\r\nPING\r\n",
    "count-plus": b"*+1\r\n",
    "count-space": b"* 1\r\n",
    "count-trailing-space": b"*1 \r\n",
    "count-empty": b"*\r\n",
    "count-int-max+1": b"*2147483648\r\n",
    "count-20-digits": b"*99999999999999999999\r\n",
    "count-llong-max+1": b"*9223372036854775808\r\n",
    "count-minus-one": b"*-1\r\n" + PING,
    "count-zero": b"*0\r\n" + PING,
    "count-negative": b"*-5\r\nPING\r\n",
    "count-int-max-waits": b"*2147483647\r\n",
    "count-1m+1-waits": b"*1048577\r\n$4\r\nPING\r\n",
    "count-no-lf-yet": b"*1\r",
    "count-cr-then-junk": b"*1\rx$4\r\nPING\r\n",
}

BAD_DOLLAR = {
    "plus": b"*1\r\n+PING\r\n",
    "colon": b"*1\r\n:1\r\n",
    "letters": b"*1\r\nPING\r\n",
    "cr": b"*1\r\n\r\n",
    "lf": b"*1\r\n\n4\r\n",
    "high-byte": b"*1\r\n\xff4\r\n",
    "bang-second-arg": b"*2\r\n$4\r\nECHO\r\n!\r\n",
    "nested-array": b"*1\r\n*1\r\n$4\r\nPING\r\n",
    "resp3-map": b"%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    "verbatim": b"*1\r\n=8\r\ntxt:PING\r\n",
}

BULK_LENGTHS = {
    "minus-one": b"*1\r\n$-1\r\n",
    "negative": b"*1\r\n$-5\r\n",
    "minus-zero": b"*1\r\n$-0\r\n",
    "leading-zero": b"*1\r\n$04\r\nPING\r\n",
    "plus": b"*1\r\n$+4\r\nPING\r\n",
    "space": b"*1\r\n$ 4\r\nPING\r\n",
    "trailing-space": b"*1\r\n$4 \r\nPING\r\n",
    "empty": b"*1\r\n$\r\n",
    "letters": b"*1\r\n$abc\r\n",
    "max+1": b"*1\r\n$536870913\r\n",
    "max-waits": b"*1\r\n$536870912\r\n",
    "20-digits": b"*1\r\n$99999999999999999999\r\n",
    "llong-max+1": b"*1\r\n$9223372036854775808\r\n",
    "unchecked-trailer": b"*1\r\n$4\rxPINGab*1\r\n$4\r\nPINGxy" + PING,
    "zero-length": b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    "binary-payload": b"*2\r\n$4\r\nECHO\r\n$6\r\n\r\n\0\xff$*\r\n",
}

TOO_BIG = {
    "inline-70000-no-newline": b"x" * 70000,
    "inline-100000-no-newline": b"ECHO " + b"y" * 100000,
    "inline-60000-ok": b"ECHO " + b"z" * 60000 + b"\r\n",
    "inline-90000": b"ECHO " + b"w" * 90000 + b"\r\n",
    "mbulk-count-string": b"*" + b"1" * 70000,
    "bulk-count-string": b"*1\r\n$" + b"1" * 70000,
    "after-commands": PING * 100 + b"ECHO " + b"v" * 100000,
}

INLINE = {
    "unbalanced-double": b'SET "a b\r\n',
    "unbalanced-single": b"SET 'a\r\n",
    "quote-then-char": b'SET "a"b c\r\n',
    "squote-then-char": b"SET 'a'b c\r\n",
    "hex-escape": b'ECHO "a\\x41\\x4a"\r\n',
    "short-hex": b'ECHO "\\x4"\r\n',
    "escapes": b'ECHO "\\n\\r\\t\\b\\a\\z\\\\\\""\r\n',
    "single-escape": b"ECHO 'it\\'s'\r\n",
    "single-no-escapes": b"ECHO 'a\\nb'\r\n",
    "vertical-tab-in-word": b"ECHO a\x0bb\r\n",
    "leading-blanks": b"\x0b\x0c ECHO  \t x\r\n",
    "empty-quotes": b'ECHO ""\r\n',
    "empty-single": b"ECHO '' \r\n",
    "lf-only": b"ECHO a\n",
    "blank-lines": b"\r\n\n  \r\nPING\r\n",
    "cr-inside": b"ECHO a\rb\r\n",
    "backslash-at-end": b'ECHO "a\\\r\n',
}

ORDERING = {
    "before-error": b"PING\r\n" + PING + b"*x\r\n" + PING,
    "writes-before-error": b"SET k 1\r\nINCR k\r\nGET k\r\n*1\r\n+X\r\n",
    "quit-then-garbage": b"QUIT\r\n*x\r\n",
    "error-then-more": b"*1\r\n$-1\r\n" + PING * 3,
}

NUL = {
    "inline-nul-waits": b"PI\0NG\r\n",
    "header-nul-waits": b"*1\r\n$\x004\r\nPING\r\n",
    "count-nul-waits": b"*\x001\r\n",
    "nul-then-too-big": b"PI\0NG\r\n" + b"q" * 70000,
    "payload-nul": b"*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n",
}


@pytest.mark.parametrize(
    "cases",
    [MULTIBULK_COUNTS, BAD_DOLLAR, BULK_LENGTHS, TOO_BIG, INLINE, ORDERING, NUL],
    ids=["counts", "dollar", "bulk-lengths", "too-big", "inline", "ordering", "nul"],
)
def test_protocol_cases(frtrio_proc, redis_proc, cases):
    compare(frtrio_proc.port, redis_proc.port, cases)
    healthy(frtrio_proc.port)


def test_split_requests(frtrio_proc, redis_proc):
    """The same request cut into pieces that arrive one by one."""
    req = encode_request(["SET", "split:k", "v" * 100]) + encode_request(["GET", "split:k"])
    cases = {
        "bytewise": [req[i : i + 1] for i in range(0, 16)] + [req[16:]],
        "mid-header": [req[:2], req[2:7], req[7:]],
        "inline-pieces": [b"EC", b"HO a", b" b\r", b"\n"],
        "error-in-second-chunk": [PING, b"*1\r\n", b"$x\r\n"],
        "slow-long-line": [b"ECHO " + b"s" * 69000, b"\r\n"],
    }
    compare(frtrio_proc.port, redis_proc.port, cases)


def test_unknown_command_with_nul(frtrio_proc, redis_proc):
    # Redis formats the name with %s: it ends at the NUL
    compare(frtrio_proc.port, redis_proc.port,
            {"nul-name": b"*2\r\n$4\r\nPI\0G\r\n$3\r\na\0b\r\n"})


def wait_auth_ready(proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"{proc.kind} exited"
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=1) as s:
                s.sendall(b"AUTH pw\r\nPING\r\n")
                got = b""
                while got.count(b"\r\n") < 2:
                    d = s.recv(100)
                    if not d:
                        break
                    got += d
                if got == b"+OK\r\n+PONG\r\n":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.kind} did not start")


@pytest.fixture(scope="module")
def auth_pair():
    args = ["--requirepass", "pw", "--proto-max-bulk-len", "1mb"]
    f = ServerProc("frtrio", args=args)
    r = ServerProc("redis", args=args)
    try:
        for proc in (f, r):
            proc.start(wait=False)
        for proc in (f, r):
            wait_auth_ready(proc)
        yield f, r
    finally:
        f.cleanup()
        r.cleanup()


def test_unauthenticated_limits(auth_pair):
    f, r = auth_pair
    auth = b"AUTH pw\r\n"
    mset11 = encode_request(["MSET"] + ["k%d" % (i // 2) for i in range(10)])
    big = encode_request(["ECHO", "e" * 20000])
    cases = {
        "count-11": b"*11\r\n",
        "count-10-waits": b"*10\r\n",
        "bulk-16385": b"*10\r\n$16385\r\n",
        "bulk-16384-waits": b"*1\r\n$16384\r\n",
        "auth-then-count-11": auth + mset11,
        "auth-then-big-bulk": auth + big,
        "bad-auth-then-count-11": b"AUTH nope\r\n" + mset11,
        "noauth-command": PING + b"*1\r\n$4\r\nPING\r\n",
        "auth-then-max-bulk+1": auth + b"*2\r\n$4\r\nECHO\r\n$1048577\r\n",
        "auth-then-max-bulk-waits": auth + b"*2\r\n$4\r\nECHO\r\n$1048576\r\n",
        "auth-later-chunk": [auth, mset11],
    }
    compare(f.port, r.port, cases)


def test_disconnect_mid_request_leaves_server_healthy(frtrio_proc, redis_proc):
    for port in (frtrio_proc.port, redis_proc.port):
        for data in (
            b"*3\r\n$3\r\nSET\r\n$8\r\nhalfdone\r\n$10\r\nab",
            b"*3\r\n$3\r\nSET\r\n$8\r\nhalfdone\r\n$1",
            b"SET halfdone inline",
            b"*3\r\n$3\r\nSET\r\n$8\r\nhalfdone",
            PING * 5000,  # replies never read
        ):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(data)
            s.close()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(encode_request(["GET", "halfdone"]) + PING)
            got = b""
            while got.count(b"\r\n") < 2:
                got += s.recv(100)
            assert got == b"$-1\r\n+PONG\r\n"


@pytest.mark.timing
def test_client_that_never_reads_does_not_hurt_others(frtrio_proc, redis_proc):
    """A pipeline of big replies that the client never reads fills the socket
    buffers; other clients keep being served."""
    val = "x" * 100_000
    run = time.time_ns()
    for port in (frtrio_proc.port, redis_proc.port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(encode_request(["SET", "bigval", val]))
            assert s.recv(10) == b"+OK\r\n"
        hog = socket.create_connection(("127.0.0.1", port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.sendall(encode_request(["GET", "bigval"]) * 300)  # 30 MB of replies
        try:
            for i in range(20):
                t = time.monotonic()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(encode_request(["INCR", "other:%d:%d" % (port, run)]))
                    assert s.recv(100) == b":%d\r\n" % (i + 1)
                assert time.monotonic() - t < 2.0
        finally:
            hog.close()
        healthy(port)
