"""Generic key commands (Redis 7.0 semantics)."""

from __future__ import annotations

from frtrio.core.client import F

import copy
import itertools
from bisect import bisect_left

from frtrio.cluster.slots import CLUSTER_SLOTS, key_slot
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    NOT_INT,
    err,
    lookup_read,
    parse_int,
    parse_int32,
    syntax_error,
)
from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, notify
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, Status
from frtrio.store.db import type_name
from frtrio.store.glob import compile_pattern
from frtrio.core.cnum import cstr as _cstr
from frtrio.core.cnum import scan_cursor


def _count_existing(c, keys, touch: bool = True) -> int:
    return sum(1 for k in keys if lookup_read(c, k, touch) is not None)


def _del(c, argv, lazy: bool = False):
    db = c.db
    srv = c.server
    now = srv.now_ms
    n = 0
    for k in argv[1:]:
        v = db.lookup(k, now)
        if v is not None:
            db.delete(k)
            if lazy:  # a big value is freed later, off the command path
                srv.lazyfree.free_async(v, srv.config)
            modified(c, k)
            ev(c, GENERIC, b"del", k)
            n += 1
    return n


@command("del")
def cmd_del(c, argv):
    return _del(c, argv, c.server.config.get("lazyfree-lazy-user-del") == "yes")


@command("unlink")
def cmd_unlink(c, argv):
    return _del(c, argv, True)


@command("exists")
def cmd_exists(c, argv):
    return _count_existing(c, argv[1:], False)  # (LOOKUP_NOTOUCH)


@command("touch")
def cmd_touch(c, argv):
    return _count_existing(c, argv[1:])


@command("type")
def cmd_type(c, argv):
    v = lookup_read(c, argv[1], False)  # (LOOKUP_NOTOUCH)
    if v is None:
        return Status("none")
    return Status(type_name(v).decode())


# --- expiry -------------------------------------------------------------------


def _expire_generic(c, argv, base_ms: int, unit: int, name: str):
    """Redis's expireGenericCommand: options first, then the number."""
    key = argv[1]
    nx = xx = gt = lt = False
    for a in argv[3:]:
        o = _cstr(a).lower()
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"gt":
            gt = True
        elif o == b"lt":
            lt = True
        else:
            raise err("ERR Unsupported option " + _cstr(a).decode("latin-1"))
    if nx and (xx or gt or lt):
        raise err("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise err("ERR GT and LT options at the same time are not compatible")
    n = string2ll(argv[2])
    if n is None:
        raise err(NOT_INT)
    if unit == 1000:
        if n > LLONG_MAX // 1000 or n < -(LLONG_MAX // 1000):
            raise err("ERR invalid expire time in '%s' command" % name)
        n *= 1000
    if n > LLONG_MAX - base_ms:
        raise err("ERR invalid expire time in '%s' command" % name)
    when = n + base_ms
    db = c.db
    if db.lookup(key, c.server.now_ms) is None:
        return 0
    cur = db.get_expire(key)
    if nx and cur is not None:
        return 0
    if xx and cur is None:
        return 0
    if gt and (cur is None or when <= cur):
        return 0
    if lt and cur is not None and when >= cur:
        return 0
    if when <= c.server.now_ms and not c.server.loading:
        db.delete(key)
        modified(c, key)
        ev(c, GENERIC, b"del", key)
        c.server.propagate(c.dbid, [b"DEL", key])
        return 1
    db.set_expire(key, when)
    modified(c, key)
    ev(c, GENERIC, b"expire", key)
    c.server.propagate(c.dbid, [b"PEXPIREAT", key, b"%d" % when])
    return 1


@command("expire")
def cmd_expire(c, argv):
    return _expire_generic(c, argv, c.server.now_ms, 1000, "expire")


@command("pexpire")
def cmd_pexpire(c, argv):
    return _expire_generic(c, argv, c.server.now_ms, 1, "pexpire")


@command("expireat")
def cmd_expireat(c, argv):
    return _expire_generic(c, argv, 0, 1000, "expireat")


@command("pexpireat")
def cmd_pexpireat(c, argv):
    return _expire_generic(c, argv, 0, 1, "pexpireat")


def _ttl(c, key: bytes, ms: bool, absolute: bool):
    db = c.db
    if lookup_read(c, key, False) is None:  # (LOOKUP_NOTOUCH)
        return -2
    when = db.get_expire(key)
    if when is None:
        return -1
    if absolute:
        return when if ms else (when + 500) // 1000
    t = when - c.server.now_ms
    if t < 0:
        t = 0
    return t if ms else (t + 500) // 1000


@command("ttl")
def cmd_ttl(c, argv):
    return _ttl(c, argv[1], False, False)


@command("pttl")
def cmd_pttl(c, argv):
    return _ttl(c, argv[1], True, False)


@command("expiretime")
def cmd_expiretime(c, argv):
    return _ttl(c, argv[1], False, True)


@command("pexpiretime")
def cmd_pexpiretime(c, argv):
    return _ttl(c, argv[1], True, True)


@command("persist")
def cmd_persist(c, argv):
    db = c.db
    if db.lookup(argv[1], c.server.now_ms) is None:
        return 0
    if db.persist(argv[1]):
        modified(c, argv[1])
        ev(c, GENERIC, b"persist", argv[1])
        return 1
    return 0


# --- rename / copy / move -----------------------------------------------------


def _rename(c, argv, nx: bool):
    src, dst = argv[1], argv[2]
    db = c.db
    now = c.server.now_ms
    v = db.lookup(src, now)
    if v is None:
        raise err("ERR no such key")
    if src == dst:
        return 0 if nx else OK
    exp = db.get_expire(src)
    if db.lookup(dst, now) is not None:
        if nx:
            return 0
        db.delete(dst)
    access = db.access_value(src)  # (the value object moves: its LRU/LFU data too)
    enc = db.str_enc.get(src)
    db.delete(src)
    db.set(dst, v)
    db.set_access_value(dst, access)
    if enc is not None:
        db.mark_raw(dst, enc)
    if exp is not None:
        db.set_expire(dst, exp)
    modified(c, src)
    modified(c, dst, 0)
    ev(c, GENERIC, b"rename_from", src)
    ev(c, GENERIC, b"rename_to", dst)
    c.server.signal_key_ready(db, dst)
    return 1 if nx else OK


@command("rename")
def cmd_rename(c, argv):
    return _rename(c, argv, False)


@command("renamenx")
def cmd_renamenx(c, argv):
    return _rename(c, argv, True)


def _parse_db_index(c, b: bytes) -> int:
    n = parse_int32(b)
    if n < 0 or n >= len(c.server.dbs):
        raise err("ERR DB index is out of range")
    return n


def copy_value(v):
    if type(v) is bytes:
        return v
    return copy.deepcopy(v) if not hasattr(v, "copy_value") else v.copy_value()


@command("copy")
def cmd_copy(c, argv):
    src, dst = argv[1], argv[2]
    srv = c.server
    dstid = c.dbid
    replace = False
    i = 3
    while i < len(argv):
        a = _cstr(argv[i]).lower()
        if a == b"replace":
            replace = True
        elif a == b"db" and i + 1 < len(argv):
            dstid = _parse_db_index(c, argv[i + 1])
            i += 1
        else:
            raise syntax_error()
        i += 1
    if srv.cluster is not None and (c.dbid != 0 or dstid != 0):
        raise err("ERR Copying to another database is not allowed in cluster mode")
    dstdb = srv.dbs[dstid]
    if src == dst and dstdb is c.db:
        raise err("ERR source and destination objects are the same")
    now = srv.now_ms
    v = lookup_read(c, src)
    if v is None:
        return 0
    if dstdb.lookup(dst, now) is not None:
        if not replace:
            return 0
        dstdb.delete(dst)
    dstdb.set(dst, copy_value(v))
    enc = c.db.str_enc.get(src)
    if enc is not None:
        dstdb.mark_raw(dst, enc)
    exp = c.db.get_expire(src)
    if exp is not None:
        dstdb.set_expire(dst, exp)
    srv.dirty += 1
    srv.touch_key(dstdb, dst)
    srv.signal_key_ready(dstdb, dst)
    if srv.notify_flags & GENERIC:
        notify(srv, GENERIC, b"copy_to", dst, dstid)
    return 1


@command("move")
def cmd_move(c, argv):
    if c.server.cluster is not None:
        raise err("ERR MOVE is not allowed in cluster mode")
    dst = c.server.dbs[_parse_db_index(c, argv[2])]
    if dst is c.db:
        raise err("ERR source and destination objects are the same")
    now = c.server.now_ms
    key = argv[1]
    v = c.db.lookup(key, now)
    if v is None or dst.lookup(key, now) is not None:
        return 0
    exp = c.db.get_expire(key)
    access = c.db.access_value(key)
    enc = c.db.str_enc.get(key)
    c.db.delete(key)
    dst.set(key, v)
    dst.set_access_value(key, access)
    if enc is not None:
        dst.mark_raw(key, enc)
    if exp is not None:
        dst.set_expire(key, exp)
    modified(c, key)
    c.server.touch_key(dst, key)
    c.server.signal_key_ready(dst, key)
    ev(c, GENERIC, b"move_from", key)
    if c.server.notify_flags & GENERIC:
        notify(c.server, GENERIC, b"move_to", key, dst.id)
    return 1


# --- iteration ----------------------------------------------------------------


def hidden_slots(srv) -> frozenset:
    """Slots being imported by atomic slot migration: their keys are not
    shown to clients (empty outside cluster mode and migrations)."""
    core = srv.cluster
    return frozenset() if core is None else core.migrations.hidden_slots


@command("keys")
def cmd_keys(c, argv):
    db = c.db
    now = c.server.now_ms
    pat = argv[1]
    out = []
    exp = db.expires
    if pat == b"*":
        for k in list(db.data):
            if exp and k in exp and exp[k] <= now:
                continue
            out.append(k)
    else:
        m = compile_pattern(pat).match
        for k in list(db.data):
            if m(k) is not None and not (exp and k in exp and exp[k] <= now):
                out.append(k)
    hidden = hidden_slots(c.server)
    if hidden:
        out = [k for k in out if key_slot(k) not in hidden]
    return out


_ULONG_MAX = 2**64 - 1


def parse_scan_cursor(b: bytes) -> int:
    """Redis's parseScanCursorOrReply (SCAN, SSCAN, HSCAN, ZSCAN)."""
    n = scan_cursor(b)
    if n is None:
        raise err("ERR invalid cursor")
    return n


def parse_scan_options(argv, start: int, allow_type: bool):
    count = 10
    pattern = None
    typ = None
    i = start
    n = len(argv)
    while i < n:
        a = _cstr(argv[i]).lower()
        if a == b"count" and i + 1 < n:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise syntax_error()
            i += 2
        elif a == b"match" and i + 1 < n:
            pattern = argv[i + 1]
            i += 2
        elif a == b"type" and allow_type and i + 1 < n:
            typ = _cstr(argv[i + 1]).lower()
            i += 2
        else:
            raise syntax_error()
    return count, pattern, typ


@command("scan")
def cmd_scan(c, argv):
    """Walk the per-slot key index in slot order; the cursor is the next slot.

    Keys that stay in the keyspace for the whole iteration are returned (keys
    never change slot); a slot's keys come in one reply, like a Redis bucket.
    Empty slots are skipped, and the cursor is 0 as soon as no slot with keys
    is left, so a small keyspace comes back in one call, as in Redis.
    """
    cursor = parse_scan_cursor(argv[1])
    count, pattern, typ = parse_scan_options(argv, 2, True)
    db = c.db
    now = c.server.now_ms
    keys: list[bytes] = []
    si = db.slot_keys
    nxt = 0
    if cursor < CLUSTER_SLOTS and si:
        slots = sorted(si)
        i = bisect_left(slots, cursor)
        n = len(slots)
        hidden = hidden_slots(c.server)
        while i < n:
            if slots[i] not in hidden:
                keys.extend(si[slots[i]])
            i += 1
            if len(keys) >= count:
                break
        if i < n:
            nxt = slots[i]
    m = compile_pattern(pattern).match if pattern is not None and pattern != b"*" else None
    out = []
    for k in keys:
        if m is not None and m(k) is None:
            continue
        v = db.peek(k, now, False)  # (SCAN touches no access time, unpacks nothing)
        if v is None:
            continue
        if typ is not None and type_name(v) != typ:
            continue
        out.append(k)
    return [b"%d" % nxt, out]


@command("randomkey")
def cmd_randomkey(c, argv):
    """A random key; expired keys met on the way are removed (so the loop
    ends), as Redis's dbRandomKey does."""
    db = c.db
    now = c.server.now_ms
    rng = c.server.rng
    hidden = hidden_slots(c.server)
    if hidden and not any(key_slot(k) not in hidden for k in db.data):
        return None
    while db.data:
        i = rng.randrange(len(db.data))
        k = next(itertools.islice(db.data, i, None))
        if hidden and key_slot(k) in hidden:
            continue
        if db.peek(k, now) is not None:
            return k
    return None


@command("dbsize")
def cmd_dbsize(c, argv):
    hidden = hidden_slots(c.server)
    if hidden:
        return len(c.db.data) - sum(c.db.count_keys_in_slot(s) for s in hidden)
    return len(c.db.data)


def _flush_option(c, argv) -> bool:
    """FLUSHALL/FLUSHDB [ASYNC|SYNC]: whether to free in the background
    (without an option: lazyfree-lazy-user-flush)."""
    if len(argv) > 2:
        raise syntax_error()
    if len(argv) == 2:
        o = _cstr(argv[1]).lower()
        if o not in (b"async", b"sync"):
            raise syntax_error()
        return o == b"async"
    return c.server.config.get("lazyfree-lazy-user-flush") == "yes"


def _clear_db(srv, db, lazy: bool) -> int:
    if lazy and db.data:
        # the old tables are handed to the background whole (a dict copy
        # keeps the values alive; freeing them is the cron's job)
        srv.lazyfree.free_db_async(db.data.copy(), db.expires.copy())
    return db.clear()


@command("flushdb")
def cmd_flushdb(c, argv):
    lazy = _flush_option(c, argv)
    srv = c.server
    if srv.cluster is not None and not c.flags & F.MASTER:
        srv.cluster.migrations.cancel_all("dataset flushed")  # (Redis's text unverified)
    srv.touch_all(c.dbid)
    if srv.tracking.tracking_clients:
        srv.tracking.flush()
    n = _clear_db(srv, c.db, lazy)
    srv.dirty += n  # the keys removed (Redis adds nothing for the flush itself)
    srv.propagate(c.dbid, [b"FLUSHDB"])
    return OK


@command("flushall")
def cmd_flushall(c, argv):
    lazy = _flush_option(c, argv)
    srv = c.server
    if srv.cluster is not None and not c.flags & F.MASTER:
        srv.cluster.migrations.cancel_all("dataset flushed")  # (Redis's text unverified)
    srv.touch_all(None)
    if srv.tracking.tracking_clients:
        srv.tracking.flush()
    n = 0
    for db in srv.dbs:
        n += _clear_db(srv, db, lazy)
    srv.dirty += n  # the keys removed (Redis adds nothing for the flush itself)
    srv.propagate(c.dbid, [b"FLUSHALL"])
    if srv.config.get("save").strip() and not srv.loading:
        # with save points, Redis saves the empty dataset at once (an RDB
        # and a dirty counter of 0); its reply is FLUSHALL's +OK whatever
        from frtrio.core.effects import SaveSnapshot

        srv.effects.append(SaveSnapshot(None, counted=False))
    return OK


@command("select")
def cmd_select(c, argv):
    n = parse_int32(argv[1])
    if c.server.cluster is not None and n != 0:
        raise err("ERR SELECT is not allowed in cluster mode")
    if n < 0 or n >= len(c.server.dbs):
        raise err("ERR DB index is out of range")
    c.select(n)
    return OK


@command("swapdb")
def cmd_swapdb(c, argv):
    srv = c.server
    if srv.cluster is not None:
        raise err("ERR SWAPDB is not allowed in cluster mode")
    a = parse_int32(argv[1], "ERR invalid first DB index")
    b = parse_int32(argv[2], "ERR invalid second DB index")
    if a < 0 or a >= len(srv.dbs) or b < 0 or b >= len(srv.dbs):
        raise err("ERR DB index is out of range")
    if a != b:
        da, dbb = srv.dbs[a], srv.dbs[b]
        for attr in ("data", "expires", "slot_keys", "_scan", "_scan_pos", "mem", "agg", "str_enc",
                     "unpacked", "unpacked_old"):
            x, y = getattr(da, attr), getattr(dbb, attr)
            setattr(da, attr, y)
            setattr(dbb, attr, x)
        srv.touch_all(a, swapped_with=b)
        srv.touch_all(b, swapped_with=a)
        if srv.blocking is not None:
            srv.blocking.db_swapped(a, b)
    srv.dirty += 1
    return OK

