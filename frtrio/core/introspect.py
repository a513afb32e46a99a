"""What the server records about its own speed (pure): the slow log, the
latency monitor's event time series and the per-command latency histograms.

Redis keeps these in slowlog.c, latency.c and in each command's
``latency_histogram`` (an HdrHistogram, 1 ns .. 1 s, 2 significant digits).
The engine measures each command once (one clock read before and one after
the handler) and hands the duration here; the checks on the command path are
compares against thresholds cached from the configuration, so a server that
logs nothing pays almost nothing.

Times: a duration is microseconds (the engine's monotonic clock, virtual in
the simulator); an entry's timestamp is unix seconds from the server's
wall-clock reader. Nothing here reads a clock itself.
"""

from __future__ import annotations

# --- the slow log -------------------------------------------------------------

SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128
REDACTED = b"(redacted)"

# CONFIG SET parameters whose values Redis never shows (SENSITIVE_CONFIG)
_SENSITIVE_CONFIGS = frozenset([b"masteruser", b"masterauth", b"requirepass"])


def _redact_auth(argv):
    # AUTH [user] pass: the password always, the user too with 3 args
    if len(argv) > 3:
        return None
    return [argv[0]] + [REDACTED] * (len(argv) - 1)


def _redact_acl_setuser(argv):
    if len(argv) < 3:
        return None
    return argv[:2] + [REDACTED] * (len(argv) - 2)


def _redact_config_set(argv):
    n = len(argv)
    if n < 4 or n % 2:
        return None  # (refused before looking at the pairs)
    out = None
    for i in range(2, n, 2):
        if argv[i].lower() in _SENSITIVE_CONFIGS:
            if out is None:
                out = list(argv)
            out[i + 1] = REDACTED
    return out


def _redact_migrate(argv):
    # MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k...]
    out = None
    j = 6
    n = len(argv)
    while j < n:
        more = n - 1 - j
        o = argv[j].lower()
        if o in (b"copy", b"replace"):
            pass
        elif o == b"auth":
            if not more:
                break
            j += 1
            out = out or list(argv)
            out[j] = REDACTED
        elif o == b"auth2":
            if more < 2:
                break
            out = out or list(argv)
            out[j + 1] = out[j + 2] = REDACTED
            j += 2
        else:
            break  # KEYS (the rest are keys) or a syntax error
        j += 1
    return out


def _redact_hello(argv):
    # HELLO [protover [AUTH user pass] [SETNAME name]]
    out = None
    j = 2
    n = len(argv)
    while j < n:
        more = n - 1 - j
        o = argv[j].lower()
        if o == b"auth" and more >= 2:
            out = out or list(argv)
            out[j + 1] = out[j + 2] = REDACTED
            j += 3
        elif o == b"setname" and more:
            j += 2
        else:
            break
    return out


# fullname -> argv -> the argv with the secrets replaced (None: nothing to hide)
REDACTORS = {
    "auth": _redact_auth,
    "acl|setuser": _redact_acl_setuser,
    "config|set": _redact_config_set,
    "migrate": _redact_migrate,
    "hello": _redact_hello,
}


def redact(fullname: str, argv: list) -> list:
    """The argument vector as Redis shows it in the slow log and to MONITOR
    (the arguments its command implementations redact)."""
    fn = REDACTORS.get(fullname)
    if fn is None:
        return argv
    r = fn(argv)
    return argv if r is None else r


def trim_argv(argv: list) -> list:
    """Redis's slowlogCreateEntry: at most 32 arguments (the last one then
    says how many more there were), strings cut at 128 bytes."""
    argc = len(argv)
    n = min(argc, SLOWLOG_ENTRY_MAX_ARGC)
    out = []
    for j in range(n):
        if n != argc and j == n - 1:
            out.append(b"... (%d more arguments)" % (argc - n + 1))
            break
        a = argv[j]
        if len(a) > SLOWLOG_ENTRY_MAX_STRING:
            a = a[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % (
                len(a) - SLOWLOG_ENTRY_MAX_STRING)
        out.append(bytes(a))
    return out


class SlowLog:
    __slots__ = ("entries", "next_id", "max_len")

    def __init__(self, max_len: int = 128):
        self.entries: list = []  # newest last: [id, unix s, usec, argv, peer, name]
        self.next_id = 0
        self.max_len = max_len

    def push(self, fullname: str, argv: list, duration_us: int, unix_s: int,
             peer: str, name: bytes) -> None:
        self.entries.append([self.next_id, unix_s, duration_us,
                             trim_argv(redact(fullname, argv)),
                             peer.encode("latin-1", "replace"), bytes(name)])
        self.next_id += 1
        self.trim()

    def trim(self) -> None:
        extra = len(self.entries) - self.max_len
        if extra > 0:
            del self.entries[:extra]

    def reset(self) -> None:
        self.entries.clear()

    def newest(self, count: int) -> list:
        if count <= 0:
            return []
        return self.entries[::-1][:count]


# --- the latency monitor --------------------------------------------------------

LATENCY_TS_LEN = 160


class TimeSeries:
    """One event's history: a ring of (unix s, ms) samples, at most one a
    second (the worst of that second), and the all-time max."""

    __slots__ = ("samples", "idx", "max")

    def __init__(self):
        self.samples = [(0, 0)] * LATENCY_TS_LEN
        self.idx = 0
        self.max = 0

    def add(self, unix_s: int, ms: int) -> None:
        if ms > self.max:
            self.max = ms
        prev = (self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN
        t, lat = self.samples[prev]
        if t == unix_s:
            if ms > lat:
                self.samples[prev] = (t, ms)
            return
        self.samples[self.idx] = (unix_s, ms)
        self.idx = (self.idx + 1) % LATENCY_TS_LEN

    def ordered(self) -> list:
        """The samples oldest first (slots never written left out)."""
        out = []
        for j in range(LATENCY_TS_LEN):
            s = self.samples[(self.idx + j) % LATENCY_TS_LEN]
            if s[0] != 0:
                out.append(s)
        return out

    def latest(self):
        return self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]


class LatencyMonitor:
    def __init__(self):
        self.events: dict[str, TimeSeries] = {}  # in creation order

    def add(self, event: str, ms: int, unix_s: int) -> None:
        ts = self.events.get(event)
        if ts is None:
            ts = self.events[event] = TimeSeries()
        ts.add(unix_s, ms)

    def reset(self, event: str | None = None) -> int:
        if event is None:
            n = len(self.events)
            self.events.clear()
            return n
        n = 0
        for name in list(self.events):
            if name.lower() == event.lower():
                del self.events[name]
                n += 1
        return n

    def analyze(self, event: str, now_s: int) -> dict:
        """Redis's analyzeLatencyForEvent."""
        ts = self.events.get(event)
        st = dict(all_time_high=ts.max if ts else 0, avg=0, min=0, max=0, mad=0,
                  samples=0, period=0)
        if ts is None:
            return st
        total = 0
        oldest = 0
        lats = []
        for t, lat in ts.samples:
            if t == 0:
                continue
            lats.append(lat)
            total += lat
            if oldest == 0 or t < oldest:
                oldest = t
        if lats:
            st["samples"] = len(lats)
            st["min"], st["max"] = min(lats), max(lats)
            st["avg"] = total // len(lats)
            st["period"] = (now_s - oldest) or 1
            st["mad"] = sum(abs(st["avg"] - x) for x in lats) // len(lats)
        return st


# --- per-command latency histograms (HdrHistogram, as Redis configures it) -----
#
# lowest 1, highest 1e9, 2 significant figures: 256 sub-buckets a bucket (the
# upper 128 of each are that bucket's own counts), unit magnitude 0, 23
# buckets, 3072 counters. Values are nanoseconds.

HIST_MIN = 1
HIST_MAX = 1_000_000_000
_SUB_HALF_MAG = 7
_SUB_HALF = 128
_SUB_MASK = 255
COUNTS_LEN = 24 * _SUB_HALF


def hist_index(v: int) -> int:
    b = (v | _SUB_MASK).bit_length() - 8
    return ((b + 1) << _SUB_HALF_MAG) + (v >> b) - _SUB_HALF


def _value_at_index(idx: int) -> int:
    b = (idx >> _SUB_HALF_MAG) - 1
    sub = (idx & (_SUB_HALF - 1)) + _SUB_HALF
    if b < 0:
        sub -= _SUB_HALF
        b = 0
    return sub << b


def _bucket_of(v: int):
    b = (v | _SUB_MASK).bit_length() - 8
    return b, v >> b


def lowest_equivalent(v: int) -> int:
    b, sub = _bucket_of(v)
    return sub << b


def highest_equivalent(v: int) -> int:
    b, sub = _bucket_of(v)
    adj = b + 1 if sub >= 256 else b
    return (sub << b) + (1 << adj) - 1


class Histogram(dict):
    """One command's latency histogram. Recording is one dict update on the
    command path: {microseconds: calls}; the HdrHistogram counters (by
    bucket index, in nanoseconds) are derived when someone asks."""

    __slots__ = ()

    def record_us(self, us: int) -> None:
        self[us] = self.get(us, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.values())

    @property
    def counts(self) -> dict:
        out: dict[int, int] = {}
        for us, n in self.items():
            v = us * 1000
            if v < HIST_MIN:
                v = HIST_MIN
            elif v > HIST_MAX:
                v = HIST_MAX
            b = (v | _SUB_MASK).bit_length() - 8
            i = ((b + 1) << _SUB_HALF_MAG) + (v >> b) - _SUB_HALF
            out[i] = out.get(i, 0) + n
        return out

    def value_at_percentile(self, p: float) -> int:
        """hdr_value_at_percentile (ns)."""
        req = p if p < 100.0 else 100.0
        want = int((req / 100) * self.total + 0.5)
        if want < 1:
            want = 1
        acc = 0
        v = 0
        counts = self.counts
        for i in sorted(counts):
            acc += counts[i]
            if acc >= want:
                v = _value_at_index(i)
                break
        if p == 0.0:
            return lowest_equivalent(v)
        return highest_equivalent(v)

    def cdf(self) -> list:
        """LATENCY HISTOGRAM's histogram_usec: (usec, cumulative count)
        pairs, as Redis walks the histogram with a log iterator (first
        bucket 1024 ns, base 2) and prints each step that added calls."""
        counts = self.counts
        total = self.total
        out = []
        idx = -1
        cum = 0
        value = 0
        highest = 0
        level = 1024
        level_low = lowest_equivalent(level)
        prev = 0
        while True:
            # one hdr_iter_next of the log iterator
            if not (cum < total or (idx < COUNTS_LEN and _value_at_index(idx + 1) > level_low)):
                break
            while True:
                if value >= level_low:
                    level *= 2
                    level_low = lowest_equivalent(level) if level <= (1 << 62) else level
                    break
                idx += 1
                if idx >= COUNTS_LEN:
                    break
                cum += counts.get(idx, 0)
                value = _value_at_index(idx)
                highest = highest_equivalent(value)
            if cum > prev:
                out.append((highest // 1000, cum))
            prev = cum
            if idx >= COUNTS_LEN:
                break
            if cum >= total and not counts:
                break
        return out


# --- lazy free ------------------------------------------------------------------------------

LAZYFREE_THRESHOLD = 64


def free_effort(v, cfg) -> int:
    """Redis's lazyfreeGetFreeEffort: how many allocations freeing ``v``
    takes (1 for a value in one block: a string, an intset, a listpack)."""
    if type(v) is bytes:
        return 1
    tn = v.type_name
    if tn == b"list":
        # quicklist nodes of up to 8 KiB: estimated from the first elements
        n = len(v)
        if n <= 64:
            return 1
        sample = [len(v[i]) + 2 for i in range(0, n, max(1, n // 16))][:16]
        return max(1, (n * (sum(sample) // len(sample)) + 8191) // 8192)
    if tn in (b"set", b"hash", b"zset"):
        from frtrio.commands.objectcmd import encoding_name

        if len(v) <= LAZYFREE_THRESHOLD:
            return len(v)  # (a small one is freed at once whatever its encoding)
        if encoding_name(v, cfg) in ("hashtable", "skiplist"):
            return len(v)
        return 1
    if tn == b"stream":
        effort = len(v.nodes) + 1  # the macro nodes (and the rax's root)
        if v.groups:
            first = next(iter(v.groups.values()))
            effort += len(v.groups) * (1 + len(first.pel))
        return effort
    return 1


class LazyFree:
    """Values (and whole keyspaces) that UNLINK, FLUSHALL ASYNC and the
    lazyfree-lazy-* settings hand over to be freed later, off the command
    path: the node's cron drops them (Redis's lazyfree background thread).
    ``pending`` and ``freed`` are INFO's lazyfree_pending_objects and
    lazyfreed_objects."""

    def __init__(self):
        self.jobs: list = []  # (what holds the memory, how many objects it counts)
        self.pending = 0
        self.freed = 0

    def free_async(self, v, cfg) -> bool:
        """Redis's freeObjAsync: a value worth it is queued, else it is freed
        at once (by the caller dropping it). Returns whether it was queued."""
        if free_effort(v, cfg) > LAZYFREE_THRESHOLD:
            self.jobs.append((v, 1))
            self.pending += 1
            return True
        return False

    def free_db_async(self, data: dict, expires: dict) -> None:
        """Redis's emptyDbAsync: the old tables go to the background whole."""
        self.jobs.append(((data, expires), len(data)))
        self.pending += len(data)

    def free_job_async(self, job, count: int) -> None:
        """A job that frees ``count`` objects itself (``job.free()``): an
        atomic slot migration's background trim of whole slots."""
        self.jobs.append((job, count))
        self.pending += count

    def drain(self) -> int:
        """Free everything queued (the shell calls this from its cron)."""
        n = 0
        while self.jobs:
            job, count = self.jobs.pop(0)
            if getattr(type(job), "lazyfree_job", False):
                job.free()
            del job
            self.pending -= count
            self.freed += count
            n += count
        return n
