"""The dataset as a stream of commands (AOF base files, BGREWRITEAOF).

Each value type knows its Redis type name (``store.db.type_name``); the
commands that rebuild it are chosen here, 64 elements a command as Redis's
rewrite does (AOF_REWRITE_ITEMS_PER_CMD). A zset value provides ``items()``
yielding (member, score) pairs. A value type not known here can provide
``aof_commands(key) -> [argv, ...]`` itself. Expiry times are written as
PEXPIREAT (absolute unix ms), so they survive any restart delay.
"""

from __future__ import annotations

import logging

from frtrio.cluster.slots import key_slot
from frtrio.persist.aof_format import encode_command
from frtrio.protocol.reply import format_double
from frtrio.store.db import type_name, unpacked

log = logging.getLogger("frtrio.aof")

_BATCH = 64


def _batched(cmd: bytes, key: bytes, items: list[bytes], step: int):
    n = _BATCH * step
    for i in range(0, len(items), n):
        yield [cmd, key] + items[i : i + n]


def value_commands(key: bytes, v) -> list[list[bytes]]:
    own = getattr(v, "aof_commands", None)
    if own is not None:
        return own(key)
    t = type_name(v)
    if t == b"string":
        return [[b"SET", key, v]]
    if t == b"list":
        return list(_batched(b"RPUSH", key, list(v), 1))
    if t == b"set":
        return list(_batched(b"SADD", key, list(v), 1))
    if t == b"hash":
        flat = []
        for f, x in v.items():
            flat += [f, x]
        return list(_batched(b"HSET", key, flat, 2))
    if t == b"zset":
        flat = []
        for m, score in v.items():
            flat += [format_double(score), m]
        return list(_batched(b"ZADD", key, flat, 2))
    if t == b"stream":
        return stream_commands(key, v)
    raise TypeError("no AOF encoding for type %r" % t)


def stream_commands(key: bytes, s) -> list[list[bytes]]:
    """The commands Redis 7.0's rewriteStreamObject writes: one XADD per
    entry (or an XADD MAXLEN 0 for an empty stream), XSETID with the
    counters, and per group XGROUP CREATE ... ENTRIESREAD, then an XCLAIM
    ... FORCE per pending entry or XGROUP CREATECONSUMER for an idle
    consumer."""
    from frtrio.store.stream import MAX_ID, id_str

    out = []
    if s.length:
        for i, flat in s.range(0, MAX_ID):
            out.append([b"XADD", key, id_str(i)] + list(flat))
    else:
        out.append([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])
    out.append([b"XSETID", key, id_str(s.last_id), b"ENTRIESADDED", b"%d" % s.entries_added,
                b"MAXDELETEDID", id_str(s.max_deleted)])
    for name in sorted(s.groups):
        g = s.groups[name]
        out.append([b"XGROUP", b"CREATE", key, name, id_str(g.last_id), b"ENTRIESREAD",
                    b"%d" % g.entries_read])
        for cons in g.sorted_consumers():
            if not cons.pel:
                out.append([b"XGROUP", b"CREATECONSUMER", key, name, cons.name])
                continue
            for i in sorted(cons.pel):
                nack = cons.pel[i]
                out.append([b"XCLAIM", key, name, cons.name, b"0", id_str(i), b"TIME",
                            b"%d" % nack.delivery_time, b"RETRYCOUNT",
                            b"%d" % nack.delivery_count, b"JUSTID", b"FORCE"])
    return out


def dataset_as_commands(server) -> bytes:
    out = []
    sc = getattr(server, "scripting", None)
    if sc is not None:  # function libraries first, as Redis's rewriteFunctions
        for lib in sc.libraries.values():
            out.append(encode_command([b"FUNCTION", b"LOAD", lib.code]))
    from frtrio.persist.rdbfile import trimming_slots

    skip = trimming_slots(server)
    saved = skipped = 0
    for db in server.dbs:
        if not db.data:
            continue
        out.append(encode_command([b"SELECT", b"%d" % db.id]))
        for key, v in db.data.items():
            if skip and db.id == 0 and key_slot(key) in skip:
                skipped += 1  # a slot being trimmed (atomic slot migration)
                continue
            saved += 1
            for argv in value_commands(key, unpacked(v)):
                out.append(encode_command(argv))
            exp = db.expires.get(key)
            if exp is not None:
                out.append(encode_command([b"PEXPIREAT", key, b"%d" % exp]))
    data = b"".join(out)
    if skipped:
        log.info("AOF rewrite done, %d keys saved, %d keys skipped, %d bytes written.",
                 saved, skipped, len(data))
    return data
