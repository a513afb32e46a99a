"""C-string and C-number parsing exactly as Redis's C code sees its
arguments (pure). One module, so that every caller gets the same answer.

* :func:`cstr`: an argument as a C string: it ends at the first NUL byte.
* :func:`strtol`: glibc ``strtol(s, NULL, 10)``: optional leading white
  space and sign, then the longest run of digits; 0 when there are none;
  saturated to the range of a 64-bit ``long``; whatever follows is ignored.
* :func:`atoi`: glibc ``atoi``, which is ``(int) strtol(...)``: the
  saturated ``long`` cut to its low 32 bits (so ``atoi("4294967297")`` is 1,
  as on x86-64 Linux).
* :func:`strtoll`: glibc ``strtoll(s, &end, base)`` (base 8 or 10) with
  what follows the number and whether it overflowed.
* :func:`c_int`: the value a C ``int`` keeps of a ``long long``.
* :func:`scan_cursor`: Redis's parseScanCursorOrReply: ``strtoul`` over the
  whole C string (no leading space, nothing after the digits, no overflow;
  a leading minus wraps as strtoul does); ``None`` when invalid.
* :func:`memtoull`: Redis's memtoull: digits with an optional unit
  (``k kb m mb g gb``, any case).
* :func:`strtod`: C ``strtod`` over a whole string: (value, ERANGE), or
  ``None`` when it would stop early (or read a NaN).
* :func:`strtod_prefix`: C ``strtod(s, NULL)``: the longest number at the
  start of the C string, 0 if none.
* :func:`string2d`: Redis's string2d (getDoubleFromObject's rules): the
  whole string, no leading space, no NaN, no overflow or underflow to zero.

Redis's strict whole-string integer parser (``string2ll``) lives with the
protocol parser (``frtrio.protocol.parser.string2ll``).
"""

from __future__ import annotations

import math
import re

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
ULONG_MAX = 2**64 - 1
_SPACE = b" \t\n\v\f\r"


def cstr(b: bytes) -> bytes:
    nul = b.find(b"\0")
    return b if nul < 0 else b[:nul]


def strtoll(b: bytes, base: int = 10) -> tuple[int, bytes, bool]:
    """(value, the bytes after the number, overflowed); no digits: (0, b, False)."""
    i = 0
    n = len(b)
    while i < n and b[i] in _SPACE:
        i += 1
    neg = False
    if i < n and b[i] in b"+-":
        neg = b[i] == 45  # '-'
        i += 1
    top = 48 + base  # digits '0' .. base-1
    j = i
    while j < n and 48 <= b[j] < top:
        j += 1
    if j == i:
        return 0, b, False
    v = int(b[i:j], base)
    if neg:
        v = -v
    if v > LONG_MAX:
        return LONG_MAX, b[j:], True
    if v < LONG_MIN:
        return LONG_MIN, b[j:], True
    return v, b[j:], False


def strtol(b: bytes) -> int:
    return strtoll(b)[0]


def atoi(b: bytes) -> int:
    n = strtol(b) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def c_int(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def scan_cursor(b: bytes) -> int | None:
    s = cstr(b)
    if not s:
        return 0
    neg = s[0] == 45  # '-'
    d = s[1:] if s[0] in (43, 45) else s  # '+' / '-'
    if not d.isdigit():
        return None
    n = int(d)
    if n > ULONG_MAX:
        return None
    return (-n) & ULONG_MAX if neg else n


_MEM_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2,
              b"g": 1000**3, b"gb": 1024**3}


def memtoull(b: bytes) -> int | None:
    """None where Redis reports an error. An empty number counts as 0, as in Redis."""
    if b[:1] == b"-":
        return None
    i = 0
    while i < len(b) and 48 <= b[i] <= 57:
        i += 1
    unit = _MEM_UNITS.get(b[i:].lower())
    if unit is None:
        return None
    v = (int(b[:i]) if i else 0) * unit
    return None if v > ULONG_MAX else v


_DEC_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_RE = re.compile(
    rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
)
_INF_RE = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
_NONZERO_DEC = re.compile(rb"[1-9]")
_NONZERO_HEX = re.compile(rb"[1-9a-fA-F]")


def strtod(s: bytes):
    """``s`` read whole by C's strtod: (value, erange) or None when strtod
    would stop early (or read a NaN, which every caller refuses)."""
    if _DEC_RE.fullmatch(s):
        v = float(s)
        if math.isinf(v):
            return v, True
        if v == 0.0 and _NONZERO_DEC.search(re.split(rb"[eE]", s, maxsplit=1)[0]):
            return v, True
        return v, False
    if _HEX_RE.fullmatch(s):
        try:
            v = float.fromhex(s.decode("ascii"))
        except OverflowError:
            return (-math.inf if s[:1] == b"-" else math.inf), True
        mant = re.split(rb"[pP]", s[s.lower().index(b"x") + 1 :], maxsplit=1)[0]
        if v == 0.0 and _NONZERO_HEX.search(mant):
            return v, True
        return v, False
    if _INF_RE.fullmatch(s):
        return (-math.inf if s[:1] == b"-" else math.inf), False
    return None


def string2d(b: bytes) -> float | None:
    if not b or b[0] in _SPACE:
        return None
    r = strtod(b)
    if r is None:
        return None
    v, erange = r
    if erange and (math.isinf(v) or v == 0.0):
        return None
    return v


_STRTOD_PREFIX = re.compile(
    rb"[ \t\n\r\v\f]*([+-]?(?:inf(?:inity)?|nan|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)"
    rb"(?:p[+-]?[0-9]+)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))",
    re.IGNORECASE,
)


def strtod_prefix(b: bytes) -> float:
    m = _STRTOD_PREFIX.match(cstr(b))
    if m is None:
        return 0.0
    t = m.group(1).decode("ascii")
    try:
        if "x" in t.lower() and "inf" not in t.lower():
            return float.fromhex(t)
        return float(t)
    except (ValueError, OverflowError):
        return 0.0
