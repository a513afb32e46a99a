"""Server configuration (pure): the parameters redis-server 7.0 knows, their
defaults, validation and the redis.conf / command-line syntax.

Every parameter Redis 7.0 has is accepted and shown by CONFIG GET, whether or
not frtrio uses it; values are kept as Redis shows them (strings). frtrio adds
``frtrio-mode`` (strict|hardened) and ``frtrio-event-log`` (a path).
"""

from __future__ import annotations

import fnmatch

from frtrio.protocol.parser import split_args, string2ll

VERSION = "7.0.15"

# name -> default, as `CONFIG GET *` shows it on redis-server 7.0.15
DEFAULTS: dict[str, str] = {
    'acl-pubsub-default': 'resetchannels',
    'aclfile': '',
    'acllog-max-len': '128',
    'active-defrag-cycle-max': '25',
    'active-defrag-cycle-min': '1',
    'active-defrag-ignore-bytes': '104857600',
    'active-defrag-max-scan-fields': '1000',
    'active-defrag-threshold-lower': '10',
    'active-defrag-threshold-upper': '100',
    'active-expire-effort': '1',
    'activedefrag': 'no',
    'activerehashing': 'yes',
    'always-show-logo': 'no',
    'aof-disable-auto-gc': 'no',
    'aof-load-truncated': 'yes',
    'aof-rewrite-incremental-fsync': 'yes',
    'aof-timestamp-enabled': 'no',
    'aof-use-rdb-preamble': 'yes',
    'aof_rewrite_cpulist': '',
    'appenddirname': 'appendonlydir',
    'appendfilename': 'appendonly.aof',
    'appendfsync': 'everysec',
    'appendonly': 'no',
    'auto-aof-rewrite-min-size': '67108864',
    'auto-aof-rewrite-percentage': '100',
    'bgsave_cpulist': '',
    'bind': '* -::*',
    'bind-source-addr': '',
    'bio_cpulist': '',
    'busy-reply-threshold': '5000',
    'client-output-buffer-limit': 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60',
    'client-query-buffer-limit': '1073741824',
    'cluster-allow-pubsubshard-when-down': 'yes',
    'cluster-allow-reads-when-down': 'no',
    'cluster-allow-replica-migration': 'yes',
    'cluster-announce-bus-port': '0',
    'cluster-announce-hostname': '',
    'cluster-announce-ip': '',
    'cluster-announce-port': '0',
    'cluster-announce-tls-port': '0',
    'cluster-config-file': 'nodes.conf',
    'cluster-enabled': 'no',
    'cluster-link-sendbuf-limit': '0',
    'cluster-migration-barrier': '1',
    'cluster-node-timeout': '15000',
    'cluster-port': '0',
    'cluster-preferred-endpoint-type': 'ip',
    'cluster-replica-no-failover': 'no',
    'cluster-replica-validity-factor': '10',
    'cluster-require-full-coverage': 'yes',
    'cluster-slave-no-failover': 'no',
    'cluster-slave-validity-factor': '10',
    'crash-log-enabled': 'yes',
    'crash-memcheck-enabled': 'yes',
    'daemonize': 'no',
    'databases': '16',
    'dbfilename': 'dump.rdb',
    'dir': '',
    'disable-thp': 'yes',
    'dynamic-hz': 'yes',
    'enable-debug-command': 'no',
    'enable-module-command': 'no',
    'enable-protected-configs': 'no',
    'hash-max-listpack-entries': '512',
    'hash-max-listpack-value': '64',
    'hash-max-ziplist-entries': '512',
    'hash-max-ziplist-value': '64',
    'hll-sparse-max-bytes': '3000',
    'hz': '10',
    'ignore-warnings': '',
    'io-threads': '1',
    'io-threads-do-reads': 'no',
    'jemalloc-bg-thread': 'yes',
    'latency-monitor-threshold': '0',
    'latency-tracking': 'yes',
    'latency-tracking-info-percentiles': '50 99 99.9',
    'lazyfree-lazy-eviction': 'no',
    'lazyfree-lazy-expire': 'no',
    'lazyfree-lazy-server-del': 'no',
    'lazyfree-lazy-user-del': 'no',
    'lazyfree-lazy-user-flush': 'no',
    'lfu-decay-time': '1',
    'lfu-log-factor': '10',
    'list-compress-depth': '0',
    'list-max-listpack-size': '-2',
    'list-max-ziplist-size': '-2',
    'logfile': '',
    'loglevel': 'notice',
    'lua-time-limit': '5000',
    'masterauth': '',
    'masteruser': '',
    'maxclients': '10000',
    'maxmemory': '0',
    'maxmemory-clients': '0',
    'maxmemory-eviction-tenacity': '10',
    'maxmemory-policy': 'noeviction',
    'maxmemory-samples': '5',
    'min-replicas-max-lag': '10',
    'min-replicas-to-write': '0',
    'min-slaves-max-lag': '10',
    'min-slaves-to-write': '0',
    'no-appendfsync-on-rewrite': 'no',
    'notify-keyspace-events': '',
    'oom-score-adj': 'no',
    'oom-score-adj-values': '0 200 800',
    'pidfile': '',
    'port': '6379',
    'proc-title-template': '{title} {listen-addr} {server-mode}',
    'propagation-error-behavior': 'ignore',
    'protected-mode': 'yes',
    'proto-max-bulk-len': '536870912',
    'rdb-del-sync-files': 'no',
    'rdb-save-incremental-fsync': 'yes',
    'rdbchecksum': 'yes',
    'rdbcompression': 'yes',
    'repl-backlog-size': '1048576',
    'repl-backlog-ttl': '3600',
    'repl-disable-tcp-nodelay': 'no',
    'repl-diskless-load': 'disabled',
    'repl-diskless-sync': 'yes',
    'repl-diskless-sync-delay': '5',
    'repl-diskless-sync-max-replicas': '0',
    'repl-ping-replica-period': '10',
    'repl-ping-slave-period': '10',
    'repl-timeout': '60',
    'replica-announce-ip': '',
    'replica-announce-port': '0',
    'replica-announced': 'yes',
    'replica-ignore-disk-write-errors': 'no',
    'replica-ignore-maxmemory': 'yes',
    'replica-lazy-flush': 'no',
    'replica-priority': '100',
    'replica-read-only': 'yes',
    'replica-serve-stale-data': 'yes',
    'replicaof': '',
    'requirepass': '',
    'sanitize-dump-payload': 'no',
    'save': '3600 1 300 100 60 10000',
    'server_cpulist': '',
    'set-max-intset-entries': '512',
    'set-proc-title': 'yes',
    'shutdown-on-sigint': 'default',
    'shutdown-on-sigterm': 'default',
    'shutdown-timeout': '10',
    'slave-announce-ip': '',
    'slave-announce-port': '0',
    'slave-ignore-maxmemory': 'yes',
    'slave-lazy-flush': 'no',
    'slave-priority': '100',
    'slave-read-only': 'yes',
    'slave-serve-stale-data': 'yes',
    'slaveof': '',
    'slowlog-log-slower-than': '10000',
    'slowlog-max-len': '128',
    'socket-mark-id': '0',
    'stop-writes-on-bgsave-error': 'yes',
    'stream-node-max-bytes': '4096',
    'stream-node-max-entries': '100',
    'supervised': 'no',
    'syslog-enabled': 'no',
    'syslog-facility': 'local0',
    'syslog-ident': 'redis',
    'tcp-backlog': '511',
    'tcp-keepalive': '300',
    'timeout': '0',
    'tls-auth-clients': 'yes',
    'tls-ca-cert-dir': '',
    'tls-ca-cert-file': '',
    'tls-cert-file': '',
    'tls-ciphers': '',
    'tls-ciphersuites': '',
    'tls-client-cert-file': '',
    'tls-client-key-file': '',
    'tls-client-key-file-pass': '',
    'tls-cluster': 'no',
    'tls-dh-params-file': '',
    'tls-key-file': '',
    'tls-key-file-pass': '',
    'tls-port': '0',
    'tls-prefer-server-ciphers': 'no',
    'tls-protocols': '',
    'tls-replication': 'no',
    'tls-session-cache-size': '20480',
    'tls-session-cache-timeout': '300',
    'tls-session-caching': 'yes',
    'tracking-table-max-keys': '1000000',
    'unixsocket': '',
    'unixsocketperm': '0',
    'zset-max-listpack-entries': '128',
    'zset-max-listpack-value': '64',
    'zset-max-ziplist-entries': '128',
    'zset-max-ziplist-value': '64',    'frtrio-mode': 'strict',
    'frtrio-event-log': '',
}

# alias -> canonical name (both are shown by CONFIG GET, as in Redis)
ALIASES = {
    "slave-announce-ip": "replica-announce-ip",
    "slave-announce-port": "replica-announce-port",
    "slave-ignore-maxmemory": "replica-ignore-maxmemory",
    "slave-lazy-flush": "replica-lazy-flush",
    "slave-priority": "replica-priority",
    "slave-read-only": "replica-read-only",
    "slave-serve-stale-data": "replica-serve-stale-data",
    "slaveof": "replicaof",
    "min-slaves-max-lag": "min-replicas-max-lag",
    "min-slaves-to-write": "min-replicas-to-write",
    "repl-ping-slave-period": "repl-ping-replica-period",
    "cluster-slave-no-failover": "cluster-replica-no-failover",
    "cluster-slave-validity-factor": "cluster-replica-validity-factor",
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
}

IMMUTABLE = frozenset(
    """daemonize io-threads io-threads-do-reads always-show-logo set-proc-title
    syslog-enabled syslog-ident syslog-facility databases supervised pidfile
    cluster-enabled cluster-config-file cluster-port unixsocket unixsocketperm
    logfile tcp-backlog appenddirname appendfilename disable-thp aclfile
    enable-protected-configs enable-debug-command enable-module-command
    oom-score-adj-values ignore-warnings tls-port tls-cluster tls-replication
    jemalloc-bg-thread""".split()
)

ENUMS = {
    "appendfsync": ("always", "everysec", "no"),
    "loglevel": ("debug", "verbose", "notice", "warning"),
    "maxmemory-policy": ("volatile-lru", "volatile-lfu", "volatile-random",
                         "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                         "allkeys-random", "noeviction"),
    "supervised": ("upstart", "systemd", "auto", "no"),
    "repl-diskless-load": ("disabled", "on-empty-db", "swapdb"),
    "cluster-preferred-endpoint-type": ("ip", "hostname", "unknown-endpoint"),
    "enable-debug-command": ("no", "yes", "local"),
    "enable-module-command": ("no", "yes", "local"),
    "enable-protected-configs": ("no", "yes", "local"),
    "shutdown-on-sigint": ("default", "save", "nosave", "now", "force"),
    "shutdown-on-sigterm": ("default", "save", "nosave", "now", "force"),
    "propagation-error-behavior": ("ignore", "panic", "panic-on-replicas"),
    "sanitize-dump-payload": ("no", "yes", "clients"),
    "oom-score-adj": ("no", "yes", "relative", "absolute"),
    "acl-pubsub-default": ("allchannels", "resetchannels"),
    "frtrio-mode": ("strict", "hardened"),
}

# parameters that take memory units (1k, 1mb, 1gb...)
MEMORY = frozenset(
    """maxmemory proto-max-bulk-len client-query-buffer-limit repl-backlog-size
    auto-aof-rewrite-min-size active-defrag-ignore-bytes maxmemory-clients
    hll-sparse-max-bytes stream-node-max-bytes cluster-link-sendbuf-limit
    tracking-table-max-keys""".split()
)

# (min, max) for integer parameters with a narrow range
RANGES = {
    "port": (0, 65535),
    "tls-port": (0, 65535),
    "cluster-port": (0, 65535),
    "cluster-announce-port": (0, 65535),
    "cluster-announce-bus-port": (0, 65535),
    "cluster-announce-tls-port": (0, 65535),
    "databases": (1, 2**31 - 1),
    "hz": (0, 2**31 - 1),
    "maxclients": (1, 2**31 - 1),
    "cluster-node-timeout": (0, 2**63 - 1),
    "cluster-migration-barrier": (0, 2**31 - 1),
    "cluster-replica-validity-factor": (0, 2**31 - 1),
    "timeout": (0, 2**31 - 1),
    "tcp-keepalive": (0, 2**31 - 1),
    "active-expire-effort": (1, 10),
    "io-threads": (1, 128),
    "list-max-listpack-size": (-2**31, 2**31 - 1),
    "replica-announce-port": (0, 65535),
    "proto-max-bulk-len": (1024 * 1024, 2**63 - 1),
    "shutdown-timeout": (0, 2**31 - 1),
}

BOOLS = frozenset(k for k, v in DEFAULTS.items() if v in ("yes", "no") and k not in ENUMS)
INTS = frozenset(
    k for k, v in DEFAULTS.items()
    if k not in BOOLS and k not in ENUMS and (v.lstrip("-").isdigit()) and k not in ("replicaof", "slaveof")
) | MEMORY

# multi-argument parameters: how many words a config-file line may carry
SPECIAL = frozenset(["save", "client-output-buffer-limit", "bind", "oom-score-adj-values",
                     "latency-tracking-info-percentiles", "replicaof", "slaveof",
                     "notify-keyspace-events", "rename-command", "include",
                     "user", "loadmodule"])


class ConfigError(Exception):
    """A bad value: ``message`` is Redis's explanation."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.message = message
        self.name = name


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}


def parse_memory(s: str) -> int | None:
    """Redis's memtoull: a number with an optional unit (k, kb, m, mb, g, gb)."""
    t = s.strip().lower()
    i = len(t)
    while i > 0 and t[i - 1].isalpha():
        i -= 1
    num, unit = t[:i], t[i:]
    if unit not in _UNITS or not num:
        return None
    if num.startswith("-"):
        v = string2ll(num.encode())
        return None if v is None else v * _UNITS[unit]
    if not num.isdigit():
        return None
    return int(num) * _UNITS[unit]


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


class Config:
    """Current values of every parameter, as strings (Redis's rendering)."""

    def __init__(self):
        self.values: dict[str, str] = {canonical(k): v for k, v in DEFAULTS.items()}
        self.listeners: list = []  # callables (name, value) run after a change
        self.config_file: str | None = None

    def get(self, name: str) -> str:
        return self.values[canonical(name)]

    def get_int(self, name: str) -> int:
        v = self.values[canonical(name)]
        m = parse_memory(v)
        if m is not None:
            return m
        return int(v)

    def get_bool(self, name: str) -> bool:
        return self.values[canonical(name)] == "yes"

    def known(self, name: str) -> bool:
        return name in DEFAULTS

    def validate(self, name: str, args: list[str]) -> str:
        """Check a value and return its stored rendering; ConfigError if bad."""
        name = canonical(name)
        if name in SPECIAL or len(args) != 1:
            return self._validate_special(name, args)
        v = args[0]
        if name in BOOLS:
            lv = v.lower()
            if lv not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'", name)
            return lv
        if name in ENUMS:
            lv = v.lower()
            if lv not in ENUMS[name]:
                raise ConfigError(
                    "argument(s) must be one of the following: " + ", ".join(ENUMS[name]),
                    name,
                )
            return lv
        if name in INTS:
            if name in MEMORY:
                n = parse_memory(v)
                if n is None:
                    raise ConfigError("argument must be a memory value", name)
            else:
                n = string2ll(v.encode())
                if n is None:
                    raise ConfigError("argument couldn't be parsed into an integer", name)
            lo, hi = RANGES.get(name, (0 if name in MEMORY else -(2**63), 2**63 - 1))
            if name not in RANGES and name not in MEMORY:
                lo = 0 if not DEFAULTS.get(name, "0").startswith("-") else -(2**31)
            if not lo <= n <= hi:
                raise ConfigError("argument must be between %d and %d inclusive" % (lo, hi), name)
            return str(n)
        return v

    def _validate_special(self, name: str, args: list[str]) -> str:
        if name == "save":
            words = " ".join(args).split()
            if len(words) % 2:
                raise ConfigError("Invalid save parameters", name)
            for w in words:
                if string2ll(w.encode()) is None or int(w) < 0:
                    raise ConfigError("Invalid save parameters", name)
            return " ".join(words)
        if name == "bind":
            words = " ".join(args).split()
            if len(words) > 16:
                raise ConfigError("Too many bind addresses specified.", name)
            return " ".join(words)
        if name == "client-output-buffer-limit":
            words = " ".join(args).split()
            if len(words) % 4:
                raise ConfigError("Wrong number of arguments in buffer limit configuration.", name)
            cur = self._parse_obl(self.values["client-output-buffer-limit"])
            for i in range(0, len(words), 4):
                cls = words[i].lower()
                if cls == "slave":
                    cls = "replica"
                if cls not in ("normal", "replica", "pubsub"):
                    raise ConfigError("Invalid client class specified in buffer limit configuration.", name)
                hard = parse_memory(words[i + 1])
                soft = parse_memory(words[i + 2])
                secs = string2ll(words[i + 3].encode())
                if hard is None or soft is None or secs is None or secs < 0:
                    raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.", name)
                cur[cls] = (hard, soft, secs)
            return self._render_obl(cur)
        if name in ("replicaof",):
            words = " ".join(args).split()
            if words and len(words) != 2:
                raise ConfigError("wrong number of arguments", name)
            return " ".join(words)
        if name == "notify-keyspace-events":
            v = "".join(args)
            if any(ch not in "AgszxlshzetKEmdn$" for ch in v):
                raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.", name)
            return v
        if name == "oom-score-adj-values":
            words = " ".join(args).split()
            if len(words) != 3:
                raise ConfigError("Invalid oom-score-adj-values", name)
            return " ".join(words)
        if name == "latency-tracking-info-percentiles":
            return " ".join(" ".join(args).split())
        if len(args) != 1:
            raise ConfigError("wrong number of arguments", name)
        return args[0]

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

    def output_buffer_limits(self) -> dict:
        return self._parse_obl(self.values["client-output-buffer-limit"])

    def set(self, name: str, value: str) -> None:
        self.values[canonical(name)] = value
        for fn in self.listeners:
            fn(canonical(name), value)

    def matching(self, pattern: str) -> list[tuple[str, str]]:
        """(name, value) pairs whose name matches the glob pattern; aliases
        included, as CONFIG GET shows them."""
        out = []
        pat = pattern.lower()
        exact = not any(ch in pat for ch in "*?[")
        if exact:
            if pat in DEFAULTS:
                return [(pat, self.values[canonical(pat)])]
            return []
        for k in DEFAULTS:
            if fnmatch.fnmatchcase(k, pat):
                out.append((k, self.values[canonical(k)]))
        return out


def parse_config_text(text: str) -> list[tuple[int, str, list[str]]]:
    """Lines of a redis.conf as (line number, directive, args); raises
    ConfigError with ``name`` set to the line number for unbalanced quotes."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        words = split_args(s.encode())
        if words is None:
            raise ConfigError("Unbalanced quotes in configuration line", str(lineno))
        if not words:
            continue
        out.append((lineno, words[0].decode().lower(), [w.decode() for w in words[1:]]))
    return out
