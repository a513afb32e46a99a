"""Append-only file, in Redis 7.0's multi-part layout.

``<dir>/<appenddirname>/`` holds a manifest naming one base file and the
incremental files after it::

    file appendonly.aof.1.base.aof seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i

Every file holds commands as RESP multibulk requests (frtrio writes its base
as commands, the ``aof-use-rdb-preamble no`` form, which redis-server 7.0
loads too). At start the base and the incremental files are replayed in
order; a legacy single ``<dir>/<appendfilename>`` is loaded when there is no
manifest. A tail cut short by a crash is handled as ``aof-load-truncated``
says: cut off (with a warning) or refused.

All file access goes through the Env's ``fs`` so the simulator can run it on
an in-memory disk.
"""

from __future__ import annotations

import logging
import os

from frtrio.protocol.parser import string2ll

log = logging.getLogger("frtrio.aof")


class AOFLoadError(Exception):
    """The AOF cannot be loaded; the server must not start."""


def encode_command(argv: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for a in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class _Truncated(Exception):
    def __init__(self, valid_upto: int):
        self.valid_upto = valid_upto


def parse_aof(data: bytes):
    """Yield (argv, end_offset) for each command; raises _Truncated at a
    short tail and AOFLoadError on a format error."""
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        if data[pos] != 42:  # '*'
            raise AOFLoadError("Bad file format reading the append only file")
        nl = data.find(b"\r\n", pos)
        if nl < 0:
            raise _Truncated(start)
        argc = string2ll(data[pos + 1 : nl])
        if argc is None or argc < 1:
            raise AOFLoadError("Bad file format reading the append only file")
        pos = nl + 2
        argv = []
        for _ in range(argc):
            if pos >= n:
                raise _Truncated(start)
            if data[pos] != 36:  # '$'
                raise AOFLoadError("Bad file format reading the append only file")
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                raise _Truncated(start)
            ln = string2ll(data[pos + 1 : nl])
            if ln is None or ln < 0:
                raise AOFLoadError("Bad file format reading the append only file")
            pos = nl + 2
            if pos + ln + 2 > n:
                raise _Truncated(start)
            argv.append(data[pos : pos + ln])
            pos += ln + 2
        yield argv, pos


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
        self.files: list[tuple[str, int, str]] = []  # (name, seq, type)
        self.buf: list[bytes] = []
        self.cur_db = -1
        self.fh = None
        self.dirty_since_fsync = False
        self.write_ok = True
        self.rewrites = 0
        self.loaded_commands = 0

    # --- manifest -------------------------------------------------------------

    def _read_manifest(self) -> bool:
        if not self.fs.exists(self.manifest_path):
            return False
        text = self.fs.read(self.manifest_path).decode("utf-8", "replace")
        files = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            kv = dict(zip(words[0::2], words[1::2]))
            if len(words) % 2 or "file" not in kv or "seq" not in kv or "type" not in kv:
                raise AOFLoadError(
                    "Invalid AOF manifest file format (line %d of %s)" % (lineno, self.manifest_path)
                )
            files.append((kv["file"], int(kv["seq"]), kv["type"]))
        self.files = files
        return True

    def _write_manifest(self) -> None:
        lines = "".join("file %s seq %d type %s\n" % f for f in self.files)
        self.fs.write_atomic(self.manifest_path, lines.encode())

    # --- load -----------------------------------------------------------------

    def load(self) -> None:
        """Replay the AOF into the server. Raises AOFLoadError on bad data."""
        srv = self.server
        srv.loading = True
        try:
            if self._read_manifest():
                to_load = [f for f in self.files if f[2] == "b"] + [f for f in self.files if f[2] == "i"]
                for idx, (name, _seq, typ) in enumerate(to_load):
                    path = os.path.join(self.dirpath, name)
                    if not self.fs.exists(path):
                        if typ == "b":
                            raise AOFLoadError("The AOF file %s doesn't exist" % name)
                        continue
                    if name.endswith(".rdb"):
                        raise AOFLoadError(
                            "The AOF base file %s is an RDB file; frtrio loads AOF-format bases only "
                            "(set aof-use-rdb-preamble no in redis-server to write one)" % name
                        )
                    self._load_file(path, last=(idx == len(to_load) - 1))
            elif self.fs.exists(self.legacy_path):
                self._load_file(self.legacy_path, last=True)
                self.files = []
        finally:
            srv.loading = False
            srv.propagated.clear()
            srv.dirty = 0

    def _load_file(self, path: str, last: bool) -> None:
        from frtrio.commands import table as _table

        srv = self.server
        data = self.fs.read(path)
        if data.startswith(b"REDIS"):
            raise AOFLoadError("RDB preamble in %s is not supported by frtrio" % path)
        c = srv.new_client("aof-loader", "")
        c.authenticated = True
        try:
            multi: list | None = None
            valid = 0
            try:
                for argv, end in parse_aof(data):
                    name = argv[0].lower()
                    if name == b"multi":
                        multi = []
                        continue
                    if name == b"exec":
                        for a in multi or []:
                            self._apply(c, _table, a)
                        multi = None
                        valid = end
                        continue
                    if multi is not None:
                        multi.append(argv)
                        continue
                    self._apply(c, _table, argv)
                    valid = end
                if multi is not None:
                    raise _Truncated(valid)
            except _Truncated as t:
                upto = min(t.valid_upto, valid) if multi is not None else t.valid_upto
                if not last or self.config.get("aof-load-truncated") != "yes":
                    raise AOFLoadError(
                        "Unexpected end of file reading the append only file %s. You can: "
                        "1) Make a backup of your AOF file, then use ./redis-check-aof --fix "
                        "<filename.manifest>. 2) Alternatively you can set the "
                        "'aof-load-truncated' configuration option to yes and restart the server."
                        % os.path.basename(path)
                    ) from None
                log.warning(
                    "!!! Warning: short read while loading the AOF file %s!!! AOF loaded anyway "
                    "because aof-load-truncated is enabled; truncating it to %d bytes",
                    path,
                    upto,
                )
                self.fs.truncate(path, upto)
        finally:
            srv.free_client(c)

    def _apply(self, c, _table, argv) -> None:
        srv = self.server
        cmd = _table.TABLE.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower(), cmd)
        if cmd is None or cmd.handler is None:
            raise AOFLoadError(
                "Unknown command '%s' reading the append only file" % argv[0].decode("latin-1")
            )
        srv.call(c, cmd, argv)
        c.out.clear()
        c.out_bytes = 0
        self.loaded_commands += 1

    # --- append -----------------------------------------------------------------

    def open_for_append(self) -> None:
        """Make sure the directory, manifest and an incr file exist."""
        self.fs.makedirs(self.dirpath)
        if not self.files:
            # first start with AOF on (or a legacy file): the base is the
            # current dataset, written as commands
            self._new_base_and_incr(seq=1)
        incr = [f for f in self.files if f[2] == "i"]
        if not incr:
            seq = max((f[1] for f in self.files), default=0) + 1
            self.files.append(("%s.%d.incr.aof" % (self.filename, seq), seq, "i"))
            self._write_manifest()
            incr = self.files[-1:]
        self.fh = self.fs.open_append(os.path.join(self.dirpath, incr[-1][0]))
        self.cur_db = -1

    def _dataset_commands(self) -> bytes:
        """The current dataset as commands (an AOF rewrite's base)."""
        from frtrio.persist.rewrite import dataset_as_commands

        return dataset_as_commands(self.server)

    def _new_base_and_incr(self, seq: int) -> None:
        base = "%s.%d.base.aof" % (self.filename, seq)
        incr = "%s.%d.incr.aof" % (self.filename, seq)
        self.fs.write_atomic(os.path.join(self.dirpath, base), self._dataset_commands())
        self.fs.write_atomic(os.path.join(self.dirpath, incr), b"")
        old = self.files
        self.files = [(base, seq, "b"), (incr, seq, "i")]
        self._write_manifest()
        for name, _s, _t in old:
            if name not in (base, incr):
                self.fs.remove(os.path.join(self.dirpath, name))

    def rewrite(self) -> None:
        """BGREWRITEAOF, done synchronously: new base from the dataset, new
        empty incr file, manifest switched atomically, old files removed."""
        self.write()
        if self.fh is not None:
            self.fh.close()
        seq = max((f[1] for f in self.files), default=0) + 1
        self._new_base_and_incr(seq)
        self.fh = self.fs.open_append(os.path.join(self.dirpath, self.files[-1][0]))
        self.cur_db = -1
        self.rewrites += 1

    def feed(self, propagated) -> None:
        buf = self.buf
        for dbid, argv in propagated:
            if dbid != self.cur_db:
                buf.append(encode_command([b"SELECT", b"%d" % dbid]))
                self.cur_db = dbid
            buf.append(encode_command(argv))

    def write(self) -> None:
        if not self.buf or self.fh is None:
            return
        data = b"".join(self.buf)
        self.buf.clear()
        try:
            self.fh.write(data)
            self.write_ok = True
        except OSError:
            self.write_ok = False
            raise
        self.dirty_since_fsync = True
        if self.config.get("appendfsync") == "always":
            self.fsync()

    def fsync(self) -> None:
        if self.fh is not None and self.dirty_since_fsync:
            self.fs.fsync(self.fh)
            self.dirty_since_fsync = False

    def everysec(self) -> None:
        if self.config.get("appendfsync") == "everysec":
            self.fsync()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
