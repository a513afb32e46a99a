"""The pub/sub registry (pure): who listens to which channel, pattern or
shard channel, and message delivery.

Server side, like Redis: channel -> subscribers, pattern -> subscribers,
shard channel -> subscribers, each an insertion-ordered dict of client id ->
client (so delivery order is subscription order and never depends on
hashing). Client side: ``Client.subscriptions`` / ``psubscriptions`` /
``ssubscriptions`` (dicts used as ordered sets).

Messages go out through ``Client.push`` (which wakes the connection's
writer). After each delivery the subscriber's output buffer is checked
against ``client-output-buffer-limit pubsub <hard> <soft> <seconds>`` as
Redis's checkClientOutputBufferLimits does: over the hard limit, or over the
soft limit continuously for more than <seconds>, the client is disconnected
(its pending output dropped, as Redis's freeClientAsync does).
"""

from __future__ import annotations

from frtrio.core.client import F
from frtrio.protocol.reply import Push
from frtrio.store.glob import compile_pattern


class PubSub:
    def __init__(self, server):
        self.server = server
        self.channels: dict[bytes, dict] = {}
        self.patterns: dict[bytes, dict] = {}
        self.shard_channels: dict[bytes, dict] = {}

    # --- counts (INFO, PUBSUB) ----------------------------------------------------

    def channel_count(self) -> int:
        return len(self.channels)

    def pattern_count(self) -> int:
        return len(self.patterns)

    def shard_channel_count(self) -> int:
        return len(self.shard_channels)

    def numsub(self, ch: bytes) -> int:
        return len(self.channels.get(ch, ()))

    def shard_numsub(self, ch: bytes) -> int:
        return len(self.shard_channels.get(ch, ()))

    def channel_names(self, pattern: bytes | None = None, shard: bool = False) -> list:
        d = self.shard_channels if shard else self.channels
        if pattern is None:
            return list(d)
        m = compile_pattern(pattern).match
        return [ch for ch in d if m(ch) is not None]

    # --- subscribe / unsubscribe ----------------------------------------------------

    @staticmethod
    def _add(table: dict, own: dict, c, name: bytes) -> bool:
        if name in own:
            return False
        own[name] = None
        subs = table.get(name)
        if subs is None:
            subs = table[name] = {}
        subs[c.id] = c
        return True

    @staticmethod
    def _remove(table: dict, own: dict, c, name: bytes) -> bool:
        if name not in own:
            return False
        del own[name]
        subs = table.get(name)
        if subs is not None:
            subs.pop(c.id, None)
            if not subs:
                del table[name]
        return True

    def subscribe(self, c, ch: bytes) -> bool:
        return self._add(self.channels, c.subscriptions, c, ch)

    def unsubscribe(self, c, ch: bytes) -> bool:
        return self._remove(self.channels, c.subscriptions, c, ch)

    def psubscribe(self, c, pat: bytes) -> bool:
        return self._add(self.patterns, c.psubscriptions, c, pat)

    def punsubscribe(self, c, pat: bytes) -> bool:
        return self._remove(self.patterns, c.psubscriptions, c, pat)

    def ssubscribe(self, c, ch: bytes) -> bool:
        return self._add(self.shard_channels, c.ssubscriptions, c, ch)

    def sunsubscribe(self, c, ch: bytes) -> bool:
        return self._remove(self.shard_channels, c.ssubscriptions, c, ch)

    def unsubscribe_all(self, c, notify: bool = True) -> None:
        """Drop every subscription of ``c`` (RESET, disconnect). With
        ``notify`` the client is sent the unsubscribe messages."""
        for ch in list(c.subscriptions):
            self.unsubscribe(c, ch)
            if notify:
                c.push(Push([b"unsubscribe", ch, c.subscription_count()]))
        for ch in list(c.ssubscriptions):
            self.sunsubscribe(c, ch)
            if notify:
                c.push(Push([b"sunsubscribe", ch, len(c.ssubscriptions)]))
        for pat in list(c.psubscriptions):
            self.punsubscribe(c, pat)
            if notify:
                c.push(Push([b"punsubscribe", pat, c.subscription_count()]))

    def client_gone(self, c) -> None:
        self.unsubscribe_all(c, notify=False)
        self.server.obuf.forget(c)

    def drop_unserved_shard_channels(self, core) -> int:
        """Cluster mode, after a slot-table change (called by ClusterCore):
        shard channels of slots this node no longer serves (neither owner nor
        a replica of the owner, nor importing) are dropped, each subscriber
        getting ``sunsubscribe <channel> <remaining>``. Redis's
        removeChannelsInSlot: channels of a slot in byte order, subscribers
        in subscription order. Returns the number of channels dropped."""
        if not self.shard_channels:
            return 0
        from frtrio.cluster.slots import key_slot

        st = core.state
        me = st.myself
        gone = []
        for ch in self.shard_channels:
            slot = key_slot(ch)
            owner = st.slots[slot]
            if owner is not None and (owner is me or (me.is_replica and me.master_id == owner.id)):
                continue
            if slot in st.importing_from:
                continue
            gone.append((slot, ch))
        for _, ch in sorted(gone):
            for c in list(self.shard_channels.get(ch, {}).values()):
                if self.sunsubscribe(c, ch):
                    c.push(Push([b"sunsubscribe", ch, len(c.ssubscriptions)]))
        return len(gone)

    # --- delivery ---------------------------------------------------------------------

    def publish(self, ch: bytes, msg: bytes) -> int:
        """PUBLISH: channel subscribers, then pattern subscribers; the number
        of deliveries."""
        n = 0
        subs = self.channels.get(ch)
        if subs:
            for c in list(subs.values()):
                c.push(Push([b"message", ch, msg]))
                self._check_limits(c)
                n += 1
        if self.patterns:
            for pat, subs in list(self.patterns.items()):
                if compile_pattern(pat).match(ch) is None:
                    continue
                for c in list(subs.values()):
                    c.push(Push([b"pmessage", pat, ch, msg]))
                    self._check_limits(c)
                    n += 1
        return n

    def spublish(self, ch: bytes, msg: bytes) -> int:
        n = 0
        subs = self.shard_channels.get(ch)
        if subs:
            for c in list(subs.values()):
                c.push(Push([b"smessage", ch, msg]))
                self._check_limits(c)
                n += 1
        return n

    def deliver_from_bus(self, ch: bytes, msg: bytes, shard: bool) -> int:
        """A PUBLISH / PUBLISHSHARD received on the cluster bus: deliver it to
        local subscribers only (Redis never re-forwards bus messages)."""
        return self.spublish(ch, msg) if shard else self.publish(ch, msg)

    # --- output buffer limits -----------------------------------------------------------

    def _check_limits(self, c) -> None:
        if c.flags & F.CLOSE_ASAP:
            return
        srv = self.server
        if srv.obuf.over(c, "pubsub", srv.now_ms):
            self.disconnect_for_limits(c)

    def disconnect_for_limits(self, c) -> None:
        """Close a subscriber that overran its output buffer: forget its
        subscriptions now, drop what it has not read, close it."""
        self.client_gone(c)
        self.server.close_for_output_limits(c)
