"""Loading the AOF at start (Redis's loadAppendOnlyFiles): the manifest's
base and incremental files are replayed in order through the engine; a
legacy single ``<dir>/<appendfilename>`` without a manifest (with or without
an RDB preamble) is loaded and then moved into the directory as the base, as
Redis's upgrade does.

Loading follows ``loadSingleAppendOnlyFile``: ``#`` annotation lines are
skipped; a command cut short at the end of the *last* file is a truncated
tail, cut off with a warning when ``aof-load-truncated yes`` and refused
(exit 1) when ``no``; a MULTI without its EXEC at the end is reverted the same
way; anything else malformed, a truncated file that is not the last one, or
an unknown command refuses the start.
"""

from __future__ import annotations

import logging

from frtrio.persist.aof_format import AOFLoadError, BadFormat, Truncated, parse_aof
from frtrio.persist.aof_manifest import Manifest

log = logging.getLogger("frtrio.aof")


def load_aof(aof) -> None:
    """Replay the AOF into the server. Raises AOFLoadError on bad data."""
    for _ in load_aof_steps(aof):
        pass


def aof_files_size(aof) -> int:
    """The bytes ``load_aof`` will read (the progress INFO shows)."""
    fs = aof.fs
    if aof.read_manifest():
        paths = [aof.file_path(n) for n in aof.manifest.files()]
    else:
        paths = [aof.legacy_path]
    return sum(fs.size(p) for p in paths if fs.exists(p))


def _shifted(steps, off: int):
    """A load generator's offsets, moved by off; returns its result."""
    while True:
        try:
            pos = next(steps)
        except StopIteration as done:
            return done.value
        yield off + pos


def load_aof_steps(aof):
    """``load_aof`` one command (or RDB key) at a time: a generator that
    yields the offset reached across all the files, so a shell can serve
    clients while a big AOF loads (runtime/persistence.py)."""
    srv = aof.server
    saved = (dict(srv.stats), {k: list(v) for k, v in srv.cmdstats.items()},
             dict(srv.errorstats))
    srv.loading = True
    try:
        has_manifest = aof.read_manifest()
        if aof.fs.exists(aof.legacy_path) and _needs_upgrade(aof, has_manifest):
            _upgrade_prepare(aof)
            has_manifest = True
        if has_manifest:
            names = aof.manifest.files()
            if not names:
                log.info("The AOF manifest lists no files: starting empty")
            for name in names:
                # Redis sizes every listed file before it loads any: one
                # that is missing is fatal
                if not aof.fs.exists(aof.file_path(name)):
                    raise AOFLoadError("Unable to obtain the AOF file %s length. stat: No such "
                                       "file or directory" % name)
            off = 0
            for idx, name in enumerate(names):
                last = idx == len(names) - 1
                path = aof.file_path(name)
                off += yield from _shifted(_load_file(aof, path, name, last), off)
                if idx == 0 and aof.manifest.base and name == aof.manifest.base[0]:
                    log.info("DB loaded from base file %s", name)
                else:
                    log.info("DB loaded from incr file %s", name)
        else:
            return
        log.info("DB loaded from append only file: %d commands", aof.loaded_commands)
    finally:
        srv.loading = False
        srv.propagated.clear()
        srv.dirty = 0
        for cur, old in zip((srv.stats, srv.cmdstats, srv.errorstats), saved):
            cur.clear()
            cur.update(old)


def _needs_upgrade(aof, has_manifest: bool) -> bool:
    """Redis's three cases for a pre-7.0 ``<dir>/<appendfilename>``: no AOF
    directory; no manifest (or one that lists nothing); or a manifest that
    lists only that file as its base while the directory does not hold it
    (an upgrade interrupted before the file was moved)."""
    if not aof.fs.exists(aof.dirpath) or not has_manifest:
        return True
    m = aof.manifest
    if m.base is None and not m.incrs:
        return True
    return (m.base is not None and not m.incrs and m.base[0] == aof.filename
            and not aof.fs.exists(aof.file_path(aof.filename)))


def _upgrade_prepare(aof) -> None:
    """Redis's aofUpgradePrepare: the old single AOF becomes the base of a
    manifest in the AOF directory (manifest first, then the file moves in),
    and is loaded from there."""
    aof.fs.makedirs(aof.dirpath)
    aof.manifest = Manifest()
    aof.manifest.base = (aof.filename, 1)
    aof.write_manifest()
    aof.fs.write_atomic(aof.file_path(aof.filename), aof.fs.read(aof.legacy_path))
    aof.fs.remove(aof.legacy_path)
    log.info("Successfully migrated an old-style AOF file (%s) into the AOF directory (%s).",
             aof.filename, aof.config.get("appenddirname"))


def _load_file(aof, path: str, name: str, last: bool):
    """Load one file: a generator of the offsets reached in it, returning
    the file's size."""
    srv = aof.server
    data = aof.fs.read(path)
    start = 0
    if data.startswith(b"REDIS"):
        # an RDB base (appendonly.aof.N.base.rdb) or an old RDB preamble:
        # the RDB part, then (for a preamble) AOF commands after it
        from frtrio.persist.rdbfile import RdbLoadError, load_rdb_steps

        try:
            start, loaded, _exp = yield from load_rdb_steps(data, srv, aof.config,
                                                            preamble=True)
        except RdbLoadError as e:
            raise AOFLoadError("Error reading the RDB base file %s, AOF loading aborted: %s"
                               % (name, e)) from None
        log.info("Done loading RDB, keys loaded: %d, keys expired: 0.", loaded)
    elif name.endswith(".rdb") and data:
        raise AOFLoadError("Bad file format reading the append only file %s: the RDB base "
                           "does not start with an RDB signature" % name)
    c = srv.new_client("aof-loader", "")
    srv.set_client_user(c, srv.acl.superuser)  # Redis's NULL user: may do everything
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
                        _apply(aof, c, a, name)
                    multi = None
                    valid_up_to = end
                    continue
                if multi is not None:
                    _check_known(aof, argv, name)
                    multi.append(argv)
                    valid_up_to = end
                    continue
                _apply(aof, c, argv, name)
                valid_up_to = end
                yield end
            if multi is not None:
                log.warning("Revert incomplete MULTI/EXEC transaction in AOF file %s", name)
                valid_up_to = valid_before_multi
                raise Truncated()
        except BadFormat:
            raise AOFLoadError(
                "Bad file format reading the append only file %s: make a backup of your AOF "
                "file, then use ./redis-check-aof --fix <filename.manifest>" % name
            ) from None
        except Truncated:
            if aof.config.get("aof-load-truncated") != "yes":
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
            aof.fs.truncate(path, valid_up_to)
            log.warning("AOF %s loaded anyway because aof-load-truncated is enabled", name)
    finally:
        srv.free_client(c)
    return len(data)


def _lookup(aof, argv):
    cmd = aof.server.commands.get(argv[0].lower())
    if cmd is not None and cmd.subcommands and len(argv) > 1:
        cmd = cmd.subcommands.get(argv[1].lower(), cmd)
    return cmd


def _check_known(aof, argv, name):
    cmd = _lookup(aof, argv)
    if cmd is None or cmd.handler is None:
        raise AOFLoadError(
            "Unknown command '%s' reading the append only file %s"
            % (argv[0].decode("latin-1"), name)
        )
    return cmd


def _apply(aof, c, argv, name) -> None:
    cmd = _check_known(aof, argv, name)
    if cmd.fullname == "select" and aof.server.cluster is not None and len(argv) == 2:
        # Cluster mode refuses SELECT n>0. Redis 7.0 refuses it to its AOF
        # client too and loads the keys into db 0 (logging "== CRITICAL
        # =="); frtrio loads them where they were written, so that the
        # startup check refuses them (contract C08).
        from frtrio.protocol.parser import string2ll

        n = string2ll(argv[1])
        if n is not None and 0 <= n < len(aof.server.dbs):
            c.select(n)
            aof.loaded_commands += 1
            return
    aof.server.call(c, cmd, argv)
    c.out.clear()
    c.out_bytes = 0
    c.reply_mode = 0
    aof.loaded_commands += 1
