"""Sorted set commands (Redis 7.0 semantics).

The value type is ``store.zset.ZSetValue``. Things worth knowing when
changing this file:

* Three double parsers, as in Redis: ``parse_score`` (getDoubleFromObject:
  the whole argument must be a strtod number, no leading space, no overflow
  or underflow to zero, no NaN), ``parse_range_score`` (zslParseRange: bare
  strtod, so leading spaces, ``""`` and ``"("`` mean 0, overflow gives inf)
  and ``parse_timeout`` (a long double in seconds, truncated to ms).
* Listpack/skiplist encoding is tracked because it shows: a listpack cannot
  hold ``-0`` and ZSCAN returns a listpack whole. Conversion rules are
  Redis's: ZADD creates a listpack unless the first member is too long,
  growth converts, store commands (Z*STORE) convert back when small.
* Replies that hold scores use ``Double`` (RESP2 bulk ``%.17g``, RESP3
  double); WITHSCORES replies are flat in RESP2 and [member, score] pairs in
  RESP3.
* ZMPOP and the blocking pops propagate as ZPOPMIN/ZPOPMAX (with the count
  actually popped for blocked clients), as Redis does.
"""

from __future__ import annotations

import math

from frtrio.commands.util import ev, lookup_read
from frtrio.core.notify import GENERIC, ZSET, notify
from frtrio.core.client import F
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    NOT_FLOAT,
    NOT_INT,
    too_many_for_output_limit,
    err,
    parse_int,
    syntax_error,
    wrongtype,
)
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, Double, NullArray, format_double
from frtrio.store.glob import compile_pattern
from frtrio.store.zset import MINUS, PLUS, LexBound, ZSetValue
from frtrio.core.cnum import cstr, string2d, strtod
from frtrio.commands.keys import parse_scan_cursor

# --- number parsing -------------------------------------------------------------

_SPACE = b" \t\n\v\f\r"


# Shared score objects for the integers 0..1023 (as Python shares small ints
# and Redis shares its integer string objects): a zset member with such a
# score costs no float object of its own (32 bytes each).
_SMALL_SCORES = [float(i) for i in range(1024)]


def parse_score(b: bytes, msg: str = NOT_FLOAT) -> float:
    """Redis's getDoubleFromObject (ZADD scores, ZINCRBY, WEIGHTS)."""
    if b.isdigit() and len(b) < 16:
        # the common case: a small non-negative integer
        n = int(b)
        return _SMALL_SCORES[n] if n < 1024 else float(n)
    v = string2d(b)
    if v is None:
        raise err(msg)
    return v


_RANGE_ERR = "ERR min or max is not a float"
_LEX_ERR = "ERR min or max not valid string range item"


def _range_item(b: bytes) -> tuple[float, bool]:
    ex = b[:1] == b"("
    s = b[1:] if ex else b
    s = cstr(s)  # strtod stops at the C string's end
    if not s:
        return 0.0, ex
    t = s.lstrip(_SPACE)
    if not t:
        raise err(_RANGE_ERR)
    r = strtod(t)
    if r is None:
        raise err(_RANGE_ERR)
    return r[0], ex


def parse_range_score(lo: bytes, hi: bytes):
    """zslParseRange: (min, minex, max, maxex)."""
    a, aex = _range_item(lo)
    b, bex = _range_item(hi)
    return a, aex, b, bex


def _lex_item(b: bytes) -> LexBound:
    if not b:
        raise err(_LEX_ERR)
    c0 = b[0]
    if c0 == 43:  # +
        if len(b) > 1 and b[1] != 0:
            raise err(_LEX_ERR)
        return PLUS
    if c0 == 45:  # -
        if len(b) > 1 and b[1] != 0:
            raise err(_LEX_ERR)
        return MINUS
    if c0 == 40:  # (
        return LexBound(b[1:], True)
    if c0 == 91:  # [
        return LexBound(b[1:], False)
    raise err(_LEX_ERR)


def parse_lex_range(lo: bytes, hi: bytes) -> tuple[LexBound, LexBound]:
    return _lex_item(lo), _lex_item(hi)


def parse_timeout(c, b: bytes):
    """getTimeoutFromObjectOrReply in seconds: the absolute deadline in unix
    ms, or None for "block forever"."""
    msg = "ERR timeout is not a float or out of range"
    if not b or b[0] in _SPACE:
        raise err(msg)
    r = strtod(b)
    if r is None:
        raise err(msg)
    v = r[0]  # a long double: neither 1e400 nor 1e-400 is out of its range
    ms = v * 1000.0
    if not math.isfinite(ms) or not -(2.0**63) <= ms < 2.0**63:
        tval = -(2**63)  # the C cast of an out-of-range value
    else:
        tval = int(ms)
    if tval < 0:
        raise err("ERR timeout is negative")
    if tval == 0:
        return None
    return c.server.now_ms + tval


def _parse_long_range(b: bytes, lo: int, hi: int, msg: str | None = None) -> int:
    v = string2ll(b)
    if v is None:
        raise err(msg or NOT_INT)
    if not lo <= v <= hi:
        raise err(msg or "ERR value is out of range, value must between %d and %d" % (lo, hi))
    return v


def _parse_positive(b: bytes, msg: str = "ERR value is out of range, must be positive") -> int:
    """getPositiveLongFromObjectOrReply: one message for both errors."""
    v = string2ll(b)
    if v is None or v < 0:
        raise err(msg)
    return v


# --- helpers ----------------------------------------------------------------------


def _lookup(c, key: bytes, db=None, read: bool = False):
    """The zset at key or None; WRONGTYPE for another type. ``read``: a read
    lookup (Redis's lookupKeyRead: counted in keyspace_hits / misses, a
    miss is a 'keymiss' event)."""
    if read:
        v = lookup_read(c, key)
    else:
        v = (c.db if db is None else db).lookup(key, c.server.now_ms)
    if v is None or type(v) is ZSetValue:
        return v
    raise wrongtype()


def _limits(c) -> tuple[int, int]:
    cfg = c.server.config
    return cfg.get_int("zset-max-listpack-entries"), cfg.get_int("zset-max-listpack-value")


def _grow(z: ZSetValue, member: bytes, limits) -> None:
    """zsetAdd's check before inserting a new member into a listpack."""
    if z.listpack and (len(z) + 1 > limits[0] or len(member) > limits[1]):
        z.to_skiplist()


def _emit(pairs, withscores: bool, resp3: bool) -> list:
    """(score, member) pairs as a range reply."""
    if not withscores:
        return [m for _s, m in pairs]
    if resp3:
        return [[m, Double(s)] for s, m in pairs]
    out = []
    for s, m in pairs:
        out.append(m)
        out.append(Double(s))
    return out


def fit_listpack(c, z: ZSetValue) -> None:
    """A computed (skiplist) result that fits the listpack limits becomes a
    listpack, as Redis's zsetConvertToListpackIfNeeded."""
    if len(z):
        entries, maxval = _limits(c)
        if len(z) <= entries and max(len(m) for m in z) <= maxval:
            z.to_listpack()


def store_zset(c, dst: bytes, z: ZSetValue, event: bytes, dirty: int = 1) -> int:
    """Set dst to z (or delete dst if z is empty); the reply. ``dirty`` is
    what a write counts (GEO...STORE counts its members, the ZSET stores one);
    ``event`` is the keyspace event of a store ('del' for a deletion)."""
    db = c.db
    if len(z):
        db.set(dst, z)
        modified(c, dst, dirty)
        ev(c, ZSET, event, dst)
        c.server.signal_key_ready(db, dst)
        return len(z)
    if db.lookup(dst, c.server.now_ms) is not None:
        db.delete(dst)
        modified(c, dst)
        ev(c, GENERIC, b"del", dst)
    return 0


def _ev_db(srv, db, flag: int, event: bytes, key: bytes) -> None:
    if srv.notify_flags & flag:
        notify(srv, flag, event, key, db.id)


def _is_set(v) -> bool:
    return getattr(v, "type_name", None) == b"set"


# --- ZADD / ZINCRBY ----------------------------------------------------------------


_ZADD_FLAGS = frozenset((b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"))


def zadd_generic(c, argv, incr: bool):
    nx = xx = gt = lt = ch = False
    i = 2
    n = len(argv)
    while i < n:
        o = argv[i].lower()
        if o not in _ZADD_FLAGS:
            break  # (the first score)
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"ch":
            ch = True
        elif o == b"incr":
            incr = True
        elif o == b"gt":
            gt = True
        else:
            lt = True
        i += 1
    elements = n - i
    if elements % 2 or not elements:
        raise syntax_error()
    elements //= 2
    if nx and xx:
        raise err("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise err("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 1:
        raise err("ERR INCR option supports a single increment-element pair")
    scores = [parse_score(argv[i + 2 * j]) for j in range(elements)]
    key = argv[1]
    z = _lookup(c, key)
    if z is None:
        if xx:
            return None if incr else 0
        limits = _limits(c)
        z = ZSetValue(listpack=not (limits[0] == 0 or limits[1] < len(argv[i + 1])))
        c.db.set(key, z)
    else:
        limits = None  # (read when a new member goes into a listpack: _grow)
    added = updated = processed = 0
    newscore = None
    try:
        for j in range(elements):
            score = scores[j]
            m = argv[i + 2 * j + 1]
            cur = z.scores.get(m)
            if cur is not None:
                if nx:
                    continue
                if incr:
                    score += cur
                    if math.isnan(score):
                        raise err("ERR resulting score is not a number (NaN)")
                if (lt and score >= cur) or (gt and score <= cur):
                    continue
                newscore = score
                if score != cur:
                    z.set(m, score)
                    updated += 1
                processed += 1
            elif not xx:
                if z.listpack:
                    _grow(z, m, limits or _limits(c))
                z.set(m, score)
                newscore = score
                added += 1
                processed += 1
    finally:
        if added or updated:
            modified(c, key, added + updated)
            ev(c, ZSET, b"zincr" if incr else b"zadd", key)
        if added:
            c.server.signal_key_ready(c.db, key)
    if incr:
        return Double(newscore) if processed else None
    return added + updated if ch else added


@command("zadd")
def cmd_zadd(c, argv):
    return zadd_generic(c, argv, False)


@command("zincrby")
def cmd_zincrby(c, argv):
    return zadd_generic(c, argv, True)


# --- simple reads and ZREM ------------------------------------------------------------


@command("zrem")
def cmd_zrem(c, argv):
    key = argv[1]
    z = _lookup(c, key)
    if z is None:
        return 0
    deleted = 0
    for m in argv[2:]:
        if z.remove(m):
            deleted += 1
            if not len(z):
                break
    if deleted:
        ev(c, ZSET, b"zrem", key)
        if not len(z):
            c.db.delete(key)
            ev(c, GENERIC, b"del", key)
        modified(c, key, deleted)
    return deleted


@command("zcard")
def cmd_zcard(c, argv):
    z = _lookup(c, argv[1], read=True)
    return 0 if z is None else len(z)


@command("zscore")
def cmd_zscore(c, argv):
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return None
    s = z.scores.get(argv[2])
    return None if s is None else Double(s)


@command("zmscore")
def cmd_zmscore(c, argv):
    z = _lookup(c, argv[1], read=True)
    out = []
    for m in argv[2:]:
        s = None if z is None else z.scores.get(m)
        out.append(None if s is None else Double(s))
    return out


def _zrank(c, argv, rev: bool):
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return None
    r = z.rank(argv[2])
    if r is None:
        return None
    return len(z) - 1 - r if rev else r


@command("zrank")
def cmd_zrank(c, argv):
    return _zrank(c, argv, False)


@command("zrevrank")
def cmd_zrevrank(c, argv):
    return _zrank(c, argv, True)


@command("zcount")
def cmd_zcount(c, argv):
    rng = parse_range_score(argv[2], argv[3])
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return 0
    a, b = z.score_span(*rng)
    return b - a


@command("zlexcount")
def cmd_zlexcount(c, argv):
    lo, hi = parse_lex_range(argv[2], argv[3])
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return 0
    a, b = z.lex_span(lo, hi)
    return b - a


# --- ZRANGE family ------------------------------------------------------------------

RANK, SCORE, LEX = 1, 2, 3
_ZREMRANGE_EV = {RANK: b"zremrangebyrank", SCORE: b"zremrangebyscore", LEX: b"zremrangebylex"}


def _rank_span(llen: int, start: int, end: int):
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    if start > end or start >= llen:
        return None
    if end >= llen:
        end = llen - 1
    return start, end


def _select(z: ZSetValue, rangetype, rng, rev: bool, offset: int, limit: int):
    """The (score, member) pairs of a range, in reply order."""
    llen = len(z)
    if rangetype == RANK:
        span = _rank_span(llen, rng[0], rng[1])
        if span is None:
            return []
        start, end = span
        if rev:
            return list(z.islice(llen - 1 - end, llen - start, reverse=True))
        return list(z.islice(start, end + 1))
    if offset > 0 and offset >= llen:
        return []
    if rangetype == SCORE:
        a, b = z.score_span(*rng)
    elif rev:
        a, b = z.lex_span_rev(*rng)
    else:
        a, b = z.lex_span(*rng)
    if offset < 0:
        return []
    n = b - a - offset
    if n <= 0:
        return []
    if 0 <= limit < n:
        n = limit
    if rev:
        return list(z.islice(b - offset - n, b - offset, reverse=True))
    return list(z.islice(a + offset, a + offset + n))


def _zrange_generic(c, argv, argc_start: int, store: bool, rangetype=None, direction=None):
    key = argv[argc_start]
    minidx, maxidx = argc_start + 1, argc_start + 2
    withscores = False
    offset = 0
    limit = -1
    n = len(argv)
    j = argc_start + 3
    while j < n:
        left = n - j - 1
        a = argv[j].lower()
        if not store and a == b"withscores":
            withscores = True
        elif a == b"limit" and left >= 2:
            offset = parse_int(argv[j + 1])
            limit = parse_int(argv[j + 2])
            j += 2
        elif direction is None and a == b"rev":
            direction = True
        elif rangetype is None and a == b"bylex":
            rangetype = LEX
        elif rangetype is None and a == b"byscore":
            rangetype = SCORE
        else:
            raise syntax_error()
        j += 1
    rev = bool(direction)
    if rangetype is None:
        rangetype = RANK
    if limit != -1 and rangetype == RANK:
        raise err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and rangetype == LEX:
        raise err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    if rev and rangetype != RANK:
        minidx, maxidx = maxidx, minidx
    if rangetype == RANK:
        rng = (parse_int(argv[minidx]), parse_int(argv[maxidx]))
    elif rangetype == SCORE:
        rng = parse_range_score(argv[minidx], argv[maxidx])
    else:
        rng = parse_lex_range(argv[minidx], argv[maxidx])
    z = _lookup(c, key, read=True)
    if z is None:
        pairs = []
    else:
        pairs = _select(z, rangetype, rng, rev, offset, limit)
    if store:
        limits = _limits(c)
        listpack = not (rangetype == RANK and len(pairs) > limits[0])
        out = ZSetValue(listpack=listpack)
        for s, m in pairs:
            if out.listpack:
                _grow(out, m, limits)
            out.set(m, s)
        return store_zset(c, argv[1], out, b"zrangestore")
    return _emit(pairs, withscores, c.resp == 3)


@command("zrange")
def cmd_zrange(c, argv):
    return _zrange_generic(c, argv, 1, False)


@command("zrangestore")
def cmd_zrangestore(c, argv):
    return _zrange_generic(c, argv, 2, True)


@command("zrevrange")
def cmd_zrevrange(c, argv):
    return _zrange_generic(c, argv, 1, False, RANK, True)


@command("zrangebyscore")
def cmd_zrangebyscore(c, argv):
    return _zrange_generic(c, argv, 1, False, SCORE, False)


@command("zrevrangebyscore")
def cmd_zrevrangebyscore(c, argv):
    return _zrange_generic(c, argv, 1, False, SCORE, True)


@command("zrangebylex")
def cmd_zrangebylex(c, argv):
    return _zrange_generic(c, argv, 1, False, LEX, False)


@command("zrevrangebylex")
def cmd_zrevrangebylex(c, argv):
    return _zrange_generic(c, argv, 1, False, LEX, True)


# --- ZREMRANGEBY* ------------------------------------------------------------------------


def _zremrange(c, argv, rangetype):
    if rangetype == RANK:
        rng = (parse_int(argv[2]), parse_int(argv[3]))
    elif rangetype == SCORE:
        rng = parse_range_score(argv[2], argv[3])
    else:
        rng = parse_lex_range(argv[2], argv[3])
    key = argv[1]
    z = _lookup(c, key)
    if z is None:
        return 0
    if rangetype == RANK:
        span = _rank_span(len(z), rng[0], rng[1])
        if span is None:
            return 0
        a, b = span[0], span[1] + 1
    elif rangetype == SCORE:
        a, b = z.score_span(*rng)
    else:
        a, b = z.lex_span(*rng)
    deleted = z.delete_span(a, b)
    if deleted:
        ev(c, ZSET, _ZREMRANGE_EV[rangetype], key)
        if not len(z):
            c.db.delete(key)
            ev(c, GENERIC, b"del", key)
        modified(c, key, deleted)
    return deleted


@command("zremrangebyrank")
def cmd_zremrangebyrank(c, argv):
    return _zremrange(c, argv, RANK)


@command("zremrangebyscore")
def cmd_zremrangebyscore(c, argv):
    return _zremrange(c, argv, SCORE)


@command("zremrangebylex")
def cmd_zremrangebylex(c, argv):
    return _zremrange(c, argv, LEX)


# --- pops --------------------------------------------------------------------------------


def _zpop(c, db, keys, where_max: bool, emitkey: bool, count: int, nested: bool,
          nil_when_empty: bool):
    """genericZpopCommand: (reply, key popped from or None)."""
    z = None
    key = None
    for k in keys:
        z = _lookup(c, k, db)
        if z is not None:
            key = k
            break
    if z is None:
        return (NullArray if nil_when_empty else []), None
    if count == 0:
        return [], None
    if count == -1:
        count = 1
    n = min(count, len(z))
    pairs = []
    for _ in range(n):
        s, m = z.pop_at(-1 if where_max else 0)
        pairs.append((s, m))
    srv = c.server
    if srv.notify_flags:
        _ev_db(srv, db, ZSET, b"zpopmax" if where_max else b"zpopmin", key)
    if not len(z):
        db.delete(key)
        if srv.notify_flags:
            _ev_db(srv, db, GENERIC, b"del", key)
    modified(c, key, n)
    if nested:
        body = [[m, Double(s)] for s, m in pairs]
        return ([key, body] if emitkey else body), key
    out = [key] if emitkey else []
    for s, m in pairs:
        out.append(m)
        out.append(Double(s))
    return out, key


def _zpop_cmd(c, argv, where_max: bool):
    if len(argv) > 3:
        raise syntax_error()
    count = -1
    if len(argv) == 3:
        count = _parse_positive(argv[2])
    nested = c.resp > 2 and count != -1
    return _zpop(c, c.db, [argv[1]], where_max, False, count, nested, False)[0]


@command("zpopmin")
def cmd_zpopmin(c, argv):
    return _zpop_cmd(c, argv, False)


@command("zpopmax")
def cmd_zpopmax(c, argv):
    return _zpop_cmd(c, argv, True)


def _pop_name(where_max: bool) -> bytes:
    return b"ZPOPMAX" if where_max else b"ZPOPMIN"


def _blocking_zpop(c, keys, where_max: bool, timeout_arg: bytes, count: int, nested: bool,
                   argv: list):
    """blockingGenericZpopCommand (``argv``: the command, for the blocked
    client's record)."""
    deadline = parse_timeout(c, timeout_arg)
    db = c.db
    for key in keys:
        z = _lookup(c, key)
        if z is None or not len(z):
            continue
        llen = len(z)
        reply, _k = _zpop(c, db, [key], where_max, True, count, nested, False)
        prop = [_pop_name(where_max), key]
        if count != -1:
            prop.append(b"%d" % min(count, llen))
        c.server.propagate(c.dbid, prop)
        return reply
    if c.flags & F.IN_EXEC:
        return NullArray  # a client that may not block times out at once
    from frtrio.core.engine import BlockOn

    def retry(cl, key):
        v = db.lookup(key, cl.server.now_ms)
        if type(v) is not ZSetValue or not len(v):
            return None
        llen = len(v)
        reply, _k = _zpop(cl, db, [key], where_max, True, count, nested, False)
        prop = [_pop_name(where_max), key]
        if count != -1:
            prop.append(b"%d" % min(count, llen))
        cl.server.propagate(db.id, prop)
        return reply

    return BlockOn(list(dict.fromkeys(keys)), db, deadline, retry, NullArray, argv)


@command("bzpopmin")
def cmd_bzpopmin(c, argv):
    return _blocking_zpop(c, argv[1:-1], False, argv[-1], -1, False, argv)


@command("bzpopmax")
def cmd_bzpopmax(c, argv):
    return _blocking_zpop(c, argv[1:-1], True, argv[-1], -1, False, argv)


def _zmpop_generic(c, argv, numkeys_idx: int, block: bool):
    numkeys = _parse_long_range(argv[numkeys_idx], 1, LLONG_MAX,
                                "ERR numkeys should be greater than 0")
    where_idx = numkeys_idx + numkeys + 1
    n = len(argv)
    if where_idx >= n:
        raise syntax_error()
    w = argv[where_idx].lower()
    if w == b"min":
        where_max = False
    elif w == b"max":
        where_max = True
    else:
        raise syntax_error()
    count = -1
    j = where_idx + 1
    while j < n:
        more = n - 1 - j
        if count == -1 and argv[j].lower() == b"count" and more:
            j += 1
            count = _parse_long_range(argv[j], 1, LLONG_MAX, "ERR count should be greater than 0")
        else:
            raise syntax_error()
        j += 1
    if count == -1:
        count = 1
    keys = argv[numkeys_idx + 1 : where_idx]
    if block:
        return _blocking_zpop(c, keys, where_max, argv[1], count, True, argv)
    reply, key = _zpop(c, c.db, keys, where_max, True, count, True, True)
    if key is not None:
        # the count propagated is what was popped (Redis: count > llen ? llen : count)
        c.server.propagate(c.dbid, [_pop_name(where_max), key, b"%d" % len(reply[1])])
    return reply


@command("zmpop")
def cmd_zmpop(c, argv):
    return _zmpop_generic(c, argv, 1, False)


@command("bzmpop")
def cmd_bzmpop(c, argv):
    return _zmpop_generic(c, argv, 2, True)


# --- ZRANDMEMBER -----------------------------------------------------------------------------


@command("zrandmember")
def cmd_zrandmember(c, argv):
    rng = c.server.rng
    if len(argv) >= 3:
        count = _parse_long_range(argv[2], -LLONG_MAX, LLONG_MAX)
        withscores = False
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
            raise syntax_error()
        if len(argv) == 4:
            withscores = True
            if count < -(LLONG_MAX // 2) or count > LLONG_MAX // 2:
                raise err("ERR value is out of range")
        z = _lookup(c, argv[1], read=True)
        if z is None or count == 0:
            return []
        size = len(z)
        resp3 = c.resp == 3
        if count < 0 or count == 1:
            count = abs(count)
            if too_many_for_output_limit(c, count, 12 if withscores else 6):
                return NO_REPLY
            pairs = [z.at(rng.randrange(size)) for _ in range(count)]
        elif count >= size:
            # the whole zset, walked as Redis's zset iterator does: backwards
            pairs = list(z.islice(0, size, reverse=True))
        else:
            idx = sorted(rng.sample(range(size), count))
            pairs = [z.at(i) for i in idx]
        return _emit(pairs, withscores, resp3)
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return None
    return z.at(rng.randrange(len(z)))[1]


# --- ZSCAN ------------------------------------------------------------------------------------


@command("zscan")
def cmd_zscan(c, argv):
    cursor = parse_scan_cursor(argv[2])
    z = _lookup(c, argv[1], read=True)
    if z is None:
        return [b"0", []]
    count = 10
    pattern = None
    i = 3
    n = len(argv)
    while i < n:
        a = argv[i].lower()
        if a == b"count" and n - i >= 2:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise syntax_error()
            i += 2
        elif a == b"match" and n - i >= 2:
            pattern = argv[i + 1]
            if pattern == b"*":
                pattern = None
            i += 2
        else:
            raise syntax_error()
    if z.listpack:
        nxt, items = 0, list(z.items())
        fmt = _listpack_score
    else:
        nxt, items = z.scan(cursor, count)
        fmt = format_double
    match = compile_pattern(pattern).match if pattern is not None else None
    out = []
    for m, s in items:
        if match is not None and match(m) is None:
            continue
        out.append(m)
        out.append(fmt(s))
    return [b"%d" % nxt, out]


_LP_INT_LIMIT = float(LLONG_MAX // 2)


def _listpack_score(s: float) -> bytes:
    """A score as a listpack stores it (d2string): integral values in
    Redis's double2ll range as integers, the rest as %.17g."""
    if -_LP_INT_LIMIT <= s <= _LP_INT_LIMIT and s == int(s):
        return b"%d" % int(s)
    return format_double(s)


# --- ZUNION / ZINTER / ZDIFF --------------------------------------------------------------------

UNION, INTER, DIFF = 1, 2, 3
_SETOP_EV = {UNION: b"zunionstore", INTER: b"zinterstore", DIFF: b"zdiffstore"}


def _src_items(v):
    """(member, score) of a zset or set source."""
    if type(v) is ZSetValue:
        return v.items()
    return ((m, 1.0) for m in v)


def _src_find(v, m):
    if type(v) is ZSetValue:
        return v.scores.get(m)
    return 1.0 if m in v else None


def _agg(target: float, val: float, how: int) -> float:
    if how == 0:
        r = target + val
        return 0.0 if math.isnan(r) else r
    if how == 1:
        return val if val < target else target
    return val if val > target else target


def _setop(c, argv, name: str, dstkey, numidx: int, op: int, card_only: bool = False):
    setnum = parse_int(argv[numidx])
    if setnum < 1:
        raise err("ERR at least 1 input key is needed for '%s' command" % name)
    n = len(argv)
    if setnum > n - (numidx + 1):
        raise syntax_error()
    srcs = []
    j = numidx + 1
    for _ in range(setnum):
        v = lookup_read(c, argv[j])  # (lookupKeyRead, STORE too)
        if v is not None and type(v) is not ZSetValue and not _is_set(v):
            raise wrongtype()
        srcs.append([v, 1.0])
        j += 1
    aggregate = 0
    withscores = False
    limit = 0
    while j < n:
        remaining = n - j
        a = argv[j].lower()
        if op != DIFF and not card_only and remaining >= setnum + 1 and a == b"weights":
            j += 1
            for s in srcs:
                s[1] = parse_score(argv[j], "ERR weight value is not a float")
                j += 1
        elif op != DIFF and not card_only and remaining >= 2 and a == b"aggregate":
            how = argv[j + 1].lower()
            if how == b"sum":
                aggregate = 0
            elif how == b"min":
                aggregate = 1
            elif how == b"max":
                aggregate = 2
            else:
                raise syntax_error()
            j += 2
        elif remaining >= 1 and dstkey is None and not card_only and a == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and a == b"limit":
            limit = _parse_positive(argv[j + 1], "ERR LIMIT can't be negative")
            j += 2
        else:
            raise syntax_error()
    if op != DIFF:
        srcs.sort(key=lambda s: len(s[0]) if s[0] is not None else 0)
    result: dict[bytes, float] = {}
    if op == INTER:
        first, w0 = srcs[0]
        card = 0
        if first:
            for m, s in _src_items(first):
                score = w0 * s
                if math.isnan(score):
                    score = 0.0
                ok = True
                for v, w in srcs[1:]:
                    if v is first:
                        value = s * w
                    else:
                        value = _src_find(v, m)
                        if value is None:
                            ok = False
                            break
                        value *= w
                    score = _agg(score, value, aggregate)
                if not ok:
                    continue
                if card_only:
                    card += 1
                    if limit and card >= limit:
                        break
                else:
                    result[m] = score
        if card_only:
            return card
    elif op == UNION:
        for v, w in srcs:
            if not v:
                continue
            for m, s in _src_items(v):
                score = w * s
                if math.isnan(score):
                    score = 0.0
                old = result.get(m)
                result[m] = score if old is None else _agg(old, score, aggregate)
    else:
        first = srcs[0][0]
        if first:
            others = [v for v, _w in srcs[1:] if v]
            for m, s in _src_items(first):
                if not any(_src_find(v, m) is not None for v in others):
                    result[m] = s
    z = ZSetValue(listpack=False)
    for m, s in result.items():
        z.set(m, s)
    if dstkey is not None:
        fit_listpack(c, z)
        return store_zset(c, dstkey, z, _SETOP_EV[op])
    return _emit(z.islice(0, len(z)), withscores, c.resp == 3)


@command("zunionstore")
def cmd_zunionstore(c, argv):
    return _setop(c, argv, "zunionstore", argv[1], 2, UNION)


@command("zinterstore")
def cmd_zinterstore(c, argv):
    return _setop(c, argv, "zinterstore", argv[1], 2, INTER)


@command("zdiffstore")
def cmd_zdiffstore(c, argv):
    return _setop(c, argv, "zdiffstore", argv[1], 2, DIFF)


@command("zunion")
def cmd_zunion(c, argv):
    return _setop(c, argv, "zunion", None, 1, UNION)


@command("zinter")
def cmd_zinter(c, argv):
    return _setop(c, argv, "zinter", None, 1, INTER)


@command("zdiff")
def cmd_zdiff(c, argv):
    return _setop(c, argv, "zdiff", None, 1, DIFF)


@command("zintercard")
def cmd_zintercard(c, argv):
    return _setop(c, argv, "zintercard", None, 1, INTER, card_only=True)
