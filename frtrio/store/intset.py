"""Intsets (pure), the small integer-set encoding: read with Redis's
checks (width, length, strictly ascending) and built as Redis builds them."""

from __future__ import annotations

import struct

from frtrio.store.rdb_format import RdbError


def intset_members(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise RdbError("Intset integrity check failed")
    enc = int.from_bytes(blob[0:4], "little")
    n = int.from_bytes(blob[4:8], "little")
    if enc not in (2, 4, 8) or len(blob) != 8 + n * enc:
        raise RdbError("Intset integrity check failed")
    fmt = {2: "h", 4: "i", 8: "q"}[enc]
    vals = struct.unpack("<%d%s" % (n, fmt), blob[8:])
    prev = None
    for v in vals:
        if prev is not None and v <= prev:
            raise RdbError("Intset integrity check failed")
        prev = v
    return [b"%d" % v for v in vals]


def intset_build(values: list[int]) -> bytes:
    values = sorted(values)
    lo = values[0] if values else 0
    hi = values[-1] if values else 0
    if -32768 <= lo and hi <= 32767:
        enc, fmt = 2, "h"
    elif -(2**31) <= lo and hi <= 2**31 - 1:
        enc, fmt = 4, "i"
    else:
        enc, fmt = 8, "q"
    return (enc.to_bytes(4, "little") + len(values).to_bytes(4, "little")
            + struct.pack("<%d%s" % (len(values), fmt), *values))
