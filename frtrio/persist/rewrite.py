"""The dataset as a stream of commands (AOF base files, BGREWRITEAOF).

Each value type knows its Redis type name (``store.db.type_name``); the
commands that rebuild it are chosen here, 64 elements a command as Redis's
rewrite does (AOF_REWRITE_ITEMS_PER_CMD). A zset value provides ``items()``
yielding (member, score) pairs. A value type not known here can provide
``aof_commands(key) -> [argv, ...]`` itself. Expiry times are written as
PEXPIREAT (absolute unix ms), so they survive any restart delay.
"""

from __future__ import annotations

from frtrio.persist.aof import encode_command
from frtrio.protocol.reply import format_double
from frtrio.store.db import type_name

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
    raise TypeError("no AOF encoding for type %r" % t)


def dataset_as_commands(server) -> bytes:
    out = []
    for db in server.dbs:
        if not db.data:
            continue
        out.append(encode_command([b"SELECT", b"%d" % db.id]))
        for key, v in db.data.items():
            for argv in value_commands(key, v):
                out.append(encode_command(argv))
            exp = db.expires.get(key)
            if exp is not None:
                out.append(encode_command([b"PEXPIREAT", key, b"%d" % exp]))
    return b"".join(out)
