"""The sorted set value (pure).

A zset is a dict ``member -> score`` (ZSCORE, membership) plus the members
in the order Redis keeps them (score, then member bytes), in one of two
forms:

* **compact** (while the zset is listpack-encoded): two parallel plain
  lists, ``_ss`` the scores and ``_ms`` the members, searched with
  ``bisect``. The score objects are the dict's own, so the order costs two
  pointers per member. A small zset used to carry a ``SortedList`` and one
  ``(score, member)`` tuple per member: about 1700 bytes for 10 members
  against about 900 now (``docs/performance.md``).
* **SortedList** of ``(score, member)`` tuples (skiplist-encoded, or more
  than ``COMPACT_MAX`` members): O(log n) rank, insert, delete and range
  search. A zset takes this form when Redis would convert it to a skiplist
  (``to_skiplist``) and back when a computed result fits a listpack
  (``to_listpack``).

Redis keeps small zsets in a listpack and big ones in a skiplist. The two
behave the same except in a few observable places, so the value remembers
which encoding Redis would have chosen (``encoding``) and the command layer
applies Redis's conversion rules:

* a listpack stores a score as its ``%.17g`` text, which loses the sign of
  zero: a listpack zset never holds ``-0``, a skiplist does;
* ZSCAN of a listpack returns everything in one call, in order, with cursor 0;
* OBJECT ENCODING.

In the SortedList form score bounds use the tuple trick: ``(s,)`` sorts before every ``(s, m)`` and
``(s, TOP)`` after every ``(s, m)``, so ``bisect`` finds score boundaries
without knowing any member.

For the persistence layer: ``items()`` yields ``(member, score)`` in order;
``from_items`` builds a value back; ``copy_value`` is a deep copy (COPY).
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_left, bisect_right
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


# A zset with more members than this is kept as a SortedList even while it is
# listpack-encoded (only a raised zset-max-listpack-entries lets that happen):
# inserting into one plain list moves every later pointer.
COMPACT_MAX = 1024


class ZSetValue:
    __slots__ = ("scores", "sl", "_ms", "_ss", "listpack", "_hidx")
    type_name = b"zset"

    def __init__(self, listpack: bool = True):
        self.scores: dict[bytes, float] = {}
        self.listpack = listpack
        self._hidx: SortedList | None = None  # (scan hash, member), built by ZSCAN
        if listpack:  # the compact form: two parallel plain lists
            self.sl: SortedList | None = None
            self._ms: list | None = []
            self._ss: list | None = []
        else:
            self.sl = SortedList()
            self._ms = self._ss = None

    # --- construction / copy / form -------------------------------------------

    @classmethod
    def from_items(cls, pairs: Iterable, listpack: bool = True) -> "ZSetValue":
        """Build from (member, score) pairs (later duplicates win, as
        ``set`` would have them: an equal score is not an update)."""
        z = cls(listpack)
        d = z.scores
        for m, s in pairs:
            if listpack and s == 0.0:
                s = 0.0
            old = d.get(m)
            if old is None or old != s:
                d[m] = s
        order = sorted(zip(d.values(), d.keys()))
        if listpack and len(order) <= COMPACT_MAX:
            z._ss = [s for s, _m in order]
            z._ms = [m for _s, m in order]
        else:
            z.sl = SortedList(order)
            z._ms = z._ss = None
        return z

    @classmethod
    def from_sorted_lists(cls, ms: list, ss: list) -> "ZSetValue":
        """The compact listpack form back from its two lists (members and
        scores in order, as ``store.db.pack`` saved them)."""
        z = cls.__new__(cls)
        z.scores = dict(zip(ms, ss))
        z.listpack = True
        z._hidx = z.sl = None
        z._ms = ms
        z._ss = ss
        return z

    def copy_value(self) -> "ZSetValue":
        z = ZSetValue(self.listpack)
        z.scores = dict(self.scores)
        if self.sl is None:
            z.sl = None
            z._ms = list(self._ms)
            z._ss = list(self._ss)
        else:
            z.sl = SortedList(self.sl)
            z._ms = z._ss = None
        return z

    @property
    def encoding(self) -> bytes:
        return b"listpack" if self.listpack else b"skiplist"

    def _to_sortedlist(self) -> None:
        if self.sl is None:
            self.sl = SortedList(zip(self._ss, self._ms))
            self._ms = self._ss = None

    def _to_compact(self) -> None:
        sl = self.sl
        if sl is not None and len(sl) <= COMPACT_MAX:
            self._ss = [s for s, _m in sl]
            self._ms = [m for _s, m in sl]
            self.sl = None

    def to_skiplist(self) -> None:
        """Redis converts the listpack to a skiplist (zsetConvert): the
        value takes its SortedList form."""
        self.listpack = False
        self._to_sortedlist()

    def to_listpack(self) -> None:
        """Convert to listpack encoding: scores round-trip through text, so
        a negative zero becomes zero."""
        if self.listpack:
            return
        self.listpack = True
        self._to_compact()
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
        if self.sl is None:
            return iter(self._ms)
        return (m for _s, m in self.sl)

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) pairs in zset order."""
        if self.sl is None:
            return zip(self._ms, self._ss)
        return ((m, s) for s, m in self.sl)

    def get(self, m: bytes):
        return self.scores.get(m)

    def _pos(self, s: float, m: bytes) -> int:
        """Compact form: the index of (s, m) in zset order (where it is, or
        where it would go)."""
        ss = self._ss
        a = bisect_left(ss, s)
        b = bisect_right(ss, s, a)
        if b - a < 2:
            if a == b or m <= self._ms[a]:
                return a
            return b
        return bisect_left(self._ms, m, a, b)

    def set(self, m: bytes, s: float) -> bool:
        """Insert or update; True if the member is new."""
        if self.listpack and s == 0.0:
            s = 0.0  # a listpack stores "0" for -0
        scores = self.scores
        old = scores.get(m)
        sl = self.sl
        if old is not None:
            if old == s:  # Redis updates only when the score compares different
                return False
            scores[m] = s
            if sl is None:
                ms, ss = self._ms, self._ss
                i = self._pos(old, m)
                del ms[i]
                del ss[i]
                i = self._pos(s, m)
                ms.insert(i, m)
                ss.insert(i, s)
            else:
                sl.remove((old, m))
                sl.add((s, m))
            return False
        scores[m] = s
        if sl is None:
            ss = self._ss
            if not ss or s > ss[-1]:  # (the common case: appended at the end)
                ss.append(s)
                self._ms.append(m)
            else:
                i = self._pos(s, m)
                ss.insert(i, s)
                self._ms.insert(i, m)
            if len(ss) > COMPACT_MAX:
                self._to_sortedlist()
        else:
            sl.add((s, m))
        if self._hidx is not None:
            self._hidx.add((_scan_hash(m), m))
        return True

    def remove(self, m: bytes) -> bool:
        s = self.scores.pop(m, None)
        if s is None:
            return False
        if self.sl is None:
            i = self._pos(s, m)
            del self._ms[i]
            del self._ss[i]
        else:
            self.sl.remove((s, m))
        if self._hidx is not None:
            self._hidx.remove((_scan_hash(m), m))
        return True

    def rank(self, m: bytes):
        s = self.scores.get(m)
        if s is None:
            return None
        if self.sl is None:
            return self._pos(s, m)
        return self.sl.index((s, m))

    def at(self, i: int) -> tuple[float, bytes]:
        if self.sl is None:
            return self._ss[i], self._ms[i]
        return self.sl[i]

    def islice(self, start: int, stop: int, reverse: bool = False):
        """(score, member) pairs with index in [start, stop)."""
        if self.sl is None:
            ss, ms = self._ss, self._ms
            if start == 0 and stop >= len(ss):  # (the whole zset: no copies)
                return zip(reversed(ss), reversed(ms)) if reverse else zip(ss, ms)
            if reverse:
                return zip(ss[start:stop][::-1], ms[start:stop][::-1])
            return zip(ss[start:stop], ms[start:stop])
        return self.sl.islice(start, stop, reverse=reverse)

    def pop_at(self, i: int) -> tuple[float, bytes]:
        if self.sl is None:
            s = self._ss.pop(i)
            m = self._ms.pop(i)
        else:
            s, m = self.sl.pop(i)
        del self.scores[m]
        if self._hidx is not None:
            self._hidx.remove((_scan_hash(m), m))
        return s, m

    def delete_span(self, lo: int, hi: int) -> int:
        """Remove the elements with index in [lo, hi); their number."""
        if hi <= lo:
            return 0
        if self.sl is None:
            victims = self._ms[lo:hi]
            del self._ms[lo:hi]
            del self._ss[lo:hi]
            scores, h = self.scores, self._hidx
            for m in victims:
                del scores[m]
                if h is not None:
                    h.remove((_scan_hash(m), m))
            return len(victims)
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
        if sl is None:
            ss = self._ss
            a = bisect_right(ss, lo) if loex else bisect_left(ss, lo)
            b = bisect_left(ss, hi) if hiex else bisect_right(ss, hi)
        else:
            a = sl.bisect_right((lo, TOP)) if loex else sl.bisect_left((lo,))
            b = sl.bisect_left((hi,)) if hiex else sl.bisect_right((hi, TOP))
        return (a, b) if a < b else (a, a)

    def _member_at(self):
        """A function: index -> member, for the walks below."""
        if self.sl is None:
            return self._ms.__getitem__
        sl = self.sl
        return lambda i: sl[i][1]

    def _uniform(self) -> bool:
        if self.sl is None:
            ss = self._ss
            return not ss or ss[0] == ss[-1]
        sl = self.sl
        return not sl or sl[0][0] == sl[-1][0]

    def _lex_possible(self, lo: LexBound, hi: LexBound) -> bool:
        cmp = lex_cmp(lo, hi)
        if cmp > 0 or (cmp == 0 and (lo.ex or hi.ex)):
            return False
        if not self.scores:
            return False
        mat = self._member_at()
        return lex_gte_min(mat(-1), lo) and lex_lte_max(mat(0), hi)

    def lex_span(self, lo: LexBound, hi: LexBound) -> tuple[int, int]:
        """Index span of a lex range walked forward (ZRANGEBYLEX, ZLEXCOUNT,
        ZREMRANGEBYLEX). With all scores equal this is a binary search; with
        mixed scores Redis's result is only defined for its listpack walk:
        first element >= min, then on while <= max."""
        if not self._lex_possible(lo, hi):
            return 0, 0
        n = len(self.scores)
        if self._uniform():
            sl = self.sl
            if sl is None:
                ms = self._ms

                def left(v):
                    return bisect_left(ms, v)

                def right(v):
                    return bisect_right(ms, v)
            else:
                s0 = sl[0][0]

                def left(v):
                    return sl.bisect_left((s0, v))

                def right(v):
                    return sl.bisect_right((s0, v))
            if lo.kind:
                a = 0 if lo.kind < 0 else n
            else:
                a = right(lo.value) if lo.ex else left(lo.value)
            if hi.kind:
                b = n if hi.kind > 0 else 0
            else:
                b = left(hi.value) if hi.ex else right(hi.value)
            return (a, b) if a < b else (a, a)
        mat = self._member_at()
        a = 0
        while a < n and not lex_gte_min(mat(a), lo):
            a += 1
        b = a
        while b < n and lex_lte_max(mat(b), hi):
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
        mat = self._member_at()
        b = len(self.scores)
        while b > 0 and not lex_lte_max(mat(b - 1), hi):
            b -= 1
        a = b
        while a > 0 and lex_gte_min(mat(a - 1), lo):
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
