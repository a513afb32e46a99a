"""maxmemory eviction and per-key access tracking (Redis 7.0's evict.c), pure.

Per-key access data
-------------------
Redis keeps 24 bits per object (``robj->lru``): under an LRU policy (and
``noeviction``, ``*-random``, ``volatile-ttl``) the LRU clock of the last
access, seconds modulo 2**24; under an LFU policy 16 bits of "last decrement
time" in minutes and an 8-bit logarithmic access counter. frtrio stores that
same 24-bit integer as the value of the key's entry in the per-slot key index
(``Db.slot_keys[slot][key]``), an entry that exists anyway: no object per key
is added. Under LRU every key touched in the same second points at the same
int object (``Db.stamp``); an access is one store.

Eviction
--------
``perform_evictions`` is Redis's performEvictions: while the counted memory
is over ``maxmemory``, pick a key by the policy (the LRU/LFU/TTL policies
sample ``maxmemory-samples`` keys per database into a pool of 16 best
candidates; the random policies pick one random key) and delete it, counting
``evicted_keys``, notifying ``evicted`` and propagating DEL (UNLINK with
``lazyfree-lazy-eviction``). Redis bounds one call by time
(``maxmemory-eviction-tenacity``); a pure core has no running clock, so the
bound is a number of keys derived from the same tenacity curve (one key per
10 microseconds of Redis's budget, at least 16); past it the cycle goes on
from the cron (Redis's eviction time event).

Memory accounting
-----------------
Redis decides on ``zmalloc_used_memory()``. frtrio cannot ask its allocator
that cheaply, so it counts what the dataset would cost Redis: per key a
dict entry, the key's sds and the value object (``key_cost``), kept as a
running sum per database (``Db.mem``) that moves on every add, overwrite and
delete; expires cost one dict entry each (``len(db.expires)``). Strings count
their length. An aggregate (list, hash, set, zset, stream) counts a header
plus a fixed cost per element (``AGG_ELEM``: one ``len()``, so it stays O(1)
whatever the size); it grows in place, so what it was last charged is kept
per key (``Db.agg``) and recharged after each write of the key
(``Db.recharge``, from the commands' ``modified``): deleting, overwriting,
expiring, evicting or flushing the key takes back exactly what was charged,
and the sum never drifts.
The server adds the normal and pub/sub clients' buffers, recounted by the
cron numclients/hz clients a tick (``Server.resize_client_buffers``).
"""

from __future__ import annotations

from itertools import islice

from frtrio.cluster.slots import key_slot

LRU_CLOCK_MAX = (1 << 24) - 1
LRU_CLOCK_RESOLUTION = 1000  # ms
LFU_INIT_VAL = 5
EVPOOL_SIZE = 16

# policy flags (server.h's MAXMEMORY_FLAG_*)
F_LRU = 1
F_LFU = 2
F_ALLKEYS = 4
F_RANDOM = 8
F_TTL = 16

POLICIES = {
    "noeviction": 0,
    "volatile-lru": F_LRU,
    "volatile-lfu": F_LFU,
    "volatile-random": F_RANDOM,
    "volatile-ttl": F_TTL,
    "allkeys-lru": F_LRU | F_ALLKEYS,
    "allkeys-lfu": F_LFU | F_ALLKEYS,
    "allkeys-random": F_RANDOM | F_ALLKEYS,
}

EVICT_OK = 0
EVICT_RUNNING = 1
EVICT_FAIL = 2

# the fixed part of used_memory (what an empty Redis 7.0 reports, roughly)
BASE_MEMORY = 880 * 1024
DICT_ENTRY = 24 + 8  # a dictEntry plus its bucket pointer
OBJ_HEADER = 16  # robj
SDS_HEADER = 8  # sds header and NUL, with the allocator's rounding on average
EXPIRE_ENTRY = DICT_ENTRY
CONTAINER_COST = 96  # a small aggregate value (listpack / quicklist header)
# the modelled bytes per element of an aggregate, by type name: roughly what
# Redis 7.0 spends on a short element in its hashtable / skiplist / quicklist
# encodings (a dictEntry, its bucket and the element's sds; for a hash field
# and value; for a zset the skiplist node too). A model: MEMORY USAGE
# (frtrio/core/memsize.py) estimates one value closer, at O(samples) cost.
AGG_HEADER = OBJ_HEADER + CONTAINER_COST
AGG_ELEM = {b"set": 48, b"hash": 80, b"list": 16, b"zset": 96, b"stream": 32}


def policy_flags(name: str) -> int:
    return POLICIES.get(name, 0)


# --- LRU -----------------------------------------------------------------------


def lru_clock(now_ms: int) -> int:
    """Redis's getLRUClock: seconds, modulo 2**24."""
    return (now_ms // LRU_CLOCK_RESOLUTION) & LRU_CLOCK_MAX


def idle_ms(clock: int, lru: int) -> int:
    """Redis's estimateObjectIdleTime (the clock wraps every 194 days)."""
    if clock >= lru:
        return (clock - lru) * LRU_CLOCK_RESOLUTION
    return (clock + (LRU_CLOCK_MAX - lru)) * LRU_CLOCK_RESOLUTION


# --- LFU -----------------------------------------------------------------------


def lfu_minutes(now_ms: int) -> int:
    """Redis's LFUGetTimeInMinutes: unix minutes modulo 2**16."""
    return (now_ms // 60000) & 65535


def lfu_elapsed(now_min: int, ldt: int) -> int:
    """Redis's LFUTimeElapsed."""
    if now_min >= ldt:
        return now_min - ldt
    return 65535 - ldt + now_min


def lfu_log_incr(counter: int, log_factor: int, r: float) -> int:
    """Redis's LFULogIncr, with ``r`` the uniform draw in [0, 1]."""
    if counter == 255:
        return 255
    baseval = counter - LFU_INIT_VAL
    if baseval < 0:
        baseval = 0
    p = 1.0 / (baseval * log_factor + 1)
    return counter + 1 if r < p else counter


def lfu_decr(value: int, now_min: int, decay_time: int) -> int:
    """Redis's LFUDecrAndReturn: the counter of a 24-bit LFU value, decayed
    by one per ``decay_time`` minutes since its last decrement time."""
    counter = value & 255
    if decay_time:
        periods = lfu_elapsed(now_min, value >> 8) // decay_time
        if periods:
            counter = 0 if periods > counter else counter - periods
    return counter


def lfu_init(now_min: int) -> int:
    """The LFU value of a new key (createObject)."""
    return (now_min << 8) | LFU_INIT_VAL


def lfu_touch(value, now_min: int, log_factor: int, decay_time: int, r: float) -> int:
    """Redis's updateLFU: decay, then a logarithmic increment, stamped now.
    ``value`` None (a key stamped before the policy switched) counts as new."""
    if value is None:
        value = lfu_init(now_min)
    counter = lfu_decr(value, now_min, decay_time)
    counter = lfu_log_incr(counter, log_factor, r)
    return (now_min << 8) | counter


def restored_access(pflags: int, freq: int, idle_s: int, now_ms: int):
    """Redis's objectSetLRUOrLFU for RESTORE's FREQ / IDLETIME: the key's
    access value, or None (the option does not apply to the policy)."""
    if pflags & F_LFU:
        if freq >= 0:
            return (lfu_minutes(now_ms) << 8) | freq
        return None
    if idle_s >= 0:
        clock = lru_clock(now_ms)
        lru_abs = clock - idle_s
        if lru_abs < 0:
            lru_abs = (clock + LRU_CLOCK_MAX // 2) % LRU_CLOCK_MAX
        return lru_abs
    return None


# --- memory accounting ------------------------------------------------------------


def value_cost(v) -> int:
    """A value's bytes: a string its length plus the object and sds headers
    (the same constant at any length, so that a change of a string's value
    moves the sum by the change of its length); an aggregate a header plus
    a fixed cost per element (O(1): ``len`` of the container)."""
    t = type(v)
    if t is bytes or t is bytearray:
        return OBJ_HEADER + SDS_HEADER + len(v)
    per = _PER_CLASS.get(t)
    if per is None:
        per = _PER_CLASS[t] = AGG_ELEM.get(getattr(t, "type_name", None), 0)
        if per not in _COSTS:
            _COSTS[per] = [AGG_HEADER + per * n for n in range(_SHARED_COSTS)]
    if not per:
        return AGG_HEADER
    n = len(v)
    if n < _SHARED_COSTS:
        return _COSTS[per][n]
    return AGG_HEADER + per * n


_PER_CLASS: dict = {}  # value class -> its AGG_ELEM (filled on first sight)
# AGG_ELEM -> the costs of 0.._SHARED_COSTS-1 elements: one int object each,
# shared by every small aggregate's entry in Db.agg (a fresh int above 256
# is 32 bytes per key)
_SHARED_COSTS = 256
_COSTS: dict = {}


def key_cost(key: bytes, v) -> int:
    """What one key costs in the accounting (dict entry, key sds, value)."""
    return key_overhead(key) + value_cost(v)


def key_overhead(key: bytes) -> int:
    """A key's cost without its value: the dict entry and the key's sds."""
    return DICT_ENTRY + SDS_HEADER + len(key)


def dataset_memory(dbs) -> int:
    n = 0
    for db in dbs:
        n += db.mem
        if db.expires:
            n += EXPIRE_ENTRY * len(db.expires)
    return n


def time_limit_keys(tenacity: int) -> int | None:
    """Redis's evictionTimeLimitUs as a key budget (one key per 10 us, at
    least 16); None: no limit (tenacity 100)."""
    if tenacity <= 10:
        us = 50 * tenacity
    elif tenacity < 100:
        us = int(500.0 * pow(1.15, tenacity - 10.0))
    else:
        return None
    return max(16, us // 10)


# --- sampling -------------------------------------------------------------------


def _nth(d, i: int):
    """The i-th key of a dict (insertion order: deterministic)."""
    return next(islice(d, i, None))


def random_key(db, rng, volatile: bool):
    """One random key of the db (of its expires dict when ``volatile``), or
    None. Keys are drawn through the per-slot index: a random slot that holds
    keys, then a random key in it. Volatile keys: drawn from all keys when
    most keys are volatile, else among the first 4096 of the expires dict."""
    if volatile:
        ex = db.expires
        n = len(ex)
        if not n:
            return None
        if n > 64 and n * 4 >= len(db.data):
            for _ in range(16):
                k = random_key(db, rng, False)
                if k in ex:
                    return k
        return _nth(ex, rng.randrange(min(n, 4096)))
    sk = db.slot_keys
    ns = len(sk)
    if not ns:
        return None
    if ns <= 256:
        d = sk[_nth(sk, rng.randrange(ns))]
    else:
        s = rng.randrange(16384)
        d = sk.get(s)
        while not d:
            s = (s + 1) & 16383
            d = sk.get(s)
    n = len(d)
    return _nth(d, rng.randrange(n)) if n > 1 else next(iter(d))


class EvictionPool:
    """Redis's EvictionPoolLRU: up to 16 candidates sorted by ascending
    idle score (the best to evict is last). Entries are [idle, dbid, key]."""

    __slots__ = ("entries",)

    def __init__(self):
        self.entries: list[list] = []

    def insert(self, idle: int, dbid: int, key: bytes) -> None:
        """evictionPoolPopulate's insertion of one sample."""
        e = self.entries
        k = 0
        n = len(e)
        while k < n and e[k][0] < idle:
            k += 1
        if k == 0 and n == EVPOOL_SIZE:
            return  # worse than everything in a full pool
        if n < EVPOOL_SIZE:
            e.insert(k, [idle, dbid, key])
        else:
            # full: drop the worst (first) element, insert at k-1
            del e[0]
            e.insert(k - 1, [idle, dbid, key])

    def pop_best(self):
        """The best candidate (removed), or None."""
        if not self.entries:
            return None
        return self.entries.pop()


def score(server, db, key: bytes, pflags: int, clock: int, now_min: int) -> int:
    """The pool's idle score of a key (higher: evict first)."""
    if pflags & F_TTL:
        return (1 << 64) - 1 - db.expires[key]
    v = db.access_value(key)
    if pflags & F_LRU:
        return idle_ms(clock, v if v is not None else clock)
    cfg = server.config
    if v is None:
        v = lfu_init(now_min)
    return 255 - lfu_decr(v, now_min, cfg.get_int("lfu-decay-time"))


def _hidden(server) -> frozenset:
    """Slots whose keys may not be evicted: those an atomic slot migration
    is importing here (Redis 8.4 never evicts importing keys)."""
    core = server.cluster
    return core.migrations.hidden_slots if core is not None else frozenset()


def populate(server, pool: EvictionPool, db, pflags: int, clock: int, now_min: int) -> None:
    """evictionPoolPopulate: sample maxmemory-samples keys of one db."""
    rng = server.rng
    volatile = not pflags & F_ALLKEYS
    n = server.config.get_int("maxmemory-samples")
    d = db.expires if volatile else db.data
    hidden = _hidden(server)
    if len(d) <= n:
        # (dictGetSomeKeys on a dict this small returns all of it)
        for key in d:
            if not hidden or key_slot(key) not in hidden:
                pool.insert(score(server, db, key, pflags, clock, now_min), db.id, key)
        return
    seen = set()
    for _ in range(n):
        key = random_key(db, rng, volatile)
        if key is None:
            break
        if key in seen or (hidden and key_slot(key) in hidden):
            continue  # (dictGetSomeKeys never returns one entry twice)
        seen.add(key)
        pool.insert(score(server, db, key, pflags, clock, now_min), db.id, key)


def pick_key(server, pflags: int):
    """The next (db, key) to evict under the policy, or None."""
    dbs = server.dbs
    volatile = not pflags & F_ALLKEYS
    if pflags & F_RANDOM:
        nd = len(dbs)
        hidden = _hidden(server)
        for _ in range(nd):
            server.evict_next_db = (server.evict_next_db + 1) % nd
            db = dbs[server.evict_next_db]
            if db.expires if volatile else db.data:
                for _try in range(16 if hidden else 1):
                    key = random_key(db, server.rng, volatile)
                    if not hidden or key_slot(key) not in hidden:
                        return db, key
        return None
    pool = server.evict_pool
    clock = lru_clock(server.now_ms)
    now_min = lfu_minutes(server.now_ms)
    while True:
        total = 0
        for db in dbs:
            d = db.expires if volatile else db.data
            if d:
                populate(server, pool, db, pflags, clock, now_min)
                total += len(d)
        if not total or not pool.entries:
            return None  # (nothing, or only keys being imported)
        while True:
            e = pool.pop_best()
            if e is None:
                break
            db = dbs[e[1]]
            if e[2] in (db.expires if volatile else db.data):
                return db, e[2]


def over_limit(server) -> int:
    """Bytes to free (0: under maxmemory)."""
    used = server.counted_memory()
    mm = server.maxmemory
    return used - mm if used > mm else 0


def perform_evictions(server) -> int:
    """Redis's performEvictions: EVICT_OK, EVICT_RUNNING (the cycle goes on
    from the cron) or EVICT_FAIL (nothing can be evicted, or noeviction)."""
    if not server.evictions_safe():
        return EVICT_OK
    tofree = over_limit(server)
    if not tofree:
        return EVICT_OK
    pflags = server.evict_policy
    if not pflags:
        return EVICT_FAIL
    budget = time_limit_keys(server.config.get_int("maxmemory-eviction-tenacity"))
    freed = 0
    keys_freed = 0
    while freed < tofree:
        picked = pick_key(server, pflags)
        if picked is None:
            return EVICT_FAIL
        db, key = picked
        before = server.counted_memory()
        server.evict_key(db, key)
        freed += before - server.counted_memory()
        keys_freed += 1
        if keys_freed % 16 == 0 and budget is not None and keys_freed >= budget:
            server.evict_running = True  # startEvictionTimeProc
            return EVICT_RUNNING
    return EVICT_RUNNING if server.evict_running else EVICT_OK
