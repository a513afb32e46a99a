"""SLOWLOG and LATENCY (pure): the command side of what
``frtrio/core/introspect.py`` records (replies and texts as Redis 7.0.15's
slowlog.c and latency.c)."""

from __future__ import annotations

import math

from frtrio.commands.table import command, container
from frtrio.commands.util import err, parse_range
from frtrio.core.cnum import cstr as _cstr
from frtrio.protocol.reply import OK, Map, Status, Verbatim
from frtrio.store.db import unpacked


def _help(name: str, lines: list[str]) -> list:
    """Redis's addReplyHelp: the header, the lines, then HELP's own."""
    return [Status(x) for x in (
        ["%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % name]
        + lines + ["HELP", "    Prints this help."])]


def _sub_syntax_error(argv) -> Exception:
    return err("ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
               % (_cstr(argv[1]).decode("latin-1")[:128],
                  _cstr(argv[0]).decode("latin-1").upper()))


# --- SLOWLOG --------------------------------------------------------------------

container("slowlog")

_SLOWLOG_HELP = [
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
]


@command("slowlog|help")
def slowlog_help(c, argv):
    return _help("SLOWLOG", _SLOWLOG_HELP)


@command("slowlog|reset")
def slowlog_reset(c, argv):
    c.server.slowlog.reset()
    return OK


@command("slowlog|len")
def slowlog_len(c, argv):
    return len(c.server.slowlog.entries)


@command("slowlog|get")
def slowlog_get(c, argv):
    if len(argv) > 3:
        raise _sub_syntax_error(argv)
    log = c.server.slowlog
    count = 10
    if len(argv) == 3:
        count = parse_range(argv[2], -1, (1 << 63) - 1,
                            "ERR count should be greater than or equal to -1")
        if count == -1:
            count = len(log.entries)
    return [list(e) for e in log.newest(count)]


# --- LATENCY ----------------------------------------------------------------------

container("latency")

_LATENCY_HELP = [
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for "
    "the specified command names.",
    "    If no commands are specified then all histograms are replied.",
]


@command("latency|help")
def latency_help(c, argv):
    return _help("LATENCY", _LATENCY_HELP)


def _event_name(b: bytes) -> str:
    return _cstr(b).decode("latin-1")


@command("latency|history")
def latency_history(c, argv):
    if len(argv) != 3:
        raise _sub_syntax_error(argv)
    ts = c.server.latency.events.get(_event_name(argv[2]))
    if ts is None:
        return []
    return [[t, ms] for t, ms in ts.ordered()]


@command("latency|latest")
def latency_latest(c, argv):
    if len(argv) != 2:
        raise _sub_syntax_error(argv)
    out = []
    for name, ts in c.server.latency.events.items():
        t, ms = ts.latest()
        out.append([name.encode("latin-1"), t, ms, ts.max])
    return out


@command("latency|reset")
def latency_reset(c, argv):
    lat = c.server.latency
    if len(argv) == 2:
        return lat.reset(None)
    return sum(lat.reset(_event_name(a)) for a in argv[2:])


@command("latency|graph")
def latency_graph(c, argv):
    if len(argv) != 3:
        raise _sub_syntax_error(argv)
    name = _event_name(argv[2])
    ts = c.server.latency.events.get(name)
    if ts is None:
        raise err("ERR No samples available for event '%s'" % name)
    return Verbatim(latency_graph_text(name, ts, c.server.unix_us() // 1000000).encode("latin-1"))


@command("latency|doctor")
def latency_doctor(c, argv):
    if len(argv) != 2:
        raise _sub_syntax_error(argv)
    return Verbatim(latency_report(c.server).encode("latin-1"))


def _histogram_reply(h) -> Map:
    return Map([(b"calls", h.total),
                (b"histogram_usec", Map(h.cdf()))])


def _all_commands(table):
    """Every command and subcommand, parents before their subcommands."""
    for cmd in table.values():
        yield cmd
        yield from cmd.subcommands.values()


@command("latency|histogram")
def latency_histogram(c, argv):
    srv = c.server
    hists = srv.histograms
    out = []
    if len(argv) == 2:
        for cmd in _all_commands(srv.commands):
            h = hists.get(cmd.fullname)
            if h is not None:
                out.append((cmd.fullname.encode(), _histogram_reply(h)))
        return Map(out)
    for a in argv[2:]:
        cmd = _lookup_by_fullname(srv, a)
        if cmd is None:
            continue
        h = hists.get(cmd.fullname)
        if h is not None:
            out.append((cmd.fullname.encode(), _histogram_reply(h)))
        for sub in cmd.subcommands.values():
            h = hists.get(sub.fullname)
            if h is not None:
                out.append((sub.fullname.encode(), _histogram_reply(h)))
    return Map(out)


def _lookup_by_fullname(srv, name: bytes):
    """Redis's lookupCommandBySds: ``cmd`` or ``cmd|sub``."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    cmd = srv.commands.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1])


# --- LATENCY GRAPH's sparkline (sparkline.c) ----------------------------------------

_CHARSET = "_-`"
_CHARSET_FILL = "_o#"


def _sparkline(samples: list, columns: int = 80, rows: int = 4) -> str:
    """samples: (value, label); rendered filled, as Redis's sparklineRender."""
    out = []
    if not samples:
        return ""
    vmin = min(v for v, _ in samples)
    vmax = max(v for v, _ in samples)
    has_labels = any(lab for _, lab in samples)
    for off in range(0, len(samples), columns):
        if off:
            out.append("\n")
        part = samples[off:off + columns]
        relmax = float(vmax - vmin) or 1.0
        steps = len(_CHARSET) * rows
        row = 0
        while True:
            loop = False
            chars = [" "] * len(part)
            for j, (v, label) in enumerate(part):
                step = int(int((v - vmin) * steps) / relmax)
                step = max(0, min(step, steps - 1))
                if row < rows:
                    idx = step - (rows - row - 1) * len(_CHARSET)
                    loop = True
                    if 0 <= idx < len(_CHARSET):
                        chars[j] = _CHARSET_FILL[idx]
                    elif idx >= len(_CHARSET):
                        chars[j] = "|"
                else:
                    if has_labels and row - rows < 1:
                        loop = True
                        break
                    if label:
                        k = row - rows - 1
                        if len(label) > k:
                            loop = True
                            chars[j] = label[k]
            if not loop:
                break
            row += 1
            out.append("".join(chars) + "\n")
    return "".join(out)


def latency_graph_text(event: str, ts, now_s: int) -> str:
    samples = []
    for t, ms in ts.ordered():
        el = now_s - t
        if el < 60:
            label = "%ds" % el
        elif el < 3600:
            label = "%dm" % (el // 60)
        elif el < 86400:
            label = "%dh" % (el // 3600)
        else:
            label = "%dd" % (el // 86400)
        samples.append((ms, label))
    lo = min((v for v, _ in samples), default=0)
    hi = max((v for v, _ in samples), default=0)
    head = "%s - high %d ms, low %d ms (all time high %d ms)\n" % (event, hi, lo, ts.max)
    return head + "-" * 80 + "\n" + _sparkline(samples)


# --- LATENCY DOCTOR (latency.c createLatencyReport) -----------------------------------

_ADVICE = {
    "better_vm": "- If you are using a virtual machine, consider upgrading it with a faster one "
    "using a hypervisior that provides less latency during fork() calls. Xen is known to have "
    "poor fork() performance. Even in the context of the same VM provider, certain kinds of "
    "instances can execute fork faster than others.\n",
    "slowlog_inspect": "- Check your Slow Log to understand what are the commands you are running "
    "which are too slow to execute. Please check https://redis.io/commands/slowlog for more "
    "information.\n",
    "scheduler": "- The system is slow to execute Redis code paths not containing system calls. "
    "This usually means the system does not provide Redis CPU time to run for long periods. You "
    "should try to:\n"
    "  1) Lower the system load.\n"
    "  2) Use a computer / VM just for Redis if you are running other software in the same "
    "system.\n"
    "  3) Check if you have a \"noisy neighbour\" problem.\n"
    "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your "
    "system.\n"
    "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you "
    "are using Jemalloc. However this may create fragmentation problems.\n",
    "local_disk": "- It is strongly advised to use local disks for persistence, especially if you "
    "are using AOF. Remote disks provided by platform-as-a-service providers are known to be "
    "slow.\n",
    "ssd": "- SSD disks are able to reduce fsync latency, and total time needed for snapshotting "
    "and AOF log rewriting (resulting in smaller memory usage). With extremely high write load "
    "SSD disks can be a good option. However Redis should perform reasonably with high load "
    "using normal disks. Use this advice as a last resort.\n",
    "data_writeback": "- Mounting ext3/4 filesystems with data=writeback can provide a "
    "performance boost compared to data=ordered, however this mode of operation provides less "
    "guarantees, and sometimes it can happen that after a hard crash the AOF file will have a "
    "half-written command at the end and will require to be repaired before Redis restarts.\n",
    "disk_contention": "- Try to lower the disk contention. This is often caused by other disk "
    "intensive processes running in the same computer (including other Redis instances).\n",
    "no_appendfsync": "- Assuming from the point of view of data safety this is viable in your "
    "environment, you could try to enable the 'no-appendfsync-on-rewrite' option, so that fsync "
    "will not be performed while there is a child rewriting the AOF file or producing an RDB "
    "file (the moment where there is high disk contention).\n",
    "relax_fsync": "- Your fsync policy is set to 'always'. It is very hard to get good "
    "performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n",
    "write_load_info": "- Latency during the AOF atomic rename operation or when the final "
    "difference is flushed to the AOF file at the end of the rewrite, sometimes is caused by very "
    "high write load, causing the AOF buffer to get very large. If possible try to send less "
    "commands to accomplish the same work, or use Lua scripts to group multiple operations into "
    "a single EVALSHA call.\n",
    "hz": "- In order to make the Redis keys expiring process more incremental, try to set the "
    "'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n",
    "large_objects": "- Deleting, expiring or evicting (because of maxmemory policy) large objects "
    "is a blocking operation. If you have very large objects that are often deleted, expired, or "
    "evicted, try to fragment those objects into multiple smaller objects.\n",
    "mass_eviction": "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation "
    "of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster "
    "large keys migrations (RESTORE command), may create sudden memory pressure forcing the "
    "server to block trying to evict keys. \n",
}

_EVENT_ADVICE = {
    "fast-command": ("scheduler",),
    "aof-write-pending-fsync": ("local_disk", "disk_contention", "ssd", "data_writeback"),
    "aof-write-active-child": ("no_appendfsync", "data_writeback", "ssd"),
    "aof-write-alone": ("local_disk", "data_writeback", "ssd"),
    "aof-fsync-always": ("relax_fsync",),
    "aof-fstat": ("disk_contention", "local_disk"),
    "rdb-unlink-temp-file": ("disk_contention", "local_disk"),
    "aof-rewrite-diff-write": ("write_load_info", "data_writeback", "ssd", "local_disk"),
    "aof-rename": ("write_load_info", "data_writeback", "ssd", "local_disk"),
    "expire-cycle": ("hz", "large_objects"),
    "eviction-del": ("large_objects",),
    "eviction-cycle": ("mass_eviction",),
}


def latency_report(srv) -> str:
    lat = srv.latency
    threshold = srv.latency_ms
    if not lat.events and threshold == 0:
        return ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
                "instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" "
                "in order to enable it. If we weren't in a deep space mission I'd suggest to take "
                "a look at https://redis.io/topics/latency-monitor.\n")
    now_s = srv.unix_us() // 1000000
    report = []
    advise: set = set()
    advices = 0
    slow = srv.config.get_int("slowlog-log-slower-than")
    eventnum = 0
    for name in list(lat.events):
        eventnum += 1
        if eventnum == 1:
            report.append("Dave, I have observed latency spikes in this Redis instance. You "
                          "don't mind talking about it, do you Dave?\n\n")
        st = lat.analyze(name, now_s)
        n = st["samples"]
        period = (st["period"] / n) if n else math.nan
        report.append("%d. %s: %d latency spikes (average %dms, mean deviation %dms, period "
                      "%.2f sec). Worst all time event %dms." % (
                          eventnum, name, n, st["avg"], st["mad"], period,
                          lat.events[name].max))
        ev = name.lower()
        if ev == "fork":
            # (frtrio never forks: no fork event is recorded)
            pass
        if ev == "command":
            if slow < 0:
                advise.add("slowlog_enabled")
                advices += 1
            elif slow // 1000 > threshold:
                advise.add("slowlog_tuning")
                advices += 1
            advise.update(("slowlog_inspect", "large_objects"))
            advices += 2
        for a in _EVENT_ADVICE.get(ev, ()):
            advise.add(a)
            advices += 1
        report.append("\n")
    if eventnum == 0 and advices == 0:
        report.append("Dave, no latency spike was observed during the lifetime of this Redis "
                      "instance, not in the slightest bit. I honestly think you ought to sit down "
                      "calmly, take a stress pill, and think things over.\n")
    elif eventnum > 0 and advices == 0:
        report.append("\nWhile there are latency events logged, I'm not able to suggest any easy "
                      "fix. Please use the Redis community to get some help, providing this "
                      "report in your help request.\n")
    else:
        report.append("\nI have a few advices for you:\n\n")
        if "better_vm" in advise:
            report.append(_ADVICE["better_vm"])
        if "slowlog_enabled" in advise:
            report.append("- There are latency issues with potentially slow commands you are "
                          "using. Try to enable the Slow Log Redis feature using the command "
                          "'CONFIG SET slowlog-log-slower-than %d'. If the Slow log is disabled "
                          "Redis is not able to log slow commands execution for you.\n"
                          % (threshold * 1000))
        if "slowlog_tuning" in advise:
            report.append("- Your current Slow Log configuration only logs events that are "
                          "slower than your configured latency monitor threshold. Please use "
                          "'CONFIG SET slowlog-log-slower-than %d'.\n" % (threshold * 1000))
        for key in ("slowlog_inspect", "scheduler", "local_disk", "ssd", "data_writeback",
                    "disk_contention", "no_appendfsync"):
            if key in advise:
                report.append(_ADVICE[key])
        if "relax_fsync" in advise and srv.config.get("appendfsync") == "always":
            report.append(_ADVICE["relax_fsync"])
        if "write_load_info" in advise:
            report.append(_ADVICE["write_load_info"])
        if "hz" in advise and srv.config.get_int("hz") < 100:
            report.append(_ADVICE["hz"])
        for key in ("large_objects", "mass_eviction"):
            if key in advise:
                report.append(_ADVICE[key])
    return "".join(report)


# --- MEMORY ---------------------------------------------------------------------------

container("memory")

_MEMORY_HELP = [
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
]


@command("memory|help")
def memory_help(c, argv):
    return _help("MEMORY", _MEMORY_HELP)


@command("memory|usage")
def memory_usage(c, argv):
    from frtrio.commands.objectcmd import encoding_name
    from frtrio.commands.util import parse_int, syntax_error
    from frtrio.core import memsize

    samples = 5
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = parse_int(argv[j + 1])
            if samples < 0:
                raise syntax_error()
            if samples == 0:
                samples = 1 << 62
            j += 2
        else:
            raise syntax_error()
    srv = c.server
    key = argv[2]
    v = unpacked(c.db.data.get(key))  # (as Redis: the main dict, expired or not)
    if v is None:
        return None
    size = memsize.usage(v, encoding_name(v, srv.config, c.db.str_enc.get(key)), samples,
                         srv.config.ql_packed_threshold)
    return size + memsize.key_overhead(key, srv.cluster is not None)


def _f32(x: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


def _div(a: float, b: float) -> float:
    """C's float division, where x/0 is inf or nan."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


def memory_overhead(srv) -> dict:
    """Redis's getMemoryOverheadData, from the numbers INFO memory shows
    (so the two always agree) and the keyspace's dict sizes."""
    from frtrio.commands.info import _info_memory
    from frtrio.core.memsize import DICT_ENTRY, ROBJ, dict_slots

    info = {}
    for line in _info_memory(srv):
        k, _, v = line.partition(":")
        info[k] = v

    def num(name):
        try:
            return int(info.get(name, "0"))
        except ValueError:
            return 0

    used = num("used_memory")
    rss = num("used_memory_rss")
    mh = dict(
        total_allocated=used, startup_allocated=num("used_memory_startup"),
        peak_allocated=max(num("used_memory_peak"), used),
        repl_backlog=num("mem_replication_backlog"), clients_slaves=num("mem_clients_slaves"),
        clients_normal=num("mem_clients_normal"), cluster_links=num("mem_cluster_links"),
        aof_buffer=num("mem_aof_buffer"), lua_caches=num("used_memory_scripts_eval"),
        functions_caches=num("used_memory_functions"),
        allocator_allocated=num("allocator_allocated"),
        allocator_active=num("allocator_active"),
        allocator_resident=num("allocator_resident"), rss=rss,
    )
    total = (mh["startup_allocated"] + mh["repl_backlog"] + mh["clients_slaves"]
             + mh["clients_normal"] + mh["cluster_links"] + mh["aof_buffer"]
             + mh["lua_caches"] + mh["functions_caches"])
    dbs = []
    keys = 0
    for db in srv.dbs:
        n = len(db.data)
        if not n:
            continue
        keys += n
        main = n * DICT_ENTRY + dict_slots(n) * 8 + n * ROBJ
        ne = len(db.expires)
        exp = ne * DICT_ENTRY + dict_slots(ne) * 8
        s2k = n * 16 if srv.cluster is not None else 0
        total += main + exp + s2k
        dbs.append((db.id, main, exp, s2k))
    mh["dbs"] = dbs
    mh["total_keys"] = keys
    mh["overhead_total"] = total
    mh["dataset"] = max(0, used - total)
    net = used - mh["startup_allocated"] if used > mh["startup_allocated"] else 1
    mh["peak_perc"] = _f32(_div(used * 100, mh["peak_allocated"]))
    mh["dataset_perc"] = _f32(mh["dataset"] * 100 / net)
    mh["bytes_per_key"] = net // keys if keys else 0
    a, act, res = mh["allocator_allocated"], mh["allocator_active"], mh["allocator_resident"]
    mh["allocator_frag"] = _f32(_div(act, a))
    mh["allocator_frag_bytes"] = act - a
    mh["allocator_rss"] = _f32(_div(res, act))
    mh["allocator_rss_bytes"] = res - act
    mh["rss_extra"] = _f32(_div(rss, res))
    mh["rss_extra_bytes"] = rss - res
    mh["total_frag"] = _f32(_div(rss, used))
    mh["total_frag_bytes"] = rss - used
    return mh


@command("memory|stats")
def memory_stats(c, argv):
    from frtrio.protocol.reply import Double

    mh = memory_overhead(c.server)
    out = [(b"peak.allocated", mh["peak_allocated"]),
           (b"total.allocated", mh["total_allocated"]),
           (b"startup.allocated", mh["startup_allocated"]),
           (b"replication.backlog", mh["repl_backlog"]),
           (b"clients.slaves", mh["clients_slaves"]),
           (b"clients.normal", mh["clients_normal"]),
           (b"cluster.links", mh["cluster_links"]),
           (b"aof.buffer", mh["aof_buffer"]),
           (b"lua.caches", mh["lua_caches"]),
           (b"functions.caches", mh["functions_caches"])]
    for dbid, main, exp, s2k in mh["dbs"]:
        out.append((b"db.%d" % dbid, Map([(b"overhead.hashtable.main", main),
                                          (b"overhead.hashtable.expires", exp),
                                          (b"overhead.hashtable.slot-to-keys", s2k)])))
    out += [(b"overhead.total", mh["overhead_total"]),
            (b"keys.count", mh["total_keys"]),
            (b"keys.bytes-per-key", mh["bytes_per_key"]),
            (b"dataset.bytes", mh["dataset"]),
            (b"dataset.percentage", Double(mh["dataset_perc"])),
            (b"peak.percentage", Double(mh["peak_perc"])),
            (b"allocator.allocated", mh["allocator_allocated"]),
            (b"allocator.active", mh["allocator_active"]),
            (b"allocator.resident", mh["allocator_resident"]),
            (b"allocator-fragmentation.ratio", Double(mh["allocator_frag"])),
            (b"allocator-fragmentation.bytes", mh["allocator_frag_bytes"]),
            (b"allocator-rss.ratio", Double(mh["allocator_rss"])),
            (b"allocator-rss.bytes", mh["allocator_rss_bytes"]),
            (b"rss-overhead.ratio", Double(mh["rss_extra"])),
            (b"rss-overhead.bytes", mh["rss_extra_bytes"]),
            (b"fragmentation", Double(mh["total_frag"])),
            (b"fragmentation.bytes", mh["total_frag_bytes"])]
    return Map(out)


@command("memory|malloc-stats")
def memory_malloc_stats(c, argv):
    # (what redis-server built without jemalloc answers)
    return b"Stats not supported for the current allocator"


@command("memory|purge")
def memory_purge(c, argv):
    # Redis asks jemalloc to purge dirty pages; a Python process has no
    # such pages to give back on demand, and without jemalloc Redis answers OK
    return OK


_SAM_OK = ("Hi Sam, I can't find any memory issue in your instance. I can only account for "
           "what occurs on this base.\n")
_SAM_EMPTY = ("Hi Sam, this instance is empty or is using very little memory, my issues "
              "detector can't be used in these conditions. Please, leave for your mission on "
              "Earth and fill it with some data. The new Sam and I will be back to our "
              "programming as soon as I finished rebooting.\n")
_SAM_ISSUES = {
    "big_peak": " * Peak memory: In the past this instance used more than 150% the memory that "
    "is currently using. The allocator is normally not able to release memory after a peak, so "
    "you can expect to see a big fragmentation ratio, however this is actually harmless and is "
    "only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently "
    "bigger than expected, the memory will be used as soon as you fill the Redis instance with "
    "more data. If the memory peak was only occasional and you want to try to reclaim memory, "
    "please try the MEMORY PURGE command, otherwise the only other option is to shutdown and "
    "restart the instance.\n\n",
    "high_frag": " * High total RSS: This instance has a memory fragmentation and RSS overhead "
    "greater than 1.4 (this means that the Resident Set Size of the Redis process is much "
    "larger than the sum of the logical allocations Redis performed). This problem is usually "
    "due either to a large peak memory (check if there is a peak memory entry above in the "
    "report) or may result from a workload that causes the allocator to fragment memory a lot. "
    "If the problem is a large peak memory, then there is no issue. Otherwise, make sure you "
    "are using the Jemalloc allocator and not the default libc malloc. Note: The currently used "
    "allocator is \"libc\".\n\n",
    "high_alloc_frag": " * High allocator fragmentation: This instance has an allocator "
    "external fragmentation greater than 1.1. This problem is usually due either to a large "
    "peak memory (check if there is a peak memory entry above in the report) or may result "
    "from a workload that causes the allocator to fragment memory a lot. You can try enabling "
    "'activedefrag' config option.\n\n",
    "high_alloc_rss": " * High allocator RSS overhead: This instance has an RSS memory overhead "
    "is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger "
    "than the sum what the allocator actually holds). This problem is usually due to a large "
    "peak memory (check if there is a peak memory entry above in the report), you can try the "
    "MEMORY PURGE command to reclaim it.\n\n",
    "high_proc_rss": " * High process RSS overhead: This instance has non-allocator RSS memory "
    "overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process "
    "is much larger than the RSS the allocator holds). This problem may be due to Lua scripts "
    "or Modules.\n\n",
    "big_slave_buf": " * Big replica buffers: The replica output buffers in this instance are "
    "greater than 10MB for each replica (on average). This likely means that there is some "
    "replica instance that is struggling receiving data, either because it is too slow or "
    "because of networking issues. As a result, data piles on the master output buffers. "
    "Please try to identify what replica is not receiving data correctly and why. You can use "
    "the INFO output in order to check the replicas delays and the CLIENT LIST command to check "
    "the output buffers of each replica.\n\n",
    "big_client_buf": " * Big client buffers: The clients output buffers in this instance are "
    "greater than 200K per client (on average). This may result from different causes, like "
    "Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data "
    "piles on the Redis instance output buffer, or clients sending commands with large replies "
    "or very large sequences of commands in the same pipeline. Please use the CLIENT LIST "
    "command in order to investigate the issue if it causes problems in your instance, or to "
    "understand better why certain clients are using a big amount of memory.\n\n",
    "many_scripts": " * Many scripts: There seem to be many cached scripts in this instance "
    "(more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being "
    "parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` "
    "is called periodically, the scripts' caches may end up consuming most of your memory.\n\n",
}


def memory_doctor_report(srv) -> str:
    """Redis's getMemoryDoctorReport over memory_overhead's numbers."""
    mh = memory_overhead(srv)
    found = []
    if mh["total_allocated"] < 5 * 1024 * 1024:
        return _SAM_EMPTY
    if _div(mh["peak_allocated"], mh["total_allocated"]) > 1.5:
        found.append("big_peak")
    if mh["total_frag"] > 1.4 and mh["total_frag_bytes"] > 10 << 20:
        found.append("high_frag")
    if mh["allocator_frag"] > 1.1 and mh["allocator_frag_bytes"] > 10 << 20:
        found.append("high_alloc_frag")
    if mh["allocator_rss"] > 1.1 and mh["allocator_rss_bytes"] > 10 << 20:
        found.append("high_alloc_rss")
    if mh["rss_extra"] > 1.1 and mh["rss_extra_bytes"] > 10 << 20:
        found.append("high_proc_rss")
    from frtrio.core.client import F

    nslaves = sum(1 for x in srv.clients.values() if x.flags & F.SLAVE) \
        if hasattr(F, "SLAVE") else len(getattr(srv.repl, "replicas", ()) or ())
    nclients = max(1, len(srv.clients) - nslaves)
    if mh["clients_normal"] // nclients > 1024 * 200:
        found.append("big_client_buf")
    if nslaves > 0 and mh["clients_slaves"] > 1024 * 1024 * 10:
        found.append("big_slave_buf")
    sc = srv.scripting
    if sc is not None and len(sc.scripts) > 1000:
        found.append("many_scripts")
    if not found:
        return _SAM_OK
    order = ["big_peak", "high_frag", "high_alloc_frag", "high_alloc_rss", "high_proc_rss",
             "big_slave_buf", "big_client_buf", "many_scripts"]
    return ("Sam, I detected a few issues in this Redis instance memory implants:\n\n"
            + "".join(_SAM_ISSUES[k] for k in order if k in found)
            + "I'm here to keep you safe, Sam. I want to help you.\n")


@command("memory|doctor")
def memory_doctor(c, argv):
    return Verbatim(memory_doctor_report(c.server).encode())


# --- MODULE (a server that loads no modules) -------------------------------------------------

container("module")

_MODULE_HELP = [
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and "
    "optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
]

_MODULE_NOT_ALLOWED = (
    "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", "
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server.")
_LOAD_FAILED = "ERR Error loading the extension. Please check the server logs."


def _module_allowed(c) -> None:
    from frtrio.commands.util import protected_action_allowed

    if not protected_action_allowed(c, c.server.config.get("enable-module-command")):
        raise err(_MODULE_NOT_ALLOWED)


@command("module|help")
def module_help(c, argv):
    return _help("MODULE", _MODULE_HELP)


@command("module|list")
def module_list(c, argv):
    return []  # no module is ever loaded


def _module_load_fails(path: bytes) -> None:
    """Log why a module cannot load, as Redis's moduleLoad does, and fail:
    frtrio has no module API, so even a real module file is refused."""
    import logging
    import os

    log = logging.getLogger("frtrio")
    p = _cstr(path).decode("latin-1")
    try:
        st = os.stat(p)
    except OSError as e:
        log.warning("Module %s failed to load: %s: cannot open shared object file: %s",
                    p, p, e.strerror)
        return
    if not st.st_mode & 0o111:
        log.warning("Module %s failed to load: It does not have execute permissions.", p)
        return
    log.warning("Module %s failed to load: frtrio cannot load Redis modules", p)


@command("module|load")
def module_load(c, argv):
    _module_allowed(c)
    _module_load_fails(argv[2])
    raise err(_LOAD_FAILED)


@command("module|loadex")
def module_loadex(c, argv):
    _module_allowed(c)
    import logging

    log = logging.getLogger("frtrio")
    args = argv[3:]
    i = 0
    while i < len(args):
        a = args[i].lower()
        if a == b"config":
            if i + 2 >= len(args):
                log.info("CONFIG specified without name value pair")
                raise err(_LOAD_FAILED)
            i += 3
        elif a == b"args":
            break
        else:
            log.info("Syntax Error from arguments to loadex around %s.",
                     _cstr(args[i]).decode("latin-1"))
            raise err(_LOAD_FAILED)
    _module_load_fails(argv[2])
    raise err(_LOAD_FAILED)


@command("module|unload")
def module_unload(c, argv):
    _module_allowed(c)
    raise err("ERR Error unloading module: no such module with that name")
