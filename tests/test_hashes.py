"""Differential tests: hash commands, frtrio vs redis-server 7.0.

Small hashes (a listpack in Redis) iterate in insertion order in both
servers, so HGETALL/HKEYS/HSCAN replies are compared as bytes; for hashes
Redis holds as a hash table only the contents are compared."""

import pytest

from support import parse_reply, run_script, switch_to_resp3

run = run_script
resp3 = switch_to_resp3
parse = parse_reply


def test_set_get(diff):
    run(diff, [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "3", "c", "4"),
        ("HGETALL", "h"), ("HSET", "h", "x"), ("HSET", "h"), ("HMSET", "h", "x"),
        ("HMSET", "h", "d", "5", "e", "6"), ("HSETNX", "h", "d", "7"), ("HSETNX", "h", "f", "7"),
        ("HSETNX", "h2", "f", "7"), ("HSETNX", "h2", "f"), ("HGETALL", "h2"),
        ("HGET", "h", "a"), ("HGET", "h", "zz"), ("HGET", "missing", "a"),
        ("HMGET", "h", "a", "zz", "b"), ("HMGET", "missing", "a", "b"), ("HMGET", "h"),
        ("HLEN", "h"), ("HLEN", "missing"), ("HSTRLEN", "h", "c"), ("HSTRLEN", "h", "zz"),
        ("HSTRLEN", "missing", "zz"), ("HEXISTS", "h", "c"), ("HEXISTS", "h", "zz"),
        ("HEXISTS", "missing", "c"), ("HKEYS", "h"), ("HVALS", "h"), ("HGETALL", "h"),
        ("HKEYS", "missing"), ("HVALS", "missing"), ("HGETALL", "missing"),
        ("HSET", "h", "", ""), ("HGET", "h", ""), ("HSTRLEN", "h", ""),
        ("HDEL", "h", "a", "zz", "b"), ("HDEL", "h", "zz"), ("HDEL", "missing", "a"),
        ("HGETALL", "h"), ("HDEL", "h", "c", "d", "e", "f", "", "g"), ("EXISTS", "h"),
        ("HDEL", "h"),
    ])


def test_wrongtype(diff):
    diff("SET", "s", "str")
    diff("RPUSH", "l", "x")
    for k in ("s", "l"):
        for cmd in [
            ("HSET", k, "a", "1"), ("HMSET", k, "a", "1"), ("HSETNX", k, "a", "1"),
            ("HGET", k, "a"), ("HMGET", k, "a"), ("HDEL", k, "a"), ("HLEN", k),
            ("HSTRLEN", k, "a"), ("HEXISTS", k, "a"), ("HKEYS", k), ("HVALS", k),
            ("HGETALL", k), ("HINCRBY", k, "a", "1"), ("HINCRBY", k, "a", "x"),
            ("HINCRBYFLOAT", k, "a", "1"), ("HINCRBYFLOAT", k, "a", "x"),
            ("HINCRBYFLOAT", k, "a", "inf"), ("HRANDFIELD", k), ("HRANDFIELD", k, "0"),
            ("HRANDFIELD", k, "2", "WITHVALUES"), ("HRANDFIELD", k, "2", "x"),
            ("HSCAN", k, "0"), ("HSCAN", k, "x"), ("HSET", k, "a"),
        ]:
            diff(*cmd)


def test_hincrby(diff):
    run(diff, [
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-10"), ("HINCRBY", "h", "n", "abc"),
        ("HINCRBY", "h", "n", "1.5"), ("HINCRBY", "h", "n", "9223372036854775808"),
        ("HINCRBY", "h", "n", ""), ("HINCRBY", "h", "n", " 1"),
        ("HSET", "h", "big", "9223372036854775807"), ("HINCRBY", "h", "big", "1"),
        ("HINCRBY", "h", "big", "0"), ("HINCRBY", "h", "big", "-9223372036854775808"),
        ("HSET", "h", "neg", "-9223372036854775808"), ("HINCRBY", "h", "neg", "-1"),
        ("HINCRBY", "h", "neg", "9223372036854775807"),
        ("HSET", "h", "str", "abc"), ("HINCRBY", "h", "str", "1"),
        ("HSET", "h", "sp", " 1"), ("HINCRBY", "h", "sp", "1"),
        ("HSET", "h", "z", "01"), ("HINCRBY", "h", "z", "1"),
        ("HSET", "h", "f", "1.0"), ("HINCRBY", "h", "f", "1"),
        ("HINCRBY", "newh", "n", "abc"), ("EXISTS", "newh"), ("HGETALL", "h"),
    ])


def test_hincrbyfloat(diff):
    """Redis computes in long double and prints with %.17Lf: 0.1 + 0.2 is
    0.3 there, and huge or tiny values print in full."""
    run(diff, [
        ("HINCRBYFLOAT", "h", "f", "0.1"), ("HINCRBYFLOAT", "h", "f", "0.2"),
        ("HINCRBYFLOAT", "h", "f", "-0.3"), ("HINCRBYFLOAT", "h", "f", "1e308"),
        ("HINCRBYFLOAT", "h", "f", "-1e308"),
        ("HINCRBYFLOAT", "h", "g", "1.5e3"), ("HINCRBYFLOAT", "h", "g", "abc"),
        ("HINCRBYFLOAT", "h", "g", "inf"), ("HINCRBYFLOAT", "h", "g", "-inf"),
        ("HINCRBYFLOAT", "h", "g", "+Infinity"), ("HINCRBYFLOAT", "h", "g", "nan"),
        ("HINCRBYFLOAT", "h", "g", " 1"), ("HINCRBYFLOAT", "h", "g", "1 "),
        ("HINCRBYFLOAT", "h", "g", ""), ("HINCRBYFLOAT", "h", "g", "1_0"),
        ("HINCRBYFLOAT", "h", "g", "0x10"), ("HINCRBYFLOAT", "h", "g", "0x1.8p1"),
        ("HINCRBYFLOAT", "h", "g", "3.14159265358979323846"),
        ("HINCRBYFLOAT", "h", "g", "1e-20"), ("HINCRBYFLOAT", "h", "g", "-1e-20"),
        ("HINCRBYFLOAT", "h", "g", "1e5000"), ("HINCRBYFLOAT", "h", "g", "1e-5000"),
        ("HINCRBYFLOAT", "h", "g", ".5"), ("HINCRBYFLOAT", "h", "g", "5."),
        ("HINCRBYFLOAT", "h", "g", "-.5e1"), ("HINCRBYFLOAT", "h", "g", "1e"),
        ("HSET", "h", "inf", "inf"), ("HINCRBYFLOAT", "h", "inf", "1"),
        ("HSET", "h", "hex", "0x1p-2"), ("HINCRBYFLOAT", "h", "hex", "1"),
        ("HSET", "h", "ws", "1 "), ("HINCRBYFLOAT", "h", "ws", "1"),
        ("HSET", "h", "int", "12345678901234567"), ("HINCRBYFLOAT", "h", "int", "1"),
        ("HINCRBYFLOAT", "h", "new", "5"), ("HINCRBYFLOAT", "h", "new", "0.00000000000000001"),
        ("HINCRBYFLOAT", "h", "new", "0.000000000000000005"),
        ("HINCRBYFLOAT", "h", "new", "0.000000000000000004"),
        ("HINCRBYFLOAT", "h", "small", "1e-18"), ("HINCRBYFLOAT", "h", "small2", "-1e-18"),
        ("HINCRBYFLOAT", "h", "neg", "-2.5"), ("HINCRBYFLOAT", "h", "neg", "2.5"),
        ("HINCRBYFLOAT", "h", "m", "10.5"), ("HINCRBYFLOAT", "h", "m", "-0.1"),
        ("HINCRBYFLOAT", "h", "m", "1.23456789012345678e10"),
        ("HINCRBYFLOAT", "newh", "f", "inf"), ("EXISTS", "newh"),
        ("HINCRBYFLOAT", "h2", "f", "1e4000"), ("HGET", "h2", "f"),
        ("HINCRBYFLOAT", "h2", "f", "-1e4000"),
        ("HINCRBYFLOAT", "h3", "f", "1e4932"), ("HINCRBYFLOAT", "h3", "f", "1e4932"),
        ("HINCRBYFLOAT", "h4", "f", "1e-4940"), ("HGET", "h4", "f"),
    ])
    # long values made "h" a hash table in Redis: compare contents only
    fa, ra = diff.both("HGETALL", "h")
    fa, ra = parse(fa), parse(ra)
    assert dict(zip(fa[::2], fa[1::2])) == dict(zip(ra[::2], ra[1::2]))
    acc = "0"
    for step in ["0.1"] * 12 + ["-0.7", "1.1", "2.2", "3.3", "1e-3", "7e15", "0.5"]:
        diff("HINCRBYFLOAT", "acc", "f", step)
    diff("HGET", "acc", "f")
    del acc


def test_hrandfield(diff):
    run(diff, [
        ("HRANDFIELD", "missing"), ("HRANDFIELD", "missing", "5"), ("HRANDFIELD", "missing", "0"),
        ("HRANDFIELD", "missing", "-5"), ("HRANDFIELD", "missing", "5", "WITHVALUES"),
        ("HSET", "h", "a", "1", "b", "2", "c", "3"),
        ("HRANDFIELD", "h", "0"), ("HRANDFIELD", "h", "abc"), ("HRANDFIELD", "h", "1.5"),
        ("HRANDFIELD", "h", "-9223372036854775808"), ("HRANDFIELD", "h", "9223372036854775808"),
        ("HRANDFIELD", "h", "5", "withvalue"), ("HRANDFIELD", "h", "5", "WITHVALUES", "x"),
        ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "0", "WITHVALUES"),
        # count >= size: the whole hash, in order
        ("HRANDFIELD", "h", "3"), ("HRANDFIELD", "h", "1000"),
        ("HRANDFIELD", "h", "1000", "withvalues"),
        ("HRANDFIELD", "missing", "abc"), ("HRANDFIELD", "missing", "5", "x"),
    ])
    resp3(diff)
    run(diff, [
        ("HRANDFIELD", "h", "1000", "WITHVALUES"), ("HRANDFIELD", "missing", "3", "WITHVALUES"),
        ("HRANDFIELD", "missing"), ("HRANDFIELD", "h", "0"),
    ])


def test_hrandfield_random_shapes(diff):
    fields = {f"f{i}": f"v{i}" for i in range(20)}
    args = [x for kv in fields.items() for x in kv]
    diff("HSET", "h", *args)
    for resp in (2, 3):
        if resp == 3:
            resp3(diff)
        for conn in (diff.f, diff.r):
            one = parse(conn.cmd("HRANDFIELD", "h")).decode()
            assert one in fields
            for n in (1, 5, 19):
                got = parse(conn.cmd("HRANDFIELD", "h", n))
                assert len(got) == n and len(set(got)) == n
                assert all(x.decode() in fields for x in got)
            got = parse(conn.cmd("HRANDFIELD", "h", -50))
            assert len(got) == 50 and all(x.decode() in fields for x in got)
            got = parse(conn.cmd("HRANDFIELD", "h", 7, "WITHVALUES"))
            pairs = got if resp == 3 else [got[i : i + 2] for i in range(0, len(got), 2)]
            assert len(pairs) == 7 and len({p[0] for p in pairs}) == 7
            assert all(fields[p[0].decode()] == p[1].decode() for p in pairs)
            got = parse(conn.cmd("HRANDFIELD", "h", -30, "WITHVALUES"))
            pairs = got if resp == 3 else [got[i : i + 2] for i in range(0, len(got), 2)]
            assert len(pairs) == 30
            assert all(fields[p[0].decode()] == p[1].decode() for p in pairs)


def test_hscan_small(diff):
    diff("HSET", "h", "a", "1", "b", "2", "c", "3", "ab", "4")
    for args in [
        ("0",), ("0", "COUNT", "1"), ("0", "MATCH", "a*"), ("0", "match", "*b", "count", "100"),
        ("5",), ("-1",), ("",), ("+3",), ("-",), ("18446744073709551615",),
        ("18446744073709551616",), ("abc",), (" 1",), ("1 ",), ("0", "COUNT", "0"),
        ("0", "COUNT", "-1"), ("0", "COUNT", "abc"), ("0", "TYPE", "string"), ("0", "FOO"),
        ("0", "MATCH"), ("0", "COUNT"),
    ]:
        diff("HSCAN", "h", *args)
        diff("HSCAN", "missing", *args)


def test_hscan_big_hash_returns_everything(diff):
    """A hash Redis holds as a hash table is walked with a cursor; replies
    differ in order, but a full iteration returns every field once (here the
    hash is also modified during the iteration)."""
    n = 700
    args = [x for i in range(n) for x in (f"field:{i}", str(i))]
    diff("HSET", "h", *args)
    for conn in (diff.f, diff.r):
        seen = {}
        cursor = b"0"
        calls = 0
        while True:
            cursor, items = parse(conn.cmd("HSCAN", "h", cursor, "COUNT", "50"))
            calls += 1
            for i in range(0, len(items), 2):
                seen[items[i]] = items[i + 1]
            if calls == 3:
                conn.cmd("HDEL", "h", "field:699")
                conn.cmd("HSET", "h", "extra", "x")
            if cursor == b"0":
                break
        assert calls > 3
        for i in range(699):
            assert seen[f"field:{i}".encode()] == str(i).encode()
        assert len(seen) <= n + 1
    run(diff, [("HLEN", "h"), ("HGET", "h", "extra"), ("HEXISTS", "h", "field:699")])


def test_long_values_use_hashtable_order(diff):
    # a value over hash-max-listpack-value: contents equal, order may differ
    diff("HSET", "h", "a", "x" * 100, "b", "1")
    fa, ra = diff.both("HGETALL", "h")
    assert sorted(parse(fa)) == sorted(parse(ra))
    diff("HLEN", "h")
    diff("HGET", "h", "a")


def test_resp3(diff):
    resp3(diff)
    run(diff, [
        ("HSET", "h", "a", "1", "b", "2"), ("HGETALL", "h"), ("HGETALL", "missing"),
        ("HMGET", "h", "a", "zz"), ("HMGET", "missing", "a"), ("HGET", "missing", "a"),
        ("HKEYS", "h"), ("HVALS", "missing"), ("HSCAN", "h", "0"), ("HSCAN", "missing", "0"),
        ("HINCRBYFLOAT", "h", "f", "1.5"),
    ])


@pytest.mark.parametrize("cmd", [("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h")])
def test_listpack_order_after_updates(diff, cmd):
    run(diff, [
        ("HSET", "h", "z", "1", "y", "2", "x", "3"), ("HSET", "h", "y", "20"),
        ("HDEL", "h", "z"), ("HSET", "h", "z", "100"), ("HINCRBY", "h", "x", "5"),
        ("HSETNX", "h", "w", "0"), cmd,
    ])


@pytest.mark.parametrize("seed", range(4))
def test_random_small_hash_ops(diff, seed):
    """Small hashes are listpacks in Redis (insertion order): every reply
    must match byte for byte."""
    import random

    from support import encode_request

    rnd = random.Random(seed)
    keys = ["a", "b"]
    fields = ["f1", "f2", "f3", "f4", "f5", "n"]

    def val():
        return rnd.choice(["1", "-7", "2.5", "x", "", "10"])

    gens = [
        lambda: ("HSET", rnd.choice(keys), *[x for _ in range(rnd.randint(1, 3))
                                             for x in (rnd.choice(fields), val())]),
        lambda: ("HSETNX", rnd.choice(keys), rnd.choice(fields), val()),
        lambda: ("HDEL", rnd.choice(keys), *rnd.sample(fields, 2)),
        lambda: ("HGET", rnd.choice(keys), rnd.choice(fields)),
        lambda: ("HMGET", rnd.choice(keys), *rnd.sample(fields, 3)),
        lambda: ("HGETALL", rnd.choice(keys)),
        lambda: ("HKEYS", rnd.choice(keys)),
        lambda: ("HVALS", rnd.choice(keys)),
        lambda: ("HLEN", rnd.choice(keys)),
        lambda: ("HSTRLEN", rnd.choice(keys), rnd.choice(fields)),
        lambda: ("HEXISTS", rnd.choice(keys), rnd.choice(fields)),
        lambda: ("HINCRBY", rnd.choice(keys), rnd.choice(fields), str(rnd.randint(-5, 5))),
        lambda: ("HINCRBYFLOAT", rnd.choice(keys), rnd.choice(fields),
                 rnd.choice(["0.1", "-0.25", "3", "1e3", "0.3"])),
        lambda: ("HSCAN", rnd.choice(keys), "0", "MATCH", "f*"),
        lambda: ("HRANDFIELD", rnd.choice(keys), "100", "WITHVALUES"),
    ]
    cmds = [rnd.choice(gens)() for _ in range(400)]
    cmds += [("HGETALL", k) for k in keys]
    req = b"".join(encode_request(c) for c in cmds)
    outs = []
    for conn in (diff.f, diff.r):
        conn.send(req)
        outs.append([conn.read_reply() for _ in cmds])
    for cmd, a, b in zip(cmds, *outs):
        assert a == b, (cmd, a, b)
