"""Redis's ``long double`` arithmetic, emulated exactly (pure).

Redis parses some arguments with ``strtold`` and computes in the C ``long
double`` type, which on x86-64 Linux is the x87 80-bit extended format (64-bit
significand, 15-bit exponent). That is visible: ``HINCRBYFLOAT h f 0.1`` then
``0.2`` answers ``0.3`` in Redis (a binary64 sum would print
``0.30000000000000004``), and ``BLPOP k 0.0001`` times out after 1 ms while
``BLPOP k 1e-5000`` is refused. Here values are exact ``Fraction``s, rounded to
the extended format after every operation, and printed the way
``snprintf("%.17Lf")`` does.

Infinities are the floats ``INF`` / ``-INF``; NaN never escapes (Redis refuses
it wherever it could appear).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

INF = math.inf

_SIG_BITS = 64
_EMIN = -16382  # exponent of the smallest normal number
_EMAX = 16383
_MAX = Fraction((1 << _SIG_BITS) - 1) * (Fraction(2) ** (_EMAX - _SIG_BITS + 1))
MAX_LONG_DOUBLE_CHARS = 5 * 1024

_DEC = re.compile(rb"([+-]?)(?:(\d+)\.?(\d*)|\.(\d+))(?:[eE]([+-]?\d+))?")
_HEX = re.compile(
    rb"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?\d+))?"
)
_INF = re.compile(rb"[+-]?(?:inf|infinity)", re.I)
_NAN = re.compile(rb"[+-]?nan(?:\([0-9A-Za-z_]*\))?", re.I)
_SPACE = b" \t\n\v\f\r"


def round_ext(q):
    """Round an exact value to the nearest x87 extended value (ties to even).
    Returns a Fraction, or +-INF on overflow."""
    if isinstance(q, float):
        return q  # an infinity
    if q == 0:
        return Fraction(0)
    neg = q < 0
    a = -q if neg else q
    n, d = a.numerator, a.denominator
    e = n.bit_length() - d.bit_length()
    if (n >= d << e) if e >= 0 else ((n << -e) >= d):
        pass
    else:
        e -= 1
    if e > _EMAX:
        return -INF if neg else INF
    shift = max(e, _EMIN) - (_SIG_BITS - 1)
    if shift >= 0:
        num, den = n, d << shift
    else:
        num, den = n << -shift, d
    m, r = divmod(num, den)
    r2 = 2 * r
    if r2 > den or (r2 == den and m & 1):
        m += 1
    if m == 0:
        return Fraction(0)
    v = Fraction(m << shift) if shift >= 0 else Fraction(m, 1 << -shift)
    if v > _MAX:
        return -INF if neg else INF
    return -v if neg else v


_CHUNK = 4000  # below Python's int <-> str digit limit


def _dec_to_int(s: bytes) -> int:
    if len(s) <= _CHUNK:
        return int(s)
    n = 0
    for i in range(0, len(s), _CHUNK):
        part = s[i : i + _CHUNK]
        n = n * 10 ** len(part) + int(part)
    return n


def _int_to_dec(n: int) -> str:
    if n < 10**_CHUNK:
        return str(n)
    parts = []
    while n >= 10**_CHUNK:
        n, r = divmod(n, 10**_CHUNK)
        parts.append(str(r).rjust(_CHUNK, "0"))
    parts.append(str(n))
    return "".join(reversed(parts))


def _scaled(mant: int, base: int, exp: int, neg: bool, ndigits: int = 0):
    """mant * base**exp rounded to extended; None when strtold reports ERANGE
    with a zero or infinite result (Redis refuses those)."""
    if mant == 0:
        return Fraction(0)
    # bail out early on absurd exponents (the exact power would be huge)
    if base == 10:
        mag = ndigits + exp  # value < 10**mag
        if mag > 4940:
            return None
        if mag < -4960:
            return None
    else:
        mag = mant.bit_length() + exp
        if mag > _EMAX + 2:
            return None
        if mag < _EMIN - 70:
            return None
    if exp >= 0:
        q = Fraction(mant * base**exp)
    else:
        q = Fraction(mant, base ** (-exp))
    v = round_ext(q)
    if isinstance(v, float) or v == 0:
        return None
    return -v if neg else v


def strtold(b: bytes):
    """Redis's string2ld: the value of ``b`` (Fraction or +-INF), or None when
    Redis would refuse it (empty, spaces, trailing garbage, NaN, ERANGE)."""
    if not b or len(b) >= MAX_LONG_DOUBLE_CHARS or b[0] in _SPACE:
        return None
    if b"\0" in b:
        # strtold stops at the NUL and Redis 7.0 checks that it consumed all
        # slen bytes: refused (checked against redis-server 7.0.15)
        return None
    m = _HEX.fullmatch(b)
    if m is not None:
        sign, ip, fp, fo = m.group(1), m.group(2), m.group(3), m.group(4)
        if ip is None:
            ip, fp = b"", fo
        digits = (ip + (fp or b"")) or b"0"
        exp = int(m.group(5) or b"0") - 4 * len(fp or b"")
        return _scaled(int(digits, 16), 2, exp, sign == b"-")
    m = _DEC.fullmatch(b)
    if m is not None:
        sign, ip, fp, fo = m.group(1), m.group(2), m.group(3), m.group(4)
        if ip is None:
            ip, fp = b"", fo
        digits = (ip + (fp or b"")).lstrip(b"0") or b"0"
        exp = int(m.group(5) or b"0") - len(fp or b"")
        return _scaled(_dec_to_int(digits), 10, exp, sign == b"-", len(digits))
    if _INF.fullmatch(b):
        return -INF if b[:1] == b"-" else INF
    return None  # NaN or not a number


def is_inf(v) -> bool:
    return isinstance(v, float)


def add(a, b):
    """a + b in extended precision; None for NaN (inf - inf)."""
    if isinstance(a, float) or isinstance(b, float):
        r = (a if isinstance(a, float) else 0.0) + (b if isinstance(b, float) else 0.0)
        return None if math.isnan(r) else r
    return round_ext(a + b)


def mul(a, b):
    if isinstance(a, float) or isinstance(b, float):
        fa = a if isinstance(a, float) else (0.0 if a == 0 else math.copysign(1.0, a))
        fb = b if isinstance(b, float) else (0.0 if b == 0 else math.copysign(1.0, b))
        r = fa * fb
        return None if math.isnan(r) else r
    return round_ext(a * b)


def format_human(v) -> bytes:
    """``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf`` with trailing zeros (and a
    trailing dot) removed, ``-0`` written as ``0``."""
    if isinstance(v, float):
        return b"inf" if v > 0 else b"-inf"
    neg = v < 0
    a = -v if neg else v
    scaled = a * 10**17
    q, r = divmod(scaled.numerator, scaled.denominator)
    r2 = 2 * r
    if r2 > scaled.denominator or (r2 == scaled.denominator and q & 1):
        q += 1
    s = _int_to_dec(q).rjust(18, "0")
    s = s[:-17] + "." + s[-17:]
    s = s.rstrip("0")
    if s.endswith("."):
        s = s[:-1]
    if neg:
        s = "-" + s
    if s == "-0":
        s = "0"
    return s.encode()


LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def to_llong_ceil(v) -> int:
    """``(long long) ceill(v)`` as x86-64 does it: out of range (or infinite)
    gives LLONG_MIN."""
    if isinstance(v, float):
        return LLONG_MIN
    n = -((-v.numerator) // v.denominator)
    if n < LLONG_MIN or n > LLONG_MAX:
        return LLONG_MIN
    return n
