"""Redis's dataset digest (DEBUG DIGEST, DEBUG DIGEST-VALUE), computed the
same way as redis-server 7.0 (debug.c: xorDigest/mixDigest over SHA1), so
the digests of an frtrio node and a redis-server node holding the same data
are equal. Pure.

* xor(d, data):  d ^= SHA1(data)                       (order-independent)
* mix(d, data):  d = SHA1(d ^ SHA1(data))              (order-dependent)
* per key: mix(key), mix(type as 4 bytes big-endian), then the value:
  string: mix(bytes); list: mix each element in order; set: xor each
  member; zset and hash: xor of a per-element digest (mix member then
  "%.17g" score / mix field then value); stream: mix "<ms>.<seq>", then
  mix each field and value; a key with a TTL also xors "!!expire!!".
* dataset: per non-empty db, mix(db id as 4 bytes big-endian) into the
  result, then xor every key's digest into it.
"""

from __future__ import annotations

import hashlib
import struct

from frtrio.store.db import unpacked
from frtrio.store.stream import U64

_TYPES = {b"list": 1, b"set": 2, b"zset": 3, b"hash": 4, b"stream": 6}


def _sha1(b: bytes) -> bytes:
    return hashlib.sha1(b).digest()


def _xor(d: bytearray, data: bytes) -> None:
    h = _sha1(data)
    for j in range(20):
        d[j] ^= h[j]


def _mix(d: bytearray, data: bytes) -> None:
    _xor(d, data)
    d[:] = _sha1(bytes(d))


def _score(x: float) -> bytes:
    if x != x:
        return b"nan"
    if x in (float("inf"), float("-inf")):
        return b"inf" if x > 0 else b"-inf"
    return (b"%.17g" % x)


def value_digest(v, has_expire: bool) -> bytearray:
    """xorObjectDigest: the digest of one value (starting from zeros)."""
    d = bytearray(20)
    _object_into(d, v, has_expire)
    return d


def _object_into(d: bytearray, v, has_expire: bool) -> None:
    if type(v) is bytes:
        _mix(d, struct.pack(">I", 0))
        _mix(d, v)
    else:
        tn = v.type_name
        _mix(d, struct.pack(">I", _TYPES[tn]))
        if tn == b"list":
            for e in v:
                _mix(d, e)
        elif tn == b"set":
            for m in v:
                _xor(d, m)
        elif tn == b"zset":
            for m, s in v.items():
                e = bytearray(20)
                _mix(e, m)
                _mix(e, _score(s))
                _xor(d, bytes(e))
        elif tn == b"hash":
            for f, x in v.items():
                e = bytearray(20)
                _mix(e, f)
                _mix(e, x)
                _xor(d, bytes(e))
        elif tn == b"stream":
            for i, flat in v.range(0, (1 << 128) - 1):
                _mix(d, b"%d.%d" % (i >> 64, i & U64))
                for x in flat:
                    _mix(d, x)
    if has_expire:
        _xor(d, b"!!expire!!")


def dataset_digest(dbs) -> str:
    final = bytearray(20)
    for db in dbs:
        if not db.data:
            continue
        _mix(final, struct.pack(">I", db.id))
        exp = db.expires
        for k, v in db.data.items():
            d = bytearray(20)
            _mix(d, k)
            _object_into(d, unpacked(v), k in exp)
            _xor(final, bytes(d))
    return final.hex()
