"""Ziplists (pure), the compact encoding of RDB version <= 9 payloads:
read with Redis 7.0's deep integrity checks, and built (to make old
payloads for tests)."""

from __future__ import annotations

from frtrio.protocol.parser import string2ll
from frtrio.store.rdb_format import RdbError


def zl_entries(zl: bytes) -> list[bytes]:
    n = len(zl)
    if n < 11 or int.from_bytes(zl[0:4], "little") != n or zl[-1] != 0xFF:
        raise RdbError("Ziplist integrity check failed")
    tail = int.from_bytes(zl[4:8], "little")
    if tail >= n:
        raise RdbError("Ziplist integrity check failed")
    declared = int.from_bytes(zl[8:10], "little")
    out: list[bytes] = []
    p = 10
    end = n - 1
    # Redis 7.0 validates ziplists deeply even without sanitize-dump-payload
    # (it converts them): each prevlen must be the previous entry's size and
    # the tail offset must point at the last entry.
    start = prev_start = 0
    while p < end:
        prev_start, start = start, p
        # previous entry length
        if zl[p] < 254:
            prevlen = zl[p]
            p += 1
        elif zl[p] == 254:
            prevlen = int.from_bytes(zl[p + 1 : p + 5], "little")
            p += 5
        else:
            raise RdbError("Ziplist integrity check failed")
        if p >= end or prevlen != (start - prev_start if out else 0):
            raise RdbError("Ziplist integrity check failed")
        b = zl[p]
        kind = b >> 6
        if kind == 0:
            ln = b & 0x3F
            s = p + 1
        elif kind == 1:
            if p + 2 > end:
                raise RdbError("Ziplist integrity check failed")
            ln = ((b & 0x3F) << 8) | zl[p + 1]
            s = p + 2
        elif kind == 2:
            if p + 5 > end:
                raise RdbError("Ziplist integrity check failed")
            ln = int.from_bytes(zl[p + 1 : p + 5], "big")
            s = p + 5
        else:
            s = p + 1
            if b == 0xC0:
                w = 2
            elif b == 0xD0:
                w = 4
            elif b == 0xE0:
                w = 8
            elif b == 0xF0:
                w = 3
            elif b == 0xFE:
                w = 1
            elif 0xF1 <= b <= 0xFD:
                out.append(b"%d" % ((b & 0x0F) - 1))
                p = s
                continue
            else:
                raise RdbError("Ziplist integrity check failed")
            if s + w > end:
                raise RdbError("Ziplist integrity check failed")
            out.append(b"%d" % int.from_bytes(zl[s : s + w], "little", signed=True))
            p = s + w
            continue
        if s + ln > end:
            raise RdbError("Ziplist integrity check failed")
        out.append(zl[s : s + ln])
        p = s + ln
    if p != end or (out and tail != start):
        raise RdbError("Ziplist integrity check failed")
    if declared != 65535 and declared != len(out):
        raise RdbError("Ziplist integrity check failed")
    return out


def zl_build(entries) -> bytes:
    """A ziplist (the pre-7.0 compact encoding); used to make old payloads."""
    body = bytearray()
    prevlen = 0
    last_off = 10
    for e in entries:
        last_off = 10 + len(body)
        pl = bytes((prevlen,)) if prevlen < 254 else b"\xfe" + prevlen.to_bytes(4, "little")
        v = string2ll(e) if len(e) <= 20 else None
        if v is not None:
            if 0 <= v <= 12:
                enc = bytes((0xF1 + v,))
            elif -128 <= v <= 127:
                enc = b"\xfe" + v.to_bytes(1, "little", signed=True)
            elif -32768 <= v <= 32767:
                enc = b"\xc0" + v.to_bytes(2, "little", signed=True)
            elif -8388608 <= v <= 8388607:
                enc = b"\xf0" + v.to_bytes(3, "little", signed=True)
            elif -(2**31) <= v <= 2**31 - 1:
                enc = b"\xd0" + v.to_bytes(4, "little", signed=True)
            else:
                enc = b"\xe0" + v.to_bytes(8, "little", signed=True)
        else:
            n = len(e)
            if n < 64:
                enc = bytes((n,)) + e
            elif n < 16384:
                enc = bytes((0x40 | (n >> 8), n & 0xFF)) + e
            else:
                enc = b"\x80" + n.to_bytes(4, "big") + e
        entry = pl + enc
        body += entry
        prevlen = len(entry)
    total = 10 + len(body) + 1
    return (total.to_bytes(4, "little") + last_off.to_bytes(4, "little")
            + min(len(entries), 65535).to_bytes(2, "little") + bytes(body) + b"\xff")
