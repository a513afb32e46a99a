"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP: the command side of the
configuration (values and validation are frtrio.config's; REWRITE's file
work is an effect the persistence shell carries out)."""

from __future__ import annotations

from frtrio.core.cnum import cstr as _cstr
from frtrio.commands.table import command, container
from frtrio.commands.util import err, protected_action_allowed, syntax_error
from frtrio.config import IMM, MULTI, PROT, SHELL, ConfigError
from frtrio.config.params import DENY_LOADING
from frtrio.core.effects import ApplyConfig, RewriteConfig
from frtrio.protocol.reply import NO_REPLY, OK, Map, Status


# --- CONFIG -------------------------------------------------------------------

container("config")

CONFIG_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]


@command("config|help")
def config_help(c, argv):
    return [Status(x) for x in CONFIG_HELP]


@command("config|get")
def config_get(c, argv):
    """Every parameter an argument names or matches, each once (the first
    argument naming it decides how its name is shown). Redis answers in hash
    order, which is random per process; frtrio answers in argument order."""
    cfg = c.server.config
    seen: dict[str, tuple[str, str]] = {}
    for pat in argv[2:]:
        for k, v in cfg.matching(pat.decode("latin-1")):
            lk = k.lower()
            if lk not in seen:
                seen[lk] = (k, v)
    return Map((k.encode("latin-1"), v.encode("latin-1")) for k, v in seen.values())


def _protected_allowed(c) -> bool:
    return protected_action_allowed(c, c.server.config.get("enable-protected-configs"))


def _set_failed(name: str, why: str) -> str:
    return "ERR CONFIG SET failed (possibly related to argument '%s') - %s" % (name, why)


@command("config|set")
def config_set(c, argv):
    """Redis 7.0's configSetCommand: all pairs or none. The first unknown,
    immutable, protected or repeated name (in argument order) is refused;
    then each value is validated and set in order, undoing on failure."""
    if len(argv) % 2:
        raise syntax_error()
    cfg = c.server.config
    problem = None  # the first one, in argument order, is answered
    todo = []
    seen = set()
    for i in range(2, len(argv), 2):
        raw = _cstr(argv[i]).decode("latin-1")
        p = cfg.param(raw)
        if p is None:
            problem = "ERR Unknown option or number of arguments for CONFIG SET - '%s'" % raw
        elif p.flags & IMM:
            problem = _set_failed(raw, "can't set immutable config")
        elif p.flags & PROT and not _protected_allowed(c):
            problem = _set_failed(raw, "can't set protected config")
        elif p.flags & DENY_LOADING and c.server.loading:
            # (Redis answers the loading error in preference to the others)
            problem = "LOADING Redis is loading the dataset in memory"
        elif raw.lower() in seen:  # name and alias are two entries in Redis
            problem = _set_failed(raw, "duplicate parameter")
        if problem is not None:
            raise err(problem)
        seen.add(raw.lower())
        todo.append((raw.lower(), p, argv[i + 1].decode("latin-1")))
    done = []
    shell = False
    for entry, p, raw in todo:
        if p.flags & MULTI:
            args = raw.split(" ") if raw else []
        else:
            args = [raw]
        try:
            v = cfg.validate(entry, args)
            old = cfg.get(entry)
            cfg.set(entry, v)
            done.append((entry, old, cfg.get(entry)))
            shell = shell or bool(p.flags & SHELL)
        except ConfigError as e:
            undo_config_set(cfg, done)
            raise err(_set_failed(entry, e.message)) from None
    if shell:  # the shell applies them, answers, and undoes all on failure
        c.server.effects.append(ApplyConfig(c.defer_reply(), tuple(done)))
        return NO_REPLY
    return OK


def undo_config_set(cfg, done) -> None:
    """Put back the values a failed CONFIG SET had set, last first: each
    (name, old, new) whose value is still the new one (a later CONFIG SET in
    the same MULTI may have changed it again since)."""
    for name, old, new in reversed(done):
        if cfg.get(name) != new:
            continue
        try:
            cfg.set(name, old)
        except ConfigError:  # pragma: no cover - restoring a valid value
            pass


def config_set_failed(name: str, why: str):
    """The error a CONFIG SET answers when applying ``name`` failed."""
    return err(_set_failed(name, why))


@command("config|resetstat")
def config_resetstat(c, argv):
    srv = c.server
    for k in srv.stats:
        srv.stats[k] = 0
    srv.cmdstats.clear()
    srv.errorstats.clear()
    srv.histograms.clear()  # (Redis's resetCommandTableStats frees them)
    srv.lazyfree.freed = 0  # (lazyfreeResetStats)
    st = srv.repl.state  # (Redis's resetServerStats: the sync counters too)
    st.sync_full = st.sync_partial_ok = st.sync_partial_err = 0
    srv.inst.reset(srv.now_ms)
    return OK


@command("config|rewrite")
def config_rewrite(c, argv):
    srv = c.server
    if not srv.config.config_file:
        raise err("ERR The server is running without a config file")
    srv.effects.append(RewriteConfig(c.defer_reply()))
    return NO_REPLY
