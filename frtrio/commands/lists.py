"""List commands, blocking list commands and CLIENT UNBLOCK (Redis 7.0).

Lists are ``ListValue`` chunk chains (``store.quicklist``); a list that
becomes empty is deleted. The order in which arguments are validated and
keys looked up follows Redis's t_list.c, since it decides which error a bad
request gets (e.g. ``LRANGE`` parses its indexes before it looks at the
key, ``LINDEX`` after).

Blocking commands first try to answer at once. If they cannot (and the
client is not inside EXEC) they return ``engine.BlockOn`` with a ``retry``
that ``frtrio.core.blocking`` calls when one of the keys gets elements; a served
client's pop is propagated as the non-blocking command Redis writes to the
AOF (``BLPOP`` -> ``LPOP key``, ``BLMPOP`` -> ``LPOP key count``, ``BLMOVE`` ->
``LMOVE``, ``BRPOPLPUSH`` -> ``RPOPLPUSH``).
"""

from __future__ import annotations


from frtrio.core.blocking import may_block, parse_timeout
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_INT,
    err,
    lookup_read,
    parse_int,
    syntax_error,
    wrongtype,
)
from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, LIST, notify
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, ErrorReply, NullArray
from frtrio.store.db import ListValue

LEFT, RIGHT = 0, 1
_POS_NAMES = (b"LEFT", b"RIGHT")
_PUSH_EV = (b"lpush", b"rpush")
_POP_EV = (b"lpop", b"rpop")


# --- helpers ----------------------------------------------------------------


def get_list(c, key: bytes, read: bool = False):
    """The list at key or None; WRONGTYPE for another type. ``read``: a read
    lookup, counted in keyspace_hits / keyspace_misses."""
    v = lookup_read(c, key) if read else c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is ListValue:
        return v
    raise wrongtype()


def _list_of(db, key: bytes, now: int):
    """For blocked clients: the non-empty list at key, else None (a key of
    another type does not serve list waiters, as in Redis)."""
    v = db.lookup(key, now)
    if type(v) is ListValue and v:
        return v
    return None


def _parse_long(b: bytes, msg: str = NOT_INT) -> int:
    return parse_int(b, msg)


def _parse_positive(b: bytes, msg: str) -> int:
    """getPositiveLongFromObjectOrReply with a message: used for both a
    non-integer and a negative value."""
    v = string2ll(b)
    if v is None or v < 0 or v > LLONG_MAX:
        raise ErrorReply(msg)
    return v


def _parse_range(b: bytes, lo: int, hi: int, msg: str | None) -> int:
    """getRangeLongFromObjectOrReply."""
    v = string2ll(b)
    if v is None or v < LLONG_MIN or v > LLONG_MAX:
        raise ErrorReply(msg or NOT_INT)
    if v < lo or v > hi:
        if msg is not None:
            raise ErrorReply(msg)
        raise ErrorReply("ERR value is out of range, value must between %d and %d" % (lo, hi))
    return v


def _where(b: bytes) -> int:
    a = b.lower()
    if a == b"left":
        return LEFT
    if a == b"right":
        return RIGHT
    raise syntax_error()


def _pop(v: ListValue, where: int):
    return v.popleft() if where == LEFT else v.pop()


def _push(v: ListValue, where: int, x: bytes) -> None:
    if where == LEFT:
        v.appendleft(x)
    else:
        v.append(x)


def _ev(srv, db, event: bytes, key: bytes, flag: int = LIST) -> None:
    if srv.notify_flags & flag:
        notify(srv, flag, event, key, db.id)


def _removed(c, db, key: bytes, v: ListValue, n: int, event: bytes) -> None:
    """Elements were removed from the list at key: notify ``event``, delete
    it when empty (and notify 'del'), count the change and invalidate WATCH."""
    srv = c.server
    if srv.notify_flags:
        _ev(srv, db, event, key)
    if not v:
        db.delete(key)
        if srv.notify_flags:
            _ev(srv, db, b"del", key, GENERIC)
    else:
        db.recharge(key)  # (charged at its new size: used_memory drifted up after pops)
    srv.dirty += n
    srv.touch_key(db, key)


def _pop_range(v: ListValue, where: int, count: int) -> list:
    n = min(count, len(v))
    if where == LEFT:
        return [v.popleft() for _ in range(n)]
    return [v.pop() for _ in range(n)]


def _signal_push(c, db, key: bytes) -> None:
    c.server.signal_key_ready(db, key)


# --- push -------------------------------------------------------------------


def _push_generic(c, argv, where: int, xx: bool):
    key = argv[1]
    db = c.db
    v = get_list(c, key)
    if v is None:
        if xx:
            return 0
        v = ListValue()
        db.add(key, v)
    if where == LEFT:
        v.extendleft(argv[2:])
    else:
        v.extend(argv[2:])
    modified(c, key, len(argv) - 2)
    _ev(c.server, db, b"lpush" if where == LEFT else b"rpush", key)
    _signal_push(c, db, key)
    return len(v)


@command("lpush")
def cmd_lpush(c, argv):
    return _push_generic(c, argv, LEFT, False)


@command("rpush")
def cmd_rpush(c, argv):
    return _push_generic(c, argv, RIGHT, False)


@command("lpushx")
def cmd_lpushx(c, argv):
    return _push_generic(c, argv, LEFT, True)


@command("rpushx")
def cmd_rpushx(c, argv):
    return _push_generic(c, argv, RIGHT, True)


# --- pop --------------------------------------------------------------------


def _pop_generic(c, argv, where: int):
    if len(argv) > 3:
        raise err("ERR wrong number of arguments for '%s' command" % argv[0].lower().decode("latin-1"))
    count = None
    if len(argv) == 3:
        count = _parse_positive(argv[2], "ERR value is out of range, must be positive")
    key = argv[1]
    v = get_list(c, key)
    if v is None:
        return NullArray if count is not None else None
    if count is None:
        x = _pop(v, where)
        _removed(c, c.db, key, v, 1, _POP_EV[where])
        return x
    if count == 0:
        return []
    out = _pop_range(v, where, count)
    _removed(c, c.db, key, v, len(out), _POP_EV[where])
    return out


@command("lpop")
def cmd_lpop(c, argv):
    return _pop_generic(c, argv, LEFT)


@command("rpop")
def cmd_rpop(c, argv):
    return _pop_generic(c, argv, RIGHT)


# --- read -------------------------------------------------------------------


@command("llen")
def cmd_llen(c, argv):
    v = get_list(c, argv[1], read=True)
    return 0 if v is None else len(v)


@command("lindex")
def cmd_lindex(c, argv):
    v = get_list(c, argv[1], read=True)
    if v is None:
        return None
    i = _parse_long(argv[2])
    n = len(v)
    if i < 0:
        i += n
    if i < 0 or i >= n:
        return None
    return v[i]


def _range(v, start: int, end: int):
    """LRANGE's clamping; None for an empty range, else (start, end)."""
    n = len(v)
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end


@command("lrange")
def cmd_lrange(c, argv):
    start = _parse_long(argv[2])
    end = _parse_long(argv[3])
    v = get_list(c, argv[1], read=True)
    if v is None:
        return []
    r = _range(v, start, end)
    if r is None:
        return []
    s, e = r
    return v.range(s, e + 1)


# --- modify -----------------------------------------------------------------


@command("lset")
def cmd_lset(c, argv):
    key = argv[1]
    v = get_list(c, key)
    if v is None:
        raise err("ERR no such key")
    i = _parse_long(argv[2])
    n = len(v)
    if i < 0:
        i += n
    if i < 0 or i >= n:
        raise err("ERR index out of range")
    v[i] = argv[3]
    modified(c, key)
    ev(c, LIST, b"lset", key)
    return OK


@command("ltrim")
def cmd_ltrim(c, argv):
    start = _parse_long(argv[2])
    end = _parse_long(argv[3])
    key = argv[1]
    v = get_list(c, key)
    if v is None:
        return OK
    n = len(v)
    r = _range(v, start, end)
    if r is None:
        ltrim, rtrim = n, 0
    else:
        s, e = r
        ltrim, rtrim = s, n - e - 1
    v.trim(ltrim, rtrim)
    _removed(c, c.db, key, v, ltrim + rtrim, b"ltrim")
    return OK


@command("lrem")
def cmd_lrem(c, argv):
    count = _parse_long(argv[2])
    key = argv[1]
    v = get_list(c, key)
    if v is None:
        return 0
    x = argv[3]
    if x not in v:
        return 0
    removed = 0
    if count >= 0:
        limit = count or len(v)
        keep = []
        for e in v:
            if e == x and removed < limit:
                removed += 1
            else:
                keep.append(e)
    else:
        limit = -count
        keep = []
        for e in reversed(v):
            if e == x and removed < limit:
                removed += 1
            else:
                keep.append(e)
        keep.reverse()
    v.clear()
    v.extend(keep)
    _removed(c, c.db, key, v, removed, b"lrem")
    return removed


@command("linsert")
def cmd_linsert(c, argv):
    w = argv[2].lower()
    if w == b"after":
        after = True
    elif w == b"before":
        after = False
    else:
        raise syntax_error()
    key = argv[1]
    v = get_list(c, key)
    if v is None:
        return 0
    try:
        i = v.index(argv[3])
    except ValueError:
        return -1
    v.insert(i + 1 if after else i, argv[4])
    modified(c, key)
    ev(c, LIST, b"linsert", key)
    return len(v)


@command("lpos")
def cmd_lpos(c, argv):
    rank = 1
    count = -1
    maxlen = 0
    j = 3
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        more = argc - 1 - j
        if opt == b"rank" and more:
            j += 1
            rank = _parse_long(argv[j])
            if rank == 0:
                raise err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from "
                    "the second ... or use negative to start from the end of the list"
                )
        elif opt == b"count" and more:
            j += 1
            count = _parse_positive(argv[j], "ERR COUNT can't be negative")
        elif opt == b"maxlen" and more:
            j += 1
            maxlen = _parse_positive(argv[j], "ERR MAXLEN can't be negative")
        else:
            raise syntax_error()
        j += 1
    v = get_list(c, argv[1], read=True)
    if v is None:
        return [] if count != -1 else None
    from_tail = rank < 0
    # Redis negates the rank in a C long: LLONG_MIN stays negative, so every
    # match counts and a COUNT limit is never reached (wrapped arithmetic).
    unlimited = rank == LLONG_MIN
    if unlimited:
        rank = 1
    elif from_tail:
        rank = -rank
    x = argv[2]
    n = len(v)
    it = reversed(v) if from_tail else iter(v)
    matches = 0
    out = []
    for i, e in enumerate(it):
        if maxlen and i >= maxlen:
            break
        if e == x:
            matches += 1
            if matches >= rank:
                out.append(n - 1 - i if from_tail else i)
                if count == -1:
                    break
                if count and not unlimited and matches - rank + 1 >= count:
                    break
    if count == -1:
        return out[0] if out else None
    return out


# --- move ---------------------------------------------------------------------


def _move(c, db, src: bytes, dst: bytes, sv: ListValue, wfrom: int, wto: int):
    """Move one element from the (non-empty) list sv at src to dst; the
    caller has checked dst's type. Returns the element."""
    x = _pop(sv, wfrom)
    srv = c.server
    if dst == src:
        _push(sv, wto, x)
        if srv.notify_flags:
            _ev(srv, db, _PUSH_EV[wto], dst)
            _ev(srv, db, _POP_EV[wfrom], src)
    else:
        dv = db.lookup(dst, srv.now_ms)
        if dv is None:
            dv = ListValue()
            db.add(dst, dv)
        _push(dv, wto, x)
        srv.touch_key(db, dst)
        srv.signal_key_ready(db, dst)
        if srv.notify_flags:
            _ev(srv, db, _PUSH_EV[wto], dst)
            _ev(srv, db, _POP_EV[wfrom], src)
        if not sv:
            db.delete(src)
            if srv.notify_flags:
                _ev(srv, db, b"del", src, GENERIC)
    db.recharge(src)  # (both charged at their new sizes)
    db.recharge(dst)
    srv.touch_key(db, src)
    srv.dirty += 1
    return x


def _lmove_generic(c, argv, wfrom: int, wto: int, rewrite=None):
    src, dst = argv[1], argv[2]
    sv = get_list(c, src)
    if sv is None or not sv:
        return None
    get_list(c, dst)  # WRONGTYPE check
    x = _move(c, c.db, src, dst, sv, wfrom, wto)
    if rewrite is not None:
        c.server.propagate(c.dbid, rewrite)
    return x


@command("lmove")
def cmd_lmove(c, argv):
    wfrom = _where(argv[3])
    wto = _where(argv[4])
    return _lmove_generic(c, argv, wfrom, wto)


@command("rpoplpush")
def cmd_rpoplpush(c, argv):
    return _lmove_generic(c, argv, RIGHT, LEFT)


# --- LMPOP --------------------------------------------------------------------


def _parse_mpop(argv, numkeys_idx: int):
    """numkeys, where and count of [B]LMPOP (Redis's mpopGenericCommand)."""
    numkeys = _parse_range(argv[numkeys_idx], 1, LLONG_MAX, "ERR numkeys should be greater than 0")
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise syntax_error()
    where = _where(argv[where_idx])
    count = -1
    j = where_idx + 1
    while j < len(argv):
        more = len(argv) - 1 - j
        if count == -1 and argv[j].lower() == b"count" and more:
            j += 1
            count = _parse_range(argv[j], 1, LLONG_MAX, "ERR count should be greater than 0")
        else:
            raise syntax_error()
        j += 1
    if count == -1:
        count = 1
    keys = argv[numkeys_idx + 1 : numkeys_idx + 1 + numkeys]
    return keys, where, count


def _mpop_from(c, db, key: bytes, v: ListValue, where: int, count: int):
    out = _pop_range(v, where, count)
    _removed(c, db, key, v, len(out), _POP_EV[where])
    c.server.propagate(db.id, [b"LPOP" if where == LEFT else b"RPOP", key, b"%d" % len(out)])
    return [key, out]


@command("lmpop")
def cmd_lmpop(c, argv):
    keys, where, count = _parse_mpop(argv, 1)
    for k in keys:
        v = get_list(c, k)
        if v is None:
            continue
        return _mpop_from(c, c.db, k, v, where, count)
    return NullArray


# --- blocking -----------------------------------------------------------------


def _block(c, keys, deadline, retry, on_timeout, argv):
    from frtrio.core.engine import BlockOn

    return BlockOn(list(keys), c.db, deadline, retry, on_timeout, argv)


def _bpop(c, argv, where: int):
    deadline = parse_timeout(c, argv[-1])
    keys = argv[1:-1]
    popname = b"LPOP" if where == LEFT else b"RPOP"
    for k in keys:
        v = get_list(c, k)
        if not v:
            continue
        x = _pop(v, where)
        _removed(c, c.db, k, v, 1, _POP_EV[where])
        c.server.propagate(c.dbid, [popname, k])
        return [k, x]
    if not may_block(c):
        return NullArray
    db = c.db

    def retry(client, key):
        v = _list_of(db, key, client.server.now_ms)
        if v is None:
            return None
        x = _pop(v, where)
        _removed(client, db, key, v, 1, _POP_EV[where])
        client.server.propagate(db.id, [popname, key])
        return [key, x]

    return _block(c, keys, deadline, retry, NullArray, argv)


@command("blpop")
def cmd_blpop(c, argv):
    return _bpop(c, argv, LEFT)


@command("brpop")
def cmd_brpop(c, argv):
    return _bpop(c, argv, RIGHT)


def _blmove_generic(c, argv, wfrom: int, wto: int, deadline, brpoplpush: bool):
    src, dst = argv[1], argv[2]
    if brpoplpush:
        rewrite = [b"RPOPLPUSH", src, dst]
    else:
        rewrite = [b"LMOVE", src, dst, _POS_NAMES[wfrom], _POS_NAMES[wto]]
    sv = get_list(c, src)
    if sv:
        return _lmove_generic(c, argv, wfrom, wto, rewrite)
    if not may_block(c):
        return None  # (a null bulk here, but a null array on timeout)
    db = c.db

    def retry(client, key):
        now = client.server.now_ms
        sv = _list_of(db, src, now)
        if sv is None:
            return None
        dv = db.lookup(dst, now)
        if dv is not None and type(dv) is not ListValue:
            return wrongtype()
        x = _move(client, db, src, dst, sv, wfrom, wto)
        client.server.propagate(db.id, list(rewrite))
        return x

    return _block(c, [src], deadline, retry, NullArray, argv)


@command("blmove")
def cmd_blmove(c, argv):
    wfrom = _where(argv[3])
    wto = _where(argv[4])
    deadline = parse_timeout(c, argv[5])
    return _blmove_generic(c, argv, wfrom, wto, deadline, False)


@command("brpoplpush")
def cmd_brpoplpush(c, argv):
    deadline = parse_timeout(c, argv[3])
    return _blmove_generic(c, argv, RIGHT, LEFT, deadline, True)


@command("blmpop")
def cmd_blmpop(c, argv):
    keys, where, count = _parse_mpop(argv, 2)
    deadline = parse_timeout(c, argv[1])
    for k in keys:
        v = get_list(c, k)
        if not v:
            continue
        return _mpop_from(c, c.db, k, v, where, count)
    if not may_block(c):
        return NullArray
    db = c.db

    def retry(client, key):
        v = _list_of(db, key, client.server.now_ms)
        if v is None:
            return None
        return _mpop_from(client, db, key, v, where, count)

    return _block(c, keys, deadline, retry, NullArray, argv)


# --- CLIENT UNBLOCK -------------------------------------------------------------


@command("client|unblock")
def client_unblock(c, argv):
    if len(argv) not in (3, 4):
        raise err(
            "ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP."
            % argv[1].decode("latin-1")
        )
    error = False
    if len(argv) == 4:
        r = argv[3].lower()
        if r == b"timeout":
            error = False
        elif r == b"error":
            error = True
        else:
            raise err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    cid = parse_int(argv[2])
    srv = c.server
    target = srv.clients.get(cid)
    if target is None or target.blocked is None:
        return 0
    held = srv.shutdown_blocked.get(cid)
    if held is not None and held[1] is target.blocked:
        # blocked in SHUTDOWN: only the shutdown's end answers it (Redis
        # 7.0.15 panics here: "Unknown btype in replyToBlockedClientTimedOut")
        return 0
    if error:
        srv.blocking.unblock(target, ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
    else:
        srv.blocking.timeout(target)
    return 1
