"""The AOF writer: the node's open append-only file (Redis 7.0's
multi-part layout, see ``aof_manifest``), loaded at start by ``aof_load``.

Writing: the persistence shell feeds the commands the engine propagated
(``SELECT`` when the db changes), writes them before any reply leaves, and
with ``appendfsync always`` fsyncs before that too; ``everysec`` fsyncs from
the cron once a second; ``no`` leaves it to the OS. BGREWRITEAOF is done
synchronously (the engine is single threaded and the dataset is in this
process): new base from the dataset (an RDB file when
``aof-use-rdb-preamble`` is yes, ``persist/rdbfile.py``, else commands,
``persist/rewrite.py``), new empty incr file, the manifest switched
atomically, old files deleted.

All file access goes through the Env's ``fs`` so the simulator can run it on
an in-memory disk.
"""

from __future__ import annotations

import errno
import logging
import os

from frtrio.core.effects import ReplOnly
from frtrio.persist.aof_format import encode_command
from frtrio.persist.aof_load import load_aof
from frtrio.persist.aof_manifest import Manifest

log = logging.getLogger("frtrio.aof")


# --- the AOF ------------------------------------------------------------------------------


class AOF:
    def __init__(self, fs, config, server):
        self.fs = fs
        self.config = config
        self.server = server
        base_dir = config.get("dir") or "."
        self.dirpath = os.path.join(base_dir, config.get("appenddirname"))
        self.filename = config.get("appendfilename")
        self.legacy_path = os.path.join(base_dir, self.filename)
        self.manifest_path = os.path.join(self.dirpath, self.filename + ".manifest")
        self.manifest = Manifest()
        self.buf: list[bytes] = []
        self.buf_len = 0
        self.cur_db = -1
        self.fh = None
        self.incr_path: str | None = None
        self.dirty_since_fsync = False
        self.write_ok = True
        self.rewrites = 0
        self.rewrite_ok = True
        self.last_rewrite_time_sec = -1
        self.loaded_commands = 0
        self.current_size = 0  # bytes in base + incr files
        self.base_size = 0  # current_size at the last rewrite / start
        self.last_ts = 0
        self.enabled = False
        # entries of server.propagated already in the dataset a rewrite just
        # wrote: the next feed skips them
        self.skip = 0

    # --- manifest -------------------------------------------------------------

    def read_manifest(self) -> bool:
        if not self.fs.exists(self.manifest_path):
            return False
        self.manifest = Manifest.parse(self.fs.read(self.manifest_path), self.manifest_path)
        return True

    def write_manifest(self) -> None:
        self.fs.write_atomic(self.manifest_path, self.manifest.render())

    def file_path(self, name: str) -> str:
        return os.path.join(self.dirpath, name)

    def _size(self, name: str) -> int:
        p = self.file_path(name)
        try:
            return self.fs.size(p) if self.fs.exists(p) else 0
        except OSError:
            return 0
    def load(self) -> None:
        """Replay the AOF into the server (``aof_load``). Raises AOFLoadError
        on bad data."""
        load_aof(self)

    # --- append -----------------------------------------------------------------

    def open_for_append(self) -> None:
        """At start: make sure the directory, the manifest, a base and an incr
        file exist, and open the last incr file for appending."""
        self.fs.makedirs(self.dirpath)
        m = self.manifest
        if m.base is None and not m.incrs:
            # first start with AOF on: the base is the dataset (usually empty)
            suffix, data = self._base_content()
            base = "%s.%d.base.%s" % (self.filename, 1, suffix)
            self.fs.write_atomic(self.file_path(base), data)
            m.base = (base, 1)
            log.info("Creating AOF base file %s on server start", base)
        if not m.incrs:
            seq = m.next_incr_seq
            incr = "%s.%d.incr.aof" % (self.filename, seq)
            self.fs.write_atomic(self.file_path(incr), b"")
            m.incrs.append((incr, seq))
            self.write_manifest()
            log.info("Creating AOF incr file %s on server start", incr)
        self._gc_history()
        self.incr_path = self.file_path(m.incrs[-1][0])
        self.fh = self.fs.open_append(self.incr_path)
        self.cur_db = -1
        self.current_size = sum(self._size(f) for f in m.files())
        self.base_size = self.current_size
        self.enabled = True

    def _base_content(self) -> tuple[str, bytes]:
        """(suffix, data) of a new base: an RDB file when aof-use-rdb-preamble
        is yes (Redis's default), else the dataset as commands."""
        if self.config.get("aof-use-rdb-preamble") == "yes":
            from frtrio.persist.rdbfile import rdb_bytes

            return "rdb", rdb_bytes(self.server, self.config, aof_base=True)
        from frtrio.persist.rewrite import dataset_as_commands

        data = dataset_as_commands(self.server)
        if self.config.get("aof-timestamp-enabled") == "yes":
            # a command base starts with the time of the rewrite (Redis's
            # rewriteAppendOnlyFileRio)
            data = b"#TS:%d\r\n" % (self.server.now_ms // 1000) + data
        return "aof", data

    def _gc_history(self) -> None:
        m = self.manifest
        if not m.history or self.config.get("aof-disable-auto-gc") == "yes":
            return
        for name, _seq in m.history:
            log.info("Removing the history file %s in the background", name)
            self.fs.remove(self.file_path(name))
        m.history = []
        self.write_manifest()

    def rewrite(self) -> None:
        """BGREWRITEAOF, done synchronously: a new base from the dataset, a
        new empty incr file (when AOF is on), the manifest switched
        atomically, the old files become history and are deleted."""
        srv = self.server
        t0 = srv.now_ms
        try:
            if self.enabled:
                self.write()
                self.fsync()
            self.fs.makedirs(self.dirpath)
            if not self.enabled and not self.manifest.base and not self.manifest.incrs:
                self.read_manifest()
            m = self.manifest
            old = m.entries()
            suffix, data = self._base_content()
            base = "%s.%d.base.%s" % (self.filename, m.next_base_seq, suffix)
            self.fs.write_atomic(self.file_path(base), data)
            new_incrs = []
            if self.enabled:
                seq = m.next_incr_seq
                incr = "%s.%d.incr.aof" % (self.filename, seq)
                self.fs.write_atomic(self.file_path(incr), b"")
                new_incrs = [(incr, seq)]
                log.info("Creating AOF incr file %s on background rewrite", incr)
            new_seq = m.next_base_seq
            m.base = (base, new_seq)
            m.history += [e for e in old if e[0] != base]
            m.incrs = new_incrs
            self.write_manifest()
            if self.fh is not None:
                self.fh.close()
                self.fh = None
            if self.enabled:
                self.incr_path = self.file_path(new_incrs[0][0])
                self.fh = self.fs.open_append(self.incr_path)
            self.cur_db = -1
            self._gc_history()
            self.skip = len(srv.propagated)
            self.current_size = len(data)
            self.base_size = len(data)
            self.rewrites += 1
            self.rewrite_ok = True
            self.last_rewrite_time_sec = max(0, (srv.now_ms - t0) // 1000)
            log.info("Background AOF rewrite finished successfully")
        except OSError as e:
            self.rewrite_ok = False
            log.warning("Background AOF rewrite failed: %s", e)
            raise

    def feed(self, propagated) -> None:
        buf = self.buf
        if self.skip:
            propagated = propagated[self.skip :]
            self.skip = 0
        if self.config.get("aof-timestamp-enabled") == "yes":
            ts = self.server.now_ms // 1000
            if ts > self.last_ts:
                b = b"#TS:%d\r\n" % ts
                buf.append(b)
                self.buf_len += len(b)
                self.last_ts = ts
        for dbid, argv in propagated:
            if type(argv) is ReplOnly:
                continue  # (a script's redis.set_repl(REPL_REPLICA))
            if dbid != self.cur_db:
                b = encode_command([b"SELECT", b"%d" % dbid])
                buf.append(b)
                self.buf_len += len(b)
                self.cur_db = dbid
            b = encode_command(argv)
            buf.append(b)
            self.buf_len += len(b)

    def write(self) -> None:
        """Write the buffer to the incr file (Redis's flushAppendOnlyFile).

        A failed or short write (a full disk) never leaves a torn command in
        the file: the partial tail is cut off again, or, if that fails too,
        the bytes that did reach the file leave the buffer so the retry
        continues where the file ends. Until a write succeeds the server
        refuses writes with -MISCONF (``Server.disk_error``); the buffer is
        retried after every command batch and from the cron. Under
        ``appendfsync always`` the process exits, as Redis does: the reply
        to the write has not left yet, so no acknowledged write is lost.
        """
        if not self.buf or self.fh is None:
            return
        data = b"".join(self.buf)
        err: OSError | None = None
        try:
            n = self.fh.write(data)
        except OSError as e:
            err, n = e, 0
        n = n or 0
        if n != len(data):
            self._write_failed(data, n, err)
            return
        self.buf.clear()
        self.buf_len = 0
        self.current_size += len(data)
        self.dirty_since_fsync = True
        if self.config.get("appendfsync") == "always":
            self.fsync()
        if not self.write_ok:
            log.warning("AOF write error looks solved, Redis can write again.")
            self._set_write_status(True)

    def _write_failed(self, data: bytes, n: int, err: OSError | None) -> None:
        if err is not None:
            log.warning("Error writing to the AOF file: %s", err.strerror or err)
            reason = err.strerror or str(err)
        else:
            log.warning("Short write while writing to the AOF file: (nwritten=%d, expected=%d)",
                        n, len(data))
            reason = os.strerror(errno.ENOSPC)  # what Redis reports for a short write
        if n:
            try:
                self.fs.truncate(self.incr_path, self.fs.size(self.incr_path) - n)
            except OSError as e:
                log.warning("Could not remove short write from the append-only file.  Redis may "
                            "refuse to load the AOF the next time it starts.  ftruncate: %s",
                            e.strerror or e)
                self.current_size += n
                rest = data[n:]
                self.buf[:] = [rest]
                self.buf_len = len(rest)
        if self.config.get("appendfsync") == "always":
            log.warning("Can't recover from AOF write error when the AOF fsync policy is "
                        "'always'. Exiting...")
            raise SystemExit(1)
        self._set_write_status(False, reason)

    def _set_write_status(self, ok: bool, reason: str = "") -> None:
        self.write_ok = ok
        self.server.aof_write_error = None if ok else reason
        self.server.refresh_disk_error()

    def fsync(self) -> None:
        if self.fh is not None and self.dirty_since_fsync:
            try:
                self.fs.fsync(self.fh)
            except OSError as e:
                if self.config.get("appendfsync") == "always":
                    log.warning("Can't persist AOF for fsync error when the AOF fsync policy is "
                                "'always': %s. Exiting...", e.strerror or e)
                    raise SystemExit(1) from None
                log.warning("Error fsyncing the AOF file: %s", e.strerror or e)
                self._set_write_status(False, e.strerror or str(e))
                return
            self.dirty_since_fsync = False

    def everysec(self) -> None:
        """The once-a-second cron duty: fsync for ``everysec``, and the
        automatic rewrite (auto-aof-rewrite-percentage / -min-size)."""
        if not self.write_ok:
            self.write()  # retry a failed write (Redis's serverCron does)
        if self.config.get("appendfsync") == "everysec":
            self.fsync()
        self.maybe_auto_rewrite()

    def maybe_auto_rewrite(self) -> bool:
        cfg = self.config
        perc = cfg.get_int("auto-aof-rewrite-percentage")
        if not self.enabled or not perc:
            return False
        if self.current_size < cfg.get_int("auto-aof-rewrite-min-size"):
            return False
        base = self.base_size or 1
        growth = (self.current_size * 100 // base) - 100
        if growth < perc:
            return False
        log.info("Starting automatic rewriting of AOF on %d%% growth", growth)
        try:
            self.rewrite()
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass  # (a full disk: the data was already refused or cut off)
            self.fh = None
        self.enabled = False
        if not self.write_ok:
            self._set_write_status(True)  # AOF off: nothing to refuse writes for

    # --- INFO ---------------------------------------------------------------------

    def info_fields(self) -> list[str]:
        return [
            "aof_current_size:%d" % self.current_size,
            "aof_base_size:%d" % self.base_size,
            "aof_pending_rewrite:0",
            "aof_buffer_length:%d" % self.buf_len,
            "aof_pending_bio_fsync:0",
            "aof_delayed_fsync:0",
        ]
