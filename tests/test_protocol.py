"""The RESP request parser, without sockets.

The oracle is ``RedisModel``: a literal transcription of what redis-server
7.0's networking.c does with a client's query buffer (processInputBuffer,
processInlineBuffer, processMultibulkBuffer, string2ll, sdssplitargs on a
NUL-terminated buffer), fed one modelled read at a time. It is deliberately
simple and slow: it re-scans from the C pointers each time, like the C code.

Properties checked, for the pure parser and for the hiredis fast path:

* any stream of valid requests cut at any points parses to the same commands
  as the whole stream;
* on any bytes at all (valid, mutated or garbage, cut anywhere) the parser
  gives exactly the model's commands, error and leftover byte count; it never
  raises and never loops.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frtrio.protocol.parser import (
    ProtocolError,
    RequestParser,
    encode_requests,
    split_args,
    string2ll,
)

DEFAULT_MAX_BULK = 512 * 1024 * 1024
INT_MAX = 2**31 - 1
IOBUF = 16 * 1024
INLINE_MAX = 64 * 1024

# --- the model -------------------------------------------------------------


def c_isspace(c: int) -> bool:
    return c in (32, 9, 10, 11, 12, 13)


def c_string2ll(s: bytes):
    """util.c string2ll, step by step. Returns (ok, value)."""
    slen = len(s)
    if slen == 0 or slen >= 21:
        return False, 0
    if slen == 1 and s[0] == ord("0"):
        return True, 0
    p = 0
    negative = False
    if s[p] == ord("-"):
        negative = True
        p += 1
        if p == slen:
            return False, 0
    if ord("1") <= s[p] <= ord("9"):
        v = s[p] - ord("0")
        p += 1
    else:
        return False, 0
    while p < slen and ord("0") <= s[p] <= ord("9"):
        v = v * 10 + (s[p] - ord("0"))
        if v > 2**64 - 1:
            return False, 0
        p += 1
    if p < slen:
        return False, 0
    if negative:
        if v > 2**63:
            return False, 0
        return True, -v
    if v > 2**63 - 1:
        return False, 0
    return True, v


def c_sdssplitargs(line: bytes):
    """sds.c sdssplitargs over a C string (the line ends at a NUL)."""

    def at(i):
        return line[i] if i < len(line) and line[i] != 0 else 0

    if b"\0" in line:
        line = line[: line.index(b"\0")]
    p = 0
    vector = []
    while True:
        while at(p) and c_isspace(at(p)):
            p += 1
        if not at(p):
            return vector
        inq = insq = done = False
        current = bytearray()
        while not done:
            c = at(p)
            if inq:
                hexd = b"0123456789abcdefABCDEF"
                if c == ord("\\") and at(p + 1) == ord("x") and at(p + 2) and at(p + 2) in hexd \
                        and at(p + 3) and at(p + 3) in hexd:
                    current.append(int(bytes([at(p + 2), at(p + 3)]), 16))
                    p += 3
                elif c == ord("\\") and at(p + 1):
                    p += 1
                    e = at(p)
                    current.append({ord("n"): 10, ord("r"): 13, ord("t"): 9,
                                    ord("b"): 8, ord("a"): 7}.get(e, e))
                elif c == ord('"'):
                    if at(p + 1) and not c_isspace(at(p + 1)):
                        return None
                    done = True
                elif not c:
                    return None
                else:
                    current.append(c)
            elif insq:
                if c == ord("\\") and at(p + 1) == ord("'"):
                    p += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    if at(p + 1) and not c_isspace(at(p + 1)):
                        return None
                    done = True
                elif not c:
                    return None
                else:
                    current.append(c)
            else:
                if c in (ord(" "), ord("\n"), ord("\r"), ord("\t"), 0):
                    done = True
                elif c == ord('"'):
                    inq = True
                elif c == ord("'"):
                    insq = True
                else:
                    current.append(c)
            if at(p):
                p += 1
        vector.append(bytes(current))


class RedisModel:
    """networking.c's request parsing, one read(2) at a time."""

    def __init__(self, max_bulk_len=DEFAULT_MAX_BULK, auth_required=False):
        self.qb = b""
        self.qb_pos = 0
        self.stream_off = 0  # stream offset of qb[0]
        self.reqtype = 0  # 0 none, 1 inline, 2 multibulk
        self.multibulklen = 0
        self.bulklen = -1
        self.argv: list[bytes] = []
        self.max_bulk_len = max_bulk_len
        self.auth_required = auth_required
        self.cmds: list[list[bytes]] = []
        self.error: str | None = None

    def feed(self, data: bytes) -> None:
        """A chunk arrives: reads end at every 16 KiB of the stream and at
        the chunk's end (the same model the parser uses)."""
        i = 0
        while i < len(data) and self.error is None:
            at = self.stream_off + len(self.qb)  # offset of data[i]
            room = IOBUF - at % IOBUF
            piece = data[i : i + room]
            i += len(piece)
            self.read(piece)

    def read(self, piece: bytes) -> None:
        self.qb += piece
        self.process_input_buffer()
        # the consumed part is dropped after processing
        self.stream_off += self.qb_pos
        self.qb = self.qb[self.qb_pos :]
        self.qb_pos = 0

    def strchr(self, ch: int) -> int:
        qb = self.qb
        i = qb.find(bytes([ch]), self.qb_pos)
        stop = i if i >= 0 else len(qb)
        if qb.find(b"\0", self.qb_pos, stop) >= 0:
            return -1  # C strings end at the NUL
        return i

    def set_error(self, msg: str) -> None:
        self.error = msg

    def process_input_buffer(self) -> None:
        while self.qb_pos < len(self.qb) and self.error is None:
            if not self.reqtype:
                self.reqtype = 2 if self.qb[self.qb_pos] == ord("*") else 1
            ok = self.inline() if self.reqtype == 1 else self.multibulk()
            if not ok:
                break
            if self.argv:
                self.cmds.append(self.argv)
            self.argv = []
            self.reqtype = 0
            self.multibulklen = 0
            self.bulklen = -1

    def inline(self) -> bool:
        nl = self.strchr(ord("\n"))
        if nl < 0:
            if len(self.qb) - self.qb_pos > INLINE_MAX:
                self.set_error("too big inline request")
            return False
        end = nl
        if end != self.qb_pos and self.qb[end - 1] == ord("\r"):
            end -= 1
        argv = c_sdssplitargs(self.qb[self.qb_pos : end])
        if argv is None:
            self.set_error("unbalanced quotes in request")
            return False
        self.qb_pos = nl + 1
        self.argv = argv
        return True

    def multibulk(self) -> bool:
        qb = self.qb
        if self.multibulklen == 0:
            nl = self.strchr(ord("\r"))
            if nl < 0:
                if len(qb) - self.qb_pos > INLINE_MAX:
                    self.set_error("too big mbulk count string")
                return False
            if nl - self.qb_pos > len(qb) - self.qb_pos - 2:
                return False
            ok, ll = c_string2ll(qb[self.qb_pos + 1 : nl])
            if not ok or ll > INT_MAX:
                self.set_error("invalid multibulk length")
                return False
            if ll > 10 and self.auth_required:
                self.set_error("unauthenticated multibulk length")
                return False
            self.qb_pos = nl + 2
            if ll <= 0:
                return True
            self.multibulklen = ll
            self.argv = []
        while self.multibulklen:
            if self.bulklen == -1:
                nl = self.strchr(ord("\r"))
                if nl < 0:
                    if len(qb) - self.qb_pos > INLINE_MAX:
                        self.set_error("too big bulk count string")
                        return False
                    break
                if nl - self.qb_pos > len(qb) - self.qb_pos - 2:
                    break
                if qb[self.qb_pos] != ord("$"):
                    self.set_error("expected '$', got '%s'" % chr(qb[self.qb_pos]))
                    return False
                ok, ll = c_string2ll(qb[self.qb_pos + 1 : nl])
                if not ok or ll < 0 or ll > self.max_bulk_len:
                    self.set_error("invalid bulk length")
                    return False
                if ll > 16384 and self.auth_required:
                    self.set_error("unauthenticated bulk length")
                    return False
                self.qb_pos = nl + 2
                self.bulklen = ll
            if len(qb) - self.qb_pos < self.bulklen + 2:
                break
            self.argv.append(qb[self.qb_pos : self.qb_pos + self.bulklen])
            self.qb_pos += self.bulklen + 2
            self.bulklen = -1
            self.multibulklen -= 1
        return self.multibulklen == 0

    def pending(self) -> int:
        return len(self.qb) - self.qb_pos


# --- drivers -----------------------------------------------------------------


def run_parser(chunks, fast=True, max_bulk_len=DEFAULT_MAX_BULK, auth_required=False):
    """Feed the chunks, parsing after each as the connection does."""
    p = RequestParser(max_bulk_len, fast=fast)
    p.auth_required = auth_required
    cmds: list = []
    for ch in chunks:
        p.feed(ch)
        while True:
            err = p.parse(cmds)
            if err is not None:
                assert isinstance(err, ProtocolError)
                return cmds, err.detail, None
            if not p.paused:
                break
    return cmds, None, p.pending()


def run_model(chunks, max_bulk_len=DEFAULT_MAX_BULK, auth_required=False):
    m = RedisModel(max_bulk_len, auth_required)
    for ch in chunks:
        m.feed(ch)
        if m.error is not None:
            return m.cmds, m.error, None
    return m.cmds, None, m.pending()


def cut(data: bytes, points) -> list[bytes]:
    pts = sorted({p % (len(data) + 1) for p in points})
    out = []
    last = 0
    for p in pts:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [c for c in out if c]


def check_all(chunks, max_bulk_len=DEFAULT_MAX_BULK, auth_required=False):
    want = run_model(chunks, max_bulk_len, auth_required)
    for fast in (False, True):
        got = run_parser(chunks, fast, max_bulk_len, auth_required)
        assert got == want, f"fast={fast} chunks={chunks!r}"
    return want


# --- strategies --------------------------------------------------------------

small_bytes = st.binary(max_size=12)
payload = st.one_of(
    small_bytes,
    st.sampled_from([b"", b"\r\n", b"a\r\nb", b"\0", b"+OK", b"$3", b"*1", b"x" * 40,
                     b"key:__rand_int__", b"a+b=c(d)|e~f>g%h"]),
)
word = st.text(alphabet="abcdefgXYZ019:-_.", min_size=1, max_size=6).map(str.encode)


@st.composite
def multibulk(draw):
    args = draw(st.lists(payload, min_size=1, max_size=5))
    return encode_requests([args])


@st.composite
def inline(draw):
    words = draw(st.lists(word, min_size=1, max_size=4))
    sep = draw(st.sampled_from([b" ", b"  ", b"\t", b" \t "]))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    return sep.join(words) + end


@st.composite
def quoted_inline(draw):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            parts.append(draw(word))
        elif kind == 1:
            body = draw(st.lists(st.sampled_from(
                [b"a", b" ", b"\\n", b"\\r", b"\\t", b"\\b", b"\\a", b"\\x41", b"\\xZZ",
                 b"\\\"", b"\\\\", b"'", b"\\q"]), max_size=5))
            parts.append(b'"' + b"".join(body) + b'"')
        else:
            body = draw(st.lists(st.sampled_from([b"a", b" ", b"\\'", b"\\n", b'"']), max_size=5))
            parts.append(b"'" + b"".join(body) + b"'")
    return b" ".join(parts) + b"\r\n"


valid_request = st.one_of(multibulk(), inline(), quoted_inline(),
                          st.sampled_from([b"\r\n", b"\n", b"*0\r\n", b"*-1\r\n", b"*-7\r\n"]))

weird_piece = st.sampled_from([
    b"*1\r\n+PING\r\n", b"*1\r\n=8\r\ntxt:PING\r\n", b"*1\r\n(123\r\n", b"*1\r\n:1\r\n",
    b"*1\r\n_\r\n", b"*1\r\n,1.5\r\n", b"*1\r\n#t\r\n", b"%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"~1\r\n$4\r\nPING\r\n", b">1\r\n$4\r\nPING\r\n", b"|1\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"*1\r\n|1\r\n$1\r\na\r\n$1\r\nb\r\n$4\r\nPING\r\n",
    b"*1\r\n$04\r\nPING\r\n", b"*1\r\n$+4\r\nPING\r\n", b"*1\r\n$ 4\r\nPING\r\n",
    b"*1\r\n$4 \r\nPING\r\n", b"*01\r\n$4\r\nPING\r\n", b"*+1\r\n", b"*\r\n", b"*-\r\n",
    b"*1\r\n$-1\r\n", b"*1\r\n$-0\r\n", b"*1\r\n$\r\n", b"*1\r\n$4\rxPINGab",
    b"*1\r\n$4\r\nPINGxy", b"*1\r\n$99999999999\r\n", b"*2147483648\r\n",
    b"*2147483647\r\n", b"*99999999999999999999\r\n", b"*1\r\n$9223372036854775808\r\n",
    b"*1\r\n\r\n", b"*1\r\n\n4\r\n", b"*1\r\n\xff4\r\n", b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
    b"*1\r\n$\x004\r\nPING\r\n", b"*\x001\r\n", b"PI\0NG\r\n", b"\0\r\n",
    b"*1\r\n$4\r\nPI\0G\r\n", b"SET \"a b\r\n", b"SET 'a\r\n", b"SET \"a\"b\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$20\r\n", b"*1\r", b"*", b"$4\r\nPING\r\n",
    b"*1\r\n$17\r\n0123456789abcdefg\r\n", b"*12\r\n", b"*1\r\n$16385\r\n",
    b"%1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n", b"%1\r\n", b"*1\r\n%1\r\n", b"~1\r\n", b">1\r\n",
    b"*1000000\r\n", b"*1\r\n*2000000\r\n",
])


@st.composite
def stream(draw):
    pieces = draw(st.lists(st.one_of(valid_request, weird_piece, st.binary(max_size=8)),
                           min_size=1, max_size=8))
    data = b"".join(pieces)
    if draw(st.booleans()) and data:
        # flip one byte somewhere
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.sampled_from(b"*$\r\n\0+-:0123 ax"))]) + data[i + 1:]
    return data


cut_points = st.lists(st.integers(0, 10_000), max_size=6)

FUZZ = settings(max_examples=int(os.environ.get("FRTRIO_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- properties ----------------------------------------------------------------


@FUZZ
@given(st.lists(valid_request, min_size=1, max_size=12), cut_points, st.booleans())
def test_split_anywhere_same_commands(reqs, points, fast):
    data = b"".join(reqs)
    whole = run_parser([data], fast)
    assert whole[1] is None and whole[2] == 0
    assert run_parser(cut(data, points), fast) == whole
    if len(data) <= 300:
        assert run_parser([bytes([b]) for b in data], fast) == whole
    assert whole == run_model([data])


@FUZZ
@given(stream(), cut_points)
def test_matches_model_on_anything(data, points):
    check_all(cut(data, points))


@FUZZ
@given(st.binary(max_size=200), cut_points)
def test_garbage_matches_model(data, points):
    check_all(cut(data, points))


@FUZZ
@given(stream(), cut_points, st.integers(0, 40))
def test_small_proto_max_bulk_len(data, points, limit):
    check_all(cut(data, points), max_bulk_len=limit)


@FUZZ
@given(stream(), cut_points)
def test_unauthenticated_limits(data, points):
    check_all(cut(data, points), auth_required=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).filter(lambda b: b"\n" not in b))
def test_split_args_matches_sdssplitargs(line):
    assert split_args(line) == c_sdssplitargs(line)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b", b" ", b"\t", b"\v", b"\f", b"\r", b"\n", b"\0",
                                 b'"', b"'", b"\\", b"x", b"4", b"f", b"n"]), max_size=14))
def test_split_args_quotes_and_escapes(parts):
    line = b"".join(parts)
    assert split_args(line) == c_sdssplitargs(line)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=22),
                 st.integers(-2**64, 2**64).map(lambda i: b"%d" % i),
                 st.sampled_from([b"-0", b"00", b"+1", b" 1", b"1 ", b"-", b"0", b"-9223372036854775808",
                                  b"9223372036854775807", b"9223372036854775808",
                                  b"-9223372036854775809", b"18446744073709551616"])))
def test_string2ll_matches_c(s):
    ok, v = c_string2ll(s)
    assert string2ll(s) == (v if ok else None)


# --- examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    "line,args",
    [
        (b"set a b", [b"set", b"a", b"b"]),
        (b'  set  "a b"  c ', [b"set", b"a b", b"c"]),
        (b'echo "\\x41\\x4a\\n\\r\\t\\b\\a\\z\\\\"', [b"echo", b"AJ\n\r\t\b\a" + b"z\\"]),
        (b"echo 'it\\'s' ok", [b"echo", b"it's", b"ok"]),
        (b"echo 'a\\nb'", [b"echo", b"a\\nb"]),
        (b'echo ""', [b"echo", b""]),
        (b"a\vb", [b"a\vb"]),  # \v only separates before a word
        (b"\va \fb", [b"a", b"b"]),
        (b'echo "a"b', None),
        (b"echo 'a'b", None),
        (b'echo "abc', None),
        (b"echo 'abc", None),
        (b'echo "a\\', None),
        (b"a\0b c", [b"a"]),
        (b"", []),
    ],
)
def test_split_args_examples(line, args):
    assert split_args(line) == args
    assert c_sdssplitargs(line) == args


def parse_all(data, **kw):
    return run_parser([data], **kw)


def test_errors_exact_text():
    cases = {
        b"*x\r\n": "invalid multibulk length",
        b"*2147483648\r\n": "invalid multibulk length",
        b"*1\r\n+PING\r\n": "expected '$', got '+'",
        b"*1\r\n$-1\r\n": "invalid bulk length",
        b"*1\r\n$04\r\n": "invalid bulk length",
        b"*1\r\n$536870913\r\n": "invalid bulk length",
        b"set 'a\r\n": "unbalanced quotes in request",
        b"x" * 70000: "too big inline request",
        b"*" + b"1" * 70000: "too big mbulk count string",
        b"*1\r\n$" + b"1" * 70000: "too big bulk count string",
    }
    for data, detail in cases.items():
        for fast in (False, True):
            cmds, err, _ = parse_all(data, fast=fast)
            assert (cmds, err) == ([], detail), data[:30]
    assert ProtocolError("x").reply_text == "Protocol error: x"


def test_commands_before_error_are_kept():
    data = b"PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n!\r\n*1\r\n$4\r\nPING\r\n"
    for fast in (False, True):
        cmds, err, _ = parse_all(data, fast=fast)
        assert cmds == [[b"PING"], [b"PING"], [b"GET", b"a"]]
        assert err == "expected '$', got '!'"


def test_multibulk_count_up_to_int_max_waits():
    for fast in (False, True):
        assert parse_all(b"*2147483647\r\n", fast=fast) == ([], None, 0)
        assert parse_all(b"*1048577\r\n$1\r\na\r\n", fast=fast) == ([], None, 0)


def test_nul_hides_line_end():
    for fast in (False, True):
        # waits for ever, then the 64 KiB limit closes it
        assert parse_all(b"PI\0NG\r\n", fast=fast) == ([], None, 7)
        assert parse_all(b"*1\r\n$\x004\r\nPING\r\n", fast=fast) == ([], None, 11)
        assert parse_all(b"PI\0NG\r\n" + b"x" * 70000, fast=fast)[1] == "too big inline request"
        # a NUL in a payload is just a byte
        assert parse_all(b"*1\r\n$3\r\na\0b\r\n", fast=fast) == ([[b"a\0b"]], None, 0)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize(
    "size,chunking,ok",
    [
        (70000, None, True),
        (79000, None, True),
        (82000, None, False),
        (90000, None, False),
        (79000, [20000], True),  # read boundaries are stream offsets
        (79000, [65536], True),
        (70000, [69000], False),  # a slow client: Redis saw 69000 bytes, no newline
        (65530, [65535], True),
    ],
)
def test_long_inline_line(size, chunking, ok, fast):
    data = b"ECHO " + b"a" * (size - 5) + b"\r\n"
    chunks = cut(data, chunking) if chunking else [data]
    want = run_model(chunks)
    got = run_parser(chunks, fast=fast)
    assert got == want
    if ok:
        assert got[0] == [[b"ECHO", b"a" * (size - 5)]]
    else:
        assert got[1] == "too big inline request"


def test_long_lines_after_other_requests():
    rnd = random.Random(7)
    for _ in range(30):
        pre = encode_requests([[b"PING"]]) * rnd.randrange(0, 3000)
        size = rnd.choice([60000, 66000, 70000, 78000, 81000, 83000, 100000])
        kind = rnd.randrange(3)
        if kind == 0:
            line = b"ECHO " + b"b" * size + b"\r\n"
        elif kind == 1:
            line = b"*" + b"1" * size + b"\r\n"
        else:
            line = b"*1\r\n$" + b"1" * size + b"\r\n"
        data = pre + line + encode_requests([[b"PING"]])
        chunks = cut(data, [rnd.randrange(len(data)) for _ in range(rnd.randrange(4))])
        check_all(chunks)


def test_big_payload_in_many_chunks():
    val = bytes(range(256)) * 4000
    data = encode_requests([[b"SET", b"k", val], [b"GET", b"k"]])
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    for fast in (False, True):
        assert run_parser(chunks, fast=fast) == ([[b"SET", b"k", val], [b"GET", b"k"]], None, 0)


def test_big_pipeline_in_chunks_fast_equals_pure():
    rnd = random.Random(3)
    reqs = []
    for i in range(3000):
        k = rnd.randrange(4)
        if k == 0:
            reqs.append([b"SET", b"key:%d" % i, bytes(rnd.randrange(256) for _ in range(rnd.randrange(30)))])
        elif k == 1:
            reqs.append([b"GET", b"key:%d" % i])
        elif k == 2:
            reqs.append([b"MSET"] + [b"k+%d" % j for j in range(rnd.randrange(2, 9))])
        else:
            reqs.append([b"ECHO", b"\r\n$3\r\n+=%|~>("])
    data = encode_requests(reqs)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    for fast in (False, True):
        assert run_parser(chunks, fast=fast) == (reqs, None, 0)


def test_unauthenticated_pauses_after_each_command():
    p = RequestParser()
    p.auth_required = True
    p.feed(b"AUTH pw\r\n*11\r\n" + b"$1\r\na\r\n" * 11)
    out: list = []
    assert p.parse(out) is None and out == [[b"AUTH", b"pw"]] and p.paused
    p.auth_required = False  # the AUTH succeeded
    assert p.parse(out) is None and len(out) == 2 and not p.paused
    q = RequestParser()
    q.auth_required = True
    q.feed(b"AUTH pw\r\n*11\r\n")
    out = []
    assert q.parse(out) is None and q.paused
    assert q.parse(out) == ProtocolError("unauthenticated multibulk length")


def test_fast_path_is_used():
    """The hiredis path really takes canonical pipelines (speed matters)."""
    p = RequestParser()
    if not p.fast:
        pytest.skip("hiredis not installed")
    calls = []
    orig = RequestParser._fast

    def spy(self, *a):
        r = orig(self, *a)
        calls.append(r)
        return r

    RequestParser._fast = spy
    try:
        data = encode_requests([[b"SET", b"k", b"v"]] * 16)
        p.feed(data)
        out: list = []
        p.parse(out)
    finally:
        RequestParser._fast = orig
    assert calls == [len(data)] and len(out) == 16


def test_feed_compacts_buffer():
    p = RequestParser()
    one = encode_requests([[b"SET", b"k", b"v" * 100]])
    out: list = []
    for _ in range(2000):
        p.feed(one[:50])
        p.parse(out)
        p.feed(one[50:])
        p.parse(out)
    assert len(out) == 2000 and p.pending() == 0
    assert len(p.buf) < 200_000
