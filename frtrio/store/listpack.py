"""Listpacks (pure): building them as Redis 7.0 does (entries, back
lengths, the integer encodings, a zset score's encoding) and reading them
back with Redis's integrity checks."""

from __future__ import annotations

import math

from frtrio.protocol.parser import string2ll
from frtrio.store.rdb_format import RdbError

_LL_HALF = float(2**62)  # (double)(LLONG_MAX / 2)


def lp_score(x: float) -> bytes:
    """How Redis 7.0 stores a score in a listpack zset: as an integer entry
    when the double is integral within +-LLONG_MAX/2 (so -0 becomes 0),
    else as its ``%.17g`` text ("inf", "-inf")."""
    if math.isinf(x):
        return b"-inf" if x < 0 else b"inf"
    if math.isnan(x):
        return b"nan"
    if -_LL_HALF <= x <= _LL_HALF:
        i = int(x)
        if i == x:
            return b"%d" % i
    return b"%.17g" % x


def _lp_backlen(ln: int) -> bytes:
    if ln <= 127:
        return bytes((ln,))
    if ln < 16383:
        return bytes((ln >> 7, (ln & 127) | 128))
    if ln < 2097151:
        return bytes((ln >> 14, ((ln >> 7) & 127) | 128, (ln & 127) | 128))
    if ln < 268435455:
        return bytes((ln >> 21, ((ln >> 14) & 127) | 128, ((ln >> 7) & 127) | 128,
                      (ln & 127) | 128))
    return bytes((ln >> 28, ((ln >> 21) & 127) | 128, ((ln >> 14) & 127) | 128,
                  ((ln >> 7) & 127) | 128, (ln & 127) | 128))


def lp_entry(e: bytes) -> bytes:
    """One listpack entry (encoding, data, back length) for string ``e``."""
    n = len(e)
    if n and n <= 20 and (e[0] <= 57 and (e[0] >= 48 or e[0] == 45)):
        v = string2ll(e)
        if v is not None:
            if 0 <= v <= 127:
                return bytes((v, 1))
            if -4096 <= v <= 4095:
                u = v & 0x1FFF
                return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
            if -32768 <= v <= 32767:
                return b"\xf1" + (v & 0xFFFF).to_bytes(2, "little") + b"\x03"
            if -8388608 <= v <= 8388607:
                return b"\xf2" + (v & 0xFFFFFF).to_bytes(3, "little") + b"\x04"
            if -(2**31) <= v <= 2**31 - 1:
                return b"\xf3" + (v & 0xFFFFFFFF).to_bytes(4, "little") + b"\x05"
            return b"\xf4" + (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + b"\x09"
    if n < 64:
        return bytes((0x80 | n,)) + e + bytes((n + 1,))
    if n < 4096:
        body = bytes((0xE0 | (n >> 8), n & 0xFF)) + e
    else:
        body = b"\xf0" + n.to_bytes(4, "little") + e
    return body + _lp_backlen(len(body))


def lp_from_entries(parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return ((7 + len(body)).to_bytes(4, "little") + min(len(parts), 65535).to_bytes(2, "little")
            + body + b"\xff")


def lp_build(entries) -> bytes:
    return lp_from_entries([lp_entry(e) for e in entries])


def lp_entries(lp: bytes) -> list[bytes]:
    """The entries of a listpack, as strings (integers in decimal)."""
    n = len(lp)
    if n < 7 or int.from_bytes(lp[0:4], "little") != n or lp[-1] != 0xFF:
        raise RdbError("Listpack integrity check failed")
    declared = int.from_bytes(lp[4:6], "little")
    out: list[bytes] = []
    p = 6
    end = n - 1
    while p < end:
        b = lp[p]
        if b < 0x80:
            out.append(b"%d" % b)
            blen = 1
        elif b < 0xC0:
            ln = b & 0x3F
            blen = 1 + ln
            if p + blen > end:
                raise RdbError("Listpack integrity check failed")
            out.append(lp[p + 1 : p + blen])
        elif b < 0xE0:
            if p + 2 > end:
                raise RdbError("Listpack integrity check failed")
            u = ((b & 0x1F) << 8) | lp[p + 1]
            if u >= 4096:
                u -= 8192
            out.append(b"%d" % u)
            blen = 2
        elif b < 0xF0:
            if p + 2 > end:
                raise RdbError("Listpack integrity check failed")
            ln = ((b & 0x0F) << 8) | lp[p + 1]
            blen = 2 + ln
            if p + blen > end:
                raise RdbError("Listpack integrity check failed")
            out.append(lp[p + 2 : p + blen])
        elif b == 0xF0:
            if p + 5 > end:
                raise RdbError("Listpack integrity check failed")
            ln = int.from_bytes(lp[p + 1 : p + 5], "little")
            blen = 5 + ln
            if p + blen > end:
                raise RdbError("Listpack integrity check failed")
            out.append(lp[p + 5 : p + blen])
        elif 0xF1 <= b <= 0xF4:
            w = (2, 3, 4, 8)[b - 0xF1]
            if p + 1 + w > end:
                raise RdbError("Listpack integrity check failed")
            u = int.from_bytes(lp[p + 1 : p + 1 + w], "little")
            if u >= 1 << (8 * w - 1):
                u -= 1 << (8 * w)
            out.append(b"%d" % u)
            blen = 1 + w
        else:
            raise RdbError("Listpack integrity check failed")
        p += blen
        # the back length (1..5 bytes) must say blen, as Redis's deep check
        # (sanitize-dump-payload) requires: its own corrupt-dump tests
        # refuse a listpack whose back length is wrong
        if blen <= 127:
            if p >= end or lp[p] != blen:
                raise RdbError("Listpack integrity check failed")
            p += 1
        else:
            back = _lp_backlen(blen)
            if lp[p : p + len(back)] != back:
                raise RdbError("Listpack integrity check failed")
            p += len(back)
        if p > end:
            raise RdbError("Listpack integrity check failed")
    if p != end:
        raise RdbError("Listpack integrity check failed")
    if declared != 65535 and declared != len(out):
        raise RdbError("Listpack integrity check failed")
    return out
