"""The command table (pure).

Each command has a handler written in this package and metadata (arity,
flags, key positions, ACL categories, tips, key specs, subcommands) taken from
``facts.json``: the metadata redis-server 7.0.15 reports through COMMAND,
recorded by ``scripts/gen_command_facts.py``. Clients read it (redis-py's
cluster client learns key positions from COMMAND) and the cluster router uses
it to find a command's keys, so it must be the same as Redis's.

A handler is ``handler(ctx, argv) -> reply``: synchronous, it runs the whole
command atomically. ``ctx`` is the calling client (``engine.Client``).
"""

from __future__ import annotations

import json
import os
from typing import Callable

from frtrio.commands.keyspec import getkeys_proc, legacy_range_keys
from frtrio.protocol.reply import Map, SetReply, Status

_FACTS_PATH = os.path.join(os.path.dirname(__file__), "facts.json")


def _to_reply(v):
    """Turn the JSON form of a recorded reply back into reply values."""
    if isinstance(v, dict):
        if "map" in v:
            return Map((_to_reply(k), _to_reply(x)) for k, x in v["map"])
        if "set" in v:
            return SetReply(_to_reply(x) for x in v["set"])
        if "s" in v:
            return Status(v["s"])
    if isinstance(v, list):
        return [_to_reply(x) for x in v]
    if isinstance(v, str):
        return v.encode()
    return v


def _load_facts() -> dict[str, list]:
    with open(_FACTS_PATH) as f:
        data = json.load(f)
    out = {}
    for entry in data:
        out[entry[0]] = entry
        for sub in entry[9]["set"] if isinstance(entry[9], dict) else entry[9]:
            out[sub[0]] = sub
    return out


_FACTS = _load_facts()


def _ext(name, arity, flags, cats):
    return [name, arity, {"set": [{"s": f} for f in flags]}, 0, 0, 0,
            {"set": [{"s": c} for c in cats]}, {"set": []}, {"set": []}, {"set": []}]


# Commands from after Redis 7.0 that frtrio serves for atomic slot migration
# (Redis 8.4's metadata). They are not listed by COMMAND, COMMAND COUNT or
# COMMAND LIST, so what a 7.0 client reads of the command table stays 7.0's.
EXTENSION_FACTS = {
    "cluster|migration": _ext("cluster|migration", -4, ["admin", "stale", "no_async_loading"],
                              ["@admin", "@slow", "@dangerous"]),
    "cluster|syncslots": _ext("cluster|syncslots", -3,
                              ["admin", "stale", "no_async_loading", "may_replicate"],
                              ["@admin", "@slow", "@dangerous"]),
    "trimslots": _ext("trimslots", -5, ["write", "admin", "stale"],
                      ["@keyspace", "@write", "@slow", "@dangerous"]),
}


# Redis hides CMD_MAY_REPLICATE from COMMAND's flags (so facts.json, a
# record of COMMAND, does not have it): the commands of 7.0.15 that carry it.
# CLIENT PAUSE WRITE holds them and read-only scripts may not call them.
HIDDEN_MAY_REPLICATE = frozenset(["pfcount", "publish", "spublish", "eval", "evalsha", "fcall"])


class Command:
    __slots__ = (
        "name",
        "fullname",
        "arity",
        "flags",
        "first",
        "last",
        "step",
        "handler",
        "flags_from_script",
        "skip_monitor",
        "getkeys",
        "subcommands",
        "parent",
        "fact",
        "is_write",
        "is_readonly",
        "denyoom",
        "noscript",
        "no_auth",
        "blocking",
        "movable",
        "no_multi",
        "stale",
        "loading",
        "admin",
        "pubsub",
        "may_replicate",
        "asking",
        "has_key_specs",
        "single_key",
        "name_bytes",
        "listed",
        "acl_id",
        "acl_has_keys",
        "acl_channels",
        "categories",
    )

    def __init__(self, fullname: str, handler: Callable | None):
        fact = _FACTS.get(fullname) or EXTENSION_FACTS.get(fullname)
        self.listed = fullname not in EXTENSION_FACTS
        if fact is None:
            raise KeyError(f"no recorded metadata for command {fullname!r}")
        self.fullname = fullname
        self.name_bytes = fullname.encode()
        self.name = fullname.split("|")[-1]
        self.fact = fact
        self.arity = fact[1]
        self.flags = frozenset(x["s"] for x in fact[2]["set"])
        self.first, self.last, self.step = fact[3], fact[4], fact[5]
        self.handler = handler
        self.getkeys = getkeys_proc(fullname)  # None: the legacy range
        self.subcommands: dict[bytes, Command] = {}
        self.parent: Command | None = None
        f = self.flags
        self.is_write = "write" in f
        self.is_readonly = "readonly" in f
        self.denyoom = "denyoom" in f
        self.noscript = "noscript" in f
        self.no_auth = "no_auth" in f
        self.blocking = "blocking" in f
        self.movable = "movablekeys" in f
        self.no_multi = "no_multi" in f
        self.stale = "stale" in f
        self.loading = "loading" in f
        self.admin = "admin" in f
        self.pubsub = "pubsub" in f
        self.may_replicate = "may_replicate" in f or fullname in HIDDEN_MAY_REPLICATE
        self.skip_monitor = "skip_monitor" in f
        self.asking = "asking" in f
        # EVAL*/FCALL*: (server, argv) -> the script's flags or None; the
        # gate then judges the command by them (frtrio/commands/scripting.py)
        self.flags_from_script = None
        ks = fact[8]
        self.has_key_specs = bool(ks["set"] if isinstance(ks, dict) else ks)
        # its one key is argv[1] (GET, SET, INCR, LPUSH...): routing's fast path
        # (a getkeys procedure may say its positions are fixed: SET's)
        fixed = self.getkeys is None or getattr(self.getkeys, "positions", None) == (1,)
        self.single_key = fixed and not self.movable and self.first == 1 and self.last == 1
        # ACL facts (frtrio/core/acl.py fills them in when it builds its universe)
        self.acl_id = None
        self.acl_has_keys = False
        self.acl_channels = None
        self.categories = frozenset()

    def arity_ok(self, argc: int) -> bool:
        a = self.arity
        return argc == a if a >= 0 else argc >= -a

    def get_keys(self, argv: list[bytes]) -> list[int]:
        """Positions of the keys in argv, as Redis's getKeysFromCommand
        finds them for routing (see ``keyspec``)."""
        if self.getkeys is not None:
            return [pos for pos, _ in self.getkeys(argv)]
        return legacy_range_keys(self, argv)

    def info_reply(self):
        """This command's COMMAND INFO entry."""
        f = self.fact
        # Redis: no subcommands -> an empty *set* (RESP3 ~0), else an array
        subs = [c.info_reply() for c in self.subcommands.values() if c.listed] or SetReply()
        return [f[0].encode(), f[1], _to_reply(f[2]), f[3], f[4], f[5],
                _to_reply(f[6]), _to_reply(f[7]), _to_reply(f[8]), subs]


# name (lowercase bytes) -> Command
TABLE: dict[bytes, Command] = {}


def command(name: str):
    """Decorator registering a handler for a command or ``parent|sub``.
    (Key positions are not given here: they come from the recorded key
    specs and ``keyspec``'s getkeys procedures.)"""

    def deco(fn):
        cmd = Command(name, fn)
        if "|" in name:
            parent_name, sub = name.split("|", 1)
            parent = TABLE.get(parent_name.encode())
            if parent is None:
                parent = Command(parent_name, None)
                TABLE[parent_name.encode()] = parent
            cmd.parent = parent
            parent.subcommands[sub.encode()] = cmd
        else:
            existing = TABLE.get(name.encode())
            if existing is not None and existing.handler is None:
                # a container created by an earlier subcommand registration
                cmd.subcommands = existing.subcommands
                for s in cmd.subcommands.values():
                    s.parent = cmd
            TABLE[name.encode()] = cmd
        return fn

    return deco


def container(name: str) -> Command:
    """A command that only dispatches to subcommands (CONFIG, CLIENT...)."""
    cmd = TABLE.get(name.encode())
    if cmd is None:
        cmd = Command(name, None)
        TABLE[name.encode()] = cmd
    return cmd


def lookup(argv: list[bytes]) -> Command | None:
    """Find the command (or subcommand) named by argv; None if unknown."""
    cmd = TABLE.get(argv[0].lower())
    return cmd
