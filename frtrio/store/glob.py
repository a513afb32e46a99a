"""Redis's glob-style pattern matching (``stringmatchlen``), compiled to a
regular expression once per pattern.

``*`` any run of bytes, ``?`` one byte, ``[abc]`` / ``[^abc]`` / ``[a-z]``
classes, ``\\`` escapes the next byte. Redis's quirks are kept:

* a reversed range is taken the other way round, and range ends compare as
  C ``char`` (signed), so ``[a-\\xff]`` is the range ``\\xff``..``a``;
* ``[a-]`` is the range ``]``..``a`` (the ``]`` is taken as the range end)
  and an unterminated class ends at the end of the pattern;
* a trailing ``\\`` matches a backslash;
* the empty string matches only the empty pattern (not even ``*``: callers
  special-case the pattern ``*`` the way Redis does);
* ``nocase`` folds ASCII letters only (``tolower`` in the C locale).
"""

from __future__ import annotations

import re
from functools import lru_cache

_ALL = range(256)


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def _lower(v: int) -> int:
    """C tolower on an int (a signed char value)."""
    return v + 32 if 65 <= v <= 90 else v


def _class(members) -> bytes:
    """A regex class matching exactly the given byte values."""
    ms = sorted(set(members))
    if not ms:
        return b"(?!)"
    if len(ms) == 256:
        return b"[\\x00-\\xff]"
    return b"[" + b"".join(b"\\x%02x" % m for m in ms) + b"]"


def _literal(ch: int, nocase: bool) -> bytes:
    if nocase and (65 <= ch <= 90 or 97 <= ch <= 122):
        return _class((ch & ~32, ch | 32))
    return b"\\x%02x" % ch


@lru_cache(maxsize=512)
def _segments(pattern: bytes, nocase: bool):
    """The pattern cut at its ``*``s: (segments, starred). Each segment is a
    list of one-byte regex tokens (a literal, ``?``, a class), so it matches
    exactly len(segment) bytes; ``starred`` says whether any ``*`` was
    found."""
    segs: list[list[bytes]] = [[]]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # *
            while i + 1 < n and pattern[i + 1] == 42:
                i += 1
            segs.append([])
        elif c == 63:  # ?
            segs[-1].append(b".")
        elif c == 91:  # [
            i += 1
            neg = i < n and pattern[i] == 94
            if neg:
                i += 1
            members: set[int] = set()
            while i < n and pattern[i] != 93:
                ch = pattern[i]
                if ch == 92 and i + 1 < n:  # escaped byte (compared as is)
                    i += 1
                    members.add(pattern[i])
                elif i + 2 < n and pattern[i + 1] == 45:  # a-z
                    lo, hi = _signed(ch), _signed(pattern[i + 2])
                    if lo > hi:
                        lo, hi = hi, lo
                    if nocase:
                        lo, hi = _lower(lo), _lower(hi)
                        members.update(b for b in _ALL if lo <= _lower(_signed(b)) <= hi)
                    else:
                        members.update(b for b in _ALL if lo <= _signed(b) <= hi)
                    i += 2
                elif nocase:
                    members.update(b for b in _ALL if _lower(b) == _lower(ch))
                else:
                    members.add(ch)
                i += 1
            if neg:
                members = set(_ALL) - members
            segs[-1].append(_class(members))
        elif c == 92:  # backslash
            if i + 1 < n:
                i += 1
            segs[-1].append(_literal(pattern[i], nocase))
        else:
            segs[-1].append(_literal(c, nocase))
        i += 1
    return segs, len(segs) > 1


def _compile(seg: list[bytes]):
    return re.compile(b"".join(seg), re.DOTALL)


@lru_cache(maxsize=512)
def _matcher(pattern: bytes, nocase: bool):
    """A function s -> bool. Without ``*``: one fixed-length regex. With
    ``*``s: the first segment anchored at the start, the last at the end,
    and each one between placed leftmost after the previous one (each
    segment has a fixed length, so the leftmost place is always the best):
    time linear in the segments, where a backtracking regex would take
    exponential time on patterns like ``a*a*a*...b`` (Redis's
    'Regression for pattern matching long nested loops')."""
    segs, starred = _segments(pattern, nocase)
    if not starred:
        whole = re.compile(b"".join(segs[0]) + b"\\Z", re.DOTALL).match
        return lambda s: whole(s) is not None
    first, last = segs[0], segs[-1]
    lf, ll = len(first), len(last)
    mf = _compile(first).match if first else None
    ml = _compile(last).match if last else None
    mids = [(_compile(g).search, len(g)) for g in segs[1:-1] if g]

    def m(s: bytes) -> bool:
        n = len(s)
        if lf + ll > n:
            return False
        if mf is not None and mf(s) is None:
            return False
        pos = lf
        stop = n - ll  # the middle segments end before the last one starts
        for search, k in mids:
            found = search(s, pos, stop)
            if found is None:
                return False
            pos = found.start() + k
        return ml is None or ml(s, stop) is not None

    return m


class Pattern:
    """A compiled pattern. ``match(s)`` returns True, or None for no match
    (so ``m.match(s) is not None`` reads like a regex match)."""

    __slots__ = ("pattern", "_m")

    def __init__(self, pattern: bytes, nocase: bool = False):
        self.pattern = pattern
        self._m = _matcher(pattern, nocase)

    def match(self, s: bytes):
        if not s:
            return True if not self.pattern else None
        return True if self._m(s) else None

    def __call__(self, s: bytes) -> bool:
        return self.match(s) is not None


@lru_cache(maxsize=512)
def compile_pattern(pattern: bytes, nocase: bool = False) -> Pattern:
    return Pattern(pattern, nocase)


def match(pattern: bytes, s: bytes, nocase: bool = False) -> bool:
    """stringmatchlen(pattern, s, nocase)."""
    return compile_pattern(pattern, nocase).match(s) is not None
