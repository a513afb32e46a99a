"""``ListValue``: the list type, a chain of chunks (Redis's quicklist idea).

A deque holds one pointer per element plus one Python ``bytes`` object per
element (about 50 bytes for a short one), against about 20 bytes an element
in Redis's quicklist of listpacks. So a list is kept here as a Python list of
chunks of at most ``CHUNK`` elements:

* the first and the last chunk are always *open*: plain Python lists, so
  pushes and pops at either end stay cheap (LPUSH, RPOP, LMOVE...);
* a chunk between them is *closed* once it is full: one ``marshal`` buffer
  of its elements, held as ``(count, buffer)``, about 5 bytes of overhead an
  element; it is opened again (decoded) only to be read or changed in the
  middle (LINDEX, LSET, LINSERT, LRANGE) or when it becomes an end.

Chunks whose elements are large (more than ``PACK_MAX`` bytes in all) are
left open: packing would save little and copy much, as Redis keeps big
elements in plain nodes.

The class offers the part of ``collections.deque``'s interface the commands
use (``append``, ``appendleft``, ``pop``, ``popleft``, ``extend``,
``extendleft``, ``clear``, ``insert``, ``index``, indexing, iteration both
ways, ``len``, ``in``) plus ``range(start, stop)`` and ``trim(left, right)``,
which skip whole chunks. Iteration order, replies and every observable
behaviour are those of a deque of the same elements.
"""

from __future__ import annotations

from marshal import dumps as _dumps, loads as _loads

CHUNK = 256  # elements per chunk (Redis: listpacks of up to 8 KiB)
PACK_MAX = 32768  # a chunk holding more bytes than this is not packed


def _close(ch: list):
    """A full chunk leaving an end: packed if its elements are small."""
    if sum(map(len, ch)) > PACK_MAX:
        return ch
    return (len(ch), _dumps(tuple(ch)))


def _items(ch):
    """A chunk's elements (a list or a tuple)."""
    return ch if type(ch) is list else _loads(ch[1])


def _count(ch) -> int:
    return len(ch) if type(ch) is list else ch[0]


class ListValue:
    __slots__ = ("_chunks", "_len")
    type_name = b"list"

    def __init__(self, items=()):
        items = list(items)
        n = self._len = len(items)
        if n <= CHUNK:
            self._chunks: list = [items]
            return
        chunks = [items[i:i + CHUNK] for i in range(0, n, CHUNK)]
        for k in range(1, len(chunks) - 1):
            chunks[k] = _close(chunks[k])
        self._chunks = chunks

    # --- size and comparison ---------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __eq__(self, other) -> bool:
        if isinstance(other, ListValue):
            return self._len == other._len and list(self) == list(other)
        try:
            return list(self) == list(other)
        except TypeError:
            return NotImplemented

    __hash__ = None  # mutable, as a deque

    def __repr__(self) -> str:
        return "ListValue(%r)" % (list(self),)

    def copy_value(self) -> "ListValue":
        """An independent copy (COPY): closed chunks are immutable, shared."""
        new = ListValue()
        new._chunks = [list(ch) if type(ch) is list else ch for ch in self._chunks]
        new._len = self._len
        return new

    # --- the ends ----------------------------------------------------------------

    def append(self, x) -> None:
        chunks = self._chunks
        t = chunks[-1]
        if len(t) >= CHUNK:
            chunks.append([x])
            if len(chunks) >= 3:
                chunks[-2] = _close(t)
        else:
            t.append(x)
        self._len += 1

    def appendleft(self, x) -> None:
        chunks = self._chunks
        h = chunks[0]
        if len(h) >= CHUNK:
            chunks.insert(0, [x])
            if len(chunks) >= 3:
                chunks[1] = _close(h)
        else:
            h.insert(0, x)
        self._len += 1

    def pop(self):
        if not self._len:
            raise IndexError("pop from an empty list")
        chunks = self._chunks
        t = chunks[-1]  # (an end chunk is never empty while the list is not)
        x = t.pop()
        self._len -= 1
        if not t and len(chunks) > 1:
            chunks.pop()
            last = chunks[-1]
            if type(last) is not list:
                chunks[-1] = list(_loads(last[1]))
        return x

    def popleft(self):
        if not self._len:
            raise IndexError("pop from an empty list")
        chunks = self._chunks
        h = chunks[0]
        x = h.pop(0)
        self._len -= 1
        if not h and len(chunks) > 1:
            del chunks[0]
            first = chunks[0]
            if type(first) is not list:
                chunks[0] = list(_loads(first[1]))
        return x

    def extend(self, items) -> None:
        append = self.append
        for x in items:
            append(x)

    def extendleft(self, items) -> None:
        appendleft = self.appendleft
        for x in items:
            appendleft(x)

    def clear(self) -> None:
        self._chunks = [[]]
        self._len = 0

    def trim(self, left: int, right: int) -> None:
        """Drop ``left`` elements from the head and ``right`` from the tail
        (LTRIM), whole chunks at a time where they fit."""
        if left + right >= self._len:
            self.clear()
            return
        chunks = self._chunks
        while left:
            n = _count(chunks[0])
            if n <= left:
                del chunks[0]
                left -= n
            else:
                h = list(_items(chunks[0]))
                del h[:left]
                chunks[0] = h
                left = 0
        while right:
            n = _count(chunks[-1])
            if n <= right:
                chunks.pop()
                right -= n
            else:
                t = list(_items(chunks[-1]))
                del t[len(t) - right:]
                chunks[-1] = t
                right = 0
        for i in (0, -1):
            if type(chunks[i]) is not list:
                chunks[i] = list(_loads(chunks[i][1]))
        self._len = sum(map(_count, chunks))

    # --- iteration ---------------------------------------------------------------

    def __iter__(self):
        for ch in self._chunks:
            yield from (ch if type(ch) is list else _loads(ch[1]))

    def __reversed__(self):
        for ch in reversed(self._chunks):
            yield from reversed(ch if type(ch) is list else _loads(ch[1]))

    def __contains__(self, x) -> bool:
        for ch in self._chunks:
            if x in (ch if type(ch) is list else _loads(ch[1])):
                return True
        return False

    def range(self, start: int, stop: int) -> list:
        """The elements start..stop-1 (0 <= start <= stop <= len), skipping
        the chunks before them."""
        out: list = []
        if start >= stop:
            return out
        pos = 0
        for ch in self._chunks:
            n = _count(ch)
            if pos + n > start:
                items = ch if type(ch) is list else _loads(ch[1])
                out.extend(items[max(0, start - pos):stop - pos])
                if pos + n >= stop:
                    break
            pos += n
        return out

    # --- the middle ----------------------------------------------------------------

    def _find(self, i: int) -> tuple[int, int]:
        """(chunk number, offset in it) of element ``i`` (0 <= i < len),
        walking from the nearer end."""
        chunks = self._chunks
        if i < self._len // 2:
            k = 0
            for ch in chunks:
                n = len(ch) if type(ch) is list else ch[0]
                if i < n:
                    return k, i
                i -= n
                k += 1
        else:
            j = self._len - 1 - i  # from the tail
            k = len(chunks)
            for ch in reversed(chunks):
                k -= 1
                n = len(ch) if type(ch) is list else ch[0]
                if j < n:
                    return k, n - 1 - j
                j -= n
        raise IndexError("list index out of range")

    def _index(self, i) -> int:
        if i < 0:
            i += self._len
        if i < 0 or i >= self._len:
            raise IndexError("list index out of range")
        return i

    def __getitem__(self, i):
        k, j = self._find(self._index(i))
        return _items(self._chunks[k])[j]

    def __setitem__(self, i, x) -> None:
        k, j = self._find(self._index(i))
        chunks = self._chunks
        ch = chunks[k]
        if type(ch) is list:
            ch[j] = x
        else:
            items = list(_loads(ch[1]))
            items[j] = x
            chunks[k] = _close(items)

    def index(self, x) -> int:
        pos = 0
        for ch in self._chunks:
            items = ch if type(ch) is list else _loads(ch[1])
            try:
                return pos + items.index(x)
            except ValueError:
                pos += len(items)
        raise ValueError("%r is not in list" % (x,))

    def insert(self, i: int, x) -> None:
        """deque.insert: before position i (clamped to the ends)."""
        n = self._len
        if i < 0:
            i = max(0, i + n)
        if i >= n:
            self.append(x)
            return
        if i == 0:
            self.appendleft(x)
            return
        k, j = self._find(i)
        chunks = self._chunks
        ch = chunks[k]
        items = ch if type(ch) is list else list(_loads(ch[1]))
        items.insert(j, x)
        self._len += 1
        end = k == 0 or k == len(chunks) - 1
        if len(items) > CHUNK:
            # split: an end keeps its open half at the outside
            half = len(items) // 2
            a, b = items[:half], items[half:]
            if k == 0:
                chunks[k:k + 1] = [a, _close(b) if len(chunks) > 1 else b]
            elif k == len(chunks) - 1:
                chunks[k:k + 1] = [_close(a), b]
            else:
                chunks[k:k + 1] = [_close(a), _close(b)]
        elif end:
            chunks[k] = items
        else:
            chunks[k] = _close(items)
