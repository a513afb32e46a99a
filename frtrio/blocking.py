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
"""

from __future__ import annotations

from frtrio.cluster.slots import key_slot


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
        c.blocked = None

    def unblock(self, c, reply) -> None:
        """Release ``c``; push ``reply`` to it unless None (client gone)."""
        if c.blocked is None:
            return
        self._forget(c)
        if reply is not None:
            c.reply(reply)
        if c.notify is not None:
            c.notify()

    def timeout(self, c) -> None:
        if c.blocked is not None:
            self.unblock(c, c.blocked.on_timeout)

    def serve_ready_keys(self) -> None:
        srv = self.server
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
                r = b.retry(c, key) if _takes_key(b.retry) else b.retry(c)
                if r is None:
                    continue
                self.unblock(c, r)
            guard += 1
            if guard > 1_000_000:
                break

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
            if dbid in (a, b) and key in srv.dbs[dbid].data:
                srv.ready_keys[(dbid, key)] = None


def _takes_key(fn) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_argcount >= 2
