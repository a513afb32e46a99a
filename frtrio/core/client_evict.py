"""Client memory and client eviction (pure): Redis 7.0's
getClientMemoryUsage, its memory-usage buckets and evictClients
(``maxmemory-clients``).

A client's memory is what CLIENT LIST shows as ``tot-mem``: its query buffer,
the arguments of the command it is running (or has half read), its output
buffer beyond the fixed 16 KB reply buffer, what MULTI has queued, its
WATCHed keys, its pub/sub subscriptions and tracking prefixes, and a fixed
per-client part, each modelled on what redis-server 7.0 allocates (64-bit).

With ``maxmemory-clients`` on (bytes, or ``N%`` of maxmemory; at least 128
KB), the normal and pub/sub clients' memory is summed as it changes: after
a read, before and after each command, after a write and in the cron. When
the sum reaches the limit, clients are evicted, the largest first: clients
sit in buckets by the power of two of their memory (32 KB and below share
the lowest, 8 GB and above the highest), and eviction takes the highest
non-empty bucket's clients in the order they entered it, until the sum is
below the limit. Clients with CLIENT NO-EVICT on, replicas and a replica's
master link are never evicted (the no-evict ones still count in the sum).
An evicted client is closed at once, without a reply; INFO's
``evicted_clients`` counts them and the log says "Evicting client: ...".
"""

from __future__ import annotations

import logging

from frtrio.core.client import F
from frtrio.core.memsize import sds_alloc

log = logging.getLogger("frtrio.server")

# Redis's client struct (its query and reply buffers: frtrio/core/iobufs.py)
CLIENT_STRUCT = 768  # (jemalloc's size class of struct client)
PTR = 8
LIST_NODE = 24
DICT_ENTRY = 24
WATCHED_KEY = 32  # struct watchedKey
MULTI_CMD = 24  # struct multiCmd
RAX_NODE_COST = 4 * PTR  # sizeof(raxNode) * sizeof(raxNode*), Redis's estimate
MIN_LIMIT = 128 * 1024
BUCKET_MIN_LOG = 15
BUCKET_MAX_LOG = 33
NBUCKETS = BUCKET_MAX_LOG - BUCKET_MIN_LOG + 1


def _dict_slots(n: int) -> int:
    """Slots of a Redis dict holding n entries (power of two, 4 at least)."""
    if not n:
        return 0
    s = 4
    while s < n:
        s <<= 1
    return s


# Redis's reply list: what overflows the reply buffer goes into nodes of 16 KB
# asked for (jemalloc's 20 KB class): each has this much room and counts for
# its room plus its header and list node (CLIENT LIST omem, the limits)
REPLY_NODE_ROOM = 20464
REPLY_NODE_COST = 20504


def reply_list_memory(n: int) -> int:
    """What ``n`` bytes of replies beyond the reply buffer count for."""
    if n <= 0:
        return 0
    return -(-n // REPLY_NODE_ROOM) * REPLY_NODE_COST


def obuf_memory(c) -> int:
    """The output buffer's counted part (CLIENT LIST ``omem``): what does not
    fit the reply buffer (``rb_size``, frtrio/core/iobufs.py), in reply
    list nodes."""
    return reply_list_memory(c.out_bytes - c.rb_size)


def querybuf_memory(c) -> int:
    """The query buffer's allocation as Redis would have it
    (frtrio/core/iobufs.py), at least what is buffered or reserved for a
    big argument being read."""
    return sds_alloc(max(c.qb_alloc, c.qbuf, c.qbuf_alloc), allow_type5=False)


def multi_memory(c) -> int:
    """Redis's multiStateMemOverhead: queued commands' arguments, WATCHed
    keys, the queue's slots."""
    mem = 0
    q = c.multi
    if q:
        for item in q:
            argv = item[1] if isinstance(item, tuple) else item
            mem += sum(map(len, argv)) + PTR * len(argv)
        alloc = 2
        while alloc < len(q):
            alloc <<= 1
        mem += alloc * MULTI_CMD
    if c.watched:
        mem += len(c.watched) * (LIST_NODE + WATCHED_KEY)
    return mem


def pubsub_memory(c) -> int:
    mem = len(c.psubscriptions) * LIST_NODE
    for d in (c.subscriptions, c.ssubscriptions):
        if d:
            mem += len(d) * DICT_ENTRY + _dict_slots(len(d)) * PTR
    return mem


def tracking_memory(c) -> int:
    t = c.tracking
    prefixes = getattr(t, "prefixes", None) if t is not None else None
    if not prefixes:
        return 0
    # the prefixes' radix tree: about a node per prefix and per shared
    # branch point (Redis's own estimate is nodes * 32 bytes)
    return (len(prefixes) + 1) * RAX_NODE_COST * 2


def client_memory(c, extra: int = 0) -> int:
    """CLIENT LIST's ``tot-mem`` of client ``c`` (``extra``: the running
    command's argv array, while it runs)."""
    mem = obuf_memory(c) + querybuf_memory(c) + CLIENT_STRUCT + c.rb_size
    mem += c.argv_mem + c.argv_arr + extra + multi_memory(c)
    if c.subscriptions or c.psubscriptions or c.ssubscriptions:
        mem += pubsub_memory(c)
    if c.tracking is not None:
        mem += tracking_memory(c)
    return mem


PEAK_SLOTS = 8  # Redis's CLIENTS_PEAK_MEM_USAGE_SLOTS: seconds remembered


def input_usage(c) -> int:
    """What Redis's clientsCronTrackExpansiveClients counts as a client's
    input memory: the query buffer's allocation (none when empty, as Redis
    frees an idle client's), the arguments and their array."""
    mem = querybuf_memory(c) if c.qbuf or c.qbuf_alloc else 0
    if c.argv_mem:
        mem += c.argv_mem + 16
    return mem


class PeakTracker:
    """INFO's client_recent_max_input_buffer / client_recent_max_output_buffer:
    the largest client input and output memory the cron saw in each of the
    last 8 seconds (it sees numclients/hz clients a tick, as Redis does)."""

    def __init__(self):
        self.inp = [0] * PEAK_SLOTS
        self.out = [0] * PEAK_SLOTS
        self.second = -1
        self.slot = 0

    def tick(self, now_ms: int) -> None:
        """A cron call: the slot of the current second (a new second's slot
        starts over, and so do any skipped ones)."""
        sec = now_ms // 1000
        if sec != self.second:
            slot = sec % PEAK_SLOTS
            gap = min(PEAK_SLOTS, sec - self.second) if self.second >= 0 else PEAK_SLOTS
            for k in range(gap):
                i = (slot - k) % PEAK_SLOTS
                self.inp[i] = self.out[i] = 0
            self.second = sec
            self.slot = slot

    def see(self, c) -> None:
        """A client the cron visits (Redis's clientsCronTrackExpansiveClients)."""
        i = input_usage(c)
        if i > self.inp[self.slot]:
            self.inp[self.slot] = i
        o = obuf_memory(c)
        if o > self.out[self.slot]:
            self.out[self.slot] = o

    def sample(self, clients, now_ms: int) -> None:
        """``tick`` and every client in ``clients`` seen."""
        self.tick(now_ms)
        for c in clients:
            self.see(c)

    def recent_max(self) -> tuple[int, int]:
        return max(self.inp), max(self.out)


def bucket_of(mem: int) -> int:
    b = mem.bit_length()
    if b > BUCKET_MAX_LOG:
        b = BUCKET_MAX_LOG
    elif b < BUCKET_MIN_LOG:
        b = BUCKET_MIN_LOG
    return b - BUCKET_MIN_LOG


def eviction_limit(maxmemory_clients: int, maxmemory: int) -> int:
    """Redis's getClientEvictionLimit: 0 when off."""
    if maxmemory_clients < 0 and maxmemory > 0:
        limit = maxmemory * -maxmemory_clients // 100
    elif maxmemory_clients > 0:
        limit = maxmemory_clients
    else:
        return 0
    return max(limit, MIN_LIMIT)


def _counted(c) -> bool:
    """Normal and pub/sub clients count (MONITOR is a normal client)."""
    return not c.flags & (F.MASTER | F.SLAVE)


class ClientEviction:
    """The running sum, the buckets and the eviction of one server's clients
    (``Server.cev`` while maxmemory-clients is on, else None)."""

    def __init__(self, server, limit: int):
        self.server = server
        self.limit = limit
        self.total = 0
        self.mem: dict[int, int] = {}  # client id -> memory counted in total
        self.where: dict[int, int] = {}  # client id -> its bucket
        # insertion-ordered: the order clients entered each bucket
        self.buckets: list[dict] = [{} for _ in range(NBUCKETS)]
        for c in list(server.clients.values()):
            self.update(c)

    def update(self, c, extra: int = 0, cron: bool = False) -> None:
        """Recount client ``c`` (Redis's updateClientMemUsageAndBucket; from
        the cron, ``cron``: clientsCronTrackClientsMemUsage)."""
        cid = c.id
        if not _counted(c) or c.flags & F.CLOSE_ASAP:
            self.remove(c)
            return
        old = self.where.get(cid)
        if c.flags & F.NO_EVICT:
            # out of the buckets; its memory stays in the sum as the cron
            # last counted it (Redis recounts such clients in its cron only)
            if old is not None:
                del self.buckets[old][cid]
                del self.where[cid]
            if not cron:
                return
        mem = client_memory(c, extra)
        self.total += mem - self.mem.get(cid, 0)
        self.mem[cid] = mem
        if c.flags & F.NO_EVICT:
            return
        b = bucket_of(mem)
        if old != b:
            if old is not None:
                del self.buckets[old][cid]
            self.buckets[b][cid] = c
            self.where[cid] = b

    def remove(self, c) -> None:
        cid = c.id
        self.total -= self.mem.pop(cid, 0)
        b = self.where.pop(cid, None)
        if b is not None:
            del self.buckets[b][cid]

    def over(self) -> bool:
        return self.total >= self.limit

    def evict(self) -> None:
        """Redis's evictClients: the largest clients go until the sum is
        below the limit."""
        srv = self.server
        b = NBUCKETS - 1
        while self.total >= self.limit:
            bucket = self.buckets[b]
            if not bucket:
                b -= 1
                if b < 0:
                    log.warning("Over client maxmemory after evicting all evictable clients")
                    return
                continue
            c = next(iter(bucket.values()))
            from frtrio.commands.connection import client_info_line

            log.info("Evicting client: %s", client_info_line(c))
            self.remove(c)
            srv.stats["evicted_clients"] = srv.stats.get("evicted_clients", 0) + 1
            srv.kill_client(c)
            srv.free_client(c)

    def refresh_all(self) -> None:
        """From the cron (Redis's clientsCron): every client recounted."""
        for c in list(self.server.clients.values()):
            self.update(c, cron=True)
