"""Access control lists (pure): users, selectors, the rule language of
``ACL SETUSER`` and the permission checks, as Redis 7.0 has them.

A user has flags (on/off, nopass, sanitize-payload), SHA-256 password
hashes and one or more *selectors*: the root selector, then any number
added with ``(...)``. A selector holds the commands it allows (a bit per
command of the table, plus a "future commands" bit, as Python ints), the
first arguments allowed for otherwise denied commands (``+select|0``), key
patterns with read/write permissions and channel patterns. A command is
allowed when any selector allows all of it (command, keys, channels).

The hot path is one attribute: ``User.allow_all`` is true for a user whose
root selector allows every command, key and channel (the default user out
of the box); the gate then does no other work.

Nothing here touches sockets, time or randomness; the callers pass them.
"""

from __future__ import annotations

import hashlib

from frtrio.store.glob import match as _glob

# categories, in Redis's order (ACL CAT, the describe algorithm)
CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
)

# checks' results (Redis's ACL_DENIED_*)
OK = 0
DENIED_CMD = 1
DENIED_KEY = 2
DENIED_AUTH = 3
DENIED_CHANNEL = 4

# getAclErrorMessage (a script's redis.call refused)
ERROR_FOR = {
    DENIED_CMD: "can't run this command or subcommand",
    DENIED_KEY: "can't access at least one of the keys mentioned in the command arguments",
    DENIED_CHANNEL: "can't publish to the channel mentioned in the command",
}

# ACL LOG contexts
CTX_TOPLEVEL = 0
CTX_MULTI = 1
CTX_LUA = 2
CONTEXTS = {CTX_TOPLEVEL: b"toplevel", CTX_MULTI: b"multi", CTX_LUA: b"lua", 3: b"module"}

READ = 1
WRITE = 2
ALL_PERM = 3

# ACLSetUserStringError's texts, by the errno Redis uses
E_NOENT = "Unknown command or category name in ACL"
E_INVAL = "Syntax error"
E_EXIST = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
           "does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
E_ISDIR = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and "
           "does not have any effect. Try 'resetchannels' to start with an empty list of "
           "channels")
E_NODEV = "The password you are trying to remove from the user does not exist"
E_BADMSG = ("The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters")
E_ALREADY = "Duplicate user found. A user can only be defined once in config files"
E_CHILD = "Allowing first-arg of a subcommand is not supported"


class RuleError(Exception):
    """A rule was refused; ``args[0]`` is the reason text."""


def hash_password(pw: bytes) -> bytes:
    return hashlib.sha256(pw).hexdigest().encode()


def _rule_hash(op: bytes, plain: bytes) -> bytes:
    """The SHA-256 hex of a password rule: ``>pass``/``<pass`` (``plain``)
    hash the text, ``#hash``/``!hash`` give it (64 hex digits or E_BADMSG)."""
    if op[:1] == plain:
        return hash_password(op[1:])
    h = op[1:]
    if len(h) != 64 or any(b not in _HEX for b in h):
        raise RuleError(E_BADMSG)
    return h


def _has_spaces(s: bytes) -> bool:
    return any(b in b" \t\n\v\f\r\0" for b in s)


_HEX = frozenset(b"0123456789abcdef")


# --- the command universe ---------------------------------------------------


class UCmd:
    """One command of the universe: the table's Command when frtrio serves
    it, else its recorded facts only (ACL rules may still name it)."""

    __slots__ = ("fullname", "name_bytes", "acl_id", "categories", "subcommands", "parent",
                 "listed", "cmd")

    def __init__(self, fullname, categories, parent, listed, cmd):
        self.fullname = fullname
        self.name_bytes = fullname.encode()
        self.acl_id = 0
        self.categories = categories
        self.subcommands: dict[bytes, "UCmd"] = {}
        self.parent = parent
        self.listed = listed
        self.cmd = cmd


def _cats(fact) -> frozenset:
    v = fact[6]
    return frozenset(x["s"] for x in (v["set"] if isinstance(v, dict) else v))


class Universe:
    """Every command and subcommand Redis 7.0.15 has (facts.json), plus
    frtrio's extensions, each with a bit number (Redis's command ids) and
    its categories. Built once."""

    def __init__(self, table, facts, extensions):
        self.ids: dict[str, int] = {}  # fullname -> bit
        self.by_name: dict[bytes, UCmd] = {}
        self.cmds: list[UCmd] = []  # bit -> UCmd
        self.described: list[UCmd] = []  # top-level, listed
        self.standins: dict = {}  # fullname -> stand-in Command (not served)
        for entry in facts:
            self._add_top(entry, table, True)
        for name, entry in extensions.items():
            if "|" in name:
                parent = self.by_name[name.split("|")[0].encode()]
                self._add(name, entry, parent, False, table)
            else:
                self._add_top(entry, table, False)
        self.future_bit = 1 << len(self.cmds)
        self.all_bits = (self.future_bit << 1) - 1
        self.cat_members: dict[str, int] = {}
        self.cat_effect: dict[str, int] = {}
        self.cat_cmd_ids: dict[str, list[int]] = {}
        for cat in CATEGORIES:
            members = effect = 0
            ids = []
            tag = "@" + cat
            for uc in self.cmds:
                if tag in uc.categories:
                    effect |= self.tree_bits(uc)
                    ids.append(uc.acl_id)
                    if uc.listed:
                        members |= 1 << uc.acl_id
            self.cat_members[cat] = members
            self.cat_effect[cat] = effect
            self.cat_cmd_ids[cat] = ids
        self.cat_sizes = {c: bin(m).count("1") for c, m in self.cat_members.items()}
        # the served commands learn their bit
        for uc in self.cmds:
            if uc.cmd is not None:
                uc.cmd.acl_id = uc.acl_id

    def _add_top(self, entry, table, listed) -> None:
        uc = self._add(entry[0], entry, None, listed, table)
        subs = entry[9]["set"] if isinstance(entry[9], dict) else entry[9]
        for sub in subs:
            self._add(sub[0], sub, uc, listed, table)
        if listed:
            self.described.append(uc)

    def _add(self, fullname, entry, parent, listed, table) -> UCmd:
        cmd = None
        if parent is None:
            cmd = table.get(fullname.encode())
        elif parent.cmd is not None:
            cmd = parent.cmd.subcommands.get(fullname.split("|")[1].encode())
        if cmd is None:
            # a Redis command frtrio does not serve: a handler-less stand-in
            # from its recorded facts (ACL DRYRUN can still judge it)
            from frtrio.commands.table import Command

            try:
                cmd = Command(fullname, None)
            except KeyError:
                cmd = None
            if cmd is not None and parent is not None and parent.cmd is not None:
                cmd.parent = parent.cmd
                if parent.name_bytes in self.standins:
                    # (never into a command frtrio serves: its gate would
                    # then find a subcommand without a handler)
                    parent.cmd.subcommands.setdefault(fullname.split("|")[1].encode(), cmd)
            if cmd is not None:
                self.standins[fullname.encode()] = cmd
        uc = UCmd(fullname, _cats(entry), parent, listed, cmd)
        uc.acl_id = len(self.cmds)
        self.cmds.append(uc)
        self.ids[fullname] = uc.acl_id
        self.by_name[fullname.encode()] = uc
        if parent is not None:
            parent.subcommands[fullname.split("|")[1].encode()] = uc
        return uc

    def tree_bits(self, uc) -> int:
        b = 1 << uc.acl_id
        for sub in uc.subcommands.values():
            b |= 1 << sub.acl_id
        return b

    def lookup(self, name: bytes):
        """ACLLookupCommand: "cmd" or "cmd|sub", case-insensitive."""
        return self.by_name.get(name.lower())


_UNIVERSE: Universe | None = None


def universe() -> Universe:
    global _UNIVERSE
    if _UNIVERSE is None:
        import json

        import frtrio.commands  # noqa: F401  (registers every command)
        from frtrio.commands import table as t

        with open(t._FACTS_PATH) as f:
            facts = json.load(f)
        _UNIVERSE = Universe(t.TABLE, facts, t.EXTENSION_FACTS)
        for cmd in _all_commands(t.TABLE):
            if cmd.acl_id is None:
                cmd.acl_id = _UNIVERSE.ids[cmd.fullname]
        annotate_table(t.TABLE)
        for cmd in _UNIVERSE.standins.values():
            _annotate(cmd)
    return _UNIVERSE


# --- selectors -----------------------------------------------------------------


class Selector:
    __slots__ = ("root", "allkeys", "allchannels", "allcommands", "allowed", "firstargs",
                 "patterns", "channels")

    def __init__(self, root: bool = False, allchannels: bool = False):
        self.root = root
        self.allkeys = False
        self.allchannels = allchannels
        self.allcommands = False
        self.allowed = 0
        self.firstargs: dict[int, list[bytes]] = {}
        self.patterns: list[list] = []  # [pattern, READ|WRITE]
        self.channels: list[bytes] = []

    def copy(self) -> "Selector":
        s = Selector(self.root)
        s.allkeys = self.allkeys
        s.allchannels = self.allchannels
        s.allcommands = self.allcommands
        s.allowed = self.allowed
        s.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        s.patterns = [list(p) for p in self.patterns]
        s.channels = list(self.channels)
        return s

    # -- changing it

    def _change(self, cmd, allow: bool) -> None:
        u = universe()
        bits = u.tree_bits(cmd)
        if allow:
            self.allowed |= bits
        else:
            self.allowed &= ~bits
            self.allcommands = False
        self.firstargs.pop(cmd.acl_id, None)

    def set_category(self, cat: str, allow: bool) -> None:
        u = universe()
        cat = cat.lower()
        if cat not in u.cat_effect:
            raise RuleError(E_NOENT)
        if allow:
            self.allowed |= u.cat_effect[cat]
        else:
            self.allowed &= ~u.cat_effect[cat]
            self.allcommands = False
        if self.firstargs:
            for i in u.cat_cmd_ids[cat]:
                self.firstargs.pop(i, None)

    def apply(self, op: bytes) -> None:
        """ACLSetSelector: one rule; raises RuleError."""
        low = op.lower()
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.patterns = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif low in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif low in (b"allcommands", b"+@all"):
            self.allowed = universe().all_bits
            self.allcommands = True
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.allowed = 0
            self.allcommands = False
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            if self.allkeys:
                raise RuleError(E_EXIST)
            flags = 0
            offset = 1
            n = len(op)
            if op[:1] == b"%":
                while offset < n:
                    ch = op[offset:offset + 1].upper()
                    if ch == b"R" and not flags & READ:
                        flags |= READ
                    elif ch == b"W" and not flags & WRITE:
                        flags |= WRITE
                    elif ch == b"~":
                        offset += 1
                        break
                    else:
                        raise RuleError(E_INVAL)
                    offset += 1
            else:
                flags = ALL_PERM
            pat = op[offset:]
            if _has_spaces(pat):
                raise RuleError(E_INVAL)
            for p in self.patterns:
                if p[0] == pat:
                    p[1] |= flags
                    break
            else:
                self.patterns.append([pat, flags])
            self.allkeys = False
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError(E_ISDIR)
            pat = op[1:]
            if _has_spaces(pat):
                raise RuleError(E_INVAL)
            if pat not in self.channels:
                self.channels.append(pat)
            self.allchannels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            u = universe()
            if b"|" not in op:
                cmd = u.lookup(op[1:])
                if cmd is None:
                    raise RuleError(E_NOENT)
                self._change(cmd, True)
            else:
                head, _, sub = op[1:].rpartition(b"|")
                cmd = u.lookup(head)
                if cmd is None:
                    raise RuleError(E_NOENT)
                if cmd.parent is not None:
                    raise RuleError(E_CHILD)
                if not sub:
                    raise RuleError(E_INVAL)
                if cmd.subcommands:
                    cmd = u.lookup(op[1:])
                    if cmd is None:
                        raise RuleError(E_NOENT)
                    self._change(cmd, True)
                else:
                    lst = self.firstargs.setdefault(cmd.acl_id, [])
                    if not any(x.lower() == sub.lower() for x in lst):
                        lst.append(sub)
        elif op[:1] == b"-" and op[1:2] != b"@":
            cmd = universe().lookup(op[1:])
            if cmd is None:
                raise RuleError(E_NOENT)
            self._change(cmd, False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            try:
                cat = op[2:].decode("ascii")
            except UnicodeDecodeError:
                raise RuleError(E_NOENT) from None
            self.set_category(cat, op[:1] == b"+")
        else:
            raise RuleError(E_INVAL)

    # -- checking against it

    def check_key(self, key: bytes, kflags: int) -> bool:
        if self.allkeys:
            return True
        for pat, pflags in self.patterns:
            if pflags & kflags != kflags:
                continue
            m = _MATCHERS.get(pat)
            if m is None:
                m = _matcher(pat)
            if m(key):
                return True
        return False

    def unrestricted_keys(self, kflags: int) -> bool:
        if self.allkeys:
            return True
        for pat, pflags in self.patterns:
            if pflags & kflags == kflags and pat == b"*":
                return True
        return False

    def check_cmd(self, cmd, argv, keycache: list) -> tuple[int, int]:
        """ACLSelectorCheckCmd: (result, position of the refused arg)."""
        if not self.allcommands and not cmd.no_auth:
            if not (self.allowed >> cmd.acl_id) & 1:
                fa = self.firstargs.get(cmd.acl_id) if self.firstargs else None
                if len(argv) < 2 or not fa:
                    return DENIED_CMD, 0
                idx = 2 if cmd.parent is not None else 1
                if idx >= len(argv):
                    return DENIED_CMD, 0
                a = argv[idx].lower()
                if not any(x.lower() == a for x in fa):
                    return DENIED_CMD, 0
        if not self.allkeys and cmd.acl_has_keys:
            if not keycache:
                finder = _FINDERS.get(cmd.fullname)
                if finder is None:
                    finder = _FINDERS[cmd.fullname] = _key_finder(cmd)
                keycache.append(finder(argv))
            for pos, kflags in keycache[0]:
                if not self.check_key(argv[pos], kflags):
                    return DENIED_KEY, pos
        if not self.allchannels and cmd.acl_channels is not None:
            for pos, is_pattern in _command_channels(cmd, argv):
                if not check_channel_list(self.channels, argv[pos], is_pattern):
                    return DENIED_CHANNEL, pos
        return OK, 0

    # -- describing it

    def describe_commands(self) -> bytes:
        """ACLDescribeSelectorCommandRules: the shortest-ish rule list that
        rebuilds the bitmap (categories first, then single commands)."""
        u = universe()
        additive = not (self.allowed & u.future_bit)
        fake = Selector()
        if additive:
            rules = [b"-@all"]
        else:
            rules = [b"+@all"]
            fake.allowed = u.all_bits
        temp = self.allowed
        applied = set()
        while True:
            best = None
            mindiff = 1 << 62
            maxsame = 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                members = u.cat_members[cat]
                on = bin(temp & members).count("1")
                off = u.cat_sizes[cat] - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best = cat
                    mindiff = diff
                    maxsame = same
            if best is None:
                break
            eff = u.cat_effect[best]
            if additive:
                fake.allowed |= eff
                temp &= ~eff
                rules.append(b"+@" + best.encode())
            else:
                fake.allowed &= ~eff
                temp |= eff
                rules.append(b"-@" + best.encode())
            applied.add(best)
        mine = self.allowed
        for cmd in u.described:
            self._describe_one(cmd, fake, mine, rules)
        return b" ".join(rules)

    def _describe_one(self, cmd, fake, mine, rules) -> None:
        i = cmd.acl_id
        userbit = (mine >> i) & 1
        if userbit != (fake.allowed >> i) & 1:
            rules.append((b"+" if userbit else b"-") + cmd.name_bytes)
            tb = universe().tree_bits(cmd)
            if userbit:
                fake.allowed |= tb
            else:
                fake.allowed &= ~tb
        for sub in cmd.subcommands.values():
            if sub.listed:
                self._describe_one(sub, fake, mine, rules)
        if not userbit and self.firstargs.get(i):
            for a in self.firstargs[i]:
                rules.append(b"+" + cmd.name_bytes + b"|" + a)

    def describe_keys(self) -> bytes:
        if self.allkeys:
            return b"~*"
        return b" ".join(_pattern_string(p) for p in self.patterns)

    def describe_channels(self) -> bytes:
        if self.allchannels:
            return b"&*"
        return b" ".join(b"&" + c for c in self.channels)

    def describe(self) -> bytes:
        """ACLDescribeSelector: keys, channels, then command rules."""
        parts = []
        if self.allkeys:
            parts.append(b"~*")
        else:
            parts.extend(_pattern_string(p) for p in self.patterns)
        if self.allchannels:
            parts.append(b"&*")
        else:
            parts.append(b"resetchannels")
            parts.extend(b"&" + c for c in self.channels)
        parts.append(self.describe_commands())
        return b" ".join(parts)


def _pattern_string(p) -> bytes:
    pat, flags = p
    if flags == ALL_PERM:
        return b"~" + pat
    if flags == READ:
        return b"%R~" + pat
    return b"%W~" + pat


def check_channel_list(patterns, channel: bytes, is_pattern: bool) -> bool:
    for p in patterns:
        if is_pattern:
            if p == channel:
                return True
        elif _glob(p, channel):
            return True
    return False


_MATCHERS: dict = {}
_SPECIAL = frozenset(b"*?[\\")


def _matcher(pat: bytes):
    """A key pattern as a function: equality or a prefix test when the
    pattern allows, else Redis's glob."""
    if len(_MATCHERS) > 10000:
        _MATCHERS.clear()
    if not any(b in _SPECIAL for b in pat):
        m = pat.__eq__
    elif pat.endswith(b"*") and not any(b in _SPECIAL for b in pat[:-1]):
        prefix = pat[:-1]
        m = (lambda k: k.startswith(prefix))
    else:
        m = (lambda k: _glob(pat, k))
    _MATCHERS[pat] = m
    return m


_FINDERS: dict = {}
_FLAGS_CACHE: dict = {}


def _key_finder(cmd):
    """argv -> [(position, READ|WRITE)]: the command's keys as Redis's
    getKeysFromCommandWithSpecs finds them. Commands whose key specs are
    all index + range get a compiled version; the others go through
    ``keyspec.command_keys``."""
    from frtrio.commands.keyspec import _key_specs

    specs = [s for s in _key_specs(cmd) if "not_key" not in s["flags"]]
    simple = bool(specs) and all(
        s["begin_search"]["type"] == "index" and s["find_keys"]["type"] == "range"
        and "incomplete" not in s["flags"] and "variable_flags" not in s["flags"]
        for s in specs)
    if not simple or len(specs) != len(_key_specs(cmd)):
        from frtrio.commands.keyspec import getkeys_proc

        proc = getkeys_proc(cmd.fullname)
        if proc is not None and (not specs or any("variable_flags" in s["flags"]
                                                   for s in _key_specs(cmd))):
            # the command's own getkeys procedure decides (SET, BITFIELD...)
            def by_proc(argv):
                n = len(argv)
                out = []
                for pos, flags in proc(argv):
                    if 0 < pos < n:
                        kf = _FLAGS_CACHE.get(flags)
                        if kf is None:
                            kf = _FLAGS_CACHE[flags] = _key_flags(flags)
                        out.append((pos, kf))
                return out

            return by_proc
        return lambda argv: _command_keys(cmd, argv)
    compiled = [(s["begin_search"]["spec"]["index"], s["find_keys"]["spec"]["lastkey"],
                 s["find_keys"]["spec"]["keystep"], s["find_keys"]["spec"]["limit"],
                 _key_flags(s["flags"])) for s in specs]

    def find(argv):
        argc = len(argv)
        out = []
        for first, lastkey, step, limit, kf in compiled:
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
            if last >= argc or last < first or first >= argc:
                return _command_keys(cmd, argv)  # (invalid: the generic way)
            out.extend((i, kf) for i in range(first, last + 1, step))
        return out

    return find


def _key_flags(flags) -> int:
    kf = 0
    for f in flags:
        if f == "access":
            kf |= READ
        elif f in ("insert", "delete", "update"):
            kf |= WRITE
    return kf


def _command_keys(cmd, argv) -> list:
    from frtrio.commands.keyspec import command_keys

    try:
        keys = command_keys(cmd, argv)
    except (IndexError, ValueError):
        keys = []
    out = []
    n = len(argv)
    for pos, flags in keys:
        if 0 < pos < n:
            out.append((pos, _key_flags(flags)))
    return out


# commands with channels Redis checks (db.c's commands_with_channels, the
# publish and subscribe kinds): fullname -> (start, count or -1, is_pattern)
CHANNEL_COMMANDS = {
    "subscribe": (1, -1, False),
    "ssubscribe": (1, -1, False),
    "psubscribe": (1, -1, True),
    "publish": (1, 1, False),
    "spublish": (1, 1, False),
}


def _command_channels(cmd, argv):
    start, count, is_pattern = cmd.acl_channels
    stop = len(argv) if count == -1 else min(len(argv), start + count)
    return [(i, is_pattern) for i in range(start, stop)]


def annotate_table(table) -> None:
    """Give every command its ACL facts (has keys, channels, categories)."""
    for cmd in _all_commands(table):
        _annotate(cmd)


def _annotate(cmd) -> None:
    from frtrio.commands.keyspec import command_has_keys

    cmd.acl_has_keys = command_has_keys(cmd)
    cmd.acl_channels = CHANNEL_COMMANDS.get(cmd.fullname)
    cmd.categories = _cats(cmd.fact)


def _all_commands(table):
    for cmd in table.values():
        yield cmd
        yield from cmd.subcommands.values()


# --- users ------------------------------------------------------------------------


class User:
    __slots__ = ("name", "enabled", "disabled", "nopass", "skip_sanitize", "sanitize",
                 "passwords", "selectors", "allow_all", "_descr")

    def __init__(self, name: bytes, allchannels_default: bool = False):
        self.name = name
        self.enabled = False
        self.disabled = True
        self.nopass = False
        self.skip_sanitize = False
        self.sanitize = False
        self.passwords: list[bytes] = []
        self.selectors = [Selector(root=True, allchannels=allchannels_default)]
        self.allow_all = False
        self._descr = None

    def copy_from(self, other: "User") -> None:
        self.enabled = other.enabled
        self.disabled = other.disabled
        self.nopass = other.nopass
        self.skip_sanitize = other.skip_sanitize
        self.sanitize = other.sanitize
        self.passwords = list(other.passwords)
        self.selectors = [s.copy() for s in other.selectors]
        self._refresh()

    def _refresh(self) -> None:
        self._descr = None
        root = self.selectors[0]
        self.allow_all = bool(root.allcommands and root.allkeys and root.allchannels)

    def apply(self, op: bytes, allchannels_default: bool = False) -> None:
        """ACLSetUser: one rule (raises RuleError)."""
        try:
            self._apply(op, allchannels_default)
        finally:
            self._refresh()

    def _apply(self, op: bytes, allchannels_default: bool) -> None:
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled, self.disabled = True, False
        elif low == b"off":
            self.enabled, self.disabled = False, True
        elif low == b"skip-sanitize-payload":
            self.skip_sanitize, self.sanitize = True, False
        elif low == b"sanitize-payload":
            self.skip_sanitize, self.sanitize = False, True
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            h = _rule_hash(op, b">")
            if h not in self.passwords:
                self.passwords.append(h)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            h = _rule_hash(op, b"<")
            if h not in self.passwords:
                raise RuleError(E_NODEV)
            self.passwords.remove(h)
        elif op[:1] == b"(" and op[-1:] == b")":
            from frtrio.protocol.parser import split_args

            s = Selector(allchannels=allchannels_default)
            for a in split_args(op[1:-1]) or []:
                s.apply(a)
            self.selectors.append(s)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            self.passwords = []
            self.nopass = False
            root = self.selectors[0]
            root.apply(b"resetkeys")
            root.apply(b"resetchannels")
            if allchannels_default:
                root.apply(b"allchannels")
            self.enabled, self.disabled = False, True
            self.skip_sanitize, self.sanitize = False, True
            del self.selectors[1:]
            root.apply(b"-@all")
        else:
            self.selectors[0].apply(op)

    # -- checks

    def check_password(self, pw: bytes) -> bool:
        if self.disabled:
            return False
        if self.nopass:
            return True
        return hash_password(pw) in self.passwords

    def check_command(self, cmd, argv) -> tuple[int, int]:
        """ACLCheckAllUserCommandPerm: (OK, 0) or the most relevant refusal
        (its kind and the position of the refused argument)."""
        if self.allow_all:
            return OK, 0
        relevant = DENIED_CMD
        last = 0
        cache: list = []
        for s in self.selectors:
            r, pos = s.check_cmd(cmd, argv, cache)
            if r == OK:
                return OK, 0
            if r > relevant or (r == relevant and pos > last):
                relevant = r
                last = pos
        return relevant, last

    def check_key(self, key: bytes, kflags: int) -> bool:
        return any(s.check_key(key, kflags) for s in self.selectors)

    def check_channel(self, channel: bytes, is_pattern: bool) -> bool:
        for s in self.selectors:
            if s.allchannels or check_channel_list(s.channels, channel, is_pattern):
                return True
        return False

    def unrestricted_keys(self, cmd, argv, kflags: int) -> bool:
        """ACLUserCheckCmdWithUnrestrictedKeyAccess."""
        cache: list = []
        for s in self.selectors:
            if s.check_cmd(cmd, argv, cache)[0] == OK and s.unrestricted_keys(kflags):
                return True
        return False

    # -- describing

    def flag_names(self) -> list[bytes]:
        out = []
        for on, name in ((self.enabled, b"on"), (self.disabled, b"off"), (self.nopass, b"nopass"),
                         (self.skip_sanitize, b"skip-sanitize-payload"),
                         (self.sanitize, b"sanitize-payload")):
            if on:
                out.append(name)
        return out

    def describe(self) -> bytes:
        """ACLDescribeUser (cached until the user changes)."""
        if self._descr is not None:
            return self._descr
        parts = [f + b" " for f in self.flag_names()]
        parts.extend(b"#" + p + b" " for p in self.passwords)
        for s in self.selectors:
            if s.root:
                parts.append(s.describe())
            else:
                parts.append(b" (" + s.describe() + b")")
        self._descr = b"".join(parts)
        return self._descr

    def channel_patterns(self):
        """All channel patterns of all selectors, or None if any allows all."""
        out = []
        for s in self.selectors:
            if s.allchannels:
                return None
            out.extend(s.channels)
        return out


def superuser() -> User:
    """Redis's NULL user: the master's stream, the AOF loader, migrations.
    It can do everything; CLIENT LIST shows it as ``(superuser)``."""
    u = User(b"(superuser)")
    for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
        u.apply(op)
    return u


def merge_selector_args(args: list[bytes]):
    """ACLMergeSelectorArguments: join "(a" "b)" into "(a b)". Returns
    (merged, None) or (None, index of the unmatched opening argument)."""
    out = []
    cur = None
    start = -1
    for j, op in enumerate(args):
        if op[:1] == b"(" and op[-1:] != b")":
            cur = op
            start = j
            continue
        if start != -1:
            cur = cur + b" " + op
            if op[-1:] == b")":
                start = -1
                out.append(cur)
            continue
        out.append(op)
    if start != -1:
        return None, start
    return out, None


def default_user(allchannels_default: bool = False) -> User:
    u = User(b"default", allchannels_default)
    for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
        u.apply(op)
    return u


# --- the log -------------------------------------------------------------------

REASONS = {DENIED_CMD: b"command", DENIED_KEY: b"key", DENIED_CHANNEL: b"channel",
           DENIED_AUTH: b"auth"}
GROUPING_MS = 60000


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "cinfo")

    def __init__(self, reason, context, obj, username, ctime, cinfo):
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = ctime
        self.cinfo = cinfo


class AclLog:
    def __init__(self):
        self.entries: list[LogEntry] = []  # newest first

    def add(self, e: LogEntry, max_len: int) -> None:
        for i, cur in enumerate(self.entries[:10]):
            if (cur.reason == e.reason and cur.context == e.context
                    and abs(cur.ctime - e.ctime) <= GROUPING_MS
                    and cur.object == e.object and cur.username == e.username):
                del self.entries[i]
                self.entries.insert(0, cur)
                cur.cinfo = e.cinfo
                cur.ctime = e.ctime
                cur.count += 1
                return
        self.entries.insert(0, e)
        del self.entries[max_len:]

    def reset(self) -> None:
        self.entries = []


# --- the users table -------------------------------------------------------------


class Acl:
    """All users of a server, its ACL log and the pub/sub default."""

    def __init__(self, pubsub_default_all: bool = False):
        self.pubsub_all = pubsub_default_all
        self.default = default_user(pubsub_default_all)
        self.users: dict[bytes, User] = {b"default": self.default}
        self.log = AclLog()
        self.superuser = superuser()

    def get_user(self, name: bytes) -> User | None:
        return self.users.get(name)

    def sorted_users(self) -> list[User]:
        return [self.users[k] for k in sorted(self.users)]

    def default_open(self) -> bool:
        """No AUTH is needed (authRequired is false for everyone)."""
        d = self.default
        return d.nopass and not d.disabled

    def build_user(self, base: User | None, args: list[bytes]) -> User:
        """ACLStringSetUser without linking: a new User with the rules
        applied to a copy of ``base``; raises RuleError with Redis's text."""
        merged, bad = merge_selector_args(args)
        if merged is None:
            raise RuleError("Unmatched parenthesis in acl selector starting at '%s'."
                            % args[bad].decode("latin-1"))
        tmp = User(base.name if base is not None else b"", self.pubsub_all)
        if base is not None:
            tmp.copy_from(base)
        for op in merged:
            try:
                tmp.apply(op, self.pubsub_all)
            except RuleError as e:
                raise RuleError("Error in ACL SETUSER modifier '%s': %s"
                                % (op.split(b"\0", 1)[0].decode("latin-1"), e.args[0])) from None
        return tmp

    def set_default_password(self, pw: str | None) -> None:
        """requirepass: resetpass, then >pw or nopass."""
        d = self.default
        d.apply(b"resetpass")
        if pw:
            d.apply(b">" + pw.encode("latin-1"))
        else:
            d.apply(b"nopass")

    def save_text(self) -> bytes:
        return b"".join(b"user " + u.name + b" " + u.describe() + b"\n"
                        for u in self.sorted_users())

    def load_text(self, text: bytes, filename: str):
        """ACLLoadFromFile's parsing: (users dict, None) or (None, errors)."""
        errors = []
        users: dict[bytes, User] = {}
        for i, line in enumerate(text.split(b"\n")):
            linenum = i + 1
            line = line.strip(b" \t\r\n")
            if not line:
                continue
            argv = [a for a in line.split(b" ") if a != b""]
            if not argv:
                continue
            if argv[0] != b"user" or len(argv) < 2:
                errors.append("%s:%d should start with user keyword followed by the username. "
                              % (filename, linenum))
                continue
            name = argv[1]
            if _has_spaces(name):
                errors.append("'%s:%d: username '%s' contains invalid characters. "
                              % (filename, linenum, name.decode("latin-1")))
                continue
            if name in users:
                errors.append("WARNING: Duplicate user '%s' found on line %d. "
                              % (name.decode("latin-1"), linenum))
                continue
            u = User(name, self.pubsub_all)
            users[name] = u
            merged, bad = merge_selector_args(argv[2:])
            if merged is None:
                errors.append("%s:%d: Unmatched parenthesis in selector definition."
                              % (filename, linenum))
                merged = []
            syntax = False
            for op in merged:
                op = op.strip(b"\t\r\n")
                try:
                    u.apply(op, self.pubsub_all)
                except RuleError as e:
                    if e.args[0] == E_NOENT:
                        errors.append("%s:%d: Error in applying operation '%s': %s. "
                                      % (filename, linenum, op.decode("latin-1"), e.args[0]))
                    elif not syntax:
                        errors.append("%s:%d: %s. " % (filename, linenum, e.args[0]))
                        syntax = True
        if errors:
            return None, "".join(errors) + (
                "WARNING: ACL errors detected, no change to the previously active ACL rules "
                "was performed")
        return users, None
