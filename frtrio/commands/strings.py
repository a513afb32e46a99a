"""String commands (Redis 7.0 semantics)."""

from __future__ import annotations

import math

from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_FLOAT,
    NOT_INT,
    OVERFLOW,
    err,
    parse_float,
    parse_int,
    syntax_error,
    wrongtype,
)
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, ErrorReply, format_long_double

MAX_STRING = 512 * 1024 * 1024


def get_string(c, key: bytes):
    """The string at key, None if absent; WRONGTYPE if another type."""
    v = c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is bytes:
        return v
    raise wrongtype()


def modified(c, key: bytes, n: int = 1) -> None:
    srv = c.server
    srv.dirty += n
    if srv.watched_keys:
        srv.touch_key(c.db, key)


@command("get")
def cmd_get(c, argv):
    v = c.db.data.get(argv[1])
    if v is not None and not (c.db.expires and argv[1] in c.db.expires):
        if type(v) is bytes:
            return v
        raise wrongtype()
    v = get_string(c, argv[1])
    return v


def parse_expire_option(c, opt: bytes, val: bytes, cmdname: str) -> int:
    """The absolute unix ms of an EX/PX/EXAT/PXAT option."""
    n = string2ll(val)
    if n is None:
        raise err(NOT_INT)
    if n <= 0:
        raise err("ERR invalid expire time in '%s' command" % cmdname)
    unit_ms = opt in (b"ex", b"exat")
    if unit_ms:
        if n > LLONG_MAX // 1000:
            raise err("ERR invalid expire time in '%s' command" % cmdname)
        n *= 1000
    if opt in (b"ex", b"px"):
        if n > LLONG_MAX - c.server.now_ms:
            raise err("ERR invalid expire time in '%s' command" % cmdname)
        n += c.server.now_ms
    return n


@command("set")
def cmd_set(c, argv):
    key, val = argv[1], argv[2]
    nx = xx = get = keepttl = False
    exp_opt = None
    exp_val = None
    i = 3
    n = len(argv)
    while i < n:
        a = argv[i].lower()
        nxt = argv[i + 1] if i + 1 < n else None
        if a == b"nx" and not xx:
            nx = True
        elif a == b"xx" and not nx:
            xx = True
        elif a == b"get":
            get = True
        elif a == b"keepttl" and exp_opt is None:
            keepttl = True
        elif a in (b"ex", b"px", b"exat", b"pxat") and exp_opt is None and not keepttl and nxt is not None:
            exp_opt = a
            exp_val = nxt
            i += 1
        else:
            raise syntax_error()
        i += 1
    when = None
    if exp_opt is not None:
        when = parse_expire_option(c, exp_opt, exp_val, "set")
    db = c.db
    old = db.lookup(key, c.server.now_ms)
    if get and old is not None and type(old) is not bytes:
        raise wrongtype()
    if (nx and old is not None) or (xx and old is None):
        return old if get else None
    db.set(key, val, keep_ttl=keepttl)
    if when is not None:
        db.set_expire(key, when)
    modified(c, key)
    if when is not None and exp_opt != b"pxat":
        c.server.propagate(c.dbid, [b"SET", key, val, b"PXAT", b"%d" % when])
    elif get:
        # GET does not change what is written; propagate without it
        c.server.propagate(c.dbid, [a for a in argv if a.lower() != b"get"])
    return old if get else OK


@command("setnx")
def cmd_setnx(c, argv):
    if c.db.lookup(argv[1], c.server.now_ms) is not None:
        return 0
    c.db.set(argv[1], argv[2])
    modified(c, argv[1])
    return 1


def _setex(c, argv, unit: int, name: str):
    n = string2ll(argv[2])
    if n is None:
        raise err(NOT_INT)
    if n <= 0 or n > LLONG_MAX // unit or n * unit > LLONG_MAX - c.server.now_ms:
        raise err("ERR invalid expire time in '%s' command" % name)
    when = c.server.now_ms + n * unit
    c.db.set(argv[1], argv[3])
    c.db.set_expire(argv[1], when)
    modified(c, argv[1])
    c.server.propagate(c.dbid, [b"SET", argv[1], argv[3], b"PXAT", b"%d" % when])
    return OK


@command("setex")
def cmd_setex(c, argv):
    return _setex(c, argv, 1000, "setex")


@command("psetex")
def cmd_psetex(c, argv):
    return _setex(c, argv, 1, "psetex")


@command("mget")
def cmd_mget(c, argv):
    db = c.db
    now = c.server.now_ms
    out = []
    for k in argv[1:]:
        v = db.lookup(k, now)
        out.append(v if type(v) is bytes else None)
    return out


@command("mset")
def cmd_mset(c, argv):
    if len(argv) % 2 == 0:
        raise err("ERR wrong number of arguments for 'mset' command")
    db = c.db
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
        modified(c, argv[i])
    return OK


@command("msetnx")
def cmd_msetnx(c, argv):
    if len(argv) % 2 == 0:
        raise err("ERR wrong number of arguments for 'msetnx' command")
    db = c.db
    now = c.server.now_ms
    for i in range(1, len(argv), 2):
        if db.lookup(argv[i], now) is not None:
            return 0
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
        modified(c, argv[i])
    return 1


@command("getset")
def cmd_getset(c, argv):
    old = get_string(c, argv[1])
    c.db.set(argv[1], argv[2])
    modified(c, argv[1])
    c.server.propagate(c.dbid, [b"SET", argv[1], argv[2]])
    return old


@command("getdel")
def cmd_getdel(c, argv):
    old = get_string(c, argv[1])
    if old is not None:
        c.db.delete(argv[1])
        modified(c, argv[1])
        c.server.propagate(c.dbid, [b"DEL", argv[1]])
    return old


@command("getex")
def cmd_getex(c, argv):
    key = argv[1]
    exp_opt = None
    exp_val = None
    persist = False
    i = 2
    n = len(argv)
    while i < n:
        a = argv[i].lower()
        nxt = argv[i + 1] if i + 1 < n else None
        if a == b"persist" and exp_opt is None and not persist:
            persist = True
        elif a in (b"ex", b"px", b"exat", b"pxat") and exp_opt is None and not persist and nxt is not None:
            exp_opt = a
            exp_val = nxt
            i += 1
        else:
            raise syntax_error()
        i += 1
    when = None
    if exp_opt is not None:
        when = parse_expire_option(c, exp_opt, exp_val, "getex")
    v = get_string(c, key)
    if v is None:
        return None
    db = c.db
    if when is not None:
        if when <= c.server.now_ms:
            db.delete(key)
            modified(c, key)
            c.server.propagate(c.dbid, [b"DEL", key])
        else:
            db.set_expire(key, when)
            modified(c, key)
            c.server.propagate(c.dbid, [b"PEXPIREAT", key, b"%d" % when])
    elif persist:
        if db.persist(key):
            modified(c, key)
            c.server.propagate(c.dbid, [b"PERSIST", key])
    return v


@command("append")
def cmd_append(c, argv):
    key = argv[1]
    v = get_string(c, key)
    if v is None:
        c.db.set(key, argv[2])
        modified(c, key)
        return len(argv[2])
    if len(v) + len(argv[2]) > c.server.config.get_int("proto-max-bulk-len"):
        raise err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    nv = v + argv[2]
    c.db.replace_value(key, nv)
    modified(c, key)
    return len(nv)


@command("strlen")
def cmd_strlen(c, argv):
    v = get_string(c, argv[1])
    return 0 if v is None else len(v)


def _incr(c, key: bytes, delta: int):
    v = get_string(c, key)
    if v is None:
        cur = 0
    else:
        cur = string2ll(v) if len(v) <= 20 else None
        if cur is None:
            raise err(NOT_INT)
    if (delta < 0 and cur < 0 and delta < LLONG_MIN - cur) or (
        delta > 0 and cur > 0 and delta > LLONG_MAX - cur
    ):
        raise err(OVERFLOW)
    new = cur + delta
    b = b"%d" % new
    if v is None:
        c.db.set(key, b)
    else:
        c.db.replace_value(key, b)
    modified(c, key)
    return new


@command("incr")
def cmd_incr(c, argv):
    return _incr(c, argv[1], 1)


@command("decr")
def cmd_decr(c, argv):
    return _incr(c, argv[1], -1)


@command("incrby")
def cmd_incrby(c, argv):
    return _incr(c, argv[1], parse_int(argv[2]))


@command("decrby")
def cmd_decrby(c, argv):
    d = parse_int(argv[2])
    if d == LLONG_MIN:
        raise err("ERR decrement would overflow")
    return _incr(c, argv[1], -d)


@command("incrbyfloat")
def cmd_incrbyfloat(c, argv):
    key = argv[1]
    v = get_string(c, key)
    cur = 0.0 if v is None else parse_float(v)
    inc = parse_float(argv[2])
    new = cur + inc
    if math.isnan(new) or math.isinf(new):
        raise err("ERR increment would produce NaN or Infinity")
    b = format_long_double(new)
    if v is None:
        c.db.set(key, b)
    else:
        c.db.replace_value(key, b)
    modified(c, key)
    c.server.propagate(c.dbid, [b"SET", key, b, b"KEEPTTL"])
    return b


def _range_indexes(start: int, end: int, n: int):
    if start < 0 and end < 0 and start > end:
        return None
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return None
    return start, end


@command("getrange")
def cmd_getrange(c, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    v = get_string(c, argv[1])
    if v is None:
        return b""
    r = _range_indexes(start, end, len(v))
    if r is None:
        return b""
    return v[r[0] : r[1] + 1]


@command("substr")
def cmd_substr(c, argv):
    return cmd_getrange(c, argv)


@command("setrange")
def cmd_setrange(c, argv):
    key = argv[1]
    offset = parse_int(argv[2])
    val = argv[3]
    if offset < 0:
        raise err("ERR offset is out of range")
    v = get_string(c, key)
    if v is None:
        if not val:
            return 0
        if offset + len(val) > c.server.config.get_int("proto-max-bulk-len"):
            raise err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        nv = b"\0" * offset + val
        c.db.set(key, nv)
        modified(c, key)
        return len(nv)
    if not val:
        return len(v)
    if offset + len(val) > c.server.config.get_int("proto-max-bulk-len"):
        raise err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    if offset > len(v):
        nv = v + b"\0" * (offset - len(v)) + val
    else:
        nv = v[:offset] + val + v[offset + len(val) :]
    c.db.replace_value(key, nv)
    modified(c, key)
    return len(nv)


_unused = (ErrorReply, NOT_FLOAT)
