"""LOLWUT [VERSION v] [args...] (pure), as Redis 7.0.15 answers it.

* Without VERSION (or any version other than 5 and 6, and 4.9 / 5.9 which
  pick the next one), the reply is "Redis ver. 7.0.15\\n".
* Version 5: Georg Nees' "Schotter": a grid of squares, more and more
  rotated and shifted going down the rows, drawn with Bresenham lines on a
  canvas of console_cols*2 pixels wide, rendered 2x4 pixels per Braille
  character (U+2800 + the 8 dot bits), then the credit line.
* Version 6: a city skyline of three layers of skyscrapers (two gray
  layers without windows, then black ones with windows), one pixel per
  character drawn as ANSI color escapes, then the credits.

Redis draws its random numbers with the C library's rand(), seeded at
startup; frtrio has the same generator (glibc's additive feedback one,
``CRand``) seeded from the node's RNG, so a drawing is reproducible from
the node's seed and has Redis's statistics. Drawings that use no random
numbers (Schotter with at most two rows) are byte for byte Redis's.
"""

from __future__ import annotations

import math

from frtrio.commands.table import command
from frtrio.commands.util import parse_int
from frtrio.config import VERSION
from frtrio.protocol.reply import Verbatim

RAND_MAX = 2147483647
_M32 = 0xFFFFFFFF


class CRand:
    """glibc's rand()/random() (TYPE_3: x**31 + x**3 + 1, 34-word state)."""

    def __init__(self, seed: int):
        seed &= _M32
        if seed == 0:
            seed = 1
        r = [0] * 34
        word = _s32(seed)  # (an int32_t: seeds from 2**31 up are negative)
        r[0] = seed
        for i in range(1, 31):
            # 16807 * word % (2**31 - 1) by Schrage's method, with C's
            # truncating division
            hi = _cdiv(word, 127773)
            lo = word - hi * 127773
            word = 16807 * lo - 2836 * hi
            if word < 0:
                word += 2147483647
            r[i] = word & _M32
        for i in range(31, 34):
            r[i] = r[i - 31]
        self.r = r  # the last 34 words
        for _ in range(310):
            self._next()

    def _next(self) -> int:
        r = self.r
        v = (r[-31] + r[-3]) & _M32
        r.append(v)
        del r[0]
        return v

    def rand(self) -> int:
        return self._next() >> 1


def _s32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v >= 1 << 31 else v


def _f32(x: float) -> float:
    """Round to single precision (C ``float``)."""
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


def _c_round(x: float) -> int:
    """C's round(): halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


class Canvas:
    __slots__ = ("width", "height", "pixels")

    def __init__(self, width: int, height: int, bg: int):
        self.width = width
        self.height = height
        self.pixels = bytearray([bg]) * (width * height)

    def set(self, x: int, y: int, color: int) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[x + y * self.width] = color

    def get(self, x: int, y: int) -> int:
        if 0 <= x < self.width and 0 <= y < self.height:
            return self.pixels[x + y * self.width]
        return 0

    def line(self, x1: int, y1: int, x2: int, y2: int, color: int) -> None:
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        sx = 1 if x1 < x2 else -1
        sy = 1 if y1 < y2 else -1
        e = dx - dy
        while True:
            self.set(x1, y1, color)
            if x1 == x2 and y1 == y2:
                break
            e2 = e * 2
            if e2 > -dy:
                e -= dy
                x1 += sx
            if e2 < dx:
                e += dx
                y1 += sy

    def square(self, x: int, y: int, size: float, angle: float, color: int) -> None:
        # the side of a square inscribed in a circle of radius `size`
        size = _f32(_c_round(_f32(size / 1.4142135623)))
        k = _f32(math.pi / 4 + angle)
        px, py = [], []
        for _ in range(4):
            px.append(_c_round(math.sin(k) * size + x))
            py.append(_c_round(math.cos(k) * size + y))
            k = _f32(k + math.pi / 2)
        for j in range(4):
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color)


# --- version 5: Schotter -------------------------------------------------------------


def schotter(cols: int, per_row: int, per_col: int, rnd: CRand) -> Canvas:
    width = cols * 2
    padding = 2 if width > 4 else 0
    side = _f32((width - padding * 2) / per_row)
    height = int(_f32(side * per_col) + padding * 2)
    cv = Canvas(width, height, 0)
    for y in range(per_col):
        for x in range(per_row):
            sx = int(_f32(_f32(_f32(x * side) + _f32(side / 2)) + padding))
            sy = int(_f32(_f32(_f32(y * side) + _f32(side / 2)) + padding))
            angle = 0.0
            if y > 1:
                r1 = _f32(_f32(_f32(rnd.rand()) / _f32(RAND_MAX)) / per_col * y)
                r2 = _f32(_f32(_f32(rnd.rand()) / _f32(RAND_MAX)) / per_col * y)
                r3 = _f32(_f32(_f32(rnd.rand()) / _f32(RAND_MAX)) / per_col * y)
                if rnd.rand() % 2:
                    r1 = -r1
                if rnd.rand() % 2:
                    r2 = -r2
                if rnd.rand() % 2:
                    r3 = -r3
                angle = r1
                sx = int(_f32(sx + _f32(_f32(r2 * side) / 3)))
                sy = int(_f32(sy + _f32(_f32(r3 * side) / 3)))
            cv.square(sx, sy, side, angle, 1)
    return cv


def _braille(cv: Canvas) -> bytes:
    out = bytearray()
    g = cv.get
    for y in range(0, cv.height, 4):
        for x in range(0, cv.width, 2):
            b = 0
            if g(x, y):
                b |= 1
            if g(x, y + 1):
                b |= 2
            if g(x, y + 2):
                b |= 4
            if g(x + 1, y):
                b |= 8
            if g(x + 1, y + 1):
                b |= 16
            if g(x + 1, y + 2):
                b |= 32
            if g(x, y + 3):
                b |= 64
            if g(x + 1, y + 3):
                b |= 128
            out += chr(0x2800 + b).encode("utf-8")
        if y != cv.height - 1:
            out += b"\n"
    return bytes(out)


def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def lolwut5(args: list, rnd: CRand) -> bytes:
    cols, per_row, per_col = 66, 8, 12
    if len(args) > 0:
        cols = parse_int(args[0])
    if len(args) > 1:
        per_row = parse_int(args[1])
    if len(args) > 2:
        per_col = parse_int(args[2])
    cols = _clamp(cols, 1, 1000)
    per_row = _clamp(per_row, 1, 200)
    per_col = _clamp(per_col, 1, 200)
    art = _braille(schotter(cols, per_row, per_col, rnd))
    return art + b"\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. " + \
        VERSION.encode() + b"\n"


# --- version 6: a skyline -------------------------------------------------------------

_COLORS = {0: b"0;30;40m", 1: b"0;90;100m", 2: b"0;37;47m", 3: b"0;97;107m"}


def _skyscraper(cv: Canvas, xoff: int, width: int, height: int, windows: bool,
                color: int, rnd: CRand) -> None:
    starty = cv.height - 1
    endy = starty - height + 1
    for y in range(starty, endy - 1, -1):
        for x in range(xoff, xoff + width):
            if y == endy and (x <= xoff + 1 or x >= xoff + width - 2):
                continue  # the roof is four pixels narrower
            c = color
            if windows and xoff + 1 < x < xoff + width - 2 and endy + 1 < y < starty - 1:
                relx = x - (xoff + 1)
                rely = y - (endy + 1)
                if (relx // 2) % 2 and rely % 2:
                    while True:
                        c = 1 + rnd.rand() % 2
                        if c != color:
                            break
                    if relx % 2:
                        c = cv.get(x - 1, y)  # a window is two pixels wide
            cv.set(x, y, c)


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _cmod(a: int, b: int) -> int:
    return a - _cdiv(a, b) * b


def skyline(cv: Canvas, rnd: CRand) -> None:
    h = cv.height
    for color in (2, 1):
        offset = -10
        while offset < cv.width:
            offset += rnd.rand() % 8
            xoff = offset
            width = 10 + rnd.rand() % 9
            if color == 2:
                height = h // 2 + _cdiv(rnd.rand() % h, 2)
            else:
                height = h // 2 + _cdiv(rnd.rand() % h, 3)
            _skyscraper(cv, xoff, width, height, False, color, rnd)
            offset += width // 2 if color == 2 else width + 1
    offset = -10
    while offset < cv.width:
        offset += rnd.rand() % 8
        xoff = offset
        width = 5 + rnd.rand() % 14
        if width % 4:
            width += width % 3
        height = h // 3 + _cdiv(rnd.rand() % h, 2)
        _skyscraper(cv, xoff, width, height, True, 0, rnd)
        offset += width + 5


def lolwut6(args: list, rnd: CRand) -> bytes:
    cols, rows = 80, 20
    if len(args) > 0:
        cols = parse_int(args[0])
    if len(args) > 1:
        rows = parse_int(args[1])
    cols = _clamp(cols, 1, 1000)
    rows = _clamp(rows, 1, 1000)
    cv = Canvas(cols, rows, 3)
    skyline(cv, rnd)
    out = bytearray()
    for y in range(rows):
        for x in range(cols):
            out += b"\033[" + _COLORS.get(cv.get(x, y), b"0;30;40m") + b" \033[0m"
        if y != rows - 1:
            out += b"\n"
    return bytes(out) + (b"\nDedicated to the 8 bit game developers of past and present.\n"
                         b"Original 8 bit image from Plaguemon by hikikomori. Redis ver. "
                         + VERSION.encode() + b"\n")


def lolwut(srv, argv: list) -> bytes:
    v = VERSION
    args = argv[1:]
    if len(argv) >= 3 and argv[1].lower() == b"version":
        ver = parse_int(argv[2])  # (a C long, printed as unsigned int)
        v = "%d.0.0" % (ver & _M32)
        args = argv[3:]
    rnd = _rand_for(srv)
    if (v[0] == "5" and v[1] == "." and v[2] != "9") or (v[0] == "4" and v[1] == "." and
                                                           v[2] == "9"):
        return lolwut5(args, rnd)
    if (v[0] == "6" and v[1] == "." and v[2] != "9") or (v[0] == "5" and v[1] == "." and
                                                           v[2] == "9"):
        return lolwut6(args, rnd)
    return b"Redis ver. " + VERSION.encode() + b"\n"


def _rand_for(srv) -> CRand:
    """The node's C rand() stream (made on first use, seeded from the node's
    RNG as Redis seeds its own at startup)."""
    r = getattr(srv, "_crand", None)
    if r is None:
        r = CRand(srv.rng.getrandbits(32))
        srv._crand = r
    return r


@command("lolwut")
def cmd_lolwut(c, argv):
    return Verbatim(lolwut(c.server, argv))
