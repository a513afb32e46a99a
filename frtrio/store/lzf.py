"""LZF compression (pure): liblzf's format and greedy parse, so compressed
RDB strings equal Redis's byte for byte."""

from __future__ import annotations

from frtrio.store.rdb_format import RdbError

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
