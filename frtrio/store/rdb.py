"""RDB object serialization (pure): the DUMP / RESTORE payload format.

A DUMP payload is one RDB-serialized value followed by a 10-byte footer::

    <type byte> <object> <RDB version: 2 bytes LE> <CRC64-Jones: 8 bytes LE>

where the CRC covers everything before it. Redis 7.0 writes RDB version 10
and refuses payloads whose version is higher. This module reads every object
encoding a Redis of RDB version <= 10 writes (plain strings, int-encoded and
LZF-compressed strings; linked/ziplist/quicklist/quicklist-of-listpack
lists; plain and intset sets; plain, zipmap, ziplist and listpack hashes;
plain (string or binary scores), ziplist and listpack sorted sets), and
writes what Redis 7.0 writes for the same data, so that payloads move both
ways between frtrio and redis-server:

* strings: integer encoding for short canonical integers, LZF when
  ``rdbcompression`` is on and it pays, raw otherwise (LZF is pure Python
  here, so one object gets at most ``LZF_BUDGET`` bytes of compression work
  and a long string whose first 32 KiB do not compress is stored raw; past
  that the payload is larger than Redis's, and loads the same);
* lists: a quicklist of listpacks (type 18), nodes split as Redis 7.0 fills
  them when the list is built by appends (``list-max-listpack-size``);
* sets: intset (type 11) when every member is an integer and there are at
  most ``set-max-intset-entries``, else the plain encoding (type 2);
* hashes and sorted sets: a listpack (types 16, 17) under the
  ``*-max-listpack-entries`` / ``*-max-listpack-value`` limits, else the plain
  encodings (type 4; type 5 with binary scores, greatest first, as Redis).

Redis picks an encoding from a value's history (a hash that once grew big
stays a hashtable); frtrio picks it from the current content (sorted sets:
from the encoding ``store/zset.py`` tracks). Either choice loads correctly on
both sides. Within those choices the bytes are Redis's (same listpacks, node
splits, LZF parse), so a DUMP of the same data is byte-identical unless Redis
iterates a hash table.

Reading follows Redis's RESTORE: the reader may run into the 10-byte footer
(Redis reads from the whole buffer), and a loaded sorted set becomes a
listpack or skiplist as Redis converts after loading.

Format facts come from the RDB, listpack, ziplist, intset and LZF format
descriptions (Redis documentation and source, read for the formats only).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array

from frtrio.protocol.parser import string2ll
from frtrio.store.db import HashValue, ListValue, SetValue

RDB_VERSION = 10

# object types
T_STRING = 0
T_LIST = 1
T_SET = 2
T_ZSET = 3
T_HASH = 4
T_ZSET_2 = 5
T_MODULE = 6
T_MODULE_2 = 7
T_HASH_ZIPMAP = 9
T_LIST_ZIPLIST = 10
T_SET_INTSET = 11
T_ZSET_ZIPLIST = 12
T_HASH_ZIPLIST = 13
T_LIST_QUICKLIST = 14
T_STREAM_LISTPACKS = 15
T_HASH_LISTPACK = 16
T_ZSET_LISTPACK = 17
T_LIST_QUICKLIST_2 = 18
T_STREAM_LISTPACKS_2 = 19

# length-prefix special encodings (the low 6 bits after the 11 prefix)
ENC_INT8 = 0
ENC_INT16 = 1
ENC_INT32 = 2
ENC_LZF = 3

QUICKLIST_NODE_PLAIN = 1
QUICKLIST_NODE_PACKED = 2


class RdbError(Exception):
    """The payload is not a valid serialized object ("Bad data format")."""


# --- CRC64 (Jones polynomial, reflected, init 0, no final xor) -------------------

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


# --- LZF ----------------------------------------------------------------------

_HLOG = 16
_HSIZE = 1 << _HLOG
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def lzf_compress(data: bytes, out_limit: int) -> bytes | None:
    """LZF-compress ``data``; None if the result would exceed ``out_limit``
    bytes. Same greedy parse as liblzf's default build (16-bit hash table,
    "very fast" mode), so the output normally equals Redis's byte for byte.
    """
    in_len = len(data)
    if not in_len or out_limit <= 0:
        return None
    ip_ = data
    htab = [-1] * _HSIZE
    out = bytearray()
    # the literal run under construction: out[run_start] is its length byte
    out.append(0)
    lit = 0
    ip = 0
    end2 = in_len - 2
    hval = (ip_[0] << 8) | ip_[1] if in_len >= 2 else 0
    while ip < end2:
        hval = ((hval << 8) | ip_[ip + 2]) & 0xFFFFFFFF
        slot = (((hval >> 8) - hval * 5) & 0xFFFF)
        ref = htab[slot]
        htab[slot] = ip
        off = ip - ref - 1
        if (
            ref > 0
            and off < _MAX_OFF
            and ip_[ref + 2] == ip_[ip + 2]
            and ip_[ref] == ip_[ip]
            and ip_[ref + 1] == ip_[ip + 1]
        ):
            ln = 2
            maxlen = in_len - ip - ln
            if maxlen > _MAX_REF:
                maxlen = _MAX_REF
            if len(out) + 3 + 1 >= out_limit:
                if len(out) - (0 if lit else 1) + 3 + 1 >= out_limit:
                    return None
            out[len(out) - lit - 1] = lit - 1 if lit else 0
            if not lit:
                del out[-1]  # undo the empty run
            done = False
            if maxlen > 16:
                for _ in range(16):
                    ln += 1
                    if ip_[ref + ln] != ip_[ip + ln]:
                        done = True
                        break
            if not done:
                while True:
                    ln += 1
                    if not (ln < maxlen and ip_[ref + ln] == ip_[ip + ln]):
                        break
            ln -= 2  # a back reference copies ln + 2 bytes
            ip += 1
            if ln < 7:
                out.append((off >> 8) + (ln << 5))
            else:
                out.append((off >> 8) + (7 << 5))
                out.append(ln - 7)
            out.append(off & 0xFF)
            out.append(0)  # start a new run
            lit = 0
            ip += ln + 1
            if ip >= end2:
                break
            ip -= 2
            hval = (ip_[ip] << 8) | ip_[ip + 1]
            hval = ((hval << 8) | ip_[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
            ip += 1
            hval = ((hval << 8) | ip_[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
            ip += 1
        else:
            if len(out) >= out_limit:
                return None
            lit += 1
            out.append(ip_[ip])
            ip += 1
            if lit == _MAX_LIT:
                out[len(out) - lit - 1] = lit - 1
                lit = 0
                out.append(0)
    if len(out) + 3 > out_limit:
        return None
    while ip < in_len:
        lit += 1
        out.append(ip_[ip])
        ip += 1
        if lit == _MAX_LIT:
            out[len(out) - lit - 1] = lit - 1
            lit = 0
            out.append(0)
    if lit:
        out[len(out) - lit - 1] = lit - 1
    else:
        del out[-1]
    if len(out) > out_limit:
        return None
    return bytes(out)


def lzf_decompress(src: bytes, out_len: int) -> bytes:
    """Inflate LZF data that must expand to exactly ``out_len`` bytes."""
    if out_len == 0:  # Redis checks lzf_decompress() == len, and 0 is its failure value
        return b""
    out = bytearray(out_len)
    op = 0
    i = 0
    n = len(src)
    bad = "Invalid LZF compressed string"
    while i < n:
        ctrl = src[i]
        i += 1
        if ctrl < 32:
            ln = ctrl + 1
            if i + ln > n or op + ln > out_len:
                raise RdbError(bad)
            out[op : op + ln] = src[i : i + ln]
            op += ln
            i += ln
        else:
            ln = ctrl >> 5
            if ln == 7:
                if i >= n:
                    raise RdbError(bad)
                ln += src[i]
                i += 1
            ln += 2
            if i >= n:
                raise RdbError(bad)
            dist = ((ctrl & 0x1F) << 8) + src[i] + 1
            i += 1
            ref = op - dist
            if ref < 0 or op + ln > out_len:
                raise RdbError(bad)
            if dist >= ln:
                out[op : op + ln] = out[ref : ref + ln]
            else:
                pat = bytes(out[ref:op])
                out[op : op + ln] = (pat * (ln // dist + 1))[:ln]
            op += ln
    if op != out_len:
        raise RdbError(bad)
    return bytes(out)


# --- writing primitives ---------------------------------------------------------


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


# --- listpack -----------------------------------------------------------------


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


def _lp_from_entries(parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return ((7 + len(body)).to_bytes(4, "little") + min(len(parts), 65535).to_bytes(2, "little")
            + body + b"\xff")


def lp_build(entries) -> bytes:
    return _lp_from_entries([lp_entry(e) for e in entries])


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


# --- ziplist (RDB version <= 9 payloads) ------------------------------------------


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


# --- intset -------------------------------------------------------------------


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


# --- the zset type (store/zset.py) ------------------------------------------------


def _make_zset(pairs: list[tuple[bytes, float]], listpack: bool):
    """A sorted-set value from (member, score) pairs (members are unique)."""
    from frtrio.store.zset import ZSetValue

    return ZSetValue.from_items(pairs, listpack=listpack)


def _zset_pairs(z) -> list[tuple[bytes, float]]:
    """(member, score) pairs in ascending (score, member) order."""
    items = list(z.items())
    ok = True
    for i in range(1, len(items)):
        a, b = items[i - 1], items[i]
        if a[1] > b[1] or (a[1] == b[1] and a[0] > b[0]):
            ok = False
            break
    if not ok:
        items.sort(key=lambda p: (p[1], p[0]))
    return items


# --- encoding limits --------------------------------------------------------------


class Limits:
    """The configuration that decides which encoding a value is saved in."""

    __slots__ = ("compress", "list_fill", "hash_entries", "hash_value", "zset_entries",
                 "zset_value", "intset_entries")

    def __init__(self, compress=True, list_fill=-2, hash_entries=512, hash_value=64,
                 zset_entries=128, zset_value=64, intset_entries=512):
        self.compress = compress
        self.list_fill = list_fill
        self.hash_entries = hash_entries
        self.hash_value = hash_value
        self.zset_entries = zset_entries
        self.zset_value = zset_value
        self.intset_entries = intset_entries

    @classmethod
    def from_config(cls, cfg) -> "Limits":
        g = cfg.get_int
        return cls(
            compress=cfg.get("rdbcompression") == "yes",
            list_fill=g("list-max-listpack-size"),
            hash_entries=g("hash-max-listpack-entries"),
            hash_value=g("hash-max-listpack-value"),
            zset_entries=g("zset-max-listpack-entries"),
            zset_value=g("zset-max-listpack-value"),
            intset_entries=g("set-max-intset-entries"),
        )


DEFAULT_LIMITS = Limits()

# quicklist: size limits for negative list-max-listpack-size values
_QL_SIZE_LEVELS = (4096, 8192, 16384, 32768, 65536)
_QL_SAFETY_LIMIT = 8192
_QL_PACKED_THRESHOLD = 1 << 30
_QL_SIZE_ESTIMATE_OVERHEAD = 8


def _quicklist_nodes(items, fill: int) -> list[tuple[int, list[bytes]]]:
    """Split list elements into quicklist nodes the way Redis 7.0.15 fills
    them when the list is built by RPUSH (an element joins the tail node if
    node size + element length + 8 stays within the limit): (container,
    [element]) for a plain node, (container, [listpack entry bytes]) for a
    packed one."""
    nodes: list[tuple[int, list[bytes]]] = []
    cur: list[bytes] = []
    cur_sz = 0
    if fill < 0:
        lvl = -fill - 1
        size_limit = _QL_SIZE_LEVELS[lvl] if lvl < len(_QL_SIZE_LEVELS) else _QL_SIZE_LEVELS[-1]
    else:
        size_limit = None
        count_limit = max(fill, 1)
    overhead = _QL_SIZE_ESTIMATE_OVERHEAD
    packed = QUICKLIST_NODE_PACKED
    for e in items:
        sz = len(e)
        if sz >= _QL_PACKED_THRESHOLD:
            if cur:
                nodes.append((packed, cur))
                cur = []
            nodes.append((QUICKLIST_NODE_PLAIN, [e]))
            continue
        if cur:
            new_sz = cur_sz + sz + overhead
            if size_limit is not None:
                allow = new_sz <= size_limit
            else:
                allow = new_sz <= _QL_SAFETY_LIMIT and len(cur) < count_limit
            if not allow:
                nodes.append((packed, cur))
                cur = []
        if not cur:
            cur_sz = 7  # empty listpack: header + terminator
        enc = lp_entry(e)
        cur.append(enc)
        cur_sz += len(enc)
    if cur:
        nodes.append((packed, cur))
    return nodes


# --- object serialization -------------------------------------------------------------


def encode_object(v, lim: Limits = DEFAULT_LIMITS) -> bytes:
    """``<type byte><object>`` for a value, as Redis 7.0's rdbSaveObject.

    Pure-Python LZF is slow (about 1 s per MB in the worst case), so one
    object gets at most LZF_BUDGET bytes of compression attempts; strings
    past the budget are stored raw (a valid payload, larger than Redis's)."""
    budget = [LZF_BUDGET if lim.compress else 0]

    def es(s: bytes) -> bytes:
        n = len(s)
        if n <= 20 or budget[0] <= 0:
            return enc_string(s, False)
        budget[0] -= n
        return enc_string(s, True)

    if type(v) is bytes:
        return bytes((T_STRING,)) + es(v)
    tn = v.type_name
    if tn == b"list":
        nodes = _quicklist_nodes(v, lim.list_fill)
        parts = [bytes((T_LIST_QUICKLIST_2,)), enc_len(len(nodes))]
        for container, elems in nodes:
            parts.append(enc_len(container))
            if container == QUICKLIST_NODE_PLAIN:
                parts.append(es(elems[0]))
            else:
                parts.append(es(_lp_from_entries(elems)))
        return b"".join(parts)
    if tn == b"set":
        n = len(v)
        if 0 < n <= lim.intset_entries:
            ints = []
            for m in v:
                x = string2ll(m)
                if x is None:
                    ints = None
                    break
                ints.append(x)
            if ints is not None:
                return bytes((T_SET_INTSET,)) + es(intset_build(ints))
        parts = [bytes((T_SET,)), enc_len(n)]
        for m in v:
            parts.append(es(m))
        return b"".join(parts)
    if tn == b"hash":
        n = len(v)
        hv = lim.hash_value
        if n <= lim.hash_entries and all(len(f) <= hv and len(x) <= hv for f, x in v.items()):
            flat = []
            for f, x in v.items():
                flat.append(f)
                flat.append(x)
            return bytes((T_HASH_LISTPACK,)) + es(lp_build(flat))
        parts = [bytes((T_HASH,)), enc_len(n)]
        for f, x in v.items():
            parts.append(es(f))
            parts.append(es(x))
        return b"".join(parts)
    if tn == b"zset":
        pairs = _zset_pairs(v)
        n = len(pairs)
        zv = lim.zset_value
        lp = getattr(v, "listpack", None)  # the encoding Redis would have
        if lp is None:
            lp = n <= lim.zset_entries and all(len(m) <= zv for m, _ in pairs)
        if lp:
            flat = []
            for m, s in pairs:
                flat.append(m)
                flat.append(lp_score(s))
            return bytes((T_ZSET_LISTPACK,)) + es(lp_build(flat))
        parts = [bytes((T_ZSET_2,)), enc_len(n)]
        for m, s in reversed(pairs):
            parts.append(es(m))
            parts.append(enc_binary_double(s))
        return b"".join(parts)
    if tn == b"stream":
        from frtrio.store.rdb_stream import encode_stream  # (imports this module)

        return encode_stream(v, es)
    raise RdbError("cannot serialize a %r value" % tn)


def dump_payload(v, lim: Limits = DEFAULT_LIMITS) -> bytes:
    """The DUMP payload of a value."""
    body = encode_object(v, lim) + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def verify_payload(p: bytes, check_crc: bool = True) -> bool:
    """Redis's verifyDumpPayload: footer present, version <= ours, CRC ok."""
    if len(p) < 10:
        return False
    ver = p[-10] | (p[-9] << 8)
    if ver > RDB_VERSION:
        return False
    if not check_crc:
        return True
    return crc64(p[:-8]) == int.from_bytes(p[-8:], "little")


# --- reading ------------------------------------------------------------------------


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
        return _strtod(s)


def _strtod(s: bytes) -> float:
    try:
        return float(s.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise RdbError("bad double value") from None


def _score(s: bytes) -> float:
    """A score stored as a string in a ziplist/listpack zset."""
    x = _strtod(s)
    if math.isnan(x):
        raise RdbError("Zset with NAN score detected")
    return x


def _unique_dict(cls, items, what: str):
    d = cls()
    for k in items:
        if k in d:
            raise RdbError("Duplicate %s detected" % what)
        d[k] = None
    return d


def _hash_from_flat(flat: list[bytes]) -> HashValue:
    if len(flat) % 2:
        raise RdbError("Hash with odd number of entries")
    h = HashValue()
    for i in range(0, len(flat), 2):
        f = flat[i]
        if f in h:
            raise RdbError("Duplicate hash fields detected")
        h[f] = flat[i + 1]
    if not h:
        raise RdbError("Empty keys")
    return h


def _zset_from_flat(flat: list[bytes], lim: Limits):
    if len(flat) % 2:
        raise RdbError("Zset with odd number of entries")
    pairs = []
    seen: dict = {}
    for i in range(0, len(flat), 2):
        m = flat[i]
        if m in seen:
            raise RdbError("Duplicate zset fields detected")
        seen[m] = None
        pairs.append((m, _score(flat[i + 1])))
    if not pairs:
        raise RdbError("Empty keys")
    return _make_zset(pairs, len(pairs) <= lim.zset_entries)


def decode_object(r: Reader, t: int, lim: Limits = DEFAULT_LIMITS):
    """Read one object of type ``t`` (rdbLoadObject). ``lim`` decides the
    encoding a loaded sorted set gets, as Redis converts after loading."""
    if t == T_STRING:
        return r.string()
    if t == T_LIST:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        return ListValue(r.string() for _ in range(n))
    if t == T_SET:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        s = SetValue()
        for _ in range(n):
            m = r.string()
            if m in s:
                raise RdbError("Duplicate set members detected")
            s[m] = None
        return s
    if t in (T_ZSET, T_ZSET_2):
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        pairs = []
        seen: dict = {}
        for _ in range(n):
            m = r.string()
            sc = r.binary_double() if t == T_ZSET_2 else r.string_double()
            if math.isnan(sc):
                raise RdbError("Zset with NAN score detected")
            if m in seen:
                raise RdbError("Duplicate zset fields detected")
            seen[m] = None
            pairs.append((m, sc))
        lp = n <= lim.zset_entries and max(len(m) for m, _ in pairs) <= lim.zset_value
        return _make_zset(pairs, lp)
    if t == T_HASH:
        n = r.plain_length()
        if n == 0:
            raise RdbError("Empty keys")
        h = HashValue()
        for _ in range(n):
            f = r.string()
            v = r.string()
            if f in h:
                raise RdbError("Duplicate hash fields detected")
            h[f] = v
        return h
    if t == T_LIST_QUICKLIST or t == T_LIST_QUICKLIST_2:
        n = r.plain_length()
        lst = ListValue()
        for _ in range(n):
            container = QUICKLIST_NODE_PACKED
            if t == T_LIST_QUICKLIST_2:
                container = r.plain_length()
                if container not in (QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED):
                    raise RdbError("Quicklist integrity check failed")
            blob = r.string()
            if not blob:
                raise RdbError("Quicklist node is empty")
            if container == QUICKLIST_NODE_PLAIN:
                lst.append(blob)
            elif t == T_LIST_QUICKLIST:
                lst.extend(zl_entries(blob))
            else:
                lst.extend(lp_entries(blob))
        if not lst:
            raise RdbError("Empty keys")
        return lst
    if t == T_LIST_ZIPLIST:
        items = zl_entries(r.string())
        if not items:
            raise RdbError("Empty keys")
        return ListValue(items)
    if t == T_SET_INTSET:
        members = intset_members(r.string())
        if not members:
            raise RdbError("Empty keys")
        return _unique_dict(SetValue, members, "set members")
    if t == T_HASH_ZIPMAP:
        return _hash_from_flat(zipmap_entries(r.string()))
    if t == T_HASH_ZIPLIST:
        return _hash_from_flat(zl_entries(r.string()))
    if t == T_HASH_LISTPACK:
        return _hash_from_flat(lp_entries(r.string()))
    if t == T_ZSET_ZIPLIST:
        return _zset_from_flat(zl_entries(r.string()), lim)
    if t == T_ZSET_LISTPACK:
        return _zset_from_flat(lp_entries(r.string()), lim)
    if t == T_STREAM_LISTPACKS or t == T_STREAM_LISTPACKS_2:
        from frtrio.store.rdb_stream import decode_stream  # (imports this module)

        return decode_stream(r, t)
    raise RdbError("Unknown RDB encoding type %d" % t)


def load_payload(p: bytes, lim: Limits = DEFAULT_LIMITS):
    """The value inside a DUMP payload (footer already verified)."""
    r = Reader(p)  # Redis reads through the footer too: a string may run into it
    t = r.byte()
    return decode_object(r, t, lim)
