"""Incremental RESP request parser (pure: no I/O).

It follows what redis-server 7.0 accepts from a client, byte for byte:

* a request starting with ``*`` is a multibulk request; anything else is an
  inline request (a line of space separated, optionally quoted words, split
  as ``sdssplitargs`` does);
* lengths are parsed the way Redis's ``string2ll`` does (no ``+``, no leading
  zeros, no spaces; no sign on bulk lengths);
* the two bytes after a length line's ``\\r`` and after a bulk payload are
  skipped without being checked, as Redis does;
* Redis looks for line ends with ``strchr`` on a NUL-terminated buffer, so a
  NUL byte before the ``\\r`` of a length line (or the ``\\n`` of an inline
  line) hides the line end: the request then waits for ever (until the 64 KiB
  line limit closes it);
* limits: multibulk count up to INT_MAX, bulk length up to
  ``proto-max-bulk-len``, a line without its terminator up to 64 KiB, and for
  a client that still has to authenticate a count up to 10 and bulk lengths
  up to 16384.

The 64 KiB line limit is checked, like Redis does, each time a read is
processed, so whether a long line is refused depends on where the reads ended.
Redis reads 16 KiB from a fresh connection, then as much as its buffer holds;
the model here puts a read boundary ("mark") at every 16 KiB of the stream and
at the end of every ``feed()``: a line whose terminator comes after a mark
more than 64 KiB past the line's start is refused, one whose terminator comes
sooner is accepted. For a request written in one go on a new connection that
is where Redis draws the line (a 79000 byte inline line passes, 82000 fails).

After a protocol error the parser keeps the commands it completed before the
error; the connection answers them, then answers the error and closes (Redis's
``CLIENT_CLOSE_AFTER_REPLY``).

Fast path: when hiredis is installed, runs of multibulk requests are parsed by
``hiredis.Reader`` and accepted only when they are provably what Redis would
parse: every request a list of bulk strings, no RESP type byte other than
``*``/``$`` possible in them (or, failing that cheap test, the bytes equal the
canonical encoding of the parsed requests), and within the limits. Anything
else (inline requests, a request cut at the end of the buffer, errors,
non-canonical input) goes through the pure parser, which gives the exact
error. Both give the same commands for every input (tests/test_protocol.py).
"""

from __future__ import annotations

from itertools import chain, repeat

from frtrio.core.cnum import cstr

try:  # pragma: no cover - hiredis is a dependency, but keep working without it
    import hiredis as _hiredis
except ImportError:  # pragma: no cover
    _hiredis = None

PROTO_INLINE_MAX_SIZE = 64 * 1024
PROTO_IOBUF_LEN = 16 * 1024
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1
PROTO_MBULK_MAX = INT_MAX  # Redis 7.0 refuses a multibulk count above INT_MAX
AUTH_MBULK_MAX = 10  # limits while the client has not authenticated yet
AUTH_BULK_MAX = 16384

_ISSPACE = frozenset(b" \t\n\v\f\r")  # C isspace() in the C locale
_UNQUOTED_END = frozenset(b" \n\r\t\0")  # sdssplitargs: end of an unquoted word
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = frozenset(b"0123456789abcdefABCDEF")

_BULK_HDR = b"$%d\r\n".__mod__
_MBULK_HDR = b"*%d\r\n".__mod__
_CRLF = b"\r\n"
_LIST_ONLY = frozenset([list])
# Classes of bytes for the fast path's pre-scan: hiredis reads '+' '=' '('
# as strings where Redis wants '$' ("!"), and '%' '~' '>' '|' as aggregates
# where Redis wants '*' ("#"); digits become "0" to spot big counts.
_CLASSIFY = bytes(
    ord("0") if chr(i).isdigit() and i < 128
    else ord("!") if chr(i) in "+=("
    else ord("#") if chr(i) in "%~>|"
    else ord("*") if chr(i) == "*"
    else ord(".")
    for i in range(256)
)


class ProtocolError(Exception):
    """A request Redis refuses with ``-ERR Protocol error: ...`` and a close."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    @property
    def reply_text(self) -> str:
        return "Protocol error: " + self.detail

    def __eq__(self, other) -> bool:
        return isinstance(other, ProtocolError) and other.detail == self.detail

    def __hash__(self) -> int:
        return hash(self.detail)

    def __repr__(self) -> str:
        return "ProtocolError(%r)" % self.detail


def string2ll(s: bytes) -> int | None:
    """Redis's strict integer parse. Returns None where Redis fails."""
    n = len(s)
    if n == 0 or n > 20:
        return None
    if s.isdigit():
        if s[0] == 48 and n > 1:
            return None
        v = int(s)
        return v if v <= LLONG_MAX else None
    if s[0] == 45 and n > 1:  # '-'
        d = s[1:]
        if d.isdigit() and d[0] != 48:
            v = int(d)
            return -v if v <= LLONG_MAX + 1 else None
    return None


def split_args(line: bytes) -> list[bytes] | None:
    """Split a line as Redis's ``sdssplitargs`` does (inline requests, config
    files, nodes.conf).

    Returns None for unbalanced quotes, and for a closing quote followed by
    something other than a space, which Redis refuses too. Like the C code,
    the line ends at its first NUL byte. Blanks before a word are the C
    ``isspace`` set; an unquoted word ends only at space, tab, CR, LF (so a
    ``\\v`` or ``\\f`` inside a word belongs to it).
    """
    line = cstr(line)
    if (
        b'"' not in line
        and b"'" not in line
        and b"\v" not in line
        and b"\f" not in line
    ):
        return line.split()  # bytes.split() splits on exactly " \t\n\r\v\f"
    args: list[bytes] = []
    n = len(line)
    p = 0
    while True:
        while p < n and line[p] in _ISSPACE:
            p += 1
        if p >= n:
            return args
        cur = bytearray()
        inq = False  # inside "double quotes"
        insq = False  # inside 'single quotes'
        while True:
            c = line[p] if p < n else 0
            if inq:
                if (
                    c == 92  # backslash
                    and p + 3 < n
                    and line[p + 1] == 120  # 'x'
                    and line[p + 2] in _HEX
                    and line[p + 3] in _HEX
                ):
                    cur.append(int(line[p + 2 : p + 4], 16))
                    p += 3
                elif c == 92 and p + 1 < n:
                    p += 1
                    e = line[p]
                    cur.append(_ESCAPES.get(e, e))
                elif c == 34:  # closing "
                    if p + 1 < n and line[p + 1] not in _ISSPACE:
                        return None
                    p += 1
                    break
                elif c == 0:
                    return None  # unterminated quotes
                else:
                    cur.append(c)
            elif insq:
                if c == 92 and p + 1 < n and line[p + 1] == 39:
                    p += 1
                    cur.append(39)
                elif c == 39:  # closing '
                    if p + 1 < n and line[p + 1] not in _ISSPACE:
                        return None
                    p += 1
                    break
                elif c == 0:
                    return None
                else:
                    cur.append(c)
            elif c in _UNQUOTED_END:
                if c:
                    p += 1
                break
            elif c == 34:
                inq = True
            elif c == 39:
                insq = True
            else:
                cur.append(c)
            p += 1
        args.append(bytes(cur))


def encode_requests(reqs) -> bytes:
    """The canonical multibulk encoding of a list of requests."""
    flat = list(chain.from_iterable(reqs))
    return _canonical(reqs, flat)


def _canonical(reqs, flat) -> bytes:
    hdrs = list(map(_BULK_HDR, map(len, flat)))
    i = 0
    for r in reqs:  # every request is non-empty here
        hdrs[i] = _MBULK_HDR(len(r)) + hdrs[i]
        i += len(r)
    return b"".join(chain.from_iterable(zip(hdrs, flat, repeat(_CRLF))))


class RequestParser:
    """Feed bytes, take complete commands (each a list of bytes).

    ``auth_required``: set by the connection while the client still has to
    authenticate (Redis's ``authRequired``). Then the smaller limits apply and
    ``parse()`` stops after each command (``paused`` is True while more
    buffered input waits), so that a command that authenticates changes the
    limits for the requests after it, as in Redis.
    """

    __slots__ = (
        "buf",
        "pos",
        "max_bulk_len",
        "auth_required",
        "paused",
        "fast",
        "_argc",
        "_args",
        "_bulklen",
        "_marks",
        "_off",
        "_reader",
    )

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024, fast: bool = True):
        self.buf: bytes | bytearray = b""
        self.pos = 0
        self.max_bulk_len = max_bulk_len
        self.auth_required = False
        self.paused = False
        self.fast = fast and _hiredis is not None
        self._argc = 0  # args still to read of the current multibulk request
        self._args: list[bytes] = []
        self._bulklen = -1  # length of the bulk being read, -1 = read header
        self._marks: list[int] = []  # modelled read boundaries (see module doc)
        self._off = 0  # stream offset of buf[0]
        self._reader = None  # the hiredis reader, when empty and reusable

    def feed(self, data) -> None:
        buf = self.buf
        pos = self.pos
        if pos == len(buf):
            # the usual case: all consumed; keep the chunk itself (no copy)
            self._off += pos
            self.buf = buf = data if type(data) is bytes else bytes(data)
            self.pos = pos = 0
        else:
            if type(buf) is not bytearray:
                buf = bytearray(buf[pos:] if pos else buf)
                self._off += pos
                self.pos = pos = 0
            elif pos > 65536:
                del buf[:pos]
                self._off += pos
                self.pos = pos = 0
            buf += data
            self.buf = buf
        n = len(buf)
        if n - pos > PROTO_INLINE_MAX_SIZE:
            self._mark(n - len(data), n)

    def _mark(self, start: int, n: int) -> None:
        """Record the read boundaries of a chunk fed at buf[start:n]: every
        16 KiB of the stream and the chunk's end, as stream offsets. Only
        those a line starting at or after ``pos`` could cross matter."""
        off = self._off
        lo = off + self.pos + PROTO_INLINE_MAX_SIZE
        if self._bulklen >= 0:
            lo += self._bulklen + 2  # the next line starts after the payload
        end = off + n
        b = max(off + start, lo) // PROTO_IOBUF_LEN * PROTO_IOBUF_LEN + PROTO_IOBUF_LEN
        marks = self._marks
        while b < end:
            marks.append(b)
            b += PROTO_IOBUF_LEN
        if end > lo:
            marks.append(end)

    def _too_big(self, pos: int, t: int) -> bool:
        """A line starts at pos and its end is at t: did some read boundary
        show more than 64 KiB of it without its end?"""
        lim = self._off + pos + PROTO_INLINE_MAX_SIZE
        t += self._off
        for m in self._marks:
            if lim < m <= t:
                return True
        return False

    def pending(self) -> int:
        """Bytes buffered but not yet consumed (Redis's qbuf minus qb_pos)."""
        return len(self.buf) - self.pos

    def argv_memory(self) -> int:
        """The arguments of a half-read request already taken off the buffer
        (Redis's argv_len_sum, CLIENT LIST's argv-mem), 0 between requests."""
        args = self._args
        if not args or not self._argc:
            return 0
        return sum(map(len, args))

    def argv_count(self) -> int:
        """How many arguments of a half-read request are already taken off
        the buffer (Redis's c->argc while it reads), 0 between requests."""
        return len(self._args) if self._argc else 0

    def query_alloc(self) -> int:
        """What Redis's query buffer would hold allocated now: while a big
        bulk argument (32 KB or more) is read, room for all of it (Redis
        allocates the announced length at once), else what is buffered."""
        pending = len(self.buf) - self.pos
        bl = self._bulklen
        if self._argc and bl >= 32 * 1024:
            return max(pending, bl + 2)
        return pending

    def bulk_len(self) -> int:
        """The length of the bulk argument being read, -1 between arguments
        (Redis's c->bulklen)."""
        return self._bulklen if self._argc else -1

    def in_args(self) -> bool:
        """True while a multibulk request's arguments are partly read."""
        return self._argc > 0

    def in_request(self) -> bool:
        """True while a request is partly read."""
        return self._argc > 0 or self.pos < len(self.buf)

    # --- parsing -----------------------------------------------------------------

    def parse(self, out: list) -> ProtocolError | None:
        """Append every complete command to ``out``.

        Returns a ProtocolError if the stream is invalid at the point where
        parsing stopped; commands before that point are still in ``out``.
        """
        buf = self.buf
        n = len(buf)
        pos = self.pos
        self.paused = False
        if pos >= n:
            return None
        one = self.auth_required
        fast = self.fast and not one
        find = buf.find
        try:
            while pos < n:
                if self._argc == 0:
                    c0 = buf[pos]
                    if c0 != 42:  # inline
                        nl = find(b"\n", pos)
                        if nl >= 0 and find(b"\0", pos, nl) >= 0:
                            nl = -1  # strchr stops at the NUL
                        if nl < 0:
                            if n - pos > PROTO_INLINE_MAX_SIZE:
                                return ProtocolError("too big inline request")
                            break
                        if nl - pos > PROTO_INLINE_MAX_SIZE and self._too_big(pos, nl):
                            return ProtocolError("too big inline request")
                        end = nl
                        if end > pos and buf[end - 1] == 13:
                            end -= 1
                        args = split_args(bytes(buf[pos:end]))
                        if args is None:
                            return ProtocolError("unbalanced quotes in request")
                        pos = nl + 1
                        if args:
                            out.append(args)
                            if one:
                                self.paused = pos < n
                                break
                        continue
                    if fast:
                        fast = False  # one attempt per call keeps it linear
                        pos = self._fast(buf, pos, n, out)
                        continue
                    cr = find(b"\r", pos)
                    if 1 < cr - pos <= 21 and cr <= n - 2:
                        s = buf[pos + 1 : cr]
                        if not s.isdigit() or (s[0] == 48 and len(s) > 1):
                            s = None
                    else:
                        s = None
                    if s is not None:
                        count = int(s)
                    else:
                        cr = self._term(buf, pos, cr)
                        if cr < 0:
                            if n - pos > PROTO_INLINE_MAX_SIZE:
                                return ProtocolError("too big mbulk count string")
                            break
                        if cr - pos > PROTO_INLINE_MAX_SIZE and self._too_big(pos, cr):
                            return ProtocolError("too big mbulk count string")
                        if cr > n - 2:
                            break
                        count = string2ll(bytes(buf[pos + 1 : cr]))
                        if count is None:
                            return ProtocolError("invalid multibulk length")
                    if count > INT_MAX:
                        return ProtocolError("invalid multibulk length")
                    if one and count > AUTH_MBULK_MAX:
                        return ProtocolError("unauthenticated multibulk length")
                    pos = cr + 2
                    if count <= 0:
                        continue
                    self._argc = count
                    self._args = []
                    self._bulklen = -1
                # reading the args of a multibulk request
                args = self._args
                argc = self._argc
                bl = self._bulklen
                maxbulk = self.max_bulk_len
                while argc:
                    if bl < 0:
                        cr = find(b"\r", pos)
                        if 1 < cr - pos <= 21 and cr <= n - 2 and buf[pos] == 36:
                            s = buf[pos + 1 : cr]
                            if not s.isdigit() or (s[0] == 48 and len(s) > 1):
                                s = None
                        else:
                            s = None
                        if s is not None:
                            bl = int(s)
                            if bl > maxbulk:
                                self._argc = argc
                                return ProtocolError("invalid bulk length")
                        else:
                            cr = self._term(buf, pos, cr)
                            if cr < 0:
                                if n - pos > PROTO_INLINE_MAX_SIZE:
                                    self._argc = argc
                                    return ProtocolError("too big bulk count string")
                                break
                            if cr - pos > PROTO_INLINE_MAX_SIZE and self._too_big(pos, cr):
                                self._argc = argc
                                return ProtocolError("too big bulk count string")
                            if cr > n - 2:
                                break
                            if buf[pos] != 36:  # '$'
                                self._argc = argc
                                return ProtocolError(
                                    "expected '$', got '%s'" % chr(buf[pos])
                                )
                            bl = string2ll(bytes(buf[pos + 1 : cr]))
                            if bl is None or bl < 0 or bl > maxbulk:
                                self._argc = argc
                                return ProtocolError("invalid bulk length")
                        if one and bl > AUTH_BULK_MAX:
                            self._argc = argc
                            return ProtocolError("unauthenticated bulk length")
                        pos = cr + 2
                    if n - pos < bl + 2:
                        break
                    args.append(bytes(buf[pos : pos + bl]))
                    pos += bl + 2
                    bl = -1
                    argc -= 1
                self._argc = argc
                self._bulklen = bl
                if argc:
                    break  # incomplete
                out.append(args)
                self._args = []
                if one:
                    self.paused = pos < n
                    break
            return None
        finally:
            self.pos = pos
            marks = self._marks
            if marks:
                lim = self._off + pos + PROTO_INLINE_MAX_SIZE
                if marks[0] <= lim:
                    self._marks = [m for m in marks if m > lim]

    @staticmethod
    def _term(buf, pos: int, cr: int) -> int:
        """Where Redis's ``strchr(p, '\\r')`` finds the line end: -1 when there
        is none or a NUL comes first."""
        if cr >= 0 and buf.find(b"\0", pos, cr) >= 0:
            return -1
        return cr

    def _fast(self, buf, pos: int, n: int, out: list) -> int:
        """Parse complete multibulk requests from pos with hiredis; return
        the position after the ones accepted (pos itself if none)."""
        seg = buf if pos == 0 else buf[pos:n]
        cls = seg.translate(_CLASSIFY)
        if cls.find(b"*0000000") >= 0 or cls.find(b"#0000000") >= 0:
            # hiredis allocates a list of the announced size up front: a
            # count of a million or more goes the pure (Redis-like) way
            return pos
        special = cls.find(b"!") >= 0 or cls.find(b"#") >= 0
        r = self._reader
        if r is None:
            r = self._reader = _hiredis.Reader()
        r.feed(seg)
        reqs: list = []
        get = r.gets
        try:
            x = get()
            while x is not False:
                reqs.append(x)
                x = get()
            # Did hiredis stop exactly at the end? Then an empty request fed
            # now comes back as the next reply. Inside a partial request it
            # can never come back as exactly [] (it becomes part of that
            # request, or an error).
            r.feed(b"*0\r\n")
            x = get()
            clean = type(x) is list and not x
        except Exception:  # a protocol error; or e.g. a list as a map key
            clean = False
        if not clean:
            self._reader = None  # holds a partial request or an error
        if not reqs or not all(reqs):  # none, or *0 / *-1 / null
            return pos
        try:
            # every request iterable, every element bytes (a top-level bulk
            # string iterates ints and fails too; dicts come from '%', which
            # makes the input special)
            b"".join(chain.from_iterable(reqs))
        except TypeError:
            return pos
        if special:
            # A type byte hiredis reads in place of '*' or '$' may be there
            # (or it is just payload): accept only the canonical encoding.
            if not _LIST_ONLY.issuperset(map(type, reqs)):
                return pos
            canon = _canonical(reqs, list(chain.from_iterable(reqs)))
            if not buf.startswith(canon, pos):
                return pos
            end = pos + len(canon)
        elif clean:
            end = n
        else:
            lens = list(map(len, chain.from_iterable(reqs)))
            end = (
                pos
                + sum(lens)
                + 5 * len(lens)
                + sum(map(len, map(str, lens)))
                + 3 * len(reqs)
                + sum(map(len, map(str, map(len, reqs))))
            )
            if end > n:  # pragma: no cover - hiredis and Redis disagree
                return pos
        if end - pos > self.max_bulk_len and max(
            map(len, chain.from_iterable(reqs))
        ) > self.max_bulk_len:
            return pos
        out += reqs
        return end
