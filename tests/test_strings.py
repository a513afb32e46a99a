"""Differential tests: string commands, frtrio vs redis-server 7.0.15.

Every ``diff(...)`` call sends the same command to both servers and asserts
the reply bytes are equal. Expiry uses long TTLs (checked with TTL, which
rounds to seconds) or a few tens of milliseconds plus a short sleep.
"""

import random
import re
import time

import pytest

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"


def _hello(diff, proto):
    """Switch both connections to RESP ``proto``; the replies may differ
    only in the client id."""
    a, b = diff.both("HELLO", str(proto))
    mask = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")
    assert mask.sub(b"ID", a) == mask.sub(b"ID", b)


def _wrongtype_key(diff, key="lst"):
    assert diff("RPUSH", key, "x") == b":1\r\n"
    return key


# --- GET / SET ------------------------------------------------------------------


def test_get_set_basics(diff):
    diff("SET", "k", "v")
    diff("GET", "k")
    diff("GET", "missing")
    diff("SET", "k", "")
    diff("GET", "k")
    diff("SET", b"\x00bin\xff\r\n", b"\x00\x01\x02\r\n")
    diff("GET", b"\x00bin\xff\r\n")
    diff("SET", "big", "x" * 100000)
    diff("GET", "big")
    diff("SET", "n", "12345")  # an int-encoded value in Redis
    diff("GET", "n")
    diff("APPEND", "n", "6")
    diff("GET", "n")


def test_get_set_arity_and_wrongtype(diff):
    diff("GET")
    diff("GET", "a", "b")
    diff("SET", "k")
    diff("SET")
    _wrongtype_key(diff)
    diff("GET", "lst")
    diff("SET", "lst", "v", "GET")
    diff("SET", "lst", "v", "NX", "GET")
    diff("SET", "lst", "v", "XX", "GET")
    diff("TYPE", "lst")
    diff("SET", "lst", "v")  # SET overwrites any type
    diff("TYPE", "lst")
    diff("GET", "lst")


def test_set_options(diff):
    diff("SET", "k", "v", "NX")
    diff("SET", "k", "v2", "NX")
    diff("GET", "k")
    diff("SET", "k", "v3", "XX")
    diff("SET", "nokey", "v", "XX")
    diff("EXISTS", "nokey")
    diff("SET", "k", "v4", "GET")
    diff("SET", "new", "v", "GET")
    diff("SET", "k", "v5", "NX", "GET")
    diff("SET", "new2", "v", "XX", "GET")
    diff("EXISTS", "new2")
    diff("SET", "new3", "v", "NX", "GET")
    diff("GET", "new3")
    diff("SET", "k", "v6", "XX", "GET")
    diff("SET", "k", "v", "nx", "nx")  # repeating an option is fine
    diff("SET", "k", "v", "xx", "xx", "get", "get")
    diff("SET", "k", "v", "KEEPTTL", "KEEPTTL")


def test_set_option_errors(diff):
    diff("SET", "k", "v", "NX", "XX")
    diff("SET", "k", "v", "XX", "NX")
    diff("SET", "k", "v", "EX")
    diff("SET", "k", "v", "PX")
    diff("SET", "k", "v", "EX", "10", "PX", "10")
    diff("SET", "k", "v", "PX", "10", "EXAT", "10")
    diff("SET", "k", "v", "EX", "10", "KEEPTTL")
    diff("SET", "k", "v", "KEEPTTL", "EX", "10")
    diff("SET", "k", "v", "KEEPTTL", "PXAT", "10")
    diff("SET", "k", "v", "foo")
    diff("SET", "k", "v", "PERSIST")
    diff("SET", "k", "v", "EX", "10", "foo")
    diff("SET", "k", "v", b"N")
    diff("SET", "k", "v", b"NXX")
    diff("EXISTS", "k")


def test_set_option_words_are_c_strings(diff):
    # Redis compares options as C strings: they end at a NUL byte
    diff("SET", "k", "v", b"NX\x00junk")
    diff("SET", "k", "v2", b"xx\x00")
    diff("GET", "k")
    diff("SET", "k", "v", b"EX\x00", "100")
    diff("TTL", "k")


def test_set_expire_values(diff):
    diff("SET", "k", "v", "EX", "100")
    diff("TTL", "k")
    diff("SET", "k", "v", "EX", "100", "EX", "200")  # the same option twice: last wins
    diff("TTL", "k")
    diff("SET", "k", "v", "PX", "100000", "PX", "300000")
    diff("TTL", "k")
    diff("SET", "k", "v", "EXAT", "4102444800")
    diff("EXPIRETIME", "k")
    diff("SET", "k", "v", "PXAT", "4102444800123")
    diff("PEXPIRETIME", "k")
    diff("SET", "k", "v")  # a plain SET clears the TTL
    diff("TTL", "k")
    diff("SET", "k", "v", "EX", "100")
    diff("SET", "k", "v2", "KEEPTTL")
    diff("TTL", "k")
    diff("SET", "k", "v3", "KEEPTTL", "GET")
    diff("TTL", "k")
    for opt in ("EX", "PX", "EXAT", "PXAT"):
        for bad in ("0", "-1", "abc", "1.5", "", " 1", "9223372036854775808",
                    "-9223372036854775808"):
            diff("SET", "k", "v", opt, bad)
    diff("SET", "k", "v", "EX", "9223372036854775807")
    diff("SET", "k", "v", "EX", "9223372036854775")  # * 1000 + now overflows
    diff("SET", "k", "v", "EX", "9223372036854776")
    diff("SET", "k", "v", "EXAT", "9223372036854775")
    diff("SET", "k", "v", "EXAT", "9223372036854776")
    diff("SET", "k", "v", "PX", "9223372036854775807")
    diff("SET", "k", "v", "PXAT", "9223372036854775807")
    diff("PEXPIRETIME", "k")
    diff("GET", "k")


def test_set_expire_error_before_get_and_wrongtype(diff):
    _wrongtype_key(diff)
    diff("SET", "lst", "v", "GET", "EX", "0")  # the expire is checked first
    diff("SET", "lst", "v", "GET", "EX", "10")
    diff("TYPE", "lst")


def test_set_past_absolute_time_expires(diff):
    diff("SET", "k", "v", "EXAT", "1")
    diff("GET", "k")
    diff("EXISTS", "k")
    diff("SET", "k", "v", "PXAT", "1", "GET")
    diff("EXISTS", "k")


def test_short_expiry(diff):
    diff("SET", "k", "v", "PX", "30")
    diff("PSETEX", "k2", "30", "v")
    diff("SET", "k3", "v")
    diff("GETEX", "k3", "PX", "30")
    time.sleep(0.1)
    diff("GET", "k")
    diff("GET", "k2")
    diff("GET", "k3")
    diff("EXISTS", "k", "k2", "k3")


# --- SETNX / SETEX / PSETEX -------------------------------------------------------


def test_setnx_setex_psetex(diff):
    diff("SETNX", "k", "v")
    diff("SETNX", "k", "v2")
    diff("GET", "k")
    diff("SETNX", "k")
    diff("SETNX", "k", "v", "x")
    _wrongtype_key(diff)
    diff("SETNX", "lst", "v")
    diff("SETEX", "k", "100", "v")
    diff("TTL", "k")
    diff("SETEX", "lst", "100", "v")  # overwrites any type
    diff("TYPE", "lst")
    diff("PSETEX", "k", "100000", "v")
    diff("TTL", "k")
    for cmd in ("SETEX", "PSETEX"):
        for bad in ("0", "-1", "abc", "1.5", "", "9223372036854775807",
                    "9223372036854775", "-9223372036854775808", "9223372036854775808"):
            diff(cmd, "k", bad, "v")
        diff(cmd, "k", "10")
        diff(cmd, "k")
    diff("GET", "k")


# --- MGET / MSET / MSETNX ------------------------------------------------------------


def test_mget_mset(diff):
    diff("MSET", "a", "1", "b", "2", "c", "3")
    diff("MGET", "a", "b", "c", "missing", "a")
    _wrongtype_key(diff)
    diff("MGET", "a", "lst", "b")  # other types read as nil
    diff("MSET", "a")
    diff("MSET", "a", "1", "b")
    diff("MSET")
    diff("MGET")
    diff("MSET", "a", "x", "a", "y")  # the last one wins
    diff("GET", "a")
    diff("MSET", "lst", "now-a-string")
    diff("TYPE", "lst")
    diff("SET", "t", "v", "EX", "100")
    diff("MSET", "t", "v2")  # MSET clears TTLs
    diff("TTL", "t")


def test_msetnx(diff):
    diff("MSETNX", "a", "1", "b", "2")
    diff("MSETNX", "a", "x", "c", "3")
    diff("MGET", "a", "b", "c")
    diff("MSETNX", "c", "3", "d", "4")
    diff("MGET", "c", "d")
    diff("MSETNX", "a")
    diff("MSETNX", "e", "1", "f")
    diff("MSETNX")
    _wrongtype_key(diff)
    diff("MSETNX", "lst", "1", "z", "2")
    diff("EXISTS", "z")
    diff("MSETNX", "y", "1", "y", "2")
    diff("GET", "y")


# --- GETSET / GETDEL / GETEX -----------------------------------------------------------


def test_getset_getdel(diff):
    diff("GETSET", "k", "v1")
    diff("GETSET", "k", "v2")
    diff("GET", "k")
    diff("SET", "t", "v", "EX", "100")
    diff("GETSET", "t", "w")  # clears the TTL
    diff("TTL", "t")
    diff("GETSET", "k")
    diff("GETDEL", "k")
    diff("GETDEL", "k")
    diff("EXISTS", "k")
    diff("GETDEL")
    diff("GETDEL", "a", "b")
    _wrongtype_key(diff)
    diff("GETSET", "lst", "v")
    diff("GETDEL", "lst")
    diff("TYPE", "lst")


def test_getex(diff):
    diff("SET", "k", "v")
    diff("GETEX", "k")
    diff("GETEX", "k", "EX", "100")
    diff("TTL", "k")
    diff("GETEX", "k", "PX", "200000")
    diff("TTL", "k")
    diff("GETEX", "k", "EXAT", "4102444800")
    diff("EXPIRETIME", "k")
    diff("GETEX", "k", "PXAT", "4102444800123")
    diff("PEXPIRETIME", "k")
    diff("GETEX", "k", "PERSIST")
    diff("TTL", "k")
    diff("GETEX", "k", "PERSIST", "PERSIST")
    diff("GETEX", "k", "EX", "100", "EX", "200")
    diff("TTL", "k")
    diff("GETEX", "k", "EXAT", "1")  # in the past: the key is deleted
    diff("EXISTS", "k")
    diff("SET", "k", "v")
    diff("GETEX", "k", "PXAT", "1")
    diff("EXISTS", "k")


def test_getex_errors(diff):
    diff("GETEX")
    diff("SET", "k", "v")
    for args in (("EX",), ("EX", "10", "PX", "10"), ("PERSIST", "EX", "10"),
                 ("EX", "10", "PERSIST"), ("NX",), ("XX",), ("GET",), ("KEEPTTL",),
                 ("foo",), ("EX", "10", "foo"), ("PXAT",), ("persist", "x")):
        diff("GETEX", "k", *args)
        diff("GETEX", "missing", *args)
    for opt in ("EX", "PX", "EXAT", "PXAT"):
        for bad in ("0", "-1", "abc", "9223372036854775807"):
            diff("GETEX", "k", opt, bad)
            diff("GETEX", "missing", opt, bad)  # a missing key answers nil first
    _wrongtype_key(diff)
    diff("GETEX", "lst")
    diff("GETEX", "lst", "EX", "0")
    diff("GETEX", "lst", "foo")
    diff("TTL", "k")


# --- APPEND / STRLEN / GETRANGE / SETRANGE ----------------------------------------------


def test_append_strlen(diff):
    diff("APPEND", "k", "hello")
    diff("APPEND", "k", " world")
    diff("APPEND", "k", "")
    diff("GET", "k")
    diff("STRLEN", "k")
    diff("STRLEN", "missing")
    diff("APPEND", "e", "")
    diff("EXISTS", "e")
    diff("STRLEN", "e")
    diff("SET", "t", "v", "EX", "100")
    diff("APPEND", "t", "x")  # keeps the TTL
    diff("TTL", "t")
    diff("APPEND", "k")
    diff("STRLEN")
    diff("STRLEN", "a", "b")
    _wrongtype_key(diff)
    diff("APPEND", "lst", "x")
    diff("STRLEN", "lst")


def test_getrange(diff):
    diff("SET", "s", "Hello World")
    for start, end in ((0, 4), (-5, -1), (-1, -5), (5, 2), (0, 100), (100, 200),
                       (-100, -50), (-100, 2), (0, -100), (0, -1), (-1, -1), (10, 10),
                       (11, 11), (0, 0), ("9223372036854775807", "9223372036854775807"),
                       ("-9223372036854775808", "9223372036854775807"),
                       ("-9223372036854775808", "-9223372036854775808")):
        diff("GETRANGE", "s", str(start), str(end))
        diff("SUBSTR", "s", str(start), str(end))
    diff("GETRANGE", "missing", "0", "-1")
    diff("GETRANGE", "missing", "a", "b")
    diff("GETRANGE", "s", "a", "1")
    diff("GETRANGE", "s", "1", "b")
    diff("GETRANGE", "s", "1.5", "2")
    diff("GETRANGE", "s", "9223372036854775808", "2")
    diff("SET", "e", "")
    diff("GETRANGE", "e", "0", "-1")
    diff("GETRANGE", "e", "0", "0")
    diff("GETRANGE", "e", "-1", "0")
    diff("SET", "n", "1234567")
    diff("GETRANGE", "n", "2", "-2")
    diff("GETRANGE", "s", "0")
    diff("SUBSTR", "s")
    _wrongtype_key(diff)
    diff("GETRANGE", "lst", "0", "-1")
    diff("GETRANGE", "lst", "x", "-1")


def test_setrange(diff):
    diff("SET", "s", "Hello World")
    diff("SETRANGE", "s", "6", "Redis")
    diff("GET", "s")
    diff("SETRANGE", "s", "20", "x")  # pads with NUL bytes
    diff("GET", "s")
    diff("SETRANGE", "s", "0", "")
    diff("SETRANGE", "s", "100", "")  # nothing to write: the length
    diff("STRLEN", "s")
    diff("SETRANGE", "new", "0", "")
    diff("EXISTS", "new")
    diff("SETRANGE", "new", "3", "ab")
    diff("GET", "new")
    diff("SETRANGE", "s", "-1", "x")
    diff("SETRANGE", "s", "abc", "x")
    diff("SETRANGE", "s", "1.5", "x")
    diff("SETRANGE", "s", "9223372036854775807", "x")
    diff("SETRANGE", "s", "9223372036854775808", "x")
    diff("SETRANGE", "big", "536870912", "x")
    diff("SETRANGE", "big", "536870911", "xy")
    diff("SETRANGE", "big", "536870911", "")
    diff("SETRANGE", "s", "536870911", "xy")
    diff("SETRANGE", "s", "536870911", "")
    diff("EXISTS", "big")
    diff("SET", "t", "v", "EX", "100")
    diff("SETRANGE", "t", "1", "x")
    diff("TTL", "t")
    diff("SETRANGE", "s", "1")
    _wrongtype_key(diff)
    diff("SETRANGE", "lst", "0", "x")
    diff("SETRANGE", "lst", "0", "")
    diff("SETRANGE", "lst", "-1", "x")


# --- INCR family ----------------------------------------------------------------------


def test_incr_decr(diff):
    diff("INCR", "n")
    diff("INCR", "n")
    diff("DECR", "n")
    diff("DECR", "m")
    diff("INCRBY", "n", "10")
    diff("INCRBY", "n", "-20")
    diff("DECRBY", "n", "5")
    diff("DECRBY", "n", "-5")
    diff("GET", "n")
    diff("SET", "t", "10", "EX", "100")
    diff("INCR", "t")  # keeps the TTL
    diff("TTL", "t")
    diff("INCR")
    diff("INCR", "a", "b")
    diff("INCRBY", "n")
    diff("DECRBY", "n", "1", "2")


def test_incr_not_integer_and_overflow(diff):
    for v in ("abc", " 1", "1 ", "01", "+1", "-0", "1.0", "", "00000000000000000001",
              "9223372036854775808", "-9223372036854775809", "1e3", "0x10",
              "12345678901234567890123"):
        diff("SET", "n", v)
        diff("INCR", "n")
        diff("DECR", "n")
        diff("INCRBY", "n", "1")
        diff("GET", "n")
    diff("SET", "n", "9223372036854775807")
    diff("INCR", "n")
    diff("INCRBY", "n", "1")
    diff("DECRBY", "n", "-1")
    diff("INCRBY", "n", "0")
    diff("INCRBY", "n", "-9223372036854775808")
    diff("SET", "n", "-9223372036854775808")
    diff("DECR", "n")
    diff("INCRBY", "n", "-1")
    diff("INCRBY", "n", "9223372036854775807")
    diff("SET", "n", "5")
    for bad in ("abc", "1.5", "", " 1", "9223372036854775808", "-9223372036854775809"):
        diff("INCRBY", "n", bad)
        diff("DECRBY", "n", bad)
    diff("DECRBY", "n", "-9223372036854775808")  # negating it overflows
    diff("DECRBY", "n", "9223372036854775807")
    diff("DECRBY", "missing", "-9223372036854775808")
    diff("GET", "n")
    _wrongtype_key(diff)
    diff("INCR", "lst")
    diff("INCRBY", "lst", "abc")  # the increment is parsed first
    diff("DECRBY", "lst", "-9223372036854775808")


def test_incrbyfloat(diff):
    diff("INCRBYFLOAT", "f", "1.5")
    diff("INCRBYFLOAT", "f", "0.1")
    diff("INCRBYFLOAT", "f", "-1.6")
    diff("SET", "f", "1.1")
    diff("INCRBYFLOAT", "f", "2.2")  # long double arithmetic: 3.3, not 3.3000000000000003
    diff("SET", "f", "10")
    diff("INCRBYFLOAT", "f", "0.1")
    diff("SET", "f", "5.0e3")
    diff("INCRBYFLOAT", "f", "1")
    diff("SET", "f", "0x10")
    diff("INCRBYFLOAT", "f", "1")
    diff("SET", "f", "3")
    diff("INCRBYFLOAT", "f", "1.000000000000000001")
    for v in ("0", "-0", "1e20", "1e-20", "123456789012345678", "0.30000000000000004",
              "3.0e-5", "10.5000", "+.5e1", ".5", "5.", "0x1p-3", "0X1.8P1",
              "1e300", "1e4900", "-1e4900", "1e-4940", "9999999999999999999999",
              "0.000003814697265625", "-0.000003814697265625", "0.000011444091796875",
              "1.7976931348623157e308"):
        diff("DEL", "g")
        diff("INCRBYFLOAT", "g", v)
        diff("INCRBYFLOAT", "g", v)
    diff("SET", "t", "1", "EX", "100")
    diff("INCRBYFLOAT", "t", "1")
    diff("TTL", "t")


def test_incrbyfloat_errors(diff):
    diff("SET", "f", "1")
    for bad in ("abc", "", " 1", "1 ", "1_0", "nan", "-nan", "nan(123)", ".", "1e", "1e+",
                "0x", "1e5000", "-1e5000", "1e-5000", "--1", "1.5.5", "inf", "-inf",
                "infinity", "+Infinity"):
        diff("INCRBYFLOAT", "f", bad)
    diff("INCRBYFLOAT", "f", b"1\x00junk")  # strtold stops at the NUL
    diff("INCRBYFLOAT", "f", b"\x00")
    diff("GET", "f")
    for stored in ("abc", "1e5000", " 1", "inf", "nan", "1\x00x"):
        diff("SET", "f", stored)
        diff("INCRBYFLOAT", "f", "1")
    diff("SET", "f", "1.18973149535723176502e+4932")  # the largest long double
    diff("INCRBYFLOAT", "f", "1.18973149535723176502e+4932")
    diff("INCRBYFLOAT", "f", "0")
    diff("INCRBYFLOAT")
    diff("INCRBYFLOAT", "f")
    _wrongtype_key(diff)
    diff("INCRBYFLOAT", "lst", "1")
    diff("INCRBYFLOAT", "lst", "abc")


def test_incrbyfloat_random(diff):
    rng = random.Random(7)
    for i in range(300):
        k = "k%d" % (i % 5)
        r = rng.random()
        if r < 0.3:
            v = "%.*f" % (rng.randint(0, 20), rng.uniform(-1e6, 1e6))
        elif r < 0.6:
            v = "%.*e" % (rng.randint(0, 25), rng.uniform(-10, 10) * 10 ** rng.randint(-30, 30))
        elif r < 0.8:
            v = str(rng.randint(-10**25, 10**25))
        else:
            v = "0x%x.%xp%d" % (rng.randint(0, 10**6), rng.randint(0, 10**6), rng.randint(-80, 80))
        diff("INCRBYFLOAT", k, v)


# --- RESP3 ----------------------------------------------------------------------------


def test_resp3_string_replies(diff):
    _hello(diff, 3)
    diff("GET", "missing")
    diff("SET", "k", "v", "NX", "GET")
    diff("SET", "k", "v", "XX", "GET")
    diff("SET", "m", "v", "XX")
    diff("MGET", "k", "missing")
    diff("GETDEL", "missing")
    diff("GETEX", "missing")
    diff("GETSET", "new", "v")
    diff("INCRBYFLOAT", "f", "1.5")
    diff("GETRANGE", "missing", "0", "1")
    diff("SETNX", "k", "v")
    diff("STRLEN", "k")
    diff("SET", "k", "v", "EX", "0")
    _hello(diff, 2)
    diff("GET", "missing")


@pytest.mark.parametrize("cmd", ["GET", "SET", "SETNX", "SETEX", "PSETEX", "MGET", "MSET",
                                 "MSETNX", "GETSET", "GETDEL", "GETEX", "APPEND", "STRLEN",
                                 "INCR", "DECR", "INCRBY", "DECRBY", "INCRBYFLOAT",
                                 "GETRANGE", "SETRANGE", "SUBSTR"])
def test_arity_errors(diff, cmd):
    diff(cmd)
    diff(cmd.lower(), "k", "a", "b", "c", "d", "e", "f")


def test_set_with_ttl_propagates_as_set_pxat(frtrio_proc, redis_proc):
    """SET with EX/PX/EXAT/PXAT (PXAT given in lower case, with GET or NX
    too) and SETEX/PSETEX reach replicas as SET key value PXAT <ms> (Redis's
    unit/expire 'All TTL in commands are propagated as absolute timestamp
    in replication stream')."""
    import support as _s

    streams = []
    at = 4102444800000  # 2100-01-01
    for p in (frtrio_proc, redis_proc):
        s = _s.ReplStream(p.port)
        c = p.conn()
        for args in (("SET", "tp1", "v", "pxat", at), ("SET", "tp2", "v", "PXAT", at, "GET"),
                     ("SET", "tp3", "v", "NX", "pxat", at), ("SET", "tp4", "v", "exat", at // 1000),
                     ("SET", "tp5", "v", "GET"), ("DEL", "tp1", "tp2", "tp3", "tp4", "tp5")):
            c.cmd(*args)
        streams.append(s.commands_until(b"del"))
        s.close()
        c.close()
    assert streams[0] == streams[1]
    assert streams[0][0] == [b"set", b"tp1", b"v", b"PXAT", b"%d" % at]


@pytest.mark.parametrize("script", [
    # in-place modifications leave a string 'raw' whatever its content
    [("SET", "k", "1234"), ("SETRANGE", "k", "0", "2")],
    [("SET", "k", "1234"), ("SETRANGE", "k", "0", "")],
    [("SET", "k", "1234"), ("SETRANGE", "k", "5", "2")],
    [("SETRANGE", "k", "0", "12")],
    [("SET", "k", "12"), ("APPEND", "k", "3")],
    [("APPEND", "k", "123")],
    [("SETBIT", "k", "1", "1")],
    [("SET", "k", "1"), ("SETBIT", "k", "1", "1")],
    [("SET", "k", "ab"), ("BITFIELD", "k", "SET", "u8", "0", "255")],
    [("SET", "a", "1"), ("BITOP", "NOT", "k", "a")],
    [("PFADD", "k", "a")],
    [("PFADD", "a", "x"), ("PFADD", "b", "y"), ("PFMERGE", "k", "a", "b")],
    # the mark moves with the value, and goes with any other write
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("RENAME", "k", "k2"), ("RENAME", "k2", "k")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("COPY", "k", "k2"), ("DEL", "k"),
     ("RENAME", "k2", "k")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("SWAPDB", "0", "1"), ("SWAPDB", "0", "1")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("EXPIRE", "k", "100"), ("PERSIST", "k")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("SET", "k", "123", "KEEPTTL")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("SET", "k", "123", "NX")],
    [("SET", "k", "12"), ("SETRANGE", "k", "0", "3"), ("INCR", "k")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("GETSET", "k", "5")],
    # INCRBYFLOAT's result is text, never an integer encoding
    [("SET", "k", "12"), ("INCRBYFLOAT", "k", "1")],
    [("SET", "k", "5"), ("INCRBYFLOAT", "k", "1"), ("APPEND", "k", "1")],
    [("SET", "k", "12"), ("APPEND", "k", "3"), ("DEBUG", "RELOAD")],
    [("SET", "k", "32"), ("DEBUG", "RELOAD")],
])
def test_c16_string_encoding_follows_history(diff, script):
    """OBJECT ENCODING of a string depends on how it was written, as in
    Redis (upstream unit/type/string 'SETRANGE against integer-encoded
    key')."""
    for line in script:
        diff(*line)
    diff("OBJECT", "ENCODING", "k")
    diff("GET", "k")
    diff("FLUSHALL")


def test_c16_incr_keeps_debug_object_address(diff):
    """INCR of an integer past the shared range changes the value in place
    in Redis: DEBUG OBJECT shows the same address before and after
    (upstream unit/type/incr 'INCR can modify objects in-place')."""
    diff("SET", "foo", "20000")
    diff("INCR", "foo")
    diff("OBJECT", "REFCOUNT", "foo")
    before = diff.both("DEBUG", "OBJECT", "foo")
    diff("INCR", "foo")
    after = diff.both("DEBUG", "OBJECT", "foo")
    for b, a in zip(before, after):
        assert b.split()[1].startswith(b"at:")
        assert b.split()[1] == a.split()[1]
    diff("FLUSHALL")
