"""CRC-64 (Jones polynomial, reflected, init 0, no final xor): Redis's
crc64, the checksum DUMP payloads and RDB files carry (pure)."""

from __future__ import annotations

import sys
from array import array

_CRC_POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed
_T8: list[int] = []
_T64: tuple | None = None  # slicing-by-8 tables, built on first big input


def _init_t8() -> None:
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC_POLY if c & 1 else c >> 1
        _T8.append(c)


_init_t8()


def _t64() -> tuple:
    """Four 65536-entry tables: Tk[x] is the CRC state after 2k+2 zero bytes
    from state x, so 8 input bytes cost 4 lookups."""
    global _T64
    if _T64 is None:
        t8 = _T8
        t16 = array("Q", bytes(8 * 65536))
        for v in range(65536):
            a = t8[v & 0xFF]
            t16[v] = t8[(a ^ (v >> 8)) & 0xFF] ^ (a >> 8)
        t1 = array("Q", (t16[t16[x] & 0xFFFF] ^ (t16[x] >> 16) for x in range(65536)))
        t2 = array("Q", (t16[t1[x] & 0xFFFF] ^ (t1[x] >> 16) for x in range(65536)))
        t3 = array("Q", (t16[t2[x] & 0xFFFF] ^ (t2[x] >> 16) for x in range(65536)))
        _T64 = (t16, t1, t2, t3)
    return _T64


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's crc64 (the one DUMP payloads and RDB files carry)."""
    n = len(data)
    t8 = _T8
    if n < 4096:
        for b in data:
            crc = t8[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc
    t0, t1, t2, t3 = _t64()
    m = n & ~7
    words = array("Q")
    words.frombytes(data[:m] if m != n else data)
    if sys.byteorder == "big":  # pragma: no cover
        words.byteswap()
    for w in words:
        v = crc ^ w
        crc = t3[v & 0xFFFF] ^ t2[(v >> 16) & 0xFFFF] ^ t1[(v >> 32) & 0xFFFF] ^ t0[v >> 48]
    for b in data[m:]:
        crc = t8[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc
