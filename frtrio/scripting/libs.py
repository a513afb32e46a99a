"""The libraries Redis loads into its Lua: ``bit``, ``cjson``, ``cmsgpack``,
``struct``. lupa's Lua 5.1 ships none of them. These are written here (in
Python, called from Lua as C functions are) from the documented behaviour of
LuaBitOp, lua-cjson 2.1, lua-cmsgpack 0.4 and Roberto Ierusalimschy's struct
library as Redis 7.0 configures them (cjson: 14 significant digits, nesting
limit 1000 both ways, no NaN/Inf on encode; cmsgpack: nesting limit 16).

Errors are raised as Lua errors carrying the library's message (without a
position, as ``luaL_error`` from a C function gives none).
"""

from __future__ import annotations

import math
import struct as _st

import lupa.lua51 as _lua

_lua_type = _lua.lua_type


_where = [lambda: b""]


def _fail(msg: str):
    """luaL_error from a library function: the message, prefixed with the
    position of the Lua code that called it."""
    raise _lua.LuaError(_where[0]() + msg.encode())


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- bit (LuaBitOp) ----------------------------------------------------------

def _tobit(x) -> int:
    if not _num(x):
        if isinstance(x, bytes):
            try:
                x = float(x)
            except ValueError:
                _fail("bad argument #1 to '?' (number expected, got string)")
        else:
            _fail("bad argument #1 to '?' (number expected, got %s)" % _tname(x))
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return 0
        # LuaBitOp normalises with the 2^52+2^51 trick: round half to even
        x = round(x)
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _tname(v) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, bytes):
        return "string"
    if _num(v):
        return "number"
    t = _lua_type(v)
    return t or "userdata"


def _u(x) -> int:
    return _tobit(x) & 0xFFFFFFFF


def _s(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _bit_table():
    def band(*a):
        r = 0xFFFFFFFF
        for x in a:
            r &= _u(x)
        return _s(r)

    def bor(*a):
        r = 0
        for x in a:
            r |= _u(x)
        return _s(r)

    def bxor(*a):
        r = 0
        for x in a:
            r ^= _u(x)
        return _s(r)

    def tohex(x, n=8):
        v = _u(x)
        n = _tobit(n) if n is not None else 8
        upper = n < 0
        n = min(abs(n), 8)
        s = ("%08X" if upper else "%08x") % v
        return s[8 - n:].encode() if n else b""

    def rol(x, n):
        v, n = _u(x), _u(n) & 31
        return _s((v << n) | (v >> (32 - n)))

    def ror(x, n):
        v, n = _u(x), _u(n) & 31
        return _s((v >> n) | (v << (32 - n)))

    return {
        b"tobit": lambda x: _tobit(x),
        b"bnot": lambda x: _s(~_u(x)),
        b"band": band,
        b"bor": bor,
        b"bxor": bxor,
        b"lshift": lambda x, n: _s(_u(x) << (_u(n) & 31)),
        b"rshift": lambda x, n: _s(_u(x) >> (_u(n) & 31)),
        b"arshift": lambda x, n: _s(_tobit(x) >> (_u(n) & 31)),
        b"rol": rol,
        b"ror": ror,
        b"bswap": lambda x: _s(int.from_bytes(_u(x).to_bytes(4, "little"), "big")),
        b"tohex": tohex,
    }


# --- cjson -------------------------------------------------------------------

_ESC = {i: b"\\u%04x" % i for i in range(32)}
_ESC.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r",
             34: b'\\"', 92: b"\\\\", 47: b"\\/", 127: b"\\u007f"})
_ESC_TABLE = {k: v for k, v in _ESC.items()}


def _json_str(s: bytes) -> bytes:
    out = bytearray(b'"')
    esc = _ESC_TABLE
    for ch in s:
        e = esc.get(ch)
        if e is None:
            out.append(ch)
        else:
            out += e
    out += b'"'
    return bytes(out)


class CJson:
    def __init__(self, scripting):
        self.s = scripting
        self.null = None  # set by install (a userdata)
        self.max_depth = 1000
        self.decode_depth = 1000
        self.precision = 14
        self.sparse = (False, 2, 10)
        self.invalid_enc = 0  # off
        self.invalid_dec = True

    def _number(self, x) -> bytes:
        x = float(x)
        if math.isinf(x) or math.isnan(x):
            if self.invalid_enc == 0:
                _fail("Cannot serialise number: must not be NaN or Inf")
            if self.invalid_enc == 2:
                return b"null"
            return b"nan" if math.isnan(x) else (b"inf" if x > 0 else b"-inf")
        return (b"%%.%dg" % self.precision) % x

    def encode(self, *args):
        if len(args) != 1:
            _fail("bad argument #1 to 'encode' (expected 1 argument)")
        out: list = []
        self._enc(args[0], out, 0)
        return b"".join(out)

    def _enc(self, v, out, depth):
        if v is None:
            out.append(b"null")
        elif v is True:
            out.append(b"true")
        elif v is False:
            out.append(b"false")
        elif isinstance(v, bytes):
            out.append(_json_str(v))
        elif _num(v):
            out.append(self._number(v))
        else:
            t = _lua_type(v)
            if t == "table":
                depth += 1
                if depth > self.max_depth:
                    _fail("Cannot serialise, excessive nesting (%d)" % depth)
                n = self._array_len(v)
                if n > 0:
                    out.append(b"[")
                    for i in range(1, n + 1):
                        if i > 1:
                            out.append(b",")
                        self._enc(v[i], out, depth)
                    out.append(b"]")
                else:
                    out.append(b"{")
                    first = True
                    for k, x in v.items():
                        if not first:
                            out.append(b",")
                        first = False
                        if isinstance(k, bytes):
                            out.append(_json_str(k))
                        elif _num(k):
                            out.append(b'"' + self._number(k) + b'"')
                        else:
                            _fail("Cannot serialise %s: table key must be a number or string" % _tname(k))
                        out.append(b":")
                        self._enc(x, out, depth)
                    out.append(b"}")
            elif self.is_null(v):
                out.append(b"null")
            else:
                _fail("Cannot serialise %s: type not supported" % (t or "userdata"))

    def _array_len(self, t) -> int:
        mx = 0
        items = 0
        for k in t.keys():
            if _num(k) and k and float(k) == math.floor(k) and k >= 1:
                if k > mx:
                    mx = int(k)
                items += 1
                continue
            return -1
        convert, ratio, safe = self.sparse
        if ratio > 0 and mx > items * ratio and mx > safe:
            if not convert:
                _fail("Cannot serialise table: excessively sparse array")
            return -1
        return mx

    # decoding
    def decode(self, *args):
        if len(args) != 1:
            _fail("bad argument #1 to 'decode' (expected 1 argument)")
        s = args[0]
        if _num(s):
            s = (b"%.14g" % s)
        if not isinstance(s, bytes):
            _fail("bad argument #1 to 'decode' (string expected, got %s)" % _tname(s))
        if len(s) >= 2 and (s[0] == 0 or s[1] == 0):
            _fail("JSON parser does not support UTF-16 or UTF-32")
        self._src = s
        self._pos = 0
        self._depth = 0
        tok = self._token()
        v = self._value(tok)
        tok = self._token()
        if tok[0] != "T_END":
            self._err("the end", tok)
        return v

    def _err(self, exp, tok):
        found = tok[2] if tok[0] == "T_ERROR" else tok[0]
        _fail("Expected %s but found %s at character %d" % (exp, found, tok[1] + 1))

    def _token(self):
        s = self._src
        n = len(s)
        p = self._pos
        while p < n and s[p] in b" \t\n\r":
            p += 1
        self._pos = p
        if p >= n or s[p] == 0:
            return ("T_END", p, None)
        ch = s[p]
        single = {0x7B: "T_OBJ_BEGIN", 0x7D: "T_OBJ_END", 0x5B: "T_ARR_BEGIN",
                  0x5D: "T_ARR_END", 0x3A: "T_COLON", 0x2C: "T_COMMA"}
        if ch in single:
            self._pos = p + 1
            return (single[ch], p, None)
        if ch == 0x22:
            return self._string(p)
        if ch == 0x2D or 0x30 <= ch <= 0x39:
            return self._number_tok(p)
        for word, val in ((b"true", True), (b"false", False)):
            if s.startswith(word, p):
                self._pos = p + len(word)
                return ("T_BOOLEAN", p, val)
        if s.startswith(b"null", p):
            self._pos = p + 4
            return ("T_NULL", p, None)
        if self.invalid_dec and (s[p:p + 3].lower() in (b"nan", b"inf")):
            return self._number_tok(p)
        return ("T_ERROR", p, "invalid token")

    def _number_tok(self, p):
        s = self._src
        j = p
        n = len(s)
        # strtod's longest valid prefix
        import re

        m = re.compile(rb"[-+]?(?:inf(?:inity)?|nan|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)",
                       re.I).match(s, p)
        if not m or m.end() == p:
            return ("T_ERROR", p, "invalid number")
        txt = m.group(0)
        low = txt.lower()
        if (b"x" in low or b"inf" in low or b"nan" in low) and not self.invalid_dec:
            return ("T_ERROR", p, "invalid number")
        try:
            if b"x" in low:
                v = float(int(low.replace(b"0x", b""), 16)) * (-1 if low.startswith(b"-") else 1)
            else:
                v = float(txt)
        except ValueError:
            return ("T_ERROR", p, "invalid number")
        j = m.end()
        del n
        self._pos = j
        if v == int(v) and abs(v) < 2**63:
            v = int(v)
        return ("T_NUMBER", p, v)

    def _string(self, p):
        s = self._src
        n = len(s)
        i = p + 1
        out = bytearray()
        while True:
            if i >= n or s[i] == 0:
                return ("T_ERROR", i, "unexpected end of string")
            ch = s[i]
            if ch == 0x22:
                break
            if ch == 0x5C:
                if i + 1 >= n:
                    return ("T_ERROR", i, "unexpected end of string")
                e = s[i + 1]
                simple = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 12, 0x6E: 10,
                          0x72: 13, 0x74: 9}
                if e in simple:
                    out.append(simple[e])
                    i += 2
                    continue
                if e == 0x75:
                    cp, used = self._unicode(s, i)
                    if cp is None:
                        return ("T_ERROR", i, "invalid unicode escape code")
                    out += chr(cp).encode("utf-8", "surrogatepass")
                    i += used
                    continue
                return ("T_ERROR", i, "invalid escape code")
            out.append(ch)
            i += 1
        self._pos = i + 1
        return ("T_STRING", p, bytes(out))

    @staticmethod
    def _unicode(s, i):
        def hex4(j):
            h = s[j:j + 4]
            if len(h) != 4 or any(c not in b"0123456789abcdefABCDEF" for c in h):
                return None
            return int(h, 16)

        cp = hex4(i + 2)
        if cp is None:
            return None, 0
        if 0xD800 <= cp <= 0xDBFF:
            if s[i + 6:i + 8] != b"\\u":
                return None, 0
            lo = hex4(i + 8)
            if lo is None or not (0xDC00 <= lo <= 0xDFFF):
                return None, 0
            return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), 12
        if 0xDC00 <= cp <= 0xDFFF:
            return None, 0
        return cp, 6

    def _value(self, tok):
        kind = tok[0]
        if kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN"):
            return tok[2]
        if kind == "T_NULL":
            return self.null
        if kind == "T_OBJ_BEGIN":
            return self._object(tok)
        if kind == "T_ARR_BEGIN":
            return self._array(tok)
        self._err("value", tok)

    def _descend(self, tok):
        self._depth += 1
        if self._depth > self.decode_depth:
            _fail("Found too many nested data structures (%d) at character %d"
                  % (self._depth, tok[1] + 1))

    def _object(self, tok):
        self._descend(tok)
        t = self.s.L.table()
        tok = self._token()
        if tok[0] == "T_OBJ_END":
            self._depth -= 1
            return t
        while True:
            if tok[0] != "T_STRING":
                self._err("object key string", tok)
            key = tok[2]
            tok = self._token()
            if tok[0] != "T_COLON":
                self._err("colon", tok)
            t[key] = self._value(self._token())
            tok = self._token()
            if tok[0] == "T_OBJ_END":
                self._depth -= 1
                return t
            if tok[0] != "T_COMMA":
                self._err("comma or object end", tok)
            tok = self._token()

    def _array(self, tok):
        self._descend(tok)
        t = self.s.L.table()
        tok = self._token()
        if tok[0] == "T_ARR_END":
            self._depth -= 1
            return t
        i = 1
        while True:
            t[i] = self._value(tok)
            i += 1
            tok = self._token()
            if tok[0] == "T_ARR_END":
                self._depth -= 1
                return t
            if tok[0] != "T_COMMA":
                self._err("comma or array end", tok)
            tok = self._token()

    def _enum(self, v, cur, options, bool_true):
        if v is not None:
            if bool_true and isinstance(v, bool):
                cur = bool_true if v else 0
            else:
                sv = v if isinstance(v, bytes) else (b"%.14g" % v if _num(v) else None)
                names = [o.encode() for o in options]
                if sv not in names:
                    _fail("bad argument #1 to '?' (invalid option '%s')"
                          % (sv or b"").decode("latin-1"))
                cur = names.index(sv)
        return cur

    def _enum_out(self, cur, options, bool_true):
        if bool_true and (cur == 0 or cur == bool_true):
            return bool(cur)
        return options[cur].encode()

    def encode_invalid_numbers(self, *a):
        opts = ["off", "on", "null"]
        self.invalid_enc = self._enum(a[0] if a else None, self.invalid_enc, opts, 1)
        return self._enum_out(self.invalid_enc, opts, 1)

    def decode_invalid_numbers(self, *a):
        opts = ["off", "on"]
        cur = self._enum(a[0] if a else None, int(self.invalid_dec), opts, 1)
        self.invalid_dec = bool(cur)
        return self._enum_out(cur, opts, 1)

    def encode_keep_buffer(self, *a):
        opts = ["off", "on"]
        self.keep = self._enum(a[0] if a else None, getattr(self, "keep", 1), opts, 1)
        return self._enum_out(self.keep, opts, 1)

    def encode_sparse_array(self, *a):
        a = list(a) + [None] * (3 - len(a))
        convert, ratio, safe = self.sparse
        opts = ["off", "on"]
        convert = self._enum(a[0], int(convert), opts, 1)
        for idx, name in ((1, "ratio"), (2, "safe")):
            v = a[idx]
            if v is not None:
                if not _num(v) or v < 0 or v > 2**31 - 1:
                    _fail("bad argument #%d to 'encode_sparse_array' (expected integer between 0 "
                          "and 2147483647)" % (idx + 1))
                if idx == 1:
                    ratio = int(v)
                else:
                    safe = int(v)
        self.sparse = (bool(convert), ratio, safe)
        return (bool(convert), ratio, safe)

    def cfg_int(self, attr, lo, hi, name):
        def f(*a):
            if a and a[0] is not None:
                v = a[0]
                if not _num(v) or not (lo <= v <= hi):
                    _fail("bad argument #1 to '%s' (expected integer between %d and %d)" % (name, lo, hi))
                setattr(self, attr, int(v))
            return getattr(self, attr)
        return f


# --- struct ------------------------------------------------------------------

class Struct:
    """Roberto Ierusalimschy's struct library (pack/unpack/size)."""

    def _parse(self, fmt: bytes):
        i = 0
        n = len(fmt)
        little = True
        align = 1
        while i < n:
            c = chr(fmt[i])
            i += 1
            if c in " ":
                continue
            if c in "<>=!":
                if c == "<":
                    little = True
                elif c == ">":
                    little = False
                elif c == "=":
                    little = True
                else:
                    j = i
                    while j < n and 48 <= fmt[j] <= 57:
                        j += 1
                    align = int(fmt[i:j]) if j > i else 8
                    i = j
                yield ("ctl", little, align, 0)
                continue
            j = i
            while j < n and 48 <= fmt[j] <= 57:
                j += 1
            size = int(fmt[i:j]) if j > i else None
            i = j
            yield (c, little, align, size)

    _SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}

    def _size(self, c, size):
        if c in "iI":
            s = size if size is not None else 4
            if s < 1 or s > 32:
                _fail("integral size %d is not in range [1,32]" % s)
            return s
        if c == "c":
            return size if size is not None else 1
        if c == "s":
            return 0
        if c in self._SIZES:
            return self._SIZES[c]
        _fail("invalid format option '%s'" % c)

    @staticmethod
    def _pad(pos, size, align):
        a = min(size, align)
        if a <= 1:
            return 0
        if a & (a - 1):
            _fail("alignment must be power of 2")
        return (a - (pos & (a - 1))) & (a - 1)

    def pack(self, fmt, *args):
        if not isinstance(fmt, bytes):
            _fail("bad argument #1 to 'pack' (string expected, got %s)" % _tname(fmt))
        out = bytearray()
        ai = 0
        for c, little, align, size in self._parse(fmt):
            if c == "ctl":
                continue
            sz = self._size(c, size)
            if c not in "cs":
                out += b"\0" * self._pad(len(out), sz, align)
            if c == "x":
                out += b"\0"
                continue
            if ai >= len(args):
                _fail("bad argument #%d to 'pack' (number expected, got no value)" % (ai + 2))
            v = args[ai]
            ai += 1
            if c in "bBhHlLTiI":
                if not _num(v):
                    _fail("bad argument #%d to 'pack' (number expected, got %s)" % (ai + 1, _tname(v)))
                iv = int(v) & ((1 << (8 * sz)) - 1)
                out += iv.to_bytes(sz, "little" if little else "big")
            elif c in "fd":
                if not _num(v):
                    _fail("bad argument #%d to 'pack' (number expected, got %s)" % (ai + 1, _tname(v)))
                out += _st.pack(("<" if little else ">") + c, float(v))
            elif c == "c":
                s = v if isinstance(v, bytes) else (b"%.14g" % v if _num(v) else None)
                if s is None:
                    _fail("bad argument #%d to 'pack' (string expected, got %s)" % (ai + 1, _tname(v)))
                if size == 0 or size is None and False:
                    out += s
                else:
                    want = size if size is not None else 1
                    if len(s) < want:
                        _fail("bad argument #%d to 'pack' (string too short)" % (ai + 1))
                    out += s[:want]
            elif c == "s":
                s = v if isinstance(v, bytes) else (b"%.14g" % v if _num(v) else None)
                if s is None:
                    _fail("bad argument #%d to 'pack' (string expected, got %s)" % (ai + 1, _tname(v)))
                if b"\0" in s:
                    _fail("bad argument #%d to 'pack' (string contains zeros)" % (ai + 1))
                out += s + b"\0"
        return bytes(out)

    def unpack(self, fmt, data, init=None):
        if not isinstance(fmt, bytes):
            _fail("bad argument #1 to 'unpack' (string expected, got %s)" % _tname(fmt))
        if not isinstance(data, bytes):
            _fail("bad argument #2 to 'unpack' (string expected, got %s)" % _tname(data))
        pos = int(init) - 1 if init is not None else 0
        if pos < 0 or pos > len(data):
            _fail("bad argument #3 to 'unpack' (offset out of range)")
        res = []
        for c, little, align, size in self._parse(fmt):
            if c == "ctl":
                continue
            sz = self._size(c, size)
            if c not in "cs":
                pos += self._pad(pos, sz, align)
            if c == "x":
                pos += 1
                continue
            if c in "bBhHlLTiI":
                if pos + sz > len(data):
                    _fail("bad argument #2 to 'unpack' (data string too short)")
                v = int.from_bytes(data[pos:pos + sz], "little" if little else "big")
                if c in "bhli" and v >= 1 << (8 * sz - 1):
                    v -= 1 << (8 * sz)
                res.append(v)
                pos += sz
            elif c in "fd":
                if pos + sz > len(data):
                    _fail("bad argument #2 to 'unpack' (data string too short)")
                res.append(_st.unpack(("<" if little else ">") + c, data[pos:pos + sz])[0])
                pos += sz
            elif c == "c":
                if size == 0:
                    if not res or not _num(res[-1]):
                        _fail("format 'c0' needs a previous size")
                    sz = int(res.pop())
                if pos + sz > len(data):
                    _fail("bad argument #2 to 'unpack' (data string too short)")
                res.append(data[pos:pos + sz])
                pos += sz
            elif c == "s":
                e = data.find(b"\0", pos)
                if e < 0:
                    _fail("unfinished string in data")
                res.append(data[pos:e])
                pos = e + 1
        res.append(pos + 1)
        return tuple(res)

    def size(self, fmt):
        if not isinstance(fmt, bytes):
            _fail("bad argument #1 to 'size' (string expected, got %s)" % _tname(fmt))
        pos = 0
        for c, little, align, size in self._parse(fmt):
            if c == "ctl":
                continue
            sz = self._size(c, size)
            if c == "s" or (c == "c" and size == 0):
                _fail("options 'c0' - 's' have undefined sizes")
            if c != "c":
                pos += self._pad(pos, sz, align)
            pos += sz
        return pos


# --- cmsgpack ----------------------------------------------------------------

class MsgPack:
    MAX_NESTING = 16

    def __init__(self, scripting):
        self.s = scripting

    def pack(self, *args):
        if not args:
            _fail("MessagePack pack needs input.")
        out = bytearray()
        for a in args:
            self._enc(a, out, 0)
        return bytes(out)

    def _enc(self, v, out, level):
        if v is None:
            out.append(0xC0)
        elif v is True:
            out.append(0xC3)
        elif v is False:
            out.append(0xC2)
        elif isinstance(v, bytes):
            n = len(v)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out += b"\xd9" + bytes([n])
            elif n <= 0xFFFF:
                out += b"\xda" + n.to_bytes(2, "big")
            else:
                out += b"\xdb" + n.to_bytes(4, "big")
            out += v
        elif _num(v):
            self._number(v, out)
        elif _lua_type(v) == "table" and level < self.MAX_NESTING:
            n = self._array_len(v)
            if n >= 0:
                self._hdr(out, n, 0x90, 0xDC, 0xDD)
                for i in range(1, n + 1):
                    self._enc(v[i], out, level + 1)
            else:
                items = list(v.items())
                self._hdr(out, len(items), 0x80, 0xDE, 0xDF)
                for k, x in items:
                    self._enc(k, out, level + 1)
                    self._enc(x, out, level + 1)
        else:
            out.append(0xC0)

    @staticmethod
    def _hdr(out, n, fix, c16, c32):
        if n < 16:
            out.append(fix | n)
        elif n <= 0xFFFF:
            out.append(c16)
            out += n.to_bytes(2, "big")
        else:
            out.append(c32)
            out += n.to_bytes(4, "big")

    @staticmethod
    def _array_len(t) -> int:
        count = 0
        mx = 0
        for k in t.keys():
            if not (_num(k) and k > 0 and float(k) == math.floor(k)):
                return -1
            count += 1
            if k > mx:
                mx = int(k)
        return count if mx == count else -1

    @staticmethod
    def _number(v, out):
        f = float(v)
        if f == math.floor(f) and not math.isinf(f) and -2**63 <= f < 2**64:
            n = int(f)
            if n >= 0:
                if n <= 127:
                    out.append(n)
                elif n <= 0xFF:
                    out += b"\xcc" + bytes([n])
                elif n <= 0xFFFF:
                    out += b"\xcd" + n.to_bytes(2, "big")
                elif n <= 0xFFFFFFFF:
                    out += b"\xce" + n.to_bytes(4, "big")
                else:
                    out += b"\xcf" + n.to_bytes(8, "big")
            else:
                if n >= -32:
                    out.append(n & 0xFF)
                elif n >= -128:
                    out += b"\xd0" + n.to_bytes(1, "big", signed=True)
                elif n >= -32768:
                    out += b"\xd1" + n.to_bytes(2, "big", signed=True)
                elif n >= -2147483648:
                    out += b"\xd2" + n.to_bytes(4, "big", signed=True)
                else:
                    out += b"\xd3" + n.to_bytes(8, "big", signed=True)
            return
        f32 = _st.unpack(">f", _st.pack(">f", f))[0] if not math.isinf(f) and abs(f) < 3.5e38 else None
        if f32 is not None and (f32 == f or (math.isnan(f))):
            out += b"\xca" + _st.pack(">f", f)
        else:
            out += b"\xcb" + _st.pack(">d", f)

    def unpack(self, *args):
        return self._unpack(args, "unpack", one=False, limit=0)

    def unpack_one(self, *args):
        return self._unpack(args, "unpack_one", one=True, limit=1)

    def unpack_limit(self, *args):
        lim = int(args[1]) if len(args) > 1 and _num(args[1]) else 0
        return self._unpack(args[:1] + args[2:], "unpack_limit", one=True, limit=lim)

    def _unpack(self, args, name, one, limit):
        if not args or not isinstance(args[0], bytes):
            _fail("bad argument #1 to '%s' (string expected, got %s)"
                  % (name, _tname(args[0]) if args else "no value"))
        data = args[0]
        pos = 0
        if one and len(args) > 1 and _num(args[1]):
            pos = int(args[1])
        if pos < 0 or pos > len(data):
            _fail("Start offset %d greater than input length %d." % (pos, len(data)))
        out = []
        while pos < len(data) and (not limit or len(out) < limit):
            v, pos = self._dec(data, pos)
            out.append(v)
        if one:
            return (pos if pos < len(data) else -1,) + tuple(out)
        return tuple(out)

    def _need(self, data, pos, n):
        if pos + n > len(data):
            _fail("Missing bytes in input.")

    def _dec(self, data, pos):
        self._need(data, pos, 1)
        c = data[pos]
        pos += 1
        if c <= 0x7F:
            return c, pos
        if c >= 0xE0:
            return c - 256, pos
        if 0xA0 <= c <= 0xBF:
            n = c & 0x1F
            self._need(data, pos, n)
            return data[pos:pos + n], pos + n
        if 0x90 <= c <= 0x9F:
            return self._arr(data, pos, c & 0xF)
        if 0x80 <= c <= 0x8F:
            return self._map(data, pos, c & 0xF)
        if c == 0xC0:
            return None, pos
        if c == 0xC2:
            return False, pos
        if c == 0xC3:
            return True, pos
        fixed = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
                 0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}
        if c in fixed:
            n, signed = fixed[c]
            self._need(data, pos, n)
            return int.from_bytes(data[pos:pos + n], "big", signed=signed), pos + n
        if c == 0xCA:
            self._need(data, pos, 4)
            return _st.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if c == 0xCB:
            self._need(data, pos, 8)
            return _st.unpack(">d", data[pos:pos + 8])[0], pos + 8
        strs = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}
        if c in strs:
            k = strs[c]
            self._need(data, pos, k)
            n = int.from_bytes(data[pos:pos + k], "big")
            pos += k
            self._need(data, pos, n)
            return data[pos:pos + n], pos + n
        if c in (0xDC, 0xDD):
            k = 2 if c == 0xDC else 4
            self._need(data, pos, k)
            return self._arr(data, pos + k, int.from_bytes(data[pos:pos + k], "big"))
        if c in (0xDE, 0xDF):
            k = 2 if c == 0xDE else 4
            self._need(data, pos, k)
            return self._map(data, pos + k, int.from_bytes(data[pos:pos + k], "big"))
        _fail("Bad data format in input.")

    def _arr(self, data, pos, n):
        t = self.s.L.table()
        for i in range(1, n + 1):
            v, pos = self._dec(data, pos)
            t[i] = v
        return t, pos

    def _map(self, data, pos, n):
        t = self.s.L.table()
        for _ in range(n):
            k, pos = self._dec(data, pos)
            v, pos = self._dec(data, pos)
            if k is not None:
                t[k] = v
        return t, pos


def install(scripting, vm, G) -> None:
    """Put the libraries into the scripts' globals."""
    import sys

    # cjson nests 1000 deep both ways (two Python frames a level here); the
    # script runs on its own thread with a big stack (runner.py)
    if sys.getrecursionlimit() < 4000:
        sys.setrecursionlimit(4000)
    L = vm.L
    # luaL_where of the state running now (scripts and functions have one each)
    _where[0] = lambda: scripting.vm.F[b"where"]()
    bit = L.table_from(_bit_table())
    G[b"bit"] = bit

    cj = CJson(vm)
    cj.null = L.eval("newproxy(false)")
    cj.is_null = L.eval("function(null) return function(v) return rawequal(v, null) end end")(cj.null)
    cjson = L.table_from({
        b"encode": cj.encode,
        b"decode": cj.decode,
        b"encode_max_depth": cj.cfg_int("max_depth", 1, 2**31 - 1, "encode_max_depth"),
        b"decode_max_depth": cj.cfg_int("decode_depth", 1, 2**31 - 1, "decode_max_depth"),
        b"encode_number_precision": cj.cfg_int("precision", 1, 14, "encode_number_precision"),
        b"encode_keep_buffer": cj.encode_keep_buffer,
        b"encode_invalid_numbers": cj.encode_invalid_numbers,
        b"decode_invalid_numbers": cj.decode_invalid_numbers,
        b"encode_sparse_array": cj.encode_sparse_array,
        b"null": cj.null,
        b"_NAME": b"cjson",
        b"_VERSION": b"2.1.0",
    })
    G[b"cjson"] = cjson

    st = Struct()
    G[b"struct"] = L.table_from({b"pack": st.pack, b"unpack": st.unpack, b"size": st.size})

    mp = MsgPack(vm)
    G[b"cmsgpack"] = L.table_from({
        b"pack": mp.pack,
        b"unpack": mp.unpack,
        b"unpack_one": mp.unpack_one,
        b"unpack_limit": mp.unpack_limit,
        b"_NAME": b"cmsgpack",
        b"_VERSION": b"lua-cmsgpack 0.4.0",
        b"_COPYRIGHT": b"Copyright (C) 2012, Salvatore Sanfilippo",
        b"_DESCRIPTION": b"MessagePack C implementation for Lua",
    })
