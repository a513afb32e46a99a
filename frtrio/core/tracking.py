"""Client-side caching (CLIENT TRACKING), pure: which clients may hold which
keys, and the invalidation messages owed to them (Redis's tracking.c).

Keys are tracked by name across databases, as in Redis. In the default
mode a client's reads add it to the key's entry; the first change to the
key sends it one invalidation and forgets the entry. In BCAST mode a
client subscribes to key prefixes and gets, once per event loop turn, the
keys changed under each prefix. Messages go to the client itself (RESP3
push `invalidate`) or to the client it redirects to (RESP3 push, or a
`__redis__:invalidate` pub/sub message for a RESP2 subscriber).
"""

from __future__ import annotations

from frtrio.core.client import F

CHANNEL = b"__redis__:invalidate"
_CLOSING = F.CLOSE_AFTER_REPLY | F.CLOSE_ASAP


class TrackState:
    """One client's tracking options (Redis's CLIENT_TRACKING_* flags)."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "caching",
                 "broken_redir", "prefixes")

    def __init__(self, redirect: int, bcast: bool, optin: bool, optout: bool, noloop: bool):
        self.redirect = redirect
        self.bcast = bcast
        self.optin = optin
        self.optout = optout
        self.noloop = noloop
        self.caching = False  # CLIENT CACHING yes|no given for the next command
        self.broken_redir = False
        self.prefixes: list[bytes] = []


def _bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _keys_array(keys) -> bytes:
    return b"*%d\r\n" % len(keys) + b"".join(_bulk(k) for k in keys)


class Tracking:
    def __init__(self, clients: dict):
        self.clients = clients  # the server's client table (id -> Client)
        self.table: dict[bytes, dict[int, None]] = {}  # key -> ids of clients that read it
        # prefix -> (subscribed client ids, {changed key: client that changed it})
        self.prefixes: dict[bytes, tuple[dict, dict]] = {}
        self.tracking_clients = 0
        self.current = None  # the client running a command (NOLOOP, message order)
        self.pending: list = []  # invalidations owed to ``current``, after its reply
        self.expiring: bytes | None = None  # a key being deleted by expiry (no client did it)

    # --- enabling and disabling -------------------------------------------------

    def enable(self, c, st: TrackState, prefixes: list[bytes]) -> None:
        if c.tracking is None:
            self.tracking_clients += 1
        old = c.tracking
        if old is not None:
            st.prefixes = old.prefixes  # (re-enabling BCAST adds prefixes)
        c.tracking = st
        if st.bcast:
            for p in (prefixes or [b""]):
                ent = self.prefixes.get(p)
                if ent is None:
                    ent = self.prefixes[p] = ({}, {})
                if c.id not in ent[0]:
                    ent[0][c.id] = None
                    st.prefixes.append(p)

    def disable(self, c) -> None:
        st = c.tracking
        if st is None:
            return
        for p in st.prefixes:
            ent = self.prefixes.get(p)
            if ent is not None:
                ent[0].pop(c.id, None)
                if not ent[0]:
                    del self.prefixes[p]
        c.tracking = None
        self.tracking_clients -= 1

    @staticmethod
    def prefix_collision(existing: list[bytes], new: list[bytes]) -> str | None:
        """Redis's checkPrefixCollisionsOrReply: the error text, or None."""
        for i, p in enumerate(new):
            for e in existing:
                n = min(len(e), len(p))
                if e[:n] == p[:n]:
                    return ("ERR Prefix '%s' overlaps with an existing prefix '%s'. Prefixes "
                            "for a single client must not overlap."
                            % (p.decode("latin-1"), e.decode("latin-1")))
            for q in new[i + 1:]:
                n = min(len(q), len(p))
                if q[:n] == p[:n]:
                    return ("ERR Prefix '%s' overlaps with another provided prefix '%s'. "
                            "Prefixes for a single client must not overlap."
                            % (p.decode("latin-1"), q.decode("latin-1")))
        return None

    # --- reads and changes ------------------------------------------------------

    def remember(self, c, keys) -> None:
        """After a read-only command of a tracking client (not BCAST)."""
        st = c.tracking
        if (st.optin and not st.caching) or (st.optout and st.caching):
            return
        for k in keys:
            ids = self.table.get(k)
            if ids is None:
                ids = self.table[k] = {}
            ids[c.id] = None

    def invalidate(self, key: bytes) -> None:
        """A key changed (Redis's trackingInvalidateKey with bcast on); an
        expired key changed by no client (NOLOOP never hides it)."""
        cur = self.current
        by = cur
        if key == self.expiring:
            by = None
            self.expiring = None
        if self.prefixes:
            for p, (_ids, keys) in self.prefixes.items():
                if key.startswith(p):
                    keys[key] = by
        ids = self.table.pop(key, None)
        if not ids:
            return
        clients = self.clients
        for cid in ids:
            t = clients.get(cid)
            if t is None or t.tracking is None or t.tracking.bcast:
                continue
            if t.tracking.noloop and t is by:
                continue
            if t is cur:
                self.pending.append(key)  # after its own reply
            else:
                self.send(t, _keys_array([key]))

    def limit(self, max_keys: int) -> None:
        """tracking-table-max-keys: past the limit, forget the oldest keys,
        telling their clients as if the keys had changed (Redis evicts
        random ones, a bounded number per call)."""
        if not max_keys:
            return
        while len(self.table) > max_keys:
            key = next(iter(self.table))
            ids = self.table.pop(key)
            for cid in ids:
                t = self.clients.get(cid)
                if t is None or t.tracking is None or t.tracking.bcast:
                    continue
                self.send(t, _keys_array([key]))

    def flush(self) -> None:
        """FLUSHDB/FLUSHALL: every tracking client is told that all keys are
        invalid (a null), and the table is dropped."""
        cur = self.current
        for t in list(self.clients.values()):
            if t.tracking is not None:
                if t is cur:
                    self.pending.append(None)
                else:
                    self.send(t, b"_\r\n" if t.resp == 3 else b"$-1\r\n")
        self.table = {}

    def after_command(self, c) -> None:
        """The invalidations the current client caused for itself go after
        its reply (Redis's trackingHandlePendingKeyInvalidations)."""
        pend = self.pending
        self.pending = []
        for key in pend:
            if key is None:
                self.send(c, b"_\r\n" if c.resp == 3 else b"$-1\r\n")
            else:
                self.send(c, _keys_array([key]))

    def broadcast(self) -> None:
        """Before sleep: BCAST clients get the keys changed under their
        prefixes (minus their own changes with NOLOOP)."""
        clients = self.clients
        for p, (ids, keys) in self.prefixes.items():
            if not keys:
                continue
            for cid in list(ids):
                t = clients.get(cid)
                if t is None or t.tracking is None:
                    continue
                if t.tracking.noloop:
                    ks = [k for k, by in keys.items() if by is not t]
                    if not ks:
                        continue
                else:
                    ks = list(keys)
                self.send(t, _keys_array(ks))
            keys.clear()

    # --- delivery ---------------------------------------------------------------

    def send(self, c, value: bytes) -> None:
        """Redis's sendTrackingMessage: ``value`` is the RESP of the keys
        array (or of the null after a flush)."""
        st = c.tracking
        if st is not None and st.redirect:
            target = self.clients.get(st.redirect)
            if target is None or target.flags & _CLOSING:
                # (a client closing after its reply is gone for Redis, which
                # frees it before it reads the next command)
                st.broken_redir = True
                if c.resp == 3:
                    _push(c, b">2\r\n" + _bulk(b"tracking-redir-broken")
                          + b":%d\r\n" % st.redirect)
                return
            if target.resp == 3:
                _push(target, b">2\r\n" + _bulk(b"invalidate") + value)
            elif target.in_pubsub:
                _push(target, b"*3\r\n" + _bulk(b"message") + _bulk(CHANNEL) + value)
            return
        if c.resp == 3:
            _push(c, b">2\r\n" + _bulk(b"invalidate") + value)
        # (a RESP2 client without a redirect cannot be told anything)


def _push(c, data: bytes) -> None:
    c.out.append(data)
    c.out_bytes += len(data)
    if c.notify is not None:
        c.notify()
