"""Blocked clients (pure): who waits on which key, served first-come
first-served.

A blocking command that cannot answer yet returns ``engine.BlockOn``; the
engine hands it to ``BlockingRegistry.block``. After every command (and after
a whole MULTI/EXEC) the engine calls ``serve_ready_keys``: for each key that
got data, in the order the keys became ready, the clients blocked on it are
retried in the order they blocked, until the key cannot serve more. An
answered client is unblocked and its reply is pushed to it. The shell waits
for that (or for the deadline, then calls ``timeout``).

The cluster layer releases clients whose slot moved with ``unblock(client,
ErrorReply(...))``; ``clients_on_slot`` finds them.

Helpers for blocking commands: ``parse_timeout`` (Redis's seconds timeout,
with its exact long double rounding and error strings) and ``may_block``
(a client inside EXEC gets the timeout answer at once instead of blocking).
"""

from __future__ import annotations

from fractions import Fraction

from frtrio.core.client import F
from frtrio.cluster.slots import key_slot
from frtrio.protocol.reply import NullArray


class BlockOn:
    """Returned by a blocking command that has to wait for keys.

    The shell parks the client until ``Server.serve_ready_keys`` (run after
    every command) finds ``retry(client)`` able to answer, or until the
    deadline passes and ``on_timeout`` is answered.
    """

    __slots__ = ("keys", "db", "deadline_ms", "retry", "on_timeout", "argv", "serve_gone",
                 "timing")

    def __init__(self, keys, db, deadline_ms, retry, on_timeout=NullArray, argv=None,
                 serve_gone=False):
        self.keys = keys
        self.db = db
        self.deadline_ms = deadline_ms  # absolute unix ms, or None = forever
        self.retry = retry
        self.on_timeout = on_timeout
        self.argv = argv
        # retried even when the key is gone (XREADGROUP: told its stream went away)
        self.serve_gone = serve_gone
        # (cmd, argv, usec) of the call that blocked: the slow log and the
        # latency histogram get it when the command is answered
        self.timing = None
from frtrio.protocol.reply import ErrorReply

_THOUSAND = Fraction(1000)


def parse_timeout(c, b: bytes):
    """A blocking command's timeout in seconds -> absolute deadline in unix
    ms, or None for "forever" (``0``, or anything that rounds up to 0 ms).

    As Redis 7.0: the argument is read as a long double, multiplied by 1000
    and rounded up to whole milliseconds; out of range values become
    LLONG_MIN, so ``inf`` and ``1e400`` are "negative".
    """
    from frtrio.commands import ldouble  # (frtrio.commands imports us)

    v = ldouble.strtold(b)
    if v is None:
        raise ErrorReply("ERR timeout is not a float or out of range")
    ms = ldouble.to_llong_ceil(ldouble.mul(v, _THOUSAND))
    if ms < 0:
        raise ErrorReply("ERR timeout is negative")
    if ms == 0:
        return None
    deadline = c.server.now_ms + ms
    if deadline > ldouble.LLONG_MAX:
        return None  # Redis overflows here and in effect never times out
    return deadline


def may_block(c) -> bool:
    """False where Redis sets CLIENT_DENY_BLOCKING: inside MULTI/EXEC, and
    for the client that replays the AOF while loading."""
    return not c.flags & F.IN_EXEC and not c.server.loading


class BlockingRegistry:
    def __init__(self, server):
        self.server = server
        # (dbid, key) -> {client id: client}, insertion order = arrival order
        self.waiters: dict[tuple, dict] = {}
        # clients blocked without keys (WAIT), by id
        self.keyless: dict[int, object] = {}

    def has_waiters(self, dbid: int, key: bytes) -> bool:
        return (dbid, key) in self.waiters

    def blocked_count(self) -> int:
        return sum(1 for c in self.server.clients.values() if c.blocked is not None)

    def block(self, c, b) -> None:
        c.blocked = b
        if not b.keys:
            self.keyless[c.id] = c
            return
        if not self.waiters:
            self.server.overwrites_signalled(True)  # (the first waiter)
        for k in b.keys:
            self.waiters.setdefault((b.db.id, k), {})[c.id] = c

    def _forget(self, c) -> None:
        b = c.blocked
        if b is None:
            return
        self.keyless.pop(c.id, None)
        for k in b.keys:
            w = self.waiters.get((b.db.id, k))
            if w is not None:
                w.pop(c.id, None)
                if not w:
                    del self.waiters[(b.db.id, k)]
                    if not self.waiters:
                        self.server.overwrites_signalled(False)  # (the last one)
        c.blocked = None

    def unblock(self, c, reply) -> None:
        """Release ``c``; push ``reply`` to it unless None (client gone)."""
        b = c.blocked
        if b is None:
            return
        self._forget(c)
        if b.timing is not None and reply is not None:
            self.server.note_unblocked(c, b)
        if reply is not None:
            if isinstance(reply, ErrorReply):
                srv = self.server
                srv.count_error(reply.message)
                # Redis's updateStatsOnUnblock: the blocked command failed
                cmd = srv.commands.get(bytes(b.argv[0]).lower()) if b.argv else None
                if cmd is not None:
                    srv.cmd_stat(cmd.fullname)[3] += 1
            c.reply(reply)
        if c.notify is not None:
            c.notify()

    def timeout(self, c) -> None:
        """The deadline passed (or CLIENT UNBLOCK TIMEOUT): answer the
        command's timeout reply (which may be a null bulk, i.e. None)."""
        b = c.blocked
        if b is None:
            return
        self._forget(c)
        if b.timing is not None:
            self.server.note_unblocked(c, b)
        c.reply(b.on_timeout)
        if c.notify is not None:
            c.notify()

    def serve_ready_keys(self) -> None:
        srv = self.server
        sc = srv.scripting
        if sc is not None and (sc.busy_ctx is not None or sc.ctx is not None):
            return  # a script is running: its writes are served when it ends
        guard = 0
        while srv.ready_keys:
            (dbid, key), _ = next(iter(srv.ready_keys.items()))
            del srv.ready_keys[(dbid, key)]
            w = self.waiters.get((dbid, key))
            if not w:
                continue
            for c in list(w.values()):
                b = c.blocked
                if b is None or (dbid, key) not in self.waiters or c.id not in self.waiters[(dbid, key)]:
                    continue
                tr = srv.tracking
                prev, tr.current = tr.current, c  # (the served client runs it)
                r = b.retry(c, key) if _takes_key(b.retry) else b.retry(c)
                tr.current = prev
                if r is None:
                    if key not in srv.dbs[dbid].data:
                        # nothing left to serve anyone on this key, but
                        # XREADGROUP waiters learn that their stream is gone
                        self._serve_gone(dbid, key, w)
                        break
                    continue
                self.unblock(c, r)
                if tr.pending:
                    tr.current = c
                    tr.after_command(c)  # its own invalidations follow its reply
                    tr.current = prev
            guard += 1
            if guard > 1_000_000:
                break

    def _serve_gone(self, dbid: int, key: bytes, w: dict) -> None:
        for c in list(w.values()):
            b = c.blocked
            if b is None or not b.serve_gone or c.id not in w:
                continue
            r = b.retry(c, key) if _takes_key(b.retry) else b.retry(c)
            if r is not None:
                self.unblock(c, r)

    def clients_on_slot(self, slot: int) -> list:
        out = []
        seen = set()
        for (dbid, key), w in self.waiters.items():
            if key_slot(key) == slot:
                for cid, c in w.items():
                    if cid not in seen:
                        seen.add(cid)
                        out.append(c)
        return out

    def db_swapped(self, a: int, b: int) -> None:
        """SWAPDB: keys that now exist in a swapped db may serve waiters."""
        srv = self.server
        for dbid, key in list(self.waiters):
            if dbid in (a, b):  # (a stream that went away unblocks XREADGROUP)
                srv.ready_keys[(dbid, key)] = None


def _takes_key(fn) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_argcount >= 2
