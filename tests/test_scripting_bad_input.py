"""Scripts that misbehave: deep recursion, tables that contain themselves,
errors of every kind, unbounded allocation, endless loops (tail calls
included). Where redis-server 7.0.15 answers, the reply bytes (and the error
counters) must be the same; where Redis has no answer (its Lua takes the
host's memory, or it crashes), frtrio must give a clear error and keep
serving. The plain endless loop (BUSY, SCRIPT KILL) is in test_scripting.py."""

from __future__ import annotations

import socket
import time

import pytest

from support import encode_request

E = "EVAL"

RECURSION = [
    "local function f() return 1 + f() end return f()",  # Lua stack overflow
    "local function f(n) return {f(n)} end return f(1)",
    "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",  # C stack
    "local function f(n) if n == 0 then return 0 end return f(n - 1) end return f(100000)",  # tail calls
    "local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end return f(10000)",
    "return loadstring(string.rep('(', 300) .. '1' .. string.rep(')', 300))()",  # parser levels
    "local t = {} local c = t for i = 1, 400 do c[1] = {} c = c[1] end return t",
    "return cjson.encode((function() local t = {} t[1] = t return t end)())",
    "return cmsgpack.pack((function() local t = {} t[1] = t return t end)())",
]

# tables that contain themselves: the reply nests until Redis's C encoder
# runs out of Lua stack (lua_checkstack), then an error takes the place
CYCLES = [
    "local t = {} t[1] = t return t",
    "local t = {1} t[2] = t return t",
    "local t = {} t.map = t return t",
    "local t = {} t.map = {x = t} return t",
    "local t = {} t.set = t return t",
    "local t = {} t[1] = {map = {a = t}} return t",
    "local t = {} t[1] = {set = {[t] = true}} return t",
    "local t = {} t.x = t return {map = t}",
]

ERRORS = [
    "error(nil)",
    "error(123)",
    "error('x', 0)",
    "error('x', 2)",
    "error({err = 'MYCODE custom'})",
    "error({err = 123})",
    "local x = nil; return x.y",
    "local x; x()",
    "return 1 + {}",
    "return #nil",
    "return ('x'):bad()",
    "redis.call('set', 'written', 'v'); error('after a write')",
    "return {err = {}}",
    "return redis.error_reply('')",
    "local t = setmetatable({}, {__index = function() error('in index') end}) return t.x",
    "return tostring(setmetatable({}, {__tostring = function() return 1 end}))",
    "return string.format('%d', 'x')",
    "return {1, 2, {err = 'nested'}, 4}",
    "return {1, redis.pcall('incr', 'str'), 3}",
    "local co = coroutine.create(function() error('in a coroutine') end) return {coroutine.resume(co)}",
    "return redis.call('get', 'k', 'extra')",
    "return redis.pcall('set')",
    "return select(-1)",
    "return math.floor()",
    "return string.rep()",
    "return unpack(nil)",
    "return table.concat({{}})",
    "return ({})[nil]",
    "local t = {} t[nil] = 1",
    "return loadstring('return +')",
    "return loadstring(string.dump(function() end))",
    "return cjson.decode('{')",
    "return cmsgpack.unpack('\\193')",
    "return struct.unpack('>I', 'x')",
    "while true do error('in a loop') end",
]


def _raw(proc, *cmds) -> bytes:
    """Send commands ending with PING on a fresh connection, read up to its
    +PONG (replies nested too deep for the test's RESP reader)."""
    assert cmds[-1] == ("PING",)
    s = socket.create_connection(("127.0.0.1", proc.port), timeout=30)
    s.sendall(b"".join(encode_request(c) for c in cmds))
    buf = b""
    while not buf.endswith(b"+PONG\r\n"):
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    s.close()
    return buf


def test_deep_recursion_same_as_redis(diff):
    diff("SET", "str", "not-a-number")
    for script in RECURSION:
        diff(E, script, "0")
    diff("PING")


@pytest.mark.parametrize("resp", ["2", "3"])
def test_tables_that_contain_themselves_same_as_redis(frtrio_proc, redis_proc, resp):
    """The same bytes as Redis (the nesting stops at the same depth) and the
    same errorstats (each 'reached lua stack limit' is an error reply)."""
    for script in CYCLES:
        cmds = [("HELLO", resp), ("CONFIG", "RESETSTAT"), (E, script, "0"),
                ("INFO", "errorstats"), ("PING",)]
        f = _raw(frtrio_proc, *cmds)
        r = _raw(redis_proc, *cmds)
        f, r = f[f.index(b"+OK\r\n"):], r[r.index(b"+OK\r\n"):]  # (HELLO's server fields differ)
        assert f == r, script
        assert b"reached lua stack limit" in f or script.endswith("return {map = t}") \
            or "t.set = t" in script
        assert f.endswith(b"+PONG\r\n")


def test_errors_of_every_kind_same_as_redis(diff):
    diff("SET", "str", "not-a-number")
    diff("CONFIG", "RESETSTAT")
    for script in ERRORS:
        diff(E, script, "0")
    diff("GET", "written")  # the write before the error stays
    for script in ERRORS[:8]:
        diff("EVAL_RO", script, "0")
    diff("INFO", "errorstats")
    lib = ("#!lua name=bad\n"
           "redis.register_function('e1', function() error('fn error') end)\n"
           "redis.register_function('e2', function() error({err = 'CODE x'}) end)\n"
           "redis.register_function('e3', function() return redis.call('nosuch') end)\n"
           "redis.register_function('e4', function() local t = {} t[1] = t return t end)\n")
    diff("FUNCTION", "LOAD", "REPLACE", lib)
    for f in ("e1", "e2", "e3"):
        diff("FCALL", f, "0")
    diff("FUNCTION", "LOAD", "REPLACE", "#!lua name=bad2\nerror('at load')")
    diff("FUNCTION", "LOAD", "REPLACE", "#!lua name=bad3\nlocal function f() return f() + 1 end f()")
    diff("FUNCTION", "FLUSH")
    diff("PING")


def test_error_tables_redis_crashes_on(frtrio_proc):
    """An error table without 'err' (or whose __tostring fails) makes Redis
    7.0.15 crash (sdscatfmt of a NULL message in luaCallFunction); frtrio
    answers luaCallFunction's generic error and keeps serving."""
    c = frtrio_proc.conn()
    try:
        for script, sha in (("error({})", b"367bf7fe449ba40e54d99d9086aa3c2164008136"),
                            ("error(setmetatable({}, {__tostring = function() error('x') end}))",
                             b"313652761ce90f517073af93e20562ac04b82bac")):
            assert c.cmd(E, script, "0") == (b"-ERR Error running script %s, execution failure\r\n"
                                            % sha)
        assert c.cmd("PING") == b"+PONG\r\n"
    finally:
        c.close()


def test_unbounded_allocation_in_process(monkeypatch):
    """A Lua state's heap is capped (Vm.HEAP_LIMIT; small here): a script
    that allocates without bound, in any way, gets luaCallFunction's
    'Error running script ..., not enough memory'; pcall sees Lua's memory
    error; the state is usable afterwards and its memory comes back."""
    import random

    from frtrio.config import Config
    from frtrio.core.engine import Server
    from frtrio.scripting.engine import Vm
    import frtrio.commands  # noqa: F401

    monkeypatch.setattr(Vm, "HEAP_LIMIT", 32 << 20)
    srv = Server(Config(), random.Random(1))
    c = srv.new_client()

    def run(*argv):
        srv.execute(c, [a if isinstance(a, bytes) else a.encode() for a in argv])
        return c.take_output()

    for script in ("local s = 'x' for i = 1, 40 do s = s .. s end return #s",
                   "local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end",
                   "local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep(tostring(i), 50) end",
                   "return string.rep('x', 1e9)",
                   "local t = {} for i = 1, 1e9 do t[i] = i end"):
        sha = run("SCRIPT", "LOAD", script)[5:45]
        assert run(E, script, "0") == b"-ERR Error running script %s, not enough memory\r\n" % sha
        assert run(E, "return redis.call('ping')", "0") == b"+PONG\r\n"
    assert run(E, "local ok, e = pcall(function() local s = 'x' for i = 1, 40 do s = s .. s end end) "
                  "return {tostring(ok), e}", "0") == b"*2\r\n$5\r\nfalse\r\n$17\r\nnot enough memory\r\n"
    assert run("FUNCTION", "LOAD", "#!lua name=m\nredis.register_function('m', function() "
               "local t = {} while true do t[#t + 1] = {} end end)") == b"$1\r\nm\r\n"
    assert run("FCALL", "m", "0") == b"-ERR Error running script m, not enough memory\r\n"
    info = run("INFO", "memory")
    used = int(info.split(b"used_memory_vm_eval:")[1].split(b"\r\n")[0])
    assert used < 8 << 20  # the garbage of the failed scripts was freed
    run("INFO", "errorstats")
    assert b"errorstat_ERR:count=6" in run("INFO", "errorstats")


def test_unbounded_allocation_real_process(frtrio_proc):
    """Against a running frtrio (the real 1 GiB cap): the script fails with a
    clear error within seconds and the node keeps serving. (Redis 7.0.15
    has no cap: its Lua takes the host's memory, so no comparison here.)"""
    c = frtrio_proc.conn(timeout=60)
    d = frtrio_proc.conn()
    try:
        script = "local s = 'x' for i = 1, 40 do s = s .. s end return #s"
        sha = c.cmd("SCRIPT", "LOAD", script)[5:45]
        t0 = time.monotonic()
        assert c.cmd(E, script, "0") == b"-ERR Error running script %s, not enough memory\r\n" % sha
        assert time.monotonic() - t0 < 30
        assert d.cmd("PING") == b"+PONG\r\n"
        assert c.cmd("SET", "after", "1") == b"+OK\r\n"
        assert c.cmd(E, "return redis.call('get', 'after')", "0") == b"$1\r\n1\r\n"
        c.cmd("DEL", "after")
    finally:
        c.close()
        d.close()


def test_endless_tail_recursion_is_busy_and_killable(frtrio_proc, redis_proc):
    """A tail-recursive script never ends (tail calls need no stack), as in
    Redis: other clients get -BUSY, SCRIPT KILL stops it, the node serves
    again; the same replies as Redis."""
    from test_scripting import _busy_scenario

    script = (E, "local function f(n) return f(n + 1) end return f(1)", "0")
    f = _busy_scenario(frtrio_proc, script, ("SCRIPT", "KILL"))
    r = _busy_scenario(redis_proc, script, ("SCRIPT", "KILL"))
    assert f == r
    assert f[0].startswith(b"-BUSY")
    assert f[-1] == b"+PONG\r\n"
