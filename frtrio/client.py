"""One client connection's state (pure): what CLIENT LIST shows, the
output buffer with its byte count, transaction and WATCH state, blocking,
subscriptions; and ``ReplySlot``, a reply answered later by the shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from frtrio.protocol.reply import ErrorReply, encode, encode_error

if TYPE_CHECKING:
    from frtrio.blocking import BlockOn
    from frtrio.engine import Server
    from frtrio.store.db import Db


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
        "addr",
        "laddr",
        "fd",
        "ctime_ms",
        "last_interaction_ms",
        "last_cmd",
        "out",
        "out_bytes",
        "notify",
        "close_after_reply",
        "killed",
        "reply_mode",
        "multi",
        "multi_dirty",
        "watched",
        "watch_dirty",
        "readonly",
        "asking",
        "in_exec",
        "blocked",
        "subscriptions",
        "psubscriptions",
        "ssubscriptions",
        "flags_extra",
        "is_master_link",
        "no_evict",
        "qbuf",
        "argv_count",
        "tot_net_in",
        "tot_net_out",
        "tot_cmds",
        "lib_name",
        "lib_ver",
    )

    def __init__(self, server: "Server", id: int, addr: str = "", laddr: str = ""):
        self.server = server
        self.id = id
        self.name = b""
        self.dbid = 0
        self.db: Db = server.dbs[0]
        self.resp = 2
        self.authenticated = not server.requires_auth()
        self.user = b"default"
        self.addr = addr
        self.laddr = laddr
        self.fd = 0
        self.ctime_ms = server.now_ms
        self.last_interaction_ms = server.now_ms
        self.last_cmd = b"NULL"
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.notify: Callable[[], None] | None = None
        self.close_after_reply = False
        self.killed = False
        self.reply_mode = 0  # 0 on, 1 off, 2 skip next
        self.multi: list | None = None
        self.multi_dirty = False
        self.watched: dict | None = None  # (dbid, key) -> WATCHed while expired
        self.watch_dirty = False
        self.readonly = False
        self.asking = False
        self.in_exec = False
        self.blocked: BlockOn | None = None
        self.subscriptions: dict = {}
        self.psubscriptions: dict = {}
        self.ssubscriptions: dict = {}
        self.flags_extra = ""
        self.is_master_link = False
        self.no_evict = False
        self.qbuf = 0
        self.argv_count = 0
        self.tot_net_in = 0
        self.tot_net_out = 0
        self.tot_cmds = 0
        self.lib_name = b""
        self.lib_ver = b""

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
        out = self.out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_bytes = 0
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
