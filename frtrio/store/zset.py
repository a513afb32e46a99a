"""The sorted set value (pure).

A zset is a dict ``member -> score`` plus a ``SortedList`` of ``(score,
member)`` pairs: the order Redis keeps (score, then member bytes), with
O(log n) rank, insert, delete and range search.

Redis keeps small zsets in a listpack and big ones in a skiplist. The two
behave the same except in a few observable places, so the value remembers
which encoding Redis would have chosen (``encoding``) and the command layer
applies Redis's conversion rules:

* a listpack stores a score as its ``%.17g`` text, which loses the sign of
  zero: a listpack zset never holds ``-0``, a skiplist does;
* ZSCAN of a listpack returns everything in one call, in order, with cursor 0;
* OBJECT ENCODING.

Score bounds use the tuple trick: ``(s,)`` sorts before every ``(s, m)`` and
``(s, TOP)`` after every ``(s, m)``, so ``bisect`` finds score boundaries
without knowing any member.

For the persistence layer: ``items()`` yields ``(member, score)`` in order;
``from_items`` builds a value back; ``copy_value`` is a deep copy (COPY).
"""

from __future__ import annotations

import math
import zlib
from typing import Iterable, Iterator

from sortedcontainers import SortedList


class _Top:
    """Compares greater than any bytes (and equal only to itself)."""

    __slots__ = ()

    def __lt__(self, other):
        return False

    def __le__(self, other):
        return other is self

    def __gt__(self, other):
        return other is not self

    def __ge__(self, other):
        return True

    def __eq__(self, other):
        return other is self

    def __hash__(self):
        return 0

    def __repr__(self):
        return "TOP"


TOP = _Top()


class LexBound:
    """One end of a lex range: ``-`` (``MINUS``), ``+`` (``PLUS``) or a
    member with an exclusive flag."""

    __slots__ = ("value", "ex", "kind")

    def __init__(self, value: bytes | None, ex: bool, kind: int = 0):
        self.value = value
        self.ex = ex
        self.kind = kind  # -1 minus infinity, +1 plus infinity, 0 a value


MINUS = LexBound(None, True, -1)
PLUS = LexBound(None, True, 1)


def lex_cmp(a: LexBound, b: LexBound) -> int:
    """Redis's sdscmplex on two bounds (sentinels at the ends)."""
    if a is b:
        return 0
    if a.kind == -1 or b.kind == 1:
        return -1
    if a.kind == 1 or b.kind == -1:
        return 1
    return (a.value > b.value) - (a.value < b.value)


def lex_gte_min(m: bytes, lo: LexBound) -> bool:
    if lo.kind:
        return lo.kind < 0
    return m > lo.value if lo.ex else m >= lo.value


def lex_lte_max(m: bytes, hi: LexBound) -> bool:
    if hi.kind:
        return hi.kind > 0
    return m < hi.value if hi.ex else m <= hi.value


def _scan_hash(m: bytes) -> int:
    return zlib.crc32(m) + 1  # 1 .. 2**32, so 0 stays "start/done"


class ZSetValue:
    __slots__ = ("scores", "sl", "listpack", "_hidx")
    type_name = b"zset"

    def __init__(self, listpack: bool = True):
        self.scores: dict[bytes, float] = {}
        self.sl = SortedList()
        self.listpack = listpack
        self._hidx: SortedList | None = None  # (scan hash, member), built by ZSCAN

    # --- construction / copy -------------------------------------------------

    @classmethod
    def from_items(cls, pairs: Iterable, listpack: bool = True) -> "ZSetValue":
        """Build from (member, score) pairs (later duplicates win)."""
        z = cls(listpack)
        for m, s in pairs:
            z.set(m, s)
        return z

    def copy_value(self) -> "ZSetValue":
        z = ZSetValue(self.listpack)
        z.scores = dict(self.scores)
        z.sl = SortedList(self.sl)
        return z

    @property
    def encoding(self) -> bytes:
        return b"listpack" if self.listpack else b"skiplist"

    def to_listpack(self) -> None:
        """Convert to listpack encoding: scores round-trip through text, so
        a negative zero becomes zero."""
        if self.listpack:
            return
        self.listpack = True
        negz = [m for m, s in self.scores.items() if s == 0.0 and math.copysign(1.0, s) < 0]
        for m in negz:
            self.remove(m)
            self.set(m, 0.0)

    # --- basic access ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, m) -> bool:
        return m in self.scores

    def __iter__(self) -> Iterator[bytes]:
        for _s, m in self.sl:
            yield m

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) pairs in zset order."""
        for s, m in self.sl:
            yield m, s

    def get(self, m: bytes):
        return self.scores.get(m)

    def set(self, m: bytes, s: float) -> bool:
        """Insert or update; True if the member is new."""
        if self.listpack and s == 0.0:
            s = 0.0  # a listpack stores "0" for -0
        old = self.scores.get(m)
        if old is not None:
            if old == s:  # Redis updates only when the score compares different
                return False
            self.sl.remove((old, m))
            self.scores[m] = s
            self.sl.add((s, m))
            return False
        self.scores[m] = s
        self.sl.add((s, m))
        if self._hidx is not None:
            self._hidx.add((_scan_hash(m), m))
        return True

    def remove(self, m: bytes) -> bool:
        s = self.scores.pop(m, None)
        if s is None:
            return False
        self.sl.remove((s, m))
        if self._hidx is not None:
            self._hidx.remove((_scan_hash(m), m))
        return True

    def rank(self, m: bytes):
        s = self.scores.get(m)
        if s is None:
            return None
        return self.sl.index((s, m))

    def at(self, i: int) -> tuple[float, bytes]:
        return self.sl[i]

    def islice(self, start: int, stop: int, reverse: bool = False):
        """(score, member) pairs with index in [start, stop)."""
        return self.sl.islice(start, stop, reverse=reverse)

    def pop_at(self, i: int) -> tuple[float, bytes]:
        s, m = self.sl.pop(i)
        del self.scores[m]
        if self._hidx is not None:
            self._hidx.remove((_scan_hash(m), m))
        return s, m

    def delete_span(self, lo: int, hi: int) -> int:
        """Remove the elements with index in [lo, hi); their number."""
        if hi <= lo:
            return 0
        victims = list(self.sl.islice(lo, hi))
        for _s, m in victims:
            self.remove(m)
        return len(victims)

    # --- range searches ----------------------------------------------------------

    def score_span(self, lo: float, loex: bool, hi: float, hiex: bool) -> tuple[int, int]:
        """Index span [a, b) of the elements with score in the range."""
        if lo > hi or (lo == hi and (loex or hiex)):
            return 0, 0
        sl = self.sl
        a = sl.bisect_right((lo, TOP)) if loex else sl.bisect_left((lo,))
        b = sl.bisect_left((hi,)) if hiex else sl.bisect_right((hi, TOP))
        return (a, b) if a < b else (a, a)

    def _uniform(self) -> bool:
        sl = self.sl
        return not sl or sl[0][0] == sl[-1][0]

    def _lex_possible(self, lo: LexBound, hi: LexBound) -> bool:
        cmp = lex_cmp(lo, hi)
        if cmp > 0 or (cmp == 0 and (lo.ex or hi.ex)):
            return False
        sl = self.sl
        if not sl:
            return False
        return lex_gte_min(sl[-1][1], lo) and lex_lte_max(sl[0][1], hi)

    def lex_span(self, lo: LexBound, hi: LexBound) -> tuple[int, int]:
        """Index span of a lex range walked forward (ZRANGEBYLEX, ZLEXCOUNT,
        ZREMRANGEBYLEX). With all scores equal this is a binary search; with
        mixed scores Redis's result is only defined for its listpack walk:
        first element >= min, then on while <= max."""
        if not self._lex_possible(lo, hi):
            return 0, 0
        sl = self.sl
        n = len(sl)
        if self._uniform():
            s0 = sl[0][0]
            if lo.kind:
                a = 0 if lo.kind < 0 else n
            else:
                a = sl.bisect_right((s0, lo.value)) if lo.ex else sl.bisect_left((s0, lo.value))
            if hi.kind:
                b = n if hi.kind > 0 else 0
            else:
                b = sl.bisect_left((s0, hi.value)) if hi.ex else sl.bisect_right((s0, hi.value))
            return (a, b) if a < b else (a, a)
        a = 0
        while a < n and not lex_gte_min(sl[a][1], lo):
            a += 1
        b = a
        while b < n and lex_lte_max(sl[b][1], hi):
            b += 1
        return a, b

    def lex_span_rev(self, lo: LexBound, hi: LexBound) -> tuple[int, int]:
        """Like ``lex_span`` for a backward walk (ZREVRANGEBYLEX): last
        element <= max, then back while >= min. Same as lex_span when all
        scores are equal."""
        if self._uniform():
            return self.lex_span(lo, hi)
        if not self._lex_possible(lo, hi):
            return 0, 0
        sl = self.sl
        b = len(sl)
        while b > 0 and not lex_lte_max(sl[b - 1][1], hi):
            b -= 1
        a = b
        while a > 0 and lex_gte_min(sl[a - 1][1], lo):
            a -= 1
        return a, b

    # --- ZSCAN -------------------------------------------------------------------

    def scan(self, cursor: int, count: int) -> tuple[int, list[tuple[bytes, float]]]:
        """One ZSCAN step over a skiplist-encoded zset.

        Members are visited in order of a fixed hash (CRC-32 of the member);
        the cursor is the next hash to visit. A member present for the whole
        iteration is returned (its hash never changes and the cursor only
        grows); members with equal hashes come in one reply.
        """
        h = self._hidx
        if h is None:
            h = self._hidx = SortedList((_scan_hash(m), m) for m in self.scores)
        i = h.bisect_left((cursor,))
        out = []
        n = len(h)
        last = None
        while i < n:
            hv, m = h[i]
            if len(out) >= count and hv != last:
                return hv, out
            out.append((m, self.scores[m]))
            last = hv
            i += 1
        return 0, out
