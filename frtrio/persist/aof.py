"""Append-only file, in Redis 7.0's multi-part layout (the node's
persistence wiring is in runtime/persistence.py).

``<dir>/<appenddirname>/`` holds a manifest naming one base file and the
incremental files after it (and, with ``aof-disable-auto-gc yes``, history
files waiting to be deleted)::

    file appendonly.aof.1.base.rdb seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i

The base is an RDB file when ``aof-use-rdb-preamble`` is yes (the default,
``persist/rdbfile.py``) and commands (``persist/rewrite.py``) when it is no;
the incr files hold commands as RESP multibulk requests. Both forms load in
redis-server 7.0, and frtrio loads both from redis-server. At start the base
and the incremental files are replayed in order; a legacy single
``<dir>/<appendfilename>`` without a manifest (with or without an RDB
preamble) is loaded and then moved into the directory as the base, as
Redis's upgrade does.

Loading follows ``loadSingleAppendOnlyFile``: ``#`` annotation lines are
skipped; a command cut short at the end of the *last* file is a truncated
tail, cut off with a warning when ``aof-load-truncated yes`` and refused
(exit 1) when ``no``; a MULTI without its EXEC at the end is reverted the same
way; anything else malformed, a truncated file that is not the last one, or
an unknown command refuses the start.

Writing: ``Node.flush_effects`` feeds the commands the engine propagated
(``SELECT`` when the db changes), writes them before any reply leaves, and
with ``appendfsync always`` fsyncs before that too; ``everysec`` fsyncs from
the cron once a second; ``no`` leaves it to the OS. BGREWRITEAOF is done
synchronously (the engine is single threaded and the dataset is in this
process): new base from the dataset, new empty incr file, the manifest
switched atomically, old files deleted.

All file access goes through the Env's ``fs`` so the simulator can run it on
an in-memory disk.
"""

from __future__ import annotations

import errno
import logging
import os
from frtrio.cnum import atoi, strtol

log = logging.getLogger("frtrio.aof")


class AOFLoadError(Exception):
    """The AOF cannot be loaded; the server must not start (exit code 1)."""


def encode_command(argv: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for a in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


# --- reading ----------------------------------------------------------------------------


class _Truncated(Exception):
    """Unexpected end of file (Redis's ``uxeof``)."""


class _BadFormat(Exception):
    """Redis's ``fmterr``."""


def parse_aof(data: bytes, start: int = 0):
    """Yield (argv, end_offset) for each command from ``start``, reading the
    way Redis's loader does. Raises _Truncated at a short tail and _BadFormat
    on a format error."""
    pos = start
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        line = data[pos:] if nl < 0 else data[pos : nl + 1]
        if line[:1] == b"#":
            if nl < 0:
                return  # an annotation at EOF: nothing more
            pos = nl + 1
            continue
        if line[:1] != b"*":
            raise _BadFormat()
        if len(line) < 2 or line[1:2] in (b"",):
            raise _Truncated()
        argc = atoi(line[1:])  # Redis: atoi for the count
        if argc < 1:
            raise _BadFormat()
        if nl < 0:
            raise _Truncated()
        pos = nl + 1
        argv = []
        for _ in range(argc):
            if pos >= n:
                raise _Truncated()
            nl = data.find(b"\n", pos)
            if data[pos : pos + 1] != b"$":
                raise _BadFormat()
            if nl < 0:
                raise _Truncated()
            ln = strtol(data[pos + 1 : nl])  # Redis: strtol for lengths
            if ln < 0:
                raise _BadFormat()
            pos = nl + 1
            if pos + ln + 2 > n:
                raise _Truncated()
            argv.append(data[pos : pos + ln])
            pos += ln + 2
        yield argv, pos


class Manifest:
    """The manifest: base, incr and history files, in order."""

    def __init__(self):
        self.base: tuple[str, int] | None = None
        self.incrs: list[tuple[str, int]] = []
        self.history: list[tuple[str, int]] = []

    @property
    def next_incr_seq(self) -> int:
        return (self.incrs[-1][1] if self.incrs else 0) + 1

    @property
    def next_base_seq(self) -> int:
        return (self.base[1] if self.base else 0) + 1

    def files(self) -> list[str]:
        out = [self.base[0]] if self.base else []
        return out + [f for f, _ in self.incrs]

    def entries(self) -> list[tuple[str, int]]:
        return ([self.base] if self.base else []) + list(self.incrs)

    def render(self) -> bytes:
        from frtrio.config import repr_bytes

        def name(f: str) -> str:
            b = f.encode("utf-8", "surrogateescape")
            if any(c <= 32 or c >= 127 or c in b"\"'\\" for c in b):
                return repr_bytes(b)
            return f

        lines = []
        if self.base:
            lines.append("file %s seq %d type b\n" % (name(self.base[0]), self.base[1]))
        for f, seq in self.history:
            lines.append("file %s seq %d type h\n" % (name(f), seq))
        for f, seq in self.incrs:
            lines.append("file %s seq %d type i\n" % (name(f), seq))
        return "".join(lines).encode("utf-8", "surrogateescape")

    @classmethod
    def parse(cls, data: bytes, path: str) -> "Manifest":
        from frtrio.protocol.parser import split_args

        m = cls()
        bad = "Invalid AOF manifest file format (%s)" % path
        last_incr = 0
        for raw in data.split(b"\n"):
            line = raw.strip(b" \t\r\n")
            if not line or line[:1] == b"#":
                continue
            words = split_args(line)
            if not words or len(words) % 2:
                raise AOFLoadError(bad)
            kv = {}
            for k, v in zip(words[0::2], words[1::2]):
                kv[k.decode("latin-1")] = v
            if "file" not in kv or "seq" not in kv or "type" not in kv:
                raise AOFLoadError(bad)
            fname = kv["file"].decode("utf-8", "surrogateescape")
            if "/" in fname:
                raise AOFLoadError(bad)
            try:
                seq = int(kv["seq"])
            except ValueError:
                raise AOFLoadError(bad) from None
            typ = kv["type"]
            if typ == b"b":
                if m.base is not None:
                    raise AOFLoadError("Found duplicate base file information (%s)" % path)
                m.base = (fname, seq)
            elif typ == b"h":
                m.history.append((fname, seq))
            elif typ == b"i":
                if seq <= last_incr:
                    raise AOFLoadError("Found a non-monotonic sequence number (%s)" % path)
                last_incr = seq
                m.incrs.append((fname, seq))
            else:
                raise AOFLoadError("Unknown AOF file type (%s)" % path)
        return m


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

    def _write_manifest(self) -> None:
        self.fs.write_atomic(self.manifest_path, self.manifest.render())

    def _path(self, name: str) -> str:
        return os.path.join(self.dirpath, name)

    def _size(self, name: str) -> int:
        p = self._path(name)
        try:
            return self.fs.size(p) if self.fs.exists(p) else 0
        except OSError:
            return 0

    # --- load -----------------------------------------------------------------

    def load(self) -> None:
        """Replay the AOF into the server. Raises AOFLoadError on bad data."""
        srv = self.server
        saved = (dict(srv.stats), {k: list(v) for k, v in srv.cmdstats.items()},
                 dict(srv.errorstats))
        srv.loading = True
        try:
            if self.read_manifest():
                names = self.manifest.files()
                if not names:
                    log.info("The AOF manifest lists no files: starting empty")
                for idx, name in enumerate(names):
                    last = idx == len(names) - 1
                    path = self._path(name)
                    if not self.fs.exists(path):
                        log.warning("The append log file %s doesn't exist: No such file or "
                                    "directory", name)
                        continue
                    self._load_file(path, name, last)
                    if idx == 0 and self.manifest.base and name == self.manifest.base[0]:
                        log.info("DB loaded from base file %s", name)
                    else:
                        log.info("DB loaded from incr file %s", name)
            elif self.fs.exists(self.legacy_path):
                self._load_file(self.legacy_path, self.filename, True)
                self._upgrade_legacy()
            else:
                return
            log.info("DB loaded from append only file: %d commands", self.loaded_commands)
        finally:
            srv.loading = False
            srv.propagated.clear()
            srv.dirty = 0
            for cur, old in zip((srv.stats, srv.cmdstats, srv.errorstats), saved):
                cur.clear()
                cur.update(old)

    def _upgrade_legacy(self) -> None:
        """A pre-7.0 single AOF becomes the base of a new manifest."""
        self.fs.makedirs(self.dirpath)
        data = self.fs.read(self.legacy_path)
        self.fs.write_atomic(self._path(self.filename), data)
        self.manifest = Manifest()
        self.manifest.base = (self.filename, 1)
        self._write_manifest()
        self.fs.remove(self.legacy_path)
        log.info("Successfully migrated an old-style AOF into the AOF directory")

    def _load_file(self, path: str, name: str, last: bool) -> None:
        from frtrio.commands import table as _table

        srv = self.server
        data = self.fs.read(path)
        start = 0
        if data.startswith(b"REDIS"):
            # an RDB base (appendonly.aof.N.base.rdb) or an old RDB preamble:
            # the RDB part, then (for a preamble) AOF commands after it
            from frtrio.persist.rdbfile import RdbLoadError, load_rdb

            try:
                start, loaded, _exp = load_rdb(data, srv, self.config, preamble=True)
            except RdbLoadError as e:
                raise AOFLoadError("Error reading the RDB base file %s, AOF loading aborted: %s"
                                   % (name, e)) from None
            log.info("Done loading RDB, keys loaded: %d, keys expired: 0.", loaded)
        elif name.endswith(".rdb") and data:
            raise AOFLoadError("Bad file format reading the append only file %s: the RDB base "
                               "does not start with an RDB signature" % name)
        c = srv.new_client("aof-loader", "")
        srv.stats["total_connections_received"] -= 1
        c.authenticated = True
        valid_up_to = start
        valid_before_multi = start
        multi: list | None = None
        try:
            try:
                for argv, end in parse_aof(data, start):
                    lname = argv[0].lower()
                    if lname == b"multi":
                        valid_before_multi = valid_up_to
                        multi = []
                        valid_up_to = end
                        continue
                    if lname == b"exec" and multi is not None:
                        for a in multi:
                            self._apply(c, _table, a, name)
                        multi = None
                        valid_up_to = end
                        continue
                    if multi is not None:
                        self._check_known(_table, argv, name)
                        multi.append(argv)
                        valid_up_to = end
                        continue
                    self._apply(c, _table, argv, name)
                    valid_up_to = end
                if multi is not None:
                    log.warning("Revert incomplete MULTI/EXEC transaction in AOF file %s", name)
                    valid_up_to = valid_before_multi
                    raise _Truncated()
            except _BadFormat:
                raise AOFLoadError(
                    "Bad file format reading the append only file %s: make a backup of your AOF "
                    "file, then use ./redis-check-aof --fix <filename.manifest>" % name
                ) from None
            except _Truncated:
                if self.config.get("aof-load-truncated") != "yes":
                    raise AOFLoadError(
                        "Unexpected end of file reading the append only file %s. You can: "
                        "1) Make a backup of your AOF file, then use ./redis-check-aof --fix "
                        "<filename.manifest>. 2) Alternatively you can set the "
                        "'aof-load-truncated' configuration option to yes and restart the server."
                        % name
                    ) from None
                if not last:
                    raise AOFLoadError(
                        "Fatal error: the truncated file is not the last file (%s)" % name
                    ) from None
                log.warning("!!! Warning: short read while loading the AOF file %s!!!", name)
                log.warning("!!! Truncating the AOF %s at offset %d !!!", name, valid_up_to)
                self.fs.truncate(path, valid_up_to)
                log.warning("AOF %s loaded anyway because aof-load-truncated is enabled", name)
        finally:
            srv.free_client(c)

    def _lookup(self, _table, argv):
        cmd = self.server.commands.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower(), cmd)
        return cmd

    def _check_known(self, _table, argv, name):
        cmd = self._lookup(_table, argv)
        if cmd is None or cmd.handler is None:
            raise AOFLoadError(
                "Unknown command '%s' reading the append only file %s"
                % (argv[0].decode("latin-1"), name)
            )
        return cmd

    def _apply(self, c, _table, argv, name) -> None:
        cmd = self._check_known(_table, argv, name)
        if cmd.fullname == "select" and self.server.cluster is not None and len(argv) == 2:
            # Cluster mode refuses SELECT n>0. Redis 7.0 refuses it to its AOF
            # client too and loads the keys into db 0 (logging "== CRITICAL
            # =="); frtrio loads them where they were written, so that the
            # startup check refuses them (contract C08).
            from frtrio.protocol.parser import string2ll

            n = string2ll(argv[1])
            if n is not None and 0 <= n < len(self.server.dbs):
                c.select(n)
                self.loaded_commands += 1
                return
        self.server.call(c, cmd, argv)
        c.out.clear()
        c.out_bytes = 0
        c.reply_mode = 0
        self.loaded_commands += 1

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
            self.fs.write_atomic(self._path(base), data)
            m.base = (base, 1)
            log.info("Creating AOF base file %s on server start", base)
        if not m.incrs:
            seq = m.next_incr_seq
            incr = "%s.%d.incr.aof" % (self.filename, seq)
            self.fs.write_atomic(self._path(incr), b"")
            m.incrs.append((incr, seq))
            self._write_manifest()
            log.info("Creating AOF incr file %s on server start", incr)
        self._gc_history()
        self.incr_path = self._path(m.incrs[-1][0])
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

        return "aof", dataset_as_commands(self.server)

    def _gc_history(self) -> None:
        m = self.manifest
        if not m.history or self.config.get("aof-disable-auto-gc") == "yes":
            return
        for name, _seq in m.history:
            log.info("Removing the history file %s in the background", name)
            self.fs.remove(self._path(name))
        m.history = []
        self._write_manifest()

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
            self.fs.write_atomic(self._path(base), data)
            new_incrs = []
            if self.enabled:
                seq = m.next_incr_seq
                incr = "%s.%d.incr.aof" % (self.filename, seq)
                self.fs.write_atomic(self._path(incr), b"")
                new_incrs = [(incr, seq)]
                log.info("Creating AOF incr file %s on background rewrite", incr)
            new_seq = m.next_base_seq
            m.base = (base, new_seq)
            m.history += [e for e in old if e[0] != base]
            m.incrs = new_incrs
            self._write_manifest()
            if self.fh is not None:
                self.fh.close()
                self.fh = None
            if self.enabled:
                self.incr_path = self._path(new_incrs[0][0])
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
