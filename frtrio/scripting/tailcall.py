"""Keep the script's frame under ``return redis.call(...)`` (pure).

Redis's ``redis.call`` / ``redis.pcall`` are C functions: Lua 5.1 runs a C
function called in tail position (``OP_TAILCALL``) on top of the caller's
frame, so the error handler still finds the script's line. Here they are small
Lua functions in front of the Python callables (lupa refuses a call to Python
with more than ~7990 arguments, Redis takes 8000: past a threshold the
arguments go packed in a table), and a tail call to a Lua function replaces
the caller's frame. So a compiled script is rewritten at the bytecode level:
every ``OP_TAILCALL`` whose function register was loaded as ``x.call``
or ``x.pcall`` (``redis.call``, ``redis.pcall``) becomes ``OP_CALL`` with all results kept. Lua 5.1 always
emits ``OP_RETURN A 0`` after ``OP_TAILCALL``, which then returns those
results: the behaviour is the same, only the frame stays.

The format is Lua 5.1's ``string.dump`` (lundump.c): a 12-byte header, then
the main function prototype with its nested prototypes.
"""

from __future__ import annotations

import struct

OP_GETTABLE = 6
OP_CALL = 28
OP_TAILCALL = 29
# opcodes whose A field is not a register they write
_NOT_WRITING_A = frozenset({7, 8, 9, 22, 23, 24, 25, 26, 30, 34, 35})
_BITRK = 256
_NAMES = (b"call", b"pcall")

HEADER = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00"


class _Reader:
    def __init__(self, data: bytes, pos: int):
        self.data = data
        self.pos = pos

    def int(self) -> int:
        v = struct.unpack_from("<i", self.data, self.pos)[0]
        self.pos += 4
        return v

    def byte(self) -> int:
        v = self.data[self.pos]
        self.pos += 1
        return v

    def string(self) -> bytes | None:
        n = struct.unpack_from("<Q", self.data, self.pos)[0]
        self.pos += 8
        if n == 0:
            return None
        s = self.data[self.pos:self.pos + n - 1]  # without the trailing NUL
        self.pos += n
        return s


def _function(r: _Reader, out: bytearray) -> None:
    """Walk one prototype, patching its code in ``out`` (same offsets)."""
    r.string()  # source
    r.int()
    r.int()
    r.pos += 4  # nups, numparams, is_vararg, maxstacksize
    ncode = r.int()
    code_at = r.pos
    code = list(struct.unpack_from("<%dI" % ncode, r.data, code_at))
    r.pos += 4 * ncode
    consts: list = []
    for _ in range(r.int()):
        t = r.byte()
        if t == 0:  # nil
            consts.append(None)
        elif t == 1:  # boolean
            consts.append(r.byte())
        elif t == 3:  # number
            r.pos += 8
            consts.append(None)
        elif t == 4:  # string
            consts.append(r.string())
        else:
            raise ValueError("unknown constant type %d" % t)
    for pc, ins in enumerate(code):
        if ins & 0x3F == OP_TAILCALL and _loads_redis_call(code, pc, consts):
            struct.pack_into("<I", out, code_at + 4 * pc, (ins & ~0x3F) | OP_CALL)
    for _ in range(r.int()):
        _function(r, out)
    nlines = r.int()  # line info
    r.pos += 4 * nlines
    for _ in range(r.int()):  # local variables
        r.string()
        r.pos += 8
    for _ in range(r.int()):  # upvalue names
        r.string()


def _last_writer(code: list, pc: int, a: int) -> int:
    """The instruction before ``pc`` that last wrote register ``a`` (the
    call's arguments live above it), or -1."""
    for i in range(pc - 1, -1, -1):
        ins = code[i]
        op = ins & 0x3F
        if op in _NOT_WRITING_A:
            continue
        if (ins >> 6) & 0xFF == a:
            return i
    return -1


def _loads_redis_call(code: list, pc: int, consts: list) -> bool:
    """Was the called function read as ``<table>.call`` / ``<table>.pcall``
    (``redis.call``, ``local r = redis; r.call``...)? A false positive only
    keeps a frame a tail call would have dropped."""
    a = (code[pc] >> 6) & 0xFF
    i = _last_writer(code, pc, a)
    if i < 0:
        return False
    ins = code[i]
    c = (ins >> 14) & 0x1FF
    return ins & 0x3F == OP_GETTABLE and bool(c & _BITRK) and consts[c - _BITRK] in _NAMES


def keep_frames(dump: bytes) -> bytes | None:
    """The chunk with tail calls to redis.call / redis.pcall made plain
    calls, or None when there is none (or the format is not the expected)."""
    if not dump.startswith(HEADER):
        return None
    out = bytearray(dump)
    try:
        _function(_Reader(dump, len(HEADER)), out)
    except (ValueError, struct.error, IndexError):
        return None
    if out == dump:
        return None
    return bytes(out)
