"""Scripting (EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL): differential tests
against redis-server 7.0.15 (same scripts to both servers, reply bytes
compared) and effects replication (redis-py's Lock and Script objects:
test_scripting_clients.py)."""

from __future__ import annotations

import pytest

from support import run_script, switch_to_resp3

run = run_script

E = "EVAL"

CONVERSIONS = [
    (E, "return 1", "0"),
    (E, "return 3.99", "0"),
    (E, "return -3.99", "0"),
    (E, "return 1e20", "0"),
    (E, "return 'hello'", "0"),
    (E, "return true", "0"),
    (E, "return false", "0"),
    (E, "return nil", "0"),
    (E, "return {1,2,3,'ciao',{1,2}}", "0"),
    (E, "return {1,2,nil,4}", "0"),
    (E, "return {1,false,3}", "0"),
    (E, "return {err='My Error'}", "0"),
    (E, "return {err='My Error\\r\\nline'}", "0"),
    (E, "return {ok='fine'}", "0"),
    (E, "return {ok='a\\r\\nb'}", "0"),
    (E, "return redis.error_reply('My Error')", "0"),
    (E, "return redis.error_reply('-WRONG x')", "0"),
    (E, "return redis.status_reply('STATUS')", "0"),
    (E, "return {1, {err='inner'}, 3}", "0"),
    (E, "return {double=3.14}", "0"),
    (E, "return {big_number='123456789012345678901234567890'}", "0"),
    (E, "return {map={a=1}}", "0"),
    (E, "return {set={a=true}}", "0"),
    (E, "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", "2", "k1", "k2", "a1", "a2"),
    (E, "return #KEYS + #ARGV", "1", "k", "a", "b"),
    (E, "return redis.sha1hex('')", "0"),
    (E, "return redis.sha1hex('Pizza & Mandolino')", "0"),
    (E, "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}", "0"),
    (E, "return tostring(redis.LOG_WARNING) .. redis.REPL_ALL .. redis.REPL_NONE", "0"),
    (E, "return redis.call('ping')", "0"),
    (E, "return redis.call('echo', 12)", "0"),
    (E, "return redis.call('echo', 3.5)", "0"),
    (E, "return redis.call('echo', 1e20)", "0"),
    (E, "return string.format('%d', 2^40)", "0"),
    (E, "return table.concat({'a','b'}, '-')", "0"),
    # more arguments than lupa takes in one call into Python (upstream
    # 'Script check unpack with massive arguments')
    (E, "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'ml', unpack(a))", "0"),
    (E, "local a = {} for i=1,7999 do a[i] = 1 end return redis.pcall('rpush', 'ml', unpack(a))", "0"),
    (E, "local function f(n) if n == 0 then return 0 end return f(n-1) end return f(100000)", "0"),
]

ERRORS = [
    (E, "return a", "0"),
    (E, "a = 1", "0"),
    (E, "error('x')", "0"),
    (E, "error({err='custom'})", "0"),
    (E, "error()", "0"),
    (E, "return +", "0"),
    (E, "return redis.call('nosuchcommand')", "0"),
    (E, "return redis.call('get')", "0"),
    (E, "return redis.call()", "0"),
    (E, "return redis.call('get', {})", "0"),
    (E, "return redis.call('get', nil)", "0"),
    (E, "return redis.pcall('nosuchcommand')", "0"),
    (E, "local t = redis.pcall('incr', 'str'); return t", "0"),
    (E, "return redis.call('incr', 'str')", "0"),
    (E, "\nlocal x = 1\nreturn redis.call('incr', 'str')", "0"),
    (E, "return pcall(function() redis.call('nosuch') end)", "0"),
    # the script's line under a tail call (Redis's redis.call is a C function)
    (E, "local r = redis return r.call('nosuch')", "0"),
    (E, "local function g() return redis.call('nosuch') end\nreturn g()", "0"),
    (E, "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'l', nil, unpack(a))", "0"),
    (E, "local a = {} for i=1,7999 do a[i] = 'x' end return redis.call('nosuch', unpack(a))", "0"),
    (E, "local ok, e = pcall(function() redis.call('incr', 'str') end); return e", "0"),
    (E, "local ok, e = pcall(function() error('boom') end); return e", "0"),
    (E, "return redis.call('blpop', 'l', 0)", "0"),
    (E, "return redis.call('eval', 'return 1', 0)", "0"),
    (E, "return redis.call('multi')", "0"),
    (E, "redis.setresp(4)", "0"),
    (E, "redis.setresp()", "0"),
    (E, "redis.set_repl(8)", "0"),
    (E, "redis.log()", "0"),
    (E, "redis.log('x', 'y')", "0"),
    (E, "redis.log(10, 'y')", "0"),
    (E, "return redis.error_reply()", "0"),
    (E, "return redis.status_reply(1)", "0"),
    (E, "return loadfile", "0"),
    (E, "return os", "0"),
    (E, "return dofile", "0"),
    (E, "return print", "0"),
    (E, "redis.call = function() return 1 end", "0"),
    (E, "setmetatable(_G, {})", "0"),
    (E, "return 1", "-1"),
    (E, "return 1", "2", "a"),
    (E, "return 1", "x"),
    (E, "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)", "0"),
    (E, "#!lua flags=bogus\nreturn 1", "0"),
    (E, "#!lua\nreturn 1", "0"),
    (E, "#!lua", "0"),
    (E, "#!python\nreturn 1", "0"),
    (E, "#!lua name=x\nreturn 1", "0"),
    # the shebang is split as sdssplitargs does
    (E, '#!lua flags="no-writes"\nreturn 1', "0"),
    (E, '#!"lua"\nreturn 1', "0"),
    (E, '#!lua "flags=no-writes,allow-oom"\nreturn 2', "0"),
    (E, "#!lua 'flags'\nreturn 1", "0"),
    (E, '#!lua fl"ags\nreturn 1', "0"),
    (E, "#!lua flags=no-writes,allow-oom\nreturn redis.call('get', 'x')", "0"),
    ("EVAL_RO", "return redis.call('set', 'x', 1)", "0"),
    ("EVAL_RO", "#!lua\nreturn redis.call('get', 'x')", "0"),
    ("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'x')", "0"),
]


def test_eval_conversions(diff):
    diff("SET", "str", "abc")
    run(diff, CONVERSIONS)


def test_eval_errors(diff):
    diff("SET", "str", "abc")
    run(diff, ERRORS)


def test_eval_conversions_resp3(diff):
    switch_to_resp3(diff)
    diff("SET", "str", "abc")
    diff("HSET", "h", "f", "v")
    diff("SADD", "s", "m")
    run(diff, CONVERSIONS)
    run(diff, [
        (E, "redis.setresp(3); return redis.call('hgetall', 'h')", "0"),
        (E, "redis.setresp(3); return redis.call('smembers', 's')", "0"),
        (E, "redis.setresp(3); return redis.call('get', 'nokey')", "0"),
        (E, "redis.setresp(3); return {redis.call('get', 'nokey')}", "0"),
        (E, "redis.setresp(3); return true", "0"),
        (E, "redis.setresp(3); return false", "0"),
        (E, "redis.setresp(3); local r = redis.call('hgetall', 'h'); return r['map']['f']", "0"),
        (E, "redis.setresp(3); return redis.call('debug', 'protocol', 'double')", "0"),
    ])


def test_eval_resp2_from_resp3_replies(diff):
    diff("HSET", "h", "f", "v")
    run(diff, [
        (E, "redis.setresp(3); return redis.call('hgetall', 'h')", "0"),
        (E, "redis.setresp(3); return redis.call('get', 'nokey')", "0"),
        (E, "redis.setresp(3); return {redis.call('exists', 'h'), true, false}", "0"),
        (E, "return {redis.call('get', 'nokey')}", "0"),
        (E, "return redis.call('hgetall', 'h')", "0"),
    ])


def test_evalsha_and_script_cache(diff):
    run(diff, [
        ("SCRIPT", "LOAD", "return 'loaded'"),
        ("EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"),
        ("EVALSHA", "B534286061D4B9E4026607613B95C06C06015AE8", "0"),
        ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"),
        ("EVALSHA", "short", "0"),
        ("EVALSHA", "short", "x"),
        ("SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8", "ffff", "B534286061D4B9E4026607613B95C06C06015AE8"),
        ("SCRIPT", "LOAD", "return +"),
        ("SCRIPT", "FLUSH", "BOGUS"),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8"),
        ("SCRIPT", "LOAD", "return 'loaded'"),
        ("SCRIPT", "FLUSH", "ASYNC"),
        ("EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"),
        (E, "return 'loaded'", "0"),
        ("EVALSHA_RO", "b534286061d4b9e4026607613b95c06c06015ae8", "0"),
        ("SCRIPT", "KILL"),
        ("SCRIPT", "NOPE"),
        ("SCRIPT", "HELP"),
    ])


def test_eval_writes_and_types(diff):
    run(diff, [
        (E, "redis.call('set', KEYS[1], ARGV[1]); return redis.call('get', KEYS[1])", "1", "k", "v"),
        (E, "return redis.call('incrby', KEYS[1], 5)", "1", "n"),
        (E, "redis.call('rpush', 'l', 1, 2, 3); return redis.call('lrange', 'l', 0, -1)", "0"),
        (E, "return redis.call('hset', 'h', 'a', 1, 'b', 2)", "0"),
        (E, "return redis.call('hgetall', 'h')", "0"),
        (E, "return redis.call('zadd', 'z', 1.5, 'a')", "0"),
        (E, "return redis.call('zscore', 'z', 'a')", "0"),
        (E, "return redis.call('type', 'z')", "0"),
        (E, "return redis.call('select', 1)", "0"),
        ("GET", "k"),
        (E, "return redis.call('lpop', 'nolist')", "0"),
        (E, "return redis.call('blpop', 'nolist', 0)", "0"),
        (E, "return redis.call('blpop', 'l', 0)", "0"),
        (E, "return {redis.call('mget', 'k', 'nokey', 'k')}", "0"),
        (E, "return redis.call('mget', 'k', 'nokey', 'k')", "0"),
        (E, "local r = 0; for i = 1, 100 do r = r + i end; return r", "0"),
        (E, "return redis.call('expire', 'k', 100)", "0"),
        (E, "return redis.call('ttl', 'k')", "0"),
        ("TTL", "k"),
    ])


def test_eval_in_multi(diff):
    run(diff, [
        ("MULTI",),
        (E, "return redis.call('incr', 'c')", "0"),
        (E, "return redis.call('incr', 'c')", "0"),
        ("EXEC",),
    ])


def test_eval_propagates_effects_in_multi_exec(frtrio_proc):
    """The AOF (and replicas) see the commands a script ran, wrapped in
    MULTI/EXEC when there is more than one, as Redis 7.0 propagates them."""
    from frtrio.config import Config
    import random
    from frtrio.core.engine import Server
    import frtrio.commands  # noqa: F401

    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    srv.execute(c, [b"EVAL", b"redis.call('set','a','1'); redis.call('set','b','2')", b"0"])
    srv.execute(c, [b"EVAL", b"redis.call('set','c','3')", b"0"])
    srv.execute(c, [b"EVAL", b"redis.set_repl(redis.REPL_NONE); redis.call('set','d','4')", b"0"])
    srv.execute(c, [b"EVAL", b"return redis.call('get','a')", b"0"])
    assert c.take_output() == b"$-1\r\n$-1\r\n$-1\r\n$1\r\n1\r\n"
    assert srv.propagated == [
        (0, [b"MULTI"]), (0, [b"set", b"a", b"1"]), (0, [b"set", b"b", b"2"]), (0, [b"EXEC"]),
        (0, [b"set", b"c", b"3"]),
    ]


LIB = """#!lua name=mylib
local function hello(keys, args)
  return 'hello ' .. (args[1] or 'nobody')
end
redis.register_function('hello', hello)
redis.register_function{function_name='setter', callback=function(keys, args)
  return redis.call('set', keys[1], args[1]) end}
redis.register_function{function_name='reader', callback=function(keys, args)
  return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}
redis.register_function{function_name='bad', callback=function(keys, args)
  return redis.call('incr', 'str') end}
"""

ONE = """#!lua name=one
redis.register_function{function_name='ro', callback=function() return 1 end,
                        flags={'no-writes', 'allow-oom'}, description='d'}
"""


def test_function_load_and_fcall(diff):
    diff("SET", "str", "abc")
    run(diff, [
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", LIB),
        ("FUNCTION", "LOAD", LIB),
        ("FUNCTION", "LOAD", "REPLACE", LIB),
        ("FCALL", "hello", "0"),
        ("FCALL", "hello", "0", "world"),
        ("FCALL", "setter", "1", "k", "v"),
        ("FCALL", "reader", "1", "k"),
        ("FCALL_RO", "reader", "1", "k"),
        ("FCALL_RO", "setter", "1", "k", "v"),
        ("FCALL", "bad", "0"),
        ("FCALL", "nosuch", "0"),
        ("FCALL", "hello", "x"),
        ("FCALL", "hello", "-1"),
        ("FCALL", "hello", "3", "a"),
        ("FUNCTION", "LOAD", ONE),
        ("FUNCTION", "LIST", "LIBRARYNAME", "one*"),
        ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "one"),
        ("FUNCTION", "DELETE", "one"),
        ("FUNCTION", "LIST", "LIBRARYNAME", "other*"),
        ("FUNCTION", "LIST", "LIBRARYNAME"),
        ("FUNCTION", "LIST", "BOGUS"),
        ("FUNCTION", "STATS"),
        ("FUNCTION", "KILL"),
        ("FUNCTION", "DELETE", "nosuch"),
        ("FUNCTION", "DELETE", "mylib"),
        ("FCALL", "hello", "0"),
        ("FUNCTION", "LOAD", "return 1"),
        ("FUNCTION", "LOAD", "#!lua\nreturn 1"),
        ("FUNCTION", "LOAD", "#!lua name=a-b\nreturn 1"),
        ("FUNCTION", "LOAD", "#!lua name=x foo=bar\nreturn 1"),
        ("FUNCTION", "LOAD", "#!lua name=x name=y\nreturn 1"),
        ("FUNCTION", "LOAD", "#!js name=x\nreturn 1"),
        ("FUNCTION", "LOAD", "#!lua name=x\nreturn 1"),
        ("FUNCTION", "LOAD", "#!lua name=x\nreturn +"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f')"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f-1', function() end)"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='f'}"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{callback=function() end}"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, bogus=1}"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"),
        ("FUNCTION", "LOAD", "#!lua name=x\nerror('boom')"),
        ("FUNCTION", "LOAD", "#!lua name=x\nwhile true do end"),
        ("FUNCTION", "LOAD", "REPLACE", '#!lua name="q1"\nredis.register_function("q1", function() return 1 end)'),
        ("FUNCTION", "LOAD", "REPLACE", "#!lua name='q2' x\nreturn 1"),
        ("FUNCTION", "LOAD", "REPLACE", '#!lua name="q3"o\nreturn 1'),
        ("FUNCTION", "LOAD", "REPLACE", '#!lua "name=q4"\nredis.register_function("q4", function() return 1 end)'),
        ("FUNCTION", "LOAD", "REPLACE", '#!lua name="q5\nreturn 1'),
        ("FCALL", "q1", "0"),
        ("FUNCTION", "FLUSH", "BOGUS"),
        ("FUNCTION", "Flush", "SYNC", "extra"),
        ("FUNCTION", "FLUSH", "ASYNC"),
        ("FUNCTION", "LIST"),
    ])


def test_busy_script_suspends_gets_busy_and_is_killed():
    """The engine side of BUSY: a script past busy-reply-threshold is
    suspended (RunScript effect, no reply yet), other clients get Redis's
    -BUSY, SCRIPT KILL stops it at its next hook and its caller gets
    Redis's error."""
    import random
    import time

    from frtrio.config import Config
    from frtrio.core.effects import RunScript
    from frtrio.core.engine import Server
    import frtrio.commands  # noqa: F401

    srv = Server(Config(), random.Random(1))
    srv.unix_us = lambda: int(time.time() * 1e6)
    srv.script_can_suspend = True
    c = srv.new_client()
    d = srv.new_client()
    srv.execute(c, [b"CONFIG", b"SET", b"busy-reply-threshold", b"100"])
    assert c.take_output() == b"+OK\r\n"
    srv.execute(c, [b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"])
    assert c.take_output() == b""
    assert [type(e) for e in srv.effects] == [RunScript]
    srv.execute(d, [b"PING"])
    assert d.take_output() == (b"-BUSY Redis is busy running a script. You can only call "
                               b"SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
    srv.execute(d, [b"FUNCTION", b"KILL"])
    assert d.take_output().startswith(b"-BUSY")
    srv.execute(d, [b"SCRIPT", b"KILL"])
    assert d.take_output() == b"+OK\r\n"
    state, data = srv.scripting.resume()
    assert state == "done"
    assert data == (b"-ERR Script killed by user with SCRIPT KILL... script: "
                    b"3fcf51a9b854b8f66cb8685600b0d7df968f4398, on @user_script:1.\r\n")
    srv.execute(d, [b"PING"])
    assert d.take_output() == b"+PONG\r\n"
    srv.execute(d, [b"SCRIPT", b"KILL"])
    assert d.take_output() == b"-NOTBUSY No scripts in execution right now.\r\n"


def _busy_scenario(proc, script, kill, fn_lib=None):
    """A looping script on one connection; another client gets -BUSY, then
    kills it. Returns every reply seen, to compare between the servers."""
    import time

    from support import encode_request

    a = proc.conn()
    b = proc.conn()
    out = []
    try:
        b.cmd("CONFIG", "SET", "busy-reply-threshold", "100")
        if fn_lib:
            b.cmd("FUNCTION", "LOAD", "REPLACE", fn_lib)
        a.send(encode_request(script))
        time.sleep(0.5)
        out.append(b.cmd("PING"))
        out.append(b.cmd("GET", "x"))
        out.append(b.cmd("SCRIPT" if kill[0] == "FUNCTION" else "FUNCTION", "KILL"))
        out.append(b.cmd(*kill))
        out.append(a.read_reply())
        out.append(b.cmd(*kill))
        out.append(b.cmd("PING"))
        out.append(a.cmd("PING"))
    finally:
        b.cmd("CONFIG", "SET", "busy-reply-threshold", "5000")
        if fn_lib:
            b.cmd("FUNCTION", "FLUSH")
        a.close()
        b.close()
    return out


def test_busy_eval_over_sockets_same_as_redis(frtrio_proc, redis_proc):
    """An endless EVAL: other clients get -BUSY while it runs, SCRIPT KILL
    stops it, its caller gets Redis's error: the same replies as Redis."""
    script = ("EVAL", "local i = 0 while true do i = i + 1 end", "0")
    f = _busy_scenario(frtrio_proc, script, ("SCRIPT", "KILL"))
    r = _busy_scenario(redis_proc, script, ("SCRIPT", "KILL"))
    assert f == r
    assert f[0].startswith(b"-BUSY")


def test_busy_fcall_over_sockets_same_as_redis(frtrio_proc, redis_proc):
    lib = ("#!lua name=busy\nredis.register_function{function_name='spin', "
           "callback=function() while true do end end, flags={'no-writes'}}")
    f = _busy_scenario(frtrio_proc, ("FCALL", "spin", "0"), ("FUNCTION", "KILL"), lib)
    r = _busy_scenario(redis_proc, ("FCALL", "spin", "0"), ("FUNCTION", "KILL"), lib)
    assert f == r
    assert f[0].startswith(b"-BUSY")


LIBS = [
    (E, "return cjson.encode({1,2,3,'a',{x=1}})", "0"),
    (E, "return cjson.encode({a='b'})", "0"),
    (E, "return cjson.encode({})", "0"),
    (E, "return cjson.encode('a\"b\\\\c/d\\n\\1\\127')", "0"),
    (E, "return cjson.encode(3.14159265358979)", "0"),
    (E, "return cjson.encode(1e300)", "0"),
    (E, "return cjson.encode(0.1)", "0"),
    (E, "return cjson.encode({1, nil, 3})", "0"),
    (E, "return cjson.encode({[1]=1, [20]=2})", "0"),
    (E, "return cjson.encode({[1.5]=1})", "0"),
    (E, "return cjson.encode({true, false, cjson.null})", "0"),
    (E, "return cjson.encode(function() end)", "0"),
    (E, "return cjson.encode(1/0)", "0"),
    (E, "local t = {} local c = t for i = 1, 1100 do c[1] = {} c = c[1] end return cjson.encode(t)", "0"),
    (E, "local ok, e = pcall(cjson.encode, function() end) return e", "0"),
    (E, "return cjson.decode('[1,2,3]')", "0"),
    (E, "return cjson.decode('{\"a\":[1,{\"b\":2}]}').a[2].b", "0"),
    (E, "return cjson.decode('\"\\\\u00e9\\\\n\"')", "0"),
    (E, "return cjson.decode('1.5e3')", "0"),
    (E, "return type(cjson.decode('null'))", "0"),
    (E, "return cjson.decode('null') == cjson.null", "0"),
    (E, "return cjson.decode('[1,2')", "0"),
    (E, "return cjson.decode('{1:2}')", "0"),
    (E, "return cjson.decode('nope')", "0"),
    (E, "return cjson.decode('[1] x')", "0"),
    (E, "return cjson.decode(string.rep('[', 1100))", "0"),
    (E, "return cjson.decode('\"\\\\q\"')", "0"),
    (E, "return cmsgpack.pack({1,2,3})", "0"),
    (E, "return cmsgpack.pack({a=1})", "0"),
    (E, "return cmsgpack.pack(1, -1, 300, -300, 70000, 2^40, -2^40, 1.5, 0.1, 'str', true, false)", "0"),
    (E, "return cmsgpack.pack(string.rep('x', 40), string.rep('y', 300))", "0"),
    (E, "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1, 2}, -5, 1.5))}", "0"),
    (E, "local t = cmsgpack.unpack(cmsgpack.pack({a=1, b={1,2}})) return {t.a, t.b[2]}", "0"),
    (E, "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)", "0"),
    (E, "return cmsgpack.unpack('\\217')", "0"),
    (E, "return {bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(3, 5), bit.bnot(0)}", "0"),
    (E, "return {bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.tobit(2^32 + 5)}", "0"),
    (E, "return {bit.tohex(255), bit.tohex(-1, -4), bit.rol(1, 33), bit.ror(1, 1), bit.bswap(0x12345678)}", "0"),
    (E, "return struct.pack('>I2i4', 258, -2)", "0"),
    (E, "return {struct.unpack('<hHb', struct.pack('<hHb', -2, 65535, -1))}", "0"),
    (E, "return struct.size('>iIhd')", "0"),
    (E, "return {struct.unpack('s', 'abc\\0rest')}", "0"),
    (E, "return {struct.unpack('>d', struct.pack('>d', 1.5))}", "0"),
]


def test_libraries(diff):
    run(diff, LIBS)


def test_function_dump_restore(diff):
    lib2 = "#!lua name=lib2\nredis.register_function('f2', function() return 2 end)"
    run(diff, [
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", ONE),
    ])
    fd, rd = diff.both("FUNCTION", "DUMP")
    assert fd == rd
    payload = parse_reply_bulk(fd)
    run(diff, [
        ("FUNCTION", "RESTORE", payload),
        ("FUNCTION", "RESTORE", payload, "BOGUS"),
        ("FUNCTION", "RESTORE", payload, "REPLACE"),
        ("FUNCTION", "RESTORE", b"garbage"),
        ("FUNCTION", "RESTORE", payload[:-1] + b"x"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "RESTORE", payload),
        ("FCALL", "ro", "0"),
        ("FUNCTION", "LOAD", lib2),
        ("FUNCTION", "RESTORE", payload, "FLUSH"),
        ("FCALL", "f2", "0"),
        ("FCALL", "ro", "0"),
        ("FUNCTION", "FLUSH"),
    ])


def parse_reply_bulk(raw: bytes) -> bytes:
    assert raw[:1] == b"$"
    n, rest = raw[1:].split(b"\r\n", 1)
    return rest[:int(n)]


def test_functions_survive_restart_in_rdb_and_aof(tmp_path):
    """Functions are saved in the RDB (FUNCTION2 records, loadable by
    redis-server) and in the AOF, and come back after a restart."""
    from support import ServerProc

    lib = "#!lua name=keep\nredis.register_function('k', function() return 'kept' end)"
    for args in (["--appendonly", "no"], ["--appendonly", "yes"],
                 ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]):
        p = ServerProc("frtrio", args=args).start()
        try:
            c = p.conn()
            assert c.cmd("FUNCTION", "LOAD", lib) == b"$4\r\nkeep\r\n"
            if args[1] == "no":
                assert c.cmd("SAVE") == b"+OK\r\n"
            else:
                assert c.cmd("BGREWRITEAOF").startswith(b"+")
                import time
                time.sleep(1)
                c.cmd("FUNCTION", "LOAD", "#!lua name=after\nredis.register_function('a', function() return 1 end)")
            c.close()
            p.terminate()
            p.start()
            c = p.conn()
            assert c.cmd("FCALL", "k", "0") == b"$4\r\nkept\r\n"
            if args[1] == "yes":
                assert c.cmd("FCALL", "a", "0") == b":1\r\n"
            c.close()
        finally:
            p.cleanup()


def test_debug_reload_noflush_and_merge_with_functions(diff):
    """DEBUG RELOAD empties the libraries with the keys (Redis's emptyData);
    NOFLUSH without MERGE fails on a library that is still there, MERGE
    replaces it (upstream functions 'test debug reload different options')."""
    lib = "#!lua name=rl\nredis.register_function('rl', function() return 'v1' end)"
    lib2 = "#!lua name=rl2\nredis.register_function('rl2', function() return 'v2' end)"
    for args in [
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", lib),
        ("DEBUG", "RELOAD"),
        ("FCALL", "rl", "0"),
        ("DEBUG", "RELOAD", "NOFLUSH"),
        ("FUNCTION", "LIST"),
        ("DEBUG", "RELOAD", "NOFLUSH", "MERGE"),
        ("FUNCTION", "LIST"),
        ("FUNCTION", "LOAD", lib2),
        ("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"),
        ("FCALL", "rl", "0"),
        ("FCALL", "rl2", "0"),
        ("DEBUG", "RELOAD", "NOSAVE"),
        ("FCALL", "rl2", "0"),
        ("FUNCTION", "FLUSH"),
    ]:
        diff(*args)


def test_full_sync_carries_the_function_libraries():
    """A full sync gives the replica its master's libraries and drops the
    ones it had (Redis writes FUNCTION2 records in the sync payload and the
    replica's emptyData empties its libraries): frtrio master to frtrio and
    redis-server replicas, redis-server master to a frtrio replica
    (upstream functions 'test replication to replica on rdb phase')."""
    from support import ServerProc, wait_for

    lib = "#!lua name=synced\nredis.register_function{function_name='s', callback=function() return 'synced' end, flags={'no-writes'}}"
    stale = "#!lua name=stale\nredis.register_function('old', function() return 1 end)"
    for master_kind, replica_kinds in (("frtrio", ("frtrio", "redis")), ("redis", ("frtrio",))):
        m = ServerProc(master_kind).start()
        reps = [ServerProc(k).start() for k in replica_kinds]
        try:
            mc = m.conn()
            assert mc.cmd("FUNCTION", "LOAD", lib) == b"$6\r\nsynced\r\n"
            for rp in reps:
                rc = rp.conn()
                assert rc.cmd("FUNCTION", "LOAD", stale) == b"$5\r\nstale\r\n"
                assert rc.cmd("REPLICAOF", "127.0.0.1", str(m.port)) == b"+OK\r\n"
                wait_for(lambda: b"master_link_status:up" in rc.cmd("INFO", "replication"),
                         what="replica in sync")
                assert rc.cmd("FCALL", "s", "0") == b"$6\r\nsynced\r\n"
                assert rc.cmd("FCALL", "old", "0") == b"-ERR Function not found\r\n"
                assert rc.cmd("FUNCTION", "LIST") == mc.cmd("FUNCTION", "LIST")
                rc.close()
            mc.close()
        finally:
            for p in [m] + reps:
                p.cleanup()


def test_rdb_with_functions_loads_in_redis(tmp_path):
    """redis-server 7.0.15 reads the functions of an RDB frtrio wrote."""
    import os
    import shutil

    from support import ServerProc

    lib = "#!lua name=keep\nredis.register_function('k', function() return 'kept' end)"
    p = ServerProc("frtrio").start()
    try:
        c = p.conn()
        c.cmd("FUNCTION", "LOAD", lib)
        c.cmd("SET", "x", "1")
        assert c.cmd("SAVE") == b"+OK\r\n"
        c.close()
        src = os.path.join(p.dir, "dump.rdb")
        r = ServerProc("redis")
        shutil.copy(src, os.path.join(r.dir, "dump.rdb"))
        r.start()
        try:
            rc = r.conn()
            assert rc.cmd("FCALL", "k", "0") == b"$4\r\nkept\r\n"
            assert rc.cmd("GET", "x") == b"$1\r\n1\r\n"
            rc.cmd("FUNCTION", "LOAD", "#!lua name=back\nredis.register_function('b', function() return 'b' end)")
            assert rc.cmd("SAVE") == b"+OK\r\n"
            rc.close()
            r.terminate()
            shutil.copy(os.path.join(r.dir, "dump.rdb"), src)
        finally:
            r.cleanup()
        p.terminate()
        p.start()
        c = p.conn()
        assert c.cmd("FCALL", "b", "0") == b"$1\r\nb\r\n"
        assert c.cmd("FCALL", "k", "0") == b"$4\r\nkept\r\n"
        c.close()
    finally:
        p.cleanup()


def test_busy_script_caller_disconnects(frtrio_proc):
    """The caller of a busy script goes away: the node stays BUSY until the
    script is killed, then serves everyone (the script is not orphaned)."""
    import time

    from support import encode_request

    a = frtrio_proc.conn()
    b = frtrio_proc.conn()
    try:
        b.cmd("CONFIG", "SET", "busy-reply-threshold", "50")
        a.send(encode_request(("EVAL", "while true do end", "0")))
        time.sleep(0.3)
        a.close()
        time.sleep(0.2)
        assert b.cmd("PING").startswith(b"-BUSY")
        assert b.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        time.sleep(0.2)
        assert b.cmd("PING") == b"+PONG\r\n"
        assert b.cmd("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
    finally:
        b.cmd("CONFIG", "SET", "busy-reply-threshold", "5000")
        b.close()


def test_busy_script_writes_propagate_together():
    """A script suspended for BUSY after writing: whatever the shell flushes
    meanwhile, its writes are propagated together, in MULTI/EXEC, at its end."""
    import random
    import time

    from frtrio.config import Config
    from frtrio.core.engine import Server
    import frtrio.commands  # noqa: F401

    srv = Server(Config(), random.Random(1))
    srv.unix_us = lambda: int(time.time() * 1e6)
    srv.script_can_suspend = True
    c = srv.new_client()
    srv.execute(c, [b"CONFIG", b"SET", b"busy-reply-threshold", b"50"])
    # Busy for 300 ms of wall time, far past the 50 ms threshold (waiting for the
    # next whole second could end after a few ms and never suspend).
    srv.execute(c, [b"EVAL", b"redis.call('set', 'a', '1') "
                    b"local function now() local t = redis.call('time') "
                    b"return tonumber(t[1]) * 1000000 + tonumber(t[2]) end "
                    b"local t0 = now() while now() - t0 < 300000 do end "
                    b"redis.call('set', 'b', '2') return 'done'", b"0"])
    c.take_output()
    assert srv.scripting.busy_ctx is not None
    flushed = []
    while True:
        flushed += srv.propagated  # the shell's AOF flush between slices
        srv.propagated.clear()
        state, data = srv.scripting.resume()
        if state == "done":
            break
        time.sleep(0.01)
    assert data == b"$4\r\ndone\r\n"
    flushed += srv.propagated
    assert flushed == [(0, [b"MULTI"]), (0, [b"set", b"a", b"1"]), (0, [b"set", b"b", b"2"]),
                       (0, [b"EXEC"])]


def test_scripts_and_functions_have_separate_lua_states(diff):
    """Redis has one Lua state for EVAL and one for FUNCTION: a setting made
    by a script (cjson's precision) is not seen by functions, and SCRIPT
    FLUSH starts the EVAL state afresh."""
    lib = "#!lua name=prec\nredis.register_function('enc', function() return cjson.encode(3.14159) end)"
    run(diff, [
        ("FUNCTION", "LOAD", "REPLACE", lib),
        (E, "cjson.encode_number_precision(3) return cjson.encode(3.14159)", "0"),
        (E, "return cjson.encode(3.14159)", "0"),
        ("FCALL", "enc", "0"),
        ("SCRIPT", "FLUSH"),
        (E, "return cjson.encode(3.14159)", "0"),
        ("FUNCTION", "DELETE", "prec"),
    ])


def test_used_memory_lua_is_the_eval_state():
    """INFO's used_memory_lua is the EVAL state alone (Redis's test: it
    stays under 100 KB after 10000 EVALs, also when functions were loaded
    and called as many times)."""
    from support import engine

    srv = engine()
    c = srv.new_client()
    code = (b"#!lua name=test\nredis.register_function('test', function(KEYS, ARGV)\n"
            b" return redis.call('incr', KEYS[1]) \nend)")
    for _ in range(3000):
        srv.execute(c, [b"FUNCTION", b"LOAD", b"REPLACE", code])
        srv.execute(c, [b"FCALL", b"test", b"1", b"x"])
    srv.execute(c, [b"SCRIPT", b"FLUSH"])
    for _ in range(10000):
        srv.execute(c, [b"EVAL", b"return redis.call('incr', KEYS[1])", b"1", b"x"])
    c.take_output()
    srv.execute(c, [b"INFO", b"memory"])
    info = dict(line.split(b":", 1) for line in c.take_output().split(b"\r\n") if b":" in line)
    assert int(info[b"used_memory_lua"]) < 100 * 1024
    assert int(info[b"used_memory_vm_functions"]) > 0
    assert int(info[b"used_memory_vm_total"]) == (int(info[b"used_memory_vm_eval"])
                                                   + int(info[b"used_memory_vm_functions"]))


def _shutdown_busy(kind):
    import socket
    import time

    from support import ServerProc, encode_request

    p = ServerProc(kind).start()
    try:
        a = p.conn()
        b = p.conn()
        b.cmd("CONFIG", "SET", "busy-reply-threshold", "100")
        a.send(encode_request(("EVAL", "while true do end", "0")))
        time.sleep(0.3)
        busy = b.cmd("PING")
        b.send(encode_request(("SHUTDOWN", "NOSAVE")))
        gone = b.read_until_close()
        try:
            socket.create_connection(("127.0.0.1", p.port), timeout=2).close()
            after = "connected"
        except ConnectionRefusedError:
            after = "refused"
        p.proc.wait(10)
        return busy, gone, after, p.proc.returncode
    finally:
        p.cleanup()


def test_shutdown_nosave_kills_a_timedout_script():
    """Upstream 'SHUTDOWN NOSAVE can kill a timedout script anyway': the
    SHUTDOWN's connection closes and the next connection is refused (the
    listener is closed before the connection that asked, as when Redis has
    exited), the process exits 0."""
    f = _shutdown_busy("frtrio")
    r = _shutdown_busy("redis")
    assert f == r
    assert f[0].startswith(b"-BUSY") and f[2] == "refused"


def _selective_replication(kind):
    from support import ServerProc, wait_for

    with ServerProc(kind, ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]) as m:
        with ServerProc(kind, ["--replicaof", "127.0.0.1", str(m.port)]) as s:
            mc = m.client()
            sc = s.client()
            wait_for(lambda: sc.info("replication").get("master_link_status") == "up", 20)
            mc.eval("redis.call('set','a','1'); redis.set_repl(redis.REPL_NONE); "
                    "redis.call('set','b','2'); redis.set_repl(redis.REPL_AOF); "
                    "redis.call('set','c','3'); redis.set_repl(redis.REPL_REPLICA); "
                    "redis.call('set','e','5'); redis.set_repl(redis.REPL_ALL); "
                    "redis.call('set','d','4')", 0)
            wait_for(lambda: sc.get("d") is not None, 10)
            replica = sc.mget("a", "b", "c", "d", "e")
            master = mc.mget("a", "b", "c", "d", "e")
            mc.execute_command("DEBUG", "LOADAOF")
            reloaded = mc.mget("a", "b", "c", "d", "e")
            return replica, master, reloaded


def test_set_repl_targets_aof_and_replicas_separately():
    """Upstream 'Test selective replication of certain Redis commands from
    Lua': REPL_AOF writes reach the AOF only, REPL_REPLICA the replicas only,
    REPL_NONE neither (replica contents and an AOF reload compared)."""
    f = _selective_replication("frtrio")
    r = _selective_replication("redis")
    assert f == r
    assert f == ([b"1", None, None, b"4", b"5"], [b"1", b"2", b"3", b"4", b"5"],
                 [b"1", None, b"3", b"4", None])


OOM_SCRIPTS = [
    ("SET", "x", "123"),
    ("CONFIG", "SET", "maxmemory", "1"),
    # no shebang: EVAL runs, a deny-oom command before any write is refused
    (E, "redis.call('set', 'x', 1) return 1", "1", "x"),
    (E, "return redis.call('get', 'x')", "1", "x"),
    (E, "local t = redis.pcall('set', 'x', 'y') return t['err']", "1", "x"),
    (E, "return redis.pcall('set', 'x', 'y')", "1", "x"),
    ("EVAL_RO", "redis.call('get', 'x') return 1", "1", "x"),
    # flags: without allow-oom the script does not start; no-writes implies it
    (E, "#!lua flags=\nreturn 1", "0"),
    (E, "#!lua\nreturn 1", "0"),
    (E, "#!lua flags=allow-oom\nredis.call('set', 'x', 1) return 1", "1", "x"),
    (E, "#!lua flags=no-writes\nredis.call('get', 'x') return 1", "0"),
    ("EVAL_RO", "#!lua flags=no-writes\nredis.call('get', 'x') return 1", "1", "x"),
    ("FUNCTION", "LOAD", "REPLACE", "#!lua name=oom\n"
     "redis.register_function('w', function() return redis.call('set', 'x', 1) end)\n"
     "redis.register_function{function_name='ao', callback=function() "
     "return redis.call('set', 'x', 2) end, flags={'allow-oom'}}\n"
     "redis.register_function{function_name='ro', callback=function() "
     "return redis.call('get', 'x') end, flags={'no-writes'}}"),
    ("FCALL", "w", "0"),
    ("FCALL", "ao", "0"),
    ("FCALL", "ro", "0"),
    # deny-oom commands outside scripts, and in MULTI
    ("SET", "y", "1"),
    ("GET", "x"),
    ("MULTI",),
    ("GET", "x"),
    ("EXEC",),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("FCALL", "w", "0"),
    ("GET", "x"),
    ("FUNCTION", "DELETE", "oom"),
]


def test_scripts_over_maxmemory(diff):
    """Upstream 'Script - disallow write on OOM', 'allow-oom shebang flag',
    'Consistent eval error reporting' (the OOM part): over maxmemory a
    script's first deny-oom command is refused, a script without allow-oom
    (or no-writes) does not start, FCALL likewise by its flags."""
    run(diff, OOM_SCRIPTS)


def test_oom_error_stats_as_redis(diff):
    """The OOM refusals count as Redis counts them (errorstats, the SET's
    rejected_calls, the EVAL's failed_calls)."""
    for cmds in ([(E, "return redis.call('set','x','y')", "1", "x")],
                 [(E, "local t = redis.pcall('set','x','y') return 1", "1", "x")],
                 [(E, "return redis.pcall('set','x','y')", "1", "x")],
                 [(E, "return {1, redis.pcall('set','x','y'), {err='mine'}}", "1", "x")],
                 [("SET", "y", "1"), ("SET", "y"), ("MULTI",), ("GET", "y"), ("EXEC",)]):
        diff("CONFIG", "SET", "maxmemory", "0")
        diff("CONFIG", "RESETSTAT")
        diff("CONFIG", "SET", "maxmemory", "1")
        run(diff, cmds)
        diff("CONFIG", "SET", "maxmemory", "0")
        f, r = diff.both("INFO", "errorstats")
        assert f == r
        for name in ("set", "eval", "get", "exec", "multi"):
            f, r = diff.both("INFO", "commandstats")
            fl = [ln for ln in f.split(b"\r\n") if ln.startswith(b"cmdstat_%s:" % name.encode())]
            rl = [ln for ln in r.split(b"\r\n") if ln.startswith(b"cmdstat_%s:" % name.encode())]
            strip = lambda ls: [b",".join(p for p in ln.split(b",") if b"usec" not in p) for ln in ls]  # noqa: E731
            assert strip(fl) == strip(rl)


STALE = [
    ("CONFIG", "SET", "replica-serve-stale-data", "no"),
    ("REPLICAOF", "127.0.0.1", "1"),
    (E, "return redis.call('get','x')", "1", "x"),
    (E, "#!lua flags=no-writes\nreturn 1", "0"),
    (E, "#!lua flags=allow-stale,no-writes\nreturn 1", "0"),
    (E, "#!lua flags=allow-stale,no-writes\nreturn redis.call('get','x')", "1", "x"),
    (E, "#!lua flags=allow-stale,no-writes\nreturn redis.pcall('get','x')", "1", "x"),
    (E, "#!lua flags=allow-stale,no-writes\nreturn redis.call('echo','foobar')", "0"),
    ("MULTI",),
    (E, "#!lua flags=allow-stale,no-writes\nreturn 1", "0"),
    ("EXEC",),
    ("MULTI",),
    ("ECHO", "a"),
    ("EXEC",),
]


def test_allow_stale_flag_on_a_stale_replica(diff):
    """Upstream 'allow-stale shebang flag': on a replica whose link is down
    with replica-serve-stale-data no, only allow-stale scripts run, and
    inside them only commands flagged stale."""
    try:
        run(diff, STALE)
    finally:
        diff.both("REPLICAOF", "NO", "ONE")


def _exec_on_readonly_replica(kind):
    from support import ServerProc, wait_for

    with ServerProc(kind) as m, ServerProc(kind) as s:
        a = s.conn()
        b = s.conn()
        c = s.conn()
        out = []
        for conn in (a, b):
            out.append(conn.cmd("MULTI"))
        out.append(a.cmd(E, "#!lua\nreturn 1", "0"))
        out.append(b.cmd(E, "redis.call('set','x',1) return 1", "1", "x"))
        out.append(c.cmd("REPLICAOF", "127.0.0.1", str(m.port)))
        sc = s.client()
        wait_for(lambda: sc.info("replication").get("master_link_status") == "up", 20)
        out.append(a.cmd("EXEC"))
        out.append(b.cmd("EXEC"))
        out.append(c.cmd("MULTI"))
        out.append(c.cmd(E, "#!lua flags=no-writes\nredis.call('get','x') return 1", "1", "x"))
        out.append(c.cmd("EXEC"))
        return out


def test_exec_of_a_write_script_on_a_readonly_replica():
    """Upstream 'no-writes shebang flag on replica': EXEC of a queued script
    that may write is refused on a read-only replica (EXECABORT ... READONLY),
    a script without shebang fails at its write."""
    f = _exec_on_readonly_replica("frtrio")
    r = _exec_on_readonly_replica("redis")
    assert f == r
    assert f[5].startswith(b"-EXECABORT Transaction discarded because of: READONLY")


def test_tailcall_rewrite_only_touches_calls_to_x_call():
    """tailcall.keep_frames (pure): an OP_TAILCALL whose function was read
    as x.call / x.pcall becomes OP_CALL, in nested functions too; other tail
    calls stay (endless tail recursion must not overflow the stack); a
    chunk with nothing to rewrite, or not a Lua 5.1 dump, gives None."""
    import struct

    import lupa.lua51 as lua

    from frtrio.scripting import tailcall

    L = lua.LuaRuntime(encoding=None)
    dump = L.eval("function(s) return string.dump(loadstring(s)) end")

    def ops(chunk):
        # every instruction word of every prototype, in dump order
        out = []

        def walk(r):
            r.string()
            r.int()
            r.int()
            r.pos += 4
            n = r.int()
            out.extend(x & 0x3F for x in struct.unpack_from("<%dI" % n, r.data, r.pos))
            r.pos += 4 * n
            for _ in range(r.int()):
                t = r.byte()
                if t == 1:
                    r.byte()
                elif t == 3:
                    r.pos += 8
                elif t == 4:
                    r.string()
            for _ in range(r.int()):
                walk(r)
            nl = r.int()
            r.pos += 4 * nl
            for _ in range(r.int()):
                r.string()
                r.pos += 8
            for _ in range(r.int()):
                r.string()

        walk(tailcall._Reader(chunk, len(tailcall.HEADER)))
        return out

    src = (b"local function f() return redis.pcall('x') end\n"
           b"local function g(n) return g(n) end\n"
           b"local r = redis\n"
           b"if f then return r.call('y', 1) end\n"
           b"return redis.call('z')")
    before = ops(dump(src))
    after = ops(tailcall.keep_frames(dump(src)))
    assert before.count(tailcall.OP_TAILCALL) == 4
    assert after.count(tailcall.OP_TAILCALL) == 1  # g's own tail call stays
    assert after.count(tailcall.OP_CALL) == before.count(tailcall.OP_CALL) + 3
    assert tailcall.keep_frames(dump(b"local function g() return g() end return 1")) is None
    assert tailcall.keep_frames(b"not a dump") is None
    # the rewritten chunk loads and runs with the same results
    run = L.eval("function(b) return loadstring(b)() end")
    L.execute("redis = {call = function(...) return select('#', ...), ... end,"
              " pcall = function() return 'p' end}")
    assert run(tailcall.keep_frames(dump(b"return redis.call('a', 'b', 'c')"))) == (3, b"a", b"b", b"c")
