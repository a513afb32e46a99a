"""ACL SETUSER / GETUSER / DELUSER / USERS / LIST / WHOAMI / CAT / GENPASS /
LOG / DRYRUN / SAVE / LOAD / HELP: the command side of ``frtrio/core/acl.py``."""

from __future__ import annotations

from frtrio.commands.table import command, container
from frtrio.commands.util import err, parse_int
from frtrio.core import acl as A
from frtrio.core.client import F
from frtrio.core.effects import AclFile
from frtrio.protocol.reply import NO_REPLY, OK, Double, Map, SetReply, Status

container("acl")


def _s(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1")


def _close(srv, me, x) -> None:
    """Disconnect ``x`` (after this command's reply when it is the caller)."""
    if x is me:
        x.flags |= F.CLOSE_AFTER_REPLY
    else:
        srv.kill_client(x)


def _kill_clients_of(srv, me, user) -> None:
    """ACLFreeUserAndKillClients: the user's clients fall back to the
    default user, unauthenticated, and are disconnected."""
    for x in list(srv.clients.values()):
        if x.auser is user:
            srv.set_client_user(x, srv.acl.default)
            x.authenticated = False
            _close(srv, me, x)


def _kill_pubsub_if_needed(srv, me, new, old) -> None:
    """ACLKillPubsubClientsIfNeeded: when the user loses channels, its
    subscribed clients whose subscriptions are no longer allowed go."""
    upcoming = new.channel_patterns()
    if upcoming is None:
        return
    prev = old.channel_patterns()
    if prev is not None and all(ch in upcoming for ch in prev):
        return
    for x in list(srv.clients.values()):
        if x.auser is not old or not x.in_pubsub:
            continue
        kill = any(not A.check_channel_list(upcoming, p, True) for p in x.psubscriptions)
        if not kill:
            kill = any(not A.check_channel_list(upcoming, ch, False)
                       for ch in list(x.subscriptions) + list(x.ssubscriptions))
        if kill:
            # freed at once, as Redis's freeClient (gone from CLIENT LIST)
            srv.free_client(x)
            srv.kill_client(x)


def _subcommand_error(argv):
    return err("ERR unknown subcommand or wrong number of arguments for '%s'. Try ACL HELP."
               % _s(argv[1])[:128])


@command("acl|setuser")
def acl_setuser(c, argv):
    srv = c.server
    name = argv[2]
    if A._has_spaces(name):
        raise err("ERR Usernames can't contain spaces or null characters")
    acl = srv.acl
    u = acl.get_user(name)
    try:
        tmp = acl.build_user(u, argv[3:])
    except A.RuleError as e:
        raise err("ERR " + e.args[0]) from None
    if u is not None:
        _kill_pubsub_if_needed(srv, c, tmp, u)
    else:
        u = A.User(name, acl.pubsub_all)
        acl.users[name] = u
    u.copy_from(tmp)
    return OK


@command("acl|deluser")
def acl_deluser(c, argv):
    srv = c.server
    for name in argv[2:]:
        if name == b"default":
            raise err("ERR The 'default' user cannot be removed")
    n = 0
    for name in argv[2:]:
        u = srv.acl.users.pop(name, None)
        if u is not None:
            _kill_clients_of(srv, c, u)
            n += 1
    return n


def _selector_fields(s: A.Selector) -> list:
    return [b"commands", s.describe_commands(), b"keys", s.describe_keys(),
            b"channels", s.describe_channels()]


@command("acl|getuser")
def acl_getuser(c, argv):
    u = c.server.acl.get_user(argv[2])
    if u is None:
        return None
    root = u.selectors[0]
    fields = [(b"flags", SetReply(u.flag_names())), (b"passwords", list(u.passwords))]
    f = _selector_fields(root)
    fields += [(f[i], f[i + 1]) for i in range(0, 6, 2)]
    sels = []
    for s in u.selectors[1:]:
        f = _selector_fields(s)
        sels.append(Map((f[i], f[i + 1]) for i in range(0, 6, 2)))
    fields.append((b"selectors", sels))
    return Map(fields)


@command("acl|users")
def acl_users(c, argv):
    return [u.name for u in c.server.acl.sorted_users()]


@command("acl|list")
def acl_list(c, argv):
    return [b"user " + u.name + b" " + u.describe() for u in c.server.acl.sorted_users()]


@command("acl|whoami")
def acl_whoami(c, argv):
    return c.user


@command("acl|cat")
def acl_cat(c, argv):
    if len(argv) == 2:
        return [x.encode() for x in A.CATEGORIES]
    if len(argv) != 3:
        raise _subcommand_error(argv)
    try:
        cat = argv[2].decode("ascii").lower()
    except UnicodeDecodeError:
        cat = None
    if cat not in A.CATEGORIES:
        raise err("ERR Unknown category '%s'" % _s(argv[2])[:128])
    tag = "@" + cat
    return [uc.name_bytes for uc in A.universe().cmds if uc.listed and tag in uc.categories]


@command("acl|genpass")
def acl_genpass(c, argv):
    bits = 256
    if len(argv) == 3:
        bits = parse_int(argv[2])
    elif len(argv) > 3:
        raise _subcommand_error(argv)
    if bits <= 0 or bits > 4096:
        raise err("ERR ACL GENPASS argument must be the number of bits for the output "
                  "password, a positive number up to 4096")
    chars = (bits + 3) // 4
    rng = c.server.rng
    return "".join("0123456789abcdef"[rng.randrange(16)] for _ in range(chars)).encode()


@command("acl|log")
def acl_log(c, argv):
    srv = c.server
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            srv.acl.log.reset()
            return OK
        count = max(parse_int(argv[2]), 0)
    elif len(argv) > 3:
        raise _subcommand_error(argv)
    now = srv.unix_us() // 1000
    out = []
    for e in srv.acl.log.entries[:count]:
        out.append(Map([
            (b"count", e.count),
            (b"reason", A.REASONS.get(e.reason, b"unknown")),
            (b"context", A.CONTEXTS.get(e.context, b"unknown")),
            (b"object", e.object),
            (b"username", e.username),
            (b"age-seconds", Double((now - e.ctime) / 1000)),
            (b"client-info", e.cinfo),
        ]))
    return out


@command("acl|dryrun")
def acl_dryrun(c, argv):
    srv = c.server
    u = srv.acl.get_user(argv[2])
    if u is None:
        raise err("ERR User '%s' not found" % _s(argv[2]))
    args = argv[3:]
    cmd = srv.commands.get(args[0].lower())
    if cmd is None:
        # a Redis command frtrio does not serve is still judged
        cmd = A.universe().standins.get(args[0].lower())
    if cmd is not None and cmd.subcommands and len(args) >= 2:
        cmd = cmd.subcommands.get(args[1].lower())
    if cmd is None or cmd.acl_id is None:
        raise err("ERR Command '%s' not found" % _s(args[0]))
    if not cmd.arity_ok(len(args)):
        raise err("ERR wrong number of arguments for '%s' command" % cmd.fullname)
    kind, pos = u.check_command(cmd, args)
    if kind == A.DENIED_CMD:
        return ("This user has no permissions to run the '%s' command" % cmd.fullname).encode()
    if kind == A.DENIED_KEY:
        return b"This user has no permissions to access the '" + args[pos] + b"' key"
    if kind == A.DENIED_CHANNEL:
        return b"This user has no permissions to access the '" + args[pos] + b"' channel"
    return OK


_NO_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to "
            "specify users via the ACL SETUSER command and then issue a CONFIG REWRITE "
            "(assuming you have a Redis configuration file set) in order to store users in "
            "the Redis configuration.")


def _aclfile(srv) -> str:
    return srv.config.get("aclfile") or ""


@command("acl|save")
def acl_save(c, argv):
    srv = c.server
    if not _aclfile(srv):
        raise err(_NO_FILE)
    srv.effects.append(AclFile("save", c.defer_reply(), c))
    return NO_REPLY


@command("acl|load")
def acl_load(c, argv):
    srv = c.server
    if not _aclfile(srv):
        raise err(_NO_FILE)
    srv.effects.append(AclFile("load", c.defer_reply(), c))
    return NO_REPLY


SAVE_ERROR = ("ERR There was an error trying to save the ACLs. Please check the server logs "
              "for more information")


def read_error(srv, e: OSError) -> str:
    return "Error loading ACLs, opening file '%s': %s" % (_aclfile(srv), e.strerror or e)


def apply_acl_text(srv, text: bytes, me=None) -> str | None:
    """ACLLoadFromFile once the file is read: replace every user with the
    file's; the clients of the old users (but the default one, changed in
    place) are disconnected. Returns None, or the errors text (nothing
    changed then)."""
    users, errors = srv.acl.load_text(text, _aclfile(srv))
    if errors is not None:
        return errors
    acl = srv.acl
    new_default = users.pop(b"default", None) or A.default_user(acl.pubsub_all)
    old = acl.users
    acl.default.copy_from(new_default)
    acl.users = {b"default": acl.default}
    acl.users.update(users)
    for n, u in old.items():
        if n != b"default":
            _kill_clients_of(srv, me, u)
    return None


ACL_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]


@command("acl|help")
def acl_help(c, argv):
    return [Status(x) for x in ACL_HELP]
