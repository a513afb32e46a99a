"""Sorted sets: differential tests against redis-server 7.0 (reply bytes,
RESP2 and RESP3), plus engine-level checks of propagation and blocking.

Run: python -m pytest -q tests/test_zsets.py
"""

from __future__ import annotations

import random
import shlex
import socket
import time

import pytest

from frtrio.protocol.reply import NullArray
from frtrio.store.zset import MINUS, PLUS, ZSetValue

import support
from support import encode_request


def run(diff, script: str) -> None:
    for line in script.strip().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            diff(*shlex.split(line))


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def zd(diff, request):
    if request.param == 3:
        diff.both("HELLO", "3")
    return diff


class limits:
    """Temporarily change zset-max-listpack-* on both servers."""

    def __init__(self, diff, entries=None, value=None):
        self.diff = diff
        self.new = {"zset-max-listpack-entries": entries, "zset-max-listpack-value": value}

    def __enter__(self):
        for k, v in self.new.items():
            if v is not None:
                self.diff.both("CONFIG", "SET", k, str(v))
        return self

    def __exit__(self, *exc):
        self.diff.both("CONFIG", "SET", "zset-max-listpack-entries", "128")
        self.diff.both("CONFIG", "SET", "zset-max-listpack-value", "64")


# --- scores: parsing and formatting ------------------------------------------------

SCORES = [
    "0", "-0", "1", "-1", "0.1", "0.2", "0.3", "1.5", "1e100", "-1e100", "1e-300",
    "2.5e-320", "1e308", "inf", "-inf", "+inf", "Infinity", "-INFINITY", "+5", "5.",
    ".5", "1e3", "1E-2", "0x10", "0x1p-3", "-0x.8", "9007199254740993",
    "12345678901234567890", "18446744073709551616", "4503599627370496",
    "4503599627370495.5", "123456789.123456789", "3.14159265358979323846",
    "0.000001", "100000000000000000", "99999999999999999", "1e16", "1e17",
    "-9223372036854775808", "9223372036854775807", "1.7976931348623157e308",
    "4.9406564584124654e-324",
]

BAD_SCORES = [
    "", " 1", "1 ", "abc", "nan", "NaN", "-nan", "1e400", "-1e400", "1e-400", "0x",
    "1e", "1.2.3", "--1", "+-1", "1_000", "0x1p99999", "inf5", "1\x00", "\t1",
]


def test_score_formatting(zd):
    for i, s in enumerate(SCORES):
        zd("ZADD", "z", s, "m%d" % i)
        zd("ZSCORE", "z", "m%d" % i)
        zd("ZADD", "single%d" % i, s, "x")
        zd("ZINCRBY", "inc", s, "x%d" % i)
    zd("ZRANGE", "z", "0", "-1", "WITHSCORES")
    zd("ZRANGE", "inc", "0", "-1", "WITHSCORES")
    zd("ZMSCORE", "z", "m0", "m1", "nope", "m5")
    zd("ZSCAN", "z", "0")
    zd("ZADD", "q", str(1 / 3), "third", str(2**53 + 1), "big", str(2.0**70), "huge")
    zd("ZRANGE", "q", "0", "-1", "WITHSCORES")


def test_score_parsing_errors(zd):
    zd("ZADD", "z", "1", "a")
    for s in BAD_SCORES:
        zd("ZADD", "z", s, "b")
        zd("ZINCRBY", "z", s, "a")
        zd("ZADD", "z", "INCR", s, "a")
    zd("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_object_encoding(zd):
    with limits(zd, entries=3, value=5):
        run(zd, """
        ZADD a 1 x
        OBJECT ENCODING a
        ZADD a 2 y 3 z
        OBJECT ENCODING a
        ZADD a 4 w
        OBJECT ENCODING a
        ZREM a x y z
        OBJECT ENCODING a
        ZUNIONSTORE u 1 a
        OBJECT ENCODING u
        ZADD b 1 longmember
        OBJECT ENCODING b
        ZADD c 1 ok
        ZADD c 1 toolong
        OBJECT ENCODING c
        ZINTERSTORE d 1 c
        OBJECT ENCODING d
        ZREM c toolong
        ZDIFFSTORE e 1 c
        OBJECT ENCODING e
        ZADD big 1 a 2 b 3 c 4 d 5 e
        ZRANGESTORE r1 big 0 2
        OBJECT ENCODING r1
        ZRANGESTORE r2 big 0 3
        OBJECT ENCODING r2
        ZRANGESTORE r3 big -inf +inf BYSCORE LIMIT 0 3
        OBJECT ENCODING r3
        ZRANGESTORE r4 big -inf +inf BYSCORE
        OBJECT ENCODING r4
        ZPOPMIN big 4
        OBJECT ENCODING big
        """)
    with limits(zd, entries=0):
        run(zd, """
        ZADD zero 1 a
        OBJECT ENCODING zero
        ZRANGESTORE zr zero 0 -1
        OBJECT ENCODING zr
        """)


def test_expired_and_watched_keys(diff, frtrio_proc, redis_proc):
    run(diff, """
    ZADD z 1 a
    PEXPIRE z 1
    """)
    time.sleep(0.02)
    run(diff, """
    ZCARD z
    ZADD z XX 1 a
    EXISTS z
    ZADD z 2 b
    TTL z
    ZRANGE z 0 -1 WITHSCORES
    """)
    for proc in (frtrio_proc, redis_proc):
        a, b = proc.conn(), proc.conn()
        a.cmd("DEL", "w")
        a.cmd("ZADD", "w", "1", "x")
        for cmd, expect in ((["ZADD", "w", "NX", "1", "x"], b"*1\r\n$1\r\n1\r\n"),
                            (["ZADD", "w", "2", "x"], b"*-1\r\n"),
                            (["ZREM", "w", "nope"], b"*1\r\n$1\r\n1\r\n"),
                            (["ZPOPMIN", "w"], b"*-1\r\n")):
            a.cmd("WATCH", "w")
            b.cmd(*cmd)
            a.cmd("MULTI")
            a.cmd("ZSCORE", "w", "x")
            assert a.cmd("EXEC") == expect, (proc.kind, cmd)
            b.cmd("ZADD", "w", "1", "x")
        a.close()
        b.close()


def test_negative_zero_and_encodings(zd):
    run(zd, """
    ZADD lp -0 a
    ZSCORE lp a
    ZINCRBY lp -0 a
    ZADD lp INCR -0 newm
    ZSCORE lp newm
    ZADD lp -0 a CH
    ZUNION 1 lp WEIGHTS -1 WITHSCORES
    ZUNIONSTORE dst 1 lp WEIGHTS -1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst2 lp 0 -1
    ZRANGE dst2 0 -1 WITHSCORES
    """)
    with limits(zd, entries=0):
        run(zd, """
        ZADD sk -0 a 0 b
        ZSCORE sk a
        ZRANGE sk 0 -1 WITHSCORES
        ZINCRBY sk -0 a
        ZADD sk 0 a
        ZSCORE sk a
        ZUNIONSTORE dst3 1 sk
        ZRANGE dst3 0 -1 WITHSCORES
        ZPOPMIN sk
        ZADD sk -0 c 1 d
        """)
        f, r = zd.both("ZSCAN", "sk", "0")  # order follows Redis's hash table
        assert sorted(f.split(b"\r\n")) == sorted(r.split(b"\r\n"))
    with limits(zd, value=3):
        run(zd, """
        ZADD long -0 abcdef
        ZSCORE long abcdef
        ZADD short -0 ab
        ZADD short -0 abcdef
        ZRANGE short 0 -1 WITHSCORES
        """)
    with limits(zd, entries=2):
        run(zd, """
        ZADD g -0 a
        ZADD g -0 b
        ZADD g -0 c
        ZADD g -0 d
        ZRANGE g 0 -1 WITHSCORES
        ZUNIONSTORE g2 1 g
        ZRANGE g2 0 -1 WITHSCORES
        ZUNIONSTORE g3 1 g WEIGHTS -1
        ZREMRANGEBYRANK g3 0 1
        ZUNIONSTORE g4 1 g3 WEIGHTS -1
        ZRANGE g4 0 -1 WITHSCORES
        ZRANGESTORE g5 g 0 -1
        ZRANGE g5 0 -1 WITHSCORES
        ZRANGESTORE g6 g 0 1
        ZRANGE g6 0 -1 WITHSCORES
        ZRANGESTORE g7 g -inf +inf BYSCORE
        ZRANGE g7 0 -1 WITHSCORES
        """)


# --- ZADD and friends ---------------------------------------------------------------


def test_zadd_options(zd):
    run(zd, """
    ZADD z 1 a 2 b
    ZADD z NX 5 a 3 c
    ZADD z XX 5 a 4 d
    ZADD z XX CH 6 a 4 d
    ZADD z CH 6 a 7 b 8 e
    ZADD z GT 1 a 10 b
    ZADD z GT CH 1 a 10 b 11 b
    ZADD z LT CH 1 a 100 b
    ZADD z LT 0 newlt
    ZADD z GT 0 newgt
    ZADD z XX GT 0 newxx
    ZRANGE z 0 -1 WITHSCORES
    ZADD z INCR 5 a
    ZADD z INCR NX 5 a
    ZADD z INCR XX 5 nope
    ZADD z INCR GT -1 a
    ZADD z INCR LT -1 a
    ZADD z INCR GT 0 a
    ZADD z INCR CH 0 a
    ZADD z GT LT 1 a
    ZADD z NX GT 1 a
    ZADD z NX LT 1 a
    ZADD z NX XX 1 a
    ZADD z INCR 1 a 2 b
    ZADD z 1
    ZADD z 1 a 2
    ZADD z nx
    ZADD z NX
    ZADD z
    ZADD z 1 a x b
    ZADD z x a 1 b
    ZADD z CH CH CH 1 a
    ZADD z incr Incr 1 a
    ZADD newkey XX 1 a
    ZADD newkey XX INCR 1 a
    EXISTS newkey
    ZADD z INCR inf a
    ZADD z INCR -inf a
    ZSCORE z a
    ZINCRBY z -inf a
    ZINCRBY z inf a
    ZINCRBY z 1 a
    ZINCRBY z abc a
    ZINCRBY z 1 newmember
    ZINCRBY z nx a
    ZINCRBY z incr a
    ZINCRBY z 1 a extra
    ZCARD z
    ZCARD nokey
    SET str x
    ZADD str 1 a
    ZINCRBY str 1 a
    ZADD str XX 1 a
    ZCARD str
    ZSCORE str a
    ZMSCORE str a
    ZRANK str a
    """)


def test_zrem_zscore_zrank(zd):
    run(zd, """
    ZADD z 1 a 2 b 3 c 3 d
    ZSCORE z a
    ZSCORE z nope
    ZSCORE nokey a
    ZMSCORE z a nope c
    ZMSCORE nokey a b
    ZMSCORE z
    ZRANK z a
    ZRANK z d
    ZRANK z nope
    ZREVRANK z a
    ZREVRANK z d
    ZREVRANK nokey a
    ZRANK z a withscore
    ZREM z a nope
    ZREM z nope
    ZREM nokey a
    ZREM z b c d
    EXISTS z
    ZADD z 1 a
    ZREM z a a a
    EXISTS z
    ZREM z
    """)


# --- ranges ------------------------------------------------------------------------


def test_zrange_by_rank(zd):
    zd("ZADD", "z", *sum(([str(i % 4), "m%02d" % i] for i in range(12)), []))
    for start, stop in [(0, -1), (0, 0), (-1, -1), (-100, 100), (5, 3), (3, 5),
                        (-3, -1), (11, 20), (12, 20), (0, -13), (-13, -12), (2, -2)]:
        zd("ZRANGE", "z", str(start), str(stop))
        zd("ZRANGE", "z", str(start), str(stop), "WITHSCORES")
        zd("ZRANGE", "z", str(start), str(stop), "REV", "WITHSCORES")
        zd("ZREVRANGE", "z", str(start), str(stop))
        zd("ZREVRANGE", "z", str(start), str(stop), "WITHSCORES")
    run(zd, """
    ZRANGE z 0 -1 withscores withscores
    ZRANGE z 0 -1 REV REV
    ZRANGE z 0 -1 LIMIT 0 1
    ZRANGE z 0 -1 LIMIT 0 -1
    ZRANGE z 0 -1 LIMIT 0
    ZRANGE z a 1
    ZRANGE z 0 b
    ZRANGE z 0 1 foo
    ZREVRANGE z 0 1 REV
    ZREVRANGE z 0 1 BYSCORE
    ZRANGE nokey 0 -1
    ZRANGE nokey 0 -1 WITHSCORES
    ZRANGE z 9223372036854775807 -9223372036854775808
    ZRANGE z 0 9223372036854775808
    SET str x
    ZRANGE str 0 -1
    ZRANGE str a b
    ZRANGE z 0
    """)


def test_zrange_by_score(zd):
    zd("ZADD", "z", "-inf", "ninf", "-1.5", "a", "0", "b", "0", "c", "1", "d", "2.5", "e",
       "2.5", "f", "10", "g", "inf", "pinf")
    ranges = [("-inf", "+inf"), ("(-inf", "(+inf"), ("0", "0"), ("(0", "0"), ("0", "(0"),
              ("(0", "(0"), ("1", "0"), ("-1.5", "2.5"), ("(-1.5", "(2.5"), ("", ""),
              ("(", "10"), (" 2.5", "1e400"), ("-1e400", "0"), ("inf", "inf"),
              ("(inf", "inf"), ("-inf", "-inf"), ("0x1", "0xa"), ("1e-400", "1"),
              ("0\x00abc", "5"), ("+inf", "-inf")]
    for lo, hi in ranges:
        zd("ZRANGEBYSCORE", "z", lo, hi)
        zd("ZRANGEBYSCORE", "z", lo, hi, "WITHSCORES")
        zd("ZREVRANGEBYSCORE", "z", hi, lo, "WITHSCORES")
        zd("ZRANGE", "z", lo, hi, "BYSCORE")
        zd("ZRANGE", "z", hi, lo, "BYSCORE", "REV", "WITHSCORES")
        zd("ZCOUNT", "z", lo, hi)
    for off, cnt in [(0, 1), (1, 2), (0, -1), (-1, 5), (2, 0), (9, 5), (10, 1), (3, -5),
                     (100, 1), (0, 100)]:
        zd("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", str(off), str(cnt))
        zd("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", str(off), str(cnt))
        zd("ZRANGE", "z", "(0", "10", "BYSCORE", "LIMIT", str(off), str(cnt), "WITHSCORES")
        zd("ZRANGE", "z", "10", "(0", "BYSCORE", "REV", "LIMIT", str(off), str(cnt))
    bad = [("a", "1"), ("1", "b"), ("(", "(a"), ("nan", "1"), ("1", "(nan"), (" ", "1"),
           ("1 ", "2"), ("((1", "2"), ("[1", "2")]
    for lo, hi in bad:
        zd("ZRANGEBYSCORE", "z", lo, hi)
        zd("ZCOUNT", "z", lo, hi)
        zd("ZRANGE", "z", lo, hi, "BYSCORE")
        zd("ZREMRANGEBYSCORE", "z", lo, hi)
    run(zd, """
    ZRANGEBYSCORE z -inf +inf LIMIT 0
    ZRANGEBYSCORE z -inf +inf LIMIT a 1
    ZRANGEBYSCORE z -inf +inf LIMIT 1 b
    ZRANGEBYSCORE z -inf +inf REV
    ZRANGEBYSCORE z -inf +inf BYSCORE
    ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 0 2 WITHSCORES
    ZRANGEBYSCORE z -inf +inf LIMIT 0 2 LIMIT 1 1
    ZRANGE z -inf +inf BYSCORE BYSCORE
    ZRANGE z -inf +inf BYSCORE BYLEX
    ZRANGE z -inf +inf BYSCORE LIMIT 0 1 BYLEX
    ZRANGEBYSCORE nokey -inf +inf
    ZRANGEBYSCORE nokey a b
    ZCOUNT nokey -inf +inf
    ZCOUNT nokey a b
    SET str x
    ZRANGEBYSCORE str -inf +inf
    ZRANGEBYSCORE str a b
    ZCOUNT str 0 1
    """)


def test_zrange_by_lex(zd):
    zd("ZADD", "z", *sum((["0", m] for m in
                           ["", "a", "aa", "ab", "b", "ba", "c", "d\x00", "e", "\xff"]), []))
    ranges = [("-", "+"), ("+", "-"), ("-", "-"), ("+", "+"), ("[a", "[b"), ("(a", "(b"),
              ("[a", "(b"), ("(a", "[b"), ("[", "[a"), ("(", "+"), ("-", "(c"), ("[b", "[a"),
              ("[b", "[b"), ("(b", "[b"), ("[b", "(b"), ("[d", "[e"), ("[d\x00", "+"),
              ("[z", "+"), ("-", "[\x00"), ("[\xff", "+"), ("+\x00x", "-")]
    for lo, hi in ranges:
        zd("ZRANGEBYLEX", "z", lo, hi)
        zd("ZREVRANGEBYLEX", "z", hi, lo)
        zd("ZRANGE", "z", lo, hi, "BYLEX")
        zd("ZRANGE", "z", hi, lo, "BYLEX", "REV")
        zd("ZLEXCOUNT", "z", lo, hi)
    for off, cnt in [(0, 1), (1, 2), (0, -1), (-1, 5), (2, 0), (9, 5), (10, 1), (100, 1)]:
        zd("ZRANGEBYLEX", "z", "-", "+", "LIMIT", str(off), str(cnt))
        zd("ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", str(off), str(cnt))
        zd("ZRANGE", "z", "[a", "+", "BYLEX", "LIMIT", str(off), str(cnt))
    bad = [("a", "b"), ("", "+"), ("-", ""), ("-a", "+"), ("-", "+a"), ("{a", "[b"), ("1", "2")]
    for lo, hi in bad:
        zd("ZRANGEBYLEX", "z", lo, hi)
        zd("ZLEXCOUNT", "z", lo, hi)
        zd("ZREMRANGEBYLEX", "z", lo, hi)
        zd("ZRANGE", "z", lo, hi, "BYLEX")
    run(zd, """
    ZRANGEBYLEX z - + WITHSCORES
    ZRANGE z - + BYLEX WITHSCORES
    ZRANGEBYLEX z - + LIMIT 0
    ZRANGEBYLEX z - + foo
    ZRANGEBYLEX nokey - +
    ZRANGEBYLEX nokey a b
    ZLEXCOUNT nokey - +
    SET str x
    ZRANGEBYLEX str - +
    ZLEXCOUNT str - +
    """)


def test_lex_with_mixed_scores_listpack(zd):
    # Redis only defines lex ranges for equal scores; a listpack walks them in
    # order, which is what frtrio reproduces.
    run(zd, """
    ZADD z 1 b 2 a 3 d 4 c 5 e
    ZRANGEBYLEX z [b [d
    ZRANGEBYLEX z - [c
    ZREVRANGEBYLEX z [d [b
    ZLEXCOUNT z [b [d
    ZREMRANGEBYLEX z [b [c
    ZRANGE z 0 -1
    """)


def test_zremrange(zd):
    for cmd, lo, hi in [("ZREMRANGEBYRANK", "0", "1"), ("ZREMRANGEBYRANK", "-2", "-1"),
                        ("ZREMRANGEBYRANK", "5", "1"), ("ZREMRANGEBYRANK", "0", "-1"),
                        ("ZREMRANGEBYRANK", "100", "200"), ("ZREMRANGEBYRANK", "-100", "0"),
                        ("ZREMRANGEBYSCORE", "(1", "3"), ("ZREMRANGEBYSCORE", "-inf", "+inf"),
                        ("ZREMRANGEBYSCORE", "5", "1"), ("ZREMRANGEBYLEX", "[b", "(d"),
                        ("ZREMRANGEBYLEX", "-", "+"), ("ZREMRANGEBYLEX", "+", "-")]:
        zd("DEL", "z")
        zd("ZADD", "z", "1", "a", "1", "b", "2", "c", "3", "d", "4", "e")
        zd(cmd, "z", lo, hi)
        zd("ZRANGE", "z", "0", "-1", "WITHSCORES")
        zd("EXISTS", "z")
    run(zd, """
    ZREMRANGEBYRANK nokey 0 -1
    ZREMRANGEBYRANK z a 1
    ZREMRANGEBYRANK nokey a 1
    ZREMRANGEBYSCORE nokey 0 1
    ZREMRANGEBYLEX nokey - +
    SET str x
    ZREMRANGEBYRANK str 0 -1
    ZREMRANGEBYSCORE str 0 1
    ZREMRANGEBYLEX str - +
    """)


def test_zrangestore(zd):
    run(zd, """
    ZADD src 1 a 2 b 3 c 4 d
    ZRANGESTORE dst src 0 1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst src 0 -1 REV
    ZRANGESTORE dst src (1 3 BYSCORE
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst src +inf -inf BYSCORE REV LIMIT 1 2
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst src [a [c BYLEX
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst src 0 -1 WITHSCORES
    ZRANGESTORE dst src 0 -1 LIMIT 0 1
    ZRANGESTORE dst src 5 10
    EXISTS dst
    ZRANGESTORE dst src 0 0
    SET other x
    EXPIRE other 100
    ZRANGESTORE other src 0 0
    TTL other
    TYPE other
    ZRANGESTORE other nosrc 0 -1
    EXISTS other
    ZRANGESTORE other nosrc 0 -1
    SET str x
    ZRANGESTORE dst str 0 -1
    ZRANGESTORE dst src a b
    ZRANGESTORE dst src 0
    ZRANGESTORE src src 1 2
    ZRANGE src 0 -1 WITHSCORES
    """)


def test_zpop(zd):
    run(zd, """
    ZADD z 1 a 2 b 3 c 4 d 5 e
    ZPOPMIN z
    ZPOPMAX z
    ZPOPMIN z 2
    ZPOPMAX z 0
    ZPOPMIN z 1
    ZPOPMIN z 10
    EXISTS z
    ZPOPMIN z
    ZPOPMIN z 3
    ZPOPMAX nokey 0
    ZADD z 1 a
    ZPOPMIN z -1
    ZPOPMIN z abc
    ZPOPMIN z 1 2
    ZPOPMAX z 9223372036854775807
    SET str x
    ZPOPMIN str
    ZPOPMAX str 0
    ZPOPMIN str -1
    """)


def test_zmpop(zd):
    run(zd, """
    ZADD z1 1 a 2 b 3 c
    ZADD z2 10 x
    ZMPOP 1 z1 MIN
    ZMPOP 2 z1 z2 MAX COUNT 10
    ZMPOP 2 nokey z2 min COUNT 1
    ZMPOP 2 z1 z2 MIN
    EXISTS z1 z2
    ZMPOP 2 z1 z2 MIN COUNT 3
    ZADD z1 1 a
    ZMPOP 0 z1 MIN
    ZMPOP -1 z1 MIN
    ZMPOP a z1 MIN
    ZMPOP 1 z1
    ZMPOP 2 z1 MIN
    ZMPOP 1 z1 MID
    ZMPOP 1 z1 MIN COUNT
    ZMPOP 1 z1 MIN COUNT 0
    ZMPOP 1 z1 MIN COUNT -1
    ZMPOP 1 z1 MIN COUNT a
    ZMPOP 1 z1 MIN COUNT 1 COUNT 1
    ZMPOP 1 z1 MIN foo
    ZMPOP 9223372036854775808 z1 MIN
    SET str x
    ZMPOP 2 str z1 MIN
    ZMPOP 2 z1 str MIN
    ZMPOP 1 z1 max count 5
    """)


def test_zrandmember(zd):
    run(zd, """
    ZRANDMEMBER nokey
    ZRANDMEMBER nokey 5
    ZRANDMEMBER nokey -5 WITHSCORES
    ZRANDMEMBER nokey 0
    ZADD one 7 only
    ZRANDMEMBER one
    ZRANDMEMBER one 1
    ZRANDMEMBER one -3 WITHSCORES
    ZRANDMEMBER one 5 WITHSCORES
    ZADD z 1 a 2 b 3 c 0.5 d
    ZRANDMEMBER z 4
    ZRANDMEMBER z 10 WITHSCORES
    ZRANDMEMBER z 0
    ZRANDMEMBER z 0 WITHSCORES
    ZRANDMEMBER z 1 WITHSCORE
    ZRANDMEMBER z 1 WITHSCORES extra
    ZRANDMEMBER z abc
    ZRANDMEMBER z -9223372036854775808
    ZRANDMEMBER z 9223372036854775807 WITHSCORES
    ZRANDMEMBER z -4611686018427387904 WITHSCORES
    ZRANDMEMBER z 4611686018427387903 WITHSCORES
    SET str x
    ZRANDMEMBER str
    ZRANDMEMBER str 0
    """)
    # random picks: compare shape and membership only
    members = {b"a", b"b", b"c", b"d"}
    for args in (["2"], ["3", "WITHSCORES"], ["-10"], ["-6", "WITHSCORES"]):
        f, r = zd.both("ZRANDMEMBER", "z", *args)
        assert f.split(b"\r\n")[0] == r.split(b"\r\n")[0]
        got = set(f.split(b"\r\n")[2::2])
        if "WITHSCORES" not in args:
            assert got <= members
        if args[0] in ("2", "3"):
            n = int(args[0])
            names = [x for x in f.split(b"\r\n") if x in members]
            assert len(set(names)) == n
    f, _ = zd.both("ZRANDMEMBER", "z")
    assert f.split(b"\r\n")[1] in members


def test_zscan(zd):
    run(zd, """
    ZSCAN nokey 0
    ZSCAN nokey 0 foo
    ZADD z 1 a 2 b 3 c 1.5 ab
    ZSCAN z 0
    ZSCAN z 0 COUNT 1
    ZSCAN z 0 MATCH a*
    ZSCAN z 0 MATCH * COUNT 100
    ZSCAN z 0 COUNT 0
    ZSCAN z 0 COUNT -1
    ZSCAN z 0 COUNT a
    ZSCAN z 0 MATCH
    ZSCAN z 0 TYPE string
    ZSCAN z abc
    ZSCAN z -1
    ZSCAN z 18446744073709551616
    ZSCAN z " 1"
    ZSCAN z ""
    SET str x
    ZSCAN str 0
    """)


def _full_zscan(conn, key, count=10, match=None):
    cursor = b"0"
    seen = {}
    rounds = 0
    while True:
        args = ["ZSCAN", key, cursor] + (["COUNT", str(count)] if count else [])
        if match:
            args += ["MATCH", match]
        raw = conn.cmd(*args)
        parts = raw.split(b"\r\n")
        cursor = parts[2]
        vals = parts[5:-1:2]
        for i in range(0, len(vals), 2):
            seen[vals[i]] = vals[i + 1]
        rounds += 1
        if cursor == b"0":
            return seen, rounds


def test_zscan_skiplist_complete(diff):
    n = 500
    args = []
    for i in range(n):
        args += [str(i / 7), "member:%d" % i]
    diff("ZADD", "big", *args)
    fs, frounds = _full_zscan(diff.f, "big")
    rs, rrounds = _full_zscan(diff.r, "big")
    assert fs == rs and len(fs) == n
    assert frounds > 10
    fm, _ = _full_zscan(diff.f, "big", match="member:1*")
    rm, _ = _full_zscan(diff.r, "big", match="member:1*")
    assert fm == rm


def test_zscan_guarantee_under_changes(frtrio_proc):
    """Members present for the whole scan are returned even while others
    come and go."""
    c = frtrio_proc.conn()
    c.cmd("DEL", "churn")
    stable = {b"s%d" % i for i in range(300)}
    c.cmd("ZADD", "churn", *sum((["1", m] for m in stable), []))
    cursor = b"0"
    seen = set()
    i = 0
    while True:
        parts = c.cmd("ZSCAN", "churn", cursor, "COUNT", "7").split(b"\r\n")
        cursor = parts[2]
        seen.update(parts[5:-1:4])
        c.cmd("ZADD", "churn", "2", "tmp%d" % i)
        c.cmd("ZREM", "churn", "tmp%d" % (i - 3))
        i += 1
        if cursor == b"0":
            break
    assert stable <= seen
    c.close()


# --- set operations -----------------------------------------------------------------


SETOPS_SETUP = """
ZADD a 1 x 2 y 3 z
ZADD b 10 y 20 z 30 w
ZADD c 0.1 z 0.2 x
ZADD inf inf x -inf y
SADD s y z q
"""


def test_zunion_inter_diff(zd):
    run(zd, SETOPS_SETUP)
    combos = [["2", "a", "b"], ["3", "a", "b", "c"], ["1", "a"], ["2", "a", "nokey"],
              ["2", "nokey", "a"], ["2", "a", "a"], ["2", "a", "s"], ["3", "s", "b", "a"],
              ["2", "inf", "a"], ["2", "inf", "inf"]]
    for keys in combos:
        for cmd in ("ZUNION", "ZINTER", "ZDIFF"):
            zd(cmd, *keys)
            zd(cmd, *keys, "WITHSCORES")
        zd("ZINTERCARD", *keys)
        for agg in ("SUM", "MIN", "MAX", "min"):
            zd("ZUNION", *keys, "AGGREGATE", agg, "WITHSCORES")
            zd("ZINTER", *keys, "AGGREGATE", agg, "WITHSCORES")
        w = [str(x) for x in (2, -1, 0.5)][: int(keys[0])]
        zd("ZUNION", *keys, "WEIGHTS", *w, "WITHSCORES")
        zd("ZINTER", *keys, "WEIGHTS", *w, "AGGREGATE", "MAX", "WITHSCORES")
        zd("ZUNION", *keys, "WEIGHTS", *(["0"] * int(keys[0])), "WITHSCORES")
        zd("ZINTER", *keys, "WEIGHTS", *(["inf"] * int(keys[0])), "WITHSCORES")
        for cmd in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
            zd(cmd, "dst", *keys)
            zd("ZRANGE", "dst", "0", "-1", "WITHSCORES")
    run(zd, """
    ZUNION 2 inf inf WEIGHTS 1 -1 WITHSCORES
    ZUNION 2 inf inf WEIGHTS 0 1 WITHSCORES
    ZINTER 2 inf inf WEIGHTS 1 -1 WITHSCORES
    ZINTER 2 inf inf WEIGHTS 0 1 AGGREGATE MIN WITHSCORES
    ZINTER 2 a inf WEIGHTS 0 1 AGGREGATE MAX WITHSCORES
    ZUNION 2 a b WEIGHTS 1 0.1 WITHSCORES
    ZUNIONSTORE a 2 a b
    ZRANGE a 0 -1 WITHSCORES
    ZINTERCARD 2 a b LIMIT 1
    ZINTERCARD 2 a b LIMIT 0
    ZINTERCARD 2 a b LIMIT 100
    """)


def test_setop_errors(zd):
    run(zd, SETOPS_SETUP)
    run(zd, """
    SET str v
    ZUNION 0 a
    ZUNION -1 a
    ZUNION abc a
    ZUNION 3 a b
    ZUNION 2 a str
    ZUNION 2 a str WEIGHTS x
    ZUNION 1 a WEIGHTS
    ZUNION 1 a WEIGHTS x
    ZUNION 2 a b WEIGHTS 1
    ZUNION 2 a b WEIGHTS 1 2 3
    ZUNION 1 a WEIGHTS nan
    ZUNION 1 a WEIGHTS 1e400
    ZUNION 1 a AGGREGATE
    ZUNION 1 a AGGREGATE avg
    ZUNION 1 a WITHSCORES WITHSCORES
    ZUNION 1 a LIMIT 1
    ZUNION 1 a foo
    ZDIFF 1 a WEIGHTS 1
    ZDIFF 1 a AGGREGATE SUM
    ZDIFF 0 a
    ZUNIONSTORE dst 0 a
    ZINTERSTORE dst 0 a
    ZDIFFSTORE dst 0 a
    ZUNIONSTORE dst 1 a WITHSCORES
    ZUNIONSTORE dst 2 a
    ZUNIONSTORE dst 1 str
    ZINTERCARD 0 a
    ZINTERCARD -1 a
    ZINTERCARD 2 a
    ZINTERCARD 1 a LIMIT -1
    ZINTERCARD 1 a LIMIT abc
    ZINTERCARD 1 a LIMIT
    ZINTERCARD 1 a WEIGHTS 1
    ZINTERCARD 1 a WITHSCORES
    ZINTERCARD 1 str
    SET dst v
    EXPIRE dst 100
    ZUNIONSTORE dst 1 a
    TTL dst
    ZINTERSTORE dst 2 a nokey
    EXISTS dst
    ZINTERSTORE dst 2 a nokey
    ZDIFFSTORE dst 2 a a
    ZUNIONSTORE dst 1 nokey
    """)


def test_getkeys(diff):
    run(diff, """
    COMMAND GETKEYS ZUNIONSTORE dst 2 a b
    COMMAND GETKEYS ZINTERSTORE dst 1 a WEIGHTS 1
    COMMAND GETKEYS ZDIFFSTORE dst 2 a b
    COMMAND GETKEYS ZUNION 2 a b WITHSCORES
    COMMAND GETKEYS ZINTER 1 a
    COMMAND GETKEYS ZDIFF 3 a b c
    COMMAND GETKEYS ZINTERCARD 2 a b LIMIT 1
    COMMAND GETKEYS ZMPOP 2 a b MIN
    COMMAND GETKEYS BZMPOP 0 2 a b MIN COUNT 2
    COMMAND GETKEYS BZPOPMIN a b c 0
    COMMAND GETKEYS ZRANGESTORE dst src 0 -1
    COMMAND GETKEYS ZADD k 1 m
    """)


# --- blocking --------------------------------------------------------------------------


class Pair:
    """Two raw connections to each server: a blocked client and a writer."""

    def __init__(self, fp, rp):
        self.fb, self.rb = fp.conn(), rp.conn()
        self.fw, self.rw = fp.conn(), rp.conn()
        self.fw.cmd("FLUSHALL")
        self.rw.cmd("FLUSHALL")

    def hello3(self):
        for c in (self.fb, self.rb):
            c.cmd("HELLO", "3")

    def block(self, *args):
        self.fb.send(encode_request(args))
        self.rb.send(encode_request(args))
        time.sleep(0.05)

    def write(self, *args):
        a, b = self.fw.cmd(*args), self.rw.cmd(*args)
        assert a == b, (args, a, b)
        return a

    def both_blocked(self, *args):
        a, b = self.fb.cmd(*args), self.rb.cmd(*args)
        assert a == b, (args, a, b)
        return a

    def result(self):
        a, b = self.fb.read_reply(), self.rb.read_reply()
        assert a == b, (a, b)
        return a

    def close(self):
        for c in (self.fb, self.rb, self.fw, self.rw):
            c.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(frtrio_proc, redis_proc, request):
    p = Pair(frtrio_proc, redis_proc)
    if request.param == 3:
        p.hello3()
    yield p
    p.close()


def test_bzpop_immediate_and_errors(pair):
    pair.write("ZADD", "z", "1", "a", "2", "b", "3", "c")
    for args in (["BZPOPMIN", "nokey", "z", "0"], ["BZPOPMAX", "z", "0"],
                 ["BZMPOP", "0", "2", "nokey", "z", "MIN", "COUNT", "5"],
                 ["BZPOPMIN", "z", "abc"], ["BZPOPMIN", "z", "-1"], ["BZPOPMIN", "z", "1e400"],
                 ["BZPOPMIN", "z", ""], ["BZPOPMIN", "z", " 1"], ["BZMPOP", "x", "1", "z", "MIN"],
                 ["BZMPOP", "0", "0", "z", "MIN"], ["BZMPOP", "0", "1", "z", "FOO"],
                 ["BZMPOP", "0", "1", "z", "MIN", "COUNT", "0"], ["BZMPOP", "0", "1", "z"],
                 ["BZMPOP", "abc", "1", "z", "MIN"]):
        pair.both_blocked(*args)
    pair.write("SET", "str", "x")
    pair.both_blocked("BZPOPMIN", "nokey", "str", "0")
    pair.both_blocked("BZMPOP", "0", "2", "nokey", "str", "MAX")
    # inside MULTI a blocking pop on empty keys answers at once
    pair.both_blocked("MULTI")
    pair.both_blocked("BZPOPMIN", "empty", "0")
    pair.both_blocked("BZMPOP", "0", "1", "empty", "MIN")
    pair.both_blocked("EXEC")


def test_bzpop_blocks_and_wakes(pair):
    pair.block("BZPOPMIN", "k1", "k2", "0")
    pair.write("ZADD", "k2", "5", "x", "6", "y")
    pair.result()
    pair.write("ZRANGE", "k2", "0", "-1", "WITHSCORES")
    pair.block("BZPOPMAX", "k1", "0")
    pair.write("SET", "k1", "str")  # wrong type: stays blocked
    pair.write("DEL", "k1")
    pair.write("ZADD", "k1", "1", "a", "2", "b")
    pair.result()
    pair.block("BZMPOP", "0", "2", "m1", "m2", "MAX", "COUNT", "3")
    pair.write("ZADD", "m2", "1", "a", "2", "b")
    pair.result()
    pair.write("EXISTS", "m2")
    # a MULTI that adds and removes does not wake the waiter
    pair.block("BZMPOP", "0", "1", "t", "MIN")
    pair.write("MULTI")
    pair.write("ZADD", "t", "1", "a")
    pair.write("DEL", "t")
    pair.write("EXEC")
    pair.write("ZADD", "t", "1", "b", "2", "c")
    pair.result()


def test_bzpop_woken_by_every_kind_of_write(pair):
    pair.write("ZADD", "src", "1", "a", "2", "b")
    for write in (["ZINCRBY", "d", "5", "m"], ["ZADD", "d", "INCR", "1", "m"],
                  ["ZUNIONSTORE", "d", "1", "src"], ["ZINTERSTORE", "d", "2", "src", "src"],
                  ["ZDIFFSTORE", "d", "1", "src"], ["ZRANGESTORE", "d", "src", "0", "0"]):
        pair.block("BZPOPMAX", "d", "0")
        pair.write(*write)
        pair.result()
        pair.write("DEL", "d")
    # writes that leave the key empty do not
    pair.block("BZPOPMIN", "d", "0.3")
    pair.write("ZUNIONSTORE", "d", "1", "nokey")
    pair.write("ZADD", "d", "XX", "1", "a")
    pair.write("ZRANGESTORE", "d", "src", "5", "6")
    time.sleep(0.35)
    pair.result()


def test_bzpop_timeout(pair):
    pair.block("BZPOPMIN", "k", "0.05")
    time.sleep(0.1)
    pair.result()
    pair.block("BZMPOP", "0.05", "1", "k", "MIN")
    time.sleep(0.1)
    pair.result()


def test_bzpop_fifo(frtrio_proc, redis_proc):
    for proc in (frtrio_proc, redis_proc):
        w = proc.conn()
        w.cmd("FLUSHALL")
        a, b = proc.conn(), proc.conn()
        a.send(encode_request(["BZPOPMIN", "q", "0"]))
        time.sleep(0.03)
        b.send(encode_request(["BZPOPMIN", "q", "0"]))
        time.sleep(0.03)
        w.cmd("ZADD", "q", "1", "first", "2", "second")
        assert a.read_reply() == b"*3\r\n$1\r\nq\r\n$5\r\nfirst\r\n$1\r\n1\r\n"
        assert b.read_reply() == b"*3\r\n$1\r\nq\r\n$6\r\nsecond\r\n$1\r\n2\r\n"
        for c in (w, a, b):
            c.close()


# --- engine level: propagation ---------------------------------------------------------------


def _engine():
    srv = support.engine(seed=7)
    return srv, srv.new_client()


_ex = support.run


def test_propagation():
    srv, c = _engine()
    _ex(srv, c, "ZADD", "z", 1, "a", 2, "b", 3, "c")
    srv.propagated.clear()
    _ex(srv, c, "ZMPOP", 1, "z", "MAX", "COUNT", 5)
    assert srv.propagated == [(0, [b"ZPOPMAX", b"z", b"3"])]  # the number popped, as Redis
    srv.propagated.clear()
    _ex(srv, c, "ZMPOP", 1, "nokey", "MAX")
    _ex(srv, c, "ZADD", "z", "NX", 1, "a")
    _ex(srv, c, "ZADD", "z", "NX", 1, "a")
    assert srv.propagated == [(0, [b"ZADD", b"z", b"NX", b"1", b"a"])]
    srv.propagated.clear()
    _ex(srv, c, "ZADD", "z", 2, "b")
    _ex(srv, c, "BZPOPMIN", "z", 0)
    _ex(srv, c, "BZMPOP", 0, 1, "z", "MIN", "COUNT", 10)
    assert srv.propagated == [(0, [b"ZADD", b"z", b"2", b"b"]), (0, [b"ZPOPMIN", b"z"]),
                              (0, [b"ZPOPMIN", b"z", b"1"])]
    srv.propagated.clear()
    # a blocked client served later propagates the pop it did
    d = srv.new_client()
    _ex(srv, d, "BZMPOP", 0, 1, "w", "MAX", "COUNT", 10)
    assert d.blocked is not None
    _ex(srv, c, "ZADD", "w", 1, "x", 2, "y")
    assert d.blocked is None
    assert d.take_output() == (b"*2\r\n$1\r\nw\r\n*2\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n"
                               b"*2\r\n$1\r\nx\r\n$1\r\n1\r\n")
    assert srv.propagated == [(0, [b"ZADD", b"w", b"1", b"x", b"2", b"y"]),
                              (0, [b"ZPOPMAX", b"w", b"2"])]
    srv.propagated.clear()
    _ex(srv, c, "ZREM", "w", "nope")
    _ex(srv, c, "ZREMRANGEBYSCORE", "w", 5, 6)
    assert srv.propagated == []


def test_engine_timeout_reply():
    srv, c = _engine()
    _ex(srv, c, "BZPOPMIN", "k", "0.5")
    assert c.blocked is not None and c.blocked.deadline_ms == srv.now_ms + 500
    assert c.blocked.on_timeout is NullArray
    srv.blocking.timeout(c)
    assert c.take_output() == b"*-1\r\n"


@pytest.mark.parametrize("listpack", [False, True])
def test_zset_value_model(listpack):
    """ZSetValue against a naive model under random operations, in both
    forms (SortedList; compact lists, which also pass through the
    conversions: to_skiplist and back with to_listpack, as Redis's
    conversions of a listpack zset)."""
    rnd = random.Random(3)
    z = ZSetValue(listpack=listpack)
    model: dict = {}

    def norm(s):
        return 0.0 if z.listpack and s == 0.0 else s

    def order():
        return sorted(model.items(), key=lambda kv: (kv[1], kv[0]))

    for step in range(3000):
        op = rnd.random()
        m = b"m%d" % rnd.randrange(60)
        if op < 0.6:
            s = norm(rnd.choice([0.0, -0.0, 1.0, rnd.uniform(-5, 5), float("inf")]))
            z.set(m, s)
            if m not in model or model[m] != s:
                model[m] = s
        elif op < 0.9:
            assert z.remove(m) == (model.pop(m, None) is not None)
        elif op < 0.93 and model:
            i = rnd.randrange(len(model))
            s, pm = z.pop_at(i)
            assert (pm, s) == order()[i]
            del model[pm]
        elif op < 0.95:
            lo, hi = sorted(rnd.uniform(-6, 6) for _ in range(2))
            a, b = z.score_span(lo, True, hi, False)
            gone = [mm for mm, s in order()[a:b]]
            assert gone == [mm for mm, s in order() if lo < s <= hi]
            assert z.delete_span(a, b) == len(gone)
            for mm in gone:
                del model[mm]
        if listpack and step % 500 == 250:
            z.to_skiplist()
            assert z.sl is not None and z.encoding == b"skiplist"
        elif listpack and step % 500 == 499:
            z.to_listpack()
            assert z.sl is None and z.encoding == b"listpack"
            model = {k: norm(v) for k, v in model.items()}
        o = order()
        assert len(z) == len(model)
        if rnd.random() < 0.05:
            assert list(z.items()) == o
            assert list(z) == [m for m, _ in o]
            assert list(z.islice(2, 7)) == [(s, m) for m, s in o[2:7]]
            assert list(z.islice(2, 7, reverse=True)) == [(s, m) for m, s in o[2:7]][::-1]
            assert list(z.islice(0, len(o), reverse=True)) == [(s, m) for m, s in o][::-1]
            if o:
                assert z.at(-1) == (o[-1][1], o[-1][0])
            lo, hi = sorted(rnd.uniform(-6, 6) for _ in range(2))
            a, b = z.score_span(lo, False, hi, True)
            assert b - a == sum(1 for _, s in o if lo <= s < hi)
            assert all(lo <= s < hi for _m, s in o[a:b])
            if o:
                mm = o[rnd.randrange(len(o))][0]
                assert z.rank(mm) == [m for m, _ in o].index(mm)
            c = z.copy_value()
            assert list(c.items()) == o and c.encoding == z.encoding
            r = ZSetValue.from_items(list(z.items()), listpack=z.listpack)
            assert list(r.items()) == o and r.encoding == z.encoding
    cursor, seen = 0, set()
    while True:
        cursor, items = z.scan(cursor, 5)
        seen.update(m for m, _ in items)
        if cursor == 0:
            break
    assert seen == set(model)


def test_zset_value_lex_spans():
    """Lex ranges give the same spans in both forms, with equal scores
    (binary search) and mixed scores (Redis's listpack walk)."""
    from frtrio.store.zset import LexBound

    rnd = random.Random(5)
    names = [b"", b"a", b"ab", b"b", b"ba", b"c", b"\xff"]
    bounds = [MINUS, PLUS] + [LexBound(v, ex) for v in names for ex in (False, True)]
    for trial in range(40):
        pairs = [(m, float(rnd.choice([1, 1, 2]) if trial % 2 else 1)) for m in names
                 if rnd.random() < 0.8]
        a = ZSetValue.from_items(pairs, listpack=True)
        b = ZSetValue.from_items(pairs, listpack=False)
        assert a.sl is None and b.sl is not None
        for lo in bounds:
            for hi in bounds:
                assert a.lex_span(lo, hi) == b.lex_span(lo, hi)
                assert a.lex_span_rev(lo, hi) == b.lex_span_rev(lo, hi)


def test_zset_value_compact_limit():
    """A listpack zset beyond COMPACT_MAX members (a raised
    zset-max-listpack-entries) keeps its encoding in the SortedList form."""
    from frtrio.store.zset import COMPACT_MAX

    z = ZSetValue(listpack=True)
    for i in range(COMPACT_MAX + 1):
        z.set(b"m%05d" % i, float(-i))
    assert z.sl is not None and z.encoding == b"listpack"
    assert [m for m, _ in z.items()][:2] == [b"m%05d" % COMPACT_MAX, b"m%05d" % (COMPACT_MAX - 1)]


def test_aof_rewrite_items():
    from frtrio.persist.rewrite import value_commands

    z = ZSetValue.from_items([(b"a", 1.5), (b"b", -0.0), (b"c", float("inf"))], listpack=False)
    assert value_commands(b"k", z) == [[b"ZADD", b"k", b"-0", b"b", b"1.5", b"a", b"inf", b"c"]]


def test_not_hanging_slow_reader(frtrio_proc):
    """A big ZRANGE to a client reading slowly still arrives whole."""
    c = frtrio_proc.conn()
    c.cmd("DEL", "big")
    c.cmd("ZADD", "big", *sum(([str(i), "m%05d" % i] for i in range(5000)), []))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    r = c.cmd("ZRANGE", "big", "0", "-1", "WITHSCORES")
    assert r.startswith(b"*10000\r\n")
    c.close()


# --- randomized differential run ----------------------------------------------------------


def _random_command(rnd: random.Random) -> list[str]:
    keys = ["r1", "r2", "r3", "lexk"]
    members = ["m%d" % i for i in range(25)] + ["", "a", "b", "ab", "\xff"]
    scores = ["0", "-0", "1", "-1", "2.5", "0.1", "1e10", "inf", "-inf", "3", "-7.25", "1e-5"]

    def bound():
        s = rnd.choice(scores + ["+inf", "-inf"])
        return ("(" + s) if rnd.random() < 0.3 else s

    def lexb():
        r = rnd.random()
        if r < 0.15:
            return "-"
        if r < 0.3:
            return "+"
        return rnd.choice("[(") + rnd.choice(members)

    k = rnd.choice(keys[:3])
    op = rnd.randrange(22)
    if op <= 4:
        args = ["ZADD", k] + rnd.sample(["NX", "XX", "GT", "LT", "CH", "INCR"], rnd.randrange(3))
        n = 1 if "INCR" in args else rnd.randrange(1, 8)
        for _ in range(n):
            args += [rnd.choice(scores), rnd.choice(members)]
        return args
    if op == 5:
        return ["ZADD", "lexk"] + sum((["0", rnd.choice(members)] for _ in range(5)), [])
    if op == 6:
        return ["ZINCRBY", k, rnd.choice(scores), rnd.choice(members)]
    if op == 7:
        return ["ZREM", k] + rnd.sample(members, 3)
    if op == 8:
        a = ["ZRANGE", k, str(rnd.randrange(-12, 12)), str(rnd.randrange(-12, 12))]
        return a + rnd.sample(["REV", "WITHSCORES"], rnd.randrange(3))
    if op == 9:
        a = ["ZRANGE", k, bound(), bound(), "BYSCORE"]
        a += rnd.sample(["REV", "WITHSCORES"], rnd.randrange(3))
        if rnd.random() < 0.5:
            a += ["LIMIT", str(rnd.randrange(-1, 6)), str(rnd.randrange(-1, 6))]
        return a
    if op == 10:
        a = ["ZRANGE", "lexk", lexb(), lexb(), "BYLEX"] + (["REV"] if rnd.random() < 0.5 else [])
        if rnd.random() < 0.5:
            a += ["LIMIT", str(rnd.randrange(-1, 6)), str(rnd.randrange(-1, 6))]
        return a
    if op == 11:
        return [rnd.choice(["ZCOUNT", "ZREMRANGEBYSCORE"]), k, bound(), bound()]
    if op == 12:
        return [rnd.choice(["ZLEXCOUNT", "ZREMRANGEBYLEX"]), "lexk", lexb(), lexb()]
    if op == 13:
        return ["ZREMRANGEBYRANK", k, str(rnd.randrange(-5, 5)), str(rnd.randrange(-5, 5))]
    if op == 14:
        count = [str(rnd.randrange(0, 4))] if rnd.random() < 0.5 else []
        return [rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k] + count
    if op == 15:
        ks = rnd.sample(keys, rnd.randrange(1, 4))
        cmd = rnd.choice(["ZUNION", "ZINTER", "ZDIFF"])
        a = [cmd, str(len(ks))] + ks
        if cmd != "ZDIFF" and rnd.random() < 0.5:
            a += ["WEIGHTS"] + [rnd.choice(["1", "2", "-1", "0", "0.5", "inf"]) for _ in ks]
        if cmd != "ZDIFF" and rnd.random() < 0.5:
            a += ["AGGREGATE", rnd.choice(["SUM", "MIN", "MAX"])]
        return a + (["WITHSCORES"] if rnd.random() < 0.7 else [])
    if op == 16:
        ks = rnd.sample(keys, rnd.randrange(1, 4))
        cmd = rnd.choice(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"])
        return [cmd, rnd.choice(keys[:3]), str(len(ks))] + ks
    if op == 17:
        return [rnd.choice(["ZRANK", "ZREVRANK", "ZSCORE"]), k, rnd.choice(members)]
    if op == 18:
        return ["ZMSCORE", k] + rnd.sample(members, 3)
    if op == 19:
        return ["ZRANGESTORE", rnd.choice(keys[:3]), k, bound(), bound(), "BYSCORE"]
    if op == 20:
        ks = rnd.sample(keys, 2)
        return ["ZMPOP", "2"] + ks + [rnd.choice(["MIN", "MAX"]), "COUNT", str(rnd.randrange(1, 4))]
    return ["ZINTERCARD", "2"] + rnd.sample(keys, 2) + ["LIMIT", str(rnd.randrange(0, 3))]


SEEDS = [1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_commands(zd, seed):
    rnd = random.Random(seed)
    with limits(zd, entries=rnd.choice([4, 128])):
        for _ in range(700):
            zd(*_random_command(rnd))
        for k in ("r1", "r2", "r3", "lexk"):
            zd("ZRANGE", k, "0", "-1", "WITHSCORES")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_random_conversions_dump_digest(diff, seed):
    """Zsets of up to 150 members (and members over 64 bytes) crossing the
    listpack <-> skiplist conversions both ways (ZADD, ZREM, the stores,
    ZRANGESTORE): after every command the whole zset, OBJECT ENCODING, DUMP
    and DEBUG DIGEST-VALUE match redis-server's, and MEMORY USAGE and ZSCAN
    for a listpack (a skiplist's are estimates / hash order). About 10 s."""
    rnd = random.Random(seed)
    keys = ["a", "b", "c"]

    def mem():
        return "m%d" % rnd.randrange(150) if rnd.random() < 0.95 else "x" * rnd.randrange(60, 70)

    def score():
        return rnd.choice(["0", "-0", "1", "2.5", "-3", "1e10", "inf", "-inf",
                           str(rnd.randrange(2000)), "%.3f" % rnd.uniform(-5, 5)])

    for _ in range(1500):
        k = rnd.choice(keys)
        op = rnd.random()
        if op < 0.45:
            args = ["ZADD", k] + sum(([score(), mem()] for _ in range(rnd.randrange(1, 40))), [])
        elif op < 0.6:
            args = ["ZREM", k] + [mem() for _ in range(rnd.randrange(1, 30))]
        elif op < 0.65:
            args = ["ZREMRANGEBYRANK", k, str(rnd.randrange(-20, 20)), str(rnd.randrange(-20, 20))]
        elif op < 0.7:
            args = [rnd.choice(["ZREMRANGEBYSCORE", "ZCOUNT", "ZRANGEBYSCORE"]), k,
                    rnd.choice(["(", ""]) + score(), rnd.choice(["(", ""]) + score()]
        elif op < 0.75:
            args = [rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k, str(rnd.randrange(1, 10))]
        elif op < 0.8:
            args = [rnd.choice(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), k, "2",
                    rnd.choice(keys), rnd.choice(keys)]
        elif op < 0.85:
            args = ["ZRANGESTORE", k, rnd.choice(keys), str(rnd.randrange(0, 50)),
                    str(rnd.randrange(0, 200))]
        elif op < 0.9:
            args = ["ZINCRBY", k, score(), mem()]
        elif op < 0.93:
            args = ["ZRANK", k, mem()]
        else:
            args = ["ZRANGE", k, str(rnd.randrange(-30, 30)), str(rnd.randrange(-30, 150)), "WITHSCORES"]
        diff(*args)
        diff("ZRANGE", k, "0", "-1", "WITHSCORES")
        enc = diff("OBJECT", "ENCODING", k)
        diff("DUMP", k)
        diff("DEBUG", "DIGEST-VALUE", k)
        if enc != b"$8\r\nskiplist\r\n":
            diff("MEMORY", "USAGE", k)
            diff("ZSCAN", k, "0")


def test_zmpop_propagates_the_count_popped(frtrio_proc, redis_proc):
    """ZMPOP/BZMPOP reach replicas as ZPOPMIN/ZPOPMAX with the number of
    members popped, not the COUNT asked for (Redis's unit/type/zset
    'ZMPOP propagate as pop with count command to replica')."""
    streams = []
    for p in (frtrio_proc, redis_proc):
        s = support.ReplStream(p.port)
        c = p.conn()
        for args in (("DEL", "pz{t}", "pz2{t}"), ("ZADD", "pz{t}", 1, "one", 2, "two", 3, "three"),
                     ("ZMPOP", 1, "pz{t}", "MIN"), ("ZMPOP", 1, "pz{t}", "MAX", "COUNT", 1),
                     ("ZMPOP", 2, "pz{t}", "pz2{t}", "MIN", "COUNT", 10),
                     ("ZMPOP", 2, "pz{t}", "pz2{t}", "MAX", "COUNT", 10),
                     ("ZADD", "pz2{t}", 1, "one", 2, "two", 3, "three"),
                     ("BZMPOP", 0, 2, "pz{t}", "pz2{t}", "MAX", "COUNT", 7),
                     ("SET", "pz-end{t}", "x")):
            c.cmd(*args)
        streams.append(s.commands_until(b"set"))
        s.close()
        c.close()
    assert streams[0] == streams[1]
    assert [b"zpopmin", b"pz{t}", b"1"] in streams[0]
    assert [b"zpopmax", b"pz2{t}", b"3"] in streams[0]
