"""nodes.conf on disk: load (or create) it, keep it locked, save it atomically.

Saving writes a temporary file, fsyncs it (when asked), renames it over
nodes.conf and then takes the lock on the new file, so a crash leaves the old
or the new content and never a mix; a second process pointed at the same file
finds it locked and refuses to start, as redis-server does.
"""

from __future__ import annotations

import logging
import os

from frtrio.cluster import nodes_conf
from frtrio.cluster.state import ClusterNode, ClusterState

log = logging.getLogger("frtrio.cluster")

LOCKED_MSG = (
    "Sorry, the cluster configuration file %s is already used by a different Redis Cluster "
    "node. Please make sure that different nodes use different cluster configuration files."
)


class ClusterConfigError(Exception):
    pass


class ClusterFile:
    def __init__(self, env, path: str):
        self.env = env
        self.fs = env.fs
        self.path = path
        self.lock = None

    def _take_lock(self) -> None:
        if not hasattr(self.fs, "lock_exclusive"):
            return
        try:
            new = self.fs.lock_exclusive(self.path)
        except BlockingIOError:
            raise ClusterConfigError(LOCKED_MSG % os.path.basename(self.path)) from None
        old, self.lock = self.lock, new
        if old is not None:
            self.fs.unlock(old)

    def load(self, now_ms: int, new_id: str) -> tuple[ClusterState, bool]:
        """(state, fresh). A fresh node gets ``new_id``; a corrupt file raises
        ClusterConfigError naming the line, and the file is left untouched."""
        existed = self.fs.exists(self.path) and self.fs.size(self.path) > 0
        self._take_lock()
        if existed:
            text = self.fs.read(self.path).decode("utf-8", "surrogateescape")
            if text.strip():
                try:
                    return nodes_conf.parse(text, now_ms), False
                except nodes_conf.NodesConfError as e:
                    raise ClusterConfigError(
                        "Unrecoverable error: corrupted cluster config file \"%s\" at line %d "
                        "(%s): %s" % (self.path, e.lineno, e.reason, e.line)
                    ) from None
        me = ClusterNode(new_id, ("myself", "master"), ctime=now_ms)
        return ClusterState(me), True

    def save(self, text: str, fsync: bool) -> None:
        self.fs.write_atomic(self.path, text.encode("utf-8", "surrogateescape"), fsync=fsync)
        self._take_lock()

    def close(self) -> None:
        if self.lock is not None:
            self.fs.unlock(self.lock)
            self.lock = None
