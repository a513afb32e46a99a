"""The stream value type (pure), laid out as Redis 7.0 lays it out.

An ID is one int, ``ms << 64 | seq``, so that ID order is int order.

Entries live in nodes that mirror Redis's radix-tree nodes (one listpack
each): a node is keyed by its master ID (its first entry's ID), holds its
master fields, and keeps deleted entries as tombstones until the whole node
empties. Where a node ends (``stream-node-max-entries`` counting tombstones,
``stream-node-max-bytes`` of listpack) decides what approximate trimming
(``~``) may remove, so we track both the way Redis does, and the RDB codec
(``store.rdb_stream``) writes the nodes back as the same listpacks.

Consumer groups, their PEL and consumers follow t_stream.c; lists that Redis
keeps in radix trees (groups by name, consumers by name, PEL by ID) are dicts
here and are sorted where their order shows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from frtrio.store.listpack import lp_entry

U64 = (1 << 64) - 1
MAX_ID = (1 << 128) - 1
INVALID_ENTRIES_READ = -1
LISTPACK_MAX_SIZE = 1 << 30

FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2


def make_id(ms: int, seq: int) -> int:
    return (ms << 64) | seq


def id_str(i: int) -> bytes:
    return b"%d-%d" % (i >> 64, i & U64)


def _isz(n: int) -> int:
    """Listpack bytes of an integer entry."""
    if 0 <= n <= 127:
        return 2
    if -4096 <= n <= 4095:
        return 3
    if -32768 <= n <= 32767:
        return 4
    if -8388608 <= n <= 8388607:
        return 5
    if -(2**31) <= n < 2**31:
        return 6
    return 10


def _ssz(s: bytes) -> int:
    n = len(s)
    if n < 64 and not (n and n <= 20 and (s[0] <= 57 and (s[0] >= 48 or s[0] == 45))):
        return n + 2
    return len(lp_entry(s))


def _delta(a: int) -> int:
    """A 64-bit unsigned difference stored as the int64 listpack holds."""
    a &= U64
    return a - (1 << 64) if a >= 1 << 63 else a


class Node:
    __slots__ = ("master", "mfields", "ids", "vals", "dead", "live", "deleted", "ebytes")

    def __init__(self, master: int, mfields: tuple):
        self.master = master
        self.mfields = mfields
        self.ids: list[int] = []
        self.vals: list = []  # flat [f, v, f, v, ...] per entry
        self.dead: list[bool] = []
        self.live = 0
        self.deleted = 0
        self.ebytes = 0  # listpack bytes of the (non-master) entries

    def entry_size(self, i: int, flat) -> int:
        m = self.master
        n = len(flat) // 2
        same = tuple(flat[0::2]) == self.mfields
        sz = 2 + _isz(_delta((i >> 64) - (m >> 64))) + _isz(_delta((i & U64) - (m & U64)))
        if same:
            for v in flat[1::2]:
                sz += _ssz(v)
            cnt = n + 3
        else:
            sz += _isz(n)
            for x in flat:
                sz += _ssz(x)
            cnt = n + 3 + n + 1
        return sz + _isz(cnt)

    def lp_bytes(self) -> int:
        h = _isz(self.live) + _isz(self.deleted) + _isz(len(self.mfields)) + 2
        for f in self.mfields:
            h += _ssz(f)
        return 7 + h + self.ebytes

    def lp_elements(self) -> list[bytes]:
        """The listpack of this node, as Redis writes it (string elements;
        integers as their decimal form, which the listpack stores as ints)."""
        m = self.master
        mf = self.mfields
        out = [b"%d" % self.live, b"%d" % self.deleted, b"%d" % len(mf)]
        out.extend(mf)
        out.append(b"0")
        for i, flat, dead in zip(self.ids, self.vals, self.dead):
            n = len(flat) // 2
            same = tuple(flat[0::2]) == mf
            flags = (FLAG_DELETED if dead else 0) | (FLAG_SAMEFIELDS if same else 0)
            out.append(b"%d" % flags)
            out.append(b"%d" % _delta((i >> 64) - (m >> 64)))
            out.append(b"%d" % _delta((i & U64) - (m & U64)))
            if same:
                out.extend(flat[1::2])
                out.append(b"%d" % (n + 3))
            else:
                out.append(b"%d" % n)
                out.extend(flat)
                out.append(b"%d" % (n + 3 + n + 1))
        return out


class NACK:
    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, consumer, now: int):
        self.delivery_time = now
        self.delivery_count = 1
        self.consumer = consumer


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, now: int):
        self.name = name
        self.seen_time = now
        self.pel: dict[int, NACK] = {}


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: int, entries_read: int):
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: dict[int, NACK] = {}
        self.consumers: dict[bytes, Consumer] = {}

    def sorted_pel(self):
        return sorted(self.pel.items())

    def sorted_consumers(self):
        return [self.consumers[k] for k in sorted(self.consumers)]


class Stream:
    __slots__ = (
        "nodes",
        "masters",
        "length",
        "last_id",
        "first_id",
        "max_deleted",
        "entries_added",
        "groups",
    )
    type_name = b"stream"

    def __init__(self):
        self.nodes: list[Node] = []
        self.masters: list[int] = []
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:  # an empty stream is still a key
        return True

    # --- adding -----------------------------------------------------------

    def append(self, i: int, flat: list, max_bytes: int, max_entries: int) -> None:
        tot = 0
        for x in flat:
            tot += len(x)
        node = self.nodes[-1] if self.nodes else None
        if node is not None:
            mb = max_bytes
            if mb == 0 or mb > LISTPACK_MAX_SIZE:
                mb = LISTPACK_MAX_SIZE
            if node.lp_bytes() + tot >= mb:
                node = None
            elif max_entries and node.live + node.deleted >= max_entries:
                node = None
        if node is None:
            node = Node(i, tuple(flat[0::2]))
            self.nodes.append(node)
            self.masters.append(i)
        node.ids.append(i)
        node.vals.append(flat)
        node.dead.append(False)
        node.live += 1
        node.ebytes += node.entry_size(i, flat)
        self.length += 1
        self.entries_added += 1
        self.last_id = i
        if self.length == 1:
            self.first_id = i

    # --- reading ----------------------------------------------------------

    def range(self, start: int, end: int, rev: bool = False):
        """Live entries (id, flat) with start <= id <= end."""
        if start > end or not self.nodes:
            return
        masters = self.masters
        if not rev:
            ni = max(bisect_right(masters, start) - 1, 0)
            for node in self.nodes[ni:]:
                if node.master > end:
                    return
                ids = node.ids
                j = bisect_left(ids, start)
                dead = node.dead
                vals = node.vals
                while j < len(ids):
                    i = ids[j]
                    if i > end:
                        return
                    if not dead[j]:
                        yield i, vals[j]
                    j += 1
        else:
            ni = bisect_right(masters, end) - 1
            while ni >= 0:
                node = self.nodes[ni]
                ids = node.ids
                j = bisect_right(ids, end) - 1
                dead = node.dead
                vals = node.vals
                while j >= 0:
                    i = ids[j]
                    if i < start:
                        return
                    if not dead[j]:
                        yield i, vals[j]
                    j -= 1
                ni -= 1

    def _locate(self, i: int):
        ni = bisect_right(self.masters, i) - 1
        if ni < 0:
            return None, -1, -1
        node = self.nodes[ni]
        j = bisect_left(node.ids, i)
        if j < len(node.ids) and node.ids[j] == i and not node.dead[j]:
            return node, ni, j
        return None, -1, -1

    def get(self, i: int):
        node, _, j = self._locate(i)
        return None if node is None else node.vals[j]

    def exists(self, i: int) -> bool:
        return self._locate(i)[0] is not None

    def first_entry_id(self) -> int | None:
        for i, _ in self.range(0, MAX_ID):
            return i
        return None

    def last_valid_id(self) -> int:
        """streamLastValidID: the last live entry's ID (0-0 if none)."""
        for i, _ in self.range(0, MAX_ID, True):
            return i
        return 0

    # --- deleting ---------------------------------------------------------

    def _kill(self, node: Node, ni: int, j: int) -> None:
        if node.live == 1:
            del self.nodes[ni]
            del self.masters[ni]
        else:
            node.dead[j] = True
            node.live -= 1
            node.deleted += 1
        self.length -= 1

    def delete(self, i: int) -> bool:
        node, ni, j = self._locate(i)
        if node is None:
            return False
        self._kill(node, ni, j)
        return True

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """streamTrim: MAXLEN (``maxlen``) or MINID (``minid``)."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = self.nodes[0]
            entries = node.live
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = self.length - entries >= maxlen
            else:
                remove = node.ids[-1] < minid
            if remove:
                del self.nodes[0]
                del self.masters[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            for j, i in enumerate(node.ids):
                if maxlen is not None:
                    if self.length <= maxlen:
                        break
                elif i >= minid:
                    break
                if not node.dead[j]:
                    node.dead[j] = True
                    node.live -= 1
                    node.deleted += 1
                    self.length -= 1
                    deleted += 1
            break
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_entry_id()
        return deleted

    # --- facts for XINFO ----------------------------------------------------

    def rax_nodes(self) -> int:
        """How many nodes Redis's radix tree of 16-byte master keys has."""
        keys = [m.to_bytes(16, "big") for m in self.masters]
        if not keys:
            return 1

        def count(lo: int, hi: int, d: int) -> int:
            # keys[lo:hi] share their first d bytes; a node starts at depth d
            if hi - lo == 1:
                return 1 if d == 16 else 2
            # common prefix beyond d
            a, b = keys[lo], keys[hi - 1]
            p = d
            while a[p] == b[p]:
                p += 1
            n = 1 if p > d else 0
            # branching node at depth p
            n += 1
            i = lo
            while i < hi:
                ch = keys[i][p]
                k = i
                while k < hi and keys[k][p] == ch:
                    k += 1
                n += count(i, k, p + 1)
                i = k
            return n

        return count(0, len(keys), 0)


def range_has_tombstones(s: Stream, start: int | None, end: int | None) -> bool:
    if not s.length or s.max_deleted == 0:
        return False
    if s.first_id > s.max_deleted:
        return False
    a = 0 if start is None else start
    b = MAX_ID if end is None else end
    return a <= s.max_deleted <= b


def estimate_distance(s: Stream, i: int) -> int:
    """streamEstimateDistanceFromFirstEverEntry."""
    if not s.entries_added:
        return 0
    if not s.length and i <= s.last_id:
        return s.entries_added
    if i == s.last_id:
        return s.entries_added
    if i > s.last_id:
        return INVALID_ENTRIES_READ
    if s.max_deleted == 0 or s.max_deleted < s.first_id:
        if i < s.first_id:
            return s.entries_added - s.length
        if i == s.first_id:
            return s.entries_added - s.length + 1
    return INVALID_ENTRIES_READ


def group_lag(s: Stream, g: Group):
    """The lag XINFO reports, or None (a null) when it cannot be known."""
    if not s.entries_added:
        return 0
    if g.entries_read != INVALID_ENTRIES_READ and not range_has_tombstones(s, g.last_id, None):
        return s.entries_added - g.entries_read
    er = estimate_distance(s, g.last_id)
    if er != INVALID_ENTRIES_READ:
        return s.entries_added - er
    return None
