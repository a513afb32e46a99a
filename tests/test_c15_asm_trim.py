"""C15 trimming (Redis 8.4 atomic slot migration, spec asm.md §6.7) on the
pure core, driven in-process: a trim is a pending job whose slots' keys are
invisible at once; before-sleep starts it when writes are not paused and
propagates TRIMSLOTS; a background trim hands the keys to the lazy free, an
active trim (a client tracks keys, or DEBUG ASM-TRIM-METHOD active) deletes
them from the cron within a time budget, with CLUSTER INFO counters; RDB
saves and AOF rewrites skip slots being trimmed; a replica's master link
waits for a trim of the slots it writes to; a full sync cancels active
trims. Also the held fail-points of upstream tests 29 and 31.

The end-to-end versions (real processes) are in tests/test_c15_asm.py."""

from __future__ import annotations

import logging

import pytest

from frtrio.cluster.slots import key_slot
from test_c15_asm_core import TASK, key_in, source_task
from test_cluster_unit import ID_B, H, err

MINE = 100  # a slot node A (myself) owns
THEIRS = 6000  # a slot of node B


def info(h) -> dict:
    text = h.val("CLUSTER", "INFO").decode()
    return dict(ln.split(":", 1) for ln in text.split("\r\n") if ln)


def fill(h, slot: int, n: int, prefix: str = "k") -> list[bytes]:
    """n keys of ``slot`` straight into the keyspace (as an import leaves them)."""
    db = h.srv.dbs[0]
    keys = []
    i = 0
    tag = key_in(slot, prefix)
    while len(keys) < n:
        k = b"{%s}%s%d" % (tag, prefix.encode(), i)
        db.set(k, b"v")
        keys.append(k)
        i += 1
    return keys


class Clock:
    """The Env's monotonic clock, as the core sees it (ns), moved by hand."""

    def __init__(self):
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


@pytest.fixture
def h():
    h = H(enable_debug_command="yes")
    h.srv.clock_ns = Clock()
    return h


def trimslots_argv(*slots):
    argv = [b"TRIMSLOTS", b"RANGES", b"%d" % len(slots)]
    for s in slots:
        argv += [b"%d" % s, b"%d" % s]
    return argv


def test_c15_trim_job_is_pending_while_writes_are_paused_and_setslot_waits(h, caplog):
    """Upstream test 49 (and 43's lazy free): while writes are paused the job
    stays pending: its keys are already invisible (DBSIZE, COUNTKEYSINSLOT,
    KEYS, SCAN), CLUSTER SETSLOT on the slot is refused; once unpaused
    before-sleep starts it (TRIMSLOTS propagated) as a background trim the
    cron's lazy free completes (lazyfreed_objects counts every key)."""
    mig = h.core.migrations
    fill(h, MINE, 3, "own")
    keys = fill(h, THEIRS, 50)
    assert mig.schedule_trim([THEIRS]) == 50
    h.srv.pause_clients(h.srv.now_ms + 100_000, False)
    caplog.set_level(logging.INFO, logger="frtrio")
    mig.process_pending_trims()
    assert mig.trim_pending and "Trim job is deferred since pause action" in caplog.text
    assert h.val("DBSIZE") == 3
    assert h.val("CLUSTER", "COUNTKEYSINSLOT", THEIRS) == 0
    assert h.val("KEYS", "*") and all(key_slot(k) == MINE for k in h.val("KEYS", "*"))
    assert all(key_slot(k) == MINE for k in h.val("SCAN", "0", "COUNT", "1000")[1])
    assert h.run("CLUSTER", "SETSLOT", THEIRS, "STABLE").startswith(
        b"-ERR There is a pending trim job for slot 6000")
    h.srv.unpause_clients()
    h.srv.propagated.clear()
    mig.process_pending_trims()
    assert h.srv.propagated == [(0, trimslots_argv(THEIRS))]
    assert "Background trim started for slots: 6000-6000 to trim 50 keys." in caplog.text
    assert h.srv.lazyfree.pending == 50
    assert h.srv.dbs[0].count_keys_in_slot(THEIRS) == 50  # (freed by the cron)
    h.srv.lazyfree.drain()
    assert h.srv.lazyfree.freed == 50 and h.srv.lazyfree.pending == 0
    assert not any(k in h.srv.dbs[0].data for k in keys)
    assert not mig.trimming_slots()
    assert h.run("CLUSTER", "SETSLOT", THEIRS, "STABLE") == b"+OK\r\n"
    # background trims are not active trims
    assert info(h)["cluster_slot_migration_stats_active_trim_started"] == "0"


def test_c15_background_trim_touches_watched_keys_of_its_slots_only(h):
    """Upstream test 46: a transaction that WATCHed a key of a trimmed slot
    fails; one that watched a key of another slot runs."""
    a, b = h.client(), h.client()
    moved = fill(h, MINE + 1, 1, "w")[0]
    kept = fill(h, MINE, 1, "w")[0]
    h.run("WATCH", moved, c=a)
    h.run("WATCH", kept, c=b)
    h.st.assign_slot(MINE + 1, h.node(ID_B))  # the slot moved away
    h.core.migrations.schedule_trim([MINE + 1])
    h.core.migrations.process_pending_trims()
    for c in (a, b):
        h.run("MULTI", c=c)
        h.run("PING", c=c)
    assert h.run("EXEC", c=a) == b"*-1\r\n"
    assert h.run("EXEC", c=b) == b"*1\r\n+PONG\r\n"


def test_c15_active_trim_with_tracking_invalidates_and_counts(h, caplog):
    """Upstream tests 50 and 63: a client with tracking on makes the trim
    active; the cron deletes the keys, each invalidates its tracked copy
    and fires no keyspace event; CLUSTER INFO's counters are exact."""
    caplog.set_level(logging.INFO, logger="frtrio")
    slot = MINE + 2
    keys = fill(h, slot, 1500, "a")
    tr = h.client(resp=3)
    h.run("CLIENT", "TRACKING", "ON", c=tr)
    h.run("GET", keys[0], c=tr)
    tr.take_output()
    h.run("CONFIG", "SET", "notify-keyspace-events", "KEA")
    sub = h.client()
    h.run("PSUBSCRIBE", "*", c=sub)
    sub.take_output()
    h.st.assign_slot(slot, h.node(ID_B))
    mig = h.core.migrations
    mig.schedule_trim([slot])
    mig.process_pending_trims()
    assert "Active trim scheduled for slots: 102-102" in caplog.text
    i = info(h)
    assert i["cluster_slot_migration_active_trim_running"] == "1"
    assert i["cluster_slot_migration_active_trim_current_job_keys"] == "1500"
    assert i["cluster_slot_migration_stats_active_trim_started"] == "1"
    assert h.val("DBSIZE") == 0  # invisible while it runs
    while mig.trim_active:
        mig.active_trim_cycle(10)
    i = info(h)
    assert i["cluster_slot_migration_active_trim_running"] == "0"
    assert i["cluster_slot_migration_active_trim_current_job_trimmed"] == "1500"
    assert i["cluster_slot_migration_active_trim_current_job_keys"] == "1500"
    assert i["cluster_slot_migration_stats_active_trim_completed"] == "1"
    assert h.srv.dbs[0].count_keys_in_slot(slot) == 0
    assert b"invalidate" in tr.take_output()
    assert sub.take_output() == b""  # a trimmed key moved: no del event
    assert "Active trim completed for slots: 102-102, 1500 keys trimmed." in caplog.text


def test_c15_active_trim_keeps_to_its_time_budget_and_stops_under_pause(h):
    """Upstream test 57 and §6.7's budget: one cron cycle runs for at most
    25% of a cron period (clock read every 32 deletions; DEBUG
    ASM-TRIM-METHOD active <delay> counts <delay> us a key); under CLIENT
    PAUSE WRITE no key is trimmed."""
    slot = MINE + 3
    fill(h, slot, 400, "b")
    h.st.assign_slot(slot, h.node(ID_B))
    assert h.run("DEBUG", "ASM-TRIM-METHOD", "active", "1000") == b"+OK\r\n"
    mig = h.core.migrations
    mig.schedule_trim([slot])
    mig.process_pending_trims()
    # 25 ms at hz 10, 1 ms a key: the check after 32 deletions stops it
    assert mig.active_trim_cycle(10) == 32
    h.srv.pause_clients(h.srv.now_ms + 100_000, False)  # (CLIENT PAUSE 100000 WRITE)
    assert mig.active_trim_cycle(10) == 0
    assert info(h)["cluster_slot_migration_active_trim_current_job_trimmed"] == "32"
    h.srv.unpause_clients()
    # the real clock counts too: 30 ms already spent after 32 keys
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "0")
    clock = h.srv.clock_ns
    orig = clock.__call__

    def slow():
        clock.ns += 30_000_000  # each read: 30 ms later
        return orig()

    h.srv.clock_ns = slow
    assert mig.active_trim_cycle(10) == 32
    h.srv.clock_ns = clock
    while mig.trim_active:
        mig.active_trim_cycle(10)
    assert info(h)["cluster_slot_migration_active_trim_current_job_trimmed"] == "400"


def test_c15_multiple_active_trim_jobs_run_one_after_another(h):
    """Upstream tests 51 and 61: with DEBUG ASM-TRIM-METHOD active -1 the
    jobs are scheduled but do not run (active_trim_running counts them);
    three TRIMSLOTS in one MULTI make three jobs; all complete in order."""
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    mig = h.core.migrations
    for s in (THEIRS, THEIRS + 1, THEIRS + 2):
        fill(h, s, 100, "m%d" % s)
    h.run("MULTI")
    for s in (THEIRS, THEIRS + 1, THEIRS + 2):
        h.run("TRIMSLOTS", "RANGES", "1", s, s)
    assert h.run("EXEC") == b"*3\r\n+OK\r\n+OK\r\n+OK\r\n"
    assert info(h)["cluster_slot_migration_active_trim_running"] == "3"
    assert mig.active_trim_cycle(10) == 0
    assert h.val("DBSIZE") == 0
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "0")
    while mig.trim_active:
        mig.active_trim_cycle(10)
    i = info(h)
    assert i["cluster_slot_migration_stats_active_trim_started"] == "3"
    assert i["cluster_slot_migration_stats_active_trim_completed"] == "3"
    assert len(h.srv.dbs[0].data) == 0
    # the commands went to replicas and the AOF as they came
    assert [a for _, a in h.srv.propagated if a[0] == b"TRIMSLOTS"][-3:] == [
        trimslots_argv(s) for s in (THEIRS, THEIRS + 1, THEIRS + 2)]


def test_c15_trimslots_refuses_served_slots_and_bad_method(h):
    """Upstream test 60 (master side) and the DEBUG hook's bad input."""
    assert h.run("TRIMSLOTS", "RANGES", "1", "0", "0") == err(
        "ERR the slot 0 is served by this node")
    assert h.run("TRIMSLOTS", "RANGES", "1", "16383", "16383") == b"+OK\r\n"
    assert h.run("DEBUG", "ASM-TRIM-METHOD", "sometimes").startswith(b"-ERR Invalid trim method")
    assert h.run("DEBUG", "ASM-TRIM-METHOD", "active", "x").startswith(b"-ERR value is not")
    assert h.core.migrations.trim_method == "default"


def test_c15_trim_method_none_keeps_keys_until_switched_back(h):
    """DEBUG ASM-TRIM-METHOD none: nothing is trimmed; switching back trims
    every slot I do not own that holds keys."""
    h.run("DEBUG", "ASM-TRIM-METHOD", "none")
    fill(h, THEIRS, 10)
    fill(h, MINE, 10)
    h.run("TRIMSLOTS", "RANGES", "1", THEIRS, THEIRS)
    assert h.srv.dbs[0].count_keys_in_slot(THEIRS) == 10
    h.run("DEBUG", "ASM-TRIM-METHOD", "default")
    h.core.migrations.process_pending_trims()
    h.srv.lazyfree.drain()
    assert h.srv.dbs[0].count_keys_in_slot(THEIRS) == 0
    assert h.srv.dbs[0].count_keys_in_slot(MINE) == 10


def test_c15_rdb_and_aof_rewrite_skip_slots_being_trimmed(h, caplog):
    """Upstream tests 55 and 56: a save, an AOF rewrite or a full sync's
    payload made while an active trim runs leaves out the keys of its
    slots (and says so)."""
    from frtrio.config import Config
    from frtrio.core.engine import Server
    from frtrio.persist.rdbfile import load_rdb, rdb_bytes
    from frtrio.persist.rewrite import dataset_as_commands

    caplog.set_level(logging.INFO)
    kept = fill(h, MINE, 20, "s")
    fill(h, THEIRS, 30, "t")
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    h.core.migrations.schedule_trim([THEIRS])
    h.core.migrations.process_pending_trims()
    data = rdb_bytes(h.srv, h.srv.config)
    assert "BGSAVE done, 20 keys saved, 30 keys skipped" in caplog.text
    fresh = Server(Config(), __import__("random").Random(1))
    load_rdb(data, fresh, fresh.config)
    assert sorted(fresh.dbs[0].data) == sorted(kept)
    text = dataset_as_commands(h.srv)
    assert "AOF rewrite done, 20 keys saved, 30 keys skipped" in caplog.text
    assert text.count(b"\r\nSET\r\n") == 20
    # a full sync's payload leaves them out too
    from frtrio.replication.snapshot import Snapshot

    snap = Snapshot(h.srv, h.srv.config, "0" * 40, 0, 0, b"7.0.15", 0, 0)
    while not snap.step(100):
        pass
    fresh2 = Server(Config(), __import__("random").Random(1))
    load_rdb(b"".join(snap.payload_parts()) + b"\0" * 8, fresh2, fresh2.config)
    assert sorted(fresh2.dbs[0].data) == sorted(kept)


def test_c15_full_sync_cancels_active_trims_and_replica_link_waits(h, caplog):
    """Upstream tests 58 and 59 on the core: a command of my master for a
    slot I am actively trimming must wait (a background trim is just
    finished first); a full sync cancels the active jobs and counts them."""
    caplog.set_level(logging.INFO, logger="frtrio")
    mig = h.core.migrations
    fill(h, THEIRS, 10, "r")
    fill(h, THEIRS + 1, 10, "q")
    h.run("DEBUG", "ASM-TRIM-METHOD", "bg")
    mig.trim_slots([THEIRS + 1])
    k1 = b"{%s}new" % key_in(THEIRS + 1)
    assert not mig.trim_blocks([b"SET", k1, b"v"])  # finished at once instead
    assert h.srv.dbs[0].count_keys_in_slot(THEIRS + 1) == 0
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    mig.trim_slots([THEIRS])
    k = b"{%s}new" % key_in(THEIRS)
    assert mig.trim_blocks([b"SET", k, b"v"])
    assert not mig.trim_blocks([b"SET", b"{%s}x" % key_in(MINE), b"v"])
    assert not mig.trim_blocks([b"PING"])
    mig.cancel_trim_jobs()
    assert "Cancelling all active trim jobs" in caplog.text
    assert info(h)["cluster_slot_migration_stats_active_trim_cancelled"] == "1"
    assert info(h)["cluster_slot_migration_active_trim_running"] == "0"
    assert not mig.trim_blocks([b"SET", k, b"v"])


def test_c15_replica_drops_its_pending_trim_jobs(caplog):
    """§6.5: a replica does not start trims itself (its master's TRIMSLOTS
    will): pending jobs are cancelled, with Redis's log line."""
    h = H(me_replica=True)
    caplog.set_level(logging.INFO, logger="frtrio")
    mig = h.core.migrations
    fill(h, MINE, 5)
    mig.schedule_trim([MINE])
    mig.process_pending_trims()
    assert "Cancelling the pending trim job for slots: 100-100" in caplog.text
    assert not mig.trim_pending and h.srv.dbs[0].count_keys_in_slot(MINE) == 5


def test_c15_trimslots_while_loading_deletes_at_once(h):
    """§6.7 / upstream test 64: TRIMSLOTS replayed from the AOF deletes
    synchronously (a later command of the file may write the key again)."""
    fill(h, THEIRS, 10)
    h.run("DEBUG", "ASM-TRIM-METHOD", "active", "-1")
    from frtrio.commands.migration import cmd_trimslots

    h.srv.loading = True  # (the AOF client runs it: no LOADING gate)
    try:
        assert cmd_trimslots(h.c, trimslots_argv(THEIRS)) is not None
    finally:
        h.srv.loading = False
    assert h.srv.dbs[0].count_keys_in_slot(THEIRS) == 0
    assert not h.core.migrations.trim_active


def test_c15_source_held_before_handoff_fails_on_the_drain_timeout(h):
    """Upstream test 31 on the core: with the fail point
    migrate-main-channel handoff-prep the source never enters handoff
    (writes are never paused); once the destination applied the snapshot
    the drain timeout fails the task."""
    h.run("CONFIG", "SET", "cluster-slot-migration-sync-buffer-drain-timeout", "5000")
    mig, t = source_task(h)
    mig.set_failpoint("migrate-main-channel", "handoff-prep")
    mig.snapshot_started(t)
    mig.snapshot_done(t)
    mig.ack(t, b"wait-stream-eof", b"%d" % t.source_offset)
    assert t.state == "send-stream" and "asm" not in h.srv.pauses
    h.tick(4_900)
    assert t.state == "send-stream"
    for _ in range(3):
        mig.ack(t, b"wait-stream-eof", b"%d" % t.source_offset)  # (ACKs keep coming)
        h.tick(100)
    assert t.state == "failed"
    assert t.last_error.startswith("Sync buffer drain timeout (state: send-stream")


def test_c15_destination_held_at_takeover_claims_nothing(h):
    """Upstream test 29 on the core (destination side): with the fail point
    import-main-channel takeover the task stays in takeover, the slots
    stay the source's, and a cancel ends it."""
    from frtrio.cluster import migration as m

    mig = h.core.migrations
    t = m.Task(TASK, m.IMPORT, [(THEIRS, THEIRS)], ID_B, h.st.myself.id, h.srv.now_ms)
    mig.tasks.append(t)
    for s in m.IMPORT_STATES[1:m.IMPORT_STATES.index("takeover")]:
        mig.move(t, s)
    mig.set_failpoint("import-main-channel", "takeover")
    assert mig.takeover(t) is False
    assert t.state == "takeover" and h.st.owner(THEIRS) is h.node(ID_B)
    mig.cancel(t, "user request")
    assert t.state == "canceled"
