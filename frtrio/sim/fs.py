"""An in-memory disk per simulated node, with crash semantics.

Each file keeps its current bytes and how much of them is durable:

* data appended through ``open_append`` handles is *not yet fsynced* until
  ``fsync(handle)``; a crash can lose that tail (all of it, none of it, or a
  torn prefix, as the fault asks);
* ``write_atomic(path, data, fsync=True)`` replaces the file durably;
  with ``fsync=False`` a crash may bring back the previous durable content
  (or no file at all);
* directory operations (create, remove, rename) are durable at once, a
  simplification the AOF and nodes.conf code do not depend on.

A crashed disk is *dead* until the node restarts: the dying node's cleanup
code (``finally`` blocks flushing the AOF) writes into the void, as a killed
process would. ``SimFS`` is the per-node view with the ``RealFS`` interface.
"""

from __future__ import annotations

import posixpath

KEEP = "keep"  # a crash keeps every written byte (power stays on: kill -9)
LOSE = "lose"  # a crash loses everything not fsynced (power loss)
TORN = "torn"  # a crash keeps a random prefix of the not-fsynced tail

CRASH_MODES = (KEEP, LOSE, TORN)


def _norm(path: str) -> str:
    p = posixpath.normpath(path)
    if not p.startswith("/"):
        p = "/" + p if p != "." else "/"
    return p


class _File:
    __slots__ = ("data", "synced", "fallback")

    def __init__(self, data: bytes = b"", synced: int = 0, fallback=None):
        self.data = bytearray(data)
        self.synced = synced
        # None: the durable image is data[:synced]. Otherwise a 1-tuple
        # holding the durable image (bytes, or None for "no file").
        self.fallback = fallback

    def durable_image(self) -> bytes | None:
        if self.fallback is not None:
            return self.fallback[0]
        return bytes(self.data[: self.synced])


class _AppendHandle:
    """What ``open_append`` returns: ``write``, ``flush``, ``close``."""

    __slots__ = ("disk", "file", "closed")

    def __init__(self, disk: "SimDisk", f: _File):
        self.disk = disk
        self.file = f
        self.closed = False

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        if not self.disk.dead:
            self.file.data += data
            self.disk.bytes_written += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class SimDisk:
    """The files of one node; survives the node's kill and restart."""

    def __init__(self, name: str):
        self.name = name
        self.files: dict[str, _File] = {}
        self.dirs: dict[str, None] = {"/": None}
        self.locks: dict[str, int] = {}
        self._lock_ids = 0
        self.dead = False
        self.bytes_written = 0
        self.fsyncs = 0

    # --- crash ----------------------------------------------------------------

    def crash(self, mode: str, rng=None) -> dict:
        """The machine dies: keep only what ``mode`` says survives.

        Returns {"lost_bytes": n, "files": k} for the event log. The disk
        stays dead (writes ignored) until ``revive``."""
        if mode not in CRASH_MODES:
            raise ValueError("crash mode must be one of %s" % (CRASH_MODES,))
        lost = 0
        touched = 0
        for path in sorted(self.files):
            f = self.files[path]
            unsynced = len(f.data) - f.synced
            if f.fallback is not None and mode != KEEP:
                img = f.fallback[0]
                lost += len(f.data)
                touched += 1
                if img is None:
                    del self.files[path]
                else:
                    self.files[path] = _File(img, len(img))
                continue
            if unsynced and mode != KEEP:
                keep = 0 if mode == LOSE else rng.randrange(unsynced + 1)
                lost += unsynced - keep
                touched += 1
                del f.data[f.synced + keep :]
            f.synced = len(f.data)
            f.fallback = None
        self.locks.clear()
        self.dead = True
        return {"lost_bytes": lost, "files": touched}

    def revive(self) -> None:
        self.dead = False

    # --- inspection (for checkers and tests) -----------------------------------

    def unsynced_bytes(self) -> int:
        return sum(len(f.data) - f.synced for f in self.files.values())


class SimFS:
    """One node's view of its disk, with ``RealFS``'s methods."""

    def __init__(self, disk: SimDisk):
        self.disk = disk

    # --- reads ----------------------------------------------------------------

    def exists(self, path: str) -> bool:
        p = _norm(path)
        return p in self.disk.files or p in self.disk.dirs

    def read(self, path: str) -> bytes:
        f = self.disk.files.get(_norm(path))
        if f is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        return bytes(f.data)

    def size(self, path: str) -> int:
        f = self.disk.files.get(_norm(path))
        if f is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        return len(f.data)

    def listdir(self, path: str) -> list[str]:
        p = _norm(path)
        if p not in self.disk.dirs:
            raise FileNotFoundError(2, "No such file or directory", path)
        prefix = p.rstrip("/") + "/"
        out = {}
        for name in list(self.disk.files) + list(self.disk.dirs):
            if name.startswith(prefix) and name != p:
                out[name[len(prefix) :].split("/", 1)[0]] = None
        return sorted(out)

    # --- writes ---------------------------------------------------------------

    def _parent_ok(self, p: str) -> None:
        parent = posixpath.dirname(p)
        if parent not in self.disk.dirs:
            raise FileNotFoundError(2, "No such file or directory", parent)

    def write_atomic(self, path: str, data: bytes, fsync: bool = True) -> None:
        d = self.disk
        if d.dead:
            return
        p = _norm(path)
        self._parent_ok(p)
        d.bytes_written += len(data)
        if fsync:
            d.fsyncs += 1
            d.files[p] = _File(data, len(data))
        else:
            old = d.files.get(p)
            fallback = (old.durable_image() if old is not None else None,)
            d.files[p] = _File(data, 0, fallback)

    def overwrite_in_place(self, path: str, data: bytes, fsync: bool = True) -> None:
        # (the simulated disk never fills, so this is write_atomic's result)
        self.write_atomic(path, data, fsync)

    def open_append(self, path: str):
        d = self.disk
        p = _norm(path)
        if not d.dead:
            self._parent_ok(p)
        f = d.files.get(p)
        if f is None:
            f = _File()
            if not d.dead:
                d.files[p] = f
        return _AppendHandle(d, f)

    def fsync(self, fh) -> None:
        if self.disk.dead:
            return
        f = fh.file
        f.synced = len(f.data)
        f.fallback = None
        self.disk.fsyncs += 1

    def makedirs(self, path: str) -> None:
        if self.disk.dead:
            return
        p = _norm(path)
        while p not in self.disk.dirs:
            self.disk.dirs[p] = None
            p = posixpath.dirname(p)

    def remove(self, path: str) -> None:
        if self.disk.dead:
            return
        self.disk.files.pop(_norm(path), None)

    def truncate(self, path: str, size: int) -> None:
        if self.disk.dead:
            return
        f = self.disk.files.get(_norm(path))
        if f is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        del f.data[size:]
        f.synced = min(f.synced, len(f.data))

    def lock_exclusive(self, path: str):
        d = self.disk
        p = _norm(path)
        if p in d.locks:
            raise BlockingIOError(11, "Resource temporarily unavailable", path)
        if p not in d.files and not d.dead:
            self._parent_ok(p)
            d.files[p] = _File()
        d._lock_ids += 1
        d.locks[p] = d._lock_ids
        return (p, d._lock_ids)

    def unlock(self, handle) -> None:
        p, lid = handle
        if self.disk.locks.get(p) == lid:
            del self.disk.locks[p]
