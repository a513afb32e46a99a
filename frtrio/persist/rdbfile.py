"""RDB files: dump.rdb (SAVE, BGSAVE, save points, shutdown) and the RDB base
of an AOF (``aof-use-rdb-preamble yes``), in Redis 7.0's format (RDB version
10), so that files move both ways between frtrio and redis-server.

The objects themselves are (de)serialized by ``store.rdb`` (the DUMP/RESTORE
code); this module adds the file around them::

    "REDIS0010"
    AUX redis-ver / redis-bits / ctime / used-mem / aof-base   (0xFA key value)
    per db with keys:  SELECTDB (0xFE) n, RESIZEDB (0xFB) keys expires,
                       per key: [EXPIRETIME_MS (0xFC) 8 bytes LE] type key object
    EOF (0xFF), CRC64 (8 bytes LE; 0 when rdbchecksum is off)

Loading accepts what Redis 7.0 writes and reads: the opcodes above plus
EXPIRETIME (seconds), LRU/LFU hints (ignored), FUNCTION2 (function
libraries: frtrio/scripting/persist.py), and any RDB version up to 10. Keys already
expired are dropped when a master loads dump.rdb and kept when loading an AOF
base or on a replica (Redis's iAmMaster check), as Redis does. Module data, streams and anything unknown refuse the load with
the reason.

Pure: bytes in, bytes out; the caller reads and writes files.
"""

from __future__ import annotations

import logging
import struct

from frtrio.cluster.slots import key_slot
from frtrio.config import VERSION
from frtrio.core import evict as _evict
from frtrio.scripting import persist as _functions
from frtrio.store import rdb as _rdb
from frtrio.store import crc64, rdb_format, rdb_strings
from frtrio.store.db import unpacked

log = logging.getLogger("frtrio.rdb")

MAGIC = b"REDIS%04d" % rdb_format.RDB_VERSION

OP_FUNCTION2 = 0xF5
OP_FUNCTION = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF


class RdbLoadError(Exception):
    """The RDB data cannot be loaded; the server must not start. ``report``
    is the line Redis's rdbReportCorruptRDB logs after the message, if any."""

    def __init__(self, msg: str, report: str | None = None):
        super().__init__(msg)
        self.report = report

    def fatal_lines(self) -> str:
        """What the server logs before it exits at start (a corrupt file:
        Redis's report line, then the check of the file, then the end)."""
        if self.report is not None:
            return "%s\n%s\nTerminating server after rdb file reading failure." % (
                self, self.report)
        return "Fatal error loading the DB: %s. Exiting." % self


def limits(cfg) -> _rdb.Limits:
    return _rdb.Limits.from_config(cfg)


def asm_record(server) -> bytes:
    """The atomic slot migration import in progress here (or mirrored from
    my master), as Redis 8.4's ``cluster-asm-task`` AUX field; b"" if none."""
    core = getattr(server, "cluster", None)
    return core.migrations.record_value() if core is not None else b""


def trimming_slots(server) -> frozenset:
    """Slots in an atomic slot migration trim job: their keys are on their
    way out, and neither an RDB nor an AOF rewrite keeps them (Redis 8.4)."""
    core = getattr(server, "cluster", None)
    return core.migrations.trimming_slots() if core is not None else frozenset()


def aux_records(redis_ver: bytes, ctime_s: int, used_mem: int, rsi, aof_base: bool,
                asm_task: bytes = b"") -> bytes:
    """The AUX fields at the head of an RDB, in Redis's order; ``rsi``
    (stream db, replication id, offset) adds the replication info a node
    needs to continue a replication history after loading it; ``asm_task``
    an unfinished slot import (whoever loads it trims its partial keys
    unless the import completes)."""
    aux = [
        (b"redis-ver", redis_ver),
        (b"redis-bits", b"64"),
        (b"ctime", b"%d" % ctime_s),
        (b"used-mem", b"%d" % used_mem),
    ]
    if rsi is not None:
        stream_db, replid, offset = rsi
        aux += [
            (b"repl-stream-db", b"%d" % stream_db),
            (b"repl-id", replid.encode()),
            (b"repl-offset", b"%d" % offset),
        ]
    aux.append((b"aof-base", b"1" if aof_base else b"0"))
    if asm_task:
        aux.append((b"cluster-asm-task", asm_task))
    enc = rdb_strings.enc_string
    return b"".join(bytes((OP_AUX,)) + enc(k, False) + enc(v, False) for k, v in aux)


def save_info(server):
    """Redis's rdbPopulateSaveInfo: (stream db, replid, offset) when this
    node has a replication history worth keeping, else None."""
    repl = server.repl
    st = repl.state
    if repl.masterhost is None:
        if st.backlog is None:
            return None
        return (0 if st.slaveseldb == -1 else st.slaveseldb, st.replid, st.master_repl_offset)
    if repl.master_reploff >= 0 or repl.cached is not None:
        return (repl.master_db, st.replid, st.master_repl_offset)
    return None


def rdb_bytes(server, cfg, aof_base: bool = False) -> bytes:
    """The whole dataset as an RDB file (an AOF base carries no replication
    info, as in Redis)."""
    lim = limits(cfg)
    enc = rdb_strings.enc_string
    out = [MAGIC]
    out.append(aux_records(VERSION.encode(), server.now_ms // 1000, server.used_memory(),
                           None if aof_base else save_info(server), aof_base,
                           asm_record(server)))
    out.append(_functions.rdb_records(server, lim.compress))
    pflags = getattr(server, "evict_policy", 0)
    access = 1 if pflags & _evict.F_LRU else 2 if pflags & _evict.F_LFU else 0
    clock = _evict.lru_clock(server.now_ms)
    now_min = _evict.lfu_minutes(server.now_ms)
    skip = trimming_slots(server)
    saved = skipped = 0
    for db in server.dbs:
        if not db.data:
            continue
        expires = db.expires
        enc_len = rdb_strings.enc_len
        out.append(bytes((OP_SELECTDB,)) + enc_len(db.id))
        out.append(bytes((OP_RESIZEDB,)) + enc_len(len(db.data)) + enc_len(len(expires)))
        for key, v in db.data.items():
            if skip and db.id == 0 and key_slot(key) in skip:
                skipped += 1  # a slot being trimmed (atomic slot migration)
                continue
            saved += 1
            exp = expires.get(key)
            if exp is not None:
                out.append(bytes((OP_EXPIRETIME_MS,)) + struct.pack("<q", exp))
            if access:
                # (rdbSaveKeyValuePair: the idle seconds under an LRU
                # policy, the decayed counter under an LFU one)
                a = db.access_value(key)
                if access == 1:
                    idle = _evict.idle_ms(clock, clock if a is None else a) // 1000
                    out.append(bytes((OP_IDLE,)) + enc_len(idle))
                else:
                    f = _evict.LFU_INIT_VAL if a is None else _evict.lfu_decr(
                        a, now_min, server.lfu_decay_time)
                    out.append(bytes((OP_FREQ, f)))
            obj = _rdb.encode_object(unpacked(v), lim)
            out.append(obj[:1])
            out.append(enc(key, lim.compress))
            out.append(obj[1:])
    out.append(bytes((OP_EOF,)))
    body = b"".join(out)
    crc = crc64.crc64(body) if cfg.get("rdbchecksum") == "yes" else 0
    if skipped:
        log.info("%s done, %d keys saved, %d keys skipped, %d bytes written.",
                 "AOF rewrite" if aof_base else "BGSAVE", saved, skipped, len(body) + 8)
    return body + crc.to_bytes(8, "little")


def _i_am_master(server) -> bool:
    """Redis 7.0's iAmMaster: in cluster mode, is myself a master in the
    cluster config (a replica per nodes.conf keeps the expired keys of its
    dump.rdb at start; its master's DELs remove them), else no REPLICAOF."""
    core = getattr(server, "cluster", None)
    if core is not None:
        return core.state.myself.is_master
    repl = getattr(server, "repl", None)
    return repl is None or repl.masterhost is None


def load_rdb(data: bytes, server, cfg, preamble: bool = False, aux: dict | None = None,
             keep_expired: bool | None = None, expired_keys: list | None = None,
             allow_dup: bool = True) -> tuple[int, int, int]:
    """Load RDB data into the server's dbs. Returns (offset just past the
    checksum, keys loaded, keys expired). ``aux`` collects the AUX fields;
    a replica loads keys already expired (``keep_expired``, by default
    Redis's iAmMaster rule: its master deletes them); a master collects
    them as (dbid, key) in ``expired_keys``. ``allow_dup`` False (DEBUG
    RELOAD NOFLUSH without MERGE): a library or key already present fails
    the load (Redis refuses the library, and panics on the key). Raises
    RdbLoadError."""
    steps = load_rdb_steps(data, server, cfg, preamble, aux, keep_expired, expired_keys,
                           allow_dup)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def load_rdb_steps(data: bytes, server, cfg, preamble: bool = False, aux: dict | None = None,
                   keep_expired: bool | None = None, expired_keys: list | None = None,
                   allow_dup: bool = True):
    """``load_rdb`` one key at a time: a generator that yields the payload
    offset reached after each key and returns load_rdb's result, so a
    shell can serve events while a big payload loads (Redis's
    loading-process-events-interval-bytes)."""
    if keep_expired is None:
        keep_expired = not _i_am_master(server)
    if hasattr(server, "refresh_stamps"):
        server.refresh_stamps()  # (loaded keys are accessed now)
    if data[:5] != b"REDIS":
        raise RdbLoadError("Wrong signature trying to load DB from file")
    try:
        ver = int(data[5:9].decode("ascii"))
    except ValueError:
        raise RdbLoadError("Wrong signature trying to load DB from file") from None
    if ver < 1 or ver > rdb_format.RDB_VERSION:
        raise RdbLoadError("Can't handle RDB format version %d" % ver)
    lim = limits(cfg)
    r = rdb_strings.Reader(data)
    r.pos = 9
    db = server.dbs[0]
    expire = None
    loaded = expired = skipped = 0
    now = server.now_ms
    try:
        lru_idle = lfu_freq = -1
        while True:
            t = r.byte()
            if t == OP_EXPIRETIME_MS:
                expire = struct.unpack("<q", r.take(8))[0]
                continue
            if t == OP_EXPIRETIME:
                expire = struct.unpack("<i", r.take(4))[0] * 1000
                continue
            if t == OP_IDLE:
                lru_idle = r.plain_length()
                continue
            if t == OP_FREQ:
                lfu_freq = r.byte()
                continue
            if t == OP_EOF:
                break
            if t == OP_SELECTDB:
                dbid = r.plain_length()
                if dbid >= len(server.dbs):
                    raise RdbLoadError(
                        "FATAL: Data file was created with a Redis server configured to handle "
                        "more than %d databases. Exiting" % len(server.dbs))
                db = server.dbs[dbid]
                continue
            if t == OP_RESIZEDB:
                r.plain_length()
                r.plain_length()
                continue
            if t == OP_AUX:
                k = r.string()
                v = r.string()
                if k == b"redis-ver":
                    log.info("Loading RDB produced by version %s", v.decode("latin-1"))
                elif k == b"cluster-asm-task" and getattr(server, "cluster", None) is not None:
                    # an import that was in progress: its partial keys go
                    # unless it completes (as the AOF's CONF ASM-TASK)
                    server.cluster.migrations.mirror_received(v)
                if aux is not None:
                    aux[k] = v
                continue
            if t == OP_MODULE_AUX:
                raise RdbLoadError("The RDB file holds module data, which frtrio cannot load")
            if t == OP_FUNCTION2:
                try:
                    _functions.load_rdb_library(server, r.string(), allow_dup)
                except ValueError as e:
                    raise RdbLoadError("Failed loading library: %s" % e) from None
                continue
            if t == OP_FUNCTION:
                raise RdbLoadError("The RDB file holds functions in the pre-7.0 format, which "
                                   "frtrio cannot load")
            key = r.string()
            at = r.pos
            try:
                value = _rdb.decode_object(r, t, lim)
            except rdb_format.RdbError as e:
                if str(e) == "Empty keys":
                    # an empty aggregate (an old Redis bug could save them):
                    # skipped, as Redis does, with its log line
                    skipped += 1
                    if skipped <= 10:
                        log.warning("rdbLoadObject skipping empty key: %s", key.decode("latin-1"))
                    expire = None
                    lru_idle = lfu_freq = -1
                    yield r.pos
                    continue
                name = key.decode("latin-1")[:100]
                raise RdbLoadError(
                    "Can't load the value of key '%s': %s" % (name, e),
                    "Internal error in RDB reading offset 0, function at rdb.c:0 -> %s\n"
                    "[offset %d] RDB check: the value of key '%s' (type %d) is refused: %s"
                    % (e, at, name, t, e)) from None
            if expire is not None and not preamble and not keep_expired and expire < now:
                expired += 1
                if expired_keys is not None:
                    expired_keys.append((db.id, key))
            else:
                if not allow_dup and key in db.data:
                    log.warning("RDB has duplicated key '%s' in DB %d", key.decode("latin-1"), db.id)
                    raise RdbLoadError("Duplicated key found in RDB file")
                db.set(key, value, new_event=False)
                if lru_idle >= 0 or lfu_freq >= 0:
                    db.set_access_value(key, _evict.restored_access(
                        getattr(server, "evict_policy", 0), lfu_freq, lru_idle, server.now_ms))
                if expire is not None:
                    db.set_expire(key, expire)
                loaded += 1
            expire = None
            lru_idle = lfu_freq = -1
            yield r.pos
        if ver >= 5:
            end = r.pos
            stored = int.from_bytes(r.take(8), "little")
            if stored == 0:
                log.warning("RDB file was saved with checksum disabled: no check performed.")
            elif cfg.get("rdbchecksum") == "yes" and not getattr(
                    cfg, "skip_checksum_validation", False):
                actual = crc64.crc64(data[:end])
                if actual != stored:
                    raise RdbLoadError(
                        "Wrong RDB checksum expected: (%x) but got (%x). Aborting now."
                        % (actual, stored),
                        "Internal error in RDB reading offset 0, function at rdb.c:3217 -> "
                        "RDB CRC error")
    except rdb_format.RdbError:
        raise RdbLoadError("Short read or OOM loading DB. Unrecoverable error, aborting now.") \
            from None
    server.rdb_last_load_keys_loaded = loaded
    server.rdb_last_load_keys_expired = expired
    server.rdb_last_load_empty_skipped = skipped
    return r.pos, loaded, expired


def repl_info(aux: dict):
    """(stream db, replication id, offset) from loaded AUX fields, when
    valid (Redis's rsi checks), else None."""
    try:
        rid = aux[b"repl-id"].decode("latin-1")
        off = int(aux[b"repl-offset"])
        db = int(aux[b"repl-stream-db"])
    except (KeyError, ValueError):
        return None
    if len(rid) != 40 or off == -1 or db == -1:
        return None
    return db, rid, off
