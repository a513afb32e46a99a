"""Server configuration (pure): the parameters redis-server 7.0 knows, their
types, defaults and validation, the redis.conf syntax, and CONFIG REWRITE.

Every parameter of redis-server 7.0.15 is accepted and shown by CONFIG GET,
whether or not frtrio uses it. Values are kept as strings, rendered the way
CONFIG GET shows them (``1gb`` is kept as ``1073741824``, ``relative`` as
``yes``...). frtrio adds ``frtrio-mode`` (strict|hardened) and
``frtrio-event-log`` (a path), hidden like Redis's debugging parameters: an
exact ``CONFIG GET frtrio-mode`` shows them, ``CONFIG GET *`` does not, so a
pattern query answers exactly what redis-server answers.

The facts (types, bounds, error strings) were taken from redis-server 7.0.15's
behaviour; ``tests/test_config.py`` checks them against the real binary.

Nothing here touches the disk: reading an ``include``d file, ``dir``'s chdir
and the logfile check go through a *host* object the caller passes in (see
``load_config_text``).
"""

from __future__ import annotations

import hashlib

from frtrio.protocol.parser import split_args, string2ll

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
    _P("appendonly", None, _YN, DENY_LOADING, False),
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
    _P("proc-title-template", None, "string", 0, "{title} {listen-addr} {server-mode}",
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
    _P("loglevel", None, "enum", 0, "notice", enum=_ENUM_LOGLEVEL),
    _P("maxmemory-policy", None, "enum", 0, "noeviction", enum=_ENUM_POLICY),
    _P("appendfsync", None, "enum", 0, "everysec", enum=_ENUM_FSYNC),
    _P("oom-score-adj", None, "enum", 0, "no", enum=_ENUM_OOM),
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
    _P("port", None, "num", 0, 6379, 0, 65535),
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
    _P("dir", None, "special", PROT | DENY_LOADING, None),
    _P("save", None, "special", MULTI, "3600 1 300 100 60 10000"),
    _P("client-output-buffer-limit", None, "special", MULTI,
       "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    _P("oom-score-adj-values", None, "special", MULTI, "0 200 800"),
    _P("notify-keyspace-events", None, "special", 0, ""),
    _P("bind", None, "special", MULTI, "* -::*"),
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
# kept for older callers: the multi-argument parameters
SPECIAL = MULTI_ARG | {"notify-keyspace-events"}

# parameters deprecated in 7.0 that are still accepted (and ignored) with one argument
DEPRECATED = frozenset(["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"])


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


# --- C-like number parsing ------------------------------------------------------------

_CSPACE = " \t\n\v\f\r"


def c_strtoll(s: str, base: int = 10) -> tuple[int, str, bool]:
    """strtoll: (value, rest after the number, overflowed). No digits: (0, s, False)."""
    i = 0
    n = len(s)
    while i < n and s[i] in _CSPACE:
        i += 1
    neg = False
    if i < n and s[i] in "+-":
        neg = s[i] == "-"
        i += 1
    j = i
    digits = "0123456789"[:base] if base <= 10 else "0123456789abcdef"
    while j < n and s[j].lower() in digits and s[j].isascii():
        j += 1
    if j == i:
        return 0, s, False
    v = int(s[i:j], base)
    if neg:
        v = -v
    if v > LLONG_MAX:
        return LLONG_MAX, s[j:], True
    if v < -LLONG_MAX - 1:
        return -LLONG_MAX - 1, s[j:], True
    return v, s[j:], False


_MEM_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
              "g": 1000**3, "gb": 1024**3}


def memtoull(s: str) -> int | None:
    """Redis's memtoull: digits with an optional unit (k kb m mb g gb, any case).
    None where Redis reports an error. An empty number counts as 0, as in Redis."""
    if s.startswith("-"):
        return None
    i = 0
    while i < len(s) and s[i] in "0123456789":
        i += 1
    unit = s[i:].lower()
    if unit not in _MEM_UNITS:
        return None
    v = int(s[:i]) if i else 0
    v *= _MEM_UNITS[unit]
    if v > ULLONG_MAX:
        return None
    return v


def parse_memory(s: str) -> int | None:
    """A memory value as a parameter accepts it (kept for older callers)."""
    return memtoull(s)


def format_memory(n: int) -> str:
    """CONFIG REWRITE's rendering of a byte count (1gb, 64mb, 3kb, 1000)."""
    for unit, div in (("gb", 1024**3), ("mb", 1024**2), ("kb", 1024)):
        if n and n % div == 0:
            return "%d%s" % (n // div, unit)
    return "%d" % n


def repr_bytes(b: bytes) -> str:
    """Redis's sdscatrepr: a double-quoted, escaped rendering."""
    out = ['"']
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif c == 0x22:
            out.append('\\"')
        elif c == 10:
            out.append("\\n")
        elif c == 13:
            out.append("\\r")
        elif c == 9:
            out.append("\\t")
        elif c == 7:
            out.append("\\a")
        elif c == 8:
            out.append("\\b")
        elif 32 <= c <= 126:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    out.append('"')
    return "".join(out)


def to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("latin-1", "replace")


def repr_str(s: str) -> str:
    return repr_bytes(to_bytes(s))


def _trim_double(s: str) -> str:
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _string2d(s: str) -> float | None:
    if not s or s[0] in _CSPACE or len(s) > 5120:
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    if v != v:
        return None
    low = s.lower()
    if low.lstrip("+-") in ("nan",) or "_" in s:
        return None
    return v


# --- keyspace events flags ------------------------------------------------------------

_KS_CLASSES = "g$lshzxetd"  # the classes 'A' stands for, in rendering order


def keyspace_events_normalize(v: str) -> str | None:
    """Render a notify-keyspace-events value as CONFIG GET shows it; None if bad."""
    flags = set()
    for ch in v:
        if ch == "A":
            flags.update(_KS_CLASSES)
        elif ch in _KS_CLASSES or ch in "KEmn":
            flags.add(ch)
        else:
            return None
    if all(c in flags for c in _KS_CLASSES):
        out = "A"  # (Redis then drops 'n', which 'A' does not cover)
    else:
        out = "".join(c for c in _KS_CLASSES + "n" if c in flags)
    for c in "KEm":
        if c in flags:
            out += c
    return out


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


def _stringmatch_nocase(pattern: str, s: str) -> bool:
    from frtrio.store.glob import match

    return match(to_bytes(pattern), to_bytes(s), nocase=True)


class Config:
    """Current values of every parameter, as strings (Redis's rendering)."""

    def __init__(self):
        self.values: dict[str, str] = {p.name: DEFAULTS[p.name] for p in PARAMS}
        self.listeners: list = []  # callables (name, value) run after a change
        self.config_file: str | None = None
        # what the config file said beyond parameters
        self.renames: list[tuple[str, str]] = []  # rename-command
        self.users: list[list[str]] = []  # user directives (argv after "user")
        self.modules: list[list[str]] = []  # loadmodule directives
        self.module_configs: dict[str, str] = {}
        self.sentinel_lines: list[str] = []
        self.hz_clamped = False

    # --- access -------------------------------------------------------------------

    def get(self, name: str) -> str:
        return self.values[canonical(name)]

    def get_int(self, name: str) -> int:
        v = self.values[canonical(name)]
        p = BY_NAME.get(canonical(name))
        if p is not None and p.nflags & OCTAL:
            return int(v, 8)
        if v.endswith("%"):
            return -int(v[:-1])
        m = memtoull(v)
        if m is not None:
            return m
        return int(v)

    def get_bool(self, name: str) -> bool:
        return self.values[canonical(name)] == "yes"

    def known(self, name: str) -> bool:
        return name.lower() in BY_NAME

    def param(self, name: str) -> Param | None:
        return BY_NAME.get(name.lower())

    def save_params(self) -> list[tuple[int, int]]:
        w = self.values["save"].split()
        return [(int(w[i]), int(w[i + 1])) for i in range(0, len(w), 2)]

    def output_buffer_limits(self) -> dict:
        return self._parse_obl(self.values["client-output-buffer-limit"])

    def set(self, name: str, value: str) -> None:
        name = canonical(name.lower())
        self.values[name] = value
        for fn in self.listeners:
            fn(name, value)

    def matching(self, pattern: str) -> list[tuple[str, str]]:
        """(name, value) pairs CONFIG GET answers for one argument: an exact
        name (any case, hidden ones too) answers under the name as given; a
        glob pattern matches every visible name and alias, case-insensitively."""
        if not any(ch in pattern for ch in "*?["):
            p = BY_NAME.get(pattern.lower())
            if p is None:
                return []
            return [(pattern, self.values[p.name])]
        out = []
        for k, p in BY_NAME.items():
            if p.flags & HIDDEN:
                continue
            if _stringmatch_nocase(pattern, k):
                out.append((k, self.values[p.name]))
        return out

    # --- validation -------------------------------------------------------------------

    def validate(self, name: str, args: list[str], loading: bool = False) -> str:
        """Check a value and return its stored rendering; ConfigError if bad.

        ``args`` are the words after the name. ``loading`` selects the
        config-file rules where they differ from CONFIG SET (``save``
        appends to what earlier lines said)."""
        lname = name.lower()
        p = BY_NAME.get(lname)
        if p is None:
            raise ConfigError("Bad directive or wrong number of arguments", name)
        try:
            if p.kind == "special":
                return self._validate_special(p, args, loading)
            if p.kind == "flags":
                return self._validate_flags(p, args)
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            return self._validate_one(p, args[0])
        except ConfigError as e:
            e.name = name
            raise

    def _validate_one(self, p: Param, v: str) -> str:
        if p.kind == "bool":
            lv = v.lower()
            if lv not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            if p.check:
                p.check(lv == "yes")
            return lv
        if p.kind == "enum":
            lv = v.lower()
            for en, ev in p.enum:
                if en == lv:
                    # shown under the first name with that value
                    return next(n for n, x in p.enum if x == ev)
            raise ConfigError(
                "argument(s) must be one of the following: " + ", ".join(n for n, _ in p.enum)
            )
        if p.kind == "string":
            if p.check:
                p.check(v)
            return v
        if p.kind == "num":
            n = self._parse_num(p, v)
            self._bound_check(p, n)
            if p.name == "hz":
                n = max(1, min(500, n))
            return _render_num(p, n)
        raise ConfigError("unknown parameter type")  # pragma: no cover

    @staticmethod
    def _validate_flags(p: Param, args: list[str]) -> str:
        bad = ConfigError(
            "argument(s) must be one of the following: " + ", ".join(n for n, _ in p.enum)
        )
        if not args:
            raise bad
        names = dict(p.enum)
        bits = 0
        for a in args:
            b = names.get(a.lower())
            if b is None:
                raise bad
            bits |= b
        if p.name.startswith("shutdown-on-") and bits & 1 and bits & 2:
            raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
        if not bits:
            return p.enum[0][0]
        return " ".join(n for n, b in p.enum if b and bits & b)

    @staticmethod
    def _parse_num(p: Param, v: str) -> int:
        nf = p.nflags
        if nf & MEM:
            n = memtoull(v)
            if n is not None:
                if p.ctype not in _UNSIGNED and n > LLONG_MAX:
                    n -= 2**64
                return n
        if nf & PERCENT and len(v) > 1 and v.endswith("%"):
            n = string2ll(to_bytes(v[:-1]))
            if n is not None and n >= 0:
                return -n
        if nf & OCTAL:
            n, rest, over = c_strtoll(v, 8)
            if not over and rest == "" or (v.strip(_CSPACE) == "" and not over):
                return n
        if not nf:
            n = string2ll(to_bytes(v))
            if n is not None:
                return n
        if nf & MEM and nf & PERCENT:
            raise ConfigError("argument must be a memory or percent value")
        if nf & MEM:
            raise ConfigError("argument must be a memory value")
        if nf & OCTAL:
            raise ConfigError("argument couldn't be parsed as an octal number")
        raise ConfigError("argument couldn't be parsed into an integer")

    @staticmethod
    def _bound_check(p: Param, n: int) -> None:
        if p.ctype in _UNSIGNED:
            u = n % 2**64
            if not p.lo <= u <= p.hi:
                if p.nflags & OCTAL:
                    raise ConfigError("argument must be between %o and %o inclusive" % (p.lo, p.hi))
                raise ConfigError("argument must be between %d and %d inclusive" % (p.lo, p.hi))
            return
        if p.nflags & PERCENT and n < 0:
            if n < p.lo:
                raise ConfigError("percentage argument must be less or equal to %d" % -p.lo)
            return
        if not p.lo <= n <= p.hi:
            raise ConfigError("argument must be between %d and %d inclusive" % (p.lo, p.hi))

    def _validate_special(self, p: Param, args: list[str], loading: bool) -> str:
        name = p.name
        if name == "dir":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            return args[0]
        if name == "save":
            if len(args) == 1 and args[0] == "":
                args = []
            if len(args) % 2:
                raise ConfigError("Invalid save parameters")
            pairs = []
            for j, a in enumerate(args):
                v, rest, _over = c_strtoll(a)
                if rest != "" or (j % 2 == 0 and v < 1) or (j % 2 == 1 and v < 0):
                    raise ConfigError("Invalid save parameters")
                pairs.append(v if j % 2 == 0 else _c_int(v))
            return " ".join("%d" % x for x in pairs)
        if name == "client-output-buffer-limit":
            if len(args) % 4:
                raise ConfigError("Wrong number of arguments in buffer limit configuration.")
            cur = self._parse_obl(self.values["client-output-buffer-limit"])
            new = {}
            for i in range(0, len(args), 4):
                cls = args[i].lower()
                if cls == "slave":
                    cls = "replica"
                if cls not in ("normal", "replica", "pubsub"):
                    raise ConfigError("Invalid client class specified in buffer limit configuration.")
                hard = memtoull(args[i + 1])
                soft = memtoull(args[i + 2])
                secs, rest, _o = c_strtoll(args[i + 3])
                if hard is None or soft is None or secs < 0 or rest != "":
                    raise ConfigError(
                        "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    )
                new[cls] = (hard, soft, _c_int(secs))
            cur.update(new)
            return self._render_obl(cur)
        if name == "oom-score-adj-values":
            if len(args) != 3:
                raise ConfigError("wrong number of arguments")
            vals = []
            for a in args:
                v, rest, _o = c_strtoll(a)
                if rest != "" or v < -2000 or v > 2000:
                    raise ConfigError(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                    )
                vals.append(v)
            return " ".join("%d" % v for v in vals)
        if name == "notify-keyspace-events":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            v = keyspace_events_normalize(args[0])
            if v is None:
                raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
            return v
        if name == "bind":
            if len(args) > 16:
                raise ConfigError("Too many bind addresses specified.")
            if len(args) == 1 and args[0] == "":
                args = []
            return " ".join(args)
        if name == "replicaof":
            if len(args) != 2:
                raise ConfigError("wrong number of arguments")
            if args[0].lower() == "no" and args[1].lower() == "one":
                return ""
            port, rest, over = c_strtoll(args[1])
            if port < 0 or port > 65535 or rest != "" or over:
                raise ConfigError("Invalid master port")
            return "%s %d" % (args[0], port)
        if name == "latency-tracking-info-percentiles":
            if len(args) == 1 and args[0] == "":
                args = []
            out = []
            for a in args:
                d = _string2d(a)
                if d is None:
                    raise ConfigError("Invalid latency-tracking-info-percentiles parameters")
                if d > 100.0 or d < 0.0:
                    raise ConfigError(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    )
                out.append(_trim_double("%f" % d))
            return " ".join(out)
        raise ConfigError("wrong number of arguments")  # pragma: no cover

    @staticmethod
    def _parse_obl(v: str) -> dict:
        w = v.split()
        out = {}
        for i in range(0, len(w), 4):
            cls = "replica" if w[i] == "slave" else w[i]
            out[cls] = (int(w[i + 1]), int(w[i + 2]), int(w[i + 3]))
        return out

    @staticmethod
    def _render_obl(d: dict) -> str:
        parts = []
        for cls, shown in (("normal", "normal"), ("replica", "slave"), ("pubsub", "pubsub")):
            h, s, t = d[cls]
            parts.append("%s %d %d %d" % (shown, h, s, t))
        return " ".join(parts)


def _c_int(v: int) -> int:
    """The value a C ``int`` keeps of a long long."""
    return (v + 2**31) % 2**32 - 2**31


# --- redis.conf loading ----------------------------------------------------------------


class FatalConfig(Exception):
    """A config error as redis-server reports it (the FATAL CONFIG FILE ERROR block)."""

    def __init__(self, reason: str, lineno: int | None = None, line: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.lineno = lineno
        self.line = line

    def render(self) -> str:
        s = "\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n" % VERSION
        if self.lineno is not None:
            s += "Reading the configuration file, at line %d\n>>> '%s'\n" % (self.lineno, self.line)
        return s + self.reason + "\n"


class LoadAbort(Exception):
    """Loading stopped with a log message and exit code 1 (not a FATAL block),
    e.g. an include that cannot be opened."""


class Host:
    """What the loader needs from the outside world. The real one is in
    ``cli.py``; tests pass a virtual one."""

    def read_config_file(self, path: str) -> bytes:  # raises LoadAbort
        raise NotImplementedError

    def glob(self, pattern: str) -> list[str]:
        raise NotImplementedError

    def chdir(self, path: str) -> None:  # raises OSError
        raise NotImplementedError

    def getcwd(self) -> str:
        raise NotImplementedError

    def check_logfile(self, path: str) -> None:  # raises OSError
        raise NotImplementedError

    def command_exists(self, name: str) -> bool:
        return True

    def strerror(self, e: OSError) -> str:
        import os

        return os.strerror(e.errno) if e.errno else str(e)


class Loader:
    """Applies redis.conf text to a Config the way loadServerConfigFromString does."""

    def __init__(self, cfg: Config, host: Host):
        self.cfg = cfg
        self.host = host
        self.reading_file = True
        self.save_loaded = False
        self.renamed: dict[str, str | None] = {}

    def load_text(self, text: bytes) -> None:
        cfg = self.cfg
        self.reading_file = True
        lines = text.split(b"\n")
        for i, raw in enumerate(lines):
            lineno = i + 1
            line = raw.strip(b" \t\r\n")
            if not line or line[:1] == b"#":
                continue
            shown = line.decode("utf-8", "surrogateescape")
            words = split_args(line)
            if words is None:
                raise FatalConfig("Unbalanced quotes in configuration line", lineno, shown)
            if not words:
                continue
            name = words[0].decode("latin-1").lower()
            args = [w.decode("utf-8", "surrogateescape") for w in words[1:]]
            argc = len(words)
            try:
                self._directive(name, args, argc)
            except ConfigError as e:
                raise FatalConfig(e.message, lineno, shown) from None
        # checks made after each file, as Redis does
        logfile = cfg.values["logfile"]
        if logfile:
            try:
                self.host.check_logfile(logfile)
            except OSError as e:
                raise FatalConfig("Can't open the log file: %s" % self.host.strerror(e)) from None
        if cfg.values["cluster-enabled"] == "yes" and cfg.values["replicaof"]:
            raise FatalConfig("replicaof directive not allowed in cluster mode")
        self.reading_file = False

    def _directive(self, name: str, args: list[str], argc: int) -> None:
        cfg = self.cfg
        p = BY_NAME.get(name)
        if p is not None:
            if not (p.flags & MULTI) and argc != 2:
                raise ConfigError("wrong number of arguments")
            if p.flags & MULTI and argc == 2 and args[0] != "":
                sub = split_args(to_bytes(args[0]))
                args = [w.decode("utf-8", "surrogateescape") for w in (sub or [])]
            self._set(p, args)
            return
        if name in DEPRECATED and argc == 2:
            return
        if name == "include" and argc == 2:
            self._include(args[0])
            return
        if name == "rename-command" and argc == 3:
            self._rename(args[0], args[1])
            return
        if name == "user" and argc >= 2:
            cfg.users.append(args)
            return
        if name == "loadmodule" and argc >= 2:
            cfg.modules.append(args)
            return
        if "." in name:
            if argc != 2:
                raise ConfigError("Module config specified without value")
            cfg.module_configs[name] = args[0]
            return
        if name == "sentinel":
            if argc != 1:
                raise ConfigError("sentinel directive while not in sentinel mode")
            return
        raise ConfigError("Bad directive or wrong number of arguments")

    def _set(self, p: Param, args: list[str]) -> None:
        cfg = self.cfg
        if p.name == "dir":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            try:
                self.host.chdir(args[0])
            except OSError as e:
                raise ConfigError(self.host.strerror(e)) from None
            cfg.values["dir"] = self.host.getcwd()
            return
        v = cfg.validate(p.name, args, loading=True)
        if p.name == "save":
            empty = not args or (len(args) == 1 and args[0] == "")
            if self.reading_file and not self.save_loaded:
                self.save_loaded = True
                cfg.values["save"] = ""
            if empty or not self.reading_file:
                cfg.values["save"] = ""
            if v:
                cfg.values["save"] = (cfg.values["save"] + " " + v).strip()
            return
        if p.name == "hz":
            raw = args[0]
            n = string2ll(to_bytes(raw))
            cfg.hz_clamped = n is not None and not 1 <= n <= 500
        cfg.values[p.name] = v

    def _include(self, path: str) -> None:
        self.depth = getattr(self, "depth", 0) + 1
        if self.depth > 64:
            raise LoadAbort("Fatal error: include nesting too deep at '%s'" % path)
        if any(ch in path for ch in "*?["):
            paths = self.host.glob(path)
        else:
            paths = [path]
        data = b"".join(self.host.read_config_file(f) for f in paths)
        try:
            self.load_text(data)
        finally:
            self.depth -= 1

    def _rename(self, old: str, new: str) -> None:
        lo = old.lower()
        current = dict(self.renamed)
        # a name exists if it is an original command not renamed away, or a new name
        exists = (self.host.command_exists(lo) and lo not in current) or lo in current.values()
        if not exists:
            raise ConfigError("No such command in rename-command")
        orig = lo
        for o, n in current.items():
            if n == lo:
                orig = o
        if new:
            ln = new.lower()
            taken = (self.host.command_exists(ln) and ln not in current) or ln in current.values()
            if taken:
                raise ConfigError("Target command name already exists")
            self.renamed[orig] = ln
        else:
            self.renamed[orig] = None
        self.cfg.renames.append((old, new))


def load_config_text(cfg: Config, text: bytes, host: Host) -> Loader:
    """Apply config text (file + stdin + command-line options) to cfg.
    Raises FatalConfig or LoadAbort."""
    loader = Loader(cfg, host)
    loader.load_text(text)
    return loader


def parse_config_text(text: str) -> list[tuple[int, str, list[str]]]:
    """Lines of a redis.conf as (line number, directive, args); raises
    ConfigError with ``name`` set to the line number for unbalanced quotes."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        s = line.strip(" \t\r\n")
        if not s or s.startswith("#"):
            continue
        words = split_args(s.encode("utf-8", "surrogateescape"))
        if words is None:
            raise ConfigError("Unbalanced quotes in configuration line", str(lineno))
        if not words:
            continue
        out.append((lineno, words[0].decode("latin-1").lower(),
                    [w.decode("utf-8", "surrogateescape") for w in words[1:]]))
    return out


# --- CONFIG REWRITE ------------------------------------------------------------------

SIGNATURE = "# Generated by CONFIG REWRITE"


class _RewriteState:
    def __init__(self, old: bytes):
        self.lines: list[str] = []
        self.option_lines: dict[str, list[int]] = {}
        self.processed: set[str] = set()
        self.needs_signature = True
        if not old:
            return
        for raw in old.split(b"\n"):
            line = raw.strip(b"\r\n\t ").decode("utf-8", "surrogateescape")
            if not line or line.startswith("#"):
                if self.needs_signature and line == SIGNATURE:
                    self.needs_signature = False
                self.lines.append(line)
                continue
            words = split_args(to_bytes(line))
            if words is None:
                self.lines.append("# ??? " + line)
                continue
            if not words:
                self.lines.append(line)
                continue
            opt = words[0].decode("latin-1").lower()
            self.lines.append(line)
            p = BY_NAME.get(opt)
            if p is not None and p.alias == opt:
                opt = p.name
            self.option_lines.setdefault(opt, []).append(len(self.lines) - 1)

    def rewrite_line(self, option: str, line: str, force: bool) -> None:
        self.processed.add(option)
        nums = self.option_lines.get(option)
        if not nums and not force:
            return
        if nums:
            n = nums.pop(0)
            self.lines[n] = line
        else:
            if self.needs_signature:
                self.lines.append(SIGNATURE)
                self.needs_signature = False
            self.lines.append(line)

    def remove_orphaned(self) -> None:
        for opt, nums in self.option_lines.items():
            if opt not in self.processed:
                continue
            for n in nums:
                self.lines[n] = ""
            nums.clear()

    def content(self) -> str:
        out = []
        was_empty = False
        for line in self.lines:
            if line == "":
                if was_empty:
                    continue
                was_empty = True
            else:
                was_empty = False
            out.append(line + "\n")
        return "".join(out)


def _rewrite_param(st: _RewriteState, cfg: Config, p: Param, cwd: str) -> None:
    name = p.name
    v = cfg.values[name]
    if p.flags & HIDDEN and v == DEFAULTS[name]:
        st.processed.add(name)
        return
    if p.kind == "bool":
        st.rewrite_line(name, "%s %s" % (name, v), v != DEFAULTS[name])
    elif p.kind in ("enum", "flags"):
        st.rewrite_line(name, "%s %s" % (name, v), v != p.default)
    elif p.kind == "string":
        if p.null_if_empty and v == "":
            st.processed.add(name)
            return
        force = p.default is None or v != p.default
        st.rewrite_line(name, "%s %s" % (name, repr_str(v)), force)
    elif p.kind == "num":
        if v.endswith("%"):
            n = -int(v[:-1])
        elif p.nflags & OCTAL:
            n = int(v, 8)
        else:
            n = int(v)
        force = n != p.default
        if p.nflags & PERCENT and n < 0:
            line = "%s %d%%" % (name, -n)
        elif p.nflags & MEM:
            line = "%s %s" % (name, format_memory(n))
        elif p.nflags & OCTAL:
            line = "%s %o" % (name, n)
        else:
            line = "%s %d" % (name, n)
        st.rewrite_line(name, line, force)
    else:
        _rewrite_special(st, cfg, p, v, cwd)


def _rewrite_special(st: _RewriteState, cfg: Config, p: Param, v: str, cwd: str) -> None:
    name = p.name
    if name == "dir":
        st.rewrite_line(name, "dir " + repr_str(cwd), True)
    elif name == "save":
        w = v.split()
        if not w:
            st.rewrite_line(name, 'save ""', True)
        for i in range(0, len(w), 2):
            st.rewrite_line(name, "save %s %s" % (w[i], w[i + 1]), True)
        st.processed.add(name)
    elif name == "client-output-buffer-limit":
        cur = cfg.output_buffer_limits()
        dflt = Config._parse_obl(DEFAULTS[name])
        for cls in ("normal", "replica", "pubsub"):
            h, s, t = cur[cls]
            line = "%s %s %s %s %d" % (name, cls, format_memory(h), format_memory(s), t)
            st.rewrite_line(name, line, cur[cls] != dflt[cls])
    elif name == "oom-score-adj-values":
        st.rewrite_line(name, "%s %s" % (name, v), v != DEFAULTS[name])
    elif name == "notify-keyspace-events":
        st.rewrite_line(name, "%s %s" % (name, repr_str(v)), v != "")
    elif name == "bind":
        if v == DEFAULTS[name]:
            st.processed.add(name)
            return
        st.rewrite_line(name, "bind " + (v if v else '""'), True)
    elif name == "replicaof":
        if not v or cfg.values["cluster-enabled"] == "yes":
            st.processed.add(name)
            return
        st.rewrite_line(name, "replicaof " + v, True)
    elif name == "latency-tracking-info-percentiles":
        st.rewrite_line(name, name + (" " + v if v else ' ""'), True)


def _default_user_line(cfg: Config) -> str:
    pw = cfg.values["requirepass"]
    if pw:
        cred = "#" + hashlib.sha256(to_bytes(pw)).hexdigest()
    else:
        cred = "nopass"
    return "user default on %s ~* &* +@all" % cred


def rewrite_config_text(cfg: Config, old: bytes, cwd: str) -> str:
    """The new content of the config file for CONFIG REWRITE: lines of the
    old file are kept (comments, unknown directives, rename-command,
    include); parameters are rewritten in place, extra lines of a parameter
    are blanked, parameters not in the file are appended after a
    ``# Generated by CONFIG REWRITE`` line when they differ from their
    default. Runs of empty lines collapse into one."""
    st = _RewriteState(old)
    for p in PARAMS:
        _rewrite_param(st, cfg, p, cwd)
    # users: frtrio knows only the default user; other user lines stay as they are
    nums = st.option_lines.get("user", [])
    default_line = _default_user_line(cfg)
    placed = False
    keep = []
    for n in nums:
        words = split_args(to_bytes(st.lines[n])) or []
        if len(words) >= 2 and words[1] == b"default":
            if not placed:
                st.lines[n] = default_line
                placed = True
            else:
                st.lines[n] = ""
        else:
            keep.append(n)
    st.option_lines["user"] = []
    if not placed:
        st.rewrite_line("user", default_line, True)
    st.processed.add("user")
    st.processed.add("loadmodule")
    st.remove_orphaned()
    return st.content()
