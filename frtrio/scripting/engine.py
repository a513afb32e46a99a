"""The scripting engine: one Lua 5.1 interpreter per server (``lupa.lua51``),
the EVAL script cache, the FUNCTION libraries, and running either of them
(Redis 7.0's eval.c, script.c, script_lua.c, function_lua.c, functions.c).

A script's ``redis.call`` runs the command through ``Server.call`` on a
script client (a ``Client`` not listed among the connections), then parses
the RESP bytes it produced into Lua values, as Redis does. The script's
return value is turned into RESP bytes by the Lua prelude
(``prelude.py``) so tables are walked by Lua itself (``rawget`` until the
first nil, ``next`` order for maps) exactly as Redis's C code does.
"""

from __future__ import annotations

import hashlib
import logging

import lupa.lua51 as _lua

from frtrio.core.client import F as _F
from frtrio.core.effects import AofOnly, ReplOnly
from frtrio.protocol.parser import split_args
from frtrio.protocol.reply import ErrorReply
from frtrio.scripting.prelude import PRELUDE
from frtrio.scripting.runner import DONE, SUSPENDED, Runner
from frtrio.scripting.tailcall import keep_frames

_log = logging.getLogger("frtrio")

REDIS_VERSION = "7.0.15"
REDIS_VERSION_NUM = 0x0007000F

# script flags (Redis's SCRIPT_FLAG_*)
F_NO_WRITES = 1 << 0
F_ALLOW_OOM = 1 << 1
F_ALLOW_STALE = 1 << 2
F_NO_CLUSTER = 1 << 3
F_EVAL_COMPAT = 1 << 4
F_ALLOW_CROSS_SLOT = 1 << 5
FLAG_NAMES = [
    (F_NO_WRITES, b"no-writes"),
    (F_ALLOW_OOM, b"allow-oom"),
    (F_ALLOW_STALE, b"allow-stale"),
    (F_NO_CLUSTER, b"no-cluster"),
    (F_ALLOW_CROSS_SLOT, b"allow-cross-slot-keys"),
]

SLOWEVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
SLOWSCRIPT = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."

_LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.WARNING}


def sha1hex(b: bytes) -> bytes:
    return hashlib.sha1(b).hexdigest().encode()


def parse_shebang(body: bytes):
    """Redis's evalExtractShebangFlags: (flags, shebang_len) or raises ErrorReply."""
    flags = F_EVAL_COMPAT
    if not body.startswith(b"#!"):
        return flags, 0
    nl = body.find(b"\n")
    if nl < 0:
        raise ErrorReply("ERR Invalid script shebang")
    parts = split_args(body[:nl])  # sdssplitargs: quotes allowed
    if not parts:
        raise ErrorReply("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise ErrorReply("ERR Unexpected engine in script shebang: %s" % parts[0].decode("latin-1"))
    flags &= ~F_EVAL_COMPAT
    for p in parts[1:]:
        if p.startswith(b"flags="):
            # (sdssplitlen of an empty string: no flags at all)
            for f in (p[6:].split(b",") if len(p) > 6 else ()):
                for bit, name in FLAG_NAMES:
                    if f == name:
                        flags |= bit
                        break
                else:
                    raise ErrorReply("ERR Unexpected flag in script shebang: %s" % f.decode("latin-1"))
        else:
            raise ErrorReply("ERR Unknown lua shebang option: %s" % p.decode("latin-1"))
    return flags, nl


class Script:
    __slots__ = ("body", "flags", "fn")

    def __init__(self, body, flags, fn):
        self.body = body
        self.flags = flags
        self.fn = fn


class Function:
    __slots__ = ("name", "fn", "desc", "flags", "library")

    def __init__(self, name, fn, desc, flags, library):
        self.name = name
        self.fn = fn
        self.desc = desc
        self.flags = flags
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name, code):
        self.name = name
        self.code = code
        self.functions: dict[bytes, Function] = {}


class RunCtx:
    """One running script (Redis's scriptRunCtx)."""

    __slots__ = ("caller", "sc", "funcname", "flags", "eval_mode", "read_only", "allow_oom",
                 "cross_slot", "write_dirty", "repl_flags", "killed", "timedout", "start_us",
                 "now_ms", "slot", "prop_first", "reply", "errors", "argv", "pending")

    def __init__(self):
        self.killed = False
        self.timedout = False
        self.write_dirty = False
        self.repl_flags = 3
        self.slot = -1
        self.pending = []


class _RespParser:
    """RESP2/3 bytes from the script client -> Lua values (Redis's
    redisProtocolToLuaType)."""

    def __init__(self, eng):
        self.eng = eng

    def parse(self, data: bytes):
        self.data = data
        self.pos = 0
        return self._one(True)

    def _line(self):
        d = self.data
        e = d.index(b"\r\n", self.pos)
        s = d[self.pos + 1:e]
        self.pos = e + 2
        return s

    def _bulk(self, n):
        s = self.data[self.pos:self.pos + n]
        self.pos += n + 2
        return s

    def _one(self, top=False):
        eng = self.eng
        t = self.data[self.pos:self.pos + 1]
        if t == b"$":
            n = int(self._line())
            if n < 0:
                return False
            return self._bulk(n)
        if t == b":":
            return int(self._line())
        if t == b"+":
            return eng.table({b"ok": self._line()})
        if t == b"-":
            e = eng.err_table(b"-" + self._line())
            e[b"ignore_error_stats_update"] = True
            return e
        if t == b"*":
            n = int(self._line())
            if n < 0:
                return False
            tb = eng.new_table()
            for i in range(1, n + 1):
                v = self._one()
                if v is not None:
                    tb[i] = v
            return tb
        if t == b"%":
            n = int(self._line())
            m = eng.new_table()
            for _ in range(n):
                k = self._one()
                v = self._one()
                if k is not None:
                    m[k] = v
            return eng.table({b"map": m})
        if t == b"~":
            n = int(self._line())
            s = eng.new_table()
            for _ in range(n):
                k = self._one()
                if k is not None:
                    s[k] = True
            return eng.table({b"set": s})
        if t == b"#":
            return self._line() == b"t"
        if t == b"_":
            self._line()
            return None
        if t == b",":
            s = self._line()
            return eng.table({b"double": _strtod(s)})
        if t == b"(":
            return eng.table({b"big_number": self._line()})
        if t == b"=":
            n = int(self._line())
            s = self._bulk(n)
            v = eng.new_table()
            v[b"string"] = s[4:]
            v[b"format"] = s[:3]
            return eng.table({b"verbatim_string": v})
        if t == b">":
            n = int(self._line())
            tb = eng.new_table()
            for i in range(1, n + 1):
                tb[i] = self._one()
            return tb
        if t == b"|":
            n = int(self._line())
            for _ in range(2 * n):
                self._one()
            return self._one()
        raise ValueError("bad reply from command: %r" % self.data[:40])


def _strtod(s: bytes) -> float:
    try:
        return float(s)
    except ValueError:
        return 0.0


def _unpack(n, t) -> list:
    """The arguments redis.call got packed in a Lua table (too many for a
    direct call into Python)."""
    return [t[i] for i in range(1, int(n) + 1)]


def _lltoa(v) -> bytes:
    """(long long) of a Lua number, as C converts it on x86-64."""
    if v != v or v >= 9.223372036854775807e18 or v < -9.223372036854775808e18:
        return b"-9223372036854775808"
    return b"%d" % int(v)


class Vm:
    """One Lua 5.1 state with Redis's additions: the prelude (the ``redis``
    table, the error handler, the sandbox, the reply encoder), the libraries,
    and for the FUNCTION state, the library-loading environment.

    The heap of each state is capped at ``HEAP_LIMIT``: a script that
    allocates without bound fails with Lua's ``not enough memory`` (Redis
    has no cap: its Lua takes the host's memory until the kernel's OOM
    killer stops the process)."""

    HEAP_LIMIT = 1 << 30

    def __init__(self, eng, functions: bool = False):
        L = _lua.LuaRuntime(encoding=None, unpack_returned_tuples=True,
                            register_eval=False, register_builtins=False,
                            max_memory=self.HEAP_LIMIT)
        self.L = L
        G = L.globals()
        prims = L.table_from({
            b"call": eng._lua_call,
            b"pcall": eng._lua_pcall,
            b"call_packed": lambda n, t: eng._lua_call(*_unpack(n, t)),
            b"pcall_packed": lambda n, t: eng._lua_pcall(*_unpack(n, t)),
            b"unwrap": eng._unwrap,
            b"sha1hex": lambda s: sha1hex(s if isinstance(s, bytes) else b""),
            b"log": eng._py_log,
            b"version": REDIS_VERSION.encode(),
            b"version_num": REDIS_VERSION_NUM,
            b"running": lambda: eng.ctx is not None,
            b"setresp": eng._py_setresp,
            b"set_repl": eng._py_set_repl,
            b"acl_check": eng._py_acl_check,
            b"rand": eng._py_rand,
            b"srand": eng._py_srand,
            b"hook": eng._py_hook,
            b"load_expired": lambda: eng.server.unix_us() - eng._load_start_us > 500_000,
            b"still_killed": lambda: eng._in_script and eng.ctx is not None and eng.ctx.killed,
            b"lltoa": _lltoa,
        })
        for name in (b"python", b"os", b"io", b"package", b"require", b"module", b"dofile",
                     b"loadfile", b"print"):
            G[name] = None
        loader = L.eval("function(src) local f, e = loadstring(src, '=[frtrio]')"
                        " return f or false, e or false end")
        chunk, e = loader(PRELUDE.encode())
        if not chunk:
            raise RuntimeError("prelude: %r" % e)
        chunk(prims)
        F = G[b"__frt"]
        self.F = F
        self.errinfo = F[b"errinfo"]
        self.exec = F[b"exec"]
        self.run_load = F[b"run_load"]
        self.sethook = F[b"sethook"]
        self.err_table = F[b"err_table"]
        G[b"__frt"] = None
        G[b"redis"] = F[b"redis"]
        G[b"pcall"] = F[b"pcall"]
        G[b"debug"] = None
        math = G[b"math"]
        math[b"random"] = F[b"random"]
        math[b"randomseed"] = F[b"randomseed"]
        for name in (b"rawset", b"setmetatable", b"getmetatable", b"next", b"pairs", b"rawget",
                     b"loadstring"):
            G[name] = F[name]
        from frtrio.scripting import libs

        libs.install(eng, self, G)
        self._compile = F[b"compile"]
        self._dump = F[b"dump"]
        self._undump = F[b"undump"]
        self.G = G
        self.env = F[b"sandbox"](G, None)
        F[b"env"] = self.env
        self.fn_ctx = None
        self._mem = 0
        if functions:
            from frtrio.scripting.prelude import FUNCTION_PRELUDE

            chunk, e = loader(FUNCTION_PRELUDE.encode())
            if not chunk:
                raise RuntimeError("function prelude: %r" % e)
            fprims = L.table_from({b"register": eng._py_register})
            self.fn_ctx = chunk(fprims, self.env, G[b"redis"])

    def compile(self, src: bytes, name: bytes, env):
        """Compile a script or library: (function, False) or (False, error).
        Tail calls to redis.call / redis.pcall become plain calls
        (tailcall.py), so the script's frame stays as under Redis."""
        fn, e = self._compile(src, name, env)
        if fn:
            patched = keep_frames(self._dump(fn))
            if patched is not None:
                fn2 = self._undump(patched, env)
                if fn2:
                    fn = fn2
        return fn, e

    def memory(self, eng) -> int:
        """Bytes the heap uses (the last value seen while a script is
        suspended: the interpreter is not ours to touch then)."""
        if eng.busy_ctx is None and not eng.runner.in_worker:
            self._mem = int(self.L.eval(
                "(function() collectgarbage('collect') return collectgarbage('count') end)()")
                            * 1024)
        return self._mem

    def close(self):
        self.F = self.G = self.env = self.fn_ctx = None
        self.errinfo = self.run_load = self.exec = None
        self.sethook = self.err_table = self.compile = None
        self.L = None


class Scripting:
    """Scripting state of one server."""

    def __init__(self, server):
        self.server = server
        self.scripts: dict[bytes, Script] = {}
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}
        self.ctx: RunCtx | None = None
        self.loading_library: Library | None = None
        self.runner = Runner()
        self.rand_x = 0x1234ABCD330E
        self.busy_ctx: RunCtx | None = None  # a suspended (timed out) script
        self.can_suspend = False  # set by the node shell: it resumes suspended scripts
        self._init_lua()
        self.sc = None
        self._in_script = False
        # the protocol redis.setresp chose for the running script (one callable:
        # a new one per run would be a new Lua userdata each time)
        self._get_sresp = lambda: self.ctx.sc.resp
        self._threshold_raw = None
        self._threshold_ms = 0
        self._load_start_us = 0

    # --- the interpreters -----------------------------------------------------

    def _init_lua(self):
        # two Lua states, as Redis has: one for EVAL scripts (SCRIPT FLUSH
        # starts it afresh), one for FUNCTION libraries
        self.ev = Vm(self)
        self.fv = None
        self.vm = self.ev  # the state the running code is in

    def fvm(self) -> "Vm":
        if self.fv is None:
            self.fv = Vm(self, functions=True)
        return self.fv

    def lua_memory(self) -> int:
        """Bytes the EVAL state's heap uses (used_memory_lua)."""
        return self.ev.memory(self)

    def functions_memory(self) -> int:
        """Bytes the FUNCTION state's heap uses (used_memory_vm_functions)."""
        return self.fvm().memory(self)

    def new_table(self):
        return self.vm.L.table()

    def table(self, d):
        return self.vm.L.table_from(d)

    def err_table(self, msg: bytes):
        return self.vm.err_table(msg)

    def reset_eval(self):
        """SCRIPT FLUSH: forget every cached script and start the EVAL Lua
        state afresh, as Redis does (its globals, cjson settings...)."""
        self.scripts = {}
        old = self.ev
        self.ev = Vm(self)
        if self.vm is old:
            self.vm = self.ev
        old.close()

    # --- Python primitives called by the prelude ----------------------------

    def _py_log(self, level, msg):
        srv = self.server
        verbosity = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3}.get(
            srv.config.get("loglevel"), 2)
        if level < verbosity:
            return
        _log.log(_LOG_LEVELS.get(int(level), logging.WARNING), "%s", msg.decode("utf-8", "replace")
                 if isinstance(msg, bytes) else msg)

    def _py_setresp(self, r):
        self.ctx.sc.resp = int(r)

    def _py_set_repl(self, f):
        self.ctx.repl_flags = int(f)

    def _py_rand(self):
        # Redis's redisLrand48 (the 48-bit LCG of lrand48), % INT32_MAX / INT32_MAX
        self.rand_x = (0x5DEECE66D * self.rand_x + 0xB) & 0xFFFFFFFFFFFF
        r = self.rand_x >> 17
        return (r % 2147483647) / 2147483647.0

    def _py_srand(self, s):
        s = int(s) & 0xFFFFFFFF
        self.rand_x = (s << 16) | 0x330E

    def _py_hook(self):
        """The count hook (Redis's scriptInterrupt): True to kill the script."""
        ctx = self.ctx
        if ctx is None:
            return False
        srv = self.server
        if not ctx.timedout:
            elapsed_ms = (srv.unix_us() - ctx.start_us) // 1000
            limit = srv.config.get_int("busy-reply-threshold")
            if elapsed_ms < limit:
                return False
            _log.warning("Slow script detected: still in execution after %d milliseconds. "
                         "You can try killing the script using the %s command. Script name is: %s.",
                         elapsed_ms, "SCRIPT KILL" if ctx.eval_mode else "FUNCTION KILL",
                         ctx.funcname.decode("latin-1"))
            ctx.timedout = True
        if self.server.script_can_suspend and self.runner.in_worker:
            self.busy_ctx = ctx
            # the writes so far wait aside: the shell may flush the AOF
            # meanwhile, and they must go out together, in MULTI/EXEC
            prop = srv.propagated
            ctx.pending.extend(prop[ctx.prop_first:])
            del prop[ctx.prop_first:]
            self.runner.suspend()
            # back from the shell: time as the script saw it
            srv.now_ms = ctx.now_ms
            ctx.prop_first = len(srv.propagated)
        if ctx.killed:
            _log.warning("Lua script killed by user with %s.",
                         "SCRIPT KILL" if ctx.eval_mode else "FUNCTION KILL")
            return True
        return False

    def _py_acl_check(self, *args):
        argv, e = self._lua_argv(args)
        if e is not None:
            return 1, e
        from frtrio.commands import table as _table

        cmd = _table.TABLE.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) >= 2:
            cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            return 1, self.err_table(b"Invalid command passed to redis.acl_check_cmd()")
        # the permissions of the client that runs the script
        ctx = self.ctx
        user = ctx.caller.auser if ctx is not None and ctx.caller is not None else None
        if user is None or user.allow_all:
            return 0, True
        return 0, user.check_command(cmd, argv)[0] == 0

    def _lua_call(self, *args):
        s, v = self._py_call(*args)
        if s:
            raise _lua.LuaError(v)
        return v

    def _lua_pcall(self, *args):
        return self._py_call(*args)[1]

    @staticmethod
    def _unwrap(e):
        if isinstance(e, _lua.LuaError) and e.args:
            return e.args[0]
        return e

    def _lua_argv(self, args):
        if not args:
            return None, self.err_table(b"Please specify at least one argument for this redis lib call")
        argv = []
        for a in args:
            t = type(a)
            if t is bytes:
                argv.append(a)
            elif t is int or t is float:
                argv.append(b"%.17g" % a)
            else:
                return None, self.err_table(b"Lua redis lib command arguments must be strings or integers")
        return argv, None

    def _py_call(self, *args):
        """redis.call / redis.pcall: (0, value) or (1, error table)."""
        ctx = self.ctx
        if ctx is None:
            return 1, self.err_table(b"redis.call/pcall can only be called inside a script invocation")
        argv, e = self._lua_argv(args)
        if e is not None:
            return 1, e
        err = self._script_call(ctx, argv)
        if err is not None:
            t = self.err_table(err.encode("latin-1") if isinstance(err, str) else err)
            t[b"ignore_error_stats_update"] = True
            return 1, t
        sc = ctx.sc
        data = sc.take_output()
        if not data:
            return 0, None
        try:
            v = _RespParser(self).parse(data)
        except Exception:  # noqa: BLE001
            self.server.note_internal_error("script reply parse")
            return 1, self.err_table(b"ERR internal error parsing a reply")
        if data[:1] == b"-":
            return 1, v
        return 0, v

    def _script_call(self, ctx, argv):
        """Redis's scriptCall: checks, then the command. None, or an error text."""
        from frtrio.commands import table as _table

        srv = self.server
        sc = ctx.sc
        cmd = _table.TABLE.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) >= 2:
            sub = cmd.subcommands.get(argv[1].lower())
            cmd = sub
        rejected = None
        if cmd is None or cmd.handler is None:
            rejected = "Unknown Redis command called from script"
        elif not cmd.arity_ok(len(argv)):
            rejected = "Wrong number of args calling Redis command from script"
        elif cmd.noscript and not getattr(srv, "script_disable_deny", False):
            rejected = "This Redis command is not allowed from script"
        elif (not cmd.stale and srv.repl.masterhost is not None and not srv.repl.link_up
              and srv.config.get("replica-serve-stale-data") == "no"):
            rejected = "Can not execute the command on a stale replica"  # scriptVerifyAllowStale
        elif not sc.auser.allow_all and (acl_kind := srv.acl_denied(sc, cmd, argv, 2)[0]):
            from frtrio.core.acl import ERROR_FOR  # scriptVerifyACL

            rejected = "The user executing the script " + ERROR_FOR[acl_kind]
        elif ctx.read_only and (cmd.is_write or cmd.may_replicate):
            rejected = "Write commands are not allowed from read-only scripts."
        elif (cmd.is_write and not ctx.write_dirty and srv.repl.masterhost is not None
              and not ctx.caller.flags & _F.MASTER
              and srv.config.get("replica-read-only") == "yes"):
            rejected = "-READONLY You can't write against a read only replica."
        elif cmd.is_write and not ctx.write_dirty and srv.disk_error is not None:
            rejected = "-" + srv.disk_error  # (a leading '-': the error keeps its code)
        elif cmd.is_write and not ctx.write_dirty and srv.repl.too_few_good:
            rejected = "-NOREPLICAS Not enough good replicas to write."
        elif (cmd.denyoom and not ctx.write_dirty and not ctx.allow_oom and srv.maxmemory
              and srv.oom_at_start and not ctx.caller.flags & _F.MASTER):
            # scriptVerifyOOM: only before the script's first write
            rejected = "-OOM command not allowed when used memory > 'maxmemory'."
        if rejected is None:
            if cmd.is_write:
                ctx.write_dirty = True
            rejected = self._cluster_check(ctx, cmd, argv)
        if rejected is not None:
            srv.count_error(rejected[1:] if rejected[:1] == "-" else "ERR " + rejected)
            if cmd is not None:
                srv.cmd_stat(cmd.fullname)[2] += 1
            # (incrCommandStatsOnError: this error is the command's, not the script's)
            srv.prev_err_count = srv.stats["total_error_replies"]
            return rejected
        np = len(srv.propagated)
        sc.flags |= _F.IN_EXEC  # blocking commands answer at once
        srv.call(sc, cmd, argv)
        if sc.blocked is not None and srv.blocking is not None:
            srv.blocking.timeout(sc)
        flags = ctx.repl_flags
        if flags != 3 and len(srv.propagated) > np:
            # redis.set_repl: to the AOF only, the replicas only, or nowhere
            prop = srv.propagated
            if flags == 0:
                del prop[np:]
            else:
                mark = AofOnly if flags == 1 else ReplOnly
                for i in range(np, len(prop)):
                    dbid, argv = prop[i]
                    prop[i] = (dbid, mark(argv))
        return None

    def _cluster_check(self, ctx, cmd, argv):
        srv = self.server
        cluster = srv.cluster
        if cluster is None or (ctx.caller.flags & _F.MASTER):
            return None
        if not cmd.movable and not cmd.has_key_specs:
            return None
        from frtrio.cluster import routing
        from frtrio.cluster.slots import key_slot

        c = ctx.caller
        r = cluster.router.decide(cluster.opts, cmd, argv, asking=bool(c.flags & _F.ASKING), readonly=bool(c.flags & _F.READONLY),
                                  queued=None, multi=None, db=srv.dbs[0], now_ms=srv.now_ms)
        if r.kind != routing.LOCAL:
            if r.kind == routing.DOWN_RO_STATE:
                return "Script attempted to execute a write command while the cluster is down and readonly"
            if r.kind == routing.DOWN_STATE:
                return "Script attempted to execute a command while the cluster is down"
            return "Script attempted to access a non local key in a cluster node"
        keys = cmd.get_keys(argv)
        if keys and not ctx.cross_slot:
            slot = key_slot(argv[keys[0]])
            if ctx.slot == -1:
                ctx.slot = slot
            elif ctx.slot != slot:
                return "Script attempted to access keys that do not hash to the same slot"
        return None

    # --- EVAL ---------------------------------------------------------------

    def create_script(self, body: bytes) -> bytes:
        """Redis's luaCreateFunction: the sha, or raises ErrorReply."""
        sha = sha1hex(body)
        if sha in self.scripts:
            return sha
        flags, shebang_len = parse_shebang(body)
        ev = self.ev
        fn, e = ev.compile(body[shebang_len:], b"@user_script", ev.env)
        if not fn:
            raise ErrorReply("ERR Error compiling script (new function): %s"
                             % e.decode("utf-8", "replace"))
        self.scripts[sha] = Script(body, flags, fn)
        return sha

    def prepare(self, c, funcname: bytes, flags: int, ro: bool, eval_mode: bool, keys=()) -> RunCtx:
        """Redis's scriptPrepareForRun: raises ErrorReply when refused."""
        srv = self.server
        repl = srv.repl
        obey = bool(c.flags & _F.MASTER)
        running_stale = (repl.masterhost is not None and not repl.link_up
                         and srv.config.get("replica-serve-stale-data") == "no")
        if not (flags & F_EVAL_COMPAT):
            if (flags & F_NO_CLUSTER) and srv.cluster is not None:
                raise ErrorReply("ERR Can not run script on cluster, 'no-cluster' flag is set.")
            if running_stale and not (flags & F_ALLOW_STALE):
                raise ErrorReply("MASTERDOWN Link with MASTER is down, replica-serve-stale-data "
                                 "is set to 'no' and 'allow-stale' flag is not set on the script.")
            if not (flags & F_NO_WRITES):
                if (repl.masterhost is not None and not obey
                        and srv.config.get("replica-read-only") == "yes"):
                    raise ErrorReply("READONLY Can not run script with write flag on readonly "
                                     "replica")
                de = srv.disk_error
                if de is not None and not (c.flags & _F.MASTER):
                    if de.startswith("MISCONF Redis is configured to save RDB"):
                        raise ErrorReply(
                            "MISCONF Redis is configured to save RDB snapshots, but it's currently "
                            "unable to persist to disk. Writable scripts are blocked. Use 'no-writes' "
                            "flag for read only scripts.")
                    raise ErrorReply(
                        "MISCONF Redis is configured to persist data to AOF, but it's currently "
                        "unable to persist to disk. Writable scripts are blocked. Use 'no-writes' "
                        "flag for read only scripts. AOF error: %s" % (srv.aof_write_error or ""))
                if ro:
                    raise ErrorReply("ERR Can not execute a script with write flag using *_ro command.")
                if repl.masterhost is None and repl.too_few_good:
                    raise ErrorReply("NOREPLICAS Not enough good replicas to write.")
            if (srv.oom_at_start and srv.maxmemory
                    and not (flags & (F_ALLOW_OOM | F_NO_WRITES))):
                raise ErrorReply("OOM allow-oom flag is not set on the script, can not run it when "
                                 "used memory > 'maxmemory'")
        elif running_stale:
            raise ErrorReply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is "
                             "set to 'no'.")
        ctx = RunCtx()
        ctx.caller = c
        ctx.funcname = funcname
        ctx.flags = flags
        ctx.eval_mode = eval_mode
        compat = bool(flags & F_EVAL_COMPAT)
        ctx.read_only = ro or (not compat and bool(flags & F_NO_WRITES))
        ctx.allow_oom = not compat and bool(flags & F_ALLOW_OOM)
        ctx.cross_slot = compat or bool(flags & F_ALLOW_CROSS_SLOT)
        ctx.start_us = srv.unix_us()
        ctx.now_ms = srv.now_ms
        if srv.cluster is not None and keys:
            from frtrio.cluster.slots import key_slot

            ctx.slot = key_slot(keys[0])
        sc = self._script_client()
        sc.select(c.dbid)
        sc.resp = 2
        sc.out.clear()
        sc.out_bytes = 0
        sc.user = c.user
        sc.auser = c.auser
        sc.multi = None
        ctx.sc = sc
        return ctx

    def _script_client(self):
        if self.sc is None:
            sc = _ScriptClient(self.server, 0)
            sc.authenticated = True
            sc.name = b""
            self.sc = sc
        return self.sc

    def start(self, ctx: RunCtx, fn, keys, args):
        """Run the script: returns (DONE, reply-bytes) or (SUSPENDED, None)."""
        srv = self.server
        ctx.prop_first = len(srv.propagated)
        self.ctx = ctx
        self.vm = self.ev if ctx.eval_mode else self.fvm()
        return self._finish_or_suspend(self.runner.start(lambda: self._body(ctx, fn, keys, args)))

    def resume(self):
        return self._finish_or_suspend(self.runner.resume())

    def _finish_or_suspend(self, outcome):
        state, r = outcome
        if state == SUSPENDED:
            return SUSPENDED, None
        self.busy_ctx = None
        ctx = self.ctx
        self.ctx = None
        srv = self.server
        # effects replication: the commands the script ran, in MULTI/EXEC
        prop = srv.propagated
        first = ctx.prop_first
        if ctx.pending:
            prop[first:first] = ctx.pending
            ctx.pending = []
        if len(prop) - first > 1 and not (ctx.caller.flags & _F.IN_EXEC) and ctx.caller.multi is None:
            prop.insert(first, (prop[first][0], [b"MULTI"]))
            prop.append((prop[-1][0], [b"EXEC"]))
        srv.prevent_propagation = True
        return DONE, r

    def _threshold(self) -> int:
        """busy-reply-threshold, parsed again only when its text changed."""
        cfg = self.server.config
        raw = cfg.values["busy-reply-threshold"]
        if raw != self._threshold_raw:
            self._threshold_ms = cfg.get_int("busy-reply-threshold")
            self._threshold_raw = raw
        return self._threshold_ms

    def _body(self, ctx, fn, keys, args):
        """On the worker thread: call the Lua function, encode its result
        (one call into Lua: prelude's F.exec)."""
        vm = self.vm
        L = vm.L
        hook = self._threshold() > 0
        self._in_script = True
        try:
            r = vm.exec(ctx.eval_mode, fn, L.table_from(keys), L.table_from(args), hook,
                        ctx.caller.resp == 3, self._get_sresp)
        except BaseException:
            if hook:
                vm.sethook(False)
            raise
        finally:
            self._in_script = False
        if r[0]:
            _ok, data, ignored, nerrs, errs = r
            for i in range(1, nerrs + 1):
                self.server.count_error(errs[i].decode("latin-1"))
            for _ in range(ignored):
                self._failed_no_stats(ctx)
            return data
        v = r[1]
        if isinstance(v, bytes):
            # an error the handler did not turn into a table (Lua's memory
            # error, an error in the handler): luaCallFunction's
            # 'Error running script %s, %.100s' (the C string ends at a NUL)
            text = b"ERR Error running script %s, %s" % (ctx.funcname, v.split(b"\0", 1)[0][:100])
            text = text.rstrip(b"\r\n").replace(b"\r", b" ").replace(b"\n", b" ")
            self.server.count_error(text.decode("latin-1"))
            return b"-" + text + b"\r\n"
        msg, source, line, ignore = vm.errinfo(v)
        if msg is None:
            text = b"ERR Error running script %s, execution failure" % ctx.funcname
            out = b"-" + text + b"\r\n"
            self.server.count_error(text.decode("latin-1"))
            return out
        final = msg
        if source is not None and line is not None:
            final += b" script: %s, on %s:%s." % (ctx.funcname, source, line)
        if not ignore:
            self.server.count_error(final.decode("latin-1"))
        else:
            self._failed_no_stats(ctx)
        if final.startswith(b"-"):
            final = final[1:]
        return b"-" + final + b"\r\n"

    def _failed_no_stats(self, ctx):
        """An error reply sent without counting it (it was counted when the
        command inside the script failed): the EVAL/FCALL still failed
        (afterErrorReply's ERR_REPLY_FLAG_NO_STATS_UPDATE branch)."""
        name = ctx.argv[0].lower().decode("latin-1") if getattr(ctx, "argv", None) else None
        if name:
            self.server.cmd_stat(name)[3] += 1

    # --- kill ---------------------------------------------------------------

    def kill(self, is_eval: bool):
        ctx = self.busy_ctx if self.busy_ctx is not None else None
        if ctx is None:
            raise ErrorReply("NOTBUSY No scripts in execution right now.")
        if (ctx.caller.flags & _F.MASTER):
            raise ErrorReply("UNKILLABLE The busy script was sent by a master instance in the "
                             "context of replication and cannot be killed.")
        if ctx.write_dirty:
            raise ErrorReply("UNKILLABLE Sorry the script already executed write commands against "
                             "the dataset. You can either wait the script termination or kill the "
                             "server in a hard way using the SHUTDOWN NOSAVE command.")
        if is_eval and not ctx.eval_mode:
            raise ErrorReply(SLOWSCRIPT)
        if not is_eval and ctx.eval_mode:
            raise ErrorReply(SLOWEVAL)
        ctx.killed = True

    # --- FUNCTION -----------------------------------------------------------

    def _py_register(self, *args):
        lib = self.loading_library
        if lib is None:
            raise _lua.LuaError(self.err_table(
                b"redis.register_function can only be called on FUNCTION LOAD command"))
        if len(args) < 1 or len(args) > 2:
            raise _lua.LuaError(self.err_table(b"wrong number of arguments to redis.register_function"))
        desc = None
        flags = 0
        cb = None
        lua_type = _lua.lua_type
        if len(args) == 1:
            t = args[0]
            if lua_type(t) != "table":
                raise _lua.LuaError(self.err_table(
                    b"calling redis.register_function with a single argument is only applicable to "
                    b"Lua table (representing named arguments)."))
            name = None
            for k, v in t.items():
                if not isinstance(k, (bytes, int, float)):
                    raise _lua.LuaError(self.err_table(
                        b"named argument key given to redis.register_function is not a string"))
                key = (k if isinstance(k, bytes) else (b"%.14g" % k)).lower()
                if key == b"function_name":
                    if not isinstance(v, (bytes, int, float)):
                        raise _lua.LuaError(self.err_table(
                            b"function_name argument given to redis.register_function must be a string"))
                    name = v if isinstance(v, bytes) else b"%.14g" % v
                elif key == b"description":
                    if not isinstance(v, (bytes, int, float)):
                        raise _lua.LuaError(self.err_table(
                            b"description argument given to redis.register_function must be a string"))
                    desc = v if isinstance(v, bytes) else b"%.14g" % v
                elif key == b"callback":
                    if lua_type(v) != "function":
                        raise _lua.LuaError(self.err_table(
                            b"callback argument given to redis.register_function must be a function"))
                    cb = v
                elif key == b"flags":
                    if lua_type(v) != "table":
                        raise _lua.LuaError(self.err_table(
                            b"flags argument to redis.register_function must be a table representing "
                            b"function flags"))
                    i = 1
                    while True:
                        f = v[i]
                        if f is None:
                            break
                        if not isinstance(f, bytes):
                            raise _lua.LuaError(self.err_table(b"unknown flag given"))
                        for bit, fname in FLAG_NAMES:
                            if f.lower() == fname:
                                flags |= bit
                                break
                        else:
                            raise _lua.LuaError(self.err_table(b"unknown flag given"))
                        i += 1
                else:
                    raise _lua.LuaError(self.err_table(b"unknown argument given to redis.register_function"))
            if name is None:
                raise _lua.LuaError(self.err_table(b"redis.register_function must get a function name argument"))
            if cb is None:
                raise _lua.LuaError(self.err_table(b"redis.register_function must get a callback argument"))
        else:
            name, cb = args
            if not isinstance(name, (bytes, int, float)):
                raise _lua.LuaError(self.err_table(b"first argument to redis.register_function must be a string"))
            if isinstance(name, (int, float)):
                name = b"%.14g" % name
            if lua_type(cb) != "function":
                raise _lua.LuaError(self.err_table(b"second argument to redis.register_function must be a function"))
        if not _valid_name(name):
            raise _lua.LuaError(self.err_table(
                # (sic: Redis 7.0 says "Library names" for a bad function name)
                b"Library names can only contain letters, numbers, or underscores(_) and must be at "
                b"least one character long"))
        if name.lower() in lib.functions:  # (function names are case-insensitive)
            raise _lua.LuaError(self.err_table(b"Function already exists in the library"))
        lib.functions[name.lower()] = Function(name, cb, desc, flags, lib)
        return None

    def load_library(self, code: bytes, replace: bool) -> bytes:
        """FUNCTION LOAD: the library name, or raises ErrorReply."""
        if not code.startswith(b"#!"):
            raise ErrorReply("ERR Missing library metadata")
        nl = code.find(b"\n")
        if nl < 0:
            raise ErrorReply("ERR Invalid library metadata")
        parts = split_args(code[:nl])  # sdssplitargs: name="x" is name=x
        if not parts:
            raise ErrorReply("ERR Invalid library metadata")
        engine_name = parts[0][2:]
        name = None
        for p in parts[1:]:
            if p[:5].lower() == b"name=":
                if name is not None:
                    raise ErrorReply("ERR Invalid metadata value, name argument was given multiple times")
                name = p[5:]
                continue
            raise ErrorReply("ERR Invalid metadata value given: %s" % p.decode("latin-1"))
        if name is None:
            raise ErrorReply("ERR Library name was not given")
        if not _valid_name(name):
            raise ErrorReply("ERR Library names can only contain letters, numbers, or underscores(_) "
                             "and must be at least one character long")
        if engine_name.lower() != b"lua":
            raise ErrorReply("ERR Engine '%s' not found" % engine_name.decode("latin-1"))
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise ErrorReply("ERR Library '%s' already exists" % name.decode("latin-1"))
        fv = self.fvm()
        fctx = fv.fn_ctx
        fn, e = fv.compile(code[nl:], b"@user_function", fctx[b"env"])
        if not fn:
            raise ErrorReply("ERR Error compiling function: %s" % e.decode("utf-8", "replace"))
        lib = Library(name, code)
        self.loading_library = lib
        fctx[b"set_loading"](True)
        self._load_start_us = self.server.unix_us()
        set_hook = fv.F[b"set_load_hook"]
        prev_vm, self.vm = self.vm, fv
        set_hook(True)
        try:
            ok, e = fv.run_load(fn)
        finally:
            set_hook(False)
            fctx[b"set_loading"](False)
            self.loading_library = None
            self.vm = prev_vm
        if not ok:
            msg, _s, _l, _i = fv.errinfo(e)
            raise ErrorReply("ERR Error registering functions: %s"
                             % (msg or b"").decode("utf-8", "replace"))
        if not lib.functions:
            raise ErrorReply("ERR No functions registered")
        for fname, fn in lib.functions.items():
            f = self.functions.get(fname)
            if f is not None and f.library is not old:
                raise ErrorReply("ERR Function %s already exists" % fn.name.decode("latin-1"))
        if old is not None:
            self.delete_library(name)
        self.libraries[name] = lib
        self.functions.update(lib.functions)
        return name

    def delete_library(self, name: bytes) -> None:
        lib = self.libraries.pop(name)
        for fname in lib.functions:
            self.functions.pop(fname, None)

    def flush_functions(self) -> None:
        self.libraries = {}
        self.functions = {}


def _make_script_client_class():
    from frtrio.core.client import Client

    class ScriptClient(Client):
        """The client scripts run their commands as (Redis's lua_client):
        not among the connections; commands that must not block or behave
        differently in scripts see ``in_script``."""

        __slots__ = ("in_script",)

        def __init__(self, server, id):
            super().__init__(server, id)
            self.in_script = True

    return ScriptClient


def _ScriptClient(server, id):
    global _SC_CLASS
    if _SC_CLASS is None:
        _SC_CLASS = _make_script_client_class()
    return _SC_CLASS(server, id)


_SC_CLASS = None


def _valid_name(name: bytes) -> bool:
    if not name:
        return False
    for ch in name:
        if not (48 <= ch <= 57 or 65 <= ch <= 90 or 97 <= ch <= 122 or ch == 95):
            return False
    return True
