"""The node's persistence shell: everything that puts the dataset on disk
or takes it back at the node's request, carried out on the commands'
behalf (they only leave effects, frtrio/core/effects.py).

* at start: the AOF (appendonly yes) or dump.rdb (the real server,
  ``node.persist_rdb``) is loaded (``attach``);
* SAVE / BGSAVE (``SaveSnapshot``), BGREWRITEAOF (``RewriteAof``), DEBUG
  RELOAD / LOADAOF (``DebugReload`` / ``DebugLoadAof``), CONFIG REWRITE
  (``RewriteConfig``): ``carry_out`` does the work and answers the command's
  deferred reply with the result;
* CONFIG SET appendonly switches the AOF on and off (``set_appendonly``);
* save points from the node's cron, the final snapshot at shutdown.

File access goes through the Env's ``fs`` (the simulator's in-memory disk),
except CONFIG REWRITE, which only the real server can do (it needs a
config file).
"""

from __future__ import annotations

import logging
import os

import trio

from frtrio.core.shutdown import save_at_exit
from frtrio.core.effects import DebugLoadAof, DebugReload, RewriteAof, RewriteConfig, SaveSnapshot
from frtrio.persist.aof import AOF
from frtrio.persist.aof_format import AOFLoadError
from frtrio.persist.aof_load import aof_files_size, load_aof_steps
from frtrio.persist.rdbfile import RdbLoadError
from frtrio.protocol.reply import OK, ErrorReply, Status

log = logging.getLogger("frtrio.aof")


# --- switching AOF on and off at run time (CONFIG SET appendonly) -----------------


def set_appendonly(node, on: bool) -> None:
    """CONFIG SET appendonly yes|no. Turning it on writes a base from the
    current dataset (Redis's startAppendOnly rewrite) and starts appending;
    turning it off flushes, fsyncs and closes the file."""
    from frtrio.config import ConfigError

    srv = node.server
    if on:
        if node.aof is not None and node.aof.enabled:
            return
        aof = AOF(node.env.fs, node.config, srv)
        try:
            aof.read_manifest()
            aof.enabled = True
            aof.rewrite()
        except (OSError, AOFLoadError) as e:
            log.warning("Unable to turn on AOF: %s", e)
            raise ConfigError("Unable to turn on AOF. Check server logs.", "appendonly") from None
        node.aof = aof
        srv.aof = aof
        log.info("AOF enabled")
    else:
        aof = node.aof
        if aof is None:
            return
        node.flush_effects()
        try:
            aof.write()
            aof.fsync()
        except OSError:
            pass
        aof.close()
        srv.aof_rewrites_total = srv.aof_rewrites_total + aof.rewrites
        node.aof = None
        srv.aof = None
        log.info("AOF disabled")


# --- dump.rdb --------------------------------------------------------------------------


def dump_path(cfg) -> str:
    return os.path.join(cfg.get("dir") or ".", cfg.get("dbfilename"))


def save_dump(node, counted: bool = True, status: bool = True) -> None:
    """SAVE: the dataset into <dir>/<dbfilename>, atomically. OSError or
    RdbError on failure (the status INFO shows is updated either way,
    except for a failed shutdown snapshot (``status`` False): Redis's
    foreground save at shutdown leaves the last background save's status,
    so a failed one does not make the node refuse writes)."""
    from frtrio.persist.rdbfile import rdb_bytes

    srv = node.server
    try:
        data = rdb_bytes(srv, node.config)
        node.env.fs.write_atomic(dump_path(node.config), data)
    except Exception as e:
        if status:
            srv.rdb_last_save_ok = False
            srv.refresh_disk_error()
        log.warning("Failed saving the DB: %s", getattr(e, "strerror", None) or e)
        raise
    srv.rdb_last_save_ok = True
    srv.refresh_disk_error()
    srv.lastsave_ms = srv.now_ms
    srv.dirty = 0
    if counted:
        srv.rdb_saves += 1
    log.info("DB saved on disk")


def load_dump(node) -> None:
    """At start with appendonly off: load dump.rdb when there is one (in one
    go; ``load_dump_serving`` is the same while serving clients)."""
    from frtrio.persist.rdbfile import load_rdb

    prep = _dump_to_load(node)
    if prep is None:
        return
    data, master, aux, expired_keys = prep
    srv = node.server
    srv.loading = True
    try:
        _, loaded, expired = _rdb_or_fatal(lambda: load_rdb(
            data, srv, node.config, aux=aux, keep_expired=not master,
            expired_keys=expired_keys))
    finally:
        srv.loading = False
    _dump_loaded(node, master, aux, expired_keys, loaded, expired)


def dump_load_serves(node) -> bool:
    """Should dump.rdb load while the node serves clients? When it is
    bigger than loading-process-events-interval-bytes or key-load-delay is
    set, as Redis then answers events in between (-LOADING)."""
    cfg = node.config
    path = dump_path(cfg)
    fs = node.env.fs
    return fs.exists(path) and _serves(cfg, fs.size(path))


def _serves(cfg, size: int) -> bool:
    return size > 0 and (bool(cfg.get_int("key-load-delay")) or (
        size > max(1, cfg.get_int("loading-process-events-interval-bytes"))))


async def load_dump_serving(node) -> None:
    """``load_dump`` with the listeners open: clients connecting meanwhile
    get -LOADING for the commands that are not allowed while loading, and
    INFO shows loading:1 with the progress (``load_steps_serving``)."""
    from frtrio.persist.rdbfile import load_rdb_steps

    prep = _dump_to_load(node)
    if prep is None:
        return
    data, master, aux, expired_keys = prep
    srv = node.server
    steps = load_rdb_steps(data, srv, node.config, aux=aux, keep_expired=not master,
                           expired_keys=expired_keys)
    try:
        _, loaded, expired = await load_steps_serving(node, steps, len(data))
    except RdbLoadError as e:
        raise AOFLoadError(e.fatal_lines()) from None
    _dump_loaded(node, master, aux, expired_keys, loaded, expired)


async def load_steps_serving(node, steps, total: int):
    """Drive a ``load_rdb_steps`` generator in the loading state, as Redis's
    rdbLoad does with processEventsWhileBlocked: every
    loading-process-events-interval-bytes of payload the node lets its other
    tasks run (clients are answered -LOADING, INFO shows the progress), and
    ``key-load-delay`` (a test hook: microseconds per key; -N: one in N keys
    waits 1 us) slows the load down. Returns the generator's result. Used
    for dump.rdb at startup and for a replica's full sync."""
    srv = node.server
    cfg = node.config
    env = node.env
    delay = cfg.get_int("key-load-delay")
    interval = max(1, cfg.get_int("loading-process-events-interval-bytes"))
    per_key_s = delay / 1e6 if delay > 0 else 1e-6 / -delay if delay < 0 else 0.0
    srv.loading = True
    srv.loading_start_s = env.unix_ms() // 1000
    srv.loading_total_bytes = total
    srv.loading_loaded_bytes = 0
    try:
        mark = interval
        owed = 0.0
        while True:
            try:
                pos = next(steps)
            except StopIteration as done:
                return done.value
            owed += per_key_s
            if pos >= mark:
                mark = pos + interval
                srv.loading_loaded_bytes = pos
                await trio.sleep(owed)
                owed = 0.0
                srv.now_ms = env.unix_ms()
                if srv.shutdown_asap and node.shutdown_tick():
                    # a signal while loading (Redis's whileBlockedCron): stop
                    # without saving the half-loaded dataset
                    await trio.lowlevel.checkpoint()
    finally:
        srv.loading = False
        srv.loading_loaded_bytes = 0


def _dump_to_load(node):
    """dump.rdb's bytes and what loading it needs, or None without one."""
    path = dump_path(node.config)
    fs = node.env.fs
    if not fs.exists(path):
        return None
    cfg = node.config
    core = node.server.cluster
    master = not cfg.get("replicaof") and (core is None or not core.state.myself.is_replica)
    return fs.read(path), master, {}, []


def _rdb_or_fatal(load):
    try:
        return load()
    except RdbLoadError as e:
        raise AOFLoadError(e.fatal_lines()) from None


def _dump_loaded(node, master, aux, expired_keys, loaded, expired) -> None:
    from frtrio.persist.rdbfile import repl_info

    srv = node.server
    srv.dirty = 0
    skipped = getattr(node.server, "rdb_last_load_empty_skipped", 0)
    if skipped:
        log.info("Done loading RDB, keys loaded: %d, keys expired: %d, empty keys skipped: %d.",
                 loaded, expired, skipped)
    else:
        log.info("Done loading RDB, keys loaded: %d, keys expired: %d.", loaded, expired)
    log.info("DB loaded from disk")
    restore_replication(srv, node.config, repl_info(aux), master, expired_keys)


def restore_replication(srv, cfg, rsi, master: bool, expired_keys: list) -> None:
    """Continue the replication history an RDB recorded (Redis's
    loadDataFromDisk): a replica takes the id and offset as its cached
    master, so it can PSYNC from there; a master keeps them as its
    secondary id, so its old replicas can. A master's keys that expired
    while it was down become DELs in its new backlog."""
    st = srv.repl.state
    dels = [(dbid, [b"UNLINK" if cfg.get("lazyfree-lazy-expire") == "yes" else b"DEL", k])
            for dbid, k in expired_keys]
    if rsi is None:
        if master and dels:
            # Redis fed them to a backlog it then dropped: only the offset moved
            st.create_backlog(int(cfg.get("repl-backlog-size")))
            st.feed(dels)
            st.free_backlog()
            st.slaveseldb = -1
        return
    stream_db, replid, offset = rsi
    if not master:
        st.replid = replid
        st.master_repl_offset = offset
        srv.repl.master_db = stream_db
        return
    st.replid2 = replid
    st.second_replid_offset = offset + 1
    st.master_repl_offset = offset
    st.create_backlog(int(cfg.get("repl-backlog-size")))
    st.feed(dels)
    srv.repl.no_replicas_since_ms = srv.now_ms


def _save_points_due(node) -> bool:
    srv = node.server
    now_s = srv.now_ms // 1000
    last_s = srv.lastsave_ms // 1000
    ok = srv.rdb_last_save_ok
    last_try = srv.rdb_last_try_ms // 1000
    if not ok and now_s - last_try <= 5:  # CONFIG_BGSAVE_RETRY_DELAY
        return False
    for secs, changes in node.config.save_params():
        if srv.dirty >= changes and now_s - last_s > secs:
            log.info("%d changes in %d seconds. Saving...", changes, secs)
            return True
    return False


# --- wiring into a node ---------------------------------------------------------------


def attach(node) -> None:
    """Load persisted data before the node accepts clients, and register
    the periodic duties:

    * appendonly yes: the AOF is loaded and opened for appending;
    * appendonly no and ``node.persist_rdb`` (set by the real server, not by
      the simulator): dump.rdb is loaded when present;
    * CONFIG SET appendonly switches the AOF;
    * with ``node.persist_rdb``: save points checked from the node's cron
      (``node.cron_hooks``), and the final RDB snapshot of a shutdown
      (``node.final_save``) when save points are configured (or SHUTDOWN
      SAVE), skipped for SHUTDOWN NOSAVE."""
    srv = node.server
    cfg = node.config
    rdb = node.persist_rdb
    if cfg.get("appendonly") == "yes":
        aof = AOF(node.env.fs, cfg, srv)
        if getattr(node, "load_serving", False) and _serves(cfg, aof_files_size(aof)):

            async def load_aof_serving(node) -> None:
                await load_steps_serving(node, load_aof_steps(aof), aof_files_size(aof))
                aof.open_for_append()
                node.aof = aof
                srv.aof = aof

            node.pending_load = load_aof_serving  # run() awaits it, listening
        else:
            aof.load()
            aof.open_for_append()
            node.aof = aof
            srv.aof = aof
    elif rdb:
        if getattr(node, "load_serving", False) and dump_load_serves(node):
            node.pending_load = load_dump_serving  # run() awaits it, listening
        else:
            load_dump(node)

    if rdb:
        def cron() -> None:
            if not srv.loading and _save_points_due(node):
                srv.rdb_last_try_ms = srv.now_ms
                try:
                    save_dump(node)
                except Exception:  # noqa: BLE001 - logged; retried later
                    pass

        def final_save(flags: int) -> bool:
            if not save_at_exit(flags, bool(cfg.save_params())):
                return True
            log.info("Saving the final RDB snapshot before exiting.")
            try:
                save_dump(node, status=False)
            except Exception:  # noqa: BLE001 - logged by save_dump
                return False
            return True

        node.cron_hooks.append(cron)
        node.final_save = final_save

    node.config_appliers["appendonly"] = lambda value: set_appendonly(node, value == "yes")


# --- the commands' persistence effects -------------------------------------------------


def debug_reload(node, save: bool = True, flush: bool = True, merge: bool = False) -> None:
    """DEBUG RELOAD: save dump.rdb (unless NOSAVE), empty the dataset and
    the function libraries (unless NOFLUSH; Redis's emptyData), load
    dump.rdb back. Without MERGE a library (or key) already there makes
    the load fail (Redis's RDBFLAGS_ALLOW_DUP)."""
    from frtrio.persist.rdbfile import RdbLoadError, load_rdb

    srv = node.server
    cfg = node.config
    if save:
        try:
            save_dump(node)
        except Exception:  # noqa: BLE001 - logged by save_dump
            raise ErrorReply("ERR") from None
    path = dump_path(cfg)
    if not node.env.fs.exists(path):
        log.warning("Error loading the RDB dump: %s does not exist", path)
        raise ErrorReply("ERR Error trying to load the RDB dump")
    data = node.env.fs.read(path)
    if flush:
        for db in srv.dbs:
            db.clear()
        srv.touch_all(None)
        if srv.scripting is not None:
            srv.scripting.flush_functions()
    try:
        load_rdb(data, srv, cfg, allow_dup=merge)
    except RdbLoadError as e:
        log.warning("Error loading the RDB dump: %s", e)
        raise ErrorReply("ERR Error trying to load the RDB dump") from None
    log.info("DB reloaded by DEBUG RELOAD")


def debug_loadaof(node) -> None:
    """DEBUG LOADAOF: flush the AOF, empty the dataset, replay the AOF.
    With appendonly off, the AOF on disk (a BGREWRITEAOF wrote one) is
    loaded all the same, as Redis does; when there is none, nothing
    changes (Redis exits)."""
    aof = node.aof
    srv = node.server
    if aof is None:
        probe = AOF(node.env.fs, node.config, srv)
        if not (probe.fs.exists(probe.manifest_path) or probe.fs.exists(probe.legacy_path)):
            return
    else:
        aof.write()
        aof.fsync()
    for db in srv.dbs:
        db.clear()
    srv.touch_all(None)
    fresh = AOF(node.env.fs, node.config, srv)
    try:
        fresh.load()
    except AOFLoadError as e:
        log.warning("Error loading the AOF: %s", e)
        raise ErrorReply("ERR Error loading the AOF file, check server logs.") from None
    log.info("Append Only File loaded by DEBUG LOADAOF")


def aof_rewrite(node) -> None:
    """BGREWRITEAOF, done at once (no fork): a new base and incr file."""
    srv = node.server
    aof = node.aof
    if aof is None:
        aof = AOF(node.env.fs, node.config, srv)  # AOF off: write a base (Redis does too)
        aof.read_manifest()
        aof.rewrite()
        srv.aof_rewrites_total = srv.aof_rewrites_total + 1
        srv.aof_last_rewrite_sec = aof.last_rewrite_time_sec
    else:
        aof.rewrite()


def rewrite_config(cfg, force_all: bool = False) -> None:
    """CONFIG REWRITE: rewrite cfg.config_file in place of the old one (a
    temp file, fsync, rename); ErrorReply with the OS error, as Redis
    answers."""
    from frtrio.config import rewrite_config_text, to_bytes

    path = cfg.config_file
    try:
        try:
            with open(path, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            old = b""
        content = rewrite_config_text(cfg, old, os.getcwd(), force_all)
        tmp = "%s.%06d" % (path, os.getpid() % 1000000)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, to_bytes(content))
            os.fsync(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o644 & ~umask)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
    except OSError as e:
        msg = os.strerror(e.errno) if e.errno else str(e)
        log.warning("CONFIG REWRITE failed: %s", msg)
        if force_all:
            raise ErrorReply("ERR CONFIG-REWRITE-FORCE-ALL failed: %s" % msg) from None
        raise ErrorReply("ERR Rewriting config file: %s" % msg) from None
    log.warning("CONFIG REWRITE executed with success.")


def carry_out(node, e) -> None:
    """One persistence effect: do the work, then answer the command's
    deferred reply (if it has one) with what Redis answers."""
    try:
        if type(e) is SaveSnapshot:
            try:
                save_dump(node, e.counted)
            except ErrorReply:
                raise
            except Exception:  # noqa: BLE001 - logged by save_dump
                raise ErrorReply("ERR") from None
            result = OK if e.reply_ok is None else Status(e.reply_ok)
        elif type(e) is RewriteAof:
            try:
                aof_rewrite(node)
            except ErrorReply:
                raise
            except Exception as ex:  # noqa: BLE001 - OSError, or a value that cannot be written
                raise ErrorReply("ERR Background append only file rewriting failed: %s"
                                 % (getattr(ex, "strerror", None) or ex)) from None
            result = Status(e.reply_ok)
        elif type(e) is DebugReload:
            debug_reload(node, e.save, e.flush, e.merge)
            result = OK
        elif type(e) is DebugLoadAof:
            node.flush_effects()
            debug_loadaof(node)
            result = OK
        elif type(e) is RewriteConfig:
            rewrite_config(node.config, e.force_all)
            result = OK
        else:  # pragma: no cover - a new effect type without a handler
            raise TypeError("no handler for effect %r" % (e,))
    except ErrorReply as err:
        result = err
    if e.reply is not None:
        e.reply.fill(result)
