"""Stream commands (Redis 7.0): XADD ... XAUTOCLAIM, consumer groups, XINFO,
blocking XREAD / XREADGROUP.

The value type is ``store.stream.Stream``. Argument parsing, validation
order and error texts follow t_stream.c, since they decide which error a bad
request gets. Writes are propagated the way Redis propagates them: XADD with
the generated ID and an approximate trim rewritten to ``=`` its result,
XREADGROUP / XCLAIM / XAUTOCLAIM as ``XCLAIM ... FORCE JUSTID LASTID`` per
delivered or dropped entry plus ``XGROUP SETID`` / ``XGROUP CREATECONSUMER``
where Redis adds them (the command itself is not propagated).

A client blocked in XREAD / XREADGROUP waits in ``frtrio.core.blocking`` on the
keys; XADD and XGROUP DESTROY make the key ready. A served XREAD client gets
the one stream that became ready (as Redis answers); an XREADGROUP client
whose group is gone gets ``NOGROUP``.
"""

from __future__ import annotations

from frtrio.commands.util import ev
from frtrio.core.notify import STREAM, notify
from frtrio.core.cnum import cstr
from frtrio.core.client import F
from frtrio.core.blocking import may_block
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    err,
    lookup_read,
    parse_int,
    parse_range,
    syntax_error,
    wrongtype,
)
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, Map, NullArray, Raw, Status
from frtrio.store.stream import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    NACK,
    U64,
    Consumer,
    Group,
    Stream,
    estimate_distance,
    group_lag,
    id_str,
    range_has_tombstones,
)

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
XREAD_BLOCKED_DEFAULT_COUNT = 1000
_SPACE = b" \t\n\v\f\r"


# --- IDs ------------------------------------------------------------------------


def _strtoull(s: bytes):
    """Redis's string2ull: string2ll, else C strtoull (base 10, whole
    string)."""
    v = string2ll(s)
    if v is not None:
        return None if v < 0 else v
    i = 0
    n = len(s)
    if n == 0:
        return None
    while i < n and s[i] in _SPACE:
        i += 1
    neg = False
    if i < n and s[i] in b"+-":
        neg = s[i] == 45
        i += 1
    j = i
    while j < n and 48 <= s[j] <= 57:
        j += 1
    if j == i or j != n:
        return None
    v = int(s[i:j])
    if v > U64:
        return None  # ERANGE
    return (-v) & U64 if neg else v


def parse_id(b: bytes, strict: bool = False, missing_seq: int = 0, allow_star: bool = False):
    """streamGenericParseIDOrReply -> (id, seq_given)."""
    if len(b) > 127:
        raise err(INVALID_ID)
    b = cstr(b)
    if strict and b in (b"-", b"+"):
        raise err(INVALID_ID)
    if b == b"-":
        return 0, True
    if b == b"+":
        return MAX_ID, True
    dash = b.find(b"-")
    if dash >= 0:
        ms = _strtoull(b[:dash])
        if ms is None:
            raise err(INVALID_ID)
        rest = b[dash + 1 :]
        if allow_star and rest == b"*":
            return ms << 64, False
        seq = _strtoull(rest)
        if seq is None:
            raise err(INVALID_ID)
    else:
        ms = _strtoull(b)
        if ms is None:
            raise err(INVALID_ID)
        seq = missing_seq
    return (ms << 64) | seq, True


def parse_interval(b: bytes, missing_seq: int):
    """streamParseIntervalIDOrReply -> (id, exclusive)."""
    if len(b) > 1 and b[0] == 40:  # '('
        return parse_id(b[1:], True, missing_seq)[0], True
    return parse_id(b, False, missing_seq)[0], False


def entry_reply(i: int, flat) -> Raw:
    """One entry as RESP (the same bytes in RESP2 and RESP3): [id, [f, v, ...]]."""
    sid = id_str(i)
    parts = [b"*2\r\n$%d\r\n%s\r\n*%d\r\n" % (len(sid), sid, len(flat))]
    for x in flat:
        parts.append(b"$%d\r\n" % len(x))
        parts.append(x)
        parts.append(b"\r\n")
    return Raw(b"".join(parts))


# --- lookups ----------------------------------------------------------------------


def get_stream(c, key: bytes, read: bool = False):
    v = lookup_read(c, key) if read else c.db.lookup(key, c.server.now_ms)
    if v is None or type(v) is Stream:
        return v
    raise wrongtype()


def _nogroup(key: bytes, group: bytes, tail: str = ""):
    return err(
        "NOGROUP No such key '%s' or consumer group '%s'%s"
        % (key.decode("latin-1"), group.decode("latin-1"), tail)
    )


def _lookup_consumer(c, g: Group, name: bytes, refresh: bool = True):
    cons = g.consumers.get(name)
    if cons is not None and refresh:
        cons.seen_time = c.server.now_ms
    return cons


def _create_consumer(c, g: Group, name: bytes, key: bytes, dbid: int):
    """streamCreateConsumer: None if it exists; counts a change and
    notifies 'xgroup-createconsumer' on ``key``."""
    if name in g.consumers:
        return None
    srv = c.server
    cons = Consumer(name, srv.now_ms)
    g.consumers[name] = cons
    srv.dirty += 1
    if srv.notify_flags & STREAM:
        notify(srv, STREAM, b"xgroup-createconsumer", key, dbid)
    return cons


# --- XADD / XTRIM ---------------------------------------------------------------


class _TrimArgs:
    __slots__ = ("id", "id_given", "seq_given", "nomk", "strategy", "arg_idx", "approx",
                 "limit", "maxlen", "minid")

    def __init__(self):
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.nomk = False
        self.strategy = None  # "maxlen" / "minid"
        self.arg_idx = 0
        self.approx = False
        self.limit = 0
        self.maxlen = 0
        self.minid = 0


def _must_obey(c) -> bool:
    return bool(c.server.loading or c.flags & F.MASTER)


def _parse_add_trim(c, argv, xadd: bool):
    a = _TrimArgs()
    i = 2
    argc = len(argv)
    limit_given = False
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        lo = opt.lower()
        if xadd and opt[:1] == b"*" and (len(opt) == 1 or opt[1] == 0):
            break
        elif lo == b"maxlen" and more:
            if a.strategy is not None:
                raise err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            a.maxlen = parse_int(argv[i + 1])
            if a.maxlen < 0:
                raise err("ERR The MAXLEN argument must be >= 0.")
            i += 1
            a.strategy = "maxlen"
            a.arg_idx = i
        elif lo == b"minid" and more:
            if a.strategy is not None:
                raise err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            a.minid = parse_id(argv[i + 1], True, 0)[0]
            i += 1
            a.strategy = "minid"
            a.arg_idx = i
        elif lo == b"limit" and more:
            a.limit = parse_int(argv[i + 1])
            if a.limit < 0:
                raise err("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and lo == b"nomkstream":
            a.nomk = True
        elif xadd:
            a.id, a.seq_given = parse_id(opt, True, 0, allow_star=True)
            a.id_given = True
            break
        else:
            raise syntax_error()
        i += 1
    if a.limit and a.strategy is None:
        raise err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and a.strategy is None:
        raise err("ERR syntax error, XTRIM must be called with a trimming strategy")
    if _must_obey(c):
        a.limit = 0
    elif limit_given:
        if not a.approx:
            raise err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    elif a.approx:
        per = c.server.config.get_int("stream-node-max-entries")
        a.limit = 100 * per
        if a.limit <= 0:
            a.limit = 10000
        if a.limit > 1000000:
            a.limit = 1000000
    else:
        a.limit = 0
    return a, i


def _trim(s: Stream, a: _TrimArgs) -> int:
    if a.strategy == "maxlen":
        return s.trim(a.maxlen, None, a.approx, a.limit)
    return s.trim(None, a.minid, a.approx, a.limit)


def _rewrite_trim(argv: list, s: Stream, a: _TrimArgs) -> None:
    argv[a.arg_idx - 1] = b"="
    if a.strategy == "maxlen":
        argv[a.arg_idx] = b"%d" % s.length
    else:
        f = s.first_entry_id()
        argv[a.arg_idx] = id_str(MAX_ID if f is None else f)


_LIMITS_CACHE: list = [None, None]  # [(raw bytes, raw entries), parsed]


def _node_limits(c):
    cfg = c.server.config
    vals = cfg.values
    raw = (vals["stream-node-max-bytes"], vals["stream-node-max-entries"])
    if _LIMITS_CACHE[0] != raw:
        _LIMITS_CACHE[1] = (cfg.get_int("stream-node-max-bytes"),
                            cfg.get_int("stream-node-max-entries"))
        _LIMITS_CACHE[0] = raw
    return _LIMITS_CACHE[1]


@command("xadd")
def cmd_xadd(c, argv):
    a, idpos = _parse_add_trim(c, argv, True)
    fpos = idpos + 1
    n = len(argv) - fpos
    if n < 2 or n % 2:
        raise err("ERR wrong number of arguments for 'xadd' command")
    if a.id_given and a.seq_given and a.id == 0:
        raise err("ERR The ID specified in XADD must be greater than 0-0")
    key = argv[1]
    s = get_stream(c, key)
    created = False
    if s is None:
        if a.nomk:
            return None
        s = Stream()
        created = True
    if s.last_id == MAX_ID:
        raise err("ERR The stream has exhausted the last possible ID, unable to add more items")
    last = s.last_id
    if a.id_given:
        if a.seq_given:
            nid = a.id
        elif (last >> 64) == (a.id >> 64):
            if (last & U64) == U64:
                raise err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
            nid = last + 1
        else:
            nid = a.id
    else:
        ms = c.server.now_ms
        nid = ms << 64 if ms > (last >> 64) else last + 1
    if nid <= last:
        raise err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    flat = argv[fpos:]
    tot = 0
    for x in flat:
        tot += len(x)
    if tot > (1 << 30):
        raise err("ERR Elements are too large to be stored")
    if created:
        c.db.add(key, s)
    mb, me = _node_limits(c)
    s.append(nid, list(flat), mb, me)
    modified(c, key)
    ev(c, STREAM, b"xadd", key)
    prop = list(argv)
    if a.strategy is not None:
        if _trim(s, a):
            ev(c, STREAM, b"xtrim", key)
        if a.approx:
            _rewrite_trim(prop, s, a)
    sid = id_str(nid)
    if not a.id_given or not a.seq_given:
        prop[idpos] = sid
    c.server.propagate(c.dbid, prop)
    c.server.signal_key_ready(c.db, key)
    return sid


@command("xtrim")
def cmd_xtrim(c, argv):
    a, _ = _parse_add_trim(c, argv, False)
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return 0
    deleted = _trim(s, a)
    if deleted:
        prop = list(argv)
        if a.approx:
            _rewrite_trim(prop, s, a)
        modified(c, key, deleted)
        ev(c, STREAM, b"xtrim", key)
        c.server.propagate(c.dbid, prop)
    return deleted


# --- reading ----------------------------------------------------------------------


def _xrange(c, argv, rev: bool):
    sa, ea = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start, sx = parse_interval(sa, 0)
    if sx:
        if start == MAX_ID:
            raise err("ERR invalid start ID for the interval")
        start += 1
    end, ex = parse_interval(ea, U64)
    if ex:
        if end == 0:
            raise err("ERR invalid end ID for the interval")
        end -= 1
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and len(argv) - j - 1 >= 1:
            count = parse_int(argv[j + 1])
            if count < 0:
                count = 0
            j += 2
        else:
            raise syntax_error()
    s = get_stream(c, argv[1], read=True)
    if s is None:
        return []
    if count == 0:
        return NullArray
    out = []
    for i, flat in s.range(start, end, rev):
        out.append(entry_reply(i, flat))
        if len(out) == count:
            break
    return out


@command("xrange")
def cmd_xrange(c, argv):
    return _xrange(c, argv, False)


@command("xrevrange")
def cmd_xrevrange(c, argv):
    return _xrange(c, argv, True)


@command("xlen")
def cmd_xlen(c, argv):
    s = get_stream(c, argv[1], read=True)
    return 0 if s is None else s.length


def _xclaim_argv(key, gname, g: Group, id_b: bytes, nack: NACK):
    return [b"XCLAIM", key, gname, nack.consumer.name, b"0", id_b, b"TIME",
            b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
            b"FORCE", b"JUSTID", b"LASTID", id_str(g.last_id)]


def _setid_argv(key, gname, g: Group):
    return [b"XGROUP", b"SETID", key, gname, id_str(g.last_id), b"ENTRIESREAD",
            b"%d" % g.entries_read]


def _serve_range(c, dbid, s: Stream, key, start: int, count: int, g: Group | None,
                 cons: Consumer | None, noack: bool, gname):
    """streamReplyWithRange from ``start`` to the end (for XREAD/XREADGROUP)."""
    srv = c.server
    out = []
    prop_last = False
    for i, flat in s.range(start, MAX_ID):
        if g is not None and i > g.last_id:
            if g.entries_read != INVALID_ENTRIES_READ and not range_has_tombstones(s, i, None):
                g.entries_read += 1
            elif s.entries_added:
                g.entries_read = estimate_distance(s, i)
            g.last_id = i
            if noack:
                prop_last = True
        out.append(entry_reply(i, flat))
        if g is not None and not noack:
            nack = g.pel.get(i)
            if nack is None:
                nack = NACK(cons, srv.now_ms)
                g.pel[i] = nack
                cons.pel[i] = nack
            else:
                nack.consumer.pel.pop(i, None)
                nack.consumer = cons
                nack.delivery_time = srv.now_ms
                nack.delivery_count = 1
                cons.pel[i] = nack
            srv.propagate(dbid, _xclaim_argv(key, gname, g, id_str(i), nack))
        if count and len(out) == count:
            break
    if prop_last:
        srv.propagate(dbid, _setid_argv(key, gname, g))
    return out


def _serve_history(c, s: Stream, cons: Consumer, start: int, count: int):
    out = []
    now = c.server.now_ms
    for i in sorted(cons.pel):
        if i < start:
            continue
        if count and len(out) >= count:
            break
        flat = s.get(i)
        if flat is None:
            out.append([id_str(i), NullArray])
        else:
            nack = cons.pel[i]
            nack.delivery_time = now
            nack.delivery_count += 1
            out.append([id_str(i), list(flat)])
    return out


def _parse_block_ms(c, b: bytes):
    v = string2ll(b)
    if v is None:
        raise err("ERR timeout is not an integer or out of range")
    if v < 0:
        raise err("ERR timeout is negative")
    if v == 0:
        return None
    return c.server.now_ms + v


def _xread(c, argv, xreadgroup: bool):
    name = argv[0].decode("latin-1")
    timeout = -1
    deadline = None
    count = 0
    streams_arg = 0
    nstreams = 0
    noack = False
    gname = cname = None
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        o = argv[i].lower()
        if o == b"block" and more:
            if getattr(c, "in_script", False):
                raise err("ERR %s command is not allowed with BLOCK option from scripts" % name)
            i += 1
            deadline = _parse_block_ms(c, argv[i])
            timeout = 0
        elif o == b"count" and more:
            i += 1
            count = parse_int(argv[i])
            if count < 0:
                count = 0
        elif o == b"streams" and more:
            streams_arg = i + 1
            nstreams = argc - streams_arg
            if nstreams % 2:
                raise err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
            nstreams //= 2
            break
        elif o == b"group" and more >= 2:
            if not xreadgroup:
                raise err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
            gname = argv[i + 1]
            cname = argv[i + 2]
            i += 2
        elif o == b"noack":
            if not xreadgroup:
                raise err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
            noack = True
        else:
            raise syntax_error()
        i += 1
    if streams_arg == 0:
        raise syntax_error()
    if xreadgroup and gname is None:
        raise err("ERR Missing GROUP option for XREADGROUP")
    keys = argv[streams_arg : streams_arg + nstreams]
    ids = []
    groups = []
    for k_i in range(nstreams):
        key = keys[k_i]
        idarg = argv[streams_arg + nstreams + k_i]
        s = get_stream(c, key, read=True)
        g = None
        if gname is not None:
            g = None if s is None else s.groups.get(gname)
            if g is None:
                raise _nogroup(key, gname, " in XREADGROUP with GROUP option")
            groups.append(g)
        if idarg == b"$":
            if xreadgroup:
                raise err(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to "
                    "read the history of this consumer by specifying a proper ID, or use the "
                    "> ID to get new messages. The $ ID would just return an empty result set."
                )
            ids.append(s.last_id if s is not None else 0)
            continue
        if idarg == b">":
            if not xreadgroup:
                raise err(
                    "ERR The > ID can be specified only when calling XREADGROUP using the "
                    "GROUP <group> <consumer> option."
                )
            ids.append(MAX_ID)
            continue
        ids.append(parse_id(idarg, True, 0)[0])

    out = []
    db = c.db
    srv = c.server
    for k_i in range(nstreams):
        key = keys[k_i]
        s = db.lookup(key, srv.now_ms)
        if s is None:
            continue
        gt = ids[k_i]
        sync = history = False
        if groups:
            if gt != MAX_ID:
                sync = history = True
            elif s.length and s.last_valid_id() > groups[k_i].last_id:
                sync = True
                gt = groups[k_i].last_id
        elif s.length and s.last_valid_id() > gt:
            sync = True
        if not sync:
            continue
        start = gt + 1 if gt != MAX_ID else 0
        cons = None
        if groups:
            g = groups[k_i]
            cons = _lookup_consumer(c, g, cname)
            if cons is None:
                cons = _create_consumer(c, g, cname, key, db.id)
                if noack:
                    srv.propagate(db.id, [b"XGROUP", b"CREATECONSUMER", key, gname, cname])
            if history:
                ents = _serve_history(c, s, cons, start, count)
            else:
                ents = _serve_range(c, db.id, s, key, start, count, g, cons, noack, gname)
            srv.dirty += 1
        else:
            ents = _entries_from(s, start, count)
        out.append((key, ents))
    if groups:
        _prevent_propagation(c)
    if out:
        return Map(out) if c.resp == 3 else [[k, e] for k, e in out]
    if timeout != -1:
        if not may_block(c):
            return NullArray
        from frtrio.core.engine import BlockOn

        bcount = count if count else XREAD_BLOCKED_DEFAULT_COUNT
        gts = {keys[k_i]: ids[k_i] for k_i in range(nstreams)}

        def retry(client, key):
            s = db.lookup(key, client.server.now_ms)
            if s is None or type(s) is not Stream:
                if gname is not None:
                    return _failed(client, "UNBLOCKED the stream key no longer exists")
                return None
            gt = gts.get(key, 0)
            g = None
            if gname is not None:
                g = s.groups.get(gname)
                if g is None:
                    return _failed(client, "NOGROUP the consumer group this client was "
                                   "blocked on no longer exists")
                gt = g.last_id
            if not s.last_id > gt:
                return None
            start = gt + 1
            if g is not None:
                cons = _lookup_consumer(client, g, cname)
                if cons is None:
                    cons = _create_consumer(client, g, cname, key, db.id)
                    if noack:
                        client.server.propagate(db.id, [b"XGROUP", b"CREATECONSUMER", key, gname, cname])
                ents = _serve_range(client, db.id, s, key, start, bcount, g, cons, noack, gname)
            else:
                ents = _entries_from(s, start, bcount)
            if client.resp == 3:
                return Map([(key, ents)])
            return [[key, ents]]

        return BlockOn(list(dict.fromkeys(keys)), db, deadline, retry, NullArray, argv,
                       serve_gone=gname is not None)
    return NullArray


def _failed(client, msg: str):
    """An error answered to a blocked XREADGROUP (the registry's unblock
    counts it in failed_calls, as Redis's updateStatsOnUnblock does)."""
    return err(msg)


def _entries_from(s: Stream, start: int, count: int):
    out = []
    for i, flat in s.range(start, MAX_ID):
        out.append(entry_reply(i, flat))
        if count and len(out) == count:
            break
    return out


def _prevent_propagation(c) -> None:
    c.server.prevent_propagation = True


@command("xread")
def cmd_xread(c, argv):
    return _xread(c, argv, False)


@command("xreadgroup")
def cmd_xreadgroup(c, argv):
    return _xread(c, argv, True)


# --- XDEL / XSETID -----------------------------------------------------------------


@command("xdel")
def cmd_xdel(c, argv):
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return 0
    ids = [parse_id(b, True, 0)[0] for b in argv[2:]]
    deleted = 0
    first_entry = False
    for i in ids:
        if s.delete(i):
            if i == s.first_id:
                first_entry = True
            if i > s.max_deleted:
                s.max_deleted = i
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = 0
        elif first_entry:
            s.first_id = s.first_entry_id()
        modified(c, key, deleted)
        ev(c, STREAM, b"xdel", key)
    return deleted


@command("xsetid")
def cmd_xsetid(c, argv):
    nid = parse_id(argv[2], True, 0)[0]
    entries_added = -1
    max_xdel = 0
    i = 3
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        o = argv[i].lower()
        if o == b"entriesadded" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise err("ERR entries_added must be positive")
            i += 2
        elif o == b"maxdeletedid" and more:
            max_xdel = parse_id(argv[i + 1], True, 0)[0]
            if nid < max_xdel:
                raise err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
            i += 2
        else:
            raise syntax_error()
    s = get_stream(c, argv[1])
    if s is None:
        raise err("ERR no such key")
    if s.length > 0:
        if nid < s.last_valid_id():
            raise err("ERR The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and s.length > entries_added:
            raise err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    s.last_id = nid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel:
        s.max_deleted = max_xdel
    modified(c, argv[1])
    ev(c, STREAM, b"xsetid", argv[1])
    return OK


# --- XGROUP ------------------------------------------------------------------------

_XGROUP_HELP = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
]

_XINFO_HELP = [
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
]


def _help(argv, lines):
    cmd = argv[0].decode("latin-1").upper()
    return ([Status("%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % cmd)]
            + [Status(x) for x in lines] + [Status("HELP"), Status("    Prints this help.")])


def _subcmd_syntax(argv):
    return err(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
        % (argv[1][:128].decode("latin-1"), argv[0].decode("latin-1").upper())
    )


def _xgroup(c, argv):
    argc = len(argv)
    opt = argv[1].lower()
    s = None
    cg = None
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    grp = None
    if argc >= 4:
        i = 5
        create = opt == b"create"
        setid = opt == b"setid"
        while i < argc:
            a = argv[i].lower()
            if create and a == b"mkstream":
                mkstream = True
                i += 1
            elif (create or setid) and a == b"entriesread" and i + 1 < argc:
                entries_read = parse_int(argv[i + 1])
                if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                    raise err("ERR value for ENTRIESREAD must be positive or -1")
                i += 2
            else:
                raise _subcmd_syntax(argv)
        s = get_stream(c, argv[2])
        grp = argv[3]
    if argc >= 4 and not mkstream:
        if s is None:
            raise err(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                "you may want to use the MKSTREAM option to create an empty stream automatically."
            )
        cg = s.groups.get(grp)
        if cg is None and opt in (b"setid", b"createconsumer", b"delconsumer"):
            raise err("NOGROUP No such consumer group '%s' for key name '%s'"
                      % (grp.decode("latin-1"), argv[2].decode("latin-1")))
    key = argv[2] if argc > 2 else None
    if argc == 2 and opt == b"help":
        return _help(argv, _XGROUP_HELP)
    if opt == b"create" and 5 <= argc <= 8:
        if argv[4] == b"$":
            nid = s.last_id if s is not None else 0
        else:
            nid = parse_id(argv[4], True, 0)[0]
        if grp in (s.groups if s is not None else {}):
            raise err("BUSYGROUP Consumer Group name already exists")
        if s is None:
            s = Stream()
            c.db.add(key, s)
        s.groups[grp] = Group(nid, entries_read)
        modified(c, key)
        ev(c, STREAM, b"xgroup-create", key)
        return OK
    if opt == b"setid" and argc in (5, 7):
        if argv[4] == b"$":
            nid = s.last_id
        else:
            nid = parse_id(argv[4], False, 0)[0]
        cg.last_id = nid
        cg.entries_read = entries_read
        modified(c, key)
        ev(c, STREAM, b"xgroup-setid", key)
        return OK
    if opt == b"destroy" and argc == 4:
        if cg is not None:
            del s.groups[grp]
            modified(c, key)
            ev(c, STREAM, b"xgroup-destroy", key)
            c.server.signal_key_ready(c.db, key)
            return 1
        return 0
    if opt == b"createconsumer" and argc == 5:
        created = _create_consumer(c, cg, argv[4], key, c.dbid)
        if created is not None:
            c.server.propagate(c.dbid, list(argv))
        return 1 if created else 0
    if opt == b"delconsumer" and argc == 5:
        cons = cg.consumers.get(argv[4])
        pending = 0
        if cons is not None:
            pending = len(cons.pel)
            for i in cons.pel:
                cg.pel.pop(i, None)
            del cg.consumers[argv[4]]
            modified(c, key)
            ev(c, STREAM, b"xgroup-delconsumer", key)
        return pending
    raise _subcmd_syntax(argv)


for _sub in ("create", "setid", "destroy", "createconsumer", "delconsumer", "help"):
    command("xgroup|" + _sub)(_xgroup)


# --- XACK / XPENDING -----------------------------------------------------------------


@command("xack")
def cmd_xack(c, argv):
    s = get_stream(c, argv[1], read=True)
    g = None if s is None else s.groups.get(argv[2])
    if g is None:
        return 0
    ids = [parse_id(b, True, 0)[0] for b in argv[3:]]
    n = 0
    for i in ids:
        nack = g.pel.pop(i, None)
        if nack is not None:
            nack.consumer.pel.pop(i, None)
            n += 1
            c.server.dirty += 1
    return n


@command("xpending")
def cmd_xpending(c, argv):
    argc = len(argv)
    justinfo = argc == 3
    key, gname = argv[1], argv[2]
    cname = None
    count = 0
    minidle = 0
    start = end = 0
    if argc != 3 and (argc < 6 or argc > 9):
        raise syntax_error()
    if argc >= 6:
        si = 3
        if argv[3].lower() == b"idle":
            minidle = parse_int(argv[4])
            if argc < 8:
                raise syntax_error()
            si += 2
        count = parse_int(argv[si + 2])
        if count < 0:
            count = 0
        start, sx = parse_interval(argv[si], 0)
        if sx:
            if start == MAX_ID:
                raise err("ERR invalid start ID for the interval")
            start += 1
        end, ex = parse_interval(argv[si + 1], U64)
        if ex:
            if end == 0:
                raise err("ERR invalid end ID for the interval")
            end -= 1
        if si + 3 < argc:
            cname = argv[si + 3]
    s = get_stream(c, key, read=True)
    g = None if s is None else s.groups.get(gname)
    if g is None:
        raise _nogroup(key, gname)
    if justinfo:
        if not g.pel:
            return [0, None, None, NullArray]
        ids = sorted(g.pel)
        per = []
        for cons in g.sorted_consumers():
            if cons.pel:
                per.append([cons.name, b"%d" % len(cons.pel)])
        return [len(ids), id_str(ids[0]), id_str(ids[-1]), per]
    pel = g.pel
    if cname is not None:
        cons = g.consumers.get(cname)
        if cons is None:
            return []
        pel = cons.pel
    now = c.server.now_ms
    out = []
    if count:
        for i in sorted(pel):
            if i < start:
                continue
            if i > end or not count:
                break
            nack = pel[i]
            if minidle and now - nack.delivery_time < minidle:
                continue
            count -= 1
            out.append([id_str(i), nack.consumer.name, max(now - nack.delivery_time, 0),
                        nack.delivery_count])
    return out


# --- XCLAIM / XAUTOCLAIM ---------------------------------------------------------------


@command("xclaim")
def cmd_xclaim(c, argv):
    key, gname = argv[1], argv[2]
    s = get_stream(c, key, read=True)
    g = None if s is None else s.groups.get(gname)
    if g is None:
        raise _nogroup(key, gname)
    minidle = parse_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM")
    if minidle < 0:
        minidle = 0
    argc = len(argv)
    ids = []
    j = 5
    while j < argc:
        try:
            ids.append(parse_id(argv[j], True, 0)[0])
        except Exception:
            break
        j += 1
    now = c.server.now_ms
    retrycount = -1
    deliverytime = -1
    force = justid = False
    last_id = 0
    while j < argc:
        more = argc - 1 - j
        o = argv[j].lower()
        if o == b"force":
            force = True
        elif o == b"justid":
            justid = True
        elif o == b"idle" and more:
            j += 1
            deliverytime = now - parse_int(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif o == b"time" and more:
            j += 1
            deliverytime = parse_int(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif o == b"retrycount" and more:
            j += 1
            retrycount = parse_int(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif o == b"lastid" and more:
            j += 1
            last_id = parse_id(argv[j], True, 0)[0]
        else:
            raise err("ERR Unrecognized XCLAIM option '%s'" % argv[j].split(b"\0")[0].decode("latin-1"))
        j += 1
    srv = c.server
    dbid = c.dbid
    prop_last = False
    if last_id > g.last_id:
        g.last_id = last_id
        prop_last = True
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    cons = None
    out = []
    for k, i in enumerate(ids):
        idarg = argv[5 + k]
        nack = g.pel.get(i)
        if not s.exists(i):
            if nack is not None:
                srv.propagate(dbid, _xclaim_argv(key, gname, g, idarg, nack))
                prop_last = False
                srv.dirty += 1
                del g.pel[i]
                nack.consumer.pel.pop(i, None)
            continue
        if force and nack is None:
            nack = NACK(None, now)
            g.pel[i] = nack
        if nack is None:
            continue
        if nack.consumer is not None and minidle:
            if now - nack.delivery_time < minidle:
                continue
        if cons is None:
            cons = _lookup_consumer(c, g, argv[3])
            if cons is None:
                cons = _create_consumer(c, g, argv[3], argv[1], c.dbid)
        if nack.consumer is not cons and nack.consumer is not None:
            nack.consumer.pel.pop(i, None)
        nack.delivery_time = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        if nack.consumer is not cons:
            cons.pel[i] = nack
            nack.consumer = cons
        if justid:
            out.append(id_str(i))
        else:
            out.append([id_str(i), list(s.get(i))])
        srv.propagate(dbid, _xclaim_argv(key, gname, g, idarg, nack))
        prop_last = False
        srv.dirty += 1
    if prop_last:
        srv.propagate(dbid, _setid_argv(key, gname, g))
        srv.dirty += 1
    _prevent_propagation(c)
    return out


@command("xautoclaim")
def cmd_xautoclaim(c, argv):
    key, gname = argv[1], argv[2]
    minidle = parse_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM")
    if minidle < 0:
        minidle = 0
    start, sx = parse_interval(argv[5], 0)
    if sx:
        if start == MAX_ID:
            raise err("ERR invalid start ID for the interval")
        start += 1
    count = 100
    justid = False
    j = 6
    argc = len(argv)
    while j < argc:
        more = argc - 1 - j
        o = argv[j].lower()
        if o == b"count" and more:
            count = parse_range(argv[j + 1], 1, (2**63 - 1) // 16, "ERR COUNT must be > 0")
            j += 1
        elif o == b"justid":
            justid = True
        else:
            raise syntax_error()
        j += 1
    s = get_stream(c, key, read=True)
    g = None if s is None else s.groups.get(gname)
    if g is None:
        raise _nogroup(key, gname)
    srv = c.server
    dbid = c.dbid
    now = srv.now_ms
    attempts = count * 10
    cons = None
    out = []
    deleted = []
    pel_ids = [i for i in sorted(g.pel) if i >= start]
    pos = 0
    while attempts and count and pos < len(pel_ids):
        attempts -= 1
        i = pel_ids[pos]
        pos += 1
        nack = g.pel[i]
        if not s.exists(i):
            srv.propagate(dbid, _xclaim_argv(key, gname, g, id_str(i), nack))
            srv.dirty += 1
            del g.pel[i]
            nack.consumer.pel.pop(i, None)
            deleted.append(id_str(i))
            count -= 1
            continue
        if minidle and now - nack.delivery_time < minidle:
            continue
        if cons is None:
            cons = _lookup_consumer(c, g, argv[3])
            if cons is None:
                cons = _create_consumer(c, g, argv[3], argv[1], c.dbid)
        if nack.consumer is not cons and nack.consumer is not None:
            nack.consumer.pel.pop(i, None)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        if nack.consumer is not cons:
            cons.pel[i] = nack
            nack.consumer = cons
        if justid:
            out.append(id_str(i))
        else:
            out.append([id_str(i), list(s.get(i))])
        count -= 1
        srv.propagate(dbid, _xclaim_argv(key, gname, g, id_str(i), nack))
        srv.dirty += 1
    endid = id_str(pel_ids[pos]) if pos < len(pel_ids) else b"0-0"
    _prevent_propagation(c)
    return [endid, out, deleted]


# --- XINFO -------------------------------------------------------------------------------


def _entry_or_null(s: Stream, rev: bool):
    for i, flat in s.range(0, MAX_ID, rev):
        return [id_str(i), list(flat)]
    return None


def _xinfo_stream(c, argv, s: Stream):
    full = True
    count = 10
    opts = argv[3:]
    if not opts:
        full = False
    else:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise _subcmd_syntax(argv)
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise _subcmd_syntax(argv)
            count = parse_int(opts[2])
            if count < 0:
                count = 10
    m = [
        (b"length", s.length),
        (b"radix-tree-keys", len(s.nodes)),
        (b"radix-tree-nodes", s.rax_nodes()),
        (b"last-generated-id", id_str(s.last_id)),
        (b"max-deleted-entry-id", id_str(s.max_deleted)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", id_str(s.first_id)),
    ]
    if not full:
        m.append((b"groups", len(s.groups)))
        m.append((b"first-entry", _entry_or_null(s, False)))
        m.append((b"last-entry", _entry_or_null(s, True)))
        return Map(m)
    ents = []
    for i, flat in s.range(0, MAX_ID):
        ents.append([id_str(i), list(flat)])
        if count and len(ents) == count:
            break
    m.append((b"entries", ents))
    groups = []
    for name in sorted(s.groups):
        g = s.groups[name]
        pel = []
        for i, nack in g.sorted_pel():
            if count and len(pel) >= count:
                break
            pel.append([id_str(i), nack.consumer.name, nack.delivery_time, nack.delivery_count])
        conss = []
        for cons in g.sorted_consumers():
            cp = []
            for i in sorted(cons.pel):
                if count and len(cp) >= count:
                    break
                nack = cons.pel[i]
                cp.append([id_str(i), nack.delivery_time, nack.delivery_count])
            conss.append(Map([(b"name", cons.name), (b"seen-time", cons.seen_time),
                              (b"pel-count", len(cons.pel)), (b"pending", cp)]))
        groups.append(Map([
            (b"name", name),
            (b"last-delivered-id", id_str(g.last_id)),
            (b"entries-read", None if g.entries_read == INVALID_ENTRIES_READ else g.entries_read),
            (b"lag", group_lag(s, g)),
            (b"pel-count", len(g.pel)),
            (b"pending", pel),
            (b"consumers", conss),
        ]))
    m.append((b"groups", groups))
    return Map(m)


def _xinfo(c, argv):
    if argv[1].lower() == b"help":
        if len(argv) != 2:
            raise _subcmd_syntax(argv)
        return _help(argv, _XINFO_HELP)
    if len(argv) < 3:
        raise _subcmd_syntax(argv)
    opt = argv[1].lower()
    key = argv[2]
    s = get_stream(c, key, read=True)
    if s is None:
        raise err("ERR no such key")
    if opt == b"consumers" and len(argv) == 4:
        g = s.groups.get(argv[3])
        if g is None:
            raise err("NOGROUP No such consumer group '%s' for key name '%s'"
                      % (argv[3].decode("latin-1"), key.decode("latin-1")))
        now = c.server.now_ms
        return [Map([(b"name", cons.name), (b"pending", len(cons.pel)),
                     (b"idle", max(now - cons.seen_time, 0))])
                for cons in g.sorted_consumers()]
    if opt == b"groups" and len(argv) == 3:
        out = []
        for name in sorted(s.groups):
            g = s.groups[name]
            out.append(Map([
                (b"name", name),
                (b"consumers", len(g.consumers)),
                (b"pending", len(g.pel)),
                (b"last-delivered-id", id_str(g.last_id)),
                (b"entries-read", None if g.entries_read == INVALID_ENTRIES_READ else g.entries_read),
                (b"lag", group_lag(s, g)),
            ]))
        return out
    if opt == b"stream":
        return _xinfo_stream(c, argv, s)
    raise _subcmd_syntax(argv)


for _sub in ("stream", "groups", "consumers", "help"):
    command("xinfo|" + _sub)(_xinfo)

