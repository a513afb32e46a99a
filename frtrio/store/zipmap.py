"""Zipmaps (pure), the pre-2.6 small-hash encoding: read with Redis's
checks, and built (to make old payloads for tests)."""

from __future__ import annotations

from frtrio.store.rdb_format import RdbError


def zipmap_entries(zm: bytes) -> list[bytes]:
    """Field/value strings of a zipmap (the pre-2.6 small hash encoding)."""
    out: list[bytes] = []
    n = len(zm)
    if n < 2 or zm[-1] != 0xFF:
        raise RdbError("Zipmap integrity check failed")
    p = 1
    end = n - 1

    def length(p):
        if p >= end:
            raise RdbError("Zipmap integrity check failed")
        b = zm[p]
        if b < 254:
            return b, p + 1
        if b == 254:
            if p + 5 > end:
                raise RdbError("Zipmap integrity check failed")
            return int.from_bytes(zm[p + 1 : p + 5], "little"), p + 5
        raise RdbError("Zipmap integrity check failed")

    while p < end:
        ln, p = length(p)
        if p + ln > end:
            raise RdbError("Zipmap integrity check failed")
        out.append(zm[p : p + ln])
        p += ln
        ln, p = length(p)
        if p >= end:
            raise RdbError("Zipmap integrity check failed")
        free = zm[p]
        p += 1
        if p + ln + free > end:
            raise RdbError("Zipmap integrity check failed")
        out.append(zm[p : p + ln])
        p += ln + free
    if p != end:
        raise RdbError("Zipmap integrity check failed")
    if zm[0] != 254 and zm[0] != len(out) // 2:  # the pair count, unless "254 or more"
        raise RdbError("Zipmap integrity check failed")
    return out


def zipmap_build(pairs) -> bytes:
    out = bytearray((min(len(pairs), 254),))
    for f, v in pairs:
        for s in (f, v):
            out += bytes((len(s),)) if len(s) < 254 else b"\xfe" + len(s).to_bytes(4, "little")
            if s is v:
                out.append(0)  # free bytes
            out += s
    out.append(0xFF)
    return bytes(out)
