"""Atomic slot migration (Redis 8.4's CLUSTER MIGRATION), the pure core.

One task moves a set of slot ranges from one source master to one
destination master. The operator asks the destination (``CLUSTER MIGRATION
IMPORT``); the destination runs an *import* task that pulls the slots, the
source runs the matching *migrate* task. Both sides keep their own record
under the same 40-hex id, each with its own state machine (the state names
are Redis's, shown by ``CLUSTER MIGRATION STATUS``).

This module holds the records, the validation and error texts of the
commands, the allowed transitions (anything else is refused and recorded as
``cluster.asm_syncslots_state_machine_violation``), the handoff condition,
the completion rules and the cron. It does no I/O: the Trio shell
(``frtrio/runtime/migration.py``) owns the connections, one cancel scope per
task, and tells this core what happened; the core answers with effects
(``StartImport``, ``StopTask``) in ``Migrations.effects`` and by changing the
cluster state (slot claim, epoch bump, save, broadcast) through the cluster
core, as every other cluster decision.
"""

from __future__ import annotations

import logging

from frtrio.cluster.slots import CLUSTER_SLOTS, key_slot
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import ErrorReply
from frtrio.store.db import unpacked

log = logging.getLogger("frtrio")

IMPORT = "import"
MIGRATE = "migrate"

# import (destination) states, in their usual order
IMPORT_STATES = ("none", "connecting", "auth-reply", "send-handshake", "handshake-reply",
                 "send-syncslots", "syncslots-reply", "init-rdbchannel", "accumulate-buffer",
                 "ready-to-stream", "streaming-buffer", "wait-stream-eof", "takeover",
                 "completed", "failed", "canceled")
MIGRATE_STATES = ("wait-rdbchannel", "wait-bgsave-start", "send-bulk-and-stream", "send-stream",
                  "handoff-prep", "handoff", "stream-eof", "completed", "failed", "canceled")
TERMINAL = ("completed", "canceled")
FAILPOINT_CHANNELS = ("import-main-channel", "import-rdb-channel", "migrate-main-channel",
                      "migrate-rdb-channel")


def _forward(states, upto):
    """Each state of the happy path may move to the next one only."""
    return {s: {states[i + 1]} for i, s in enumerate(states[:upto])}


_IMPORT_NEXT = _forward(IMPORT_STATES, IMPORT_STATES.index("completed"))
_IMPORT_NEXT["syncslots-reply"].add("send-syncslots")  # -NOTREADY: parked, re-sent
_IMPORT_NEXT["send-syncslots"].add("send-syncslots")
_IMPORT_NEXT["failed"] = {"none"}  # the retry
_MIGRATE_NEXT = _forward(MIGRATE_STATES, MIGRATE_STATES.index("completed"))
_MIGRATE_NEXT["send-bulk-and-stream"].add("handoff-prep")  # caught up before the child ended
_MIGRATE_NEXT["failed"] = {"wait-rdbchannel"}  # a new SYNC with the same id
for _m in (_IMPORT_NEXT, _MIGRATE_NEXT):
    for _s in list(_m):
        if _s not in TERMINAL:
            _m[_s] |= {"failed", "canceled"}
    _m["failed"] |= {"canceled"}
    _m["failed"].discard("failed")
ALLOWED = {IMPORT: _IMPORT_NEXT, MIGRATE: _MIGRATE_NEXT}

FEEDING = ("send-bulk-and-stream", "send-stream", "handoff-prep")
CRON_MS = 100
RETRY_MS = 1000


class StateViolation(Exception):
    pass


def format_ranges(ranges) -> str:
    return " ".join("%d-%d" % r for r in ranges)


def normalize(ranges):
    """Ranges sorted, adjacent ones merged (7000-7005 7006-7010 -> 7000-7010)."""
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(r) for r in out]


def parse_ranges(args) -> list[tuple[int, int]]:
    """Slot range arguments, checked as Redis does (§2.1 #2-#5)."""
    ranges = []
    seen = bytearray(CLUSTER_SLOTS)
    for i in range(0, len(args), 2):
        pair = []
        for b in args[i:i + 2]:
            n = string2ll(b)
            if n is None or n < 0 or n >= CLUSTER_SLOTS:
                raise ErrorReply("ERR Invalid or out of range slot")
            pair.append(n)
        s, e = pair
        if s > e:
            raise ErrorReply("ERR start slot number %d is greater than end slot number %d" % (s, e))
        for j in range(s, e + 1):
            if seen[j]:
                raise ErrorReply("ERR Slot %d specified multiple times" % j)
            seen[j] = 1
        ranges.append((s, e))
    if not 1 <= len(ranges) < CLUSTER_SLOTS:
        raise ErrorReply("ERR invalid number of slot ranges: %d" % len(ranges))
    return normalize(ranges)


def slots_of(ranges):
    for s, e in ranges:
        yield from range(s, e + 1)


class Task:
    __slots__ = ("id", "op", "ranges", "slots", "source", "dest", "state", "rdb_state",
                 "last_error", "retries", "create_time", "start_time", "end_time",
                 "paused_time", "source_offset", "dest_offset", "dest_state", "stream",
                 "cross_slot", "eof_in_buffer", "next_retry", "feed_skip", "applied_time",
                 "snapshot_start", "last_io", "reported")

    def __init__(self, id: str, op: str, ranges, source: str, dest: str, now: int):
        self.id = id
        self.op = op
        self.ranges = ranges
        self.slots = frozenset(slots_of(ranges))
        self.source = source
        self.dest = dest
        self.state = "none" if op == IMPORT else "wait-rdbchannel"
        self.rdb_state = "none"
        self.last_error = ""
        self.retries = 0
        self.create_time = now
        self.start_time = -1 if op == IMPORT else now
        self.end_time = -1
        self.paused_time = 0
        self.source_offset = 0  # source: bytes of the stream produced
        self.dest_offset = 0  # bytes of the stream the destination applied
        self.dest_state = ""
        self.stream = bytearray()  # source: stream bytes not yet sent
        self.cross_slot = False
        self.eof_in_buffer = False
        self.next_retry = 0
        self.feed_skip = 0  # propagated entries already in the snapshot
        self.applied_time = 0
        self.snapshot_start = 0
        self.last_io = now
        self.reported = ""  # a wait already logged ("trim": a trim job holds its slots)

    def status(self):
        pause = self.end_time - self.paused_time if (
            self.op == MIGRATE and self.state == "completed" and self.paused_time) else 0
        return [(b"id", self.id.encode()), (b"slots", format_ranges(self.ranges).encode()),
                (b"source", self.source.encode()), (b"dest", self.dest.encode()),
                (b"operation", self.op.encode()), (b"state", self.state.encode()),
                (b"last_error", self.last_error.encode()), (b"retries", self.retries),
                (b"create_time", self.create_time), (b"start_time", self.start_time),
                (b"end_time", self.end_time), (b"write_pause_ms", pause)]


class StartImport:
    """Effect: start (or restart) the import task's Trio task."""

    def __init__(self, task):
        self.task = task


class StopTask:
    """Effect: cancel the task's scope (its connections and children)."""

    def __init__(self, task):
        self.task = task


class TrimJob:
    """An active trim job: its slots and how far the cron got."""

    __slots__ = ("slots", "pos")

    def __init__(self, slots):
        self.slots = list(slots)
        self.pos = 0


class BackgroundTrim:
    """A background trim handed to the lazy-free queue (Redis frees the
    detached slot dictionaries in a thread): until the cron frees it the
    slots' keys are invisible (the slots are in a trim job)."""

    __slots__ = ("db", "slots", "count", "mig", "done")
    lazyfree_job = True  # (LazyFree.drain calls free())

    def __init__(self, db, slots, count, mig):
        self.db = db
        self.slots = list(slots)
        self.count = count
        self.mig = mig
        self.done = False

    def free(self) -> None:
        if not self.done:
            db = self.db
            sk = db.slot_keys
            for s in self.slots:
                d = sk.get(s)
                while d:
                    db.delete(next(iter(d)))
                    d = sk.get(s)
            self.done = True
        self.mig.background_trim_done(self)


class Migrations:
    """The tasks of one node: at most one active, plus an archive."""

    def __init__(self, core):
        self.core = core  # the cluster core (state, emit, saving, bus)
        self.tasks: list[Task] = []
        self.archived: list[Task] = []  # newest first
        self.effects: list = []
        self.trims = 0  # slots trimmed (INFO)
        # observability (CLUSTER INFO / INFO memory, shown once ASM was used
        # on this node, so a node that never migrates answers as 7.0 does)
        self.used = False
        # trim jobs (§6.7): pending (before-sleep starts them), active (the
        # cron deletes their keys), background (the lazy-free queue has them)
        self.trim_pending: list[list[int]] = []
        self.trim_active: list[TrimJob] = []
        self.trim_bg: list[BackgroundTrim] = []
        self._trimming: frozenset = frozenset()
        self.trim_method = "default"  # DEBUG ASM-TRIM-METHOD
        self.trim_delay = 0
        self.at_started = self.at_completed = self.at_cancelled = 0
        self.at_keys = self.at_trimmed = 0
        self._trim_deferred_logged = False
        self._trim_blocked_logged = False
        self.input_buffer = 0  # destination: live stream bytes buffered during the snapshot
        self.input_buffer_peak = 0
        self.failpoint: tuple[str, str] | None = None  # DEBUG ASM-FAILPOINT
        self.pause_purpose = "asm"
        self.pause_toggled = False  # the shell wakes paused clients
        self.hidden_slots: frozenset = frozenset()  # kept by _refresh_hidden
        # the import my master (or the AOF I loaded) had in progress, from
        # CLUSTER SYNCSLOTS CONF ASM-TASK: its slots' keys are partial until
        # it completes; a promotion or a restart trims them (§4.7, §6.6)
        self.master_task: tuple[str, frozenset] | None = None
        self.master_task_value = b""  # (as received: what an RDB saves again)
        self._mirror_clear_pending = False  # (see _mirror_end)
        self._cron_ticks = 0

    @property
    def server(self):
        return self.core.server

    @property
    def st(self):
        return self.core.state

    def now(self) -> int:
        return self.server.now_ms

    def cfg_int(self, name: str) -> int:
        return self.server.config.get_int(name)

    def find(self, id: str, archived: bool = False) -> Task | None:
        for t in self.tasks + (self.archived if archived else []):
            if t.id == id:
                return t
        return None

    def active(self) -> Task | None:
        return self.tasks[0] if self.tasks else None

    # --- transitions ------------------------------------------------------

    def move(self, t: Task, new: str) -> None:
        """Change a task's state, refusing what the state machine does not
        allow (recorded as a violation, the task is left unchanged)."""
        if new == t.state and new != "send-syncslots":
            return
        if new not in ALLOWED[t.op].get(t.state, ()):
            self.core.emit("cluster.asm_syncslots_state_machine_violation", outcome="refused",
                           task=t.id, operation=t.op, state=t.state, to=new)
            raise StateViolation("%s task %s cannot go from %s to %s" % (t.op, t.id, t.state, new))
        t.state = new
        self._refresh_hidden()
        self.core.emit("cluster.asm_task_state", outcome=new, task=t.id, operation=t.op)

    def fail(self, t: Task, message: str, rdb_state: str | None = None) -> None:
        """The failure teardown (§6.1): the task stays active as ``failed``;
        the destination retries it every second, the source waits."""
        if t.state in TERMINAL or t.state == "failed":
            return
        t.last_error = "%s (state: %s, rdb_channel_state: %s)" % (
            message, t.state, rdb_state or t.rdb_state)
        self.move(t, "failed")
        self._teardown(t)
        t.next_retry = self.now() + RETRY_MS
        if t.op == IMPORT:
            self._mirror_end()
        self.core.emit("cluster.asm_task_failed", outcome="failed", task=t.id, error=message)

    def _teardown(self, t: Task) -> None:
        self.effects.append(StopTask(t))
        t.stream = bytearray()
        self.server.obuf.forget_key(("asm", t.id))
        if t.op == MIGRATE:
            self._unpause()
        elif self.st.myself.is_master:
            self.schedule_trim([s for s in t.slots if self.st.owner(s) is not self.st.myself])

    def cancel(self, t: Task, reason: str) -> None:
        if t.state in TERMINAL:
            return
        if t.state != "failed":
            t.last_error = "Cancelled due to %s (state: %s, rdb_channel_state: %s)" % (
                reason, t.state, t.rdb_state)
            self._teardown(t)
        else:
            t.last_error = "Cancelled due to %s (state: %s, rdb_channel_state: %s)" % (
                reason, t.state, t.rdb_state)
        self.move(t, "canceled")
        self._archive(t)
        self.core.emit("cluster.asm_task_canceled", outcome="canceled", task=t.id, reason=reason)

    def cancel_all(self, reason: str, slots=None, node_id: str | None = None) -> int:
        n = 0
        for t in list(self.tasks):
            if slots is not None and not (t.slots & set(slots)):
                continue
            if node_id is not None and node_id not in (t.source, t.dest):
                continue
            self.cancel(t, reason)
            n += 1
        return n

    @staticmethod
    def _record(t: Task) -> bytes:
        return ("%s:%s:%s:%s:%s:%s" % (t.id, t.source, t.dest, t.op, t.state,
                                       format_ranges(t.ranges))).encode()

    def _mirror(self, t: Task | None) -> None:
        """Tell my replicas and my AOF about my import (an empty value: it
        ended), as Redis's CONF ASM-TASK in the replication stream."""
        value = b"" if t is None else self._record(t)
        self.server.propagate(0, [b"CLUSTER", b"SYNCSLOTS", b"CONF", b"ASM-TASK", value])
        self._mirror_clear_pending = False

    def _mirror_end(self) -> None:
        """My import ended: clear its record for my replicas and my AOF,
        unless a trim job is still pending (a client pause defers it): then
        the record stays until that job's TRIMSLOTS is propagated, so a
        restart from the AOF in between still trims the partial keys."""
        if self.trim_pending:
            self._mirror_clear_pending = True
        else:
            self._mirror(None)

    def record_value(self) -> bytes:
        """My unfinished import for an RDB's ``cluster-asm-task`` field: my
        own active import, else the one mirrored from my master; b"" if none."""
        for t in self.tasks:
            if t.op == IMPORT:
                return self._record(t)
        return self.master_task_value if self.master_task is not None else b""

    def mirror_received(self, value: bytes) -> None:
        self._mirror_set(value)
        self._refresh_hidden()

    def _mirror_set(self, value: bytes) -> None:
        self.master_task_value = value
        if not value:
            self.master_task = None
            return
        f = value.decode("latin-1").split(":")
        if len(f) < 6 or f[3] != IMPORT:
            return
        ranges = []
        for r in f[5].split():
            a, _, b = r.partition("-")
            ranges.append((int(a), int(b)))
        self.master_task = (f[0], frozenset(slots_of(ranges)))

    def trim_partial_import(self) -> int:
        """After a promotion or a restart: the keys an unfinished import of
        my master (or of myself before the restart) left in slots I do not
        own are deleted."""
        mt, self.master_task = self.master_task, None
        self._refresh_hidden()
        if mt is None:
            return 0
        st = self.st
        slots = [s for s in sorted(mt[1]) if st.owner(s) is not st.myself
                 and self.server.dbs[0].count_keys_in_slot(s)]
        n = self.schedule_trim(slots)
        if n:
            log.warning("Detected keys in slots that do not belong to this node. Scheduling trim "
                        "for %d keys in slots: %s", n,
                        format_ranges(normalize((s, s) for s in slots)))
            self.core.emit("cluster.asm_trim", outcome="partial_import", task=mt[0], keys=n)
        return n

    def _archive(self, t: Task) -> None:
        t.end_time = self.now()
        if t.op == IMPORT:
            self._mirror_end()
        if t in self.tasks:
            self.tasks.remove(t)
        self._refresh_hidden()
        self.archived.insert(0, t)
        del self.archived[max(1, self.cfg_int("cluster-slot-migration-max-archived-tasks")):]

    # --- the operator's commands -----------------------------------------------

    def _validate(self, ranges, exclude: Task | None = None) -> object:
        """§2.1 #6-#10 (the same checks run on the source at SYNC)."""
        st = self.st
        me = st.myself
        if not me.is_master:
            raise ErrorReply("ERR slot migration not allowed on replica.")
        if st.migrating_to or st.importing_from:
            raise ErrorReply("ERR all slot states must be STABLE to start a slot migration task.")
        for t in self.tasks:
            if t.op == IMPORT and t is not exclude:
                for s, e in ranges:
                    if any(j in t.slots for j in range(s, e + 1)):
                        raise ErrorReply("ERR overlapping import exists for slot range: %d-%d"
                                         % (s, e))
        owner = None
        for j in slots_of(ranges):
            o = st.owner(j)
            if o is None:
                raise ErrorReply("ERR slot has no owner: %d" % j)
            if owner is None:
                owner = o
            elif o is not owner:
                raise ErrorReply("ERR slots belong to different source nodes")
        return owner

    def import_cmd(self, args) -> str:
        ranges = parse_ranges(args)
        owner = self._validate(ranges)
        me = self.st.myself
        if owner is me:
            raise ErrorReply("ERR this node is already the owner of the slot range")
        if self.core.bus_core is None or self.core.bus_core.lacks_asm(owner.id):
            raise ErrorReply("ERR source node %s does not support atomic slot migration "
                             "(CLUSTER SYNCSLOTS)" % owner.id)
        if self.tasks:
            t = self.tasks[0]
            if t.state != "failed":
                raise ErrorReply("ERR another ASM task is already in progress")
            self.cancel(t, "new import requested")
        t = Task(self.core.random_id(), IMPORT, ranges, owner.id, me.id, self.now())
        self.tasks.append(t)
        self.used = True
        self.core.emit("cluster.asm_task_created", outcome="import", task=t.id,
                       slots=format_ranges(ranges), source=owner.id)
        self.try_start(t)
        return t.id

    def cancel_cmd(self, argv) -> int:
        what = argv[3].lower()
        if what == b"all":
            if len(argv) != 4:
                raise ErrorReply("ERR wrong number of arguments for 'cluster|migration' command")
            return self.cancel_all("user request")
        if what == b"id":
            if len(argv) != 5:
                raise ErrorReply("ERR wrong number of arguments for 'cluster|migration' command")
            t = self.find(argv[4].decode("latin-1"))
            if t is None:
                return 0
            self.cancel(t, "user request")
            return 1
        raise ErrorReply("ERR unknown argument")

    def status_cmd(self, argv):
        what = argv[3].lower()
        if what == b"all":
            if len(argv) != 4:
                raise ErrorReply("ERR wrong number of arguments for 'cluster|migration' command")
            return [t.status() for t in self.tasks + self.archived]
        if what == b"id":
            if len(argv) != 5:
                raise ErrorReply("ERR wrong number of arguments for 'cluster|migration' command")
            t = self.find(argv[4].decode("latin-1"), archived=True)
            return [] if t is None else [t.status()]
        raise ErrorReply("ERR unknown argument")

    def setslot_allowed(self, slot: int) -> None:
        for t in self.tasks:
            if slot in t.slots:
                raise ErrorReply(
                    "ERR Slot %d is currently in an active atomic slot migration. CLUSTER SETSLOT "
                    "cannot be used at this time. To perform a legacy slot migration instead, "
                    "first cancel the ongoing task with CLUSTER MIGRATION CANCEL" % slot)
        if slot in self._trimming:
            raise ErrorReply("ERR There is a pending trim job for slot %d. CLUSTER SETSLOT cannot "
                             "be used at this time. Retry after the trim job is done." % slot)

    # --- destination ------------------------------------------------------------

    def try_start(self, t: Task) -> None:
        """§6.2: (re)start an import if nothing blocks it, re-resolving the
        source (a failover of the source is followed this way)."""
        if t.state != "none":
            return
        srv = self.server
        if srv.pause_end_ms > srv.now_ms:
            return  # server paused: stays in none
        try:
            owner = self._validate(t.ranges, exclude=t)
        except ErrorReply as e:
            self.cancel(t, e.message[4:] if e.message.startswith("ERR ") else e.message)
            return
        if owner is self.st.myself:
            self.cancel(t, "slots owned by myself now")
            return
        if owner.id != t.source:
            self.core.emit("cluster.asm_task_source_changed", outcome="source node changed",
                           task=t.id, old=t.source, new=owner.id)
            t.source = owner.id
        # stale keys of these slots (an earlier failed import) go first: the
        # import waits (in none, the cron retries) until no trim job holds
        # any of its slots
        self.schedule_trim([s for s in t.slots if self.server.dbs[0].count_keys_in_slot(s)
                            and self.st.owner(s) is not self.st.myself])
        if t.slots & self._trimming:
            if t.reported != "trim":
                t.reported = "trim"
                log.warning("Can not start import task %s due to trim in progress for some of "
                            "the slots", t.id)
            return
        t.reported = ""
        t.start_time = self.now()
        t.rdb_state = "none"
        t.dest_offset = 0
        t.eof_in_buffer = False
        t.last_io = self.now()
        self.move(t, "connecting")
        self._mirror(t)
        self.effects.append(StartImport(t))

    def takeover(self, t: Task) -> bool:
        """STREAM-EOF applied: claim the slots, bump the epoch without
        consensus, save with fsync, broadcast a PONG; the task completes.
        Returns False when DEBUG ASM-FAILPOINT import-main-channel takeover
        holds the task there instead (the source's write pause then times
        out: upstream test "Source write pause timeout")."""
        self.move(t, "takeover")
        if self.failpoint == ("import-main-channel", "takeover"):
            self.core.emit("cluster.asm_task_held", outcome="takeover", task=t.id)
            return False
        st = self.st
        me = st.myself
        st.assign_slots(sorted(t.slots), me)
        st.bump_epoch_without_consensus()
        st.bump()
        st.todo_save = st.todo_fsync = st.todo_update_state = True
        self.core.emit("cluster.slot_owner_state_update", outcome="asm_takeover", task=t.id,
                       slots=format_ranges(t.ranges), config_epoch=me.config_epoch)
        if self.core.bus_core is not None:
            self.core.bus_core.broadcast_pong()
        self.move(t, "completed")
        t.last_error = ""
        self._archive(t)
        return True

    # --- source -------------------------------------------------------------------

    def sync_cmd(self, task_id: str, args, dest_id: str | None) -> Task:
        if len(task_id) != 40:
            raise ErrorReply("ERR Invalid task id")
        ranges = parse_ranges(args)
        owner = self._validate(ranges)
        me = self.st.myself
        if owner is not me:
            raise ErrorReply("ERR This node is not the owner of the slots")
        if dest_id is not None:
            d = self.st.get(dest_id)
            if d is None or not d.is_master:
                raise ErrorReply("ERR Destination node %s is not a master" % dest_id)
        if self.tasks:
            t = self.tasks[0]
            if t.state == "failed" and t.op == MIGRATE:
                if t.id == task_id and t.ranges == ranges and t.dest == (dest_id or t.dest):
                    t.retries += 1
                    t.source_offset = t.dest_offset = 0
                    t.cross_slot = False
                    t.last_io = self.now()
                    t.paused_time = 0
                    self.move(t, "wait-rdbchannel")
                    return t
                self.cancel(t, "new migration requested")
            elif t.state == "failed":
                self.cancel(t, "new migration requested")
            else:
                raise ErrorReply("ERR Another ASM task is already in progress")
        t = Task(task_id, MIGRATE, ranges, me.id, dest_id or "", self.now())
        self.tasks.append(t)
        self.used = True
        self.core.emit("cluster.asm_task_created", outcome="migrate", task=t.id,
                       slots=format_ranges(ranges), dest=t.dest)
        return t

    def rdbchannel_cmd(self, task_id: str) -> Task:
        if len(task_id) != 40:
            raise ErrorReply("ERR Invalid task id")
        t = self.active()
        if t is None or t.op != MIGRATE:
            raise ErrorReply("ERR No slot migration task in progress")
        if t.id != task_id or t.state != "wait-rdbchannel":
            raise ErrorReply("ERR Another migration task is already in progress")
        self.move(t, "wait-bgsave-start")
        t.rdb_state = "wait-bgsave-start"
        return t

    def snapshot_started(self, t: Task) -> None:
        """The fork point: from now on every write to the slots is streamed."""
        self.move(t, "send-bulk-and-stream")
        t.rdb_state = "rdbchannel-transfer"
        t.snapshot_start = self.now()
        t.feed_skip = len(self.server.propagated)
        self._source_failpoint(t)

    def snapshot_done(self, t: Task) -> None:
        if t.state == "send-bulk-and-stream":
            self.move(t, "send-stream")
        t.rdb_state = "completed"
        t.last_io = self.now()  # ACKs start only now
        self._source_failpoint(t)

    def feed(self, propagated) -> None:
        """Before-sleep: the writes of this cycle to the moving slots, in
        order, onto the main channel; a write spanning slots cancels (C15)."""
        t = self.active()
        if t is None or t.op != MIGRATE or t.state not in FEEDING or t.cross_slot:
            return
        skip = t.feed_skip
        t.feed_skip = 0
        cmds = self.server.commands
        slots = t.slots
        for i in range(skip, len(propagated)):
            argv = propagated[i][1]
            cmd = cmds.get(argv[0].lower())
            if cmd is None:
                continue
            pos = cmd.get_keys(argv)
            if not pos:
                continue
            slot = key_slot(argv[pos[0]])
            if any(key_slot(argv[p]) != slot for p in pos[1:]):
                t.cross_slot = True
                self.core.emit("cluster.asm_crossslot_cancel_violation", outcome="cross_slot",
                               task=t.id, command=argv[0].decode("latin-1").lower())
                return
            if slot in slots:
                b = bytearray(b"*%d\r\n" % len(argv))
                for a in argv:
                    b += b"$%d\r\n" % len(a)
                    b += a
                    b += b"\r\n"
                t.stream += b
                t.source_offset += len(b)
                if self.server.obuf.over_used(("asm", t.id), len(t.stream), "replica",
                                              self.now()):
                    # the destination does not keep up: the main channel is a
                    # replica-class client and goes as one (Redis's output
                    # buffer limits), the task fails
                    log.warning("Client slot-migration-main-channel task=%s scheduled to be "
                                "closed ASAP for overcoming of output buffer limits.", t.id)
                    self.fail(t, "Main channel - Client output buffer limit reached")
                    return

    def ack(self, t: Task, state: bytes, offset: bytes) -> None:
        off = string2ll(offset)
        if off is None or state not in (b"streaming-buffer", b"wait-stream-eof"):
            return
        t.last_io = self.now()
        if off < t.dest_offset:
            return
        t.dest_offset = off
        t.dest_state = state.decode()
        if state == b"wait-stream-eof" and not t.applied_time:
            t.applied_time = self.now()
        if self._source_failpoint(t):
            return
        if t.state in ("send-bulk-and-stream", "send-stream") and (
                t.dest_offset + self.cfg_int("cluster-slot-migration-handoff-max-lag-bytes")
                >= t.source_offset):
            if self.failpoint == ("migrate-main-channel", "handoff-prep"):
                # (DEBUG ASM-FAILPOINT: never hand off; the drain timeout of
                # the cron fails the task: upstream "Sync buffer drain timeout")
                return
            self.move(t, "handoff-prep")
            # writes paused node-wide until the destination owns the slots
            self.server.pause_clients(1 << 62, False, self.pause_purpose)
            self.pause_toggled = True
            self.move(t, "handoff")
            t.paused_time = self.now()

    def stream_eof_sent(self, t: Task) -> None:
        self.move(t, "stream-eof")

    def _unpause(self) -> None:
        srv = self.server
        if self.pause_purpose in srv.pauses:
            srv.unpause_clients(self.pause_purpose)
            self.pause_toggled = True

    def slots_lost(self, lost: set) -> bool:
        """A config update took ``lost`` slots from me (§4.6 step 3). True
        when that completed my migrate task (its trim replaces the dirty
        slot deletion)."""
        for t in list(self.tasks):
            if not (t.slots & lost):
                continue
            if t.op == MIGRATE and t.state == "stream-eof" and t.slots == lost:
                self.move(t, "completed")
                t.last_error = ""
                self._archive(t)
                self._unpause()
                self.schedule_trim(sorted(t.slots))
                return True
            self.cancel(t, "slots configuration updated")
        return False

    # --- fail points (DEBUG ASM-FAILPOINT) -------------------------------------------

    def set_failpoint(self, channel: str, state: str) -> None:
        if channel and channel not in FAILPOINT_CHANNELS:
            raise ErrorReply("ERR Unknown channel %s (one of: %s)"
                             % (channel, ", ".join(FAILPOINT_CHANNELS)))
        self.failpoint = (channel, state) if channel else None

    def _source_failpoint(self, t: Task) -> bool:
        """On the source, fail ``t`` if a fail point names its new state."""
        fp = self.failpoint
        if t.op != MIGRATE or fp is None or fp[1] != t.state or not fp[0].startswith("migrate"):
            return False
        self.fail(t, "%s - Failed due to fail point"
                  % ("Main channel" if fp[0] == "migrate-main-channel" else "RDB channel"))
        return True

    def failpoint_hit(self, t: Task, channel: str, state: str) -> bool:
        """Should ``t`` fail now that ``channel`` is in ``state``?"""
        fp = self.failpoint
        return fp is not None and fp == (channel, state) and t.op == channel.split("-")[0]

    # --- observability ------------------------------------------------------------

    def note_input_buffer(self, size: int) -> None:
        self.input_buffer = size
        if size > self.input_buffer_peak:
            self.input_buffer_peak = size

    def info_lines(self) -> list[str]:
        """Redis 8.4's CLUSTER INFO fields (once ASM was used here)."""
        if not self.used:
            return []
        active = sum(1 for t in self.tasks if t.op == IMPORT or t.state != "failed")
        return [
            "cluster_slot_migration_active_tasks:%d" % active,
            "cluster_slot_migration_active_trim_running:%d" % len(self.trim_active),
            "cluster_slot_migration_active_trim_current_job_keys:%d" % self.at_keys,
            "cluster_slot_migration_active_trim_current_job_trimmed:%d" % self.at_trimmed,
            "cluster_slot_migration_stats_active_trim_started:%d" % self.at_started,
            "cluster_slot_migration_stats_active_trim_completed:%d" % self.at_completed,
            "cluster_slot_migration_stats_active_trim_cancelled:%d" % self.at_cancelled,
        ]

    def memory_lines(self) -> list[str]:
        """Redis 8.4's INFO memory fields (once ASM was used here)."""
        if not self.used:
            return []
        out = sum(len(t.stream) for t in self.tasks if t.op == MIGRATE)
        return [
            "mem_cluster_slot_migration_output_buffer:%d" % out,
            "mem_cluster_slot_migration_input_buffer:%d" % self.input_buffer,
            "mem_cluster_slot_migration_input_buffer_peak:%d" % self.input_buffer_peak,
        ]

    # --- trimming (§6.7) ----------------------------------------------------------
    #
    # A trim deletes the keys of slots this node does not own. It is asked
    # for as a *pending job* (schedule_trim: O(slots), the keys become
    # invisible at once) that before-sleep processes when writes are not
    # paused (process_pending_trims). Processing picks the method: a
    # *background* trim hands the slots' keys to the lazy-free queue the cron
    # drains (Redis frees the detached per-slot dicts in a thread); an
    # *active* trim (any client tracking keys, or DEBUG ASM-TRIM-METHOD
    # active) deletes them from the cron, 25% of a cron period at most per
    # tick, so that every deleted key invalidates its tracked copies. Either
    # way TRIMSLOTS goes to replicas and the AOF when the job is processed.

    def trimming_slots(self) -> frozenset:
        return self._trimming

    def _refresh_trimming(self) -> None:
        s: set = set()
        for slots in self.trim_pending:
            s.update(slots)
        for j in self.trim_active:
            s.update(j.slots)
        for j in self.trim_bg:
            if not j.done:
                s.update(j.slots)
        self._trimming = frozenset(s)
        self._refresh_hidden()

    def schedule_trim(self, slots) -> int:
        """Queue a trim job for the slots of ``slots`` that hold keys and
        are not in a job already; returns the number of keys it will trim."""
        db = self.server.dbs[0]
        tr = self._trimming
        slots = sorted(s for s in slots if s not in tr and db.count_keys_in_slot(s))
        if not slots:
            return 0
        n = sum(db.count_keys_in_slot(s) for s in slots)
        self.trim_pending.append(slots)
        self.used = True
        self._refresh_trimming()
        self.core.emit("cluster.asm_trim", outcome="scheduled",
                       slots=format_ranges(normalize((s, s) for s in slots)), keys=n)
        return n

    def trim_paused(self) -> bool:
        """Writes paused (CLIENT PAUSE, a migration's handoff): no trim."""
        srv = self.server
        return srv.pause_end_ms > srv.now_ms

    def process_pending_trims(self) -> None:
        """Before-sleep: start the pending jobs (a replica drops them: its
        master's TRIMSLOTS does the work)."""
        if not self.trim_pending or self.trim_method == "none":
            return
        if not self.st.myself.is_master:
            for slots in self.trim_pending:
                log.info("Cancelling the pending trim job for slots: %s",
                         format_ranges(normalize((s, s) for s in slots)))
            self.trim_pending = []
            self._refresh_trimming()
            return
        if self.trim_paused():
            if not self._trim_deferred_logged:
                self._trim_deferred_logged = True
                log.info("Trim job is deferred since pause action is in effect.")
            return
        self._trim_deferred_logged = False
        jobs, self.trim_pending = self.trim_pending, []
        for slots in jobs:
            ranges = normalize((s, s) for s in slots)
            self.trim_slots(slots)
            argv = [b"TRIMSLOTS", b"RANGES", b"%d" % len(ranges)]
            for s, e in ranges:
                argv += [b"%d" % s, b"%d" % e]
            self.server.propagate(0, argv)
        if self._mirror_clear_pending and not any(t.op == IMPORT for t in self.tasks):
            self._mirror(None)  # (after the TRIMSLOTS: see _mirror_end)
        self._refresh_trimming()

    def trim_slots(self, slots) -> int:
        """Run a trim now (Redis's asmTrimSlots): active when a client
        tracks keys or the debug method says so, else in the background."""
        if self.trim_method == "none":
            return 0
        srv = self.server
        db = srv.dbs[0]
        slots = sorted(s for s in slots if db.count_keys_in_slot(s))
        if not slots:
            return 0
        self.used = True
        self.trims += len(slots)
        rs = format_ranges(normalize((s, s) for s in slots))
        if self.trim_method == "active" or (self.trim_method == "default"
                                            and srv.tracking.tracking_clients):
            self.trim_active.append(TrimJob(slots))
            log.info("Active trim scheduled for slots: %s", rs)
            self.core.emit("cluster.asm_trim", outcome="active_scheduled", slots=rs)
            if len(self.trim_active) == 1:
                self._active_start()
            self._refresh_trimming()
            return 0
        n = sum(db.count_keys_in_slot(s) for s in slots)
        # watchers of the slots' keys see them go now (Redis's flush signal)
        if srv.watched_keys:
            sl = set(slots)
            for dbid, key in list(srv.watched_keys):
                if dbid == 0 and key_slot(key) in sl:
                    srv.touch_key(db, key)
        job = BackgroundTrim(db, slots, n, self)
        self.trim_bg.append(job)
        srv.lazyfree.free_job_async(job, n)
        log.info("Background trim started for slots: %s to trim %d keys.", rs, n)
        self.core.emit("cluster.asm_trim", outcome="background", slots=rs, keys=n)
        self._refresh_trimming()
        return n

    def detached_counts(self) -> tuple[int, int]:
        """(keys, keys with a TTL) a background trim holds until the lazy
        free runs: INFO keyspace leaves them out, as Redis (which detached
        them) does."""
        if not self.trim_bg:
            return (0, 0)
        db = self.server.dbs[0]
        keys = expires = 0
        for j in self.trim_bg:
            if j.done:
                continue
            for s in j.slots:
                d = db.slot_keys.get(s)
                if d:
                    keys += len(d)
                    if db.expires:
                        expires += sum(1 for k in d if k in db.expires)
        return (keys, expires)

    def background_trim_done(self, job) -> None:
        if job in self.trim_bg:
            self.trim_bg.remove(job)
        self._refresh_trimming()

    def _active_start(self) -> None:
        j = self.trim_active[0]
        db = self.server.dbs[0]
        self.at_started += 1
        self.at_keys = sum(db.count_keys_in_slot(s) for s in j.slots)
        self.at_trimmed = 0
        log.info("Active trim initiated for slots: %s, to trim %d keys.",
                 format_ranges(normalize((s, s) for s in j.slots)), self.at_keys)

    def _active_end(self) -> None:
        j = self.trim_active.pop(0)
        self.at_completed += 1
        rs = format_ranges(normalize((s, s) for s in j.slots))
        log.info("Active trim completed for slots: %s, %d keys trimmed.", rs, self.at_trimmed)
        self.core.emit("cluster.asm_trim", outcome="active_completed", slots=rs,
                       keys=self.at_trimmed)

    def active_trim_cycle(self, hz: int) -> int:
        """Cron: delete keys of the current active job for at most 25% of a
        cron period (the clock is the Env's, read every 32 deletions;
        DEBUG ASM-TRIM-METHOD active <delay> counts <delay> us a key);
        not while writes are paused. Returns the keys deleted."""
        if self.trim_delay < 0 or not self.trim_active:
            return 0
        if self.trim_paused():
            if not self._trim_blocked_logged:
                self._trim_blocked_logged = True
                log.info("Active trim cycle is blocked since pause action is in effect.")
            return 0
        if self._trim_blocked_logged:
            log.info("Active trim cycle is unblocked.")
            self._trim_blocked_logged = False
        srv = self.server
        db = srv.dbs[0]
        clock = srv.clock_ns
        limit_us = max(1, 1000000 * 25 // max(1, hz) // 100)
        start = clock()
        delay = self.trim_delay
        deleted = 0
        sk = db.slot_keys
        while self.trim_active:
            j = self.trim_active[0]
            exceeded = False
            while j.pos < len(j.slots):
                d = sk.get(j.slots[j.pos])
                while d:
                    db.delete(next(iter(d)))  # (tracking invalidation, no event)
                    deleted += 1
                    self.at_trimmed += 1
                    if deleted % 32 == 0 and ((clock() - start) // 1000
                                              + deleted * delay > limit_us):
                        exceeded = True
                        break
                    d = sk.get(j.slots[j.pos])
                if exceeded:
                    break
                j.pos += 1
            if exceeded:
                break
            self._active_end()
            if self.trim_active:
                self._active_start()  # the next job at once
        self._refresh_trimming()
        return deleted

    def cancel_trim_jobs(self) -> None:
        """A full resync replaces the dataset: every trim job goes."""
        for slots in self.trim_pending:
            log.info("Cancelling the pending trim job for slots: %s",
                     format_ranges(normalize((s, s) for s in slots)))
        self.trim_pending = []
        if self.trim_active:
            log.info("Cancelling all active trim jobs")
            self.at_cancelled += len(self.trim_active)
            self.trim_active = []
        for j in self.trim_bg:
            j.done = True  # (whatever it would free is flushed with the old data)
        self.trim_bg = []
        self._refresh_trimming()

    def trim_blocks(self, argv) -> bool:
        """Replica protection: a command of my master touching keys of a
        slot I am still trimming must wait (a background trim is simply
        finished now)."""
        if not self._trimming:
            return False
        cmd = self.server.commands.get(argv[0].lower())
        if cmd is None:
            return False
        pos = cmd.get_keys(argv)
        if not pos:
            return False
        tr = self._trimming
        hit = {key_slot(argv[p]) for p in pos} & tr
        if not hit:
            return False
        if any(not j.done and hit & set(j.slots) for j in self.trim_bg):
            self.server.lazyfree.drain()
        return bool(hit & self._trimming)

    def set_trim_method(self, method: str, delay: int) -> None:
        """DEBUG ASM-TRIM-METHOD: leaving ``none`` trims every slot that has
        keys and that I do not own (master only)."""
        old = self.trim_method
        self.trim_method = method
        self.trim_delay = delay
        if old == "none" and method != "none" and self.st.myself.is_master:
            st = self.st
            self.schedule_trim([s for s in sorted(self.server.dbs[0].slot_keys)
                                if st.owner(s) is not st.myself])

    # --- cron (every 100 ms) -----------------------------------------------------------

    def cron(self) -> None:
        self._cron_ticks += 1
        now = self.now()
        rt = self.cfg_int("repl-timeout") * 1000
        for t in list(self.tasks):
            if t.op == IMPORT:
                if t.state == "failed" and now >= t.next_retry:
                    t.retries += 1
                    self.move(t, "none")
                    self.try_start(t)
                elif t.state == "none":
                    self.try_start(t)
                elif t.state in ("wait-stream-eof", "accumulate-buffer") and now - t.last_io > rt:
                    self.fail(t, ("Main channel" if t.state == "wait-stream-eof" else "RDB channel")
                              + " - Connection timeout")
            else:
                if t.state == "send-stream":
                    if now - t.last_io > rt:
                        self.fail(t, "Main channel - Connection timeout")
                    elif t.applied_time:
                        floor = self.cfg_int("cluster-slot-migration-sync-buffer-drain-timeout")
                        lim = max(floor, 2 * (t.applied_time - t.snapshot_start))
                        if now - t.applied_time > lim:
                            self.fail(t, "Sync buffer drain timeout")
                elif t.state in ("handoff", "stream-eof"):
                    lim = self.cfg_int("cluster-slot-migration-write-pause-timeout")
                    if now - t.paused_time >= lim:
                        self.fail(t, "Write pause timeout during slot handoff: destination did "
                                     "not take ownership within %d ms." % lim)

    def before_sleep(self) -> None:
        t = self.active()
        if t is not None and t.op == MIGRATE and t.cross_slot and t.state not in TERMINAL:
            self.cancel(t, "propagating cross slot command")

    def _refresh_hidden(self) -> None:
        """Recompute, on each task or mirror change, the slots clients must
        not see; active expiry skips the same slots."""
        self.hidden_slots = self.server.dbs[0].expire_hold = self.hidden()

    def hidden(self) -> frozenset:
        """Slots whose keys this node holds but clients must not see: those
        of an import in progress (§5; INFO keyspace still counts them) and
        those in a trim job (§6.7)."""
        t = self.active()
        out = self._trimming
        if t is not None and t.op == IMPORT and t.state not in ("none", "failed"):
            return t.slots | out if out else t.slots
        if self.master_task is not None and self.st.myself.is_replica:
            # my master's import, mirrored (§4.7)
            return self.master_task[1] | out if out else self.master_task[1]
        return out

    def active_count(self) -> int:
        return sum(1 for t in self.tasks if t.op == IMPORT or t.state != "failed")


def resp(*argv) -> bytes:
    out = [b"*%d\r\n" % len(argv)]
    for a in argv:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class SlotSnapshot:
    """The moving slots at the fork point, as RESTORE ... ABSTTL commands,
    a bounded number of keys per step (the copy-on-write protocol of the
    full-sync snapshot, ``frtrio/replication/snapshot.py``: the engine calls
    :meth:`preserve` before a command touches a key not yet encoded)."""

    def __init__(self, server, slots):
        from frtrio.store import rdb as _rdb

        self._rdb = _rdb
        self.lim = _rdb.Limits.from_config(server.config)
        db = server.dbs[0]
        self.pending: dict = {}
        self.expires: dict = {}
        data = db.data
        for s in sorted(slots):
            for k in db.slot_keys.get(s, ()):
                self.pending[k] = data[k]
                e = db.expires.get(k)
                if e is not None:
                    self.expires[k] = e
        self.keys_total = len(self.pending)
        self.parts: list[bytes] = [resp(b"SELECT", b"0")] if self.pending else []
        self.preserved = 0

    def _encode(self, key: bytes, v) -> None:
        payload = self._rdb.dump_payload(unpacked(v), self.lim)
        exp = self.expires.get(key, 0)
        self.parts.append(resp(b"RESTORE", key, b"%d" % exp, payload, b"ABSTTL", b"REPLACE"))

    def preserve(self, key: bytes, value) -> None:
        if self.pending.get(key) is value:
            del self.pending[key]
            self._encode(key, value)
            self.preserved += 1

    def step(self, budget: int) -> bool:
        pend = self.pending
        while pend and budget > 0:
            k, v = pend.popitem()
            self._encode(k, v)
            budget -= 1
        return not pend

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out
