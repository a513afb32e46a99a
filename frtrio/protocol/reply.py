"""Reply values and their RESP2 / RESP3 encoding (pure).

Commands return plain Python values; the encoder turns them into bytes for
the client's protocol version:

=====================  ===================  =====================
value                  RESP2                RESP3
=====================  ===================  =====================
bytes                  bulk string          bulk string
int (not bool)         integer              integer
None                   null bulk ``$-1``    null ``_``
list / tuple           array                array
Status("OK")           ``+OK``              ``+OK``
ErrorReply             ``-ERR ...``         ``-ERR ...``
NullArray              ``*-1``              ``_``
Map(pairs)             flat array           map ``%``
SetReply(items)        array                set ``~``
Double(x)              bulk string          double ``,``
Push(items)            array                push ``>``
Verbatim(fmt, text)    bulk string          verbatim ``=``
Bool(x)                integer 1/0          boolean ``#``
Raw(bytes)             as is                as is
=====================  ===================  =====================
"""

from __future__ import annotations

import math


class Status(str):
    """A simple string reply (``+...``)."""

    __slots__ = ()


class ErrorReply(Exception):
    """An error reply. Raised by commands; also usable as a value.

    ``message`` is the whole text after ``-``, e.g. ``"ERR syntax error"``.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Raw(bytes):
    """Bytes that are already RESP-encoded."""

    __slots__ = ()


class NullArrayType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NullArray"


NullArray = NullArrayType()


class Map(list):
    """A map reply; holds (key, value) pairs in order."""

    __slots__ = ()


class SetReply(list):
    __slots__ = ()


class Push(list):
    __slots__ = ()


class Double(float):
    __slots__ = ()


class Bool(int):
    __slots__ = ()


class Verbatim(bytes):
    """Verbatim string (RESP3 ``=``); RESP2 sends it as a bulk string."""

    __slots__ = ()
    fmt = b"txt"


# A handler returns NO_REPLY when it has already answered (or must not).
NO_REPLY = Raw(b"")

OK = Status("OK")
QUEUED = Status("QUEUED")
PONG = Status("PONG")


def format_double(x: float) -> bytes:
    """A double as Redis 7.0 writes it in replies (``%.17g`` style)."""
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    if math.isnan(x):
        return b"nan"
    if x == int(x) and abs(x) < 1e17 and (x or math.copysign(1.0, x) > 0):
        return b"%d" % int(x)
    return (b"%.17g" % x)  # (-0.0 comes here: Redis writes "-0")


def format_long_double(x: float) -> bytes:
    """INCRBYFLOAT / HINCRBYFLOAT formatting: humanfriendly ``%.17Lf`` trimmed.

    Python has no long double; the closest faithful rendering of a binary64
    value is its shortest repr, written without exponent.
    """
    if math.isinf(x) or math.isnan(x):
        raise ValueError("not finite")
    if x == 0:
        return b"0"
    r = repr(x)
    if "e" in r or "E" in r:
        s = "%.17f" % x
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s.encode()
    if r.endswith(".0"):
        r = r[:-2]
    return r.encode()


def _clean_error(msg: str) -> bytes:
    b = msg.encode("latin-1", "replace")
    if b"\r" in b or b"\n" in b:
        b = b.replace(b"\r", b" ").replace(b"\n", b" ")
    return b


def encode_error(msg: str) -> bytes:
    return b"-" + _clean_error(msg) + b"\r\n"


# Precomputed pieces for the commonest replies (the hot path of GET/SET/INCR).
_CRLF = b"\r\n"
_BULK_HDR = [b"$%d\r\n" % i for i in range(1024)]
_SMALL_INT = [b":%d\r\n" % i for i in range(1024)]
_STATUS: dict = {}  # Status text -> its encoding (bounded)


def encode(v, resp3: bool, out: list) -> None:
    """Append the encoding of ``v`` to ``out`` (a list of bytes chunks)."""
    t = type(v)
    if t is bytes:
        n = len(v)
        if n < 1024:
            out.append(_BULK_HDR[n] + v + _CRLF)
        else:  # no copy of a big value here: the output join copies it once
            out += (b"$%d\r\n" % n, v, _CRLF)
    elif t is int:
        out.append(_SMALL_INT[v] if 0 <= v < 1024 else b":%d\r\n" % v)
    elif t is Status:
        b = _STATUS.get(v)
        if b is None:
            b = b"+" + v.encode("latin-1") + _CRLF
            if len(_STATUS) < 512:
                _STATUS[v] = b
        out.append(b)
    elif v is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(v))
        for x in v:
            encode(x, resp3, out)
    elif t is Raw:
        out.append(v)
    elif isinstance(v, ErrorReply):
        out.append(encode_error(v.message))
    elif t is Map:
        if resp3:
            out.append(b"%%%d\r\n" % len(v))
        else:
            out.append(b"*%d\r\n" % (2 * len(v)))
        for k, x in v:
            encode(k, resp3, out)
            encode(x, resp3, out)
    elif t is Double:
        d = format_double(v)
        if resp3:
            out.append(b"," + d + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(d), d))
    elif t is SetReply:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(v))
        for x in v:
            encode(x, resp3, out)
    elif t is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(v))
        for x in v:
            encode(x, resp3, out)
    elif v is NullArray:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif t is Bool:
        if resp3:
            out.append(b"#t\r\n" if v else b"#f\r\n")
        else:
            out.append(b":1\r\n" if v else b":0\r\n")
    elif t is Verbatim:
        if resp3:
            out.append(b"=%d\r\ntxt:%s\r\n" % (len(v) + 4, v))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(v), v))
    elif t is bytearray or t is memoryview:
        b = bytes(v)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    elif t is bool:
        out.append(b":1\r\n" if v else b":0\r\n")
    elif t is str:
        b = v.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    elif t is float:
        d = format_double(v)
        out.append(b"$%d\r\n%s\r\n" % (len(d), d))
    else:
        raise TypeError(f"cannot encode reply of type {t.__name__}")


def encode_one(v, resp3: bool = False) -> bytes:
    out: list = []
    encode(v, resp3, out)
    return b"".join(out)
