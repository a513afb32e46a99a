"""Bitmaps: differential tests against redis-server 7.0.15 (SETBIT, GETBIT,
BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO): replies and the resulting
string bytes compared, errors included, plus seeded random sequences."""

from __future__ import annotations

import random

from conftest import requires_redis
from support import run_script, switch_to_resp3

pytestmark = requires_redis


def test_setbit_getbit_and_errors(diff):
    run_script(diff, [
        ("SETBIT", "b", "0", "1"), ("SETBIT", "b", "0", "1"), ("SETBIT", "b", "7", "1"),
        ("SETBIT", "b", "100", "1"), ("GET", "b"), ("STRLEN", "b"),
        ("GETBIT", "b", "0"), ("GETBIT", "b", "1"), ("GETBIT", "b", "100"), ("GETBIT", "b", "99999"),
        ("GETBIT", "nokey", "3"),
        ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "x", "1"), ("SETBIT", "b", "1", "2"),
        ("SETBIT", "b", "1", "-1"), ("SETBIT", "b", "1", "x"), ("SETBIT", "b", "4294967296", "1"),
        ("SETBIT", "b", "9999999999999", "1"), ("GETBIT", "b", "-1"), ("GETBIT", "b", "x"),
        ("SETBIT", "b", "1"), ("GETBIT", "b"),
        ("RPUSH", "l", "x"), ("SETBIT", "l", "1", "1"), ("GETBIT", "l", "1"),
        ("SETBIT", "l", "x", "1"),  # the offset is checked before the type
        ("SET", "n", "12345"), ("GETBIT", "n", "2"), ("SETBIT", "n", "2", "0"), ("GET", "n"),
        ("SETBIT", "ttl", "3", "1"), ("EXPIRE", "ttl", "1000"), ("SETBIT", "ttl", "200", "1"),
        ("TTL", "ttl"),
    ])


def test_bitcount_bitpos(diff):
    run_script(diff, [
        ("SET", "s", b"\xff\xf0\x00\x0f\x01"), ("BITCOUNT", "s"),
        ("BITCOUNT", "s", "1", "2"), ("BITCOUNT", "s", "-2", "-1"), ("BITCOUNT", "s", "0", "100"),
        ("BITCOUNT", "s", "5", "30", "BIT"), ("BITCOUNT", "s", "-9", "-2", "bit"),
        ("BITCOUNT", "s", "1", "2", "BYTE"), ("BITCOUNT", "s", "1", "2", "WORD"),
        ("BITCOUNT", "s", "1"), ("BITCOUNT", "s", "a", "b"), ("BITCOUNT", "s", "-1", "-3"),
        ("BITCOUNT", "s", "1", "2", "BIT", "x"), ("BITCOUNT", "nokey", "a", "b"),
        ("BITPOS", "s", "0"), ("BITPOS", "s", "1"), ("BITPOS", "s", "1", "2"),
        ("BITPOS", "s", "0", "1", "-1"), ("BITPOS", "s", "1", "7", "15", "BIT"),
        ("BITPOS", "s", "0", "0", "-1", "BIT"), ("BITPOS", "s", "1", "36", "39", "bit"),
        ("BITPOS", "s", "2"), ("BITPOS", "s", "x"), ("BITPOS", "s", "1", "x"),
        ("BITPOS", "s", "1", "0", "1", "FOO"), ("BITPOS", "s", "1", "0", "1", "BIT", "x"),
        ("BITPOS", "nokey", "0"), ("BITPOS", "nokey", "1"), ("BITPOS", "nokey", "1", "x"),
        ("SET", "ff", b"\xff\xff"), ("BITPOS", "ff", "0"), ("BITPOS", "ff", "0", "0", "-1"),
        ("BITPOS", "ff", "0", "0"), ("SET", "e", ""), ("BITPOS", "e", "0"), ("BITCOUNT", "e"),
        ("RPUSH", "l", "x"), ("BITCOUNT", "l"), ("BITPOS", "l", "1"), ("BITPOS", "l", "3"),
    ])


def test_bitop(diff):
    run_script(diff, [
        ("SET", "a", b"\x0f\xf0abc"), ("SET", "b", b"\xff\x00"), ("SET", "c", b"x"),
        ("BITOP", "AND", "d", "a", "b", "c"), ("GET", "d"),
        ("BITOP", "or", "d", "a", "b", "nokey"), ("GET", "d"),
        ("BITOP", "XOR", "d", "a", "b"), ("GET", "d"),
        ("BITOP", "NOT", "d", "a"), ("GET", "d"),
        ("BITOP", "NOT", "d", "a", "b"), ("BITOP", "NAND", "d", "a"),
        ("SET", "d", "x"), ("EXPIRE", "d", "100"), ("BITOP", "AND", "d", "n1", "n2"), ("EXISTS", "d"),
        ("RPUSH", "l", "x"), ("BITOP", "AND", "d", "a", "l"), ("BITOP", "AND", "l", "a"),
        ("TYPE", "l"), ("SET", "x", "1"), ("EXPIRE", "x", "100"), ("BITOP", "OR", "x", "a"),
        ("TTL", "x"),
    ])


def test_bitfield(diff):
    run_script(diff, [
        ("BITFIELD", "f", "SET", "i8", "0", "100", "GET", "i8", "0", "INCRBY", "i8", "0", "100"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "100", "INCRBY", "i8", "0", "-1000"),
        ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u4", "#1", "100", "GET", "u4", "#1"),
        ("BITFIELD", "f", "SET", "u63", "1", "9223372036854775807", "GET", "u63", "1"),
        ("BITFIELD", "f", "SET", "i64", "5", "-9223372036854775808", "INCRBY", "i64", "5", "-1"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i64", "5", "-1", "INCRBY", "u63", "1", "1"),
        ("BITFIELD", "f", "SET", "u8", "0", "-1", "SET", "i4", "0", "300"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "SET", "i8", "0", "-9223372036854775808"),
        ("GET", "f"),
        ("BITFIELD", "f"), ("BITFIELD", "nokey"), ("EXISTS", "nokey"),
        ("BITFIELD", "f", "GET", "u64", "0"), ("BITFIELD", "f", "GET", "i65", "0"),
        ("BITFIELD", "f", "GET", "i0", "0"), ("BITFIELD", "f", "GET", "x8", "0"),
        ("BITFIELD", "f", "GET", "i8", "-1"), ("BITFIELD", "f", "GET", "i8", "#-1"),
        ("BITFIELD", "f", "GET", "i8"), ("BITFIELD", "f", "SET", "i8", "0"),
        ("BITFIELD", "f", "SET", "i8", "0", "x"), ("BITFIELD", "f", "OVERFLOW", "X"),
        ("BITFIELD", "f", "OVERFLOW"), ("BITFIELD", "f", "FOO", "i8", "0"),
        ("BITFIELD", "f", "GET", "u8", "4294967296"), ("BITFIELD", "f", "GET", "i8", "#9999999999999"),
        ("BITFIELD_RO", "f", "GET", "u8", "0", "GET", "i5", "3"),
        ("BITFIELD_RO", "f", "SET", "u8", "0", "1"), ("BITFIELD_RO", "f", "INCRBY", "u8", "0", "1"),
        ("BITFIELD_RO", "nokey", "GET", "u8", "0"),
        ("BITFIELD", "g", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5"), ("GET", "g"),
        ("RPUSH", "l", "x"), ("BITFIELD", "l", "GET", "u8", "0"), ("BITFIELD", "l", "SET", "u8", "0", "1"),
        ("BITFIELD_RO", "l", "GET", "u8", "0"),
    ])
    switch_to_resp3(diff)
    diff("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9", "GET", "u2", "0")


def _rand_cmd(rnd: random.Random, keys):
    k = rnd.choice(keys)
    off = str(rnd.choice([rnd.randrange(64), rnd.randrange(2000)]))
    t = rnd.choice(["i", "u"]) + str(rnd.randint(1, 63))
    val = str(rnd.choice([rnd.randint(-300, 300), rnd.randint(-(2**63), 2**63 - 1)]))
    ow = rnd.choice(["WRAP", "SAT", "FAIL"])
    pick = rnd.randrange(9)
    if pick == 0:
        return ("SETBIT", k, off, str(rnd.randint(0, 1)))
    if pick == 1:
        return ("GETBIT", k, off)
    if pick == 2:
        a, b = rnd.randint(-40, 40), rnd.randint(-40, 40)
        return ("BITCOUNT", k, str(a), str(b)) + (rnd.choice([(), ("BIT",), ("BYTE",)]))
    if pick == 3:
        a, b = rnd.randint(-300, 300), rnd.randint(-300, 300)
        args = rnd.choice([(), (str(a),), (str(a), str(b)), (str(a), str(b), "BIT")])
        return ("BITPOS", k, str(rnd.randint(0, 1))) + args
    if pick == 4:
        return ("BITOP", rnd.choice(["AND", "OR", "XOR"]), rnd.choice(keys), k, rnd.choice(keys))
    if pick == 5:
        return ("BITOP", "NOT", rnd.choice(keys), k)
    if pick == 6:
        return ("BITFIELD", k, "OVERFLOW", ow, rnd.choice(["SET", "INCRBY"]), t, off, val, "GET", t, off)
    if pick == 7:
        return ("BITFIELD_RO", k, "GET", t, rnd.choice([off, "#" + str(rnd.randrange(30))]))
    return ("GET", k)


def test_random_bitmap_sequences(diff):
    rnd = random.Random(1607)
    keys = ["k1", "k2", "k3", "k4"]
    for _ in range(1500):
        diff(*_rand_cmd(rnd, keys))
    for k in keys:
        diff("GET", k)
