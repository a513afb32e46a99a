"""DUMP, RESTORE, RESTORE-ASKING and MIGRATE (Redis 7.0 semantics).

Payloads are Redis's (``store/rdb.py``), so keys move both ways between
frtrio and redis-server.

MIGRATE is a network operation, but commands run synchronously. The handler
does everything that needs the keyspace at command time (argument checks,
key lookup, the AUTH and RESTORE commands with their payloads and TTLs) and
leaves a ``RunMigrate(MigrateJob)`` effect in ``server.effects``; the client shell
(``runtime/migrate.py``) carries out the I/O (cached connections, SELECT
when the connection's db differs, one reply line per command, Redis's
timeouts and single retry) and then calls ``MigrateJob.finish`` here, which
removes the acknowledged keys, propagates them as one DEL and answers as
Redis does. While a MIGRATE is in flight its client waits; other clients go
on (Redis blocks the whole server instead), except that a command on one of
the keys in flight waits for the MIGRATE to end (``waits_for_migrate``), so
it runs after it as on redis-server. A key changed anyway while its copy is
in flight (by a command that declares no keys, e.g. FLUSHALL) is kept on the
source (the change would otherwise be lost): each key ends up on the source,
on the target, or - when the copy and such a change race - on both, never on
neither.

Inside MULTI/EXEC MIGRATE cannot wait for the network and answers an error
(frtrio-specific; Redis runs it synchronously there).
"""

from __future__ import annotations

import itertools
import logging

from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, notify
from frtrio.core import VERBOSE
from frtrio.core.client import F
from frtrio.core.effects import RunMigrate
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import NOT_INT, err, parse_int, syntax_error
from frtrio.protocol.parser import string2ll

_log = logging.getLogger("frtrio")
from frtrio.protocol.reply import OK, Status
from frtrio.store import rdb, rdb_format

BUSYKEY = "BUSYKEY Target key name already exists."


def limits(srv) -> rdb.Limits:
    """Encoding limits from the server's config."""
    return rdb.Limits.from_config(srv.config)


def _lookup_read(c, key: bytes):
    from frtrio.commands.util import lookup_read

    return lookup_read(c, key)


@command("dump")
def cmd_dump(c, argv):
    v = _lookup_read(c, argv[1])
    if v is None:
        return None
    return rdb.dump_payload(v, limits(c.server))


def _restore(c, argv):
    srv = c.server
    db = c.db
    key = argv[1]
    replace = absttl = False
    idle = freq = -1
    j = 4
    n = len(argv)
    while j < n:
        a = argv[j].lower()
        more = n - j - 1
        if a == b"replace":
            replace = True
        elif a == b"absttl":
            absttl = True
        elif a == b"idletime" and more >= 1 and freq == -1:
            idle = parse_int(argv[j + 1])
            if idle < 0:
                raise err("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif a == b"freq" and more >= 1 and idle == -1:
            freq = parse_int(argv[j + 1])
            if freq < 0 or freq > 255:
                raise err("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise syntax_error()
        j += 1
    now = srv.now_ms
    if not replace and db.lookup(key, now) is not None:
        raise err(BUSYKEY)
    ttl = string2ll(argv[2])
    if ttl is None:
        raise err(NOT_INT)
    if ttl < 0:
        raise err("ERR Invalid TTL value, must be >= 0")
    payload = argv[3]
    if not rdb.verify_payload(payload, not srv.config.skip_checksum_validation):
        raise err("ERR DUMP payload version or checksum are wrong")
    lim = limits(srv)
    # Redis's deep sanitization: sanitize-dump-payload yes, or clients (not
    # for its master's stream or the AOF)
    san = srv.config.get("sanitize-dump-payload")
    lim.deep = san == "yes" or (san == "clients" and not c.flags & F.MASTER and not srv.loading)
    try:
        value = rdb.load_payload(payload, lim)
    except (rdb_format.RdbError, ValueError, OverflowError, MemoryError) as e:
        # Redis's rdbReportError in a RESTORE: a verbose log line, then the
        # error (its rdb.c line number has no meaning here: 0)
        _log.log(VERBOSE, "Internal error in RDB reading offset 0, function at rdb.c:0 -> %s",
                 e if isinstance(e, rdb_format.RdbError) else "Bad data format")
        raise err("ERR Bad data format") from None
    deleted = False
    if replace:
        deleted = db.delete(key)
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now and not srv.loading:
        if deleted:
            srv.propagate(c.dbid, [b"DEL", key])
            modified(c, key)
            ev(c, GENERIC, b"del", key)
        return OK
    db.set(key, value)
    if idle >= 0 or freq >= 0:
        from frtrio.core.evict import restored_access

        db.set_access_value(key, restored_access(srv.evict_policy, freq, idle, now))
    if ttl:
        db.set_expire(key, ttl)
    out = list(argv)
    if ttl and not absttl:
        out[2] = b"%d" % ttl
        out.append(b"ABSTTL")
    srv.propagate(c.dbid, out)
    modified(c, key)
    ev(c, GENERIC, b"restore", key)
    if type(value) is not bytes and value.type_name in (b"list", b"zset"):
        srv.signal_key_ready(db, key)
    return OK


@command("restore")
def cmd_restore(c, argv):
    return _restore(c, argv)


@command("restore-asking")
def cmd_restore_asking(c, argv):
    return _restore(c, argv)


# --- MIGRATE -------------------------------------------------------------------


def _bulk(parts) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


_guard_ids = itertools.count(-1, -1)


class _KeyGuard:
    """Watches one key as a WATCHing client would (``Server.touch_key`` marks
    it), so that MIGRATE can tell whether the key changed in flight."""

    __slots__ = ("id", "watched", "flags")

    def __init__(self, srv, dbid: int, key: bytes):
        self.id = next(_guard_ids)
        k = (dbid, key)
        self.watched = {k: False}
        self.flags = 0  # F.DIRTY_CAS once the key changed, as a client's
        srv.watched_keys.setdefault(k, {})[self.id] = self


def _inflight(srv) -> dict:
    """(dbid, key) -> id of the client whose MIGRATE (without COPY) has that
    key in flight. Kept on the server, created on first use."""
    return srv.migrate_inflight


def waits_for_migrate(srv, c, argv: list[bytes]) -> bool:
    """Whether the command ``argv`` of client ``c`` touches a key another
    client's MIGRATE has in flight. The shell then holds the command until
    that MIGRATE is over, so that it runs after it, as on redis-server
    (where MIGRATE blocks the whole server): a write to a key being moved
    cannot land on the source after its copy left (the key would end up on
    both nodes, and redis-cli's reshard stops on BUSYKEY), and in cluster mode
    the command then gets the ASK redirect Redis gives."""
    inflight = srv.migrate_inflight
    if not inflight:
        return False
    cmd = srv.commands.get(argv[0].lower())
    if cmd is None:
        return False
    if cmd.subcommands and len(argv) >= 2:
        cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            return False
    if cmd.fullname == "exec":
        pairs = c.multi or []
    elif c.multi is not None and cmd.fullname not in ("multi", "discard", "watch"):
        return False  # only queued: its keys are looked at by EXEC
    else:
        pairs = [(cmd, argv)]
    dbid = c.dbid
    for cm, av in pairs:
        try:
            pos = cm.get_keys(av)
        except (IndexError, ValueError, TypeError):
            continue
        for i in pos:
            if 0 <= i < len(av):
                owner = inflight.get((dbid, av[i]))
                if owner is not None and owner != c.id:
                    return True
    return False


class MigrateOutcome:
    """What the shell saw on the wire (filled in by runtime/migrate.py)."""

    __slots__ = ("connect_failed", "io_error", "auth_line", "select_line", "lines")

    def __init__(self):
        self.connect_failed = False
        self.io_error: str | None = None  # "writing" / "reading": IOERR ... to target
        self.auth_line: bytes | None = None
        self.select_line: bytes | None = None
        self.lines: list[bytes] = []  # the RESTORE replies read, in order


def error_from_target(job, out: MigrateOutcome) -> bool:
    """Whether Redis would see a target error (it looks while reading the
    RESTORE replies, so only when at least one was read)."""
    if not out.lines:
        return False
    if job.auth and (out.auth_line or b"")[:1] == b"-":
        return True
    if job.select and (out.select_line or b"")[:1] == b"-":
        return True
    return any(ln[:1] == b"-" for ln in out.lines)


class MigrateJob:
    """A MIGRATE waiting for its network part.

    ``auth_cmd`` and ``restore_cmds`` are the serialized requests; whether a
    SELECT goes between them depends on the cached connection the shell uses
    (Redis sends it when the connection's db differs), so the shell sets
    ``select`` and calls ``select_cmd()``."""

    __slots__ = ("client_id", "host", "port", "port_arg", "timeout_ms", "dbid", "keys",
                 "auth_cmd", "restore_cmds", "auth", "select", "copy", "db", "guards")

    def __init__(self, c, host, port, port_arg, timeout_ms, dbid, keys, auth_cmd,
                 restore_cmds, copy):
        self.client_id = c.id
        self.host = host
        self.port = port  # as connected to; -1 when the resolver would refuse it
        self.port_arg = port_arg  # as given: part of the cached connection's name
        self.timeout_ms = timeout_ms
        self.dbid = dbid
        self.keys = keys
        self.auth_cmd = auth_cmd
        self.restore_cmds = restore_cmds
        self.auth = bool(auth_cmd)
        self.select = False
        self.copy = copy
        self.db = c.db
        self.guards = [] if copy else [_KeyGuard(c.server, c.db.id, k) for k in keys]
        if not copy:
            inflight = _inflight(c.server)
            for k in keys:
                inflight[(c.db.id, k)] = c.id

    @property
    def cache_name(self) -> str:
        return "%s:%s" % (self.host, self.port_arg)

    def select_cmd(self) -> bytes:
        return _bulk([b"SELECT", b"%d" % self.dbid])

    def release(self, srv) -> None:
        for g in self.guards:
            srv.unwatch_all(g)
        self.guards = []
        if not self.copy:
            inflight = _inflight(srv)
            dbid = self.db.id
            for k in self.keys:
                if inflight.get((dbid, k)) == self.client_id:
                    del inflight[(dbid, k)]

    def finish(self, c, out: MigrateOutcome) -> None:
        """Apply the outcome: remove migrated keys, propagate, reply (pure)."""
        srv = c.server
        guards = self.guards
        try:
            if out.connect_failed:
                _reply_error(c, "IOERR error or timeout connecting to the client")
                return
            target_error = False
            deleted: list[bytes] = []
            db = self.db
            for j, line in enumerate(out.lines):
                errline = None
                if self.auth and (out.auth_line or b"")[:1] == b"-":
                    errline = out.auth_line
                elif self.select and (out.select_line or b"")[:1] == b"-":
                    errline = out.select_line
                elif line[:1] == b"-":
                    errline = line
                if errline is not None:
                    if not target_error:
                        target_error = True
                        _reply_error(c, "ERR Target instance replied with error: "
                                     + errline[1:].decode("latin-1"))
                    continue
                if self.copy:
                    continue
                key = self.keys[j]
                if guards and guards[j].flags & F.DIRTY_CAS:
                    continue  # changed while in flight: keep the newer version here
                if key in db.data:
                    db.delete(key)
                    srv.dirty += 1
                    srv.touch_key(db, key)
                    if srv.notify_flags:
                        notify(srv, GENERIC, b"del", key, db.id)
                    deleted.append(key)
            if deleted:
                srv.propagate(db.id, [b"DEL"] + deleted)
            if target_error:
                return
            if out.io_error is not None or len(out.lines) < len(self.keys):
                _reply_error(c, "IOERR error or timeout %s to target instance"
                             % (out.io_error or "reading"))
                return
            c.reply(OK)
        finally:
            self.release(srv)


def _reply_error(c, msg: str) -> None:
    c.server.count_error(msg)
    c.reply_error(msg)


def _port(b: bytes) -> int:
    """The port as Redis gets it: C's atoi, printed with %d, given to the
    resolver (which refuses a negative one: -1 here; keeps 16 bits)."""
    s = b.lstrip(b" \t\n\v\f\r")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    digits = 0
    for ch in s:
        if 48 <= ch <= 57:
            digits += 1
        else:
            break
    v = sign * int(s[:digits]) if digits else 0
    v = max(-(2**63), min(2**63 - 1, v))  # strtol saturates
    v = ((v + 2**31) % 2**32) - 2**31  # then (int)
    return -1 if v < 0 else v & 0xFFFF


def _parse_long(b: bytes) -> int:
    v = string2ll(b)
    if v is None:
        raise err(NOT_INT)
    return v


@command("migrate")
def cmd_migrate(c, argv):
    from frtrio.core.engine import NO_REPLY

    copy = replace = False
    username = password = None
    first_key = 3
    num_keys = 1
    n = len(argv)
    j = 6
    while j < n:
        a = argv[j].lower()
        more = n - 1 - j
        if a == b"copy":
            copy = True
        elif a == b"replace":
            replace = True
        elif a == b"auth":
            if not more:
                raise syntax_error()
            j += 1
            password = argv[j]
        elif a == b"auth2":
            if more < 2:
                raise syntax_error()
            username = argv[j + 1]
            password = argv[j + 2]
            j += 2
        elif a == b"keys":
            if argv[3]:
                raise err("ERR When using MIGRATE KEYS option, the key argument must be "
                          "set to the empty string")
            first_key = j + 1
            num_keys = n - j - 1
            break
        else:
            raise syntax_error()
        j += 1
    timeout = _parse_long(argv[5])
    dbid = _parse_long(argv[4])
    if timeout <= 0:
        timeout = 1000
    srv = c.server
    db = c.db
    now = srv.now_ms
    found = []
    for i in range(first_key, first_key + num_keys):
        k = argv[i]
        v = db.lookup(k, now)
        if v is not None:
            found.append((k, v))
    if not found:
        return Status("NOKEY")
    if c.flags & F.IN_EXEC:
        # frtrio runs MIGRATE's I/O outside the command; inside EXEC (or a
        # script) the transaction cannot wait for it.
        raise err("ERR MIGRATE is not supported inside MULTI/EXEC by frtrio")
    lim = limits(srv)
    auth_cmd = b""
    if password is not None:
        auth_cmd = _bulk([b"AUTH", username, password] if username is not None
                         else [b"AUTH", password])
    parts = []
    name = b"RESTORE-ASKING" if srv.cluster is not None else b"RESTORE"
    keys = []
    for k, v in found:
        ttl = 0
        exp = db.get_expire(k)
        if exp is not None:
            ttl = exp - now
            if ttl < 0:
                continue
            if ttl < 1:
                ttl = 1
        keys.append(k)
        args = [name, k, b"%d" % ttl, rdb.dump_payload(v, lim)]
        if replace:
            args.append(b"REPLACE")
        parts.append(_bulk(args))
    job = MigrateJob(c, argv[1].decode("latin-1"), _port(argv[2]),
                     argv[2].decode("latin-1"), timeout, dbid, keys, auth_cmd,
                     b"".join(parts), copy)
    srv.effects.append(RunMigrate(job))
    return NO_REPLY

