"""SLOWLOG and LATENCY (pure): the command side of what
``frtrio/core/introspect.py`` records (replies and texts as Redis 7.0.15's
slowlog.c and latency.c)."""

from __future__ import annotations

import math

from frtrio.commands.table import command, container
from frtrio.commands.util import err, parse_range
from frtrio.core.cnum import cstr as _cstr
from frtrio.protocol.reply import OK, Map, Status, Verbatim


def _help(name: str, lines: list[str]) -> list:
    """Redis's addReplyHelp: the header, the lines, then HELP's own."""
    return [Status(x) for x in (
        ["%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % name]
        + lines + ["HELP", "    Print this help."])]


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
