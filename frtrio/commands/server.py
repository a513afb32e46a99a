"""Server commands: INFO CONFIG COMMAND TIME LASTSAVE SHUTDOWN DEBUG WAIT."""

from __future__ import annotations

from frtrio.commands import table as _table
from frtrio.commands.table import command, container
from frtrio.commands.util import NOT_INT, err, syntax_error
from frtrio.config import IMMUTABLE, VERSION, ConfigError, canonical
from frtrio.engine import NO_REPLY, BlockOn
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, Map, Verbatim

PROTECTED = frozenset(["dir", "dbfilename"])


# --- INFO ---------------------------------------------------------------------

DEFAULT_SECTIONS = ("server", "clients", "memory", "persistence", "stats",
                    "replication", "cpu", "modules", "errorstats", "cluster", "keyspace")
ALL_SECTIONS = DEFAULT_SECTIONS[:7] + ("commandstats", "latencystats") + DEFAULT_SECTIONS[7:]


def _human(n: int) -> str:
    if n < 1024:
        return "%dB" % n
    for unit, div in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4)):
        if n < div * 1024 or unit == "T":
            return "%.2f%s" % (n / div, unit)
    return "%dB" % n


def info_text(srv, sections) -> str:
    parts = []
    for sec in sections:
        fn = _INFO_SECTIONS.get(sec)
        if fn is None:
            continue
        lines = fn(srv)
        parts.append("# %s\r\n%s" % (_TITLES[sec], "".join(l + "\r\n" for l in lines)))
    return "\r\n".join(parts)


def _info_server(srv):
    h = srv.host
    up = max(0, (srv.now_ms - srv.start_ms) // 1000)
    port = srv.config.get("port")
    return [
        "redis_version:" + VERSION,
        "redis_git_sha1:00000000",
        "redis_git_dirty:0",
        "redis_build_id:0",
        "redis_mode:" + ("cluster" if srv.cluster is not None else "standalone"),
        "os:" + h.os,
        "arch_bits:64",
        "monotonic_clock:POSIX clock_gettime",
        "multiplexing_api:epoll",
        "atomicvar_api:c11-builtin",
        "gcc_version:0.0.0",
        "process_id:%d" % h.pid,
        "process_supervised:no",
        "run_id:" + srv.run_id,
        "tcp_port:" + port,
        "server_time_usec:%d" % srv.unix_us(),
        "uptime_in_seconds:%d" % up,
        "uptime_in_days:%d" % (up // 86400),
        "hz:" + srv.config.get("hz"),
        "configured_hz:" + srv.config.get("hz"),
        "lru_clock:%d" % ((srv.now_ms // 1000) & ((1 << 24) - 1)),
        "executable:" + h.executable,
        "config_file:" + (srv.config.config_file or ""),
        "io_threads_active:0",
        "frtrio_mode:" + srv.config.get("frtrio-mode"),
    ]


def _info_clients(srv):
    blocked = sum(1 for c in srv.clients.values() if c.blocked is not None)
    return [
        "connected_clients:%d" % len(srv.clients),
        "cluster_connections:%d" % (srv.cluster.link_count() if srv.cluster is not None and hasattr(srv.cluster, "link_count") else 0),
        "maxclients:" + srv.config.get("maxclients"),
        "client_recent_max_input_buffer:0",
        "client_recent_max_output_buffer:0",
        "blocked_clients:%d" % blocked,
        "tracking_clients:0",
        "clients_in_timeout_table:%d" % sum(
            1 for c in srv.clients.values() if c.blocked is not None and c.blocked.deadline_ms is not None
        ),
    ]


def _info_memory(srv):
    rss = srv.host.rss()
    used = srv.host.used_memory()
    maxmem = srv.config.get_int("maxmemory")
    return [
        "used_memory:%d" % used,
        "used_memory_human:" + _human(used),
        "used_memory_rss:%d" % rss,
        "used_memory_rss_human:" + _human(rss),
        "used_memory_peak:%d" % used,
        "used_memory_peak_human:" + _human(used),
        "used_memory_peak_perc:100.00%",
        "used_memory_overhead:0",
        "used_memory_startup:0",
        "used_memory_dataset:%d" % used,
        "used_memory_dataset_perc:100.00%",
        "total_system_memory:%d" % srv.host.total_memory(),
        "total_system_memory_human:" + _human(srv.host.total_memory()),
        "used_memory_lua:0",
        "used_memory_scripts:0",
        "maxmemory:%d" % maxmem,
        "maxmemory_human:" + _human(maxmem),
        "maxmemory_policy:" + srv.config.get("maxmemory-policy"),
        "mem_fragmentation_ratio:1.00",
        "mem_allocator:libc",
        "lazyfree_pending_objects:0",
    ]


def _info_persistence(srv):
    from frtrio.persist.aof import info_persistence  # Redis 7.0's full field list

    return info_persistence(srv)


def _info_stats(srv):
    s = srv.stats
    return [
        "total_connections_received:%d" % s["total_connections_received"],
        "total_commands_processed:%d" % s["total_commands_processed"],
        "instantaneous_ops_per_sec:0",
        "total_net_input_bytes:%d" % s["total_net_input_bytes"],
        "total_net_output_bytes:%d" % s["total_net_output_bytes"],
        "rejected_connections:%d" % s["rejected_connections"],
        "expired_keys:%d" % s["expired_keys"],
        "evicted_keys:%d" % s["evicted_keys"],
        "keyspace_hits:%d" % s["keyspace_hits"],
        "keyspace_misses:%d" % s["keyspace_misses"],
        "pubsub_channels:%d" % (srv.pubsub.channel_count() if srv.pubsub is not None else 0),
        "pubsub_patterns:%d" % (srv.pubsub.pattern_count() if srv.pubsub is not None else 0),
        "pubsubshard_channels:%d" % (srv.pubsub.shard_channel_count() if srv.pubsub is not None else 0),
        "unexpected_error_replies:%d" % s["unexpected_error_replies"],
        "total_error_replies:%d" % s["total_error_replies"],
    ]


def _info_replication(srv):
    if hasattr(srv, "replication_info"):
        return srv.replication_info()
    return [
        "role:master",
        "connected_slaves:0",
        "master_failover_state:no-failover",
        "master_replid:" + srv.run_id,
        "master_replid2:0000000000000000000000000000000000000000",
        "master_repl_offset:0",
        "second_repl_offset:-1",
        "repl_backlog_active:0",
        "repl_backlog_size:" + srv.config.get("repl-backlog-size"),
        "repl_backlog_first_byte_offset:0",
        "repl_backlog_histlen:0",
    ]


def _info_cpu(srv):
    u, s = srv.host.cpu()
    return [
        "used_cpu_sys:%.6f" % s,
        "used_cpu_user:%.6f" % u,
        "used_cpu_sys_children:0.000000",
        "used_cpu_user_children:0.000000",
    ]


def _info_commandstats(srv):
    out = []
    for name in sorted(srv.cmdstats):
        calls, usec, rej, failed = srv.cmdstats[name]
        out.append(
            "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d"
            % (name, calls, usec, usec / calls if calls else 0.0, rej, failed)
        )
    return out


def _info_errorstats(srv):
    return ["errorstat_%s:count=%d" % (k, v) for k, v in sorted(srv.errorstats.items())]


def _info_cluster(srv):
    return ["cluster_enabled:%d" % (1 if srv.cluster is not None else 0)]


def _info_keyspace(srv):
    out = []
    for db in srv.dbs:
        if db.data:
            out.append("db%d:keys=%d,expires=%d,avg_ttl=0" % (db.id, len(db.data), len(db.expires)))
    return out


_INFO_SECTIONS = {
    "server": _info_server,
    "clients": _info_clients,
    "memory": _info_memory,
    "persistence": _info_persistence,
    "stats": _info_stats,
    "replication": _info_replication,
    "cpu": _info_cpu,
    "modules": lambda srv: [],
    "commandstats": _info_commandstats,
    "errorstats": _info_errorstats,
    "latencystats": lambda srv: [],
    "cluster": _info_cluster,
    "keyspace": _info_keyspace,
}
_TITLES = {k: k.capitalize() for k in _INFO_SECTIONS}
_TITLES["commandstats"] = "Commandstats"
_TITLES["errorstats"] = "Errorstats"
_TITLES["latencystats"] = "Latencystats"


@command("info")
def cmd_info(c, argv):
    names = [a.decode("latin-1").lower() for a in argv[1:]]
    if not names:
        secs = list(DEFAULT_SECTIONS)
    else:
        want = []
        for n in names:
            if n == "default":
                want.extend(DEFAULT_SECTIONS)
            elif n in ("all", "everything"):
                want.extend(ALL_SECTIONS)
            else:
                want.append(n)
        secs = [s for s in ALL_SECTIONS if s in want]
    return Verbatim(info_text(c.server, secs).encode())


# --- CONFIG -------------------------------------------------------------------

container("config")


@command("config|get")
def config_get(c, argv):
    cfg = c.server.config
    seen = {}
    for pat in argv[2:]:
        for k, v in cfg.matching(pat.decode("latin-1")):
            seen[k] = v
    return Map((k.encode(), v.encode()) for k, v in seen.items())


@command("config|set")
def config_set(c, argv):
    if len(argv) % 2 != 0:
        raise err("ERR wrong number of arguments for 'config|set' command")
    cfg = c.server.config
    pairs = []
    seen = set()
    for i in range(2, len(argv), 2):
        name = argv[i].decode("latin-1").lower()
        if not cfg.known(name):
            raise err("ERR Unknown option or number of arguments for CONFIG SET - '%s'" % argv[i].decode("latin-1"))
        if canonical(name) in seen:
            raise err("ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter" % name)
        seen.add(canonical(name))
        pairs.append((name, argv[i + 1].decode("latin-1")))
    values = []
    for name, raw in pairs:
        if canonical(name) in IMMUTABLE:
            raise err("ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config" % name)
        if canonical(name) in PROTECTED and cfg.get("enable-protected-configs") == "no":
            raise err("ERR CONFIG SET failed (possibly related to argument '%s') - can't set protected config" % name)
        try:
            args = raw.split() if name in ("save", "client-output-buffer-limit", "bind", "oom-score-adj-values", "latency-tracking-info-percentiles", "replicaof", "slaveof") else [raw]
            if name == "save" and raw.strip() == "":
                args = []
            values.append((name, cfg.validate(name, args) if args else ""))
        except ConfigError as e:
            raise err("ERR CONFIG SET failed (possibly related to argument '%s') - %s" % (name, e.message))
    old = {name: cfg.get(name) for name, _ in values}
    try:
        for name, v in values:
            cfg.set(name, v)
    except ConfigError as e:
        for name, v in old.items():
            cfg.values[canonical(name)] = v
        raise err("ERR CONFIG SET failed (possibly related to argument '%s') - %s" % (e.name, e.message))
    return OK


@command("config|resetstat")
def config_resetstat(c, argv):
    srv = c.server
    for k in srv.stats:
        srv.stats[k] = 0
    srv.cmdstats.clear()
    srv.errorstats.clear()
    return OK


@command("config|rewrite")
def config_rewrite(c, argv):
    srv = c.server
    if not srv.config.config_file:
        raise err("ERR The server is running without a config file")
    if srv.rewrite_config is None or not srv.rewrite_config():
        raise err("ERR Rewriting config file: failed")
    return OK


# --- COMMAND ------------------------------------------------------------------


def _implemented():
    return [cmd for name, cmd in sorted(_table.TABLE.items())]


@command("command")
def cmd_command(c, argv):
    return [cmd.info_reply() for cmd in _implemented()]


@command("command|count")
def command_count(c, argv):
    return len(_table.TABLE)


@command("command|info")
def command_info(c, argv):
    if len(argv) == 2:
        return [cmd.info_reply() for cmd in _implemented()]
    out = []
    for name in argv[2:]:
        cmd = _find(name)
        out.append(cmd.info_reply() if cmd is not None else None)
    return out


def _find(name: bytes):
    n = name.lower()
    if b"|" in n:
        parent, sub = n.split(b"|", 1)
        p = _table.TABLE.get(parent)
        return p.subcommands.get(sub) if p is not None else None
    return _table.TABLE.get(n)


@command("command|list")
def command_list(c, argv):
    names = []
    for cmd in _implemented():
        names.append(cmd.fullname.encode())
        for s in cmd.subcommands.values():
            names.append(s.fullname.encode())
    return names


@command("command|docs")
def command_docs(c, argv):
    return Map([])


@command("command|getkeys")
def command_getkeys(c, argv):
    sub = argv[2:]
    cmd = _table.TABLE.get(sub[0].lower())
    if cmd is not None and cmd.subcommands and len(sub) >= 2:
        cmd = cmd.subcommands.get(sub[1].lower())
    if cmd is None:
        raise err("ERR Invalid command specified")
    if not cmd.arity_ok(len(sub)):
        raise err("ERR Invalid number of arguments specified for command")
    pos = cmd.get_keys(sub)
    if not pos:
        raise err("ERR The command has no key arguments")
    return [sub[i] for i in pos]


# --- misc ---------------------------------------------------------------------


@command("time")
def cmd_time(c, argv):
    us = c.server.unix_us()
    return [b"%d" % (us // 1000000), b"%d" % (us % 1000000)]


@command("lastsave")
def cmd_lastsave(c, argv):
    return c.server.lastsave_ms // 1000


@command("shutdown")
def cmd_shutdown(c, argv):
    mode = "default"
    for a in argv[1:]:
        la = a.lower()
        if la == b"nosave":
            mode = "nosave"
        elif la == b"save":
            mode = "save"
        elif la in (b"now", b"force"):
            pass
        elif la == b"abort":
            raise err("ERR No shutdown in progress.")
        else:
            raise syntax_error()
    c.server.shutdown_requested = mode
    c.close_after_reply = True
    return NO_REPLY


def _debug_allowed(c) -> bool:
    v = c.server.config.get("enable-debug-command")
    if v == "yes":
        return True
    if v == "local":
        return c.addr.startswith("127.") or c.addr.startswith("[::1]") or c.addr.startswith("::1")
    return False


@command("debug")
def cmd_debug(c, argv):
    if not _debug_allowed(c):
        raise err(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to "
            "\"local\", you can run it from a local connection, otherwise you need to set "
            "this option in the configuration file, and then restart the server."
        )
    sub = argv[1].lower()
    if sub == b"sleep" and len(argv) == 3:
        try:
            secs = float(argv[2])
        except ValueError:
            secs = 0.0
        c.server.sleep_request_ms += int(secs * 1000)
        return OK
    if sub == b"set-active-expire" and len(argv) == 3:
        c.server.active_expire_enabled = argv[2] != b"0"
        return OK
    if sub == b"help":
        return [b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"SLEEP <seconds>", b"SET-ACTIVE-EXPIRE <0|1>"]
    raise err(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try DEBUG HELP."
        % argv[1].decode("latin-1")
    )


@command("wait")
def cmd_wait(c, argv):
    n = string2ll(argv[1])
    if n is None:
        raise err(NOT_INT)
    t = string2ll(argv[2])
    if t is None:
        raise err("ERR timeout is not an integer or out of range")
    if t < 0:
        raise err("ERR timeout is negative")
    srv = c.server
    acked = srv.replicas_acked(c) if hasattr(srv, "replicas_acked") else 0
    if c.multi is not None or c.in_exec or acked >= n:
        return acked
    deadline = srv.now_ms + t if t > 0 else None
    return BlockOn([], c.db, deadline, lambda cl: None, on_timeout=acked, argv=argv)
