"""Connection commands: PING ECHO HELLO AUTH RESET CLIENT READONLY..."""

from __future__ import annotations

from frtrio.core import client_evict as _cev

from frtrio.core.client import F
from frtrio.commands.table import command, container
from frtrio.commands.util import LLONG_MAX, err, parse_int, parse_range, syntax_error
from frtrio.config import VERSION
from frtrio.core.effects import PauseChanged
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, OK, PONG, ErrorReply, Map, SetReply, Status, Verbatim
from frtrio.core.cnum import cstr as _cstr

WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("ping")
def cmd_ping(c, argv):
    if len(argv) > 2:
        raise err("ERR wrong number of arguments for 'ping' command")
    if c.resp == 2 and c.in_pubsub:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    if len(argv) == 2:
        return argv[1]
    return PONG


@command("quit")
def cmd_quit(c, argv):
    """QUIT: +OK, then the connection closes. The engine answers QUIT before
    any check (ACL, MULTI queueing, loading), as Redis 7.0's processCommand
    does; this entry puts QUIT in the command table (COMMAND, COMMAND LIST,
    ACL categories), and its ``noscript`` flag refuses it in scripts."""
    c.flags |= F.CLOSE_AFTER_REPLY
    return OK


@command("echo")
def cmd_echo(c, argv):
    return argv[1]


def _authenticate(c, user: bytes, password: bytes, argv0: bytes) -> bool:
    """ACLAuthenticateUser: log the client in as ``user``, or log the
    refusal in the ACL LOG."""
    srv = c.server
    u = srv.acl.get_user(user)
    if u is not None and u.check_password(password):
        c.authenticated = True
        srv.set_client_user(c, u)
        return True
    srv.acl_log(c, 3, 1 if c.multi is not None or c.flags & F.IN_EXEC else 0, 0, [argv0],
                username=user)
    return False


@command("auth")
def cmd_auth(c, argv):
    if len(argv) > 3:
        raise syntax_error()
    if len(argv) == 2:
        if c.server.acl.default.nopass:
            raise err(
                "ERR AUTH <password> called without any password configured for the "
                "default user. Are you sure your configuration is correct?"
            )
        user, pw = b"default", argv[1]
    else:
        user, pw = argv[1], argv[2]
        core = c.server.cluster
        if (user == b"internal connection" and core is not None
                and pw == core.state.internal_secret):
            # a cluster peer (atomic slot migration's channels)
            c.authenticated = True
            c.flags |= F.INTERNAL
            c.server.set_client_user(c, c.server.acl.superuser)  # may do everything
            return OK
    if _authenticate(c, user, pw, argv[0]):
        return OK
    raise err(WRONGPASS)


def hello_reply(c):
    srv = c.server
    mode = b"cluster" if srv.cluster is not None else b"standalone"
    role = srv.role_name() if hasattr(srv, "role_name") else b"master"
    return Map(
        [
            (b"server", b"redis"),
            (b"version", VERSION.encode()),
            (b"proto", c.resp),
            (b"id", c.id),
            (b"mode", mode),
            (b"role", role),
            (b"modules", []),
        ]
    )


@command("hello")
def cmd_hello(c, argv):
    ver = None
    if len(argv) >= 2:
        v = string2ll(argv[1])
        if v is None or not -(2**63) <= v < 2**63:
            raise err("ERR Protocol version is not an integer or out of range")
        ver = v
        if ver < 2 or ver > 3:
            raise err("NOPROTO unsupported protocol version")
    i = 2
    setname = None
    auth = None
    while i < len(argv):
        a = _cstr(argv[i]).lower()
        more = len(argv) - i - 1
        if a == b"auth" and more >= 2:
            auth = (argv[i + 1], argv[i + 2])
            i += 3
        elif a == b"setname" and more >= 1:
            setname = argv[i + 1]
            i += 2
        else:
            raise err("ERR Syntax error in HELLO option '%s'" % _cstr(argv[i]).decode("latin-1"))
    if auth is not None:
        if not _authenticate(c, auth[0], auth[1], argv[0]):
            raise err(WRONGPASS)
    if not c.authenticated:
        raise err("NOAUTH HELLO must be called with the client already authenticated, "
                  "otherwise the HELLO AUTH <user> <pass> option can be used to "
                  "authenticate the client and select the RESP protocol version at the "
                  "same time")
    if setname is not None:
        _validate_name(setname)
        c.name = setname
    if ver is not None:
        c.resp = ver
    return hello_reply(c)


@command("reset")
def cmd_reset(c, argv):
    srv = c.server
    c.multi = None
    c.flags &= ~F.DIRTY_EXEC
    srv.unwatch_all(c)
    c.select(0)
    c.resp = 2
    c.name = b""
    c.flags &= ~(F.READONLY | F.ASKING)
    c.reply_mode = 0  # (CLIENT NO-EVICT survives RESET, as in Redis 7.0)
    if srv.pubsub is not None:
        srv.pubsub.unsubscribe_all(c, notify=False)
    srv.set_client_user(c, srv.acl.default)
    c.authenticated = not srv.requires_auth()
    return Status("RESET")


@command("readonly")
def cmd_readonly(c, argv):
    if c.server.cluster is None:
        raise err("ERR This instance has cluster support disabled")
    c.flags |= F.READONLY
    return OK


@command("readwrite")
def cmd_readwrite(c, argv):
    if c.server.cluster is None:
        raise err("ERR This instance has cluster support disabled")
    c.flags &= ~F.READONLY
    return OK


@command("asking")
def cmd_asking(c, argv):
    if c.server.cluster is None:
        raise err("ERR This instance has cluster support disabled")
    c.flags |= F.ASKING
    return OK


# --- CLIENT -------------------------------------------------------------------

container("client")


def _validate_name(name: bytes) -> None:
    for b in name:
        if b < 33 or b > 126:
            raise err(
                "ERR Client names cannot contain spaces, newlines or special characters."
            )


def client_type(c) -> str:
    """Redis's getClientType."""
    f = c.flags
    if f & F.MASTER:
        return "master"
    if f & F.SLAVE and not f & F.MONITOR:
        return "replica"
    if c.in_pubsub:
        return "pubsub"
    return "normal"


def client_flags(c) -> str:
    """CLIENT LIST's flags, in Redis's order."""
    f = c.flags
    out = ""
    if f & F.SLAVE:
        out += "O" if f & F.MONITOR else "S"
    if f & F.MASTER:
        out += "M"
    if c.in_pubsub:
        out += "P"
    if c.multi is not None:
        out += "x"
    if c.blocked is not None:
        out += "b"
    if f & F.DIRTY_CAS:
        out += "d"
    if f & F.CLOSE_AFTER_REPLY:
        out += "c"
    if f & F.CLOSE_ASAP:
        out += "A"  # close ASAP
    if f & F.READONLY:
        out += "r"
    if f & F.NO_EVICT:
        out += "e"
    if f & F.MIGRATING:
        out += "g"  # (Redis 8.4's atomic slot migration flags)
    if f & F.IMPORTING:
        out += "o"
    return out or "N"


def client_info_line(c, extra: int = 0) -> str:
    now = c.server.now_ms
    return (
        "id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d "
        "psub=%d ssub=%d multi=%d qbuf=%d qbuf-free=%d argv-mem=%d multi-mem=%d rbs=%d "
        "rbp=%d obl=%d oll=%d omem=%d tot-mem=%d events=r cmd=%s user=%s redir=%d resp=%d"
        % (
            c.id,
            c.addr,
            c.laddr,
            c.fd,
            c.name.decode("latin-1"),
            (now - c.ctime_ms) // 1000,
            (now - c.last_interaction_ms) // 1000,
            client_flags(c),
            c.dbid,
            len(c.subscriptions),
            len(c.psubscriptions),
            len(c.ssubscriptions),
            len(c.multi) if c.multi is not None else -1,
            c.qbuf,
            max(0, c.qb_alloc - c.qbuf),
            c.argv_mem,
            _cev.multi_memory(c),
            c.rb_size,
            c.rb_peak,
            0,
            0,
            _cev.obuf_memory(c),
            _cev.client_memory(c, extra),
            c.last_cmd.decode("latin-1"),
            c.user.decode("latin-1"),
            -1,
            c.resp,
        )
    )


@command("client|id")
def client_id(c, argv):
    return c.id


@command("client|setname")
def client_setname(c, argv):
    _validate_name(argv[2])
    c.name = argv[2]
    return OK


@command("client|getname")
def client_getname(c, argv):
    return c.name if c.name else None


@command("client|info")
def client_info(c, argv):
    return Verbatim(_listing(c, argv, [c]))


def _listing(c, argv, clients) -> bytes:
    """CLIENT LIST / INFO lines; the caller's argv-mem and tot-mem include
    the arguments of this very command, as on redis-server (its c->argv)."""
    saved = c.argv_mem
    if not saved:
        c.argv_mem = sum(map(len, argv))
    try:
        arr = _cev.PTR * len(argv)  # (its argv array, in its tot-mem)
        return "".join(client_info_line(x, arr if x is c else 0) + "\n"
                       for x in clients).encode()
    finally:
        c.argv_mem = saved


def _client_type_by_name(name: bytes):
    """Redis's getClientTypeByName; None for an unknown name."""
    t = _cstr(name).lower()
    if t in (b"normal", b"pubsub", b"master"):
        return t.decode()
    if t in (b"replica", b"slave"):
        return "replica"
    return None


@command("client|list")
def client_list(c, argv):
    srv = c.server
    if len(argv) == 4 and _cstr(argv[2]).lower() == b"type":
        t = _client_type_by_name(argv[3])
        if t is None:
            raise err("ERR Unknown client type '%s'" % _cstr(argv[3]).decode("latin-1"))
        clients = [x for x in srv.clients.values() if client_type(x) == t]
    elif len(argv) > 3 and _cstr(argv[2]).lower() == b"id":
        clients = []
        for b in argv[3:]:
            n = string2ll(b)
            if n is None:
                raise err("ERR Invalid client ID")
            x = srv.clients.get(n)
            if x is not None:
                clients.append(x)
    elif len(argv) != 2:
        raise syntax_error()
    else:
        clients = list(srv.clients.values())
    return Verbatim(_listing(c, argv, clients))


def _user_exists(srv, name: bytes) -> bool:
    acl = getattr(srv, "acl", None)
    if acl is not None and hasattr(acl, "get_user"):
        return acl.get_user(name) is not None
    return name == b"default"


@command("client|kill")
def client_kill(c, argv):
    srv = c.server
    fid = ftype = faddr = fladdr = fuser = None
    if len(argv) == 3:
        faddr = _cstr(argv[2]).decode("latin-1")
        skipme = False  # with the old form you can kill yourself
    else:
        skipme = True
        i = 2
        n = len(argv)
        while i < n:
            a = _cstr(argv[i]).lower()
            more = i + 1 < n
            v = argv[i + 1] if more else b""
            if a == b"id" and more:
                fid = parse_range(v, 1, LLONG_MAX, "ERR client-id should be greater than 0")
            elif a == b"type" and more:
                ftype = _client_type_by_name(v)
                if ftype is None:
                    raise err("ERR Unknown client type '%s'" % _cstr(v).decode("latin-1"))
            elif a == b"addr" and more:
                faddr = _cstr(v).decode("latin-1")
            elif a == b"laddr" and more:
                fladdr = _cstr(v).decode("latin-1")
            elif a == b"user" and more:
                if not _user_exists(srv, v):
                    raise err("ERR No such user '%s'" % _cstr(v).decode("latin-1"))
                fuser = v
            elif a == b"skipme" and more:
                lv = _cstr(v).lower()
                if lv == b"yes":
                    skipme = True
                elif lv == b"no":
                    skipme = False
                else:
                    raise syntax_error()
            else:
                raise syntax_error()
            i += 2
    killed = 0
    for x in list(srv.clients.values()):
        if faddr is not None and x.addr != faddr:
            continue
        if fladdr is not None and x.laddr != fladdr:
            continue
        if ftype is not None and client_type(x) != ftype:
            continue
        if fid is not None and x.id != fid:
            continue
        if fuser is not None and x.user != fuser:
            continue
        if x is c and skipme:
            continue
        _kill(c, x)
        killed += 1
    if len(argv) == 3:
        if not killed:
            raise err("ERR No such client")
        return OK
    return killed


def _kill(me, x) -> None:
    if x is me:
        me.flags |= F.CLOSE_AFTER_REPLY
    else:
        x.server.kill_client(x)


@command("client|reply")
def client_reply(c, argv):
    a = _cstr(argv[2]).lower()
    if a == b"on":
        c.reply_mode = 0
        return OK
    if a == b"off":
        c.reply_mode = 1
        return _NO
    if a == b"skip":
        if c.reply_mode != 1:  # SKIP does nothing while replies are OFF
            c.reply_mode = 2
        return _NO
    raise syntax_error()


@command("client|pause")
def client_pause(c, argv):
    """CLIENT PAUSE <timeout ms> [WRITE|ALL]: hold other clients' commands
    (all of them, or those that may write) until the time passes or CLIENT
    UNPAUSE; a later end time wins, as in Redis."""
    if len(argv) > 4:
        raise err("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP."
                  % argv[1].decode("latin-1"))
    t = string2ll(argv[2])
    if t is None:
        raise err("ERR timeout is not an integer or out of range")
    if t < 0:
        raise err("ERR timeout is negative")
    mode_all = True
    if len(argv) == 4:
        m = _cstr(argv[3]).lower()
        if m == b"write":
            mode_all = False
        elif m != b"all":
            raise err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    srv = c.server
    srv.pause_clients(srv.now_ms + t, mode_all)
    srv.effects.append(PauseChanged())
    if srv.cluster is not None and t > 0:
        srv.cluster.migrations.cancel_all("client pause")
    return OK


@command("client|unpause")
def client_unpause(c, argv):
    c.server.unpause_clients()
    c.server.effects.append(PauseChanged())
    return OK


@command("client|no-evict")
def client_no_evict(c, argv):
    a = _cstr(argv[2]).lower()
    if a == b"on":
        c.flags |= F.NO_EVICT
    elif a == b"off":
        c.flags &= ~F.NO_EVICT
    else:
        raise syntax_error()
    return OK


@command("client|tracking")
def client_tracking(c, argv):
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN]
    [OPTOUT] [NOLOOP]: client-side caching (frtrio/core/tracking.py)."""
    from frtrio.core.tracking import TrackState

    srv = c.server
    redir = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    j = 3
    while j < len(argv):
        a = _cstr(argv[j]).lower()
        more = len(argv) - 1 - j
        if a == b"redirect" and more:
            j += 1
            if redir != 0:
                raise err("ERR A client can only redirect to a single other client")
            r = string2ll(argv[j])
            if r is None:
                raise err("ERR value is not an integer or out of range")
            if r not in srv.clients:
                raise err("ERR The client ID you want redirect to does not exist")
            redir = r
        elif a == b"bcast":
            bcast = True
        elif a == b"optin":
            optin = True
        elif a == b"optout":
            optout = True
        elif a == b"noloop":
            noloop = True
        elif a == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise syntax_error()
        j += 1
    mode = _cstr(argv[2]).lower()
    tr = srv.tracking
    if mode == b"on":
        old = c.tracking
        if not bcast and prefixes:
            raise err("ERR PREFIX option requires BCAST mode to be enabled")
        if old is not None and old.bcast != bcast:
            raise err("ERR You can't switch BCAST mode on/off before disabling tracking for "
                      "this client, and then re-enabling it with a different mode.")
        if bcast and (optin or optout):
            raise err("ERR OPTIN and OPTOUT are not compatible with BCAST")
        if optin and optout:
            raise err("ERR You can't specify both OPTIN mode and OPTOUT mode")
        if old is not None and ((optin and old.optout) or (optout and old.optin)):
            raise err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for "
                      "this client, and then re-enabling it with a different mode.")
        if bcast:
            bad = tr.prefix_collision(old.prefixes if old is not None else [], prefixes)
            if bad is not None:
                raise err(bad)
        tr.enable(c, TrackState(redir, bcast, optin, optout, noloop), prefixes)
    elif mode == b"off":
        tr.disable(c)
    else:
        raise syntax_error()
    return OK


@command("client|caching")
def client_caching(c, argv):
    st = c.tracking
    if st is None:
        raise err("ERR CLIENT CACHING can be called only when the client is in tracking mode "
                  "with OPTIN or OPTOUT mode enabled")
    opt = _cstr(argv[2]).lower()
    if opt == b"yes":
        if not st.optin:
            raise err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN "
                      "mode.")
    elif opt == b"no":
        if not st.optout:
            raise err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT "
                      "mode.")
    else:
        raise syntax_error()
    st.caching = True
    return OK


@command("client|getredir")
def client_getredir(c, argv):
    return c.tracking.redirect if c.tracking is not None else -1


@command("client|trackinginfo")
def client_trackinginfo(c, argv):
    st = c.tracking
    if st is None:
        return Map([(b"flags", SetReply([b"off"])), (b"redirect", -1), (b"prefixes", [])])
    flags = [b"on"] + [name for on, name in (
        (st.bcast, b"bcast"), (st.optin, b"optin"), (st.optin and st.caching, b"caching-yes"),
        (st.optout, b"optout"), (st.optout and st.caching, b"caching-no"),
        (st.noloop, b"noloop"), (st.broken_redir, b"broken_redirect")) if on]
    return Map([(b"flags", SetReply(flags)), (b"redirect", st.redirect),
                (b"prefixes", sorted(st.prefixes))])


@command("client|unblock")
def client_unblock(c, argv):
    as_error = False
    if len(argv) == 4:
        a = _cstr(argv[3]).lower()
        if a == b"timeout":
            as_error = False
        elif a == b"error":
            as_error = True
        else:
            raise err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    cid = parse_int(argv[2])
    srv = c.server
    target = srv.clients.get(cid)
    if target is None or target.blocked is None or srv.blocking is None:
        return 0
    if as_error:
        srv.blocking.unblock(target, ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
    else:
        srv.blocking.timeout(target)
    return 1


CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]


@command("client|help")
def client_help(c, argv):
    return [Status(x) for x in CLIENT_HELP]


_NO = NO_REPLY
