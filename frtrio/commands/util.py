"""Helpers shared by command implementations: argument parsing and the error
replies Redis 7.0 uses for them."""

from __future__ import annotations

import math
import platform
import re
from fractions import Fraction

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


INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def parse_range(b: bytes, lo: int, hi: int, msg: str | None = None) -> int:
    """Redis's getRangeLongFromObjectOrReply: ``msg`` (a whole error text)
    replaces both errors when given."""
    v = string2ll(b)
    if v is None:
        raise ErrorReply(msg or NOT_INT)
    if not lo <= v <= hi:
        raise ErrorReply(
            msg or "ERR value is out of range, value must between %d and %d" % (lo, hi)
        )
    return v


def parse_int32(b: bytes, msg: str | None = None) -> int:
    """Redis's getIntFromObjectOrReply."""
    return parse_range(b, INT_MIN, INT_MAX, msg)


def parse_positive(b: bytes, name: str = "") -> int:
    v = parse_int(b)
    if v < 0:
        raise ErrorReply("ERR value is out of range, must be positive")
    return v


_C_SPACE = b" \t\n\r\v\f"

# strtod / strtold's accepted forms (C locale): decimal, hex, inf, nan
_STRTOD_RE = re.compile(
    rb"([+-]?)(?:"
    rb"(inf(?:inity)?)"
    rb"|(nan(?:\([0-9a-z_]*\))?)"
    rb"|0x([0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p([+-]?[0-9]+))?"
    rb"|([0-9]+\.?[0-9]*|\.[0-9]+)(?:e([+-]?[0-9]+))?"
    rb")\Z",
    re.IGNORECASE,
)


def _strto_exact(s: bytes):
    """Parse a whole C float literal exactly.

    Returns ``None`` if strtod would not consume all of ``s`` (or it is NaN),
    ``("inf", sign)`` for an infinity literal, ``("big", sign)`` /
    ``("tiny", sign)`` for literals far outside any floating range, and
    otherwise an exact ``Fraction``.
    """
    m = _STRTOD_RE.match(s)
    if m is None:
        return None
    sign, inf, nan, hx, hexp, dec, dexp = m.groups()
    neg = sign == b"-"
    if inf is not None:
        return ("inf", neg)
    if nan is not None:
        return None
    if hx is not None:
        ip, _, fp = hx.partition(b".")
        mant = int(ip + fp or b"0", 16)
        if mant == 0:
            return Fraction(0)
        e2 = (int(hexp) if hexp is not None else 0) - 4 * len(fp)
        order = mant.bit_length() - 1 + e2
        if order > 20000:
            return ("big", neg)
        if order < -20000:
            return ("tiny", neg)
        v = Fraction(mant) * (Fraction(2) ** e2)
    else:
        ip, _, fp = dec.partition(b".")
        mant = int(ip + fp or b"0")
        if mant == 0:
            return Fraction(0)
        e10 = (int(dexp) if dexp is not None else 0) - len(fp)
        order = len(str(mant)) - 1 + e10
        if order > 5000:
            return ("big", neg)
        if order < -5000:
            return ("tiny", neg)
        v = Fraction(mant) * (Fraction(10) ** e10)
    return -v if neg else v


def parse_float(b: bytes, msg: str = NOT_FLOAT) -> float:
    """A double argument as Redis's getDoubleFromObject (strtod): the whole
    string must parse, no leading space, not NaN, no overflow to infinity
    and no underflow to zero."""
    if not b or b[0] in _C_SPACE:
        raise ErrorReply(msg)
    r = _strto_exact(b)
    if r is None:
        raise ErrorReply(msg)
    if type(r) is tuple:
        kind, neg = r
        if kind == "inf":
            return -math.inf if neg else math.inf
        raise ErrorReply(msg)
    if r == 0:
        return 0.0
    try:
        v = float(r)  # correctly rounded, like glibc's strtod
    except OverflowError:
        raise ErrorReply(msg) from None
    if math.isinf(v) or v == 0.0:
        raise ErrorReply(msg)
    return v


# --- long double (INCRBYFLOAT, HINCRBYFLOAT) -----------------------------------
#
# Redis does INCRBYFLOAT in C ``long double``: on x86-64 the x87 80-bit
# format (64-bit significand), on aarch64/s390x/riscv64 IEEE quad. Values are
# kept here as exact Fractions rounded to that format, so that parsing
# (strtold), the addition and the ``%.17Lf`` rendering are bit-exact.

_MACHINE = platform.machine().lower()
if _MACHINE in ("x86_64", "amd64", "i386", "i686", "x86"):
    LD_MANT_DIG, LD_MAX_EXP = 64, 16384
elif _MACHINE in ("aarch64", "arm64", "s390x", "riscv64"):
    LD_MANT_DIG, LD_MAX_EXP = 113, 16384
else:  # long double == double
    LD_MANT_DIG, LD_MAX_EXP = 53, 1024
_LD_EMIN = 2 - LD_MAX_EXP  # exponent of the smallest normal (2**-16382)
_LD_LIMIT = Fraction(2) ** LD_MAX_EXP  # everything >= this (after rounding) is inf

LD_INF = math.inf


def _exp2(a: Fraction) -> int:
    """floor(log2(a)) for a > 0."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if (Fraction(2) ** e) > a:
        e -= 1
    return e


def ld_round(x: Fraction):
    """Round an exact value to the nearest long double (ties to even);
    +-inf on overflow."""
    if x == 0:
        return Fraction(0)
    neg = x < 0
    a = -x if neg else x
    e = max(_exp2(a), _LD_EMIN)
    q = e - (LD_MANT_DIG - 1)
    scale = Fraction(2) ** q
    m = round(a / scale)  # Fraction.__round__: half to even
    r = m * scale
    if r >= _LD_LIMIT:
        return -LD_INF if neg else LD_INF
    return -r if neg else r


def parse_long_double(b: bytes, msg: str = NOT_FLOAT):
    """Redis's string2ld (strtold): returns an exact Fraction or +-inf.

    As in Redis, the C string ends at the first NUL byte, leading spaces,
    trailing garbage and NaN are refused, and so is a finite literal that
    overflows to infinity or underflows to zero."""
    if not b or len(b) >= 5 * 1024:
        raise ErrorReply(msg)
    nul = b.find(b"\0")
    if nul >= 0:
        b = b[:nul]
        if not b:
            return Fraction(0)
    if b[0] in _C_SPACE:
        raise ErrorReply(msg)
    r = _strto_exact(b)
    if r is None:
        raise ErrorReply(msg)
    if type(r) is tuple:
        kind, neg = r
        if kind == "inf":
            return -LD_INF if neg else LD_INF
        raise ErrorReply(msg)
    if r == 0:
        return r
    v = ld_round(r)
    if type(v) is float or v == 0:
        raise ErrorReply(msg)
    return v


def ld_add(a, b):
    """a + b in long double arithmetic; may return +-inf or nan."""
    if type(a) is float or type(b) is float:
        # at least one infinity: the finite side does not matter
        fa = a if type(a) is float else 0.0
        fb = b if type(b) is float else 0.0
        return fa + fb
    return ld_round(a + b)


def ld_is_finite(v) -> bool:
    return type(v) is not float or math.isfinite(v)


def format_long_double_human(v) -> bytes:
    """``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf`` with trailing zeros (and
    the point) removed; ``-0`` becomes ``0``."""
    if type(v) is float:
        if math.isnan(v):
            return b"nan" if math.copysign(1, v) > 0 else b"-nan"
        return b"inf" if v > 0 else b"-inf"
    n = round(v * 10**17)
    if n == 0:
        return b"0"
    s = b"%d" % abs(n)
    if len(s) <= 17:
        s = b"0" * (18 - len(s)) + s
    ip, fp = s[:-17], s[-17:].rstrip(b"0")
    out = ip + b"." + fp if fp else ip
    return b"-" + out if n < 0 else out


def arg_eq(a: bytes, word: bytes) -> bool:
    """Case-insensitive option match."""
    return len(a) == len(word) and a.lower() == word
