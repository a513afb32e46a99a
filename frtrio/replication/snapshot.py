"""A point-in-time view of the dataset, serialized as an RDB payload
incrementally (pure): the full sync's snapshot, produced without stalling
the node.

At creation (the "fork" point) each db's key table and TTL table are copied
(shallow: a C-level dict copy, no value is touched). :meth:`Snapshot.step`
then encodes a bounded number of keys per call; the shell calls it between
event-loop turns. Values are mutable objects that later commands may change
in place, so the view is kept point-in-time by key-granular copy-on-write:
while the snapshot is running, every ``Db.lookup`` of a key that the
snapshot has not encoded yet calls :meth:`preserve` first, which encodes the
value as it is *before* the command touches it. Every in-place change goes
through ``Db.lookup`` (a command must find the value first), and a key that
is replaced, renamed away or deleted leaves the snapshot's reference to the
old object untouched.

The payload is Redis 7.0's RDB (version 10) with the replication AUX fields
(``repl-stream-db``, ``repl-id``, ``repl-offset``) a replica needs.
"""

from __future__ import annotations

import struct

from frtrio.persist import rdbfile as _rf
from frtrio.scripting import persist as _functions
from frtrio.store import rdb as _rdb
from frtrio.store.db import unpacked


class Snapshot:
    def __init__(self, server, cfg, replid: str, offset: int, stream_db: int,
                 redis_ver: bytes, ctime_s: int, used_mem: int, with_keys: bool = True):
        self.lim = _rf.limits(cfg)
        self.checksum = cfg.get("rdbchecksum") == "yes"
        # the function libraries go after the AUX fields, as in rdbSaveRio
        self.head = (_rf.MAGIC + _rf.aux_records(redis_ver, ctime_s, used_mem,
                                                 (stream_db, replid, offset), False,
                                                 _rf.asm_record(server))
                     + _functions.rdb_records(server, self.lim.compress))
        # per db: [dbid, pending {key: value}, expires copy, encoded parts, nkeys]
        self.dbs = []
        skip = _rf.trimming_slots(server)
        for db in (server.dbs if with_keys else ()):  # (no keys: functions only)
            if db.data:
                data = dict(db.data)
                if skip and db.id == 0:
                    # keys of slots in an atomic slot migration trim job
                    # stay out of the payload, as they do of an RDB file
                    for s in skip:
                        for k in db.slot_keys.get(s, ()):
                            data.pop(k, None)
                    if not data:
                        continue
                self.dbs.append([db.id, data, dict(db.expires), [], len(data)])
        self.keys_total = sum(d[4] for d in self.dbs)
        self.done = not self.dbs
        self.preserved = 0
        # take(): what was streamed so far
        self.head_sent = self.db_open = self.eof_sent = False
        self.cur = 0

    def _encode(self, ent, key: bytes, v) -> None:
        parts = ent[3]
        exp = ent[2].get(key)
        if exp is not None:
            parts.append(bytes((_rf.OP_EXPIRETIME_MS,)) + struct.pack("<q", exp))
        obj = _rdb.encode_object(unpacked(v), self.lim)
        parts.append(obj[:1])
        parts.append(_rdb.enc_string(key, self.lim.compress))
        parts.append(obj[1:])

    def preserve(self, key: bytes, value) -> None:
        """Copy-on-write: ``key`` (now holding ``value``) is about to be
        used by a command; if the snapshot still holds it unencoded, encode
        it now, as it was at the fork point."""
        for ent in self.dbs:
            pend = ent[1]
            if pend and pend.get(key) is value:
                del pend[key]
                self._encode(ent, key, value)
                self.preserved += 1
                return

    def step(self, budget: int) -> bool:
        """Encode up to ``budget`` keys; True once every key is encoded."""
        for ent in self.dbs:
            pend = ent[1]
            while pend and budget > 0:
                key, v = pend.popitem()
                self._encode(ent, key, v)
                budget -= 1
            if budget <= 0:
                break
        self.done = all(not ent[1] for ent in self.dbs)
        return self.done

    def take(self) -> bytes:
        """The payload bytes ready to go out, in order, for a transfer that
        streams while it is produced (diskless): the head, then db by db
        (a db is finished once none of its keys is left unencoded; keys
        preserved by copy-on-write join their db's parts), then the EOF
        opcode once everything is encoded. Don't mix with payload_parts."""
        out = []
        if not self.head_sent:
            out.append(self.head)
            self.head_sent = True
        while self.cur < len(self.dbs):
            dbid, pend, expires, parts, n = self.dbs[self.cur]
            if not self.db_open:
                out.append(bytes((_rf.OP_SELECTDB,)) + _rdb.enc_len(dbid))
                out.append(bytes((_rf.OP_RESIZEDB,)) + _rdb.enc_len(n)
                           + _rdb.enc_len(len(expires)))
                self.db_open = True
            out.extend(parts)
            parts.clear()
            if pend:
                break
            self.cur += 1
            self.db_open = False
        if self.cur == len(self.dbs) and not self.eof_sent:
            out.append(bytes((_rf.OP_EOF,)))
            self.eof_sent = True
        return b"".join(out)

    def payload_parts(self):
        """The RDB payload as a list of byte chunks (call once done)."""
        out = [self.head]
        for dbid, _pend, expires, parts, n in self.dbs:
            out.append(bytes((_rf.OP_SELECTDB,)) + _rdb.enc_len(dbid))
            out.append(bytes((_rf.OP_RESIZEDB,)) + _rdb.enc_len(n) + _rdb.enc_len(len(expires)))
            out.extend(parts)
        out.append(bytes((_rf.OP_EOF,)))
        return out


def crc_parts(parts, crc: int = 0) -> int:
    for p in parts:
        crc = _rdb.crc64(p, crc)
    return crc
