"""Geo: differential tests against redis-server 7.0.15 (GEOADD, GEOPOS,
GEODIST, GEOHASH, GEORADIUS[BYMEMBER][_RO], GEOSEARCH[STORE]): replies
byte for byte (coordinates, distances, hashes, errors) in RESP2 and RESP3,
with seeded random points and searches; plus what the new write commands
leave in the AOF (GEOADD as ZADD, PFCOUNT, ...) compared with redis-server's
AOF, and the cluster-mode rules (CROSSSLOT, SORT's BY/GET refusals) against a
one-node redis-server cluster."""

from __future__ import annotations

import os
import random
import time

import pytest
from conftest import requires_redis
from support import ServerProc, run_script, switch_to_resp3

pytestmark = requires_redis

SICILY = ("13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")


def test_geoadd_and_errors(diff):
    run_script(diff, [
        ("GEOADD", "g", *SICILY), ("GEOADD", "g", *SICILY), ("ZRANGE", "g", "0", "-1", "WITHSCORES"),
        ("GEOADD", "g", "CH", "13.4", "38.1", "Palermo"), ("GEOADD", "g", "XX", "1", "1", "new"),
        ("GEOADD", "g", "NX", "1", "1", "Palermo"), ("GEOADD", "g", "NX", "XX", "1", "1", "x"),
        ("GEOADD", "g", "CH", "XX", "CH", "13.5", "38", "Palermo"), ("ZSCORE", "g", "Palermo"),
        ("GEOADD", "g", "200", "1", "x"), ("GEOADD", "g", "1", "86", "x"), ("GEOADD", "g", "1", "-86", "x"),
        ("GEOADD", "g", "inf", "1", "x"), ("GEOADD", "g", "a", "1", "x"), ("GEOADD", "g", "1", "1"),
        ("GEOADD", "g", "GT", "1", "1", "x"), ("GEOADD", "g", "1", "1", "x", "2"),
        ("GEOADD", "g", "180", "85.05112878", "corner"), ("GEOADD", "g", "-180", "-85.05112878", "c2"),
        ("GEOPOS", "g", "corner", "c2"), ("GEOHASH", "g", "corner", "c2"),
        ("SET", "str", "x"), ("GEOADD", "str", "1", "1", "x"), ("GEOPOS", "str", "x"),
        ("GEOADD", "g"), ("GEOADD", "g", "1", "1"),
    ])


def test_geopos_geodist_geohash(diff):
    diff("GEOADD", "g", *SICILY)
    diff("ZADD", "g", "0", "zero", "-1", "neg", "9007199254740993", "huge")
    run_script(diff, [
        ("GEOPOS", "g", "Palermo", "Catania", "nope", "zero", "neg", "huge"), ("GEOPOS", "nokey", "a"),
        ("GEOPOS", "g"), ("GEOHASH", "g", "Palermo", "Catania", "nope", "zero", "neg", "huge"),
        ("GEOHASH", "nokey", "a", "b"),
        ("GEODIST", "g", "Palermo", "Catania"), ("GEODIST", "g", "Palermo", "Catania", "km"),
        ("GEODIST", "g", "Palermo", "Catania", "MI"), ("GEODIST", "g", "Palermo", "Catania", "ft"),
        ("GEODIST", "g", "Palermo", "Palermo"), ("GEODIST", "g", "Palermo", "nope"),
        ("GEODIST", "nokey", "a", "b"), ("GEODIST", "g", "Palermo", "Catania", "yd"),
        ("GEODIST", "g", "Palermo", "Catania", "km", "x"), ("GEODIST", "g", "zero", "neg"),
    ])
    switch_to_resp3(diff)
    run_script(diff, [
        ("GEOPOS", "g", "Palermo", "nope"), ("GEODIST", "g", "Palermo", "Catania"),
        ("GEODIST", "nokey", "a", "b"), ("GEOHASH", "g", "Palermo", "nope"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "WITHCOORD", "WITHDIST", "WITHHASH"),
    ])


def test_radius_and_search_options(diff):
    diff("GEOADD", "g", *SICILY, "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2")
    run_script(diff, [
        ("GEORADIUS", "g", "15", "37", "200", "km"), ("GEORADIUS", "g", "15", "37", "200", "km", "ASC"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "DESC", "WITHDIST", "WITHCOORD", "WITHHASH"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "COUNT", "1"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "COUNT", "1", "ANY"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "ANY"), ("GEORADIUS", "g", "15", "37", "200", "km", "COUNT", "0"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "COUNT", "x"), ("GEORADIUS", "g", "15", "37", "-1", "km"),
        ("GEORADIUS", "g", "15", "37", "x", "km"), ("GEORADIUS", "g", "15", "37", "1", "yd"),
        ("GEORADIUS", "g", "15", "99", "1", "km"), ("GEORADIUS", "g", "15", "37", "200", "km", "FOO"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "dst", "WITHDIST"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "dst"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "dst"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("OBJECT", "ENCODING", "dst"),
        ("GEORADIUS", "g", "0", "0", "1", "km", "STORE", "dst"), ("EXISTS", "dst"),
        ("GEORADIUS", "nokey", "15", "37", "200", "km"), ("GEORADIUS", "nokey", "15", "37", "200", "km", "STORE", "g2"),
        ("GEORADIUS_RO", "g", "15", "37", "200", "km", "WITHDIST"),
        ("GEORADIUS_RO", "g", "15", "37", "200", "km", "STORE", "x"),
        ("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "WITHDIST", "ASC"),
        ("GEORADIUSBYMEMBER", "g", "nope", "200", "km"), ("GEORADIUSBYMEMBER", "nokey", "x", "bad", "unit"),
        ("GEORADIUSBYMEMBER_RO", "g", "Catania", "100", "mi", "WITHCOORD"),
        ("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "STOREDIST", "d2"), ("ZRANGE", "d2", "0", "-1", "WITHSCORES"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"),
        ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC", "WITHCOORD", "WITHDIST"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "COUNT", "2"),
        ("GEOSEARCH", "g", "BYRADIUS", "200", "km"), ("GEOSEARCH", "g", "FROMLONLAT", "15", "37"),
        ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "-1", "1", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "x", "1", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"),
        ("GEOSEARCH", "g", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STORE", "x"),
        ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
        ("GEOSEARCHSTORE", "d3", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "STOREDIST"),
        ("ZRANGE", "d3", "0", "-1", "WITHSCORES"),
        ("GEOSEARCHSTORE", "d3", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "WITHDIST"),
        ("GEOSEARCHSTORE", "d3", "nokey", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km"), ("EXISTS", "d3"),
        ("SET", "str", "x"), ("GEORADIUS", "str", "15", "37", "200", "km"),
        ("GEOSEARCH", "str", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"),
    ])


def test_random_points_and_searches(diff):
    rnd = random.Random(2023)
    args = []
    for i in range(400):
        args += ["%.6f" % rnd.uniform(-180, 180), "%.6f" % rnd.uniform(-85, 85), "m%d" % i]
    diff("GEOADD", "big", *args)
    cluster = []
    for i in range(150):  # a dense cluster, where COUNT / ANY / box edges matter
        cluster += ["%.6f" % (2 + rnd.gauss(0, 0.3)), "%.6f" % (48 + rnd.gauss(0, 0.2)), "p%d" % i]
    diff("GEOADD", "city", *cluster)
    for i in range(120):
        key = rnd.choice(["big", "city"])
        if key == "big":
            lon, lat = "%.4f" % rnd.uniform(-180, 180), "%.4f" % rnd.uniform(-85, 85)
            rad = str(rnd.choice([1, 100, 1000, 5000, 20000]))
            unit = "km"
        else:
            lon, lat = "%.4f" % (2 + rnd.gauss(0, 0.3)), "%.4f" % (48 + rnd.gauss(0, 0.2))
            rad = str(rnd.choice([1, 5, 20, 50]))
            unit = rnd.choice(["km", "mi"])
        diff("GEORADIUS", key, lon, lat, rad, unit, "WITHDIST", "WITHCOORD", "WITHHASH", "ASC")
        diff("GEOSEARCH", key, "FROMLONLAT", lon, lat, "BYBOX", rad, str(int(rad) * 2), unit, "WITHDIST", "DESC")
        diff("GEOSEARCH", key, "FROMLONLAT", lon, lat, "BYRADIUS", rad, unit, "COUNT", "5", "ANY")
        diff("GEORADIUS", key, lon, lat, rad, unit, "COUNT", "3")
        m = rnd.choice(["m%d" % rnd.randrange(400), "p%d" % rnd.randrange(150)])
        diff("GEOPOS", key, m)
        diff("GEOHASH", key, m)
        diff("GEODIST", key, m, rnd.choice(["m1", "p1"]), rnd.choice(["m", "km", "ft", "mi"]))
        diff("GEORADIUSBYMEMBER", key, m, rad, unit, "WITHDIST")


def test_count_with_equal_distances(diff):
    """Members at the same spot are at the same distance: with COUNT Redis
    sorts partially (pqsort, not stable), which decides which of them come
    first."""
    rnd = random.Random(8)
    args = []
    for i in range(90):
        spot = rnd.choice([("2.35", "48.85"), ("2.36", "48.86"), ("2.30", "48.80")])
        args += [spot[0], spot[1], "d%d" % i]
    diff("GEOADD", "dup", *args)
    for count in ("1", "3", "7", "20", "41", "89"):
        for order in ("ASC", "DESC"):
            diff("GEORADIUS", "dup", "2.35", "48.85", "50", "km", "COUNT", count, order, "WITHDIST")
            diff("GEOSEARCH", "dup", "FROMLONLAT", "2.31", "48.81", "BYBOX", "100", "100", "km",
                 "COUNT", count, order)


# --- AOF: what the new write commands propagate --------------------------------------


def _incr_aof(d: str) -> bytes:
    adir = os.path.join(d, "appendonlydir")
    with open(os.path.join(adir, "appendonly.aof.manifest")) as f:
        incr = [ln.split()[1] for ln in f.read().splitlines() if ln.strip().endswith("type i")]
    with open(os.path.join(adir, incr[-1]), "rb") as f:
        return f.read()


def test_writes_reach_the_aof_as_redis_propagates_them(tmp_path):
    script = [
        ("GEOADD", "g", "CH", *SICILY), ("GEOADD", "g", "NX", "1", "1", "Palermo"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gs"),
        ("GEOSEARCHSTORE", "gs2", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "STOREDIST"),
        ("PFADD", "h", "a", "b"), ("PFADD", "h", "a"), ("PFCOUNT", "h"), ("PFCOUNT", "h"),
        ("PFMERGE", "h2", "h"), ("PFDEBUG", "TODENSE", "h2"),
        ("SETBIT", "b", "9", "1"), ("SETBIT", "b", "9", "1"), ("BITOP", "NOT", "b2", "b"),
        ("BITFIELD", "b", "INCRBY", "u4", "0", "3"), ("BITFIELD", "b", "GET", "u4", "0"),
        ("RPUSH", "l", "3", "1", "2"), ("SORT", "l", "STORE", "ls"), ("SORT", "nokey", "STORE", "ls"),
    ]
    procs = []
    try:
        for kind in ("frtrio", "redis"):
            d = str(tmp_path / kind)
            os.makedirs(d)
            p = ServerProc(kind, args=["--appendonly", "yes", "--appendfsync", "always"], workdir=d)
            p.start(timeout=20)
            procs.append((p, d))
            conn = p.conn()
            for cmd in script:
                conn.cmd(*cmd)
            conn.close()
        time.sleep(0.3)
        (fp, fd), (rp, rd) = procs
        assert _incr_aof(fd) == _incr_aof(rd)
    finally:
        for p, _d in procs:
            p.cleanup()


# --- cluster mode -------------------------------------------------------------------------


@pytest.mark.e2e
def test_cluster_multikey_and_sort_rules(pair):  # noqa: F811
    d = pair
    run_script(d, [
        ("SETBIT", "{a}1", "3", "1"), ("BITOP", "AND", "{a}d", "{a}1", "{a}2"),
        ("BITOP", "AND", "{b}d", "{a}1"), ("BITOP", "OR", "{a}d", "{a}1", "x"),
        ("PFADD", "{a}h", "x"), ("PFCOUNT", "{a}h", "{a}h2"), ("PFCOUNT", "{a}h", "{b}h"),
        ("PFMERGE", "{a}m", "{a}h"), ("PFMERGE", "{b}m", "{a}h"),
        ("RPUSH", "{a}l", "2", "1"), ("SORT", "{a}l"), ("SORT", "{a}l", "STORE", "{a}s"),
        ("SORT", "{a}l", "STORE", "{b}s"), ("SORT", "{a}l", "BY", "w_*"), ("SORT", "{a}l", "BY", "nosort"),
        ("SORT", "{a}l", "GET", "#"), ("SORT_RO", "{a}l", "BY", "w_*"), ("SORT_RO", "{a}l", "GET", "x_*"),
        ("SORT", "{a}l", "LIMIT", "0", "1", "STORE", "{b}x", "BY", "w_*"),
        ("GEOADD", "{a}g", *SICILY), ("GEORADIUS", "{a}g", "15", "37", "200", "km", "STORE", "{a}gs"),
        ("GEORADIUS", "{a}g", "15", "37", "200", "km", "STORE", "{b}gs"),
        ("GEORADIUSBYMEMBER", "{a}g", "Palermo", "200", "km", "STOREDIST", "{b}gs"),
        ("GEORADIUS", "{a}g", "15", "37", "200", "km", "STORE", "{a}x", "STOREDIST", "{b}y"),
        ("GEORADIUS", "{a}g", "15", "37", "200", "km", "STOREDIST", "{b}y", "STORE", "{a}x"),
        ("GEORADIUS", "{a}g", "15", "37", "200", "km", "STORE", "{a}x", "STORE", "{b}y"),
        ("GEOSEARCHSTORE", "{b}gs", "{a}g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km"),
        ("GEOSEARCHSTORE", "{a}gs", "{a}g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km"),
        ("LCS", "{a}1", "{b}1"), ("LCS", "{a}1", "{a}2"),
        ("FLUSHALL",),
    ])


from test_cluster_diff import pair  # noqa: E402,F401  (the one-node cluster pair fixture)
