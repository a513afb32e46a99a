"""Helpers shared by command implementations: argument parsing and the error
replies Redis 7.0 uses for them."""

from __future__ import annotations


from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import ErrorReply
from frtrio.core.client import F
from frtrio.core.notify import GENERIC, KEY_MISS
from frtrio.core.notify import notify as _notify

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def err(msg: str) -> ErrorReply:
    return ErrorReply(msg)


def wrongtype() -> ErrorReply:
    return ErrorReply(WRONGTYPE)


def syntax_error() -> ErrorReply:
    return ErrorReply(SYNTAX)


def parse_int(b: bytes, msg: str = NOT_INT) -> int:
    """An integer argument (Redis's getLongLongFromObjectOrReply)."""
    v = string2ll(b)
    if v is None or v < LLONG_MIN or v > LLONG_MAX:
        raise ErrorReply(msg)
    return v


def parse_int_range(b: bytes, lo: int, hi: int, msg: str) -> int:
    v = string2ll(b)
    if v is None or not lo <= v <= hi:
        raise ErrorReply(msg)
    return v


INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def parse_range(b: bytes, lo: int, hi: int, msg: str | None = None) -> int:
    """Redis's getRangeLongFromObjectOrReply: ``msg`` (a whole error text)
    replaces both errors when given."""
    v = string2ll(b)
    if v is None:
        raise ErrorReply(msg or NOT_INT)
    if not lo <= v <= hi:
        raise ErrorReply(
            msg or "ERR value is out of range, value must between %d and %d" % (lo, hi)
        )
    return v


def parse_int32(b: bytes, msg: str | None = None) -> int:
    """Redis's getIntFromObjectOrReply."""
    return parse_range(b, INT_MIN, INT_MAX, msg)


def parse_positive(b: bytes, name: str = "") -> int:
    v = parse_int(b)
    if v < 0:
        raise ErrorReply("ERR value is out of range, must be positive")
    return v


def is_local_client(c) -> bool:
    """Redis's islocalClient: a unix socket, or a loopback address."""
    a = c.addr
    return (a.startswith("127.") or a.startswith("::1") or a.startswith("[::1]")
            or a.startswith("/") or a == "")


def protected_action_allowed(c, setting: str) -> bool:
    """Redis's allowProtectedAction for an enable-* setting (yes|no|local)."""
    return setting == "yes" or (setting == "local" and is_local_client(c))


def lookup_read(c, key: bytes, touch: bool = True):
    """Redis's lookupKeyRead: the value or None, counted in INFO's
    keyspace_hits / keyspace_misses (write lookups are not counted).
    ``touch`` False: Redis's LOOKUP_NOTOUCH (the access time stays)."""
    v = c.db.lookup(key, c.server.now_ms) if touch else c.db.peek(key, c.server.now_ms)
    st = c.server.stats
    if v is None:
        st["keyspace_misses"] = st.get("keyspace_misses", 0) + 1
        if c.server.notify_flags & KEY_MISS:
            _notify(c.server, KEY_MISS, b"keymiss", key, c.db.id)
    else:
        st["keyspace_hits"] = st.get("keyspace_hits", 0) + 1
    return v


def arg_eq(a: bytes, word: bytes) -> bool:
    """Case-insensitive option match."""
    return len(a) == len(word) and a.lower() == word


def remove_members(c, key: bytes, coll: dict, members, flag: int, event: bytes) -> int:
    """HDEL / SREM: drop dict keys of a hash or set value; the key goes when
    the value empties (notified: ``event``, then 'del'). Returns how many
    were removed."""
    from frtrio.commands.strings import modified

    n = 0
    for m in members:
        if m in coll:
            del coll[m]
            n += 1
            if not coll:
                break
    if n:
        ev(c, flag, event, key)
        if not coll:
            c.db.delete(key)
            ev(c, GENERIC, b"del", key)
        modified(c, key, n)
    return n


def ev(c, type_flag: int, event: bytes, key: bytes) -> None:
    """A keyspace event of the client's db (frtrio/core/notify.py); one
    attribute test while notifications are off."""
    srv = c.server
    if srv.notify_flags & type_flag:
        _notify(srv, type_flag, event, key, c.db.id)


def too_many_for_output_limit(c, count: int, min_bytes: int) -> bool:
    """A reply of ``count`` random picks (SRANDMEMBER, HRANDFIELD and
    ZRANDMEMBER with a negative count), each at least ``min_bytes``, that
    cannot fit under the client's hard output limit: Redis would stop
    building it once the limit closed the client; frtrio closes the client
    without building it (the reply is never sent either way). True when the
    client was closed so; a reply that may fit is built and the limit is
    checked after the command as usual."""
    srv = c.server
    hard = srv.obuf.limits["pubsub" if c.in_pubsub else "normal"][0]
    if not hard or count * min_bytes <= hard + c.rb_size - c.out_bytes:
        return False
    if srv.clients.get(c.id) is not c or c.flags & (F.MASTER | F.SLAVE):
        return False  # (a script's client, a replication link: never closed for it)
    srv.close_for_output_limits(c)
    return True
