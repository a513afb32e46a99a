"""RDB lengths, strings and doubles (pure): writing them as rdbSaveLen /
rdbSaveRawString (integer encoding, LZF, raw) do, and the ``Reader`` that
reads them back (rdbLoadLen, rdbGenericLoadStringObject, the double
encodings)."""

from __future__ import annotations

import math
import struct

from frtrio.protocol.parser import string2ll
from frtrio.store.lzf import lzf_compress, lzf_decompress
from frtrio.store.rdb_format import ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF, RdbError


def enc_len(n: int) -> bytes:
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((((n >> 8) & 0x3F) | 0x40, n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _enc_int(v: int) -> bytes | None:
    if -128 <= v <= 127:
        return bytes((0xC0, v & 0xFF))
    if -32768 <= v <= 32767:
        return b"\xc1" + (v & 0xFFFF).to_bytes(2, "little")
    if -(2**31) <= v <= 2**31 - 1:
        return b"\xc2" + (v & 0xFFFFFFFF).to_bytes(4, "little")
    return None


_LZF_PROBE = 32 * 1024
LZF_BUDGET = 256 * 1024  # bytes of LZF input per serialized object


def enc_string(s: bytes, compress: bool = True) -> bytes:
    """Redis's rdbSaveRawString: int encoding, LZF, or length + bytes."""
    n = len(s)
    if n <= 11:
        v = string2ll(s)
        if v is not None:
            e = _enc_int(v)
            if e is not None:
                return e
    if compress and n > 20:
        if n > _LZF_PROBE and lzf_compress(s[:_LZF_PROBE], _LZF_PROBE - 4) is None:
            # Pure-Python LZF costs about 1 s per incompressible MB; a long
            # string whose head does not compress is stored raw (Redis would
            # try the whole string; both payloads load the same).
            return enc_len(n) + s
        c = lzf_compress(s, n - 4)
        if c is not None:
            return b"\xc3" + enc_len(len(c)) + enc_len(n) + c
    return enc_len(n) + s


def enc_binary_double(x: float) -> bytes:
    return struct.pack("<d", x)


class Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, end: int | None = None):
        self.buf = buf
        self.pos = 0
        self.end = len(buf) if end is None else end

    def take(self, n: int) -> bytes:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise RdbError("short read")
        self.pos = p + n
        return self.buf[p : p + n]

    def byte(self) -> int:
        p = self.pos
        if p >= self.end:
            raise RdbError("short read")
        self.pos = p + 1
        return self.buf[p]

    def length(self) -> tuple[int, bool]:
        """(length, is_encoded): rdbLoadLenByRef."""
        b = self.byte()
        t = b >> 6
        if t == 0:
            return b & 0x3F, False
        if t == 1:
            return ((b & 0x3F) << 8) | self.byte(), False
        if t == 3:
            return b & 0x3F, True
        if b == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if b == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise RdbError("Unknown length encoding %d" % b)

    def plain_length(self) -> int:
        # rdbLoadLen(rdb, NULL): an "encoded" length byte reads as its 6 bits
        return self.length()[0]

    def string(self) -> bytes:
        n, enc = self.length()
        if enc:
            if n == ENC_INT8:
                return b"%d" % int.from_bytes(self.take(1), "little", signed=True)
            if n == ENC_INT16:
                return b"%d" % int.from_bytes(self.take(2), "little", signed=True)
            if n == ENC_INT32:
                return b"%d" % int.from_bytes(self.take(4), "little", signed=True)
            if n == ENC_LZF:
                clen = self.plain_length()
                ulen = self.plain_length()
                if ulen > 88 * clen + 64:  # LZF expands at most 264 bytes per 3
                    raise RdbError("Invalid LZF compressed string")
                return lzf_decompress(self.take(clen), ulen)
            raise RdbError("Unknown RDB string encoding type %d" % n)
        return self.take(n)

    def binary_double(self) -> float:
        return struct.unpack("<d", self.take(8))[0]

    def string_double(self) -> float:
        n = self.byte()
        if n == 255:
            return -math.inf
        if n == 254:
            return math.inf
        if n == 253:
            return math.nan
        s = self.take(n)
        return load_double_text(s)


def load_double_text(s: bytes) -> float:
    try:
        return float(s.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise RdbError("bad double value") from None
