"""C-string and C-number parsing exactly as Redis's C code sees its
arguments (pure). One module, so that every caller gets the same answer.

* :func:`cstr`: an argument as a C string: it ends at the first NUL byte.
* :func:`strtol`: glibc ``strtol(s, NULL, 10)``: optional leading white
  space and sign, then the longest run of digits; 0 when there are none;
  saturated to the range of a 64-bit ``long``; whatever follows is ignored.
* :func:`atoi`: glibc ``atoi``, which is ``(int) strtol(...)``: the
  saturated ``long`` cut to its low 32 bits (so ``atoi("4294967297")`` is 1,
  as on x86-64 Linux).
* :func:`scan_cursor`: Redis's parseScanCursorOrReply: ``strtoul`` over the
  whole C string (no leading space, nothing after the digits, no overflow;
  a leading minus wraps as strtoul does); ``None`` when invalid.

Redis's strict whole-string integer parser (``string2ll``) lives with the
protocol parser (``frtrio.protocol.parser.string2ll``).
"""

from __future__ import annotations

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
ULONG_MAX = 2**64 - 1
_SPACE = b" \t\n\v\f\r"


def cstr(b: bytes) -> bytes:
    nul = b.find(b"\0")
    return b if nul < 0 else b[:nul]


def strtol(b: bytes) -> int:
    s = b.lstrip(_SPACE)
    neg = s[:1] == b"-"
    if s[:1] in (b"+", b"-"):
        s = s[1:]
    n = 0
    for ch in s:
        if not 48 <= ch <= 57:
            break
        n = n * 10 + ch - 48
    n = -n if neg else n
    return LONG_MIN if n < LONG_MIN else LONG_MAX if n > LONG_MAX else n


def atoi(b: bytes) -> int:
    n = strtol(b) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


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
