"""Hash commands (Redis 7.0).

Hashes are ``HashValue`` dicts (insertion ordered). Redis keeps small hashes
(at most ``hash-max-listpack-entries`` fields, none longer than
``hash-max-listpack-value`` bytes) as a listpack, which iterates in insertion
order and which HSCAN returns whole with cursor 0; for those our replies are
byte-identical to Redis's. Bigger hashes are hash tables in Redis, whose order
is unpredictable; ours stays insertion order, and HSCAN walks them with the
stable hash cursor of ``commands.sets.scan_members``.

HINCRBYFLOAT computes in x87 long double like Redis (``commands.ldouble``)
and is propagated as HSET with the final value.
"""

from __future__ import annotations

from frtrio.commands.util import ev
from frtrio.core.notify import HASH
from frtrio.commands import ldouble
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_FLOAT,
    OVERFLOW,
    err,
    lookup_read,
    parse_int,
    syntax_error,
    too_many_for_output_limit,
    wrongtype,
)
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, OK, Map
from frtrio.store.db import HashValue


def get_hash(c, key: bytes, read: bool = False):
    v = lookup_read(c, key) if read else c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is HashValue:
        return v
    raise wrongtype()


def _hash_for_write(c, key: bytes):
    """The hash at key, created (empty, not yet in the db) if missing.
    Returns (hash, created)."""
    v = get_hash(c, key)
    if v is None:
        return HashValue(), True
    return v, False


def _store_new(c, key: bytes, v, created: bool) -> None:
    if created and v:
        c.db.add(key, v)


def is_listpack(c, h) -> bool:
    """Would Redis hold this hash as a listpack (if it was never bigger)?"""
    cfg = c.server.config
    if len(h) > cfg.get_int("hash-max-listpack-entries"):
        return False
    limit = cfg.get_int("hash-max-listpack-value")
    for f, v in h.items():
        if len(f) > limit or len(v) > limit:
            return False
    return True


# --- set / get ------------------------------------------------------------------


def _hset(c, argv, name: str):
    if len(argv) % 2 == 1:
        raise err("ERR wrong number of arguments for '%s' command" % name)
    key = argv[1]
    h, created = _hash_for_write(c, key)
    added = 0
    for i in range(2, len(argv), 2):
        f = argv[i]
        if f not in h:
            added += 1
        h[f] = argv[i + 1]
    _store_new(c, key, h, created)
    modified(c, key, (len(argv) - 2) // 2)
    ev(c, HASH, b"hset", key)
    return added


@command("hset")
def cmd_hset(c, argv):
    return _hset(c, argv, "hset")


@command("hmset")
def cmd_hmset(c, argv):
    _hset(c, argv, "hmset")
    return OK


@command("hsetnx")
def cmd_hsetnx(c, argv):
    key = argv[1]
    h, created = _hash_for_write(c, key)
    if argv[2] in h:
        return 0
    h[argv[2]] = argv[3]
    _store_new(c, key, h, created)
    modified(c, key)
    ev(c, HASH, b"hset", key)
    return 1


@command("hget")
def cmd_hget(c, argv):
    h = get_hash(c, argv[1], read=True)
    if h is None:
        return None
    return h.get(argv[2])


@command("hmget")
def cmd_hmget(c, argv):
    h = get_hash(c, argv[1], read=True)
    if h is None:
        return [None] * (len(argv) - 2)
    g = h.get
    return [g(f) for f in argv[2:]]


@command("hdel")
def cmd_hdel(c, argv):
    key = argv[1]
    h = get_hash(c, key)
    if h is None:
        return 0
    from frtrio.commands.util import remove_members

    return remove_members(c, key, h, argv[2:], HASH, b"hdel")


@command("hlen")
def cmd_hlen(c, argv):
    h = get_hash(c, argv[1], read=True)
    return 0 if h is None else len(h)


@command("hstrlen")
def cmd_hstrlen(c, argv):
    h = get_hash(c, argv[1], read=True)
    if h is None:
        return 0
    v = h.get(argv[2])
    return 0 if v is None else len(v)


@command("hexists")
def cmd_hexists(c, argv):
    h = get_hash(c, argv[1], read=True)
    return 1 if h is not None and argv[2] in h else 0


@command("hkeys")
def cmd_hkeys(c, argv):
    h = get_hash(c, argv[1], read=True)
    return [] if h is None else list(h)


@command("hvals")
def cmd_hvals(c, argv):
    h = get_hash(c, argv[1], read=True)
    return [] if h is None else list(h.values())


@command("hgetall")
def cmd_hgetall(c, argv):
    h = get_hash(c, argv[1], read=True)
    return Map() if h is None else Map(h.items())


# --- increments -------------------------------------------------------------------


@command("hincrby")
def cmd_hincrby(c, argv):
    incr = parse_int(argv[3])
    key, f = argv[1], argv[2]
    h, created = _hash_for_write(c, key)
    cur = h.get(f)
    if cur is None:
        old = 0
    else:
        old = string2ll(cur)
        if old is None:
            raise err("ERR hash value is not an integer")
    if (incr < 0 and old < 0 and incr < LLONG_MIN - old) or (
        incr > 0 and old > 0 and incr > LLONG_MAX - old
    ):
        raise err(OVERFLOW)
    new = old + incr
    h[f] = b"%d" % new
    _store_new(c, key, h, created)
    modified(c, key)
    ev(c, HASH, b"hincrby", key)
    return new


@command("hincrbyfloat")
def cmd_hincrbyfloat(c, argv):
    incr = ldouble.strtold(argv[3])
    if incr is None:
        raise err(NOT_FLOAT)
    if ldouble.is_inf(incr):
        raise err("ERR value is NaN or Infinity")
    key, f = argv[1], argv[2]
    h, created = _hash_for_write(c, key)
    cur = h.get(f)
    if cur is None:
        old = 0
    else:
        old = ldouble.strtold(cur)
        if old is None:
            raise err("ERR hash value is not a float")
    new = ldouble.add(old, incr)
    if new is None or ldouble.is_inf(new):
        raise err("ERR increment would produce NaN or Infinity")
    b = ldouble.format_human(new)
    h[f] = b
    _store_new(c, key, h, created)
    modified(c, key)
    ev(c, HASH, b"hincrbyfloat", key)
    c.server.propagate(c.dbid, [b"HSET", key, f, b])
    return b


# --- random fields ------------------------------------------------------------------


@command("hrandfield")
def cmd_hrandfield(c, argv):
    if len(argv) >= 3:
        n = string2ll(argv[2])
        if n is None or n < LLONG_MIN or n > LLONG_MAX:
            raise err("ERR value is not an integer or out of range")
        if n < -LLONG_MAX:
            raise err(
                "ERR value is out of range, value must between %d and %d" % (-LLONG_MAX, LLONG_MAX)
            )
        withvalues = False
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
            raise syntax_error()
        if len(argv) == 4:
            withvalues = True
            if n < -(LLONG_MAX // 2) or n > LLONG_MAX // 2:
                raise err("ERR value is out of range")
        return _hrandfield_count(c, argv[1], n, withvalues)
    h = get_hash(c, argv[1], read=True)
    if h is None:
        return None
    return _nth_key(h, c.server.rng.randrange(len(h)))


def _nth_key(d, i: int):
    if i < len(d) // 2:
        for k in d:
            if i == 0:
                return k
            i -= 1
    else:
        i = len(d) - 1 - i
        for k in reversed(d):
            if i == 0:
                return k
            i -= 1
    raise IndexError(i)


def _hrandfield_count(c, key: bytes, n: int, withvalues: bool):
    h = get_hash(c, key, read=True)
    if h is None:
        return []
    resp3 = c.resp == 3
    size = len(h)
    count = n if n >= 0 else -n
    if count == 0:
        return []
    rng = c.server.rng

    def entry(f):
        if not withvalues:
            return [f]
        if resp3:
            return [[f, h[f]]]
        return [f, h[f]]

    if n < 0 or count == 1:
        # with repetitions, in random order
        if too_many_for_output_limit(c, count, 12 if withvalues else 6):
            return NO_REPLY
        keys = list(h)
        out = []
        for _ in range(count):
            out.extend(entry(keys[rng.randrange(size)]))
        return out
    if count >= size:
        out = []
        for f in h:
            out.extend(entry(f))
        return out
    picked = rng.sample(list(h), count)
    out = []
    for f in picked:
        out.extend(entry(f))
    return out


# --- HSCAN --------------------------------------------------------------------------


@command("hscan")
def cmd_hscan(c, argv):
    from frtrio.commands.sets import parse_cursor, parse_scan_opts, scan_members
    from frtrio.store.glob import compile_pattern

    cursor = parse_cursor(argv[2])
    h = get_hash(c, argv[1], read=True)
    if h is None:
        return [b"0", []]
    count, pattern = parse_scan_opts(argv, 3)
    if is_listpack(c, h):
        fields, nxt = list(h), 0
    else:
        fields, nxt = scan_members(c, h, cursor, count)
    m = compile_pattern(pattern).match if pattern is not None and pattern != b"*" else None
    out = []
    for f in fields:
        if m is not None and m(f) is None:
            continue
        v = h.get(f)
        if v is None:
            continue
        out.append(f)
        out.append(v)
    return [b"%d" % nxt, out]
