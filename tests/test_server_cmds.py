"""Differential tests: server commands (INFO CONFIG TIME LASTSAVE DBSIZE DEBUG
WAIT COMMAND), frtrio vs redis-server 7.0.15.

INFO values about the process (pids, memory, timings) differ by nature: the
section layout and field names are compared, and the values clients act on
(version, mode, role, keyspace, error counts...) exactly. Redis answers
CONFIG GET and COMMAND in hash-table order (random per process), so those are
compared as sets. frtrio's recorded command facts leave out the free-text
``notes`` of key specs; COMMAND INFO is compared with them removed.
"""

import re
import subprocess
import time

import pytest

from support import REDIS_CLI

# --- helpers ------------------------------------------------------------------------


def parse(buf: bytes, pos: int = 0):
    """RESP2/3 -> Python: maps become ("map", [(k, v)...]), sets ("set", [...]),
    verbatim strings their text, statuses ("+", text)."""
    nl = buf.index(b"\r\n", pos)
    t, line, p = buf[pos:pos + 1], buf[pos + 1:nl], nl + 2
    if t == b"+":
        return ("+", line), p
    if t == b"-":
        return ("-", line), p
    if t == b":":
        return int(line), p
    if t in (b"$", b"="):
        n = int(line)
        if n < 0:
            return None, p
        s = buf[p:p + n]
        return (s[4:] if t == b"=" else s), p + n + 2
    if t == b"_":
        return None, p
    if t in (b"*", b"~", b"%"):
        n = int(line)
        if n < 0:
            return None, p
        items = []
        for _ in range(n * 2 if t == b"%" else n):
            v, p = parse(buf, p)
            items.append(v)
        if t == b"%":
            return ("map", list(zip(items[::2], items[1::2]))), p
        if t == b"~":
            return ("set", items), p
        return items, p
    raise ValueError(buf[pos:pos + 30])


def value(reply: bytes):
    v, end = parse(reply)
    assert end == len(reply)
    return v


def normalize_info(entry):
    """A COMMAND INFO entry without notes, subcommands as a name -> entry map
    (Redis lists them in hash order)."""
    if entry is None:
        return None
    e = strip_notes(entry)
    if isinstance(e[9], tuple):  # RESP3: no subcommands is an empty set
        return e[:9] + [e[9]]
    return e[:9] + [{s[0]: s for s in e[9]}]


def same_info(fa, rb):
    """frtrio's entry equals Redis's; a container may list fewer (the
    implemented) subcommands, each equal to Redis's."""
    if fa is None or rb is None:
        assert fa is rb
        return
    a, b = normalize_info(fa), normalize_info(rb)
    assert a[:9] == b[:9], a[0]
    if isinstance(b[9], tuple):
        assert a[9] == b[9], a[0]
        return
    assert set(a[9]) <= set(b[9]), a[0]
    for name, sub in a[9].items():
        assert sub == b[9][name], name


def strip_notes(v):
    """Remove key-spec ``notes`` (RESP2: flat [k, v, ...] lists; RESP3: maps)."""
    if isinstance(v, tuple) and v[0] == "map":
        return ("map", [(k, strip_notes(x)) for k, x in v[1] if k != b"notes"])
    if isinstance(v, tuple) and v[0] == "set":
        return ("set", [strip_notes(x) for x in v[1]])
    if isinstance(v, list):
        if len(v) >= 2 and v[0] == b"notes" and len(v) % 2 == 0 and all(
                isinstance(k, bytes) for k in v[::2]):
            v = v[2:]
        return [strip_notes(x) for x in v]
    return v


def info_sections(text: bytes) -> dict:
    """INFO text -> {section title: [(field, value)]} (keeping order)."""
    out = {}
    cur = None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            cur = out.setdefault(line[2:], [])
        elif line:
            k, _, v = line.partition(":")
            cur.append((k, v))
    return out


def _hello(diff, proto):
    a, b = diff.both("HELLO", str(proto))
    mask = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")
    assert mask.sub(b"", a) == mask.sub(b"", b)


def config_map(reply: bytes) -> dict:
    v = value(reply)
    if isinstance(v, tuple):
        return dict(v[1])
    return dict(zip(v[::2], v[1::2]))


_PER_PROCESS = {b"port", b"dir", b"logfile", b"pidfile"}


def same_config(diff, *args):
    a, b = diff.both("CONFIG", "GET", *args)
    assert a[:1] == b[:1]
    ma, mb = config_map(a), config_map(b)
    assert {k: v for k, v in ma.items() if k not in _PER_PROCESS} == \
        {k: v for k, v in mb.items() if k not in _PER_PROCESS}, args
    assert set(ma) == set(mb)
    return ma


# --- INFO ---------------------------------------------------------------------------


_EXTRA_FIELDS = {("Server", "frtrio_mode")}  # what frtrio adds


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server",),
                                  ("SERVER",), ("clients",), ("memory",), ("persistence",),
                                  ("stats",), ("replication",), ("cpu",), ("modules",),
                                  ("commandstats",), ("errorstats",), ("latencystats",),
                                  ("cluster",), ("keyspace",), ("nosuchsection",),
                                  ("server", "clients"), ("keyspace", "server"),
                                  ("default", "commandstats"), ("all", "nosuch"),
                                  ("server", "server"), ("module_list",)])
def test_info_layout(diff, args):
    diff("SET", "k", "v")
    diff("SET", "e", "v", "EX", "100")
    diff("NOSUCHCOMMAND")
    diff("GET", "k")
    a, b = diff.both("INFO", *args)
    sa, sb = info_sections(value(a)), info_sections(value(b))
    assert list(sa) == list(sb)
    for title in sa:
        fa = [k for k, _ in sa[title] if (title, k) not in _EXTRA_FIELDS]
        fb = [k for k, _ in sb[title]]
        if title == "Latencystats":  # (other tests' connections ran other commands)
            assert set(fa) >= {"latency_percentiles_usec_set", "latency_percentiles_usec_get"}
            assert set(fb) >= {"latency_percentiles_usec_set", "latency_percentiles_usec_get"}
            continue
        if title == "Commandstats":  # other tests' connections ran other commands
            assert set(fa) >= {"cmdstat_set", "cmdstat_get"}
            continue
        assert fa == fb, title
    if not args:
        assert value(a).endswith(b"\r\n")


def test_info_empty_and_errors(diff):
    diff("INFO", "nosuchsection")
    diff("INFO", "")
    _hello(diff, 3)
    diff("INFO", "nosuchsection")
    a, b = diff.both("INFO", "cluster")
    assert a == b and a.startswith(b"=")  # a verbatim string in RESP3
    _hello(diff, 2)
    diff("INFO", "cluster")


def test_info_values_clients_read(diff, frtrio_proc, redis_proc):
    a, b = diff.both("INFO")
    sa, sb = info_sections(value(a)), info_sections(value(b))
    fa = {k: v for sec in sa.values() for k, v in sec}
    fb = {k: v for sec in sb.values() for k, v in sec}
    for k in ("redis_version", "redis_mode", "arch_bits", "role", "connected_slaves",
              "master_failover_state", "cluster_enabled", "loading", "aof_enabled",
              "rdb_bgsave_in_progress", "aof_rewrite_in_progress", "maxmemory",
              "maxmemory_policy", "maxclients", "hz", "configured_hz", "process_supervised",
              "master_replid2", "second_repl_offset", "repl_backlog_active"):
        if k == "master_replid2":
            # random once a server was promoted (earlier tests share these
            # servers and may have made them replicas): compare the shape
            assert (fa[k] == "0" * 40) == (fb[k] == "0" * 40), k
            continue
        assert fa[k] == fb[k], k
    assert fa["tcp_port"] == str(frtrio_proc.port)
    assert fb["tcp_port"] == str(redis_proc.port)
    for k in ("connected_clients", "used_memory", "used_memory_rss", "process_id",
              "uptime_in_seconds", "total_connections_received", "total_commands_processed",
              "server_time_usec", "total_system_memory"):
        assert int(fa[k]) >= 0, k
    assert int(fa["connected_clients"]) >= 1
    assert re.fullmatch(r"[0-9a-f]{40}", fa["run_id"])
    assert re.fullmatch(r"[0-9a-f]{40}", fa["master_replid"])
    assert abs(int(fa["server_time_usec"]) // 10**6 - time.time()) < 5


def test_info_keyspace(diff):
    diff("SET", "a", "1")
    diff("SET", "b", "1", "EX", "1000")
    diff("SELECT", "3")
    diff("MSET", "x", "1", "y", "2", "z", "3")
    diff("SELECT", "0")
    a, b = diff.both("INFO", "keyspace")
    ka, kb = info_sections(value(a))["Keyspace"], info_sections(value(b))["Keyspace"]

    def strip_avg(lines):  # avg_ttl is a running estimate in Redis
        return [(k, re.sub(r",avg_ttl=\d+", "", v)) for k, v in lines]

    assert strip_avg(ka) == strip_avg(kb) == [("db0", "keys=2,expires=1"),
                                              ("db3", "keys=3,expires=0")]
    diff("SELECT", "3")
    diff("FLUSHDB")
    diff("SELECT", "0")


def test_info_errorstats_and_resetstat(diff):
    diff("CONFIG", "RESETSTAT")
    diff("INFO", "errorstats")
    diff("NOSUCHCOMMAND")
    diff("GET")
    diff("SET", "k", "v", "EX", "0")
    diff("RPUSH", "l", "x")
    diff("GET", "l")
    diff("AUTH", "nobody", "pw")
    diff("INFO", "errorstats")
    a, b = diff.both("INFO", "stats")
    fa, fb = dict(info_sections(value(a))["Stats"]), dict(info_sections(value(b))["Stats"])
    assert fa["total_error_replies"] == fb["total_error_replies"] == "5"
    diff("CONFIG", "RESETSTAT")
    diff("INFO", "errorstats")
    a, b = diff.both("INFO", "stats")
    fa, fb = dict(info_sections(value(a))["Stats"]), dict(info_sections(value(b))["Stats"])
    for k in ("total_error_replies", "keyspace_hits", "keyspace_misses", "expired_keys",
              "rejected_connections", "unexpected_error_replies"):
        assert fa[k] == fb[k] == "0", k
    diff("CONFIG", "RESETSTAT", "x")


def test_info_commandstats_counts(diff):
    diff("CONFIG", "RESETSTAT")
    diff("SET", "k", "v")
    diff("SET", "k", "v", "EX", "0")  # fails: a failed call
    diff("GET", "k")
    diff("GET", "k")
    a, b = diff.both("INFO", "commandstats")

    def counts(reply):
        out = {}
        for k, v in info_sections(value(reply))["Commandstats"]:
            d = dict(x.split("=") for x in v.split(","))
            out[k] = (d["calls"], d["failed_calls"])
        return out

    ca, cb = counts(a), counts(b)
    for k in ("cmdstat_set", "cmdstat_get", "cmdstat_config|resetstat"):
        assert ca[k] == cb[k], k
    assert ca["cmdstat_set"] == ("2", "1")


def test_redis_py_parses_info(frtrio_proc):
    r = frtrio_proc.client()
    try:
        r.flushall()
        r.set("a", "1")
        info = r.info()
        assert info["redis_version"] == "7.0.15"
        assert info["redis_mode"] == "standalone"
        assert info["role"] == "master"
        assert info["db0"]["keys"] == 1
        assert isinstance(info["used_memory"], int)
        assert r.info("server")["tcp_port"] == frtrio_proc.port
        assert "cluster_enabled" in r.info("cluster")
    finally:
        r.close()


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")
def test_redis_cli_info(frtrio_proc):
    out = subprocess.run([REDIS_CLI, "-p", str(frtrio_proc.port), "INFO", "server"],
                         capture_output=True, timeout=10, check=True).stdout
    assert b"redis_version:7.0.15" in out


# --- CONFIG ----------------------------------------------------------------------------


def test_config_get(diff):
    for args in (("maxmemory",), ("MAXMEMORY",), ("maxmemory", "hz"), ("maxmemory", "maxmemory"),
                 ("maxmemory", "MAXMEMORY"), ("MAXMEMORY", "max*"), ("nonexistent",), ("",),
                 ("*max-*-entries*",), ("slave*",), ("*pass*",), ("list-max-*",), ("save",),
                 ("client-output-buffer-limit",), ("slaveof",), ("replicaof",),
                 ("*",), ("?z",), ("[h]z",), ("HZ",), ("h?",), ("*MEMORY*",), ("appendfsync",),
                 ("notify-keyspace-events",), ("bind",), ("dir",), ("databases",)):
        same_config(diff, *args)
    diff("CONFIG", "GET")
    diff("CONFIG")
    diff("CONFIG", "NOSUCH")
    diff("CONFIG", "HELP")
    diff("CONFIG", "help", "x")
    _hello(diff, 3)
    same_config(diff, "maxmemory")
    same_config(diff, "nonexistent")
    _hello(diff, 2)


def test_config_get_exact_name_echo(diff):
    # an exact name answers under the name as written
    a, b = diff.both("CONFIG", "GET", "MaxMemory")
    assert a == b == b"*2\r\n$9\r\nMaxMemory\r\n$1\r\n0\r\n"


@pytest.fixture
def restore_config(diff):
    """Put back every parameter a test changed (on both servers)."""
    names = ["hz", "maxmemory", "maxmemory-policy", "lazyfree-lazy-eviction", "save",
             "notify-keyspace-events", "slowlog-log-slower-than", "list-max-listpack-size",
             "client-output-buffer-limit", "loglevel", "timeout", "replica-priority",
             "maxmemory-samples", "appendfsync", "latency-tracking-info-percentiles"]
    saved = {}
    for n in names:
        saved[n] = config_map(diff.f.cmd("CONFIG", "GET", n))[n.encode()]
    yield
    for n, v in saved.items():
        for who in (diff.f, diff.r):
            assert who.cmd("CONFIG", "SET", n, v) == b"+OK\r\n", n


def test_config_set(diff, restore_config):
    diff("CONFIG", "SET", "hz", "20")
    same_config(diff, "hz")
    diff("CONFIG", "SET", "hz", "1000")  # clamped
    same_config(diff, "hz")
    diff("CONFIG", "SET", "HZ", "10")
    diff("CONFIG", "SET", "maxmemory", "1gb")
    same_config(diff, "maxmemory")
    diff("CONFIG", "SET", "maxmemory", "1GB")
    same_config(diff, "maxmemory")
    diff("CONFIG", "SET", "maxmemory", "0")
    diff("CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU")
    same_config(diff, "maxmemory-policy")
    diff("CONFIG", "SET", "lazyfree-lazy-eviction", "YES")
    same_config(diff, "lazyfree-lazy-eviction")
    diff("CONFIG", "SET", "save", "100 10 20 30")
    same_config(diff, "save")
    diff("CONFIG", "SET", "save", "")
    same_config(diff, "save")
    diff("CONFIG", "SET", "notify-keyspace-events", "KEA")
    same_config(diff, "notify-keyspace-events")
    diff("CONFIG", "SET", "notify-keyspace-events", "")
    diff("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    same_config(diff, "slowlog-log-slower-than")
    diff("CONFIG", "SET", "list-max-ziplist-size", "5")  # an alias
    same_config(diff, "list-max-*")
    diff("CONFIG", "SET", "client-output-buffer-limit", "normal 1 2 3")
    same_config(diff, "client-output-buffer-limit")
    diff("CONFIG", "SET", "slave-priority", "5", "replica-priority", "6")  # two entries
    same_config(diff, "replica-priority")
    diff("CONFIG", "SET", "hz", "15", "timeout", "7")  # several at once
    same_config(diff, "hz", "timeout")
    diff("CONFIG", "SET", "loglevel", "WARNING")
    same_config(diff, "loglevel")


def test_config_set_errors(diff, restore_config):
    diff("CONFIG", "SET")
    diff("CONFIG", "SET", "hz")
    diff("CONFIG", "SET", "hz", "10", "foo")  # odd: a syntax error
    diff("CONFIG", "SET", "foo", "bar")
    diff("CONFIG", "SET", "FOO", "bar")
    diff("CONFIG", "SET", "hz", "10", "foo", "bar")
    diff("CONFIG", "SET", "hz", "10", "HZ", "20")
    diff("CONFIG", "SET", "daemonize", "yes")
    diff("CONFIG", "SET", "DATABASES", "5")
    diff("CONFIG", "SET", "dir", "/tmp")  # protected
    diff("CONFIG", "SET", "daemonize", "yes", "foo", "bar")  # the unknown name wins
    diff("CONFIG", "SET", "hz", "1", "hz", "2", "foo", "x")
    diff("CONFIG", "SET", "databases", "5", "hz", "5", "hz", "6")
    diff("CONFIG", "SET", "hz", "abc")
    diff("CONFIG", "SET", "hz", "-1")
    diff("CONFIG", "SET", "maxmemory", "abc")
    diff("CONFIG", "SET", "maxmemory", "-1")
    diff("CONFIG", "SET", "maxmemory-policy", "foo")
    diff("CONFIG", "SET", "appendfsync", "maybe")
    diff("CONFIG", "SET", "lazyfree-lazy-eviction", "maybe")
    diff("CONFIG", "SET", "save", "100")
    diff("CONFIG", "SET", "save", "a b")
    diff("CONFIG", "SET", "notify-keyspace-events", "foo")
    diff("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0")
    diff("CONFIG", "SET", "client-output-buffer-limit", "foo 0 0 0")
    diff("CONFIG", "SET", "maxmemory-samples", "0")
    diff("CONFIG", "SET", "timeout", "-1")
    # all or nothing: a bad value leaves the good ones unset
    diff("CONFIG", "SET", "hz", "33", "maxmemory", "abc")
    same_config(diff, "hz")
    diff("CONFIG", "SET", "hz", "34", "maxmemory", "2mb", "appendfsync", "bad")
    same_config(diff, "hz", "maxmemory")


def test_config_resetstat_and_help(diff):
    diff("CONFIG", "RESETSTAT")
    diff("CONFIG", "HELP")
    diff("CONFIG", "REWRITE", "x")


# --- TIME / LASTSAVE / DBSIZE ----------------------------------------------------------------


def test_time_lastsave_dbsize(diff):
    a, b = diff.both("TIME")
    ta, tb = value(a), value(b)
    assert len(ta) == 2 and all(x.isdigit() for x in ta)
    assert abs(int(ta[0]) - int(tb[0])) <= 2
    assert 0 <= int(ta[1]) < 10**6
    diff("TIME", "x")
    la = value(diff.f.cmd("LASTSAVE"))
    assert isinstance(la, int) and la <= time.time() + 1
    diff("LASTSAVE", "x")
    diff("DBSIZE")
    diff("SET", "a", "1")
    diff("DBSIZE")
    diff("DBSIZE", "x")
    _hello(diff, 3)
    a, b = diff.both("TIME")
    assert a.startswith(b"*2\r\n") and b.startswith(b"*2\r\n")
    diff("DBSIZE")
    _hello(diff, 2)


# --- DEBUG -----------------------------------------------------------------------------------


def test_debug_commands(diff):
    diff("DEBUG")
    diff("DEBUG", "HELP")
    diff("DEBUG", "nosuch")
    diff("DEBUG", "SLEEP")
    diff("DEBUG", "SLEEP", "0")
    diff("DEBUG", "SLEEP", "abc")
    diff("DEBUG", "SLEEP", "0", "1")
    diff("DEBUG", "SET-ACTIVE-EXPIRE")
    diff("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    diff("DEBUG", "set-active-expire", "1", "x")
    t = time.monotonic()
    diff("DEBUG", "SLEEP", "0.05")
    assert time.monotonic() - t >= 0.1  # both slept

def test_debug_reload_and_persistence_commands_in_multi(diff):
    """DEBUG RELOAD saves, empties and loads dump.rdb; NOSAVE loads the file
    as it is; persistence commands queued in MULTI answer in their place of
    the EXEC array, as Redis's (BGSAVE/BGREWRITEAOF are 'scheduled' there)."""
    diff("SET", "k", "v")
    diff("RPUSH", "l", "a", "b")
    diff("DEBUG", "RELOAD")
    diff("GET", "k")
    diff("LRANGE", "l", "0", "-1")
    diff("DEBUG", "RELOAD", "bogus")
    diff("SET", "k2", "x")
    diff("DEBUG", "RELOAD", "NOSAVE")  # the file saved above has no k2
    diff("EXISTS", "k2")
    diff("SET", "k3", "y")
    diff("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE")  # k3 stays, the file's keys come back
    diff("MGET", "k", "k3")
    for args in (("BGSAVE",), ("BGREWRITEAOF",)):
        diff("MULTI")
        diff("SET", "a", "1")
        diff(*args)
        diff("GET", "a")
        diff("EXEC")
        for _ in range(100):  # let redis-server's scheduled child finish
            a, b = diff.both("INFO", "persistence")
            if b"_in_progress:1" not in b and b"_scheduled:1" not in b:
                break
            time.sleep(0.05)


def test_debug_set_active_expire(diff):
    try:
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        diff("SET", "k", "v", "PX", "20")
        time.sleep(0.3)
        diff("DBSIZE")  # not removed in the background
        diff("EXISTS", "k")  # but gone on access
        diff("DBSIZE")
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "abc")  # atoi: 0
        diff("SET", "k", "v", "PX", "20")
        time.sleep(0.3)
        diff("DBSIZE")
        diff("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        deadline = time.monotonic() + 3
        while value(diff.f.cmd("DBSIZE")) or value(diff.r.cmd("DBSIZE")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        diff.both("DEBUG", "SET-ACTIVE-EXPIRE", "1")


# --- WAIT ------------------------------------------------------------------------------------


def test_wait(diff):
    diff("WAIT", "0", "0")
    diff("WAIT", "1", "1")  # no replicas: times out with 0
    diff("WAIT", "-1", "0")
    diff("WAIT", "0", "100")
    for n, t in (("abc", "0"), ("0", "abc"), ("0", "-1"), ("1.5", "0"), ("0", "1.5"),
                 ("9223372036854775808", "0"), ("0", "9223372036854775807"), ("0", "")):
        diff("WAIT", n, t)
    diff("WAIT")
    diff("WAIT", "0")
    diff("MULTI")
    diff("WAIT", "5", "0")  # never blocks inside a transaction
    diff("EXEC")


# --- COMMAND ---------------------------------------------------------------------------------


def _frtrio_commands(diff):
    return [x for x in value(diff.f.cmd("COMMAND", "LIST"))]


def test_command_info_matches(diff):
    names = _frtrio_commands(diff)
    assert len(names) > 50
    for i in range(0, len(names), 40):
        chunk = names[i:i + 40]
        a, b = diff.both("COMMAND", "INFO", *chunk)
        for x, y in zip(value(a), value(b)):
            same_info(x, y)
    _hello(diff, 3)
    for i in range(0, len(names), 40):
        chunk = names[i:i + 40]
        a, b = diff.both("COMMAND", "INFO", *chunk)
        for x, y in zip(value(a), value(b)):
            same_info(x, y)
    _hello(diff, 2)


def test_command_info_lookup(diff):
    diff("COMMAND", "INFO", "get")
    diff("COMMAND", "INFO", "GET", "nonexistent", "get")
    diff("COMMAND", "INFO", "nonexistent")
    diff("COMMAND", "INFO", "config|get")
    diff("COMMAND", "INFO", "CONFIG|GET")
    diff("COMMAND", "INFO", "config|nosuch")
    diff("COMMAND", "INFO", "config|get|x")
    diff("COMMAND", "INFO", "get|x")
    diff("COMMAND", "INFO", "|")
    for name in ("config", "client", "command"):
        a, b = diff.both("COMMAND", "INFO", name)
        same_info(value(a)[0], value(b)[0])


def test_command_all_and_count(diff):
    a, b = diff.both("COMMAND")
    fa = {e[0]: e for e in value(a)}
    fb = {e[0]: e for e in value(b)}
    assert set(fa) <= set(fb)
    for name, e in fa.items():
        same_info(e, fb[name])
    n = value(diff.f.cmd("COMMAND", "COUNT"))
    assert n == len(fa) == len(value(diff.f.cmd("COMMAND", "INFO")))
    top = [x for x in _frtrio_commands(diff) if b"|" not in x]
    assert n == len(top)
    diff("COMMAND", "COUNT")
    diff("COMMAND", "INFO", "quit")
    diff("COMMAND", "COUNT", "x")
    diff("COMMAND", "HELP")
    diff("COMMAND", "NOSUCH")
    diff("COMMAND", "HELP", "x")


def test_command_list(diff):
    def both_sets(*args):
        a, b = diff.both("COMMAND", "LIST", *args)
        return set(value(a)), set(value(b))

    fa, ra = both_sets()
    assert fa == ra  # every command and subcommand of 7.0.15 (QUIT included)
    assert b"config|get" in fa
    for args in (("FILTERBY", "ACLCAT", "string"), ("FILTERBY", "aclcat", "keyspace"),
                 ("FILTERBY", "ACLCAT", "nosuchcat"), ("FILTERBY", "PATTERN", "c*"),
                 ("FILTERBY", "pattern", "CONFIG|*"), ("FILTERBY", "PATTERN", "*get*"),
                 ("FILTERBY", "MODULE", "x")):
        f, r = both_sets(*args)
        assert f == r & fa, args
    for args in (("FILTERBY",), ("FILTERBY", "foo", "bar"), ("x",), ("FILTERBY", "ACLCAT"),
                 ("FILTERBY", "ACLCAT", "a", "b"), ("FILTERBY", "ACLCAT", "a", "FILTERBY")):
        diff("COMMAND", "LIST", *args)


# --- COMMAND DOCS: Redis's facts, frtrio's prose ---------------------------------------------

_BARE_FORMULA = re.compile(rb"O\([^\s]*\)")  # "O(1)", "O(log(N))": a formula, not prose


def _pairs(v):
    """The (key, value) pairs of a map reply in either protocol."""
    if isinstance(v, tuple) and v[0] == "map":
        return list(v[1])
    assert isinstance(v, list) and len(v) % 2 == 0, v
    return list(zip(v[::2], v[1::2]))


def _docs_facts(reply: bytes, prose: dict, prefix=b""):
    """A COMMAND DOCS reply as (name, facts) pairs: prose blanked (collected
    into ``prose``), subcommands sorted by name (Redis lists them in hash
    order). Field order, reply types and every other value are kept."""
    return [(name, _doc_facts(name, doc, prose)) for name, doc in _pairs(value(reply))]


def _doc_facts(name, doc, prose):
    out = []
    for k, v in _pairs(doc):
        if k in (b"summary", b"complexity"):
            prose[name, k] = v
            v = b""
        elif k == b"history":
            items = v[1] if isinstance(v, tuple) else v
            for i, (ver, text) in enumerate(items):
                prose[name, b"history", i] = text
            blank = [[ver, b""] for ver, _ in items]
            v = (v[0], blank) if isinstance(v, tuple) else blank
        elif k == b"subcommands":
            tag = v[0] if isinstance(v, tuple) else None
            v = (tag, sorted((n, _doc_facts(n, d, prose)) for n, d in _pairs(v)))
        out.append((k, v))
    return out


def _check_prose(ours: dict, theirs: dict):
    """Every prose field Redis has, frtrio has too (and no other), non-empty
    and in its own words; a bare complexity formula may be the same."""
    assert set(ours) == set(theirs)
    for key, text in ours.items():
        assert isinstance(text, bytes) and text.strip(), key
        if key[1] == b"complexity" and _BARE_FORMULA.fullmatch(text):
            continue
        assert text != theirs[key], key


def test_command_docs_facts_match_redis(diff):
    names = _frtrio_commands(diff)
    assert len(names) == 366  # every command and subcommand of 7.0.15
    for proto in (2, 3):
        _hello(diff, proto)
        # no names: every command, its subcommands nested
        a, b = diff.both("COMMAND", "DOCS")
        pa, pb = {}, {}
        fa, fb = dict(_docs_facts(a, pa)), dict(_docs_facts(b, pb))
        assert len(fa) == 240 and fa == fb
        _check_prose(pa, pb)
        assert len(pa) > 700  # summaries, complexities and history texts
        # every name on its own line of the reply, subcommands included
        a, b = diff.both("COMMAND", "DOCS", *names)
        pa, pb = {}, {}
        fa, fb = _docs_facts(a, pa), _docs_facts(b, pb)
        assert [n for n, _ in fa] == names and fa == fb
        _check_prose(pa, pb)
    _hello(diff, 2)


def test_command_docs_lookup(diff):
    for proto in (2, 3):
        _hello(diff, proto)
        for args in (("nosuch",), ("nosuch", "get|x", "config|nosuch", "config|get|x", "|"),
                     ("GET", "nosuch", "get"), ("CONFIG|GET",), ("config",), ("Client|Kill", "x"),
                     ("brpoplpush", "debug", "georadius")):
            a, b = diff.both("COMMAND", "DOCS", *args)
            pa, pb = {}, {}
            assert _docs_facts(a, pa) == _docs_facts(b, pb), args
            _check_prose(pa, pb)
        diff("COMMAND", "DOCS", "nosuch")  # an empty map, not an error
    _hello(diff, 2)
    doc = dict(_docs_facts(diff.f.cmd("COMMAND", "DOCS", "getset"), {}))[b"getset"]
    assert dict(doc)[b"doc_flags"] == [("+", b"deprecated")]
    assert dict(doc)[b"replaced_by"] == b"`SET` with the `!GET` argument"


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")
def test_command_docs_drive_redis_cli_help(diff, frtrio_proc, redis_proc):
    """redis-cli 7.0 builds `help` from COMMAND DOCS: the argument synopsis,
    since and group lines are Redis's, the summary line frtrio's own."""
    def helps(proc, *topic):
        out = subprocess.run([REDIS_CLI, "-p", str(proc.port), "help", *topic],
                             capture_output=True, timeout=10).stdout
        summaries = [x for x in out.split(b"\n") if b"summary:" in x]
        rest = [x for x in out.split(b"\n") if b"summary:" not in x]
        return rest, summaries

    for topic in (("set",), ("client", "kill"), ("@sorted-set",), ("@stream",), ("@server",), ("@cluster",)):
        fr, fs = helps(frtrio_proc, *topic)
        rr, rs = helps(redis_proc, *topic)
        assert fr == rr, topic
        assert len(fs) == len(rs) > 0 and fs != rs, topic
    rest, summaries = helps(frtrio_proc, "set")
    assert b"[NX|XX] [GET] [EX seconds|PX milliseconds" in rest[1]
    assert b"Stores a string at a key" in summaries[0]


def test_command_docs_file_in_step_with_prose():
    """frtrio/commands/docs.json is the prose file joined with the recorded
    facts (scripts/gen_command_docs.py --check, no server needed)."""
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "scripts", "gen_command_docs.py"),
                          "--check"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_command_docs_generator_refuses_prose_that_does_not_fit():
    """The generator stops on prose for a command Redis lacks, a missing
    command, a history entry of another version, or a complexity where
    Redis documents none."""
    import importlib.util
    import json
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "gen_command_docs", os.path.join(root, "scripts", "gen_command_docs.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with open(os.path.join(root, "frtrio", "commands", "docs.json")) as f:
        facts = json.load(f)
    prose = gen.read_prose()
    assert gen.dumps(gen.build(facts, prose)) == gen.dumps(facts)
    bad = []
    p = dict(prose)
    p["nosuch"] = {"summary": "x", "complexity": "O(1)", "history": []}
    bad.append(p)
    p = dict(prose)
    del p["config|get"]
    bad.append(p)
    p = dict(prose)
    p["set"] = dict(p["set"], history=[("6.0.0", "x")] + p["set"]["history"][1:])
    bad.append(p)
    p = dict(prose)
    p["lolwut"] = dict(p["lolwut"], complexity="O(1)")
    bad.append(p)
    for p in bad:
        with pytest.raises(SystemExit):
            gen.build(facts, p)
    with pytest.raises(SystemExit):
        gen.parse_prose("get | only a summary\n")


_GETKEYS_CASES = [
    ("get", "k"), ("set", "k", "v"), ("set", "k", "v", "GET"), ("mset", "a", "1", "b", "2"),
    ("mget", "a", "b", "c"), ("del", "a", "b"), ("rename", "a", "b"), ("copy", "a", "b"),
    ("ping",), ("config", "get", "x"), ("client", "getname"), ("config", "nosuch"), ("config",),
    ("nonexistent", "a"), ("get",), ("get", "a", "b"), ("mset", "a", "1", "b"),
    ("object", "encoding", "k"), ("eval", "x", "2", "a", "b", "c"), ("eval", "x", "0"),
    ("eval", "x", "-1"), ("eval", "x", "3", "a"), ("eval", "x", "02", "a", "b"),
    ("eval", "x", "2x", "a", "b"), ("eval", "x", "+1", "a", "b"), ("evalsha", "s", "1", "k"),
    ("fcall", "f", "1", "k"), ("zunionstore", "d", "2", "a", "b"),
    ("zunionstore", "d", "2x", "a", "b"), ("zunionstore", "d", "0", "a"),
    ("zinterstore", "d", "1", "a"), ("zdiff", "02", "a", "b"), ("zunion", "2", "a", "b"),
    ("sort", "k"), ("sort", "k", "STORE", "d"), ("sort", "k", "LIMIT", "0", "1", "STORE", "d",
                                                  "BY", "x", "STORE", "e"),
    ("sort", "k", "GET", "store", "STORE"), ("sort_ro", "k", "BY", "x"),
    ("xread", "STREAMS", "a", "b", "0", "0"), ("xread", "COUNT", "1", "STREAMS", "a"),
    ("xread", "COUNT", "1", "STREAMS", "a", "b", "c"),
    ("xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "0"),
    ("migrate", "h", "p", "k", "0", "0"), ("migrate", "h", "p", "", "0", "0", "KEYS", "a", "b"),
    ("migrate", "h", "p", "k", "0", "0", "KEYS", "a", "b"),
    ("migrate", "h", "p", "", "0", "0", "AUTH", "keys", "KEYS", "a"),
    ("lmpop", "2", "a", "b", "LEFT"), ("lmpop", "02", "a", "b", "LEFT"),
    ("blmpop", "0", "2", "a", "b", "LEFT"), ("zmpop", "1", "a", "MIN"),
    ("bzmpop", "0", "1", "a", "MIN"), ("sintercard", "2", "a", "b"),
    ("zintercard", "1", "a"), ("georadius", "k", "0", "0", "1", "km", "STORE", "d"),
    ("georadius", "k", "0", "0", "1", "km", "STORE", "d", "STOREDIST", "e"),
    ("georadius", "k", "0", "0", "1", "km", "STORE"),
    ("georadiusbymember", "k", "m", "1", "km", "STOREDIST", "d"),
    ("bitfield", "k", "GET", "u8", "0"), ("bitfield", "k", "SET", "u8", "0", "1"),
    ("bitfield", "k", "OVERFLOW", "WRAP", "GET", "u8", "0"), ("bitfield", "k", "bad"),
    ("bitfield_ro", "k", "GET", "u8", "0"), ("spublish", "ch", "msg"), ("publish", "ch", "m"),
    ("ssubscribe", "a", "b"), ("lmove", "a", "b", "LEFT", "RIGHT"),
    ("blpop", "a", "b", "0"), ("xadd", "s", "*", "f", "v"), ("restore", "k", "0", "x"),
    ("memory", "usage", "k"), ("pfmerge", "d", "a", "b"), ("smove", "a", "b", "m"),
    ("watch", "a", "b"), ("exists", "a", "a"), ("georadius_ro", "k", "0", "0", "1", "km"),
    ("xinfo", "stream", "s"), ("xgroup", "create", "s", "g", "$"), ("lcs", "a", "b"),
    ("zrangestore", "d", "s", "0", "-1"), ("debug", "object", "k"),
]


def test_command_getkeys(diff):
    for case in _GETKEYS_CASES:
        diff("COMMAND", "GETKEYS", *case)
        diff("COMMAND", "GETKEYSANDFLAGS", *case)
    diff("COMMAND", "GETKEYS")
    diff("COMMAND", "GETKEYSANDFLAGS")
    _hello(diff, 3)
    for case in _GETKEYS_CASES[:20]:
        diff("COMMAND", "GETKEYSANDFLAGS", *case)
    _hello(diff, 2)


def test_command_getkeys_every_fixed_command(diff):
    """For every command with plain key positions, GETKEYS on a made-up
    call with the minimum number of arguments answers as Redis does."""
    names = value(diff.r.cmd("COMMAND", "LIST"))
    for name in sorted(names):
        parts = name.split(b"|")
        info = value(diff.r.cmd("COMMAND", "INFO", name))[0]
        arity = info[1]
        n = arity if arity > 0 else -arity
        args = parts + [b"a%d" % i for i in range(n - len(parts))]
        diff("COMMAND", "GETKEYS", *args)
        diff("COMMAND", "GETKEYSANDFLAGS", *args)
        args2 = args + [b"x", b"y", b"z"]
        diff("COMMAND", "GETKEYS", *args2)


def test_info_keyspace_hits_misses(diff):
    diff("SET", "a", "1")
    diff("RPUSH", "l", "x")
    diff("CONFIG", "RESETSTAT")
    for args in (("GET", "a"), ("GET", "nope"), ("MGET", "a", "nope", "l"), ("STRLEN", "a"),
                 ("GETRANGE", "nope", "0", "1"), ("EXISTS", "a", "nope"), ("TYPE", "l"),
                 ("TTL", "nope"), ("PTTL", "a"), ("TOUCH", "a"), ("SET", "b", "2", "GET"),
                 ("GETSET", "b", "3"), ("GETDEL", "b"), ("GETEX", "a"), ("COPY", "a", "c"),
                 ("INCR", "n"), ("APPEND", "a", "x"), ("SET", "z", "1"), ("DEL", "z"),
                 ("SETRANGE", "a", "0", "y"), ("EXPIRE", "a", "100"), ("PERSIST", "a")):
        diff(*args)
    a, b = diff.both("INFO", "stats")
    fa, fb = dict(info_sections(value(a))["Stats"]), dict(info_sections(value(b))["Stats"])
    assert (fa["keyspace_hits"], fa["keyspace_misses"]) == \
        (fb["keyspace_hits"], fb["keyspace_misses"])


def test_c16_oom_score_adj_follows_config_and_role(frtrio_proc, redis_proc):
    """oom-score-adj writes the process's OOM score as Redis does: the class
    value added to the score it had (relative) or as is (absolute), the
    replica class while a replica, the old score back when turned off, and
    nothing written while off (upstream unit/oom-score-adj)."""
    seen = {}
    for proc in (frtrio_proc, redis_proc):
        path = "/proc/%d/oom_score_adj" % proc.proc.pid

        def score():
            with open(path) as f:
                return int(f.read())

        with proc.conn() as c:
            c.cmd("CONFIG", "SET", "oom-score-adj", "no")
            with open(path, "w") as f:
                f.write("22\n")
            got = [score()]
            assert c.cmd("CONFIG", "SET", "oom-score-adj-values", "9 19 29",
                         "oom-score-adj", "yes") == b"+OK\r\n"
            got.append(score())
            assert c.cmd("CONFIG", "SET", "oom-score-adj", "absolute") == b"+OK\r\n"
            got.append(score())
            assert c.cmd("REPLICAOF", "127.0.0.1", "1") == b"+OK\r\n"
            got.append(score())
            assert c.cmd("REPLICAOF", "NO", "ONE") == b"+OK\r\n"
            got.append(score())
            assert c.cmd("CONFIG", "SET", "oom-score-adj", "no") == b"+OK\r\n"
            got.append(score())
            assert c.cmd("CONFIG", "SET", "oom-score-adj-values", "1 2 3") == b"+OK\r\n"
            got.append(score())
            c.cmd("CONFIG", "SET", "oom-score-adj-values", "0 200 800")
            assert c.cmd("CONFIG", "SET", "oom-score-adj-values", "-2001 0 0").startswith(
                b"-ERR CONFIG SET failed (possibly related to argument 'oom-score-adj-values')")
        seen[proc.kind] = got
    assert seen["frtrio"] == seen["redis"] == [22, 31, 9, 19, 9, 22, 22]


def test_c16_process_title_follows_the_template(frtrio_proc, redis_proc):
    """proc-title-template sets the process title as on redis-server
    (upstream unit/other 'Process title set as expected'): {title} is the
    program's name, then the listening address and ports."""
    for proc in (frtrio_proc, redis_proc):
        with proc.conn() as c:
            assert c.cmd("CONFIG", "SET", "proc-title-template",
                         "TEST {title} {listen-addr} {port} {tls-port} {server-mode}") == b"+OK\r\n"
            try:
                with open("/proc/%d/cmdline" % proc.proc.pid, "rb") as f:
                    words = f.read().replace(b"\0", b" ").split()
                assert words[0] == b"TEST", proc.kind
                assert words[1].endswith(b"redis-server" if proc.kind == "redis" else b"frtrio-server")
                assert words[2:] == [b"127.0.0.1:%d" % proc.port, b"%d" % proc.port, b"0"], words
                assert c.cmd("CONFIG", "SET", "proc-title-template", "{invalid-var}").startswith(
                    b"-ERR CONFIG SET failed (possibly related to argument 'proc-title-template')"
                    b" - template format is invalid")
            finally:
                c.cmd("CONFIG", "SET", "proc-title-template", "{title} {listen-addr} {server-mode}")
