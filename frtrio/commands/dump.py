"""DUMP, RESTORE, RESTORE-ASKING and MIGRATE (Redis 7.0 semantics).

Payloads are Redis's (``store/rdb.py``), so keys move both ways between
frtrio and redis-server.

MIGRATE is a network operation, but commands run synchronously. The handler
does everything that needs the keyspace at command time (argument checks,
key lookup, the RESTORE commands with their payloads) and leaves a
``MigrateJob`` in ``server.migrate_jobs``; the client shell
(``runtime/migrate.py``) carries out the I/O (connect, send, read one reply
line per command, with Redis's timeouts and single retry) and then calls
``MigrateJob.finish`` here, which removes the migrated keys, propagates them
as DEL and answers exactly as Redis would. While a MIGRATE is in flight its
client waits; other clients go on (Redis blocks the whole server instead).
A key that another client changes or removes while its copy is in flight is
kept on the source (the change would otherwise be lost): each key ends up on
the source, on the target, or - when the copy and a change race - on both,
never on neither.
"""

from __future__ import annotations

import itertools

from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import NOT_INT, err, parse_int, syntax_error
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import OK, ErrorReply, Raw, Status
from frtrio.store import rdb

BUSYKEY = "BUSYKEY Target key name already exists."


def limits(srv) -> rdb.Limits:
    """Encoding limits from the server's config."""
    return rdb.Limits.from_config(srv.config)


def _lookup_read(c, key: bytes):
    v = c.db.lookup(key, c.server.now_ms)
    stats = c.server.stats
    if v is None:
        stats["keyspace_misses"] = stats.get("keyspace_misses", 0) + 1
    else:
        stats["keyspace_hits"] = stats.get("keyspace_hits", 0) + 1
    return v


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
    if not rdb.verify_payload(payload):
        raise err("ERR DUMP payload version or checksum are wrong")
    try:
        value = rdb.load_payload(payload, limits(srv))
    except (rdb.RdbError, ValueError, OverflowError, ImportError, AttributeError):
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
        return OK
    db.set(key, value)
    if ttl:
        db.set_expire(key, ttl)
    out = list(argv)
    if ttl and not absttl:
        out[2] = b"%d" % ttl
        out.append(b"ABSTTL")
    srv.propagate(c.dbid, out)
    modified(c, key)
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


def migrate_keys(argv: list[bytes]) -> list[int]:
    """Key positions of MIGRATE (the key argument, or what follows KEYS)."""
    n = len(argv)
    i = 6
    while i < n:
        a = argv[i].lower()
        if a == b"auth":
            i += 2
            continue
        if a == b"auth2":
            i += 3
            continue
        if a == b"keys":
            if argv[3]:
                return []
            return list(range(i + 1, n))
        i += 1
    return [3] if n > 3 else []


def _bulk(parts) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


_guard_ids = itertools.count(-1, -1)


class _KeyGuard:
    """Watches one key as a WATCHing client would (``Server.touch_key`` marks
    it), so that MIGRATE can tell whether the key changed in flight."""

    __slots__ = ("id", "watched", "watch_dirty")

    def __init__(self, srv, dbid: int, key: bytes):
        self.id = next(_guard_ids)
        k = (dbid, key)
        self.watched = {k: False}
        self.watch_dirty = False
        srv.watched_keys.setdefault(k, {})[self.id] = self


class MigrateOutcome:
    """What the shell saw on the wire (filled in by runtime/migrate.py)."""

    __slots__ = ("connected", "write_error", "auth_line", "select_line", "lines",
                 "socket_error", "timed_out")

    def __init__(self):
        self.connected = False
        self.write_error = False
        self.auth_line: bytes | None = None
        self.select_line: bytes | None = None
        self.lines: list[bytes] = []  # one per RESTORE sent, as read
        self.socket_error = False
        self.timed_out = False


class MigrateJob:
    """A MIGRATE waiting for its network part."""

    __slots__ = ("client_id", "host", "port", "timeout_ms", "dbid", "keys", "request",
                 "auth", "select", "copy", "db", "guards", "done")

    def __init__(self, c, host, port, timeout_ms, dbid, keys, request, auth, select, copy):
        self.client_id = c.id
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.dbid = dbid
        self.keys = keys
        self.request = request
        self.auth = auth
        self.select = select
        self.copy = copy
        self.db = c.db
        self.guards = [] if copy else [_KeyGuard(c.server, c.db.id, k) for k in keys]
        self.done = False

    def release(self, srv) -> None:
        for g in self.guards:
            srv.unwatch_all(g)
        self.guards = []

    def finish(self, c, out: MigrateOutcome) -> None:
        """Apply the outcome: remove migrated keys, propagate, reply (pure)."""
        srv = c.server
        self.done = True
        guards = self.guards
        try:
            if not out.connected:
                _reply_error(c, "IOERR error or timeout connecting to the client")
                return
            if out.write_error:
                _reply_error(c, "IOERR error or timeout writing to target instance")
                return
            if (self.auth and out.auth_line is None) or (self.select and out.select_line is None):
                _reply_error(c, "IOERR error or timeout reading to target instance")
                return
            error_from_target = False
            deleted: list[bytes] = []
            db = self.db
            for j, line in enumerate(out.lines):
                errline = None
                if self.auth and out.auth_line[:1] == b"-":
                    errline = out.auth_line
                elif self.select and out.select_line[:1] == b"-":
                    errline = out.select_line
                elif line[:1] == b"-":
                    errline = line
                if errline is not None:
                    if not error_from_target:
                        error_from_target = True
                        _reply_error(c, "ERR Target instance replied with error: "
                                     + errline[1:].decode("latin-1"))
                    continue
                if self.copy:
                    continue
                key = self.keys[j]
                if guards and guards[j].watch_dirty:
                    continue  # changed while in flight: keep the newer version here
                if key in db.data:
                    db.delete(key)
                    srv.dirty += 1
                    if srv.watched_keys:
                        srv.touch_key(db, key)
                    deleted.append(key)
            if deleted:
                srv.propagate(db.id, [b"DEL"] + deleted)
            if error_from_target:
                return
            if out.socket_error or len(out.lines) < len(self.keys):
                _reply_error(c, "IOERR error or timeout reading to target instance")
                return
            c.reply(OK)
        finally:
            self.release(srv)


def _reply_error(c, msg: str) -> None:
    c.server.count_error(msg)
    c.reply_error(msg)


def _parse_long(b: bytes) -> int:
    v = string2ll(b)
    if v is None:
        raise err(NOT_INT)
    return v


@command("migrate", keys=migrate_keys)
def cmd_migrate(c, argv):
    from frtrio.engine import NO_REPLY

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
    if c.in_exec:
        # frtrio runs MIGRATE's I/O outside the command; inside EXEC (or a
        # script) the transaction cannot wait for it.
        raise err("ERR MIGRATE is not supported inside MULTI/EXEC by frtrio")
    lim = limits(srv)
    parts = []
    if password is not None:
        parts.append(_bulk([b"AUTH", username, password] if username is not None
                           else [b"AUTH", password]))
    select = dbid != -1  # a fresh connection has no db selected (last_dbid = -1)
    if select:
        parts.append(_bulk([b"SELECT", b"%d" % dbid]))
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
    port = string2ll(argv[2])
    job = MigrateJob(c, argv[1].decode("latin-1"), port if port is not None else -1,
                     timeout, dbid, keys, b"".join(parts), password is not None, select, copy)
    srv.migrate_jobs[c.id] = job
    return NO_REPLY


_unused = (ErrorReply, Raw)
