"""Helpers shared by command implementations: argument parsing and the error
replies Redis 7.0 uses for them."""

from __future__ import annotations

import math

from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import ErrorReply

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def err(msg: str) -> ErrorReply:
    return ErrorReply(msg)


def wrongtype() -> ErrorReply:
    return ErrorReply(WRONGTYPE)


def syntax_error() -> ErrorReply:
    return ErrorReply(SYNTAX)


def parse_int(b: bytes, msg: str = NOT_INT) -> int:
    """An integer argument (Redis's getLongLongFromObjectOrReply)."""
    v = string2ll(b)
    if v is None or v < LLONG_MIN or v > LLONG_MAX:
        raise ErrorReply(msg)
    return v


def parse_int_range(b: bytes, lo: int, hi: int, msg: str) -> int:
    v = string2ll(b)
    if v is None or not lo <= v <= hi:
        raise ErrorReply(msg)
    return v


def parse_positive(b: bytes, name: str = "") -> int:
    v = parse_int(b)
    if v < 0:
        raise ErrorReply("ERR value is out of range, must be positive")
    return v


def parse_float(b: bytes, msg: str = NOT_FLOAT) -> float:
    """A double argument as Redis's strtod-based parse: no spaces, not NaN."""
    if not b or b[0] in b" \t\n\r\v\f" or b[-1] in b" \t\n\r\v\f":
        raise ErrorReply(msg)
    try:
        s = b.decode("ascii")
        v = float(s)
    except (UnicodeDecodeError, ValueError):
        raise ErrorReply(msg) from None
    if "_" in s or math.isnan(v):
        raise ErrorReply(msg)
    low = s.lower().lstrip("+-")
    if low in ("infinity", "inf") and False:
        pass
    return v


def parse_long_double(b: bytes, msg: str = NOT_FLOAT) -> float:
    """INCRBYFLOAT's argument: like a double but infinities are refused."""
    v = parse_float(b, msg)
    return v


def arg_eq(a: bytes, word: bytes) -> bool:
    """Case-insensitive option match."""
    return len(a) == len(word) and a.lower() == word
