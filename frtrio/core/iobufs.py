"""The sizes of a client's query and reply buffers, as Redis 7.0 would have
them for the same traffic (CLIENT LIST's ``qbuf-free``, ``rbs``, ``rbp``;
the client memory of ``tot-mem``, INFO and client eviction).

frtrio reads into its parser's buffer and queues replies as bytes objects;
neither has Redis's shape. What users see of Redis's buffers is modelled
here, from the same events Redis reacts to:

* **Query buffer** (an sds string). Before a read Redis makes room for
  16 KB (``PROTO_IOBUF_LEN``), without over-allocating while the buffer is
  small or a big argument (32 KB or more) is being read, doubling it
  otherwise; a big argument gets room for all of it. ``qb_alloc`` is that
  allocation, ``qb_peak`` the most the buffer held since the last cron visit.
  The cron frees the spare room of a client idle for more than 2 s, and trims
  a buffer over 32 KB that is more than twice its recent peak.
* **Reply buffer** (16 KB at first). ``rb_peak`` is the most it held since
  the peak was last reset (every ``reply-buffer-peak-reset-time``, 5 s by
  default); the cron halves it down to the peak (1 KB at least) when the
  peak is under half of it, and doubles it (up to 16 KB) when a reply filled
  it. ``DEBUG REPLYBUFFER`` sets the reset time and turns resizing off.

Everything here is plain arithmetic on the client's fields: the shell calls
``before_read`` / ``after_send`` and the cron calls ``cron``.
"""

from __future__ import annotations

from frtrio.core.memsize import jemalloc_size, sds_hdr

IOBUF_LEN = 16384  # PROTO_IOBUF_LEN: what a read makes room for
BIG_ARG = 32768  # PROTO_MBULK_BIG_ARG
RESIZE_THRESHOLD = 32768  # PROTO_RESIZE_THRESHOLD
SDS_MAX_PREALLOC = 1 << 20
REPLY_CHUNK = 16384  # PROTO_REPLY_CHUNK_BYTES: a new client's reply buffer
REPLY_MIN = 1024  # PROTO_REPLY_MIN_BYTES
IDLE_FREE_S = 2  # an idle query buffer's spare room is freed after this
SPARE_KEPT = 4096  # the cron leaves a query buffer's spare room alone up to this


def sds_room(n: int) -> int:
    """The room an sds made for ``n`` bytes ends up with: the allocator's
    usable size minus the header and the terminating NUL."""
    h = sds_hdr(n, allow_type5=False)
    return jemalloc_size(h + n + 1) - h - 1


def before_read(c, pending: int, bulk: int) -> None:
    """Redis's readQueryFromClient makes room before reading: ``pending``
    bytes are buffered, ``bulk`` is the length of the bulk argument being
    read (-1 between arguments)."""
    readlen = IOBUF_LEN
    big = bulk >= BIG_ARG
    if big:
        remaining = bulk + 2 - pending
        if remaining > 0:
            readlen = remaining
    alloc = c.qb_alloc
    if alloc - pending >= readlen:
        return
    n = pending + readlen
    if big or alloc < IOBUF_LEN:
        c.qb_alloc = sds_room(n)  # no room to spare
    else:
        c.qb_alloc = sds_room(n * 2 if n < SDS_MAX_PREALLOC else n + SDS_MAX_PREALLOC)


def cron(c, now_ms: int, bulk: int, peak_reset_ms: int, resizing: bool) -> int:
    """One clientsCron visit: resize both buffers. ``bulk``: the bulk
    argument being read, -1 if none. Returns 1 if the reply buffer shrank,
    2 if it grew, else 0 (INFO's reply_buffer_shrinks / _expands)."""
    qbuf = c.qbuf
    alloc = c.qb_alloc
    if alloc - qbuf > SPARE_KEPT:
        if (now_ms - c.last_interaction_ms) // 1000 > IDLE_FREE_S:
            c.qb_alloc = qbuf
        elif alloc > RESIZE_THRESHOLD and alloc // 2 > c.qb_peak:
            c.qb_alloc = max(qbuf, c.qb_peak, bulk)
    c.qb_peak = max(qbuf, bulk)
    if not resizing:
        return 0
    size = c.rb_size
    peak = c.rb_peak
    new = 0
    changed = 0
    if size // 2 >= REPLY_MIN and peak < size // 2:
        new = max(REPLY_MIN, peak + 1)
        changed = 1
    elif size * 2 < REPLY_CHUNK * 2 and peak == size:
        new = min(REPLY_CHUNK, size * 2)
        changed = 2
    if peak_reset_ms >= 0 and now_ms - c.rb_reset_ms >= peak_reset_ms:
        # (what the buffer holds now: replies not yet written)
        c.rb_peak = min(c.out_bytes, size)
        c.rb_reset_ms = now_ms
    if new:
        c.rb_size = jemalloc_size(new)
    return changed
