"""MEMORY USAGE's estimate (pure): what redis-server 7.0 (64-bit, jemalloc)
would allocate for the same key and value.

frtrio's own objects are Python objects, whose sizes say nothing a Redis
client could compare; so this models Redis's layout instead, following
object.c's objectComputeSize: the value's encoding (the one OBJECT ENCODING
reports), Redis's struct sizes, sds headers, listpack and intset byte
layouts, dict tables (power-of-two slots), and jemalloc's size classes for
every allocation. Aggregates are sampled as Redis does: the first
``samples`` elements, averaged, times the element count.
"""

from __future__ import annotations

from frtrio.protocol.parser import string2ll

ROBJ = 16
DICT_ENTRY = 24
DICT = 56
QUICKLIST = 40
QUICKLIST_NODE = 40
ZSET = 16
ZSKIPLIST = 32
ZSKIPLIST_NODE = 24  # + 16 a level
ZSKIPLIST_MAXLEVEL = 32
STREAM = 80
STREAM_CG = 56
STREAM_CONSUMER = 40
STREAM_NACK = 24
RAX_NODE = 4


def jemalloc_size(n: int) -> int:
    """The usable size jemalloc gives a request of ``n`` bytes."""
    if n <= 8:
        return 8
    if n <= 128:
        return (n + 15) & ~15
    p = 1 << ((n - 1).bit_length() - 1)  # the power of two below n
    step = p >> 2
    return (n + step - 1) // step * step


def sds_hdr(n: int, allow_type5: bool = True) -> int:
    if n < 32 and allow_type5 and n:
        return 1
    if n < 256:
        return 3
    if n < 65536:
        return 5
    if n < 1 << 32:
        return 9
    return 17


def sds_alloc(n: int, allow_type5: bool = True) -> int:
    """sdsZmallocSize of an sds of ``n`` bytes made by sdsnewlen."""
    return jemalloc_size(sds_hdr(n, allow_type5) + n + 1)


def dict_slots(n: int) -> int:
    """A dict sized for ``n`` entries at once: the smallest power of two
    >= n (4 at least)."""
    if n <= 4:
        return 4 if n else 0
    return 1 << (n - 1).bit_length()


def dict_slots_grown(n: int) -> int:
    """dictSlots of a dict that got its ``n`` entries one insert at a time:
    it doubles when full and rehashes one bucket an insert, so right after
    a doubling both tables count. (The old table's non-empty buckets are
    estimated from its load, as the hash function would spread them.)"""
    import math

    if n == 0:
        return 0
    size, old, left = 4, 0, 0
    for used in range(n):  # inserting entry number used+1
        if left:
            left -= 1
            if not left:
                old = 0
        if not old and used >= size:
            old = size
            left = max(1, round(size * (1 - math.exp(-used / size))))
            size = 1 << used.bit_length()  # the power of two >= used+1
    return size + old


# a skiplist node's expected allocation (levels: P(L) = 0.75 * 0.25**(L-1))
def _expected_znode() -> float:
    tot, p = 0.0, 0.75
    for lvl in range(1, 33):
        tot += p * jemalloc_size(24 + 16 * lvl)
        p *= 0.25
    return tot


# --- listpack / intset byte sizes ---------------------------------------------------


def _lp_int(v: int) -> int:
    if 0 <= v <= 127:
        return 1
    if -4096 <= v <= 4095:
        return 2
    if -32768 <= v <= 32767:
        return 3
    if -8388608 <= v <= 8388607:
        return 4
    if -2147483648 <= v <= 2147483647:
        return 5
    return 9


def _backlen(n: int) -> int:
    if n < 128:
        return 1
    if n < 16384:
        return 2
    if n < 2097152:
        return 3
    if n < 268435456:
        return 4
    return 5


def lp_entry(b: bytes) -> int:
    """Bytes one element takes in a listpack (encoding, data, backlen)."""
    n = len(b)
    v = string2ll(b) if n <= 20 else None
    if v is not None:
        e = _lp_int(v)
    elif n < 64:
        e = 1 + n
    elif n < 4096:
        e = 2 + n
    else:
        e = 5 + n
    return e + _backlen(e)


LP_HEADER = 6
LP_END = 1


def lp_bytes(elements) -> int:
    return LP_HEADER + LP_END + sum(lp_entry(e) for e in elements)


def intset_bytes(members) -> int:
    width = 2
    for m in members:
        v = string2ll(m)
        if not -32768 <= v <= 32767:
            if -2147483648 <= v <= 2147483647:
                width = max(width, 4)
            else:
                width = 8
                break
    return 8 + width * len(members)


def _score_bytes(score: float) -> bytes:
    """A score as a zset's listpack holds it (Redis's d2string: inf, -inf,
    integers in the exact range as integers, else %.17g)."""
    import math

    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if math.isnan(score):
        return b"nan"
    if score == int(score) and abs(score) < 1 << 52:
        return b"-0" if score == 0 and math.copysign(1.0, score) < 0 else b"%d" % int(score)
    return b"%.17g" % score


# --- the estimate ---------------------------------------------------------------------


def string_size(v: bytes, encoding: str) -> int:
    if encoding == "int":
        return ROBJ
    if encoding == "embstr":
        return jemalloc_size(ROBJ + 3 + len(v) + 1)
    return sds_alloc(len(v)) + ROBJ


def _sampled(total: int, sizes) -> float:
    sizes = list(sizes)
    if not sizes:
        return 0.0
    return sum(sizes) / len(sizes) * total


def list_size(items, samples: int, max_lp: int, packed_threshold: int = 1 << 30) -> int:
    """A quicklist: listpack nodes of at most ``max_lp`` bytes (the
    list-max-listpack-size limit), sampled node by node."""
    nodes = []
    cur = None
    count = 0
    for e in items:
        sz = len(e)
        if sz >= packed_threshold:
            nodes.append(jemalloc_size(sz))  # a plain node
            cur = None
            continue
        ent = lp_entry(e)
        if cur is not None and cur + sz + 8 <= max_lp:
            cur += ent
            count += 1
        else:
            if cur is not None:
                nodes.append(jemalloc_size(cur))
            cur = LP_HEADER + LP_END + ent
            count = 1
    if cur is not None:
        nodes.append(jemalloc_size(cur))
    asize = ROBJ + QUICKLIST
    if not nodes:
        return asize
    k = max(1, min(samples, len(nodes)))
    ele = sum(QUICKLIST_NODE + n for n in nodes[:k])
    return int(asize + ele / k * len(nodes))


_ZNODE = _expected_znode()


def usage(v, encoding: str, samples: int, packed_threshold: int = 1 << 30) -> int:
    """objectComputeSize for a frtrio value whose Redis encoding is
    ``encoding`` (OBJECT ENCODING's answer)."""
    if type(v) is bytes:
        return string_size(v, encoding)
    tn = v.type_name
    if tn == b"list":
        return list_size(v, samples, 8192, packed_threshold)
    if tn == b"set":
        if encoding == "intset":
            return ROBJ + jemalloc_size(intset_bytes(list(v)))
        n = len(v)
        asize = ROBJ + DICT + 8 * dict_slots_grown(n)
        sizes = []
        for m in v:
            if len(sizes) >= samples:
                break
            sizes.append(DICT_ENTRY + sds_alloc(len(m)))
        return int(asize + _sampled(n, sizes))
    if tn == b"hash":
        if encoding == "listpack":
            els = []
            for f, x in v.items():
                els.append(f)
                els.append(x)
            return ROBJ + jemalloc_size(lp_bytes(els))
        n = len(v)
        asize = ROBJ + DICT + 8 * dict_slots(n)
        sizes = []
        for f, x in v.items():
            if len(sizes) >= samples:
                break
            sizes.append(sds_alloc(len(f)) + sds_alloc(len(x)) + DICT_ENTRY)
        return int(asize + _sampled(n, sizes))
    if tn == b"zset":
        if encoding == "listpack":
            els = []
            for m, s in v.items():
                els.append(m)
                els.append(_score_bytes(s))
            return ROBJ + jemalloc_size(lp_bytes(els))
        n = len(v)
        asize = (ROBJ + ZSET + ZSKIPLIST + DICT + 8 * dict_slots_grown(n)
                 + jemalloc_size(ZSKIPLIST_NODE + 16 * ZSKIPLIST_MAXLEVEL))
        sizes = []
        for m, _ in v.items():
            if len(sizes) >= samples:
                break
            # (a node of the expected height: Redis draws it at random)
            sizes.append(sds_alloc(len(m)) + DICT_ENTRY + _ZNODE)
        return int(asize + _sampled(n, sizes))
    if tn == b"stream":
        return stream_size(v, samples)  # (node-max-bytes: the default)
    return ROBJ


def _rax_usage(numele: int) -> int:
    """streamRadixTreeMemoryUsage for a tree of ``numele`` 128-bit ids
    (about one node an element, plus the root)."""
    nodes = numele + 1 if numele else 1
    return numele * 16 + nodes * RAX_NODE + nodes * 8 * 30


def stream_size(s, samples: int, node_max_bytes: int = 4096) -> int:
    """A stream: its radix tree of listpack nodes (the newest one still
    holding its preallocation), and the consumer groups' PELs."""
    asize = ROBJ + STREAM
    nodes = s.nodes
    nn = len(nodes)
    asize += _rax_usage(nn)
    prealloc = 4096 if not 0 < node_max_bytes < 4096 else node_max_bytes
    sizes = [jemalloc_size(n.lp_bytes()) for n in nodes]
    if sizes:
        sizes[-1] = jemalloc_size(max(nodes[-1].lp_bytes(), prealloc))
        k = max(1, min(samples, nn))
        if nn <= k:
            asize += sum(sizes)
        else:
            asize += sum(sizes[:k]) // k * (nn - 1) + sizes[-1]
    for g in s.groups.values():
        asize += STREAM_CG + _rax_usage(len(g.pel)) + STREAM_NACK * len(g.pel)
        for name, cons in g.consumers.items():
            asize += STREAM_CONSUMER + len(name) + _rax_usage(len(cons.pel))
    return asize


def key_overhead(key: bytes, cluster: bool) -> int:
    """What MEMORY USAGE adds for the key itself: its sds, its dict entry,
    and in cluster mode the slot-to-keys links."""
    return sds_alloc(len(key)) + DICT_ENTRY + (16 if cluster else 0)
