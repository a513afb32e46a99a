"""Set commands (Redis 7.0).

Sets are ``SetValue`` dicts (member -> None), insertion ordered. Redis 7.0
has two set encodings: an *intset* (every member an integer, at most
``set-max-intset-entries`` members), which iterates in ascending numeric
order, and a hash table, whose order is unpredictable. ``members()`` gives
Redis's order whenever Redis's is defined: sorted numerically for a set that
qualifies as an intset, insertion order otherwise (a valid hash-table order).
So SMEMBERS, SUNION, SINTER... of integer sets are byte-identical to Redis.

SSCAN: an intset is returned whole with cursor 0, like Redis. A hash-table set
(and a big hash, for HSCAN) is walked in the order of a stable 64-bit hash of
its members; the cursor is the next hash to visit, so every member present
for the whole iteration is returned, whatever is added or removed meanwhile.

SPOP / SRANDMEMBER draw from ``server.rng``; SPOP propagates as SREM of the
members it chose (one SREM each, as Redis), or as DEL when it took them all.
"""

from __future__ import annotations

import bisect
import hashlib

from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, SET
from frtrio.core.client import F
from frtrio.commands.lists import _parse_positive, _parse_range
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (LLONG_MAX, err, lookup_read, parse_int, syntax_error,
                                  too_many_for_output_limit, wrongtype)
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, SetReply
from frtrio.store.db import SetValue, set_added, set_is_ht
from frtrio.store.glob import compile_pattern


def get_set(c, key: bytes, read: bool = False):
    v = lookup_read(c, key) if read else c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is SetValue:
        return v
    raise wrongtype()


def _intset_order(c, s):
    """The members sorted numerically if Redis would hold s as an intset,
    else None."""
    if set_is_ht(s) or len(s) > c.server.config.get_int("set-max-intset-entries"):
        return None
    nums = []
    for m in s:
        n = string2ll(m)
        if n is None:
            return None
        nums.append((n, m))
    nums.sort()
    return [m for _, m in nums]


def members(c, s) -> list:
    """The members of s in the order Redis iterates them (see module doc)."""
    o = _intset_order(c, s)
    return o if o is not None else list(s)


def _store(c, key: bytes, s, event: bytes) -> None:
    """Store a result set at key (replacing any value and TTL), or delete
    key when the result is empty."""
    db = c.db
    srv = c.server
    if s:
        db.lookup(key, srv.now_ms)
        db.set(key, s)
        srv.dirty += 1
        srv.touch_key(db, key)
        ev(c, SET, event, key)
    elif db.lookup(key, srv.now_ms) is not None:
        db.delete(key)
        srv.dirty += 1
        srv.touch_key(db, key)
        ev(c, GENERIC, b"del", key)


# --- scanning -------------------------------------------------------------------------


def parse_cursor(b: bytes) -> int:
    """Redis's parseScanCursorOrReply (shared with SCAN)."""
    from frtrio.commands.keys import parse_scan_cursor

    return parse_scan_cursor(b)


def parse_scan_opts(argv, start: int):
    count = 10
    pattern = None
    i = start
    n = len(argv)
    while i < n:
        a = argv[i].lower()
        more = n - 1 - i
        if a == b"count" and more:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise syntax_error()
            i += 2
        elif a == b"match" and more:
            pattern = argv[i + 1]
            i += 2
        else:
            raise syntax_error()
    return count, pattern


def _h64(m: bytes) -> int:
    """A stable 64-bit hash in [1, 2**64 - 1] (0 is the "done" cursor)."""
    return int.from_bytes(hashlib.blake2b(m, digest_size=8).digest(), "little") % (2**64 - 1) + 1


# A few recent snapshots (hash-sorted member lists) of collections being
# scanned, so that an iteration costs O(n) overall rather than O(n) per call.
# A snapshot is retaken at cursor 0; any snapshot taken during an iteration
# holds every member present for the whole iteration. The cache belongs to
# the server (``server.scan_snapshots``), so nodes sharing a process (the
# simulator) never see each other's.
_MAX_SNAPSHOTS = 16


def _snapshot(cache: dict, coll, fresh: bool):
    _SNAPSHOTS = cache
    k = id(coll)
    snap = _SNAPSHOTS.get(k)
    if snap is not None and snap[0] is coll and not fresh:
        _SNAPSHOTS[k] = _SNAPSHOTS.pop(k)  # most recently used last
        return snap
    pairs = sorted((_h64(m), m) for m in coll)
    snap = (coll, [h for h, _ in pairs], [m for _, m in pairs])
    _SNAPSHOTS.pop(k, None)
    _SNAPSHOTS[k] = snap
    while len(_SNAPSHOTS) > _MAX_SNAPSHOTS:
        del _SNAPSHOTS[next(iter(_SNAPSHOTS))]
    return snap


def scan_members(c, coll, cursor: int, count: int):
    """One step of a hash-ordered scan of a dict's keys: (keys, next cursor).
    Keys that were removed are skipped; keys with equal hashes come together."""
    if len(coll) <= count and cursor == 0:
        return list(coll), 0
    _, hashes, keys = _snapshot(c.server.scan_snapshots, coll, cursor == 0)
    i = bisect.bisect_left(hashes, cursor)
    n = len(hashes)
    j = min(i + count, n)
    while 0 < j < n and hashes[j] == hashes[j - 1]:
        j += 1
    out = [m for m in keys[i:j] if m in coll]
    return out, (hashes[j] if j < n else 0)


# --- basic ---------------------------------------------------------------------------


@command("sadd")
def cmd_sadd(c, argv):
    key = argv[1]
    s = get_set(c, key)
    created = s is None
    if created:
        s = SetValue()
    n = len(s)
    for m in argv[2:]:
        s[m] = None
    added = len(s) - n
    if created:
        c.db.add(key, s)
    if added:
        set_added(s, argv[2:], c.server.config.get_int("set-max-intset-entries"))
        modified(c, key, added)
        ev(c, SET, b"sadd", key)
    return added


@command("srem")
def cmd_srem(c, argv):
    key = argv[1]
    s = get_set(c, key)
    if s is None:
        return 0
    from frtrio.commands.util import remove_members

    return remove_members(c, key, s, argv[2:], SET, b"srem")


@command("smove")
def cmd_smove(c, argv):
    src, dst, m = argv[1], argv[2], argv[3]
    db = c.db
    now = c.server.now_ms
    sv = db.lookup(src, now)
    dv = db.lookup(dst, now)
    if sv is None:
        return 0
    if type(sv) is not SetValue or (dv is not None and type(dv) is not SetValue):
        raise wrongtype()
    if sv is dv:
        return 1 if m in sv else 0
    if m not in sv:
        return 0
    del sv[m]
    ev(c, SET, b"srem", src)
    if not sv:
        db.delete(src)
        ev(c, GENERIC, b"del", src)
    if dv is None:
        dv = SetValue()
        db.add(dst, dv)
    modified(c, src)
    if m not in dv:
        dv[m] = None
        set_added(dv, (m,), c.server.config.get_int("set-max-intset-entries"))
        modified(c, dst)
        ev(c, SET, b"sadd", dst)
    return 1


@command("smembers")
def cmd_smembers(c, argv):
    s = get_set(c, argv[1], read=True)
    return SetReply() if s is None else SetReply(members(c, s))


@command("sismember")
def cmd_sismember(c, argv):
    s = get_set(c, argv[1], read=True)
    return 1 if s is not None and argv[2] in s else 0


@command("smismember")
def cmd_smismember(c, argv):
    s = get_set(c, argv[1], read=True)
    if s is None:
        return [0] * (len(argv) - 2)
    return [1 if m in s else 0 for m in argv[2:]]


@command("scard")
def cmd_scard(c, argv):
    s = get_set(c, argv[1], read=True)
    return 0 if s is None else len(s)


# --- random ----------------------------------------------------------------------------


@command("spop")
def cmd_spop(c, argv):
    if len(argv) > 3:
        raise syntax_error()
    key = argv[1]
    srv = c.server
    if len(argv) == 3:
        count = _parse_positive(argv[2], "ERR value is out of range, must be positive")
        s = get_set(c, key)
        if s is None or count == 0:
            return SetReply()
        size = len(s)
        if count >= size:
            out = members(c, s)
            ev(c, SET, b"spop", key)
            c.db.delete(key)
            ev(c, GENERIC, b"del", key)
            modified(c, key, size)
            srv.propagate(c.dbid, [b"DEL", key])
            return SetReply(out)
        picked = srv.rng.sample(list(s), count)
        # one SREM per member, wrapped in MULTI/EXEC like Redis's
        # propagation of several commands from one call
        wrap = len(picked) > 1 and not c.flags & F.IN_EXEC
        if wrap:
            srv.propagate(c.dbid, [b"MULTI"])
        for m in picked:
            del s[m]
            srv.propagate(c.dbid, [b"SREM", key, m])
        if wrap:
            srv.propagate(c.dbid, [b"EXEC"])
        modified(c, key, count)
        ev(c, SET, b"spop", key)
        return SetReply(picked)
    s = get_set(c, key)
    if s is None:
        return None
    m = _nth(s, srv.rng.randrange(len(s)))
    del s[m]
    ev(c, SET, b"spop", key)
    if not s:
        c.db.delete(key)
        ev(c, GENERIC, b"del", key)
    modified(c, key)
    srv.propagate(c.dbid, [b"SREM", key, m])
    return m


def _nth(d, i: int):
    from frtrio.commands.hashes import _nth_key

    return _nth_key(d, i)


@command("srandmember")
def cmd_srandmember(c, argv):
    if len(argv) > 3:
        raise syntax_error()
    rng = c.server.rng
    if len(argv) == 3:
        n = _parse_range(argv[2], -LLONG_MAX, LLONG_MAX, None)
        s = get_set(c, argv[1], read=True)
        if s is None:
            return []
        count = -n if n < 0 else n
        if count == 0:
            return []
        size = len(s)
        if n < 0 or count == 1:
            if too_many_for_output_limit(c, count, 6):
                return NO_REPLY
            keys = list(s)
            return [keys[rng.randrange(size)] for _ in range(count)]
        if count >= size:
            return members(c, s)
        return rng.sample(list(s), count)
    s = get_set(c, argv[1], read=True)
    if s is None:
        return None
    return _nth(s, rng.randrange(len(s)))


# --- algebra -----------------------------------------------------------------------------


def _lookup_sets(c, keys, read: bool):
    """The sets at keys (None for missing); WRONGTYPE if any key holds
    another type (all keys are checked, as Redis does). ``read``: count
    the lookups in keyspace_hits / misses (Redis 7.0 does, STORE variants
    included)."""
    db = c.db
    now = c.server.now_ms
    out = []
    for k in keys:
        v = lookup_read(c, k) if read else db.lookup(k, now)
        if v is not None and type(v) is not SetValue:
            raise wrongtype()
        out.append(v)
    return out


def _inter(c, keys, limit: int = 0, read: bool = True):
    """Redis's sinterGenericCommand: iterate the smallest set (in Redis's
    order) and keep members every other set holds. None if a set is
    missing."""
    sets = _lookup_sets(c, keys, read)
    if any(s is None for s in sets):
        return None
    sets.sort(key=len)  # stable, like glibc's merge-sort qsort
    first = sets[0]
    others = [s for s in sets[1:] if s is not first]
    out = []
    for m in members(c, first):
        for s in others:
            if m not in s:
                break
        else:
            out.append(m)
            if limit and len(out) >= limit:
                break
    return out


@command("sinter")
def cmd_sinter(c, argv):
    r = _inter(c, argv[1:])
    return SetReply(r or ())


@command("sintercard")
def cmd_sintercard(c, argv):
    numkeys = _parse_range(argv[1], 1, LLONG_MAX, "ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise err("ERR Number of keys can't be greater than number of args")
    limit = 0
    j = 2 + numkeys
    while j < len(argv):
        more = len(argv) - 1 - j
        if argv[j].lower() == b"limit" and more:
            j += 1
            limit = _parse_positive(argv[j], "ERR LIMIT can't be negative")
        else:
            raise syntax_error()
        j += 1
    r = _inter(c, argv[2 : 2 + numkeys], limit)
    return 0 if r is None else len(r)


@command("sinterstore")
def cmd_sinterstore(c, argv):
    r = _inter(c, argv[2:])
    s = SetValue.fromkeys(r or ())
    _store(c, argv[1], s, b"sinterstore")
    return len(s)


def _union(c, keys, read: bool = True) -> SetValue:
    out = SetValue()
    for s in _lookup_sets(c, keys, read):
        if s:
            for m in members(c, s):
                out[m] = None
    return out


def _diff(c, keys, read: bool = True) -> SetValue:
    sets = _lookup_sets(c, keys, read)
    first = sets[0]
    out = SetValue()
    if first is None:
        return out
    if any(s is first for s in sets[1:]):
        return out
    others = [s for s in sets[1:] if s]
    for m in members(c, first):
        for s in others:
            if m in s:
                break
        else:
            out[m] = None
    return out


@command("sunion")
def cmd_sunion(c, argv):
    return SetReply(members(c, _union(c, argv[1:])))


@command("sunionstore")
def cmd_sunionstore(c, argv):
    s = _union(c, argv[2:])
    _store(c, argv[1], s, b"sunionstore")
    return len(s)


@command("sdiff")
def cmd_sdiff(c, argv):
    return SetReply(members(c, _diff(c, argv[1:])))


@command("sdiffstore")
def cmd_sdiffstore(c, argv):
    s = _diff(c, argv[2:])
    _store(c, argv[1], s, b"sdiffstore")
    return len(s)


# --- SSCAN -----------------------------------------------------------------------------------


@command("sscan")
def cmd_sscan(c, argv):
    cursor = parse_cursor(argv[2])
    s = get_set(c, argv[1], read=True)
    if s is None:
        return [b"0", []]
    count, pattern = parse_scan_opts(argv, 3)
    o = _intset_order(c, s)
    if o is not None:
        items, nxt = o, 0
    else:
        items, nxt = scan_members(c, s, cursor, count)
    if pattern is not None and pattern != b"*":
        m = compile_pattern(pattern).match
        items = [x for x in items if m(x) is not None]
    return [b"%d" % nxt, items]
