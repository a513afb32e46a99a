"""Client output buffer limits (pure): Redis's checkClientOutputBufferLimits.

``client-output-buffer-limit <class> <hard> <soft> <soft-seconds>`` for the
classes normal, replica and pubsub. A client whose pending output reaches the
hard limit, or stays at or over the soft limit for more than soft-seconds, is
disconnected (its pending output dropped), as Redis's
closeClientOnOutputBufferLimitReached does. A limit of 0 is off.

What counts as "pending output" is what the server holds for the client and
has not yet handed to the socket: here ``Client.out_bytes`` beyond what
Redis keeps in the client's reply buffer (``Client.rb_size``), which it does
not count (bytes handed to the writer task but not yet taken by the socket still
count). A frtrio connection goes on reading and executing a client's
commands while its replies cannot be sent, as Redis does, so a client that
pipelines without reading meets these limits like on redis-server.
"""

from __future__ import annotations

from frtrio.core.client_evict import REPLY_NODE_COST, obuf_memory
from frtrio.core.iobufs import REPLY_MIN

_OFF = float("inf")

# Redis first fills a client's reply buffer (16 KB, resized by the cron down
# to 1 KB: frtrio/core/iobufs.py) and only counts what overflows into its
# reply list: small pending replies never count against the limits.
STATIC_REPLY_BUFFER = 16 * 1024  # (a replica's: the cron does not grow it back)


class OutputLimits:
    def __init__(self, config):
        self.config = config
        self.limits = {"normal": (0, 0, 0), "replica": (0, 0, 0), "pubsub": (0, 0, 0)}
        # the smallest pending size worth a check, per class (inf when off):
        # the command path compares one number and moves on
        self.normal_from = _OFF
        self._soft_since: dict[int, int] = {}  # client id -> unix s first seen over soft
        self.disconnections = 0
        self.reload()

    def reload(self) -> None:
        self.limits.update(self.config.output_buffer_limits())
        hard, soft, _ = self.limits["normal"]
        # (counted in reply list nodes: a node's cost can pass the limit
        # with fewer bytes than the limit pending)
        self.normal_from = max(REPLY_MIN, min([x for x in (hard, soft) if x] or [_OFF])
                               - REPLY_NODE_COST)

    def on_config(self, name: str, value: str) -> None:
        if name == "client-output-buffer-limit":
            self.reload()

    def over(self, c, cls: str, now_ms: int) -> bool:
        """Is client ``c`` (of class ``cls``) over its limit now?"""
        return self.over_used(c.id, obuf_memory(c), cls, now_ms)

    def over_used(self, cid: int, used: int, cls: str, now_ms: int) -> bool:
        """Is the client with id ``cid``, holding ``used`` counted bytes of
        pending output, over the limit of its class now?"""
        hard, soft, secs = self.limits[cls]
        if hard and used >= hard:
            return True
        if soft and used >= soft:
            now_s = now_ms // 1000
            since = self._soft_since.get(cid)
            if since is None:
                self._soft_since[cid] = now_s
                return False
            return now_s - since > secs
        self._soft_since.pop(cid, None)
        return False

    def forget(self, c) -> None:
        self._soft_since.pop(c.id, None)

    def forget_key(self, key) -> None:
        """``forget`` for a buffer that is not a client's (``over_used``'s key)."""
        self._soft_since.pop(key, None)
