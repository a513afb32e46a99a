"""Keyspace notifications (Redis 7.0's notify.c), pure.

``notify-keyspace-events`` is parsed once, on every config change, into the
bit mask ``Server.notify_flags``; a command that Redis notifies calls
``notify`` (or the ``commands.util.ev`` shorthand), which costs one attribute
test while notifications are off. A notification is an ordinary PUBLISH to
the local subscribers (never the cluster bus, as in Redis): on
``__keyspace@<db>__:<key>`` with the event name as message (flag K) and on
``__keyevent@<db>__:<event>`` with the key as message (flag E).
"""

from __future__ import annotations

KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x
EVICTED = 1 << 9  # e
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m
MODULE = 1 << 12  # d
NEW = 1 << 13  # n
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

_CHARS = {
    "K": KEYSPACE, "E": KEYEVENT, "g": GENERIC, "$": STRING, "l": LIST,
    "s": SET, "h": HASH, "z": ZSET, "x": EXPIRED, "e": EVICTED, "t": STREAM,
    "m": KEY_MISS, "d": MODULE, "n": NEW, "A": ALL,
}


def parse_flags(s: str) -> int:
    """The mask of a (valid) notify-keyspace-events string."""
    m = 0
    for ch in s:
        m |= _CHARS.get(ch, 0)
    return m


def notify(srv, type_flag: int, event: bytes, key: bytes, dbid: int) -> None:
    """Publish one keyspace event, if its class and a channel kind are on."""
    flags = srv.notify_flags
    if not (flags & type_flag):
        return
    pub = srv.pubsub.publish
    if flags & KEYSPACE:
        pub(b"__keyspace@%d__:" % dbid + key, event)
    if flags & KEYEVENT:
        pub(b"__keyevent@%d__:" % dbid + event, key)
