"""One client connection's state (pure): what CLIENT LIST shows, the
output buffer with its byte count, transaction and WATCH state, blocking,
subscriptions; and ``ReplySlot``, a reply answered later by the shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from frtrio.core.iobufs import sds_room
from frtrio.protocol.reply import ErrorReply, encode, encode_error

if TYPE_CHECKING:
    from frtrio.core.blocking import BlockOn
    from frtrio.core.engine import Server
    from frtrio.store.db import Db


_EMPTY_QB = sds_room(0)  # the room of an sds made empty to be appended to (type 8)


class F:
    """Client flag bits (``Client.flags``), named after Redis's CLIENT_*
    flags; CLIENT LIST shows them as letters (commands/connection.py)."""

    SLAVE = 1 << 0  # a replica's connection to its master (S)
    MASTER = 1 << 1  # this node's link to its master (M)
    MONITOR = 1 << 2  # MONITOR (O)
    DIRTY_CAS = 1 << 3  # a WATCHed key changed: EXEC will fail (d)
    CLOSE_AFTER_REPLY = 1 << 4  # close once the pending output is sent (c)
    CLOSE_ASAP = 1 << 5  # killed: close now (A)
    READONLY = 1 << 6  # READONLY: reads served on a replica in cluster mode (r)
    ASKING = 1 << 7  # the next command may run on an importing slot
    DIRTY_EXEC = 1 << 8  # a queued command was refused: EXEC aborts
    IN_EXEC = 1 << 9  # running the queued commands of EXEC
    NO_EVICT = 1 << 10  # CLIENT NO-EVICT on (e)
    INTERNAL = 1 << 11  # authenticated as "internal connection" (a cluster peer)
    MIGRATING = 1 << 12  # a channel of a slot migration, source side (g)
    IMPORTING = 1 << 13  # applies a slot migration, destination side (o)


class Client:
    """State of one client connection (what CLIENT LIST shows, and more)."""

    __slots__ = (
        "server",
        "id",
        "name",
        "db",
        "dbid",
        "resp",
        "authenticated",
        "user",
        "auser",
        "addr",
        "laddr",
        "fd",
        "ctime_ms",
        "last_interaction_ms",
        "last_cmd",
        "out",
        "out_bytes",
        "notify",
        "flags",
        "reply_mode",
        "multi",
        "watched",
        "blocked",
        "subscriptions",
        "psubscriptions",
        "ssubscriptions",
        "qbuf",
        "argv_mem",
        "argv_arr",
        "mem_counted",
        "qbuf_alloc",
        "qb_alloc",
        "qb_peak",
        "qb_bulk",
        "rb_size",
        "rb_peak",
        "rb_reset_ms",
        "tot_net_in",
        "tot_net_out",
        "tot_cmds",
        "lib_name",
        "lib_ver",
        "woff",
        "tracking",
    )

    def __init__(self, server: "Server", id: int, addr: str = "", laddr: str = ""):
        self.server = server
        self.id = id
        self.name = b""
        self.dbid = 0
        self.db: Db = server.dbs[0]
        self.resp = 2
        self.authenticated = not server.requires_auth()
        self.auser = server.acl.default  # the ACL user (frtrio/core/acl.py)
        self.user = b"default"  # its name
        self.addr = addr
        self.laddr = laddr
        self.fd = 0
        self.ctime_ms = server.now_ms
        self.last_interaction_ms = server.now_ms
        self.last_cmd = b"NULL"
        self.tracking = None  # CLIENT TRACKING state (core/tracking.py TrackState)
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.notify: Callable[[], None] | None = None
        self.flags = 0  # F.* bits, as Redis's c->flags
        self.reply_mode = 0  # 0 on, 1 off, 2 skip next
        self.multi: list | None = None
        self.watched: dict | None = None  # (dbid, key) -> WATCHed while expired
        self.blocked: BlockOn | None = None
        self.subscriptions: dict = {}
        self.psubscriptions: dict = {}
        self.ssubscriptions: dict = {}
        self.qbuf = 0
        self.argv_mem = 0  # the arguments of a half-read request (CLIENT LIST argv-mem)
        self.argv_arr = 0  # ...and their pointer array (counted in tot-mem, not argv-mem)
        self.mem_counted = 0  # its share of Server.clients_mem (the cron's last count)
        self.qbuf_alloc = 0  # room reserved for a big argument being read (client memory)
        # Redis's buffers as it would size them (frtrio/core/iobufs.py): the
        # query buffer's room, its recent peak, the bulk argument being read
        # (-1: none); the reply buffer's size, its peak, when that was reset
        self.qb_alloc = _EMPTY_QB  # (Redis's sdsempty() query buffer: 4 bytes of room)
        self.qb_peak = 0
        self.qb_bulk = -1
        self.rb_size = 16384
        self.rb_peak = 16384
        # (Redis 7.0 starts buf_peak_last_reset_time at the creation's unix
        # time in seconds, which its cron compares with milliseconds: the
        # cron's first visit resets a new client's peak, the next shrinks
        # its reply buffer to 1 KB; measured on redis-server 7.0.15)
        self.rb_reset_ms = server.now_ms // 1000
        self.tot_net_in = 0
        self.tot_net_out = 0
        self.tot_cmds = 0
        self.lib_name = b""
        self.lib_ver = b""
        self.woff = 0  # stream offset of this client's last write (WAIT)

    # --- output -------------------------------------------------------------

    def reply(self, value) -> None:
        """Encode a reply into the output buffer (honours CLIENT REPLY)."""
        if self.reply_mode:
            if self.reply_mode == 2:
                self.reply_mode = 0
            return
        out = self.out
        n = len(out)
        encode(value, self.resp == 3, out)
        if len(out) == n + 1:  # the common case: one chunk
            self.out_bytes += len(out[n])
        else:
            for i in range(n, len(out)):
                self.out_bytes += len(out[i])

    def reply_error(self, msg: str) -> None:
        if self.reply_mode:
            if self.reply_mode == 2:
                self.reply_mode = 0
            elif self.flags & F.MASTER:
                self.server.master_got_error(self, msg)
            return
        b = encode_error(msg)
        self.out.append(b)
        self.out_bytes += len(b)

    def push(self, value) -> None:
        """Deliver an out-of-band reply (pub/sub message, unblock) and wake
        the connection's writer."""
        out = self.out
        n = len(out)
        encode(value, self.resp == 3, out)
        for i in range(n, len(out)):
            self.out_bytes += len(out[i])
        if self.notify is not None:
            self.notify()

    def defer_reply(self) -> "ReplySlot | None":
        """Keep this command's place in the output for a reply the shell
        gives once it has carried out the command's effect (SAVE's result,
        say); None when replies are off (CLIENT REPLY)."""
        if self.reply_mode:
            if self.reply_mode == 2:
                self.reply_mode = 0
            return None
        self.out.append(b"")
        return ReplySlot(self, len(self.out) - 1)

    def take_output(self) -> bytes:
        data = self.pop_output()
        self.out_bytes = 0
        return data

    def pop_output(self) -> bytes:
        """The queued replies as one bytes, the queue emptied; ``out_bytes``
        is left to the caller (a shell counts bytes until they are sent)."""
        out = self.out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        n = len(data)
        if n > self.rb_peak:  # (the most Redis's reply buffer held: iobufs)
            self.rb_peak = n if n < self.rb_size else self.rb_size
        return data

    def select(self, dbid: int) -> None:
        self.dbid = dbid
        self.db = self.server.dbs[dbid]

    @property
    def in_pubsub(self) -> bool:
        return bool(self.subscriptions or self.psubscriptions or self.ssubscriptions)

    def subscription_count(self) -> int:
        return len(self.subscriptions) + len(self.psubscriptions)


class ReplySlot:
    """A reply's place in a client's output, answered later (``fill``). The
    shell fills it right after the command, before any output is sent."""

    __slots__ = ("client", "index")

    def __init__(self, client: Client, index: int):
        self.client = client
        self.index = index

    def fill(self, value) -> None:
        c = self.client
        chunks: list = []
        if isinstance(value, ErrorReply):
            c.server.count_error(value.message)
        encode(value, c.resp == 3, chunks)
        data = b"".join(chunks)
        if self.index < len(c.out) and c.out[self.index] == b"":
            c.out[self.index] = data
            c.out_bytes += len(data)
