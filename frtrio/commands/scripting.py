"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL,
FCALL_RO, FUNCTION (Redis 7.0 semantics; the runtime is frtrio/scripting).

A script normally runs to completion inside the command. One that runs past
``busy-reply-threshold`` is suspended (frtrio/scripting/runner.py): the
command leaves a ``RunScript`` effect and no reply, the gate answers
``-BUSY`` to other clients (``busy_error``), and the client's shell resumes
the script until it ends or is killed, then sends its reply.
"""

from __future__ import annotations

from frtrio.core.cnum import strtol  # noqa: F401
from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.protocol.reply import NO_REPLY, OK, ErrorReply, Raw
from frtrio.scripting import engine as E


def scripting(srv) -> E.Scripting:
    s = getattr(srv, "scripting", None)
    if s is None:
        s = srv.scripting = E.Scripting(srv)
    return s


def _parse_numkeys(argv, fcall=False):
    s = argv[2]
    try:
        if not s or s != s.strip() or (len(s) > 1 and s[:1] in b"+0") or s.startswith(b"-0"):
            raise ValueError
        n = int(s)
        if n > 2**63 - 1 or n < -(2**63):
            raise ValueError
    except ValueError:
        if fcall:
            raise err("ERR Bad number of keys provided")
        raise err("ERR value is not an integer or out of range")
    if n > len(argv) - 3:
        raise err("ERR Number of keys can't be greater than number of args")
    if n < 0:
        raise err("ERR Number of keys can't be negative")
    return n


def busy_error(srv):
    """The -BUSY text while a script is suspended, else None."""
    s = getattr(srv, "scripting", None)
    if s is None or s.busy_ctx is None:
        return None
    return E.SLOWEVAL if s.busy_ctx.eval_mode else E.SLOWSCRIPT


def _run(c, ctx, fn, keys, args):
    from frtrio.core.effects import RunScript

    s = scripting(c.server)
    state, data = s.start(ctx, fn, keys, args)
    if state == E.DONE:
        return Raw(data)
    c.server.effects.append(RunScript(s))
    return NO_REPLY


def _eval(c, argv, sha_mode, ro):
    srv = c.server
    if srv.monitors and not srv.loading:
        srv.feed_monitors(c, argv)  # before the script's own commands, as Redis
    return _eval_run(c, argv, sha_mode, ro)


def _eval_run(c, argv, sha_mode, ro):
    s = scripting(c.server)
    if sha_mode and len(argv[1]) != 40:
        raise err(E.NOSCRIPT)
    n = _parse_numkeys(argv)
    if sha_mode:
        sha = argv[1].lower()
        script = s.scripts.get(sha) if len(sha) == 40 else None
        if script is None:
            raise err(E.NOSCRIPT)
    else:
        sha = s.create_script(argv[1])
        script = s.scripts[sha]
    keys = argv[3:3 + n]
    args = argv[3 + n:]
    ctx = s.prepare(c, sha, script.flags, ro, True, keys)
    ctx.argv = argv
    return _run(c, ctx, script.fn, keys, args)


@command("eval")
def cmd_eval(c, argv):
    return _eval(c, argv, False, False)


@command("eval_ro")
def cmd_eval_ro(c, argv):
    return _eval(c, argv, False, True)


@command("evalsha")
def cmd_evalsha(c, argv):
    return _eval(c, argv, True, False)


@command("evalsha_ro")
def cmd_evalsha_ro(c, argv):
    return _eval(c, argv, True, True)


@command("script|load")
def cmd_script_load(c, argv):
    return scripting(c.server).create_script(argv[2])


@command("script|exists")
def cmd_script_exists(c, argv):
    scripts = scripting(c.server).scripts
    return [1 if a.lower() in scripts and len(a) == 40 else 0 for a in argv[2:]]


@command("script|flush")
def cmd_script_flush(c, argv):
    if len(argv) == 3 and argv[2].lower() in (b"sync", b"async"):
        pass
    elif len(argv) != 2:
        raise err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    scripting(c.server).reset_eval()
    return OK


@command("script|kill")
def cmd_script_kill(c, argv):
    scripting(c.server).kill(True)
    return OK


@command("script|debug")
def cmd_script_debug(c, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise err("ERR frtrio has no Lua debugger (SCRIPT DEBUG)")
    raise err("ERR Use SCRIPT DEBUG YES/SYNC/NO")


@command("script|help")
def cmd_script_help(c, argv):
    lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ]
    from frtrio.protocol.reply import Status

    return [Status(x) for x in lines]


# --- FUNCTION / FCALL -------------------------------------------------------


def _fcall(c, argv, ro):
    srv = c.server
    if srv.monitors and not srv.loading:
        srv.feed_monitors(c, argv)  # before the function's own commands, as Redis
    s = scripting(srv)
    f = s.functions.get(argv[1].lower())
    if f is None:
        raise err("ERR Function not found")
    n = _parse_numkeys(argv, fcall=True)
    keys = argv[3:3 + n]
    args = argv[3 + n:]
    ctx = s.prepare(c, f.name, f.flags, ro, False, keys)
    ctx.argv = argv
    return _run(c, ctx, f.fn, keys, args)


@command("fcall")
def cmd_fcall(c, argv):
    return _fcall(c, argv, False)


@command("fcall_ro")
def cmd_fcall_ro(c, argv):
    return _fcall(c, argv, True)


@command("function|load")
def cmd_function_load(c, argv):
    replace = False
    i = 2
    while i < len(argv) - 1:
        if argv[i].lower() == b"replace":
            replace = True
            i += 1
            continue
        raise err("ERR Unknown option given: %s" % argv[i].decode("latin-1"))
    if i >= len(argv):
        raise err("ERR Function code is missing")
    name = scripting(c.server).load_library(argv[i], replace)
    c.server.dirty += 1
    return name


@command("function|delete")
def cmd_function_delete(c, argv):
    s = scripting(c.server)
    if argv[2] not in s.libraries:
        raise err("ERR Library not found")
    s.delete_library(argv[2])
    c.server.dirty += 1
    return OK


@command("function|flush")
def cmd_function_flush(c, argv):
    if len(argv) > 3:
        raise err("ERR unknown subcommand or wrong number of arguments for '%s'. Try FUNCTION HELP."
                  % argv[1].decode("latin-1")[:128])
    if len(argv) == 3 and argv[2].lower() in (b"sync", b"async"):
        pass
    elif len(argv) != 2:
        raise err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    scripting(c.server).flush_functions()
    c.server.dirty += 1
    return OK


@command("function|kill")
def cmd_function_kill(c, argv):
    scripting(c.server).kill(False)
    return OK


def _flag_set(flags):
    from frtrio.protocol.reply import SetReply, Status

    return SetReply(Status(name.decode()) for bit, name in E.FLAG_NAMES if flags & bit)


@command("function|list")
def cmd_function_list(c, argv):
    from frtrio.protocol.reply import Map
    from frtrio.store.glob import match as stringmatch

    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        a = argv[i].lower()
        if a == b"withcode" and not with_code:
            with_code = True
            i += 1
            continue
        if a == b"libraryname" and pattern is None:
            if i + 1 >= len(argv):
                raise err("ERR library name argument was not given")
            pattern = argv[i + 1]
            i += 2
            continue
        raise err("ERR Unknown argument %s" % argv[i].decode("latin-1"))
    out = []
    for lib in scripting(c.server).libraries.values():
        if pattern is not None and not stringmatch(pattern, lib.name, False):
            continue
        fns = [Map([(b"name", f.name), (b"description", f.desc), (b"flags", _flag_set(f.flags))])
               for f in lib.functions.values()]
        m = [(b"library_name", lib.name), (b"engine", b"LUA"), (b"functions", fns)]
        if with_code:
            m.append((b"library_code", lib.code))
        out.append(Map(m))
    return out


@command("function|stats")
def cmd_function_stats(c, argv):
    from frtrio.protocol.reply import Map

    s = scripting(c.server)
    running = None
    ctx = s.busy_ctx
    if ctx is not None and not ctx.eval_mode:
        running = Map([(b"name", ctx.funcname), (b"command", list(ctx.argv)),
                       (b"duration_ms", (c.server.unix_us() - ctx.start_us) // 1000)])
    engines = Map([(b"LUA", Map([(b"libraries_count", len(s.libraries)),
                                 (b"functions_count", len(s.functions))]))])
    return Map([(b"running_script", running), (b"engines", engines)])


@command("function|dump")
def cmd_function_dump(c, argv):
    from frtrio.scripting import persist

    return persist.dump_payload(c.server)


@command("function|restore")
def cmd_function_restore(c, argv):
    from frtrio.scripting import persist

    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            raise err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    elif len(argv) > 4:
        raise err("ERR unknown subcommand or wrong number of arguments for 'restore'. "
                  "Try FUNCTION HELP.")
    persist.restore(c.server, argv[2], policy)
    c.server.dirty += 1
    return OK


@command("function|help")
def cmd_function_help(c, argv):
    from frtrio.protocol.reply import Status

    lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ]
    return [Status(x) for x in lines]


# --- the command flags a script declares (Redis's getCommandFlags) -----------


class ScriptedCommand:
    """EVAL/FCALL seen with the flags its script declares (Redis's
    scriptFlagsToCmdFlags): write unless no-writes, stale only with
    allow-stale, denyoom unless allow-oom or no-writes, never
    may-replicate. Everything else is the command's own."""

    __slots__ = ("_cmd", "is_write", "stale", "denyoom", "may_replicate")

    def __init__(self, cmd, script_flags: int):
        self._cmd = cmd
        self.is_write = not script_flags & E.F_NO_WRITES
        self.stale = bool(script_flags & E.F_ALLOW_STALE)
        self.denyoom = not script_flags & (E.F_ALLOW_OOM | E.F_NO_WRITES)
        self.may_replicate = False

    def __getattr__(self, name):
        return getattr(self._cmd, name)


def _eval_script_flags(srv, argv, sha_mode: bool):
    """Redis's evalGetCommandFlags: the flags of the cached script, or of
    the body's shebang; None when the script is unknown or has none."""
    body_or_sha = argv[1]
    if sha_mode and len(body_or_sha) != 40:
        return None
    sc = srv.scripting
    sha = body_or_sha.lower() if sha_mode else E.sha1hex(body_or_sha)
    script = sc.scripts.get(sha) if sc is not None else None
    if script is not None:
        flags = script.flags
    elif sha_mode:
        return None
    else:
        try:
            flags = E.parse_shebang(body_or_sha)[0]
        except ErrorReply:
            return None
    return None if flags & E.F_EVAL_COMPAT else flags


def _fcall_script_flags(srv, argv):
    sc = srv.scripting
    f = sc.functions.get(argv[1]) if sc is not None else None
    return f.flags if f is not None else None


def _install_flag_sources() -> None:
    from frtrio.commands import table as _table

    for name, sha_mode in ((b"eval", False), (b"eval_ro", False), (b"evalsha", True),
                           (b"evalsha_ro", True)):
        _table.TABLE[name].flags_from_script = (
            lambda srv, argv, _s=sha_mode: _eval_script_flags(srv, argv, _s))
    for name in (b"fcall", b"fcall_ro"):
        _table.TABLE[name].flags_from_script = _fcall_script_flags


_install_flag_sources()
