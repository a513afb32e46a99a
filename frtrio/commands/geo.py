"""Geo commands (Redis 7.0 semantics): GEOADD, GEOPOS, GEODIST, GEOHASH,
GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH, GEOSEARCHSTORE.

A geo set is a sorted set whose scores are 52-bit interleaved geohashes
(latitude range +-85.05112878, longitude +-180, 26 steps). The search walks
the same nine geohash boxes Redis picks (``geohashCalculateAreasByShapeWGS84``)
in the same order, so COUNT ANY stops on the same members; all arithmetic
is in doubles in Redis's order of operations, so distances and coordinates
print the same. GEOADD is a ZADD underneath and is propagated as that ZADD.
"""

from __future__ import annotations

import math
from fractions import Fraction

from frtrio.commands import ldouble
from frtrio.commands.pqsort import pqsort
from frtrio.commands.table import command
from frtrio.core.cnum import string2d
from frtrio.commands.util import NOT_FLOAT, err, lookup_read, parse_int, syntax_error, wrongtype
from frtrio.commands.zsets import fit_listpack, store_zset, zadd_generic
from frtrio.protocol.reply import NullArray, Raw
from frtrio.store.zset import ZSetValue

GEO_STEP_MAX = 26
GEO_LAT_MIN = -85.05112878
GEO_LAT_MAX = 85.05112878
GEO_LONG_MIN = -180.0
GEO_LONG_MAX = 180.0

D_R = math.pi / 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1


# --- geohash ----------------------------------------------------------------------


def _interleave64(xlo: int, ylo: int) -> int:
    B = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F,
         0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF)
    x, y = xlo, ylo
    for s, b in ((16, B[4]), (8, B[3]), (4, B[2]), (2, B[1]), (1, B[0])):
        x = (x | (x << s)) & b
        y = (y | (y << s)) & b
    return (x | (y << 1)) & _U64


def _deinterleave64(v: int) -> int:
    B = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F,
         0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF)
    x = v
    y = v >> 1
    for s, b in ((0, B[0]), (1, B[1]), (2, B[2]), (4, B[3]), (8, B[4]), (16, B[5])):
        x = (x | (x >> s)) & b
        y = (y | (y >> s)) & b
    return (x | (y << 32)) & _U64


def geohash_encode(lon: float, lat: float, step: int,
                   lon_rng=(GEO_LONG_MIN, GEO_LONG_MAX), lat_rng=(GEO_LAT_MIN, GEO_LAT_MAX)):
    """geohashEncode: the hash bits, or None when out of range."""
    if (lon > GEO_LONG_MAX or lon < GEO_LONG_MIN or lat > GEO_LAT_MAX or lat < GEO_LAT_MIN):
        return None
    if lat < lat_rng[0] or lat > lat_rng[1] or lon < lon_rng[0] or lon > lon_rng[1]:
        return None
    lat_off = (lat - lat_rng[0]) / (lat_rng[1] - lat_rng[0])
    lon_off = (lon - lon_rng[0]) / (lon_rng[1] - lon_rng[0])
    lat_off *= float(1 << step)
    lon_off *= float(1 << step)
    return _interleave64(int(lat_off) & _U32, int(lon_off) & _U32)


def geohash_decode_area(bits: int, step: int):
    """geohashDecode: (lon_min, lon_max, lat_min, lat_max)."""
    sep = _deinterleave64(bits)
    ilato = sep & _U32
    ilono = (sep >> 32) & _U32
    lat_scale = GEO_LAT_MAX - GEO_LAT_MIN
    lon_scale = GEO_LONG_MAX - GEO_LONG_MIN
    div = float(1 << step)
    lat_min = GEO_LAT_MIN + (ilato * 1.0 / div) * lat_scale
    lat_max = GEO_LAT_MIN + (((ilato + 1) & _U32) * 1.0 / div) * lat_scale
    lon_min = GEO_LONG_MIN + (ilono * 1.0 / div) * lon_scale
    lon_max = GEO_LONG_MIN + (((ilono + 1) & _U32) * 1.0 / div) * lon_scale
    return lon_min, lon_max, lat_min, lat_max


def _score_bits(score: float) -> int:
    """(uint64_t) of a double score, as x86-64 gcc converts it."""
    if math.isnan(score) or math.isinf(score):
        return 0 if score > 0 or math.isnan(score) else 1 << 63
    if score >= 2.0**63:
        if score >= 2.0**64:
            return 0
        return int(score)
    if score < -(2.0**63):
        return 1 << 63
    return int(score) & _U64


def decode_score(score: float):
    """decodeGeohash: (lon, lat) of a 52-bit score."""
    lon_min, lon_max, lat_min, lat_max = geohash_decode_area(_score_bits(score), GEO_STEP_MAX)
    x = (lon_min + lon_max) / 2
    if x > GEO_LONG_MAX:
        x = GEO_LONG_MAX
    if x < GEO_LONG_MIN:
        x = GEO_LONG_MIN
    y = (lat_min + lat_max) / 2
    if y > GEO_LAT_MAX:
        y = GEO_LAT_MAX
    if y < GEO_LAT_MIN:
        y = GEO_LAT_MIN
    return x, y


def _move_x(bits: int, step: int, d: int) -> int:
    if d == 0:
        return bits
    x = bits & 0xAAAAAAAAAAAAAAAA
    y = bits & 0x5555555555555555
    zz = 0x5555555555555555 >> (64 - step * 2)
    if d > 0:
        x = (x + (zz + 1)) & _U64
    else:
        x = x | zz
        x = (x - (zz + 1)) & _U64
    x &= 0xAAAAAAAAAAAAAAAA >> (64 - step * 2)
    return x | y


def _move_y(bits: int, step: int, d: int) -> int:
    if d == 0:
        return bits
    x = bits & 0xAAAAAAAAAAAAAAAA
    y = bits & 0x5555555555555555
    zz = 0xAAAAAAAAAAAAAAAA >> (64 - step * 2)
    if d > 0:
        y = (y + (zz + 1)) & _U64
    else:
        y = y | zz
        y = (y - (zz + 1)) & _U64
    y &= 0x5555555555555555 >> (64 - step * 2)
    return x | y


def _neighbors(bits: int, step: int) -> dict:
    def mv(dx, dy):
        return _move_y(_move_x(bits, step, dx), step, dy)
    return {
        "east": mv(1, 0), "west": mv(-1, 0), "south": mv(0, -1), "north": mv(0, 1),
        "north_west": mv(-1, 1), "north_east": mv(1, 1),
        "south_east": mv(1, -1), "south_west": mv(-1, -1),
    }


def deg_rad(a: float) -> float:
    return a * D_R


def rad_deg(a: float) -> float:
    return a / D_R


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * abs(deg_rad(lat2) - deg_rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance (haversine)."""
    lon1r = deg_rad(lon1)
    lon2r = deg_rad(lon2)
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = deg_rad(lat1)
    lat2r = deg_rad(lat2)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))


def _estimate_steps(range_m: float, lat: float) -> int:
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


class Shape:
    __slots__ = ("circle", "x", "y", "conversion", "radius", "width", "height")

    def __init__(self):
        self.circle = True
        self.x = self.y = 0.0
        self.conversion = 0.0
        self.radius = self.width = self.height = 0.0


def _bounding_box(sh: Shape):
    lon, lat = sh.x, sh.y
    height = sh.conversion * (sh.radius if sh.circle else sh.height / 2)
    width = sh.conversion * (sh.radius if sh.circle else sh.width / 2)
    lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
    top = rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(deg_rad(lat + lat_delta)))
    bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(deg_rad(lat - lat_delta)))
    south = lat < 0
    return (lon - bottom if south else lon - top, lat - lat_delta,
            lon + bottom if south else lon + top, lat + lat_delta)


def _search_boxes(sh: Shape) -> list:
    """geohashCalculateAreasByShapeWGS84: the nine (bits, step) boxes, a
    zeroed one as None, in membersOfAllNeighbors' order."""
    min_lon, min_lat, max_lon, max_lat = _bounding_box(sh)
    if sh.circle:
        radius_m = sh.radius
    else:
        radius_m = math.sqrt((sh.width / 2) * (sh.width / 2) + (sh.height / 2) * (sh.height / 2))
    radius_m *= sh.conversion
    steps = _estimate_steps(radius_m, sh.y)

    def compute(steps):
        h = geohash_encode(sh.x, sh.y, steps)
        if h is None:
            h = 0
        return h, _neighbors(h, steps), geohash_decode_area(h, steps)

    h, nb, area = compute(steps)
    dec = False
    north = geohash_decode_area(nb["north"], steps)
    south = geohash_decode_area(nb["south"], steps)
    east = geohash_decode_area(nb["east"], steps)
    west = geohash_decode_area(nb["west"], steps)
    if north[3] < max_lat:
        dec = True
    if south[2] > min_lat:
        dec = True
    if east[1] < max_lon:
        dec = True
    if west[0] > min_lon:
        dec = True
    if steps > 1 and dec:
        steps -= 1
        h, nb, area = compute(steps)
    boxes = {k: (v, steps) for k, v in nb.items()}
    if steps >= 2:
        if area[2] < min_lat:
            for k in ("south", "south_west", "south_east"):
                boxes[k] = None
        if area[3] > max_lat:
            for k in ("north", "north_east", "north_west"):
                boxes[k] = None
        if area[0] < min_lon:
            for k in ("west", "south_west", "north_west"):
                boxes[k] = None
        if area[1] > max_lon:
            for k in ("east", "south_east", "north_east"):
                boxes[k] = None
    order = ("north", "south", "east", "west", "north_east", "north_west",
             "south_east", "south_west")
    return [(h, steps)] + [boxes[k] for k in order]


def _within(sh: Shape, score: float):
    """geoWithinShape: (lon, lat, dist) or None."""
    x, y = decode_score(score)
    if sh.circle:
        d = distance(sh.x, sh.y, x, y)
        if d > sh.radius * sh.conversion:
            return None
        return x, y, d
    w = sh.width * sh.conversion
    hgt = sh.height * sh.conversion
    if lat_distance(y, sh.y) > hgt / 2:
        return None
    if distance(x, y, sh.x, y) > w / 2:
        return None
    return x, y, distance(sh.x, sh.y, x, y)


def _members_in_shape(z: ZSetValue, sh: Shape, limit: int) -> list:
    """membersOfAllNeighbors: [(dist, score, member, lon, lat)]."""
    found = []
    boxes = _search_boxes(sh)
    last = 0
    for i, box in enumerate(boxes):
        if box is None:
            continue
        if last and box == boxes[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        bits, step = box
        lo = float((bits << (52 - step * 2)) & _U64)
        hi = float(((bits + 1) << (52 - step * 2)) & _U64)
        a, b = z.score_span(lo, False, hi, True)
        for score, m in z.islice(a, b):
            r = _within(sh, score)
            if r is not None:
                found.append((r[2], score, m, r[0], r[1]))
            if found and limit and len(found) >= limit:
                break
        last = i
    return found


# --- formatting / parsing -----------------------------------------------------------


def parse_float(b: bytes, msg: str = NOT_FLOAT) -> float:
    """getDoubleFromObjectOrReply."""
    v = string2d(b)
    if v is None:
        raise err(msg)
    return v


def fmt_distance(d: float) -> bytes:
    """fixedpoint_d2string(..., 4)."""
    if d == 0:
        return b"0.0000"
    v = round(d * 10000.0)  # llrint: to nearest, ties to even
    neg = v < 0
    s = b"%d" % abs(v)
    s = s.rjust(5, b"0")
    s = s[:-4] + b"." + s[-4:]
    return b"-" + s if neg else s


def _human(c, x: float):
    """addReplyHumanLongDouble."""
    s = ldouble.format_human(Fraction(x))
    if c.resp == 3:
        return Raw(b"," + s + b"\r\n")
    return s


def _c_fmt_f(x: float) -> str:
    return "%f" % x


def _lonlat(argv, i: int):
    lon = parse_float(argv[i])
    lat = parse_float(argv[i + 1])
    if lon < GEO_LONG_MIN or lon > GEO_LONG_MAX or lat < GEO_LAT_MIN or lat > GEO_LAT_MAX:
        raise err("ERR invalid longitude,latitude pair %s,%s" % (_c_fmt_f(lon), _c_fmt_f(lat)))
    return lon, lat


def _unit(a: bytes) -> float:
    u = a.split(b"\0", 1)[0].lower()
    if u == b"m":
        return 1.0
    if u == b"km":
        return 1000.0
    if u == b"ft":
        return 0.3048
    if u == b"mi":
        return 1609.34
    raise err("ERR unsupported unit provided. please use M, KM, FT, MI")


def _distance_arg(argv, i: int):
    d = parse_float(argv[i], "ERR need numeric radius")
    if d < 0:
        raise err("ERR radius cannot be negative")
    return d, _unit(argv[i + 1])


def _zset_or_none(v):
    if v is None or type(v) is ZSetValue:
        return v
    raise wrongtype()


def _word(a: bytes) -> bytes:
    return a.split(b"\0", 1)[0].lower()


# --- commands -----------------------------------------------------------------------


@command("geoadd")
def cmd_geoadd(c, argv):
    i = 2
    nx = xx = False
    n = len(argv)
    while i < n:
        o = _word(argv[i])
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o != b"ch":
            break
        i += 1
    if (n - i) % 3 or (xx and nx):
        raise syntax_error()
    zargv = [b"zadd"] + argv[1:i]
    for j in range(i, n, 3):
        lon, lat = _lonlat(argv, j)
        bits = geohash_encode(lon, lat, GEO_STEP_MAX)
        bits = (bits << (52 - GEO_STEP_MAX * 2)) & _U64
        zargv.append(b"%d" % bits)
        zargv.append(argv[j + 2])
    dirty = c.server.dirty
    r = zadd_generic(c, zargv, False)
    if c.server.dirty != dirty:
        c.server.propagate(c.dbid, zargv)
    return r


@command("geopos")
def cmd_geopos(c, argv):
    z = _zset_or_none(lookup_read(c, argv[1]))
    out = []
    for m in argv[2:]:
        s = None if z is None else z.get(m)
        if s is None:
            out.append(NullArray)
            continue
        x, y = decode_score(s)
        out.append([_human(c, x), _human(c, y)])
    return out


_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


@command("geohash")
def cmd_geohash(c, argv):
    z = _zset_or_none(lookup_read(c, argv[1]))
    out = []
    for m in argv[2:]:
        s = None if z is None else z.get(m)
        if s is None:
            out.append(None)
            continue
        x, y = decode_score(s)
        bits = geohash_encode(x, y, 26, (-180.0, 180.0), (-90.0, 90.0)) or 0
        buf = bytearray()
        for i in range(11):
            idx = 0 if i == 10 else (bits >> (52 - (i + 1) * 5)) & 0x1F
            buf.append(_ALPHABET[idx])
        out.append(bytes(buf))
    return out


@command("geodist")
def cmd_geodist(c, argv):
    to_m = 1.0
    if len(argv) == 5:
        to_m = _unit(argv[4])
    elif len(argv) > 5:
        raise syntax_error()
    z = _zset_or_none(lookup_read(c, argv[1]))
    if z is None:
        return None
    s1 = z.get(argv[2])
    s2 = z.get(argv[3])
    if s1 is None or s2 is None:
        return None
    x1, y1 = decode_score(s1)
    x2, y2 = decode_score(s2)
    return fmt_distance(distance(x1, y1, x2, y2) / to_m)


_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = 1, 2, 4, 8, 16


def _georadius(c, argv, src: int, flags: int):
    storekey = None
    storedist = False
    z = _zset_or_none(lookup_read(c, argv[src]))
    sh = Shape()
    if flags & _COORDS:
        base = 6
        sh.x, sh.y = _lonlat(argv, 2)
        sh.radius, sh.conversion = _distance_arg(argv, 4)
    elif flags & _MEMBER and z is None:
        base = 5
    elif flags & _MEMBER:
        base = 5
        s = z.get(argv[2])
        if s is None:
            raise err("ERR could not decode requested zset member")
        sh.x, sh.y = decode_score(s)
        sh.radius, sh.conversion = _distance_arg(argv, 3)
    else:
        base = 2
        if flags & _SEARCHSTORE:
            base = 3
            storekey = argv[1]
    withdist = withhash = withcoords = False
    frommember = fromloc = byradius = bybox = False
    sort = 0
    any_ = False
    count = 0
    n = len(argv)
    rem = n - base
    i = 0
    while i < rem:
        a = _word(argv[base + i])
        if a == b"withdist":
            withdist = True
        elif a == b"withhash":
            withhash = True
        elif a == b"withcoord":
            withcoords = True
        elif a == b"any":
            any_ = True
        elif a == b"asc":
            sort = 1
        elif a == b"desc":
            sort = 2
        elif a == b"count" and i + 1 < rem:
            count = parse_int(argv[base + i + 1])
            if count <= 0:
                raise err("ERR COUNT must be > 0")
            i += 1
        elif a == b"store" and i + 1 < rem and not flags & (_NOSTORE | _SEARCH):
            storekey = argv[base + i + 1]
            storedist = False
            i += 1
        elif a == b"storedist" and i + 1 < rem and not flags & (_NOSTORE | _SEARCH):
            storekey = argv[base + i + 1]
            storedist = True
            i += 1
        elif a == b"storedist" and flags & _SEARCH and flags & _SEARCHSTORE:
            storedist = True
        elif a == b"frommember" and i + 1 < rem and flags & _SEARCH and not fromloc:
            if z is not None:
                s = z.get(argv[base + i + 1])
                if s is None:
                    raise err("ERR could not decode requested zset member")
                sh.x, sh.y = decode_score(s)
            frommember = True
            i += 1
        elif a == b"fromlonlat" and i + 2 < rem and flags & _SEARCH and not frommember:
            sh.x, sh.y = _lonlat(argv, base + i + 1)
            fromloc = True
            i += 2
        elif a == b"byradius" and i + 2 < rem and flags & _SEARCH and not bybox:
            sh.radius, sh.conversion = _distance_arg(argv, base + i + 1)
            sh.circle = True
            byradius = True
            i += 2
        elif a == b"bybox" and i + 3 < rem and flags & _SEARCH and not byradius:
            w = parse_float(argv[base + i + 1], "ERR need numeric width")
            h = parse_float(argv[base + i + 2], "ERR need numeric height")
            if h < 0 or w < 0:
                raise err("ERR height or width cannot be negative")
            sh.conversion = _unit(argv[base + i + 3])
            sh.width, sh.height = w, h
            sh.circle = False
            bybox = True
            i += 3
        else:
            raise syntax_error()
        i += 1
    if storekey is not None and (withdist or withhash or withcoords):
        raise err("ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
                  % ("GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"))
    name = argv[0].decode("latin-1")
    if flags & _SEARCH and not (frommember or fromloc):
        raise err("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %s" % name)
    if flags & _SEARCH and not (byradius or bybox):
        raise err("ERR exactly one of BYRADIUS and BYBOX can be specified for %s" % name)
    if any_ and not count:
        raise err("ERR the ANY argument requires COUNT argument")
    if z is None:
        if storekey is not None:
            return store_zset(c, storekey, ZSetValue(listpack=False), b"del")
        return []
    if count and sort == 0 and not any_:
        sort = 1
    found = _members_in_shape(z, sh, count if any_ else 0)
    if not found and storekey is None:
        return []
    nret = len(found) if (count == 0 or len(found) < count) else count
    if sort and nret == len(found):
        found.sort(key=lambda p: p[0], reverse=sort == 2)
    elif sort:
        # Redis sorts partially here (pqsort, not stable)
        sign = 1 if sort == 1 else -1

        def cmp(a, b):
            return sign * ((a[0] > b[0]) - (a[0] < b[0]))

        pqsort(found, cmp, 0, nret - 1)
    found = found[:nret]
    if storekey is None:
        out = []
        opts = withdist or withcoords or withhash
        for d, score, m, x, y in found:
            d /= sh.conversion
            if not opts:
                out.append(m)
                continue
            e = [m]
            if withdist:
                e.append(fmt_distance(d))
            if withhash:
                e.append(int(score))
            if withcoords:
                e.append([_human(c, x), _human(c, y)])
            out.append(e)
        return out
    zs = ZSetValue(listpack=False)
    for d, score, m, _x, _y in found:
        zs.set(m, d / sh.conversion if storedist else score)
    fit_listpack(c, zs)
    return store_zset(c, storekey, zs,
                      b"geosearchstore" if flags & _SEARCH else b"georadiusstore", nret)


@command("georadius")
def cmd_georadius(c, argv):
    return _georadius(c, argv, 1, _COORDS)


@command("georadiusbymember")
def cmd_georadiusbymember(c, argv):
    return _georadius(c, argv, 1, _MEMBER)


@command("georadius_ro")
def cmd_georadius_ro(c, argv):
    return _georadius(c, argv, 1, _COORDS | _NOSTORE)


@command("georadiusbymember_ro")
def cmd_georadiusbymember_ro(c, argv):
    return _georadius(c, argv, 1, _MEMBER | _NOSTORE)


@command("geosearch")
def cmd_geosearch(c, argv):
    return _georadius(c, argv, 1, _SEARCH)


@command("geosearchstore")
def cmd_geosearchstore(c, argv):
    return _georadius(c, argv, 2, _SEARCH | _SEARCHSTORE)
