"""The parameter table (pure): every parameter redis-server 7.0.15 knows,
with its type, flags, default, bounds and validity check, and the lookups
built from it (by name or alias, defaults as CONFIG GET renders them).

frtrio adds ``frtrio-mode`` (strict|hardened) and ``frtrio-event-log`` (a
path), hidden like Redis's debugging parameters: an exact ``CONFIG GET
frtrio-mode`` shows them, ``CONFIG GET *`` does not.
"""

from __future__ import annotations

VERSION = "7.0.15"

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1
LONG_MAX = LLONG_MAX = SSIZE_MAX = 2**63 - 1
ULLONG_MAX = 2**64 - 1

# flags
IMM = 1  # immutable: CONFIG SET refuses
PROT = 2  # protected: CONFIG SET needs enable-protected-configs
HIDDEN = 4  # CONFIG GET only by exact name
MULTI = 8  # takes several arguments
SENSITIVE = 16
DENY_LOADING = 32
# a new value is applied by the node's shell (the process, files): CONFIG SET
# leaves an ApplyConfig effect (frtrio/core/effects.py) instead of doing I/O itself
SHELL = 64
# numeric flags
MEM = 1
PERCENT = 2
OCTAL = 4

# C integer types whose bound check Redis does unsigned
_UNSIGNED = ("uint", "ull", "size")


class Param:
    __slots__ = ("name", "alias", "kind", "flags", "default", "lo", "hi", "ctype", "nflags",
                 "enum", "check", "null_if_empty")

    def __init__(self, name, alias, kind, flags, default, lo=0, hi=0, ctype="int", nflags=0,
                 enum=None, check=None, null_if_empty=False):
        self.name = name
        self.alias = alias
        self.kind = kind  # bool | string | enum | num | special
        self.flags = flags
        self.default = default  # native: bool, str or None, enum name, int
        self.lo = lo
        self.hi = hi
        self.ctype = ctype
        self.nflags = nflags
        self.enum = enum  # [(name, value)]
        self.check = check
        self.null_if_empty = null_if_empty


class ConfigError(Exception):
    """A bad value: ``message`` is Redis's explanation."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.message = message
        self.name = name


# --- validity checks ------------------------------------------------------------


def _check_dbfilename(v: str) -> None:
    if "/" in v:
        raise ConfigError("dbfilename can't be a path, just a filename")


def _check_aof_filename(v: str) -> None:
    if v == "":
        raise ConfigError("appendfilename can't be empty")
    if "/" in v:
        raise ConfigError("appendfilename can't be a path, just a filename")


def _check_aof_dirname(v: str) -> None:
    if v == "":
        raise ConfigError("appenddirname can't be empty")
    if "/" in v:
        raise ConfigError("appenddirname can't be a path, just a dirname")


def _check_hostname(v: str) -> None:
    if len(v.encode("utf-8", "surrogateescape")) >= 256:
        raise ConfigError("Hostnames must be less than 256 characters")
    for ch in v:
        if not (ch.isascii() and (ch.isalnum() or ch in "-.")):
            raise ConfigError("Hostnames may only contain alphanumeric characters, hyphens or dots")


_TITLE_VARS = ("{title}", "{listen-addr}", "{server-mode}", "{port}", "{tls-port}",
               "{unixsocket}", "{config-file}")


def _check_proc_title(v: str) -> None:
    bad = ConfigError("template format is invalid or contains unknown variables")
    out = []
    i = 0
    while i < len(v):
        ch = v[i]
        if ch == "{":
            j = v.find("}", i)
            if j < 0 or v[i : j + 1] not in _TITLE_VARS:
                raise bad
            out.append("x")
            i = j + 1
        elif ch == "}":
            raise bad
        else:
            out.append(ch)
            i += 1
    if not "".join(out).strip():
        raise bad


def _check_activedefrag(v: bool) -> None:
    if v:
        raise ConfigError(
            "Active defragmentation cannot be enabled: it requires a Redis server compiled "
            "with a modified Jemalloc like the one shipped by default with the Redis source "
            "distribution"
        )


# --- the table ------------------------------------------------------------------------

_P = Param
_YN = "bool"

_ENUM_FSYNC = [("everysec", 0), ("always", 1), ("no", 2)]
_ENUM_LOGLEVEL = [("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)]
_ENUM_POLICY = [("volatile-lru", 0), ("volatile-lfu", 1), ("volatile-random", 2),
                ("volatile-ttl", 3), ("allkeys-lru", 4), ("allkeys-lfu", 5),
                ("allkeys-random", 6), ("noeviction", 7)]
_ENUM_SUPERVISED = [("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)]
_ENUM_FACILITY = [("user", 0)] + [("local%d" % i, i + 1) for i in range(8)]
_ENUM_DISKLESS = [("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)]
_ENUM_TLS_AUTH = [("no", 0), ("yes", 1), ("optional", 2)]
_ENUM_OOM = [("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)]
_ENUM_PUBSUB = [("allchannels", 1), ("resetchannels", 0)]
_ENUM_SANITIZE = [("no", 0), ("yes", 1), ("clients", 2)]
_ENUM_PROTECTED = [("no", 0), ("yes", 1), ("local", 2)]
_ENUM_ENDPOINT = [("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)]
_ENUM_PROPAGATION = [("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)]
_ENUM_SHUTDOWN = [("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)]
_ENUM_MODE = [("strict", 0), ("hardened", 1)]

PARAMS: list[Param] = [
    # booleans
    _P("rdbchecksum", None, _YN, IMM, True),
    _P("daemonize", None, _YN, IMM, False),
    _P("io-threads-do-reads", None, _YN, IMM, False),
    _P("always-show-logo", None, _YN, IMM, False),
    _P("protected-mode", None, _YN, 0, True),
    _P("rdbcompression", None, _YN, 0, True),
    _P("rdb-del-sync-files", None, _YN, 0, False),
    _P("activerehashing", None, _YN, 0, True),
    _P("stop-writes-on-bgsave-error", None, _YN, 0, True),
    _P("set-proc-title", None, _YN, IMM, True),
    _P("dynamic-hz", None, _YN, 0, True),
    _P("lazyfree-lazy-eviction", None, _YN, 0, False),
    _P("lazyfree-lazy-expire", None, _YN, 0, False),
    _P("lazyfree-lazy-server-del", None, _YN, 0, False),
    _P("lazyfree-lazy-user-del", None, _YN, 0, False),
    _P("lazyfree-lazy-user-flush", None, _YN, 0, False),
    _P("repl-disable-tcp-nodelay", None, _YN, 0, False),
    _P("repl-diskless-sync", None, _YN, 0, True),
    _P("aof-rewrite-incremental-fsync", None, _YN, 0, True),
    _P("no-appendfsync-on-rewrite", None, _YN, 0, False),
    _P("cluster-require-full-coverage", None, _YN, 0, True),
    _P("rdb-save-incremental-fsync", None, _YN, 0, True),
    _P("aof-load-truncated", None, _YN, 0, True),
    _P("aof-use-rdb-preamble", None, _YN, 0, True),
    _P("aof-timestamp-enabled", None, _YN, 0, False),
    _P("cluster-replica-no-failover", "cluster-slave-no-failover", _YN, 0, False),
    _P("replica-lazy-flush", "slave-lazy-flush", _YN, 0, False),
    _P("replica-serve-stale-data", "slave-serve-stale-data", _YN, 0, True),
    _P("replica-read-only", "slave-read-only", _YN, 0, True),
    _P("replica-ignore-maxmemory", "slave-ignore-maxmemory", _YN, 0, True),
    _P("jemalloc-bg-thread", None, _YN, 0, True),
    _P("activedefrag", None, _YN, 0, False, check=_check_activedefrag),
    _P("syslog-enabled", None, _YN, IMM, False),
    _P("cluster-enabled", None, _YN, IMM, False),
    _P("appendonly", None, _YN, DENY_LOADING | SHELL, False),
    _P("cluster-allow-reads-when-down", None, _YN, 0, False),
    _P("cluster-allow-pubsubshard-when-down", None, _YN, 0, True),
    _P("crash-log-enabled", None, _YN, 0, True),
    _P("crash-memcheck-enabled", None, _YN, 0, True),
    _P("use-exit-on-panic", None, _YN, HIDDEN, False),
    _P("disable-thp", None, _YN, IMM, True),
    _P("cluster-allow-replica-migration", None, _YN, 0, True),
    _P("replica-announced", None, _YN, 0, True),
    _P("latency-tracking", None, _YN, 0, True),
    _P("aof-disable-auto-gc", None, _YN, 0, False),
    _P("replica-ignore-disk-write-errors", None, _YN, 0, False),
    _P("tls-cluster", None, _YN, 0, False),
    _P("tls-replication", None, _YN, 0, False),
    _P("tls-prefer-server-ciphers", None, _YN, 0, False),
    _P("tls-session-caching", None, _YN, 0, True),
    # strings (default None = NULL: an empty value is NULL, never written back)
    _P("aclfile", None, "string", IMM, ""),
    _P("unixsocket", None, "string", IMM, None, null_if_empty=True),
    _P("pidfile", None, "string", IMM, None, null_if_empty=True),
    _P("replica-announce-ip", "slave-announce-ip", "string", 0, None, null_if_empty=True),
    _P("masteruser", None, "string", SENSITIVE, None, null_if_empty=True),
    _P("cluster-announce-ip", None, "string", 0, None, null_if_empty=True),
    _P("cluster-config-file", None, "string", IMM, "nodes.conf"),
    _P("cluster-announce-hostname", None, "string", 0, None, null_if_empty=True,
       check=_check_hostname),
    _P("syslog-ident", None, "string", IMM, "redis"),
    _P("dbfilename", None, "string", PROT, "dump.rdb", check=_check_dbfilename),
    _P("appendfilename", None, "string", IMM, "appendonly.aof", check=_check_aof_filename),
    _P("appenddirname", None, "string", IMM, "appendonlydir", check=_check_aof_dirname),
    _P("server_cpulist", None, "string", IMM, None, null_if_empty=True),
    _P("bio_cpulist", None, "string", IMM, None, null_if_empty=True),
    _P("aof_rewrite_cpulist", None, "string", IMM, None, null_if_empty=True),
    _P("bgsave_cpulist", None, "string", IMM, None, null_if_empty=True),
    _P("ignore-warnings", None, "string", 0, ""),
    _P("proc-title-template", None, "string", SHELL, "{title} {listen-addr} {server-mode}",
       check=_check_proc_title),
    _P("bind-source-addr", None, "string", 0, None, null_if_empty=True),
    _P("logfile", None, "string", IMM, ""),
    _P("masterauth", None, "string", SENSITIVE, None, null_if_empty=True),
    _P("requirepass", None, "string", SENSITIVE, None, null_if_empty=True),
    _P("frtrio-event-log", None, "string", HIDDEN, None, null_if_empty=True),
] + [
    _P(n, None, "string", 0, None, null_if_empty=True)
    for n in ("tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-client-cert-file",
              "tls-client-key-file", "tls-client-key-file-pass", "tls-dh-params-file",
              "tls-ca-cert-file", "tls-ca-cert-dir", "tls-protocols", "tls-ciphers",
              "tls-ciphersuites")
] + [
    # enums
    _P("supervised", None, "enum", IMM, "no", enum=_ENUM_SUPERVISED),
    _P("syslog-facility", None, "enum", IMM, "local0", enum=_ENUM_FACILITY),
    _P("repl-diskless-load", None, "enum", DENY_LOADING, "disabled", enum=_ENUM_DISKLESS),
    _P("loglevel", None, "enum", SHELL, "notice", enum=_ENUM_LOGLEVEL),
    _P("maxmemory-policy", None, "enum", 0, "noeviction", enum=_ENUM_POLICY),
    _P("appendfsync", None, "enum", 0, "everysec", enum=_ENUM_FSYNC),
    _P("oom-score-adj", None, "enum", SHELL, "no", enum=_ENUM_OOM),
    _P("acl-pubsub-default", None, "enum", 0, "resetchannels", enum=_ENUM_PUBSUB),
    _P("sanitize-dump-payload", None, "enum", 0, "no", enum=_ENUM_SANITIZE),
    _P("enable-protected-configs", None, "enum", IMM, "no", enum=_ENUM_PROTECTED),
    _P("enable-debug-command", None, "enum", IMM, "no", enum=_ENUM_PROTECTED),
    _P("enable-module-command", None, "enum", IMM, "no", enum=_ENUM_PROTECTED),
    _P("cluster-preferred-endpoint-type", None, "enum", 0, "ip", enum=_ENUM_ENDPOINT),
    _P("tls-auth-clients", None, "enum", 0, "yes", enum=_ENUM_TLS_AUTH),
    _P("propagation-error-behavior", None, "enum", 0, "ignore", enum=_ENUM_PROPAGATION),
    _P("frtrio-mode", None, "enum", HIDDEN, "strict", enum=_ENUM_MODE),
    # flag sets (several words)
    _P("shutdown-on-sigint", None, "flags", MULTI, "default", enum=_ENUM_SHUTDOWN),
    _P("shutdown-on-sigterm", None, "flags", MULTI, "default", enum=_ENUM_SHUTDOWN),
    # int
    _P("databases", None, "num", IMM, 16, 1, INT_MAX),
    _P("port", None, "num", SHELL, 6379, 0, 65535),
    _P("io-threads", None, "num", IMM, 1, 1, 128),
    _P("auto-aof-rewrite-percentage", None, "num", 0, 100, 0, INT_MAX),
    _P("cluster-replica-validity-factor", "cluster-slave-validity-factor", "num", 0, 10, 0, INT_MAX),
    _P("list-max-listpack-size", "list-max-ziplist-size", "num", 0, -2, INT_MIN, INT_MAX),
    _P("tcp-keepalive", None, "num", 0, 300, 0, INT_MAX),
    _P("cluster-migration-barrier", None, "num", 0, 1, 0, INT_MAX),
    _P("active-defrag-cycle-min", None, "num", 0, 1, 1, 99),
    _P("active-defrag-cycle-max", None, "num", 0, 25, 1, 99),
    _P("active-defrag-threshold-lower", None, "num", 0, 10, 0, 1000),
    _P("active-defrag-threshold-upper", None, "num", 0, 100, 0, 1000),
    _P("lfu-log-factor", None, "num", 0, 10, 0, INT_MAX),
    _P("lfu-decay-time", None, "num", 0, 1, 0, INT_MAX),
    _P("replica-priority", "slave-priority", "num", 0, 100, 0, INT_MAX),
    _P("repl-diskless-sync-delay", None, "num", 0, 5, 0, INT_MAX),
    _P("maxmemory-samples", None, "num", 0, 5, 1, INT_MAX),
    _P("maxmemory-eviction-tenacity", None, "num", 0, 10, 0, 100),
    _P("timeout", None, "num", 0, 0, 0, INT_MAX),
    _P("replica-announce-port", "slave-announce-port", "num", 0, 0, 0, 65535),
    _P("tcp-backlog", None, "num", IMM, 511, 0, INT_MAX),
    _P("cluster-port", None, "num", IMM, 0, 0, 65535),
    _P("cluster-announce-bus-port", None, "num", 0, 0, 0, 65535),
    _P("cluster-announce-port", None, "num", 0, 0, 0, 65535),
    _P("cluster-announce-tls-port", None, "num", 0, 0, 0, 65535),
    _P("repl-timeout", None, "num", 0, 60, 1, INT_MAX),
    _P("repl-ping-replica-period", "repl-ping-slave-period", "num", 0, 10, 1, INT_MAX),
    _P("list-compress-depth", None, "num", 0, 0, 0, INT_MAX),
    _P("rdb-key-save-delay", None, "num", HIDDEN, 0, INT_MIN, INT_MAX),
    _P("key-load-delay", None, "num", HIDDEN, 0, INT_MIN, INT_MAX),
    _P("active-expire-effort", None, "num", 0, 1, 1, 10),
    _P("hz", None, "num", 0, 10, 0, INT_MAX),
    _P("min-replicas-to-write", "min-slaves-to-write", "num", 0, 0, 0, INT_MAX),
    _P("min-replicas-max-lag", "min-slaves-max-lag", "num", 0, 10, 0, INT_MAX),
    _P("watchdog-period", None, "num", HIDDEN, 0, 0, INT_MAX),
    _P("shutdown-timeout", None, "num", 0, 10, 0, INT_MAX),
    _P("repl-diskless-sync-max-replicas", None, "num", 0, 0, 0, INT_MAX),
    _P("tls-port", None, "num", 0, 0, 0, 65535),
    _P("tls-session-cache-size", None, "num", 0, 20480, 0, INT_MAX),
    _P("tls-session-cache-timeout", None, "num", 0, 300, 0, INT_MAX),
    # unsigned int
    _P("maxclients", None, "num", 0, 10000, 1, UINT_MAX, ctype="uint"),
    _P("unixsocketperm", None, "num", IMM, 0, 0, 0o777, ctype="uint", nflags=OCTAL),
    _P("socket-mark-id", None, "num", IMM, 0, 0, UINT_MAX, ctype="uint"),
    # unsigned long (checked signed)
    _P("active-defrag-max-scan-fields", None, "num", 0, 1000, 1, LONG_MAX, ctype="ulong"),
    _P("slowlog-max-len", None, "num", 0, 128, 0, LONG_MAX, ctype="ulong"),
    _P("acllog-max-len", None, "num", 0, 128, 0, LONG_MAX, ctype="ulong"),
    # long long
    _P("busy-reply-threshold", "lua-time-limit", "num", 0, 5000, 0, LONG_MAX, ctype="ll"),
    _P("cluster-node-timeout", None, "num", 0, 15000, 0, LLONG_MAX, ctype="ll"),
    # atomic slot migration (Redis 8.4); hidden: CONFIG GET * stays 7.0's
    _P("cluster-slot-migration-handoff-max-lag-bytes", None, "num", HIDDEN, 1024 * 1024, 0,
       LLONG_MAX, ctype="ll", nflags=MEM),
    _P("cluster-slot-migration-write-pause-timeout", None, "num", HIDDEN, 10000, 0, LLONG_MAX,
       ctype="ll"),
    _P("cluster-slot-migration-sync-buffer-drain-timeout", None, "num", HIDDEN, 60000, 0,
       LLONG_MAX, ctype="ll"),
    _P("cluster-slot-migration-max-archived-tasks", None, "num", HIDDEN, 32, 1, INT_MAX),
    # Redis 8's bound of a buffered full-sync stream (ASM's sync buffer);
    # 0: the replica class's hard output buffer limit
    _P("replica-full-sync-buffer-limit", None, "num", HIDDEN, 0, 0, LLONG_MAX, ctype="ll",
       nflags=MEM),
    _P("slowlog-log-slower-than", None, "num", 0, 10000, -1, LLONG_MAX, ctype="ll"),
    _P("latency-monitor-threshold", None, "num", 0, 0, 0, LLONG_MAX, ctype="ll"),
    _P("proto-max-bulk-len", None, "num", 0, 512 * 1024 * 1024, 1024 * 1024, LONG_MAX,
       ctype="ll", nflags=MEM),
    _P("stream-node-max-entries", None, "num", 0, 100, 0, LLONG_MAX, ctype="ll"),
    _P("repl-backlog-size", None, "num", 0, 1024 * 1024, 1, LLONG_MAX, ctype="ll", nflags=MEM),
    # unsigned long long
    _P("maxmemory", None, "num", 0, 0, 0, ULLONG_MAX, ctype="ull", nflags=MEM),
    _P("cluster-link-sendbuf-limit", None, "num", 0, 0, 0, ULLONG_MAX, ctype="ull", nflags=MEM),
    # size_t
    _P("hash-max-listpack-entries", "hash-max-ziplist-entries", "num", 0, 512, 0, LONG_MAX,
       ctype="size"),
    _P("set-max-intset-entries", None, "num", 0, 512, 0, LONG_MAX, ctype="size"),
    _P("zset-max-listpack-entries", "zset-max-ziplist-entries", "num", 0, 128, 0, LONG_MAX,
       ctype="size"),
    _P("active-defrag-ignore-bytes", None, "num", 0, 100 << 20, 1, LLONG_MAX, ctype="size",
       nflags=MEM),
    _P("hash-max-listpack-value", "hash-max-ziplist-value", "num", 0, 64, 0, LONG_MAX,
       ctype="size", nflags=MEM),
    _P("stream-node-max-bytes", None, "num", 0, 4096, 0, LONG_MAX, ctype="size", nflags=MEM),
    _P("zset-max-listpack-value", "zset-max-ziplist-value", "num", 0, 64, 0, LONG_MAX,
       ctype="size", nflags=MEM),
    _P("hll-sparse-max-bytes", None, "num", 0, 3000, 0, LONG_MAX, ctype="size", nflags=MEM),
    _P("tracking-table-max-keys", None, "num", 0, 1000000, 0, LONG_MAX, ctype="size"),
    _P("client-query-buffer-limit", None, "num", 0, 1024**3, 1024 * 1024, LONG_MAX,
       ctype="size", nflags=MEM),
    _P("maxmemory-clients", None, "num", 0, 0, -100, SSIZE_MAX, ctype="ssize",
       nflags=MEM | PERCENT),
    _P("repl-backlog-ttl", None, "num", 0, 3600, 0, LONG_MAX, ctype="time"),
    _P("auto-aof-rewrite-min-size", None, "num", 0, 64 * 1024 * 1024, 0, LLONG_MAX, ctype="off",
       nflags=MEM),
    _P("loading-process-events-interval-bytes", None, "num", HIDDEN, 2 * 1024 * 1024, 1024,
       INT_MAX, ctype="off"),
    # special
    _P("dir", None, "special", PROT | DENY_LOADING | SHELL, None),
    _P("save", None, "special", MULTI, "3600 1 300 100 60 10000"),
    _P("client-output-buffer-limit", None, "special", MULTI,
       "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    _P("oom-score-adj-values", None, "special", MULTI | SHELL, "0 200 800"),
    _P("notify-keyspace-events", None, "special", 0, ""),
    _P("bind", None, "special", MULTI | SHELL, "* -::*"),
    _P("replicaof", "slaveof", "special", IMM | MULTI, ""),
    _P("latency-tracking-info-percentiles", None, "special", MULTI, "50 99 99.9"),
]

BY_NAME: dict[str, Param] = {}
for _p in PARAMS:
    BY_NAME[_p.name] = _p
    if _p.alias:
        BY_NAME[_p.alias] = _p

ALIASES = {p.alias: p.name for p in PARAMS if p.alias}
IMMUTABLE = frozenset(n for n, p in BY_NAME.items() if p.flags & IMM)
PROTECTED = frozenset(n for n, p in BY_NAME.items() if p.flags & PROT)
MULTI_ARG = frozenset(n for n, p in BY_NAME.items() if p.flags & MULTI)

# parameters deprecated in 7.0 that are still accepted (and ignored) with one argument
DEPRECATED = frozenset(["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"])


def canonical(name: str) -> str:
    return ALIASES.get(name, name)

# --- the value store ------------------------------------------------------------------


def _default_render(p: Param) -> str:
    if p.kind == "bool":
        return "yes" if p.default else "no"
    if p.kind == "num":
        return _render_num(p, p.default)
    if p.kind == "string":
        return p.default or ""
    if p.kind == "special" and p.name == "dir":
        return ""
    return p.default


def _render_num(p: Param, v: int) -> str:
    if p.nflags & PERCENT and v < 0:
        return "%d%%" % -v
    if p.nflags & OCTAL:
        return "%o" % v
    return "%d" % v


DEFAULTS: dict[str, str] = {}
for _p in PARAMS:
    DEFAULTS[_p.name] = _default_render(_p)
    if _p.alias:
        DEFAULTS[_p.alias] = DEFAULTS[_p.name]
