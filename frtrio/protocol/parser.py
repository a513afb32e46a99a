"""Incremental RESP request parser (pure: no I/O).

It follows what redis-server 7.0 accepts from a client, byte for byte:

* a request starting with ``*`` is a multibulk request; anything else is an
  inline request (a line of space separated, optionally quoted words);
* lengths are parsed the way Redis's ``string2ll`` does (no sign on bulk
  lengths, no leading zeros, no spaces, no ``+``);
* the two bytes after a length line's ``\\r`` and after a bulk payload are
  skipped without being checked, as Redis does;
* limits: multibulk count up to 1024*1024, bulk length up to
  ``proto-max-bulk-len``, a line without its terminator up to 64 KiB.

After a protocol error the parser keeps the commands it completed before the
error; the connection answers them, then answers the error and closes (Redis's
``CLIENT_CLOSE_AFTER_REPLY``).
"""

from __future__ import annotations

PROTO_INLINE_MAX_SIZE = 64 * 1024
PROTO_MBULK_MAX = 1024 * 1024
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1

_WS = b" \t\n\r\v\f"


class ProtocolError(Exception):
    """A request Redis refuses with ``-ERR Protocol error: ...`` and a close."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    @property
    def reply_text(self) -> str:
        return "Protocol error: " + self.detail


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
    """Split an inline request line as Redis's sdssplitargs does.

    Returns None for unbalanced quotes (and a closing quote not followed by
    a space), which Redis reports as a protocol error.
    """
    args: list[bytes] = []
    i = 0
    n = len(line)
    while True:
        while i < n and line[i] in _WS:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = False  # inside "double quotes"
        insq = False  # inside 'single quotes'
        done = False
        while not done:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 92  # backslash
                    and i + 3 < n
                    and line[i + 1] == 120  # 'x'
                    and _ishex(line[i + 2])
                    and _ishex(line[i + 3])
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    e = line[i]
                    cur.append(_ESCAPES.get(e, e))
                elif c == 34:  # closing "
                    if i + 1 < n and line[i + 1] not in _WS:
                        return None
                    done = True
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _WS:
                        return None
                    done = True
                else:
                    cur.append(c)
            else:
                if i >= n:
                    done = True
                    break
                c = line[i]
                if c in _WS:
                    done = True
                elif c == 34:
                    inq = True
                elif c == 39:
                    insq = True
                else:
                    cur.append(c)
            if i < n:
                i += 1
        args.append(bytes(cur))


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def _ishex(c: int) -> bool:
    return 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102


class RequestParser:
    """Feed bytes, take complete commands (each a list of bytes)."""

    __slots__ = ("buf", "pos", "max_bulk_len", "_argc", "_args", "_bulklen")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024):
        self.buf = bytearray()
        self.pos = 0
        self.max_bulk_len = max_bulk_len
        self._argc = 0  # args still to read of the current multibulk request
        self._args: list[bytes] = []
        self._bulklen = -1  # length of the bulk being read, -1 = read header

    def feed(self, data: bytes) -> None:
        if self.pos and self.pos == len(self.buf):
            self.buf = bytearray(data)
            self.pos = 0
        else:
            if self.pos > 65536:
                del self.buf[: self.pos]
                self.pos = 0
            self.buf += data

    def pending(self) -> int:
        """Bytes buffered but not yet consumed (Redis's qbuf minus qb_pos)."""
        return len(self.buf) - self.pos

    def in_request(self) -> bool:
        """True while a request is partly read."""
        return self._argc > 0 or self.pos < len(self.buf)

    def parse(self, out: list) -> ProtocolError | None:
        """Append every complete command to ``out``.

        Returns a ProtocolError if the stream is invalid at the point where
        parsing stopped; commands before that point are still in ``out``.
        """
        buf = self.buf
        n = len(buf)
        pos = self.pos
        try:
            while pos < n:
                if self._argc == 0:
                    if buf[pos] != 42:  # inline
                        nl = buf.find(b"\n", pos)
                        if nl < 0:
                            if n - pos > PROTO_INLINE_MAX_SIZE:
                                return ProtocolError("too big inline request")
                            break
                        end = nl
                        if end > pos and buf[end - 1] == 13:
                            end -= 1
                        args = split_args(bytes(buf[pos:end]))
                        pos = nl + 1
                        if args is None:
                            return ProtocolError("unbalanced quotes in request")
                        if args:
                            out.append(args)
                        continue
                    cr = buf.find(b"\r", pos)
                    if cr < 0 or cr > n - 2:
                        if n - pos > PROTO_INLINE_MAX_SIZE:
                            return ProtocolError("too big mbulk count string")
                        break
                    count = string2ll(bytes(buf[pos + 1 : cr]))
                    if count is None or count > PROTO_MBULK_MAX:
                        return ProtocolError("invalid multibulk length")
                    pos = cr + 2
                    if count <= 0:
                        continue
                    self._argc = count
                    self._args = []
                    self._bulklen = -1
                # reading the args of a multibulk request
                args = self._args
                while self._argc:
                    bl = self._bulklen
                    if bl < 0:
                        cr = buf.find(b"\r", pos)
                        if cr < 0 or cr > n - 2:
                            if n - pos > PROTO_INLINE_MAX_SIZE:
                                return ProtocolError("too big bulk count string")
                            self.pos = pos
                            return None
                        if buf[pos] != 36:  # '$'
                            return ProtocolError(
                                "expected '$', got '%s'" % chr(buf[pos])
                            )
                        bl = string2ll(bytes(buf[pos + 1 : cr]))
                        if bl is None or bl < 0 or bl > self.max_bulk_len:
                            return ProtocolError("invalid bulk length")
                        pos = cr + 2
                        self._bulklen = bl
                    if n - pos < bl + 2:
                        self.pos = pos
                        return None
                    args.append(bytes(buf[pos : pos + bl]))
                    pos += bl + 2
                    self._bulklen = -1
                    self._argc -= 1
                out.append(args)
                self._args = []
            return None
        finally:
            self.pos = pos
