"""INFO (pure): the sections and fields redis-server 7.0 prints, filled
from the server's state."""

from __future__ import annotations

from frtrio.core import shutdown as _shutdown
from frtrio.core.client import F as _F
from frtrio.core.cnum import cstr as _cstr
from frtrio.core.instmetric import COMMANDS, NET_INPUT, NET_INPUT_REPL, NET_OUTPUT, NET_OUTPUT_REPL
from frtrio.commands.table import command
from frtrio.config import VERSION
from frtrio.protocol.reply import Verbatim
from frtrio.scripting import info as _scripting_info


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
    ] + ([] if (left := _shutdown.remaining_ms(srv)) is None
         else ["shutdown_in_milliseconds:%d" % left]) + [
        "frtrio_mode:" + srv.config.get("frtrio-mode"),
    ]


def _info_clients(srv):
    blocked = sum(1 for c in srv.clients.values() if c.blocked is not None)
    blocked += srv.postponed_clients
    cl = srv.cluster
    links = cl.link_count() if cl is not None and hasattr(cl, "link_count") else 0
    peak_in, peak_out = srv.client_peaks.recent_max()
    return [
        # (Redis: its client list minus its replicas)
        "connected_clients:%d" % (len(srv.clients) - sum(
            1 for c in srv.clients.values() if c.flags & _F.SLAVE)),
        "cluster_connections:%d" % links,
        "maxclients:" + srv.config.get("maxclients"),
        "client_recent_max_input_buffer:%d" % peak_in,
        "client_recent_max_output_buffer:%d" % peak_out,
        "blocked_clients:%d" % blocked,
        "tracking_clients:%d" % srv.tracking.tracking_clients,
        "clients_in_timeout_table:%d" % sum(
            1 for c in srv.clients.values()
            if c.blocked is not None and c.blocked.deadline_ms is not None
        ),
    ]


def _repl_buffers(srv) -> int:
    """Redis's repl_buffer_mem: the replication stream's shared buffer,
    from the oldest byte the backlog or a replica still needs to the end:
    here the larger of the backlog's history and the stream a replica has
    not taken yet (a replica that stopped reading makes it grow)."""
    repl = srv.repl
    if repl is None:
        return 0
    bl = repl.state.backlog
    return max(bl.histlen if bl is not None else 0, srv.replication_buffer())


def _info_memory(srv):
    h = srv.host
    rss = h.rss()
    used = srv.used_memory()
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
        *_scripting_info.memory_lines(srv),
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
        "mem_not_counted_for_evict:%d" % srv.replication_buffer(),
        "mem_replication_backlog:0",
        "mem_total_replication_buffers:%d" % _repl_buffers(srv),
        "mem_clients_slaves:%d" % srv.replica_clients_memory(),
        "mem_clients_normal:%d" % srv.clients_mem,
        *(srv.cluster.migrations.memory_lines() if srv.cluster is not None else ()),
        "mem_cluster_links:0",
        "mem_aof_buffer:0",
        "mem_allocator:libc",
        "active_defrag_running:0",
        "lazyfree_pending_objects:%d" % srv.lazyfree.pending,
        "lazyfreed_objects:%d" % srv.lazyfree.freed,
    ]


def _info_persistence(srv):
    aof = srv.aof
    return [
        "loading:%d" % (1 if srv.loading else 0),
        "async_loading:%d" % (1 if srv.async_loading else 0),
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
        "rdb_last_load_keys_expired:%d" % srv.rdb_last_load_keys_expired,
        "rdb_last_load_keys_loaded:%d" % srv.rdb_last_load_keys_loaded,
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
    ] + (aof.info_fields() if aof is not None and hasattr(aof, "info_fields") else []) + (
        _info_loading(srv) if srv.loading else [])


def _info_loading(srv):
    """The progress fields Redis adds while it loads a dataset."""
    total = srv.loading_total_bytes
    done = srv.loading_loaded_bytes
    perc = done / total * 100 if total else 0.0
    elapsed = srv.now_ms // 1000 - srv.loading_start_s
    eta = (elapsed * (total - done if total else 1)) // (done + 1) if elapsed > 0 else 1
    return [
        "loading_start_time:%d" % srv.loading_start_s,
        "loading_total_bytes:%d" % total,
        "loading_rdb_used_mem:0",
        "loading_loaded_bytes:%d" % done,
        "loading_loaded_perc:%.2f" % perc,
        "loading_eta_seconds:%d" % eta,
    ]


def _info_stats(srv):
    s = srv.stats
    ps = srv.pubsub

    def g(name):
        return s.get(name, 0)

    inst = srv.inst
    return [
        "total_connections_received:%d" % g("total_connections_received"),
        "total_commands_processed:%d" % g("total_commands_processed"),
        "instantaneous_ops_per_sec:%d" % inst.get(COMMANDS),
        "total_net_input_bytes:%d" % g("total_net_input_bytes"),
        "total_net_output_bytes:%d" % g("total_net_output_bytes"),
        "total_net_repl_input_bytes:0",
        "total_net_repl_output_bytes:0",
        "instantaneous_input_kbps:%.2f" % (inst.get(NET_INPUT) / 1024),
        "instantaneous_output_kbps:%.2f" % (inst.get(NET_OUTPUT) / 1024),
        "instantaneous_input_repl_kbps:%.2f" % (inst.get(NET_INPUT_REPL) / 1024),
        "instantaneous_output_repl_kbps:%.2f" % (inst.get(NET_OUTPUT_REPL) / 1024),
        "rejected_connections:%d" % g("rejected_connections"),
        "sync_full:%d" % srv.repl.state.sync_full,
        "sync_partial_ok:%d" % srv.repl.state.sync_partial_ok,
        "sync_partial_err:%d" % srv.repl.state.sync_partial_err,
        "expired_keys:%d" % g("expired_keys"),
        "expired_stale_perc:0.00",
        "expired_time_cap_reached_count:0",
        "expire_cycle_cpu_milliseconds:0",
        "evicted_keys:%d" % g("evicted_keys"),
        "evicted_clients:%d" % srv.stats.get("evicted_clients", 0),
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
        "tracking_total_keys:%d" % len(srv.tracking.table),
        "tracking_total_items:%d" % sum(len(v) for v in srv.tracking.table.values()),
        "tracking_total_prefixes:%d" % len(srv.tracking.prefixes),
        "unexpected_error_replies:%d" % g("unexpected_error_replies"),
        "total_error_replies:%d" % g("total_error_replies"),
        "dump_payload_sanitizations:0",
        "total_reads_processed:%d" % g("total_reads_processed"),
        "total_writes_processed:%d" % g("total_writes_processed"),
        "io_threaded_reads_processed:0",
        "io_threaded_writes_processed:0",
        "reply_buffer_shrinks:%d" % g("reply_buffer_shrinks"),
        "reply_buffer_expands:%d" % g("reply_buffer_expands"),
    ]


def _info_replication(srv):
    return srv.repl.info(srv.config, srv.now_ms)


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


def _percentile_name(p: float) -> str:
    """Redis's "%f" then trimDoubleString: 50.000000 -> 50, 99.900000 -> 99.9."""
    s = "%f" % p
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _info_latencystats(srv):
    out = []
    hists = srv.histograms
    if not hists:
        return out
    pcts = srv.latency_percentiles
    for name in sorted(hists):  # (the order of commandstats)
        h = hists[name]
        out.append("latency_percentiles_usec_%s:%s" % (name, ",".join(
            "p%s=%.3f" % (_percentile_name(p), h.value_at_percentile(p) / 1000.0)
            for p in pcts)))
    return out


def _info_cluster(srv):
    return ["cluster_enabled:%d" % (1 if srv.cluster is not None else 0)]


def _info_keyspace(srv):
    out = []
    # (keys a background trim of atomic slot migration detached are gone
    # for Redis at once: not counted while the lazy free still holds them)
    gone = srv.cluster.migrations.detached_counts() if srv.cluster is not None else (0, 0)
    for db in srv.dbs:
        keys, expires = len(db.data), len(db.expires)
        if db.id == 0 and gone[0]:
            keys -= gone[0]
            expires -= gone[1]
        if keys:
            out.append("db%d:keys=%d,expires=%d,avg_ttl=0" % (db.id, keys, expires))
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
    "latencystats": _info_latencystats,
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
