"""C15 on the pure core of atomic slot migration (frtrio/cluster/migration.py),
driven in-process: the state machines refuse what the spec does not allow,
the stream carries each write to the moving slots once and in order, a
cross-slot write cancels the source's task, the handoff pauses writes and
the bus update completes the task with a trim."""

from __future__ import annotations

import pytest

from frtrio.cluster import migration as m
from frtrio.cluster.slots import key_slot
from test_cluster_unit import H, ID_A, ID_B

TASK = "1" * 40


class Events:
    def __init__(self):
        self.seen = []

    def emit(self, code, **fields):
        self.seen.append((code, fields))

    def codes(self):
        return [c for c, _ in self.seen]


def key_in(slot: int, prefix: str = "k") -> bytes:
    i = 0
    while True:
        k = b"%s%d" % (prefix.encode(), i)
        if key_slot(k) == slot:
            return k
        i += 1


@pytest.fixture
def h():
    h = H()
    h.srv.events = Events()
    return h


def source_task(h, ranges=(b"0", b"10")):
    mig = h.core.migrations
    t = mig.sync_cmd(TASK, list(ranges), ID_B)
    assert t.state == "wait-rdbchannel" and t.op == "migrate"
    mig.rdbchannel_cmd(TASK)
    assert t.state == "wait-bgsave-start"
    return mig, t


def test_c15_transitions_outside_the_state_machine_are_refused(h):
    mig, t = source_task(h)
    for bad in ("completed", "stream-eof", "wait-rdbchannel", "connecting"):
        with pytest.raises(m.StateViolation):
            mig.move(t, bad)
        assert t.state == "wait-bgsave-start"
    codes = h.srv.events.codes()
    assert codes.count("cluster.asm_syncslots_state_machine_violation") == 4
    # the happy path is allowed, and failed/canceled from any live state
    mig.snapshot_started(t)
    assert t.state == "send-bulk-and-stream"
    mig.fail(t, "RDB channel - Failed to send slots snapshot")
    assert t.state == "failed"
    assert t.last_error == ("RDB channel - Failed to send slots snapshot (state: "
                            "send-bulk-and-stream, rdb_channel_state: rdbchannel-transfer)")
    # an import task too: none -> connecting -> ... only forwards
    assert set(m.ALLOWED[m.IMPORT]["none"]) >= {"connecting", "failed", "canceled"}
    assert "none" not in m.ALLOWED[m.IMPORT]["wait-stream-eof"]
    assert m.ALLOWED[m.IMPORT]["failed"] == {"none", "canceled"}
    assert "completed" not in m.ALLOWED[m.MIGRATE]["failed"]


def test_c15_stream_carries_each_write_once_in_order(h):
    k0, k1, kout = key_in(3), key_in(10), key_in(11)
    h.run("SET", k0, "before")  # in the snapshot
    mig = h.core.migrations
    t = mig.sync_cmd(TASK, [b"0", b"10"], ID_B)
    mig.rdbchannel_cmd(TASK)
    snap = m.SlotSnapshot(h.srv, t.slots)
    h.srv.start_snapshot(snap)
    h.srv.propagated.clear()
    h.srv.propagate(0, [b"SET", k0, b"skipped"])  # already in the snapshot
    mig.snapshot_started(t)
    h.run("APPEND", k0, "+1")
    h.run("SET", kout, "elsewhere")
    h.run("SET", k1, "x")
    h.run("PING")
    mig.feed(h.srv.propagated)
    want = m.resp(b"APPEND", k0, b"+1") + m.resp(b"SET", k1, b"x")
    assert bytes(t.stream) == want
    assert t.source_offset == len(want)
    # the snapshot kept the value of the fork point (copy-on-write)
    assert snap.step(100)
    body = snap.take()
    assert b"RESTORE" in body and b"before+1" not in body
    h.srv.end_snapshot(snap)


def test_c15_cross_slot_propagation_cancels_the_source_task(h):
    """A write spanning slots reaching propagation while the task feeds
    (Redis reaches this through modules; in frtrio any internal path): the
    task is cancelled at before-sleep, the write itself stands."""
    mig, t = source_task(h)
    mig.snapshot_started(t)
    h.srv.propagated.clear()
    h.srv.propagate(0, [b"MSET", key_in(1), b"a", key_in(4000), b"b"])
    mig.feed(h.srv.propagated)
    assert t.cross_slot and not t.stream
    assert "cluster.asm_crossslot_cancel_violation" in h.srv.events.codes()
    mig.before_sleep()
    assert t.state == "canceled"
    assert t.last_error.startswith("Cancelled due to propagating cross slot command (state: "
                                   "send-bulk-and-stream")
    assert mig.archived[0] is t and not mig.tasks


def test_c15_handoff_pauses_writes_and_the_bus_update_completes(h):
    k = key_in(5)
    h.run("SET", k, "v")
    mig, t = source_task(h)
    mig.snapshot_started(t)
    h.run("SET", k, "w")
    mig.feed(h.srv.propagated)
    mig.snapshot_done(t)
    assert t.state == "send-stream"
    lag = h.srv.config.get_int("cluster-slot-migration-handoff-max-lag-bytes")
    h.srv.config.values["cluster-slot-migration-handoff-max-lag-bytes"] = "0"
    mig.ack(t, b"wait-stream-eof", b"%d" % (t.source_offset - 1))
    assert t.state == "send-stream"  # one byte behind
    mig.ack(t, b"wait-stream-eof", b"%d" % t.source_offset)
    assert t.state == "handoff" and "asm" in h.srv.pauses
    h.srv.config.values["cluster-slot-migration-handoff-max-lag-bytes"] = str(lag)
    c = h.client()
    assert h.srv.pause_holds(c, [b"SET", b"x", b"1"])  # writes wait
    assert not h.srv.pause_holds(c, [b"GET", b"x"])
    mig.stream_eof_sent(t)
    # the destination's claim arrives: slots 0-10 are lost
    h.srv.propagated.clear()
    assert mig.slots_lost(set(range(0, 11)))
    assert t.state == "completed" and "asm" not in h.srv.pauses
    # the trim is a pending job: the keys are invisible at once, deleted
    # when before-sleep starts the job (a background trim: the lazy free)
    assert 5 in mig.trimming_slots() and 5 in mig.hidden_slots
    mig.process_pending_trims()
    assert (0, [b"TRIMSLOTS", b"RANGES", b"1", b"5", b"5"]) in h.srv.propagated
    h.srv.lazyfree.drain()
    assert h.srv.dbs[0].count_keys_in_slot(5) == 0
    assert not mig.trimming_slots()


def test_c15_write_pause_timeout_fails_the_task_and_resumes_writes(h):
    mig, t = source_task(h)
    mig.snapshot_started(t)
    mig.snapshot_done(t)
    mig.ack(t, b"wait-stream-eof", b"0")
    assert t.state == "handoff"
    h.tick(9_900)
    assert t.state == "handoff"
    h.tick(200)
    assert t.state == "failed" and "asm" not in h.srv.pauses
    assert t.last_error.startswith("Write pause timeout during slot handoff: destination did "
                                   "not take ownership within 10000 ms.")
    # the destination's retry reuses it (same id, ranges, dest)
    t2 = mig.sync_cmd(TASK, [b"0", b"10"], ID_B)
    assert t2 is t and t.retries == 1 and t.state == "wait-rdbchannel"


def test_c15_lost_slots_that_do_not_match_cancel(h):
    mig, t = source_task(h)
    assert not mig.slots_lost({3})
    assert t.state == "canceled"
    assert "slots configuration updated" in t.last_error


def test_c15_setslot_refused_during_a_task(h):
    source_task(h)
    out = h.run("CLUSTER", "SETSLOT", "5", "NODE", ID_A)
    assert out.startswith(b"-ERR Slot 5 is currently in an active atomic slot migration.")
    assert h.run("CLUSTER", "SETSLOT", "11", "NODE", ID_A) == b"+OK\r\n"


def test_c15_import_task_cancels_and_status_on_a_replica():
    h = H(me_replica=True)
    assert h.run("CLUSTER", "MIGRATION", "IMPORT", "0", "1") == (
        b"-ERR slot migration not allowed on replica.\r\n")
