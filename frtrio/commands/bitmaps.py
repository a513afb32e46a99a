"""Bitmap commands (Redis 7.0 semantics): SETBIT, GETBIT, BITCOUNT, BITPOS,
BITOP, BITFIELD, BITFIELD_RO.

Bitmaps are plain string values (``bytes``); bit 0 is the most significant
bit of the first byte, as in Redis. Argument checks happen in Redis's order
(offsets and values are parsed before the key is looked up, except where
Redis looks the key up first: BITCOUNT, BITPOS after its bit argument).
"""

from __future__ import annotations

from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import (
    err,
    lookup_read,
    parse_int,
    syntax_error,
    wrongtype,
)
from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, STRING
from frtrio.protocol.parser import string2ll

BIT_OFFSET_ERR = "ERR bit offset is not an integer or out of range"
BIT_VALUE_ERR = "ERR bit is not an integer or out of range"
BITFIELD_TYPE_ERR = ("ERR Invalid bitfield type. Use something like i16 u8. "
                     "Note that u64 is not supported but i64 is.")

_U64 = (1 << 64) - 1


def _s64(x: int) -> int:
    """x as a C int64_t (two's complement wrap)."""
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def bit_offset(c, arg: bytes, hash_ok: bool = False, bits: int = 0) -> int:
    """Redis's getBitOffsetFromArgument."""
    usehash = hash_ok and bits > 0 and arg[:1] == b"#"
    v = string2ll(arg[1:] if usehash else arg)
    if v is None:
        raise err(BIT_OFFSET_ERR)
    if usehash:
        v = _s64(v * bits)
    if v < 0 or (v >> 3) >= c.server.config.get_int("proto-max-bulk-len"):
        raise err(BIT_OFFSET_ERR)
    return v


def _string_or_none(v):
    if v is None or type(v) is bytes:
        return v
    raise wrongtype()


def _grow_for_write(c, key: bytes, maxbit: int):
    """Redis's lookupStringForBitCommand: (bytearray, existed, dirty)."""
    v = _string_or_none(c.db.lookup(key, c.server.now_ms))
    need = (maxbit >> 3) + 1
    if v is None:
        return bytearray(need), False, True
    buf = bytearray(v)
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
        return buf, True, True
    return buf, True, False


def _store(c, key: bytes, buf: bytearray, existed: bool, n: int = 1) -> None:
    if existed:
        c.db.replace_value(key, bytes(buf))
        c.db.mark_raw(key)
    else:
        c.db.set(key, bytes(buf))
        c.db.mark_raw(key)
    modified(c, key, n)


@command("setbit")
def cmd_setbit(c, argv):
    off = bit_offset(c, argv[2])
    on = string2ll(argv[3])
    if on is None or on & ~1:
        raise err(BIT_VALUE_ERR)
    key = argv[1]
    v = _string_or_none(c.db.lookup(key, c.server.now_ms))
    byte = off >> 3
    shift = 7 - (off & 7)
    if v is not None and byte < len(v):
        old = (v[byte] >> shift) & 1
        if old != on:
            nb = (v[byte] & ~(1 << shift)) | (on << shift)
            c.db.replace_value(key, v[:byte] + bytes((nb,)) + v[byte + 1:])
            c.db.mark_raw(key)
            modified(c, key)
            ev(c, STRING, b"setbit", key)
        return old
    # a new key, or the string grows: always a change
    if v is None:
        c.db.set(key, bytes(byte) + bytes((on << shift,)))
        c.db.mark_raw(key)
    else:
        c.db.replace_value(key, v + bytes(byte - len(v)) + bytes((on << shift,)))
        c.db.mark_raw(key)
    modified(c, key)
    ev(c, STRING, b"setbit", key)
    return 0


@command("getbit")
def cmd_getbit(c, argv):
    off = bit_offset(c, argv[2])
    v = _string_or_none(lookup_read(c, argv[1]))
    if v is None:
        return 0
    byte = off >> 3
    if byte >= len(v):
        return 0
    return (v[byte] >> (7 - (off & 7))) & 1


_BITOPS = {b"and": 0, b"or": 1, b"xor": 2, b"not": 3}


@command("bitop")
def cmd_bitop(c, argv):
    op = _BITOPS.get(argv[1].split(b"\0", 1)[0].lower())
    if op is None:
        raise syntax_error()
    if op == 3 and len(argv) != 4:
        raise err("ERR BITOP NOT must be called with a single source key.")
    srcs = []
    for k in argv[3:]:
        srcs.append(_string_or_none(lookup_read(c, k)) or b"")
    maxlen = max(len(s) for s in srcs)
    dst = argv[2]
    if maxlen:
        vals = [int.from_bytes(s.ljust(maxlen, b"\0"), "big") for s in srcs]
        r = vals[0]
        if op == 3:
            r = ((1 << (8 * maxlen)) - 1) ^ r
        elif op == 0:
            for x in vals[1:]:
                r &= x
        elif op == 1:
            for x in vals[1:]:
                r |= x
        else:
            for x in vals[1:]:
                r ^= x
        c.db.set(dst, r.to_bytes(maxlen, "big"))
        c.db.mark_raw(dst)
        modified(c, dst)
        ev(c, STRING, b"set", dst)
    elif c.db.lookup(dst, c.server.now_ms) is not None:
        c.db.delete(dst)
        modified(c, dst)
        ev(c, GENERIC, b"del", dst)
    return maxlen


def _popcount(b: bytes) -> int:
    return int.from_bytes(b, "big").bit_count() if b else 0


def _is_word(a: bytes, w: bytes) -> bool:
    return a.split(b"\0", 1)[0].lower() == w


@command("bitcount")
def cmd_bitcount(c, argv):
    v = _string_or_none(lookup_read(c, argv[1]))
    if v is None:
        return 0
    n = len(argv)
    first_mask = last_mask = 0
    if n in (4, 5):
        totlen = len(v)
        start = parse_int(argv[2])
        end = parse_int(argv[3])
        if start < 0 and end < 0 and start > end:
            return 0
        isbit = False
        if n == 5:
            if _is_word(argv[4], b"bit"):
                isbit = True
            elif not _is_word(argv[4], b"byte"):
                raise syntax_error()
        start, end, first_mask, last_mask = _byte_range(start, end, totlen, isbit)
    elif n == 2:
        start, end = 0, len(v) - 1
    else:
        raise syntax_error()
    if start > end:
        return 0
    count = _popcount(v[start:end + 1])
    if first_mask:
        count -= bin(v[start] & first_mask).count("1")
    if last_mask:
        count -= bin(v[end] & last_mask).count("1")
    return count


def _byte_range(start: int, end: int, nbytes: int, isbit: bool):
    """BITCOUNT's and BITPOS's range: negative indexes from the end, clamped
    to the value; in BIT units also the masks of the bits outside the range
    in the first and last byte. Returns (start byte, end byte, first_mask,
    last_mask); start > end means an empty range."""
    total = nbytes << 3 if isbit else nbytes
    if start < 0:
        start += total
    if end < 0:
        end += total
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= total:
        end = total - 1
    if isbit and start <= end:
        return (start >> 3, end >> 3, ~((1 << (8 - (start & 7))) - 1) & 0xFF,
                (1 << (7 - (end & 7))) - 1)
    return start, end, 0, 0


def _redis_bitpos(buf: bytes, bit: int) -> int:
    """Redis's redisBitpos: the first bit set to ``bit``; -1 when looking
    for 1 and there is none, len*8 when looking for 0 and there is none."""
    if bit:
        rest = buf.lstrip(b"\0")
        if not rest:
            return -1
        i = len(buf) - len(rest)
        return i * 8 + 8 - rest[0].bit_length()
    rest = buf.lstrip(b"\xff")
    if not rest:
        return len(buf) * 8
    i = len(buf) - len(rest)
    return i * 8 + 8 - ((~rest[0]) & 0xFF).bit_length()


@command("bitpos")
def cmd_bitpos(c, argv):
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise err("ERR The bit argument must be 1 or 0.")
    v = _string_or_none(lookup_read(c, argv[1]))
    if v is None:
        return -1 if bit else 0
    n = len(argv)
    first_mask = last_mask = 0
    end_given = False
    if n in (4, 5, 6):
        totlen = len(v)
        start = parse_int(argv[3])
        isbit = False
        if n == 6:
            if _is_word(argv[5], b"bit"):
                isbit = True
            elif not _is_word(argv[5], b"byte"):
                raise syntax_error()
        if n >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = (totlen << 3) + 7 if isbit else totlen - 1
        start, end, first_mask, last_mask = _byte_range(start, end, totlen, isbit)
    elif n == 3:
        start, end = 0, len(v) - 1
    else:
        raise syntax_error()
    if start > end:
        return -1
    nbytes = end - start + 1
    pos = None
    if first_mask:
        t = v[start] & ~first_mask & 0xFF if bit else v[start] | first_mask
        if last_mask and nbytes == 1:
            t = t & ~last_mask & 0xFF if bit else t | last_mask
        pos = _redis_bitpos(bytes((t,)), bit)
        if not (nbytes == 1 or (pos != -1 and pos != 8)):
            start += 1
            nbytes -= 1
            pos = None
    if pos is None:
        cur = nbytes - (1 if last_mask else 0)
        if cur > 0:
            pos = _redis_bitpos(v[start:start + cur], bit)
            if not (nbytes == cur or (pos != -1 and pos != cur << 3)):
                start += cur
                nbytes -= cur
                pos = None
        if pos is None:
            t = v[end] & ~last_mask & 0xFF if bit else v[end] | last_mask
            pos = _redis_bitpos(bytes((t,)), bit)
    if end_given and bit == 0 and pos == nbytes << 3:
        return -1
    if pos != -1:
        pos += start << 3
    return pos


# --- BITFIELD -----------------------------------------------------------------


def _get_unsigned(buf, offset: int, bits: int) -> int:
    byte = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(buf[byte:last + 1])
    if len(chunk) < last + 1 - byte:
        chunk = chunk.ljust(last + 1 - byte, b"\0")
    x = int.from_bytes(chunk, "big")
    tail = (last + 1) * 8 - (offset + bits)
    return (x >> tail) & ((1 << bits) - 1)


def _get_signed(buf, offset: int, bits: int) -> int:
    u = _get_unsigned(buf, offset, bits)
    if u >> (bits - 1):
        u -= 1 << bits
    return u


def _set_bits(buf: bytearray, offset: int, bits: int, value: int) -> None:
    value &= (1 << bits) - 1
    byte = offset >> 3
    last = (offset + bits - 1) >> 3
    n = last + 1 - byte
    x = int.from_bytes(buf[byte:last + 1], "big")
    tail = (last + 1) * 8 - (offset + bits)
    mask = ((1 << bits) - 1) << tail
    x = (x & ~mask) | (value << tail)
    buf[byte:last + 1] = x.to_bytes(n, "big")


_WRAP, _SAT, _FAIL = 0, 1, 2


def _check_unsigned(value: int, incr: int, bits: int, owtype: int):
    """checkUnsignedBitfieldOverflow: (overflow, limit)."""
    mx = (1 << bits) - 1
    maxincr = _s64(mx - value)
    minincr = _s64(-value)
    if value > mx or (incr > 0 and incr > maxincr):
        if owtype == _WRAP:
            return 1, (value + incr) & mx
        return 1, mx
    if incr < 0 and incr < minincr:
        if owtype == _WRAP:
            return 1, (value + incr) & mx
        return -1, 0
    return 0, None


def _check_signed(value: int, incr: int, bits: int, owtype: int):
    """checkSignedBitfieldOverflow, with C's int64 wrap-arounds."""
    mx = (1 << 63) - 1 if bits == 64 else (1 << (bits - 1)) - 1
    mn = -mx - 1
    maxincr = _s64(mx - value)
    minincr = _s64(mn - value)
    if (value > mx or (bits != 64 and incr > maxincr)
            or (value >= 0 and incr > 0 and incr > maxincr)):
        if owtype == _WRAP:
            return 1, _wrap_signed(value, incr, bits)
        return 1, mx
    if (value < mn or (bits != 64 and incr < minincr)
            or (value < 0 and incr < 0 and incr < minincr)):
        if owtype == _WRAP:
            return 1, _wrap_signed(value, incr, bits)
        return -1, mn
    return 0, None


def _wrap_signed(value: int, incr: int, bits: int) -> int:
    cc = (value + incr) & _U64
    if bits < 64:
        mask = (_U64 << bits) & _U64
        if cc & (1 << (bits - 1)):
            cc |= mask
        else:
            cc &= ~mask & _U64
    return _s64(cc)


def _bitfield(c, argv, ro: bool):
    ops = []
    owtype = _WRAP
    readonly = True
    highest = 0
    n = len(argv)
    j = 2
    while j < n:
        rem = n - j - 1
        sub = argv[j].split(b"\0", 1)[0].lower()
        if sub == b"get" and rem >= 2:
            opcode = 0
        elif sub == b"set" and rem >= 3:
            opcode = 1
        elif sub == b"incrby" and rem >= 3:
            opcode = 2
        elif sub == b"overflow" and rem >= 1:
            name = argv[j + 1].split(b"\0", 1)[0].lower()
            j += 2
            if name == b"wrap":
                owtype = _WRAP
            elif name == b"sat":
                owtype = _SAT
            elif name == b"fail":
                owtype = _FAIL
            else:
                raise err("ERR Invalid OVERFLOW type specified")
            continue
        else:
            raise syntax_error()
        t = argv[j + 1].split(b"\0", 1)[0]
        if t[:1] == b"i":
            sign = True
        elif t[:1] == b"u":
            sign = False
        else:
            raise err(BITFIELD_TYPE_ERR)
        bits = string2ll(t[1:])
        if bits is None or bits < 1 or (sign and bits > 64) or (not sign and bits > 63):
            raise err(BITFIELD_TYPE_ERR)
        off = bit_offset(c, argv[j + 2], True, bits)
        i64 = 0
        if opcode:
            readonly = False
            if highest < off + bits - 1:
                highest = off + bits - 1
            i64 = parse_int(argv[j + 3])
        ops.append((opcode, off, i64, owtype, bits, sign))
        j += 4 if opcode else 3
    key = argv[1]
    if readonly:
        v = _string_or_none(lookup_read(c, key))
        buf = v or b""
        existed = dirty = False
    else:
        if ro:
            raise err("ERR BITFIELD_RO only supports the GET subcommand")
        buf, existed, dirty = _grow_for_write(c, key, highest)
    out = []
    changes = 0
    for opcode, off, i64, ow, bits, sign in ops:
        if opcode == 0:
            out.append(_get_signed(buf, off, bits) if sign else _get_unsigned(buf, off, bits))
            continue
        if sign:
            old = _get_signed(buf, off, bits)
            if opcode == 2:
                ovf, lim = _check_signed(old, i64, bits, ow)
                new = lim if ovf else old + i64
                ret = new
            else:
                new = i64
                ovf, lim = _check_signed(new, 0, bits, ow)
                if ovf:
                    new = lim
                ret = old
        else:
            old = _get_unsigned(buf, off, bits)
            if opcode == 2:
                new = (old + i64) & _U64
                ovf, lim = _check_unsigned(old, i64, bits, ow)
                if ovf:
                    new = lim
                ret = new
            else:
                new = i64 & _U64
                ovf, lim = _check_unsigned(new, 0, bits, ow)
                if ovf:
                    new = lim
                ret = old
            ret = _s64(ret)
        if ovf and ow == _FAIL:
            out.append(None)
            continue
        out.append(ret)
        _set_bits(buf, off, bits, new)
        if dirty or old != new:
            changes += 1
    if not readonly and (changes or dirty):
        # the key exists from here on (Redis created or grew it even when
        # every operation failed)
        if existed:
            c.db.replace_value(key, bytes(buf))
            c.db.mark_raw(key)
        else:
            c.db.set(key, bytes(buf))
            c.db.mark_raw(key)
        if changes:
            modified(c, key, changes)
            ev(c, STRING, b"setbit", key)
    return out


@command("bitfield")
def cmd_bitfield(c, argv):
    return _bitfield(c, argv, False)


@command("bitfield_ro")
def cmd_bitfield_ro(c, argv):
    return _bitfield(c, argv, True)
