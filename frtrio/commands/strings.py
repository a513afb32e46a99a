"""String commands (Redis 7.0 semantics)."""

from __future__ import annotations

from fractions import Fraction

from frtrio.core.cnum import cstr
from frtrio.commands import ldouble
from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_FLOAT,
    NOT_INT,
    OVERFLOW,
    err,
    lookup_read,
    parse_int,
    syntax_error,
    wrongtype,
)
from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, STRING
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK

MAX_STRING = 512 * 1024 * 1024


def get_string(c, key: bytes, read: bool = False):
    """The string at key, None if absent; WRONGTYPE if another type.
    ``read``: a read lookup (counted in keyspace_hits / misses)."""
    v = lookup_read(c, key) if read else c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is bytes:
        return v
    raise wrongtype()


def modified(c, key: bytes, n: int = 1) -> None:
    srv = c.server
    srv.dirty += n
    c.db.recharge(key)  # an aggregate written in place: charged at its new size
    if srv.watched_keys or srv.tracking.tracking_clients:
        srv.touch_key(c.db, key)


@command("get")
def cmd_get(c, argv):
    return get_string(c, argv[1], True)


def _cstr_lower(a: bytes) -> bytes:
    """An option word as Redis compares it: a C string (it ends at the first
    NUL byte), case-insensitively."""
    return cstr(a).lower()


_EXPIRE_OPTS = (b"ex", b"px", b"exat", b"pxat")


def parse_string_options(argv, start: int, is_set: bool):
    """Redis's parseExtendedStringArgumentsOrReply for SET (``is_set``) and
    GETEX. Returns (flags, expire option, expire argument); flags is a set of
    the words nx xx get keepttl persist."""
    flags = set()
    exp_opt = None
    exp_val = None
    n = len(argv)
    j = start
    while j < n:
        a = _cstr_lower(argv[j])
        has_next = j < n - 1
        if a == b"nx" and is_set and b"xx" not in flags:
            flags.add(b"nx")
        elif a == b"xx" and is_set and b"nx" not in flags:
            flags.add(b"xx")
        elif a == b"get" and is_set:
            flags.add(b"get")
        elif a == b"keepttl" and is_set and exp_opt is None and b"persist" not in flags:
            flags.add(b"keepttl")
        elif (a == b"persist" and not is_set and exp_opt is None
              and b"keepttl" not in flags):
            flags.add(b"persist")
        elif (a in _EXPIRE_OPTS and has_next and b"keepttl" not in flags
              and b"persist" not in flags and exp_opt in (None, a)):
            exp_opt = a
            exp_val = argv[j + 1]
            j += 1
        else:
            raise syntax_error()
        j += 1
    return flags, exp_opt, exp_val


def parse_expire_option(c, opt: bytes, val: bytes, cmdname: str) -> int:
    """The absolute unix ms of an EX/PX/EXAT/PXAT option (Redis's
    getExpireMillisecondsOrReply)."""
    n = string2ll(val)
    if n is None:
        raise err(NOT_INT)
    if n <= 0 or (opt in (b"ex", b"exat") and n > LLONG_MAX // 1000):
        raise err("ERR invalid expire time in '%s' command" % cmdname)
    if opt in (b"ex", b"exat"):
        n *= 1000
    if opt in (b"ex", b"px"):
        n += c.server.now_ms
        if n > LLONG_MAX:  # wraps negative in C
            raise err("ERR invalid expire time in '%s' command" % cmdname)
    return n


def _set_generic(c, key, val, flags, exp_opt, exp_val, cmdname, argv,
                 ok_reply=OK, abort_reply=None):
    when = None
    if exp_opt is not None:
        when = parse_expire_option(c, exp_opt, exp_val, cmdname)
    db = c.db
    get = b"get" in flags
    old = lookup_read(c, key) if get else db.lookup(key, c.server.now_ms)
    if get and old is not None and type(old) is not bytes:
        raise wrongtype()
    if (b"nx" in flags and old is not None) or (b"xx" in flags and old is None):
        return old if get else abort_reply
    db.set(key, val, keep_ttl=b"keepttl" in flags)
    if when is not None:
        db.set_expire(key, when)
    modified(c, key)
    ev(c, STRING, b"set", key)
    if when is not None:
        ev(c, GENERIC, b"expire", key)
    if when is not None:
        # always rewritten, PXAT included (NX/XX/GET dropped, "PXAT" in capitals)
        c.server.propagate(c.dbid, [b"SET", key, val, b"PXAT", b"%d" % when])
    elif get:
        # GET does not change what is written; propagate without it
        c.server.propagate(c.dbid, argv[:3] + [a for a in argv[3:] if _cstr_lower(a) != b"get"])
    return old if get else ok_reply


@command("set")
def cmd_set(c, argv):
    if len(argv) == 3:
        # plain SET key value: overwrite whatever is there, drop the TTL
        key = argv[1]
        db = c.db
        srv = c.server
        if db.expires and key in db.expires:
            db.lookup(key, srv.now_ms)  # (setKey's lookupKeyWrite: an expired key goes first)
        db.set(key, argv[2])
        srv.dirty += 1
        if srv.watched_keys or srv.tracking.tracking_clients:
            srv.touch_key(c.db, key)
        if srv.notify_flags & STRING:
            ev(c, STRING, b"set", key)
        return OK
    flags, exp_opt, exp_val = parse_string_options(argv, 3, True)
    return _set_generic(c, argv[1], argv[2], flags, exp_opt, exp_val, "set", argv)


@command("setnx")
def cmd_setnx(c, argv):
    return _set_generic(c, argv[1], argv[2], {b"nx"}, None, None, "setnx", argv, 1, 0)


@command("setex")
def cmd_setex(c, argv):
    return _set_generic(c, argv[1], argv[3], (), b"ex", argv[2], "setex", argv)


@command("psetex")
def cmd_psetex(c, argv):
    return _set_generic(c, argv[1], argv[3], (), b"px", argv[2], "psetex", argv)


@command("mget")
def cmd_mget(c, argv):
    out = []
    for k in argv[1:]:
        v = lookup_read(c, k)
        out.append(v if type(v) is bytes else None)
    return out


@command("mset")
def cmd_mset(c, argv):
    if len(argv) % 2 == 0:
        raise err("ERR wrong number of arguments for 'mset' command")
    db = c.db
    now = c.server.now_ms
    for i in range(1, len(argv), 2):
        if db.expires:
            db.lookup(argv[i], now)  # (setKey's lookupKeyWrite)
        db.set(argv[i], argv[i + 1])
        modified(c, argv[i])
        ev(c, STRING, b"set", argv[i])
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
        ev(c, STRING, b"set", argv[i])
    return 1


@command("getset")
def cmd_getset(c, argv):
    old = get_string(c, argv[1], True)
    c.db.set(argv[1], argv[2])
    modified(c, argv[1])
    ev(c, STRING, b"set", argv[1])
    c.server.propagate(c.dbid, [b"SET", argv[1], argv[2]])
    return old


@command("getdel")
def cmd_getdel(c, argv):
    old = get_string(c, argv[1], True)
    if old is not None:
        c.db.delete(argv[1])
        modified(c, argv[1])
        ev(c, GENERIC, b"del", argv[1])
        c.server.propagate(c.dbid, [b"DEL", argv[1]])
    return old


@command("getex")
def cmd_getex(c, argv):
    key = argv[1]
    flags, exp_opt, exp_val = parse_string_options(argv, 2, False)
    v = get_string(c, key, True)
    if v is None:
        return None
    when = None
    if exp_opt is not None:
        when = parse_expire_option(c, exp_opt, exp_val, "getex")
    db = c.db
    if when is not None:
        if exp_opt in (b"exat", b"pxat") and when <= c.server.now_ms:
            db.delete(key)
            modified(c, key)
            ev(c, GENERIC, b"del", key)
            c.server.propagate(c.dbid, [b"DEL", key])
        else:
            db.set_expire(key, when)
            modified(c, key)
            ev(c, GENERIC, b"expire", key)
            c.server.propagate(c.dbid, [b"PEXPIREAT", key, b"%d" % when])
    elif b"persist" in flags:
        if db.persist(key):
            modified(c, key)
            ev(c, GENERIC, b"persist", key)
            c.server.propagate(c.dbid, [b"PERSIST", key])
    return v


@command("append")
def cmd_append(c, argv):
    key = argv[1]
    v = get_string(c, key)
    if v is None:
        c.db.set(key, argv[2])
        modified(c, key)
        ev(c, STRING, b"append", key)
        return len(argv[2])
    if len(v) + len(argv[2]) > c.server.config.get_int("proto-max-bulk-len"):
        raise err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    nv = v + argv[2]
    c.db.replace_value(key, nv)
    c.db.mark_raw(key)
    modified(c, key)
    ev(c, STRING, b"append", key)
    return len(nv)


@command("strlen")
def cmd_strlen(c, argv):
    v = get_string(c, argv[1], True)
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
    ev(c, STRING, b"incrby", key)
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
    """In C long double, as Redis (see ``ldouble``): 1.1 + 2.2 is 3.3."""
    key = argv[1]
    v = get_string(c, key)
    cur = Fraction(0) if v is None else ldouble.strtold(v)
    if cur is None:
        raise err(NOT_FLOAT)
    inc = ldouble.strtold(argv[2])
    if inc is None:
        raise err(NOT_FLOAT)
    new = ldouble.add(cur, inc)
    if new is None or ldouble.is_inf(new):
        raise err("ERR increment would produce NaN or Infinity")
    b = ldouble.format_human(new)
    if v is None:
        c.db.set(key, b)
    else:
        c.db.replace_value(key, b)
    c.db.mark_raw(key, "str")  # Redis makes it from text, never as an integer
    modified(c, key)
    ev(c, STRING, b"incrbyfloat", key)
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
    v = get_string(c, argv[1], True)
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
        c.db.mark_raw(key)
        modified(c, key)
        ev(c, STRING, b"setrange", key)
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
    c.db.mark_raw(key)
    modified(c, key)
    ev(c, STRING, b"setrange", key)
    return len(nv)

