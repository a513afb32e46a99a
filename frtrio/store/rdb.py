"""RDB object serialization (pure): the DUMP / RESTORE payload format, and
the objects of RDB files.

A DUMP payload is one RDB-serialized value followed by a 10-byte footer::

    <type byte> <object> <RDB version: 2 bytes LE> <CRC64-Jones: 8 bytes LE>

where the CRC covers everything before it. Redis 7.0 writes RDB version 10
and refuses payloads whose version is higher. This module reads every object
encoding a Redis of RDB version <= 10 writes (plain strings, int-encoded and
LZF-compressed strings; linked/ziplist/quicklist/quicklist-of-listpack
lists; plain and intset sets; plain, zipmap, ziplist and listpack hashes;
plain (string or binary scores), ziplist and listpack sorted sets), and
writes what Redis 7.0 writes for the same data, so that payloads move both
ways between frtrio and redis-server:

* strings: integer encoding for short canonical integers, LZF when
  ``rdbcompression`` is on and it pays, raw otherwise (LZF is pure Python
  here, so one object gets at most ``LZF_BUDGET`` bytes of compression work
  and a long string whose first 32 KiB do not compress is stored raw; past
  that the payload is larger than Redis's, and loads the same);
* lists: a quicklist of listpacks (type 18), nodes split as Redis 7.0 fills
  them when the list is built by appends (``list-max-listpack-size``);
* sets: intset (type 11) when every member is an integer and there are at
  most ``set-max-intset-entries``, else the plain encoding (type 2);
* hashes and sorted sets: a listpack (types 16, 17) under the
  ``*-max-listpack-entries`` / ``*-max-listpack-value`` limits, else the plain
  encodings (type 4; type 5 with binary scores, greatest first, as Redis).

Redis picks an encoding from a value's history (a hash that once grew big
stays a hashtable); frtrio picks it from the current content (sorted sets:
from the encoding ``store/zset.py`` tracks). Either choice loads correctly on
both sides. Within those choices the bytes are Redis's (same listpacks, node
splits, LZF parse), so a DUMP of the same data is byte-identical unless Redis
iterates a hash table.

Reading follows Redis's RESTORE: the reader may run into the 10-byte footer
(Redis reads from the whole buffer), and a loaded sorted set becomes a
listpack or skiplist as Redis converts after loading.

The encodings inside objects have a module each: ``crc64``, ``lzf``,
``listpack``, ``ziplist``, ``zipmap``, ``intset``; strings, lengths and
doubles are ``rdb_strings``; type bytes and ``RdbError`` ``rdb_format``.

Format facts come from the RDB, listpack, ziplist, intset and LZF format
descriptions (Redis documentation and source, read for the formats only).
"""

from __future__ import annotations

import math

from frtrio.protocol.parser import string2ll
from frtrio.store.crc64 import crc64
from frtrio.store.db import HashValue, ListValue, SetValue, set_is_ht
from frtrio.store.intset import intset_build, intset_members
from frtrio.store.listpack import lp_build, lp_entries, lp_entry, lp_from_entries, lp_score
from frtrio.store.rdb_format import (
    QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, RDB_VERSION, T_HASH, T_HASH_LISTPACK,
    T_HASH_ZIPLIST, T_HASH_ZIPMAP, T_LIST, T_LIST_QUICKLIST, T_LIST_QUICKLIST_2, T_LIST_ZIPLIST,
    T_SET, T_SET_INTSET, T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STRING, T_ZSET, T_ZSET_2,
    T_ZSET_LISTPACK, T_ZSET_ZIPLIST, RdbError,
)
from frtrio.store.rdb_strings import (
    LZF_BUDGET, Reader, enc_binary_double, enc_len, enc_string, load_double_text,
)
from frtrio.store.ziplist import zl_entries
from frtrio.store.zipmap import zipmap_entries


def _make_zset(pairs: list[tuple[bytes, float]], listpack: bool):
    """A sorted-set value from (member, score) pairs (members are unique)."""
    from frtrio.store.zset import ZSetValue

    return ZSetValue.from_items(pairs, listpack=listpack)


def _zset_pairs(z) -> list[tuple[bytes, float]]:
    """(member, score) pairs in ascending (score, member) order."""
    items = list(z.items())
    ok = True
    for i in range(1, len(items)):
        a, b = items[i - 1], items[i]
        if a[1] > b[1] or (a[1] == b[1] and a[0] > b[0]):
            ok = False
            break
    if not ok:
        items.sort(key=lambda p: (p[1], p[0]))
    return items


class Limits:
    """The configuration that decides which encoding a value is saved in."""

    __slots__ = ("compress", "list_fill", "hash_entries", "hash_value", "zset_entries",
                 "zset_value", "intset_entries", "packed_threshold", "deep")

    def __init__(self, compress=True, list_fill=-2, hash_entries=512, hash_value=64,
                 zset_entries=128, zset_value=64, intset_entries=512,
                 packed_threshold=1 << 30):
        self.compress = compress
        self.list_fill = list_fill
        self.hash_entries = hash_entries
        self.hash_value = hash_value
        self.zset_entries = zset_entries
        self.zset_value = zset_value
        self.intset_entries = intset_entries
        self.packed_threshold = packed_threshold
        # sanitize-dump-payload's deep checks: a RESTORE without them skips
        # what Redis checks only then (a stream entry's lp-count)
        self.deep = True

    @classmethod
    def from_config(cls, cfg) -> "Limits":
        g = cfg.get_int
        return cls(
            compress=cfg.get("rdbcompression") == "yes",
            list_fill=g("list-max-listpack-size"),
            hash_entries=g("hash-max-listpack-entries"),
            hash_value=g("hash-max-listpack-value"),
            zset_entries=g("zset-max-listpack-entries"),
            zset_value=g("zset-max-listpack-value"),
            intset_entries=g("set-max-intset-entries"),
            packed_threshold=getattr(cfg, "ql_packed_threshold", _QL_PACKED_THRESHOLD),
        )


DEFAULT_LIMITS = Limits()

# quicklist: size limits for negative list-max-listpack-size values
_QL_SIZE_LEVELS = (4096, 8192, 16384, 32768, 65536)
_QL_SAFETY_LIMIT = 8192
_QL_PACKED_THRESHOLD = 1 << 30
_QL_SIZE_ESTIMATE_OVERHEAD = 8


def _quicklist_nodes(items, fill: int,
                     packed_threshold: int = 1 << 30) -> list[tuple[int, list[bytes]]]:
    """Split list elements into quicklist nodes the way Redis 7.0.15 fills
    them when the list is built by RPUSH (an element joins the tail node if
    node size + element length + 8 stays within the limit): (container,
    [element]) for a plain node, (container, [listpack entry bytes]) for a
    packed one."""
    nodes: list[tuple[int, list[bytes]]] = []
    cur: list[bytes] = []
    cur_sz = 0
    if fill < 0:
        lvl = -fill - 1
        size_limit = _QL_SIZE_LEVELS[lvl] if lvl < len(_QL_SIZE_LEVELS) else _QL_SIZE_LEVELS[-1]
    else:
        size_limit = None
        count_limit = max(fill, 1)
    overhead = _QL_SIZE_ESTIMATE_OVERHEAD
    packed = QUICKLIST_NODE_PACKED
    for e in items:
        sz = len(e)
        if sz >= packed_threshold:
            if cur:
                nodes.append((packed, cur))
                cur = []
            nodes.append((QUICKLIST_NODE_PLAIN, [e]))
            continue
        if cur:
            new_sz = cur_sz + sz + overhead
            if size_limit is not None:
                allow = new_sz <= size_limit
            else:
                allow = new_sz <= _QL_SAFETY_LIMIT and len(cur) < count_limit
            if not allow:
                nodes.append((packed, cur))
                cur = []
        if not cur:
            cur_sz = 7  # empty listpack: header + terminator
        enc = lp_entry(e)
        cur.append(enc)
        cur_sz += len(enc)
    if cur:
        nodes.append((packed, cur))
    return nodes


def encode_object(v, lim: Limits = DEFAULT_LIMITS) -> bytes:
    """``<type byte><object>`` for a value, as Redis 7.0's rdbSaveObject.

    Pure-Python LZF is slow (about 1 s per MB in the worst case), so one
    object gets at most LZF_BUDGET bytes of compression attempts; strings
    past the budget are stored raw (a valid payload, larger than Redis's)."""
    budget = [LZF_BUDGET if lim.compress else 0]

    def es(s: bytes) -> bytes:
        n = len(s)
        if n <= 20 or budget[0] <= 0:
            return enc_string(s, False)
        budget[0] -= n
        return enc_string(s, True)

    if type(v) is bytes:
        return bytes((T_STRING,)) + es(v)
    tn = v.type_name
    if tn == b"list":
        nodes = _quicklist_nodes(v, lim.list_fill, lim.packed_threshold)
        parts = [bytes((T_LIST_QUICKLIST_2,)), enc_len(len(nodes))]
        for container, elems in nodes:
            parts.append(enc_len(container))
            if container == QUICKLIST_NODE_PLAIN:
                parts.append(es(elems[0]))
            else:
                parts.append(es(lp_from_entries(elems)))
        return b"".join(parts)
    if tn == b"set":
        n = len(v)
        if 0 < n <= lim.intset_entries and not set_is_ht(v):
            ints = []
            for m in v:
                x = string2ll(m)
                if x is None:
                    ints = None
                    break
                ints.append(x)
            if ints is not None:
                return bytes((T_SET_INTSET,)) + es(intset_build(ints))
        parts = [bytes((T_SET,)), enc_len(n)]
        for m in v:
            parts.append(es(m))
        return b"".join(parts)
    if tn == b"hash":
        n = len(v)
        hv = lim.hash_value
        if n <= lim.hash_entries and all(len(f) <= hv and len(x) <= hv for f, x in v.items()):
            flat = []
            for f, x in v.items():
                flat.append(f)
                flat.append(x)
            return bytes((T_HASH_LISTPACK,)) + es(lp_build(flat))
        parts = [bytes((T_HASH,)), enc_len(n)]
        for f, x in v.items():
            parts.append(es(f))
            parts.append(es(x))
        return b"".join(parts)
    if tn == b"zset":
        pairs = _zset_pairs(v)
        n = len(pairs)
        zv = lim.zset_value
        lp = getattr(v, "listpack", None)  # the encoding Redis would have
        if lp is None:
            lp = n <= lim.zset_entries and all(len(m) <= zv for m, _ in pairs)
        if lp:
            flat = []
            for m, s in pairs:
                flat.append(m)
                flat.append(lp_score(s))
            return bytes((T_ZSET_LISTPACK,)) + es(lp_build(flat))
        parts = [bytes((T_ZSET_2,)), enc_len(n)]
        for m, s in reversed(pairs):
            parts.append(es(m))
            parts.append(enc_binary_double(s))
        return b"".join(parts)
    if tn == b"stream":
        from frtrio.store.rdb_stream import encode_stream  # (imports this module)

        return encode_stream(v, es)
    raise RdbError("cannot serialize a %r value" % tn)


def dump_payload(v, lim: Limits = DEFAULT_LIMITS) -> bytes:
    """The DUMP payload of a value."""
    body = encode_object(v, lim) + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def verify_payload(p: bytes, check_crc: bool = True) -> bool:
    """Redis's verifyDumpPayload: footer present, version <= ours, CRC ok."""
    if len(p) < 10:
        return False
    ver = p[-10] | (p[-9] << 8)
    if ver > RDB_VERSION:
        return False
    if not check_crc:
        return True
    return crc64(p[:-8]) == int.from_bytes(p[-8:], "little")


def _score(s: bytes) -> float:
    """A score stored as a string in a ziplist/listpack zset."""
    x = load_double_text(s)
    if math.isnan(x):
        raise RdbError("Zset with NAN score detected")
    return x


def _unique_dict(cls, items, what: str):
    d = cls()
    for k in items:
        if k in d:
            raise RdbError("Duplicate %s detected" % what)
        d[k] = None
    return d


def _hash_from_flat(flat: list[bytes]) -> HashValue:
    if len(flat) % 2:
        raise RdbError("Hash with odd number of entries")
    h = HashValue()
    for i in range(0, len(flat), 2):
        f = flat[i]
        if f in h:
            raise RdbError("Duplicate hash fields detected")
        h[f] = flat[i + 1]
    if not h:
        raise RdbError("Empty keys")
    return h


def _zset_from_flat(flat: list[bytes], lim: Limits):
    if len(flat) % 2:
        raise RdbError("Zset with odd number of entries")
    pairs = []
    seen: dict = {}
    for i in range(0, len(flat), 2):
        m = flat[i]
        if m in seen:
            raise RdbError("Duplicate zset fields detected")
        seen[m] = None
        pairs.append((m, _score(flat[i + 1])))
    if not pairs:
        raise RdbError("Empty keys")
    return _make_zset(pairs, len(pairs) <= lim.zset_entries)


def _checked(parse, blob: bytes, what: str):
    """Parse a packed blob (ziplist, listpack, intset, zipmap); a malformed
    one fails with Redis's words for its kind ("Hash ziplist integrity check
    failed.")."""
    try:
        return parse(blob)
    except RdbError:
        raise RdbError("%s integrity check failed." % what) from None


def _packed(build, parse, blob: bytes, what: str):
    """A hash or sorted set stored as one packed blob: Redis's deep check
    validates the pairs with the blob (an odd count, a duplicate field or a
    NaN score fail it too); an empty one is reported as such."""
    flat = _checked(parse, blob, what)
    if not flat:
        raise RdbError("Empty keys")
    try:
        return build(flat)
    except RdbError:
        raise RdbError("%s integrity check failed." % what) from None


def decode_object(r: Reader, t: int, lim: Limits = DEFAULT_LIMITS):
    """Read one object of type ``t`` (rdbLoadObject). ``lim`` decides the
    encoding a loaded sorted set gets, as Redis converts after loading."""
    if t == T_STRING:
        return r.string()
    if t == T_LIST:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        return ListValue(r.string() for _ in range(n))
    if t == T_SET:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        s = SetValue()
        for _ in range(n):
            m = r.string()
            if m in s:
                raise RdbError("Duplicate set members detected")
            s[m] = None
        return s
    if t in (T_ZSET, T_ZSET_2):
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        pairs = []
        seen: dict = {}
        for _ in range(n):
            m = r.string()
            sc = r.binary_double() if t == T_ZSET_2 else r.string_double()
            if math.isnan(sc):
                raise RdbError("Zset with NAN score detected")
            if m in seen:
                raise RdbError("Duplicate zset fields detected")
            seen[m] = None
            pairs.append((m, sc))
        lp = n <= lim.zset_entries and max(len(m) for m, _ in pairs) <= lim.zset_value
        return _make_zset(pairs, lp)
    if t == T_HASH:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        h = HashValue()
        for _ in range(n):
            f = r.string()
            v = r.string()
            if f in h:
                raise RdbError("Duplicate hash fields detected")
            h[f] = v
        return h
    if t == T_LIST_QUICKLIST or t == T_LIST_QUICKLIST_2:
        n = r.plain_length()
        lst = ListValue()
        for _ in range(n):
            container = QUICKLIST_NODE_PACKED
            if t == T_LIST_QUICKLIST_2:
                container = r.plain_length()
                if container not in (QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED):
                    raise RdbError("Quicklist integrity check failed")
            blob = r.string()
            if not blob:
                raise RdbError("Quicklist node is empty")
            if container == QUICKLIST_NODE_PLAIN:
                lst.append(blob)
            elif t == T_LIST_QUICKLIST:
                lst.extend(_checked(zl_entries, blob, "Ziplist"))
            else:
                lst.extend(_checked(lp_entries, blob, "Listpack"))
        if not lst:
            raise RdbError("Empty keys")
        return lst
    if t == T_LIST_ZIPLIST:
        items = _checked(zl_entries, r.string(), "List ziplist")
        if not items:
            raise RdbError("Empty keys")
        return ListValue(items)
    if t == T_SET_INTSET:
        members = _checked(intset_members, r.string(), "Intset")
        if not members:
            raise RdbError("Empty keys")
        return _unique_dict(SetValue, members, "set members")
    if t == T_HASH_ZIPMAP:
        flat = _checked(zipmap_entries, r.string(), "Zipmap")
        if not flat:  # (Redis's zipmap check refuses an empty one)
            raise RdbError("Zipmap integrity check failed.")
        return _hash_from_flat(flat)
    if t == T_HASH_ZIPLIST:
        return _packed(_hash_from_flat, zl_entries, r.string(), "Hash ziplist")
    if t == T_HASH_LISTPACK:
        return _packed(_hash_from_flat, lp_entries, r.string(), "Hash listpack")
    if t == T_ZSET_ZIPLIST:
        return _packed(lambda f: _zset_from_flat(f, lim), zl_entries, r.string(), "Zset ziplist")
    if t == T_ZSET_LISTPACK:
        return _packed(lambda f: _zset_from_flat(f, lim), lp_entries, r.string(),
                       "Zset listpack")
    if t == T_STREAM_LISTPACKS or t == T_STREAM_LISTPACKS_2:
        from frtrio.store.rdb_stream import decode_stream  # (imports this module)

        return decode_stream(r, t, lim.deep)
    raise RdbError("Unknown RDB encoding type %d" % t)


def load_payload(p: bytes, lim: Limits = DEFAULT_LIMITS):
    """The value inside a DUMP payload (footer already verified)."""
    r = Reader(p)  # Redis reads through the footer too: a string may run into it
    t = r.byte()
    return decode_object(r, t, lim)
