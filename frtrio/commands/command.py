"""COMMAND and its subcommands (COUNT, INFO, LIST, DOCS, GETKEYS,
GETKEYSANDFLAGS, HELP): the command table as Redis 7.0 describes it. Key
positions come from frtrio.commands.keyspec, the path routing uses too."""

from __future__ import annotations

import json
import os

from frtrio.core.cnum import cstr as _cstr
from frtrio.commands import table as _table
from frtrio.commands.keyspec import command_has_keys, command_keys
from frtrio.commands.table import command
from frtrio.commands.util import err, syntax_error
from frtrio.protocol.reply import Map, SetReply, Status
from frtrio.store.glob import compile_pattern


# --- COMMAND ------------------------------------------------------------------

COMMAND_HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]


def _implemented(srv):
    """The commands this server serves, under their names after
    rename-command (Redis lists its commands in hash order, random per
    process; frtrio in name order)."""
    return [cmd for name, cmd in sorted(srv.commands.items()) if cmd.listed]


@command("command")
def cmd_command(c, argv):
    return [cmd.info_reply() for cmd in _implemented(c.server)]


@command("command|help")
def command_help(c, argv):
    return [Status(x) for x in COMMAND_HELP]


@command("command|count")
def command_count(c, argv):
    return sum(1 for cmd in c.server.commands.values() if cmd.listed)


@command("command|info")
def command_info(c, argv):
    if len(argv) == 2:
        return [cmd.info_reply() for cmd in _implemented(c.server)]
    out = []
    for name in argv[2:]:
        cmd = _find(name, c.server.commands)
        out.append(cmd.info_reply() if cmd is not None else None)
    return out


def _find(name: bytes, commands=None):
    """Redis's lookupCommandBySds: ``name`` or ``container|sub``, in a
    server's command table (the original names by default)."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    cmd = (_table.TABLE if commands is None else commands).get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1])


def _categories(cmd) -> list[str]:
    cats = cmd.fact[6]
    cats = cats["set"] if isinstance(cats, dict) else cats
    return [x["s"].lstrip("@") if isinstance(x, dict) else x.lstrip("@") for x in cats]


def _list_filter(ftype: bytes, arg: bytes):
    """COMMAND LIST FILTERBY: a predicate on commands (None: no filter)."""
    if ftype == b"module":
        return lambda cmd: False  # frtrio loads no modules
    if ftype == b"aclcat":
        cat = arg.decode("latin-1").lower()
        return lambda cmd: cat in _categories(cmd)
    if ftype == b"pattern":
        m = compile_pattern(arg, True)
        return lambda cmd: m.match(cmd.fullname.encode()) is not None
    return None


@command("command|list")
def command_list(c, argv):
    pred = None
    i = 2
    n = len(argv)
    while i < n:
        if _cstr(argv[i]).lower() == b"filterby" and n - 1 - i == 2:
            pred = _list_filter(_cstr(argv[i + 1]).lower(), argv[i + 2])
            if pred is None:
                raise syntax_error()
            i += 3
        else:
            raise syntax_error()
    names = []
    for cmd in _implemented(c.server):
        if pred is None or pred(cmd):
            names.append(cmd.fullname.encode())
        for sub in cmd.subcommands.values():
            if sub.listed and (pred is None or pred(sub)):
                names.append(sub.fullname.encode())
    return names


# COMMAND DOCS: docs.json, built by scripts/gen_command_docs.py -- Redis
# 7.0.15's documentation facts (since, group, flags, history versions, the
# argument tree) with frtrio's own prose (summary, complexity, history text).
# Loaded on first use: most servers never answer COMMAND DOCS.

_DOCS_PATH = os.path.join(os.path.dirname(__file__), "docs.json")
_DOCS: dict | None = None  # fullname -> its doc's (key, value) pairs, subcommands left out
_DOC_REPLIES: dict = {}  # fullname -> its reply fields, built once (reply values are not mutated)


def _load_docs() -> dict:
    global _DOCS
    if _DOCS is None:
        with open(_DOCS_PATH, encoding="utf-8") as f:
            data = json.load(f)
        docs = {}

        def add(name, doc):
            pairs = []
            for k, v in doc["map"]:
                if k == "subcommands":
                    for sub, sdoc in v["map"]:
                        add(sub, sdoc)
                else:
                    pairs.append((k, v))
            docs[name] = pairs

        for name, doc in data:
            add(name, doc)
        _DOCS = docs
    return _DOCS


def _docs_reply(cmd):
    """A command's COMMAND DOCS entry (None: no documentation recorded, as for
    the commands from after 7.0 that COMMAND does not list)."""
    fields = _DOC_REPLIES.get(cmd.fullname)
    if fields is None:
        pairs = _load_docs().get(cmd.fullname)
        if pairs is None:
            return None
        fields = _DOC_REPLIES[cmd.fullname] = [(k.encode(), _table._to_reply(v)) for k, v in pairs]
    subs = []
    for sub in cmd.subcommands.values():
        if sub.listed:
            d = _docs_reply(sub)
            if d is not None:
                subs.append((sub.fullname.encode(), d))
    if subs:
        return Map(fields + [(b"subcommands", Map(subs))])
    return Map(fields)


@command("command|docs")
def command_docs(c, argv):
    """Redis's commandDocsCommand: every command, or the ones named (names
    not found are left out, no error)."""
    if len(argv) == 2:
        cmds = _implemented(c.server)
    else:
        cmds = [cmd for cmd in (_find(name, c.server.commands) for name in argv[2:])
                if cmd is not None]
    out = []
    for cmd in cmds:
        d = _docs_reply(cmd)
        if d is not None:
            out.append((cmd.fullname.encode(), d))
    return Map(out)


# --- COMMAND GETKEYS / GETKEYSANDFLAGS ---------------------------------------------

_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
               "not_key", "incomplete", "variable_flags")

_FACT_CMDS: dict = {}


def _lookup_for_keys(sub: list[bytes]):
    """Redis's lookupCommand over every command Redis 7.0 has: key positions
    are metadata, so GETKEYS answers even for commands frtrio does not serve."""
    try:
        name = sub[0].lower().decode("ascii")
    except UnicodeDecodeError:
        return None
    if "|" in name or name not in _table._FACTS:
        return None
    full = name
    if len(sub) >= 2:
        prefix = name + "|"
        if any(k.startswith(prefix) for k in _table._FACTS):
            try:
                full = prefix + sub[1].lower().decode("ascii")
            except UnicodeDecodeError:
                return None
            if full not in _table._FACTS:
                return None
    cmd = _find(full.encode())
    if cmd is not None:
        return cmd
    cmd = _FACT_CMDS.get(full)
    if cmd is None:
        cmd = _FACT_CMDS[full] = _table.Command(full, None)
    return cmd


def _getkeys(c, argv, with_flags: bool):
    sub = argv[2:]
    cmd = _lookup_for_keys(sub)
    if cmd is None:
        raise err("ERR Invalid command specified")
    if not command_has_keys(cmd):
        raise err("ERR The command has no key arguments")
    if not cmd.arity_ok(len(sub)):
        raise err("ERR Invalid number of arguments specified for command")
    keys = command_keys(cmd, sub)
    if not keys:
        if "no_mandatory_keys" in cmd.flags:
            return []
        raise err("ERR Invalid arguments specified for command")
    if not with_flags:
        return [sub[pos] for pos, _ in keys]
    return [[sub[pos], SetReply(Status(f) for f in _FLAG_ORDER if f in flags)]
            for pos, flags in keys]


@command("command|getkeys")
def command_getkeys(c, argv):
    return _getkeys(c, argv, False)


@command("command|getkeysandflags")
def command_getkeysandflags(c, argv):
    return _getkeys(c, argv, True)
