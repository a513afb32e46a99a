"""Redis's glob-style pattern matching (``stringmatchlen``), compiled to a
regular expression once per pattern.

``*`` any run of bytes, ``?`` one byte, ``[abc]`` / ``[^abc]`` / ``[a-z]``
classes (a reversed range is taken as written the other way round), ``\\``
escapes the next byte. An unterminated ``[`` class ends at the end of the
pattern, and a trailing ``\\`` matches a backslash, as in Redis.
"""

from __future__ import annotations

import re
from functools import lru_cache


def _esc(b: int) -> bytes:
    return re.escape(bytes([b]))


@lru_cache(maxsize=256)
def compile_pattern(pattern: bytes, nocase: bool = False):
    out = bytearray()
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # *
            while i + 1 < n and pattern[i + 1] == 42:
                i += 1
            out += b".*"
        elif c == 63:  # ?
            out += b"."
        elif c == 91:  # [
            i += 1
            neg = i < n and pattern[i] == 94
            if neg:
                i += 1
            items = bytearray()
            while i < n and pattern[i] != 93:
                ch = pattern[i]
                if ch == 92 and i + 1 < n:
                    i += 1
                    items += _esc(pattern[i])
                elif i + 2 < n and pattern[i + 1] == 45:  # a-z
                    lo, hi = ch, pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    items += _esc(lo) + b"-" + _esc(hi)
                    i += 2
                else:
                    items += _esc(ch)
                i += 1
            if not items:
                out += b"[^\\x00-\\xff]" if not neg else b"[\\x00-\\xff]"
            else:
                out += b"[" + (b"^" if neg else b"") + bytes(items) + b"]"
        elif c == 92:  # backslash
            if i + 1 < n:
                i += 1
            out += _esc(pattern[i])
        else:
            out += _esc(c)
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    return re.compile(bytes(out) + b"\\Z", flags)


def match(pattern: bytes, s: bytes, nocase: bool = False) -> bool:
    if pattern == b"*":
        return True
    return compile_pattern(pattern, nocase).match(s) is not None
