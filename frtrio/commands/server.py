"""Server commands: INFO CONFIG COMMAND TIME LASTSAVE SHUTDOWN DEBUG WAIT."""

from __future__ import annotations

import re

from frtrio.client import F
from frtrio.commands import table as _table
from frtrio.commands.table import command, container
from frtrio.commands.util import LLONG_MAX, err, parse_int, syntax_error
from frtrio.config import IMM, MULTI, PROT, VERSION, ConfigError
from frtrio.blocking import BlockOn
from frtrio.protocol.reply import NO_REPLY
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, Map, SetReply, Status, Verbatim
from frtrio.store.glob import compile_pattern
from frtrio.cnum import cstr as _cstr
from frtrio.effects import DebugLoadAof, DebugReload, RewriteConfig, Sleep
from frtrio.cnum import atoi as _atoi


# --- INFO ---------------------------------------------------------------------

# Redis's section order; "module_list" is the "# Modules" section
DEFAULT_SECTIONS = ("server", "clients", "memory", "persistence", "stats",
                    "replication", "cpu", "module_list", "errorstats", "cluster", "keyspace")
ALL_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication",
                "cpu", "module_list", "commandstats", "errorstats", "latencystats",
                "cluster", "keyspace")
# frtrio's own sections: shown only when named (INFO frtrio), so that INFO,
# INFO all and INFO everything stay field for field what redis-server prints
EXTRA_SECTIONS = ("frtrio",)


def _human(n: int) -> str:
    """Redis's bytesToHuman."""
    if n < 1024:
        return "%dB" % n
    for unit, div in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4),
                      ("P", 1024**5)):
        if n < div * 1024:
            return "%.2f%s" % (n / div, unit)
    return "%dB" % n


def info_text(srv, sections) -> str:
    parts = []
    for sec in sections:
        fn = _INFO_SECTIONS.get(sec)
        if fn is None:
            continue
        lines = fn(srv)
        parts.append("# %s\r\n%s" % (_TITLES[sec], "".join(x + "\r\n" for x in lines)))
    return "\r\n".join(parts)


def _info_server(srv):
    h = srv.host
    up = max(0, (srv.now_ms - srv.start_ms) // 1000)
    port = srv.config.get("port")
    hz = srv.config.get("hz")
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
        "hz:" + hz,
        "configured_hz:" + hz,
        "lru_clock:%d" % ((srv.now_ms // 1000) & ((1 << 24) - 1)),
        "executable:" + h.executable,
        "config_file:" + (srv.config.config_file or ""),
        "io_threads_active:0",
        "frtrio_mode:" + srv.config.get("frtrio-mode"),
    ]


def _info_clients(srv):
    blocked = sum(1 for c in srv.clients.values() if c.blocked is not None)
    cl = srv.cluster
    links = cl.link_count() if cl is not None and hasattr(cl, "link_count") else 0
    return [
        "connected_clients:%d" % len(srv.clients),
        "cluster_connections:%d" % links,
        "maxclients:" + srv.config.get("maxclients"),
        "client_recent_max_input_buffer:0",
        "client_recent_max_output_buffer:0",
        "blocked_clients:%d" % blocked,
        "tracking_clients:0",
        "clients_in_timeout_table:%d" % sum(
            1 for c in srv.clients.values()
            if c.blocked is not None and c.blocked.deadline_ms is not None
        ),
    ]


def _info_memory(srv):
    h = srv.host
    rss = h.rss()
    used = h.used_memory()
    total = h.total_memory()
    maxmem = srv.config.get_int("maxmemory")
    ratio = (rss / used) if used else 0.0
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
        "allocator_allocated:%d" % used,
        "allocator_active:%d" % used,
        "allocator_resident:%d" % rss,
        "total_system_memory:%d" % total,
        "total_system_memory_human:" + _human(total),
        "used_memory_lua:0",
        "used_memory_vm_eval:0",
        "used_memory_lua_human:0B",
        "used_memory_scripts_eval:0",
        "number_of_cached_scripts:0",
        "number_of_functions:0",
        "number_of_libraries:0",
        "used_memory_vm_functions:0",
        "used_memory_vm_total:0",
        "used_memory_vm_total_human:0B",
        "used_memory_functions:0",
        "used_memory_scripts:0",
        "used_memory_scripts_human:0B",
        "maxmemory:%d" % maxmem,
        "maxmemory_human:" + _human(maxmem),
        "maxmemory_policy:" + srv.config.get("maxmemory-policy"),
        "allocator_frag_ratio:1.00",
        "allocator_frag_bytes:0",
        "allocator_rss_ratio:1.00",
        "allocator_rss_bytes:0",
        "rss_overhead_ratio:1.00",
        "rss_overhead_bytes:0",
        "mem_fragmentation_ratio:%.2f" % ratio,
        "mem_fragmentation_bytes:%d" % (rss - used),
        "mem_not_counted_for_evict:0",
        "mem_replication_backlog:0",
        "mem_total_replication_buffers:0",
        "mem_clients_slaves:0",
        "mem_clients_normal:0",
        "mem_cluster_links:0",
        "mem_aof_buffer:0",
        "mem_allocator:libc",
        "active_defrag_running:0",
        "lazyfree_pending_objects:0",
        "lazyfreed_objects:0",
    ]


def _info_persistence(srv):
    aof = srv.aof
    return [
        "loading:%d" % (1 if srv.loading else 0),
        "async_loading:0",
        "current_cow_peak:0",
        "current_cow_size:0",
        "current_cow_size_age:0",
        "current_fork_perc:0.00",
        "current_save_keys_processed:0",
        "current_save_keys_total:0",
        "rdb_changes_since_last_save:%d" % srv.dirty,
        "rdb_bgsave_in_progress:0",
        "rdb_last_save_time:%d" % (srv.lastsave_ms // 1000),
        "rdb_last_bgsave_status:" + ("ok" if srv.rdb_last_save_ok else "err"),
        "rdb_last_bgsave_time_sec:-1",
        "rdb_current_bgsave_time_sec:-1",
        "rdb_saves:%d" % srv.rdb_saves,
        "rdb_last_cow_size:0",
        "rdb_last_load_keys_expired:0",
        "rdb_last_load_keys_loaded:0",
        "aof_enabled:%d" % (1 if aof is not None else 0),
        "aof_rewrite_in_progress:0",
        "aof_rewrite_scheduled:0",
        "aof_last_rewrite_time_sec:%d" % getattr(aof, "last_rewrite_time_sec", -1),
        "aof_current_rewrite_time_sec:-1",
        "aof_last_bgrewrite_status:"
        + ("ok" if aof is None or getattr(aof, "rewrite_ok", True) else "err"),
        "aof_rewrites:%d" % (srv.aof_rewrites_total
                             + (getattr(aof, "rewrites", 0) if aof is not None else 0)),
        "aof_rewrites_consecutive_failures:0",
        "aof_last_write_status:"
        + ("ok" if aof is None or getattr(aof, "write_ok", True) else "err"),
        "aof_last_cow_size:0",
        "module_fork_in_progress:0",
        "module_fork_last_cow_size:0",
    ] + (aof.info_fields() if aof is not None and hasattr(aof, "info_fields") else [])


def _info_stats(srv):
    s = srv.stats
    ps = srv.pubsub

    def g(name):
        return s.get(name, 0)

    return [
        "total_connections_received:%d" % g("total_connections_received"),
        "total_commands_processed:%d" % g("total_commands_processed"),
        "instantaneous_ops_per_sec:0",
        "total_net_input_bytes:%d" % g("total_net_input_bytes"),
        "total_net_output_bytes:%d" % g("total_net_output_bytes"),
        "total_net_repl_input_bytes:0",
        "total_net_repl_output_bytes:0",
        "instantaneous_input_kbps:0.00",
        "instantaneous_output_kbps:0.00",
        "instantaneous_input_repl_kbps:0.00",
        "instantaneous_output_repl_kbps:0.00",
        "rejected_connections:%d" % g("rejected_connections"),
        "sync_full:0",
        "sync_partial_ok:0",
        "sync_partial_err:0",
        "expired_keys:%d" % g("expired_keys"),
        "expired_stale_perc:0.00",
        "expired_time_cap_reached_count:0",
        "expire_cycle_cpu_milliseconds:0",
        "evicted_keys:%d" % g("evicted_keys"),
        "evicted_clients:0",
        "total_eviction_exceeded_time:0",
        "current_eviction_exceeded_time:0",
        "keyspace_hits:%d" % g("keyspace_hits"),
        "keyspace_misses:%d" % g("keyspace_misses"),
        "pubsub_channels:%d" % (ps.channel_count() if ps is not None else 0),
        "pubsub_patterns:%d" % (ps.pattern_count() if ps is not None else 0),
        "pubsubshard_channels:%d" % (ps.shard_channel_count() if ps is not None else 0),
        "latest_fork_usec:0",
        "total_forks:0",
        "migrate_cached_sockets:%d" % g("migrate_cached_sockets"),  # runtime/migrate.py
        "slave_expires_tracked_keys:0",
        "active_defrag_hits:0",
        "active_defrag_misses:0",
        "active_defrag_key_hits:0",
        "active_defrag_key_misses:0",
        "total_active_defrag_time:0",
        "current_active_defrag_time:0",
        "tracking_total_keys:0",
        "tracking_total_items:0",
        "tracking_total_prefixes:0",
        "unexpected_error_replies:%d" % g("unexpected_error_replies"),
        "total_error_replies:%d" % g("total_error_replies"),
        "dump_payload_sanitizations:0",
        "total_reads_processed:%d" % g("total_reads_processed"),
        "total_writes_processed:%d" % g("total_writes_processed"),
        "io_threaded_reads_processed:0",
        "io_threaded_writes_processed:0",
        "reply_buffer_shrinks:0",
        "reply_buffer_expands:0",
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
        "used_cpu_sys_main_thread:%.6f" % s,
        "used_cpu_user_main_thread:%.6f" % u,
    ]


def _info_commandstats(srv):
    out = []
    for name in sorted(srv.cmdstats):
        calls, usec, rej, failed = srv.cmdstats[name]
        if not (calls or rej or failed):
            continue
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
    "module_list": lambda srv: [],
    "commandstats": _info_commandstats,
    "errorstats": _info_errorstats,
    "latencystats": lambda srv: [],  # frtrio measures no command latencies
    "cluster": _info_cluster,
    "keyspace": _info_keyspace,
}
def _info_frtrio(srv):
    return [
        # bugs caught instead of crashing (a command, a client connection)
        "internal_errors:%d" % srv.stats["frtrio_internal_errors"],
    ]


_INFO_SECTIONS["frtrio"] = _info_frtrio
_TITLES = {k: k.capitalize() for k in _INFO_SECTIONS}
_TITLES["cpu"] = "CPU"
_TITLES["module_list"] = "Modules"


def info_sections(args: list[bytes]) -> list[str]:
    """Redis's genInfoSectionDict: the sections INFO ``args`` asks for, in
    output order."""
    if not args:
        return list(DEFAULT_SECTIONS)
    want = set()
    all_ = False
    for a in args:
        n = _cstr(a).decode("latin-1").lower()
        if n == "default":
            want.update(DEFAULT_SECTIONS)
        elif n in ("all", "everything"):
            all_ = True
        else:
            want.add(n)
    if all_:
        return list(ALL_SECTIONS)
    if "modules" in want:
        want.add("module_list")
    return [s for s in ALL_SECTIONS + EXTRA_SECTIONS if s in want]


@command("info")
def cmd_info(c, argv):
    return Verbatim(info_text(c.server, info_sections(argv[1:])).encode())


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
    v = c.server.config.get("enable-protected-configs")
    if v == "yes":
        return True
    if v == "local":
        return _is_local(c)
    return False


def _is_local(c) -> bool:
    a = c.addr
    return (a.startswith("127.") or a.startswith("::1") or a.startswith("[::1]")
            or a.startswith("/") or a == "")


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
        elif raw.lower() in seen:  # name and alias are two entries in Redis
            problem = _set_failed(raw, "duplicate parameter")
        if problem is not None:
            raise err(problem)
        seen.add(raw.lower())
        todo.append((raw.lower(), p, argv[i + 1].decode("latin-1")))
    done = []
    for entry, p, raw in todo:
        if p.flags & MULTI:
            args = raw.split(" ") if raw else []
        else:
            args = [raw]
        try:
            v = cfg.validate(entry, args)
            old = cfg.get(entry)
            done.append((entry, old))
            cfg.set(entry, v)
        except ConfigError as e:
            for name, old in reversed(done):
                try:
                    cfg.set(name, old)
                except ConfigError:  # pragma: no cover - restoring a valid value
                    pass
            raise err(_set_failed(entry, e.message)) from None
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
    srv.effects.append(RewriteConfig(c.defer_reply()))
    return NO_REPLY


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
    return [cmd for name, cmd in sorted(srv.commands.items())]


@command("command")
def cmd_command(c, argv):
    return [cmd.info_reply() for cmd in _implemented(c.server)]


@command("command|help")
def command_help(c, argv):
    return [Status(x) for x in COMMAND_HELP]


@command("command|count")
def command_count(c, argv):
    return len(c.server.commands)


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
            if pred is None or pred(sub):
                names.append(sub.fullname.encode())
    return names


@command("command|docs")
def command_docs(c, argv):
    # command documentation is free text frtrio does not carry
    return Map([])


# --- key extraction (COMMAND GETKEYS) --------------------------------------------
#
# Redis 7.0 finds a command's keys from its key specs (recorded in facts.json)
# when they are complete and their flags fixed, and otherwise from a per
# command "getkeys" function; the ones below behave as Redis's do.

_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
               "not_key", "incomplete", "variable_flags")


def _unwrap(v):
    if isinstance(v, dict):
        if "set" in v:
            return [_unwrap(x) for x in v["set"]]
        if "map" in v:
            return {k: _unwrap(x) for k, x in v["map"]}
        if "s" in v:
            return v["s"]
    if isinstance(v, list):
        return [_unwrap(x) for x in v]
    return v


_SPECS_CACHE: dict = {}


def _key_specs(cmd) -> list[dict]:
    specs = _SPECS_CACHE.get(cmd.fullname)
    if specs is None:
        specs = _SPECS_CACHE[cmd.fullname] = _unwrap(cmd.fact[8])
    return specs


def _keys_from_specs(cmd, argv):
    """getKeysUsingKeySpecs: [(pos, flags)], or None for an invalid spec."""
    argc = len(argv)
    out = []
    for spec in _key_specs(cmd):
        flags = spec["flags"]
        if "not_key" in flags:
            continue
        bs = spec["begin_search"]
        fk = spec["find_keys"]
        if bs["type"] == "index":
            first = bs["spec"]["index"]
        elif bs["type"] == "keyword":
            kw = bs["spec"]["keyword"].encode().lower()
            sf = bs["spec"]["startfrom"]
            start = sf if sf > 0 else argc + sf
            end = argc - 1 if sf > 0 else 1
            first = 0
            i = start
            while i != end:
                if i >= argc or i < 1:
                    break
                if _cstr(argv[i]).lower() == kw:
                    first = i + 1
                    break
                i = i + 1 if start <= end else i - 1
            if not first:
                continue
        else:
            return None
        if fk["type"] == "range":
            step = fk["spec"]["keystep"]
            lastkey = fk["spec"]["lastkey"]
            limit = fk["spec"]["limit"]
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif fk["type"] == "keynum":
            step = fk["spec"]["keystep"]
            idx = fk["spec"]["keynumidx"]
            if idx >= argc or first + idx >= argc:
                return None
            numkeys = string2ll(argv[first + idx])
            if numkeys is None or numkeys < 0:
                return None
            first += fk["spec"]["firstkey"]
            last = first + numkeys - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        i = first
        while i <= last:
            out.append((i, tuple(flags)))
            i += step
        if "incomplete" in flags:
            return None
    return out


def _generic_keys(store_ofs, count_ofs, first_ofs, argv):
    num = _atoi(argv[count_ofs])
    if num < 1 or num > len(argv) - first_ofs:
        return []
    out = [(first_ofs + i, ()) for i in range(num)]
    if store_ofs:
        out.append((store_ofs, ()))
    return out


def _sort_keys(argv):
    out = [(1, ("RO", "access"))]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    n = len(argv)
    while i < n:
        a = _cstr(argv[i]).lower()
        if a in skip:
            i += skip[a]
        elif a == b"store" and i + 1 < n:
            store = i + 1
        i += 1
    if store is not None:
        out.append((store, ("OW", "update")))
    return out


def _migrate_keys(argv):
    first, num = 3, 1
    n = len(argv)
    if n > 6:
        skip = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}
        i = 6
        while i < n:
            a = _cstr(argv[i]).lower()
            if a == b"keys":
                if argv[3]:
                    return []
                first = i + 1
                num = n - first
                break
            i += skip.get(a, 0) + 1
    return [(first + i, ("RW", "access", "delete")) for i in range(num)]


def _set_keys(argv):
    for a in argv[3:]:
        if _cstr(a).lower() == b"get":
            return [(1, ("RW", "access", "update"))]
    return [(1, ("OW", "update"))]


def _bitfield_keys(argv):
    readonly = True
    i = 2
    n = len(argv)
    while i < n:
        rem = n - i - 1
        a = _cstr(argv[i]).lower()
        if a == b"get" and rem >= 2:
            i += 2
        elif a in (b"set", b"incrby") and rem >= 3:
            readonly = False
            break
        elif a == b"overflow" and rem >= 1:
            i += 1
        else:
            readonly = False
            break
        i += 1
    return [(1, ("RO", "access") if readonly else ("RW", "access", "update"))]


_GETKEYS_PROCS = {
    "set": _set_keys,
    "bitfield": _bitfield_keys,
    "sort": _sort_keys,
    "sort_ro": lambda argv: [(1, ("RO", "access"))],
    "migrate": _migrate_keys,
    "xread": lambda argv: [],
    "xreadgroup": lambda argv: [],
    "georadius": lambda argv: [],
    "georadiusbymember": lambda argv: [],
}
for _name, _ofs in (
    ("zunion", (0, 1, 2)), ("zinter", (0, 1, 2)), ("zdiff", (0, 1, 2)),
    ("zunionstore", (1, 2, 3)), ("zinterstore", (1, 2, 3)), ("zdiffstore", (1, 2, 3)),
    ("eval", (0, 2, 3)), ("evalsha", (0, 2, 3)), ("eval_ro", (0, 2, 3)),
    ("evalsha_ro", (0, 2, 3)), ("fcall", (0, 2, 3)), ("fcall_ro", (0, 2, 3)),
    ("lmpop", (0, 1, 2)), ("blmpop", (0, 2, 3)), ("zmpop", (0, 1, 2)),
    ("bzmpop", (0, 2, 3)), ("sintercard", (0, 1, 2)), ("zintercard", (0, 1, 2)),
):
    _GETKEYS_PROCS[_name] = (lambda o: lambda argv: _generic_keys(o[0], o[1], o[2], argv))(_ofs)


def command_has_keys(cmd) -> bool:
    """Redis's doesCommandHaveKeys."""
    if cmd.fullname in _GETKEYS_PROCS:
        return True
    return any("not_key" not in s["flags"] for s in _key_specs(cmd))


def command_keys(cmd, argv):
    """Redis's getKeysFromCommandWithSpecs: [(position, flags)]."""
    specs = _key_specs(cmd)
    has_keyspec = any("not_key" not in s["flags"] for s in specs)
    has_varflags = any("variable_flags" in s["flags"] for s in specs)
    if has_keyspec and not has_varflags:
        r = _keys_from_specs(cmd, argv)
        if r is not None:
            return r
    proc = _GETKEYS_PROCS.get(cmd.fullname)
    if proc is not None:
        return proc(argv)
    return []


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
    c.flags |= F.CLOSE_AFTER_REPLY
    return NO_REPLY


def _debug_allowed(c) -> bool:
    v = c.server.config.get("enable-debug-command")
    if v == "yes":
        return True
    if v == "local":
        return c.addr.startswith("127.") or c.addr.startswith("[::1]") or c.addr.startswith("::1")
    return False


DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
    "HELP",
    "    Prints this help.",
]

_STRTOD_PREFIX = re.compile(
    rb"[ \t\n\r\v\f]*([+-]?(?:inf(?:inity)?|nan|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)"
    rb"(?:p[+-]?[0-9]+)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))",
    re.IGNORECASE,
)


def _strtod_prefix(b: bytes) -> float:
    """C ``strtod(s, NULL)``: the longest number at the start, 0 if none."""
    m = _STRTOD_PREFIX.match(_cstr(b))
    if m is None:
        return 0.0
    t = m.group(1).decode("ascii")
    try:
        if "x" in t.lower() and "inf" not in t.lower():
            return float.fromhex(t)
        return float(t)
    except (ValueError, OverflowError):
        return 0.0


@command("debug")
def cmd_debug(c, argv):
    if not _debug_allowed(c):
        raise err(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to "
            "\"local\", you can run it from a local connection, otherwise you need to set "
            "this option in the configuration file, and then restart the server."
        )
    sub = _cstr(argv[1]).lower()
    if sub == b"help" and len(argv) == 2:
        return [Status(x) for x in DEBUG_HELP]
    if sub == b"sleep" and len(argv) == 3:
        secs = _strtod_prefix(argv[2])
        us = secs * 1000000
        if us != us or us in (float("inf"), float("-inf")):
            us = 0
        ms = int(us) // 1000 if us > 0 else 0
        c.server.effects.append(Sleep(ms))
        return OK
    if sub == b"reload":
        # DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]
        save = flush = True
        for a in argv[2:]:
            o = _cstr(a).lower()
            if o == b"nosave":
                save = False
            elif o == b"noflush":
                flush = False
            elif o != b"merge":
                raise err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
        c.server.effects.append(DebugReload(c.defer_reply(), save, flush))
        return NO_REPLY
    if sub == b"loadaof" and len(argv) == 2:
        if c.server.aof is None:
            return OK  # appendonly off: nothing to reload (Redis exits when no AOF exists)
        c.server.effects.append(DebugLoadAof(c.defer_reply()))
        return NO_REPLY
    if sub == b"set-active-expire" and len(argv) == 3:
        c.server.active_expire_enabled = _atoi(argv[2]) != 0
        return OK
    if sub == b"drop-cluster-packet-filter" and len(argv) == 3:
        # Redis 7.0: accepted in any mode; received bus packets of exactly
        # this type are dropped (after being counted), -1 = none
        t = parse_int(argv[2])
        core = c.server.cluster
        if core is not None and core.bus_core is not None:
            core.bus_core.drop_filter = t
        return OK
    if (sub == b"clusterlink" and len(argv) == 5
            and _cstr(argv[2]).lower() == b"kill"):
        core = c.server.cluster
        if core is None:
            raise err("ERR Debug option only available for cluster mode enabled setup!")
        nid = argv[4].decode("latin-1")
        n = core.state.get(nid) if len(argv[4]) == 40 else None
        if n is None:
            raise err("ERR Unknown node %s" % nid)
        d = _cstr(argv[3]).lower()
        if d not in (b"to", b"from", b"all"):
            # Redis 7.0 sends this error and then +OK as well (two replies
            # to one command); frtrio sends the error only
            raise err("ERR Unknown direction %s" % argv[3].decode("latin-1"))
        # a link that does not exist (or myself) is a no-op here; Redis 7.0
        # crashes in freeClusterLink(NULL)
        if core.bus_core is not None and n is not core.state.myself:
            core.to_bus(*core.bus_core.kill_links_effects(n, d.decode()))
        return OK
    raise err(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try DEBUG HELP."
        % _cstr(argv[1]).decode("latin-1")[:128]
    )


@command("wait")
def cmd_wait(c, argv):
    srv = c.server
    if getattr(srv, "masterhost", None):
        raise err(
            "ERR WAIT cannot be used with replica instances. Please also note that since "
            "Redis 4.0 if a replica is configured to be writable (which is not the default) "
            "writes to replicas are just local and are not propagated."
        )
    n = parse_int(argv[1])
    t = string2ll(argv[2])
    if t is None:
        raise err("ERR timeout is not an integer or out of range")
    if t < 0:
        raise err("ERR timeout is negative")
    acked = srv.replicas_acked(c) if hasattr(srv, "replicas_acked") else 0
    if c.multi is not None or c.flags & F.IN_EXEC or acked >= n:
        return acked
    deadline = srv.now_ms + t if t > 0 else None
    if deadline is not None and deadline > LLONG_MAX:
        deadline = None  # wraps negative in Redis 7.0.15, which then never times out
    return BlockOn([], c.db, deadline, lambda cl: None, on_timeout=acked, argv=argv)
