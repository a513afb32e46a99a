"""nodes.conf on disk: load (or create) it, keep it locked, save it atomically.

Saving writes a temporary file, fsyncs it (when asked) and renames it over
nodes.conf (``fs.write_atomic``), so a crash leaves the old or the new content
and never a mix. The lock is Redis's: an exclusive non-blocking flock on
nodes.conf taken before the file is read and held for the node's life, so a
second process pointed at the same file (frtrio or redis-server, which locks
the same way) refuses to start with Redis's message.

A real flock belongs to the file (inode) the rename just replaced, so after
each save the lock is taken again on the new file and the old one released.
The window between the rename and the new lock is the one gap: a process
starting in exactly that instant could take the lock. Redis has no such gap
because it rewrites nodes.conf in place; the rename buys crash safety. A
filesystem whose locks follow the path (the simulator's) still holds the lock
after the rename; then there is nothing to retake.
"""

from __future__ import annotations

import errno
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
    def __init__(self, env, path: str, name: str | None = None):
        self.env = env
        self.fs = env.fs
        self.path = path
        # the name as configured (cluster-config-file), for messages
        self.name = name or os.path.basename(path)
        self.lock = None

    def _take_lock(self) -> None:
        if not hasattr(self.fs, "lock_exclusive"):
            return
        try:
            self.lock = self.fs.lock_exclusive(self.path)
        except BlockingIOError:
            raise ClusterConfigError(LOCKED_MSG % self.name) from None

    def _relock(self) -> None:
        """After a rename over nodes.conf: lock the new file, release the old."""
        if self.lock is None or not hasattr(self.fs, "lock_exclusive"):
            return
        try:
            new = self.fs.lock_exclusive(self.path)
        except BlockingIOError:
            # A path-following lock: still ours. (On a real disk: another
            # process won the race described in the module docstring.)
            return
        old, self.lock = self.lock, new
        self.fs.unlock(old)

    def load(self, now_ms: int, new_id: str) -> tuple[ClusterState, bool]:
        """(state, fresh). A missing or empty file makes a fresh node with
        ``new_id`` (as Redis: only a zero-length file counts as empty); a
        corrupt file raises ClusterConfigError naming the file and the line,
        and the file is left untouched."""
        existed = self.fs.exists(self.path) and self.fs.size(self.path) > 0
        self._take_lock()
        if existed:
            text = self.fs.read(self.path).decode("utf-8", "surrogateescape")
            try:
                return nodes_conf.parse(text, now_ms), False
            except nodes_conf.NodesConfError as e:
                if e.lineno:
                    where = "at line %d (%s): %s" % (e.lineno, e.reason, e.line)
                else:
                    where = "(%s)" % e.reason
                raise ClusterConfigError(
                    "Unrecoverable error: corrupted cluster config file \"%s\" %s"
                    % (self.path, where)
                ) from None
        me = ClusterNode(new_id, ("myself", "master"), ctime=now_ms)
        return ClusterState(me), True

    def save(self, text: str, fsync: bool) -> None:
        """Save by temp file + rename (never a torn file). On a full disk,
        where the temp file cannot be written, overwrite in place as Redis
        does (which needs no new block unless the file grows); only if that
        fails too does the error reach the caller (which stops the node, as
        Redis's clusterSaveConfigOrDie)."""
        data = text.encode("utf-8", "surrogateescape")
        try:
            self.fs.write_atomic(self.path, data, fsync=fsync)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.fs.overwrite_in_place(self.path, data, fsync=fsync)
        self._relock()

    def close(self) -> None:
        if self.lock is not None:
            self.fs.unlock(self.lock)
            self.lock = None
