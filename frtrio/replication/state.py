"""Replication ids, offsets and the stream (pure).

``ReplState`` is what every node keeps (spec §1): ``replid``, ``replid2``,
``second_replid_offset``, ``master_repl_offset``, the backlog and
``slaveseldb``. It encodes executed writes into the stream (with SELECT
insertion, §4.3) and decides PSYNC requests exactly by §5.2.
"""

from __future__ import annotations

import attrs

from frtrio.core.effects import AofOnly

from frtrio.replication.backlog import Backlog

CLEARED_ID = "0" * 40

PING = b"*1\r\n$4\r\nping\r\n"
GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"


def encode_command(argv) -> bytes:
    out = [b"*%d\r\n" % len(argv)]
    for a in argv:
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


def select_command(dbid: int) -> bytes:
    return encode_command([b"SELECT", b"%d" % dbid])


@attrs.frozen
class Continue:
    """Accept a partial resync: send ``reply`` then ``data`` (bytes
    ``off .. master_repl_offset``), then the live stream."""

    reply: bytes
    data: bytes


@attrs.frozen
class FullResync:
    """A full resync is needed; ``partial_err`` says whether it counts as a
    failed partial attempt (sync_partial_err)."""

    partial_err: bool
    reason: str


@attrs.frozen
class PsyncError:
    """Refuse with this error line (no sync at all)."""

    message: str


class ReplState:
    """Ids, offsets, backlog and stream position of one node."""

    def __init__(self, replid: str):
        self.replid = replid
        self.replid2 = CLEARED_ID
        self.second_replid_offset = -1
        self.master_repl_offset = 0
        self.backlog: Backlog | None = None
        self.slaveseldb = -1
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0

    # --- ids ------------------------------------------------------------

    def clear_replid2(self) -> None:
        self.replid2 = CLEARED_ID
        self.second_replid_offset = -1

    def shift_replid(self, new_id: str) -> str:
        """Redis's shiftReplicationId (REPLICAOF NO ONE, promotion): the
        current id becomes replid2, valid up to master_repl_offset + 1.
        Returns the log line."""
        self.replid2 = self.replid
        self.second_replid_offset = self.master_repl_offset + 1
        self.replid = new_id
        return ("Setting secondary replication ID to %s, valid up to offset: %d. "
                "New replication ID is %s" % (self.replid2, self.second_replid_offset,
                                              self.replid))

    # --- backlog ---------------------------------------------------------

    def create_backlog(self, size: int) -> None:
        """A backlog whose first byte will be master_repl_offset + 1."""
        self.backlog = Backlog(size, self.master_repl_offset)

    def free_backlog(self) -> None:
        self.backlog = None

    # --- the stream ------------------------------------------------------

    def feed(self, entries) -> bytes:
        """Encode executed writes ``(dbid, argv)`` into stream bytes, with a
        SELECT before any command whose db differs from the stream's; append
        them to the backlog. Without a backlog nothing is produced (Redis
        counts offsets only while a backlog exists)."""
        if self.backlog is None:
            return b""
        out = []
        sel = self.slaveseldb
        for dbid, argv in entries:
            if type(argv) is AofOnly:
                continue  # (a script's redis.set_repl(REPL_AOF))
            if dbid != sel:
                out.append(select_command(dbid))
                sel = dbid
            out.append(encode_command(argv))
        self.slaveseldb = sel
        data = b"".join(out)
        self.append(data)
        return data

    def append(self, data: bytes) -> None:
        """Append stream bytes as they are (PING, GETACK, a proxied upstream
        stream on a replica)."""
        if self.backlog is None or not data:
            return
        self.backlog.append(data)
        self.master_repl_offset = self.backlog.offset

    # --- the master's PSYNC decision (spec §5.2) ----------------------------

    def try_partial(self, psync_id: str, psync_offset: int, psync2: bool):
        """Continue or FullResync for ``PSYNC psync_id psync_offset``."""
        rid = psync_id.lower()
        if rid != self.replid.lower():
            if rid != self.replid2.lower() or psync_offset > self.second_replid_offset:
                if psync_id == "?":
                    return FullResync(False, "Full resync requested by replica")
                if rid != self.replid2.lower():
                    reason = ("Replication ID mismatch (Replica asked for '%s', my replication "
                              "IDs are '%s' and '%s')" % (psync_id, self.replid, self.replid2))
                else:
                    reason = ("Requested offset for second ID was %d, but I can reply up to %d"
                              % (psync_offset, self.second_replid_offset))
                return FullResync(True, reason)
        bl = self.backlog
        if bl is None or not bl.covers(psync_offset):
            return FullResync(True, "Unable to partial resync with replica: lack of backlog "
                                    "(Replica request was: %d)." % psync_offset)
        reply = (b"+CONTINUE %s\r\n" % self.replid.encode()) if psync2 else b"+CONTINUE\r\n"
        return Continue(reply, bl.read_from(psync_offset))

    def fullresync_reply(self) -> bytes:
        return b"+FULLRESYNC %s %d\r\n" % (self.replid.encode(), self.master_repl_offset)
