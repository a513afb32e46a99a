"""The keyspace: databases, values, expiry (pure; time is passed in).

Keys are ``bytes``. Values are Python objects whose type names the Redis type:

* ``bytes``              -> string
* ``ListValue`` (store.quicklist: chunks, packed between the ends) -> list
* ``HashValue`` (dict)   -> hash
* ``SetValue`` (dict of member -> None, insertion-ordered so that iteration
  never depends on PYTHONHASHSEED) -> set
* ``ZSetValue``          -> zset (defined in ``store.zset``)

Expiry times are absolute unix milliseconds in ``Db.expires``. Expired keys
are removed lazily on access (``lookup``) and by the active expire cycle
(``active_expire``), both driven by the ``now_ms`` the caller passes in.

The Db maintains a per-slot key index, so that ``CLUSTER COUNTKEYSINSLOT`` /
``GETKEYSINSLOT`` never scan the keyspace; SCAN walks it too, which gives SCAN
Redis's guarantee (a key present for the whole iteration is returned).
"""

from __future__ import annotations

from array import array as _array
from marshal import dumps as _dumps, loads as _loads
from math import copysign as _copysign
from typing import Callable

from binascii import crc_hqx

from frtrio.cluster.slots import key_slot
from frtrio.core.evict import key_cost, key_overhead, value_cost
from frtrio.protocol.parser import string2ll
from frtrio.store.quicklist import ListValue  # noqa: F401  (the list type)
from frtrio.store.zset import ZSetValue


class HashValue(dict):
    __slots__ = ()
    type_name = b"hash"


class SetValue(dict):
    """A set: members are the dict's keys (values are None).

    ``ht`` (unset until then): SADD/SMOVE gave it a member that is not an
    integer, or more members than ``set-max-intset-entries``: Redis converted
    it to a hash table then, and never converts back, whatever SREM leaves
    (OBJECT ENCODING and the iteration order follow). Sets built whole
    (stores, RESTORE) are judged by their content, as Redis builds them."""

    __slots__ = ("ht",)
    type_name = b"set"


def set_is_ht(s) -> bool:
    try:
        return s.ht
    except AttributeError:
        return False


def set_added(s, members, limit: int) -> None:
    """Members were just added to set ``s``: note a conversion to a hash
    table, as Redis's setTypeAdd makes it."""
    if set_is_ht(s):
        return
    if len(s) > limit:
        s.ht = True
        return
    for m in members:
        if string2ll(m) is None:
            s.ht = True
            return


# --- small aggregates at rest: packed ---------------------------------------------
#
# A small hash, list or (listpack) zset that no command used for a while is
# kept in ``Db.data`` as one immutable bytes object (marshal of its
# elements, in order), as Redis keeps it in one listpack: 10 short fields
# cost one buffer instead of a dict and 20 bytes objects. ``Db.lookup`` and
# ``Db.peek`` turn it back into the ordinary value (and put that in
# ``data``) before a command sees it; the server cron packs again the keys
# that were unpacked or written at least one cron period ago and are still
# small (``Db.pack_idle``). Code that reads ``Db.data`` directly (RDB, AOF
# rewrite, DEBUG DIGEST, snapshots) goes through ``unpacked``. Packing
# changes nothing a client sees: order, encoding, accounting (a packed
# value's ``len`` is its element count, so ``value_cost`` charges it as the
# value it was packed from; it has no ``Db.agg`` entry while packed) stay
# the same.

PACK_MAX_LEN = 128  # elements (Redis's default *-max-listpack-entries)
PACK_MAX_BYTES = 16384  # the packed form's size


class _Packed(bytes):
    """A packed value. Byte 0: the number of elements (its ``len``, so that
    ``evict.value_cost`` charges it as the value it stands for: a packed key
    needs no ``Db.agg`` entry); then the value's data."""

    __slots__ = ()

    def __len__(self) -> int:
        return self[0]


class PackedHash(_Packed):
    """A HashValue at rest: the ``marshal`` data of the dict (insertion
    order kept)."""

    __slots__ = ()
    type_name = b"hash"


class PackedList(_Packed):
    """A ListValue at rest: the ``marshal`` data of the tuple of its
    elements."""

    __slots__ = ()
    type_name = b"list"


class PackedZSet(_Packed):
    """A compact, listpack-encoded ZSetValue at rest, members in order. Byte
    1: the typecode of the scores' ``array`` (b, h, i: all scores integral;
    d) when every member is shorter than 256 bytes, then the members'
    lengths (one byte each), the scores, the members one after the other
    (about what a listpack holds: 10 members cost 170 bytes where marshal
    of the two lists took 290); else 0 and the ``marshal`` data of the
    (members, scores) lists."""

    __slots__ = ()
    type_name = b"zset"


def _unpack_hash(p) -> HashValue:
    return HashValue(_loads(p[1:]))


def _unpack_list(p) -> ListValue:
    return ListValue(_loads(p[1:]))


def _unpack_zset(p) -> ZSetValue:
    tc = p[1]
    if not tc:
        ms, ss = _loads(p[2:])
        return ZSetValue.from_sorted_lists(ms, list(map(float, ss)))
    n = p[0]
    a = 2 + n
    b = a + n * _ITEMSIZE[tc]
    sc = _array(chr(tc), p[a:b])
    ss = sc.tolist() if tc == 100 else list(map(float, sc))  # (100: "d")
    ms = []
    ap = ms.append
    for ln in p[2:a]:
        e = b + ln
        ap(p[b:e])
        b = e
    return ZSetValue.from_sorted_lists(ms, ss)


_ITEMSIZE = {ord(tc): _array(tc).itemsize for tc in "bhid"}


def _small_int(s: float):
    """An integral score as an int (``float`` gives it back exactly; not
    -0.0), else the score."""
    if s.is_integer() and -2147483648.0 < s < 2147483648.0 and (s or _copysign(1.0, s) > 0):
        return int(s)
    return s


def _pack_zset(v) -> bytes:
    n = len(v)
    ms = v._ms
    try:
        lens = bytes(map(len, ms))
        data = b"".join(ms)
    except (ValueError, TypeError):  # (a member of 256 bytes or more)
        return b"%c\0%s" % (n, _dumps((ms, list(map(_small_int, v._ss))), 2))
    ints = list(map(_small_int, v._ss))
    if all(type(x) is int for x in ints):
        lo, hi = min(ints), max(ints)
        tc = "b" if -128 <= lo and hi < 128 else "h" if -32768 <= lo and hi < 32768 else "i"
        sb = _array(tc, ints).tobytes()
    else:
        tc = "d"
        sb = _array(tc, v._ss).tobytes()
    return b"%c%c%s%s%s" % (n, ord(tc), lens, sb, data)


_UNPACK = {PackedHash: _unpack_hash, PackedList: _unpack_list, PackedZSet: _unpack_zset}


def unpacked(v):
    """``v`` as a value (a packed one unpacked: a new object, not stored)."""
    u = _UNPACK.get(type(v))
    return v if u is None else u(v)


def is_packed(v) -> bool:
    return type(v) in _UNPACK


def pack(v):
    """The packed form of a small hash, list or listpack zset, or None."""
    t = type(v)
    n = len(v)
    if n > PACK_MAX_LEN:
        return None
    try:
        if t is HashValue:
            cls = PackedHash
            b = b"%c%s" % (n, _dumps(dict(v), 2))
        elif t is ListValue:
            cls = PackedList
            b = b"%c%s" % (n, _dumps(tuple(v), 2))
        elif t is ZSetValue:
            if not v.listpack or v.sl is not None or v._ms is None or v._hidx is not None:
                return None
            cls = PackedZSet
            b = _pack_zset(v)
        else:
            return None
    except ValueError:  # (an element marshal cannot write: stays as it is)
        return None
    if len(b) > PACK_MAX_BYTES:
        return None
    return cls(b)


def type_name(v) -> bytes:
    if type(v) is bytes:
        return b"string"
    return v.type_name


class Db:
    __slots__ = (
        "id",
        "data",
        "expires",
        "slot_keys",
        "on_delete",
        "cow",
        "on_expire",
        "on_overwrite",
        "on_set_expire",
        "_scan",
        "_scan_pos",
        "expire_hold",
        "on_new",
        "stamp",
        "new_stamp",
        "lfu",
        "mem",
        "agg",
        "str_enc",
        "unpacked",
        "unpacked_old",
    )

    def __init__(self, id: int):
        self.id = id
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        # slot -> {key: None}: COUNTKEYSINSLOT/GETKEYSINSLOT and SCAN walk it
        self.slot_keys: dict[int, dict[bytes, None]] = {}
        # called with (db, key) whenever a key disappears for any reason
        self.on_delete: Callable | None = None
        # called with (db, key) when set() replaces an existing key's value
        # (a blocked XREADGROUP must learn that its stream is gone)
        self.on_overwrite: Callable | None = None
        # called with (key, value) before a command gets a value while a
        # replication snapshot is being produced (replication/snapshot.py)
        self.cow: Callable | None = None
        # called with (db, key) when a key is found expired: 0 = delete it
        # (the server propagates the deletion), 1 = keep it but report it
        # missing, 2 = treat it as alive (a replica: spec §4.5)
        self.on_expire: Callable | None = None
        # called with (db, key) when a TTL is set, while a client writes on
        # a writable replica (the replica expires those keys itself)
        self.on_set_expire: Callable | None = None
        self._scan: list | None = None
        self._scan_pos = 0
        # slots whose keys active expiry leaves alone (keys being imported by
        # atomic slot migration: their TTLs count once the slots are owned)
        self.expire_hold: frozenset = frozenset()
        # called with (db, key) when set() creates a key (the 'new'
        # keyspace event; set only while that event class is on)
        self.on_new: Callable | None = None
        # per-key access data (frtrio/core/evict.py): the 24-bit LRU clock or
        # LFU value of a key is the value of its entry in slot_keys. ``stamp``:
        # what an access stores (the current LRU clock, one shared int);
        # ``new_stamp``: what a new key gets; ``lfu``: under an LFU policy, the
        # function an access calls instead (it reads and updates the counter)
        self.stamp = 0
        self.new_stamp = 0
        self.lfu: Callable | None = None
        # the accounted bytes of this db's keys and values (evict.key_cost)
        self.mem = 0
        # key -> the value_cost ``mem`` holds for it, for values that are not
        # bytes (aggregates grow in place: ``recharge`` moves it after a write,
        # and a delete takes back exactly this); not for packed values (they
        # never change: their charge is their value_cost)
        self.agg: dict[bytes, int] = {}
        # key -> "raw" or "str": keys whose string Redis would not encode from
        # its content: "raw" after APPEND, SETRANGE, SETBIT... (modified in
        # place), "str" (embstr or raw by length, never int) after
        # INCRBYFLOAT. Any other write of the key forgets it
        self.str_enc: dict = {}
        # keys whose aggregate a lookup used (unpacking it if packed) or set()
        # wrote in this cron period (``unpacked``) and the one before
        # (``unpacked_old``): ``pack_idle`` packs the older ones not used
        # since
        self.unpacked: dict = {}
        self.unpacked_old: dict = {}

    def __len__(self) -> int:
        return len(self.data)

    # --- basic access -------------------------------------------------------

    def is_expired(self, key: bytes, now_ms: int) -> bool:
        t = self.expires.get(key)
        return t is not None and t <= now_ms

    def lookup(self, key: bytes, now_ms: int):
        """The value of ``key`` or None; removes the key if it has expired."""
        v = self.data.get(key)
        if v is None:
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms:
            act = self.on_expire(self, key) if self.on_expire is not None else 0
            if act == 0:
                self.delete(key)
                return None
            if act == 1:
                return None
        if self.cow is not None:
            self.cow(key, v)
        if type(v) is not bytes:  # (an aggregate: used in this period)
            u = _UNPACK.get(type(v))
            if u is not None:
                self.agg[key] = value_cost(v)  # (its charge: the packed value's len)
                v = self.data[key] = u(v)
            self.unpacked[key] = None
        if self.lfu is None:
            # the access time: one store in the key's slot index entry
            # (key_slot inlined: this is the hot path)
            if 123 in key:  # (b"{": a hash tag maybe)
                self.slot_keys[key_slot(key)][key] = self.stamp
            else:
                self.slot_keys[crc_hqx(key, 0) & 16383][key] = self.stamp
        else:
            self.lfu(self, key)
        return v

    def peek(self, key: bytes, now_ms: int, unpack: bool = True):
        """``lookup`` without touching the key's access time (Redis's
        LOOKUP_NOTOUCH: TYPE, TTL, EXISTS, OBJECT). ``unpack`` False: a
        packed value is returned as it is (for a caller that only needs
        the key's existence and ``type_name``: SCAN)."""
        v = self.data.get(key)
        if v is None:
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms:
            act = self.on_expire(self, key) if self.on_expire is not None else 0
            if act == 0:
                self.delete(key)
                return None
            if act == 1:
                return None
        if self.cow is not None:
            self.cow(key, v)
        if type(v) is not bytes and unpack:  # (an aggregate: used in this period)
            u = _UNPACK.get(type(v))
            if u is not None:
                self.agg[key] = value_cost(v)  # (its charge: the packed value's len)
                v = self.data[key] = u(v)
            self.unpacked[key] = None
        return v

    def access_value(self, key: bytes):
        """The key's 24-bit LRU clock / LFU value (None: no such key)."""
        d = self.slot_keys.get(key_slot(key))
        return d.get(key) if d is not None else None

    def set_access_value(self, key: bytes, value: int | None) -> None:
        if value is None:
            return
        d = self.slot_keys.get(key_slot(key))
        if d is not None and key in d:
            d[key] = value

    def exists(self, key: bytes, now_ms: int) -> bool:
        return self.lookup(key, now_ms) is not None

    def set(self, key: bytes, value, keep_ttl: bool = False, new_event: bool = True) -> None:
        """Set key to value; clears the TTL unless keep_ttl. ``new_event``:
        a created key is reported to ``on_new`` (not for keys loaded from a
        snapshot, as Redis's dbAddRDBLoad)."""
        data = self.data
        old = data.get(key)
        if old is None:
            s = key_slot(key)
            d = self.slot_keys.get(s)
            if d is None:
                self.slot_keys[s] = {key: self.new_stamp}
            else:
                d[key] = self.new_stamp
            if type(value) is bytes:
                self.mem += key_cost(key, value)
            else:
                vc = value_cost(value)
                self.agg[key] = vc
                self.mem += key_overhead(key) + vc
                self.unpacked[key] = None
            if self.on_new is not None and new_event:
                self.on_new(self, key)
        else:
            # (the access time: the lookup every write makes first stored it)
            if type(value) is bytes and type(old) is bytes:
                self.mem += len(value) - len(old)
            else:
                self._recost(key, old, value)
            if self.on_overwrite is not None:
                self.on_overwrite(self, key)
        data[key] = value
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)
        if self.str_enc:
            self.str_enc.pop(key, None)

    def add(self, key: bytes, value) -> None:
        """Add a key known to be absent (no TTL)."""
        self.set(key, value)

    def replace_value(self, key: bytes, value) -> None:
        """Replace the value of an existing key, keeping its TTL."""
        data = self.data
        old = data.get(key)
        if old is not None:
            if type(value) is bytes and type(old) is bytes:
                self.mem += len(value) - len(old)
            else:
                self._recost(key, old, value)
        data[key] = value
        if self.str_enc:
            self.str_enc.pop(key, None)

    def _recost(self, key: bytes, old, value) -> None:
        """``key``'s value goes from ``old`` to ``value`` (one of them not
        bytes): take back what ``old`` was charged, charge ``value``."""
        was = self._charged(key, old)
        vc = value_cost(value)
        if type(value) is not bytes:
            self.agg[key] = vc
            self.unpacked[key] = None
        self.mem += vc - was

    def _charged(self, key: bytes, v) -> int:
        """What ``mem`` holds for ``key``'s value ``v``, forgotten: an
        aggregate's last charge (``agg``), a string's present cost."""
        was = self.agg.pop(key, None) if type(v) is not bytes else None
        return value_cost(v) if was is None else was

    def recharge(self, key: bytes) -> None:
        """After a write of ``key``: charge its aggregate value at its present
        size (O(1)); a no-op for strings and absent keys."""
        was = self.agg.get(key)
        if was is None:
            return
        v = self.data.get(key)
        if v is None or type(v) in _UNPACK:  # (packed: unchanged since its charge)
            return
        vc = value_cost(v)
        if vc != was:
            self.agg[key] = vc
            self.mem += vc - was

    def pack_idle(self) -> int:
        """The server cron's step (once per period): pack the small
        aggregates unpacked or written before the last period and not
        since (a key a command keeps using stays unpacked); returns how many
        were packed."""
        old = self.unpacked_old
        new = self.unpacked_old = self.unpacked
        self.unpacked = {}
        n = 0
        data = self.data
        agg = self.agg
        for k in old:
            if k in new:
                continue
            v = data.get(k)
            if v is None or type(v) is bytes:
                continue
            p = pack(v)
            if p is not None:
                data[k] = p
                # (a packed key's charge is its value_cost, no agg entry;
                # a charge a write left stale is made right here)
                vc = value_cost(p)
                was = agg.pop(k, vc)
                if was != vc:
                    self.mem += vc - was
                n += 1
        if n and n * 2 > len(agg):
            # most of agg's entries went: a compact copy (a dict's table
            # never shrinks on deletes; O(1) per entry packed)
            self.agg = dict(agg)
        return n

    def pack_all(self) -> int:
        """Pack every small aggregate now (tests, DEBUG)."""
        self.unpacked_old.update(self.unpacked)
        self.unpacked = {}
        n = self.pack_idle()
        self.unpacked_old = {}
        return n

    def mark_raw(self, key: bytes, how: str = "raw") -> None:
        """The key's string was modified in place (``how`` "raw"), or made
        by INCRBYFLOAT ("str"): OBJECT ENCODING answers that until the key
        is written otherwise."""
        self.str_enc[key] = how

    def delete(self, key: bytes) -> bool:
        data = self.data
        v = data.pop(key, None)
        if v is None:
            return False
        self.mem -= key_overhead(key) + self._charged(key, v)
        if self.expires:
            self.expires.pop(key, None)
        si = self.slot_keys
        s = key_slot(key)
        d = si.get(s)
        if d is not None:
            d.pop(key, None)
            if not d:
                del si[s]
        if self.str_enc:
            self.str_enc.pop(key, None)
        if self.on_delete is not None:
            self.on_delete(self, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms
        if self.on_set_expire is not None:
            self.on_set_expire(self, key)

    def get_expire(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def persist(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None

    def clear(self) -> int:
        n = len(self.data)
        keys = list(self.data) if self.on_delete is not None else ()
        self.data.clear()
        self.expires.clear()
        self.slot_keys.clear()
        self.mem = 0
        self.agg.clear()
        self.str_enc.clear()
        self.unpacked.clear()
        self.unpacked_old.clear()
        if self.on_delete is not None:
            for k in keys:
                self.on_delete(self, k)
        return n

    # --- slot index ---------------------------------------------------------

    def count_keys_in_slot(self, slot: int) -> int:
        d = self.slot_keys.get(slot)
        return len(d) if d else 0

    def keys_in_slot(self, slot: int, count: int) -> list[bytes]:
        d = self.slot_keys.get(slot)
        if not d:
            return []
        out = []
        for k in d:
            if len(out) >= count:
                break
            out.append(k)
        return out

    # --- expiry -------------------------------------------------------------

    def active_expire(self, now_ms: int, budget: int = 20, rounds: int = 16) -> int:
        """One run of the active expire cycle: check keys with a TTL in
        batches of ``budget`` and delete the expired ones; go on while more
        than 25% of a batch had expired. Keys are visited in passes over a
        snapshot of the TTL table, so every key is checked once per pass and
        the order never depends on hashing. Returns the number removed.
        """
        removed = 0
        exp = self.expires
        for _ in range(rounds):
            if not exp:
                self._scan = None
                break
            scan = self._scan
            if not scan or self._scan_pos >= len(scan):
                scan = self._scan = list(exp)
                self._scan_pos = 0
            i = self._scan_pos
            batch = scan[i : i + budget]
            self._scan_pos = i + len(batch)
            expired = 0
            hold = self.expire_hold
            for k in batch:
                t = exp.get(k)
                if t is not None and t <= now_ms:
                    if hold and key_slot(k) in hold:
                        continue
                    if self.on_expire is not None:
                        self.on_expire(self, k)
                    self.delete(k)
                    expired += 1
            removed += expired
            if expired * 4 <= len(batch):
                break
        return removed
