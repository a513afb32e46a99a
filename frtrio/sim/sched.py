"""Seeded Trio scheduling: one seed names one exact interleaving.

Trio's run loop shuffles each batch of runnable tasks with the module RNG
``trio._core._run._r``. With the private flag
``_ALLOW_DETERMINISTIC_SCHEDULING`` set, the batch is first sorted by task
creation counter, so the order no longer depends on ``id()`` (set iteration
of ``Event._tasks``, deadline heap ties); the seeded shuffle then makes the
schedule a pure function of the seed. These are the attributes Trio's own
tests, pytest-trio and Trio's hypothesis plugin set (see
``shared/spec/trio-runtime.md`` §1).

They are private, so this module checks they exist and refuses to run
otherwise: a simulator that silently lost determinism would be worse than
none. The schedule also depends on the exact Trio version, which is pinned
and recorded in every replay log.
"""

from __future__ import annotations

import heapq
import math
import random
import sys

import trio

PINNED_TRIO = "0.35.0"


class DeterminismUnavailable(RuntimeError):
    """Trio no longer has the hooks seeded scheduling needs."""


def _trio_run_module(mod=None):
    if mod is None:
        import trio._core._run as mod
    missing = [a for a in ("_ALLOW_DETERMINISTIC_SCHEDULING", "_r") if not hasattr(mod, a)]
    if missing:
        raise DeterminismUnavailable(
            "trio %s has no %s in trio._core._run: the simulator cannot seed Trio's "
            "scheduler. frtrio pins trio==%s; check that version's run loop before "
            "changing the pin." % (trio.__version__, " / ".join(missing), PINNED_TRIO)
        )
    if not isinstance(mod._r, random.Random):
        raise DeterminismUnavailable("trio._core._run._r is not a random.Random")
    return mod


def check_available(mod=None) -> None:
    """Raise DeterminismUnavailable unless seeded scheduling is possible."""
    _trio_run_module(mod)


def enable(sched_seed: int, mod=None) -> None:
    """Turn on deterministic scheduling and seed Trio's scheduler RNG.

    Call immediately before ``trio.run``: the flag stays on for the process
    (it costs ~15 % scheduler throughput, and hypothesis sets it anyway)."""
    m = _trio_run_module(mod)
    setattr(m, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # typed Final in trio
    m._r.seed(sched_seed)


def versions() -> dict:
    """What a replay depends on besides the seed and the code."""
    return {
        "trio": trio.__version__,
        "python": "%d.%d.%d" % sys.version_info[:3],
    }


class SimClock(trio.abc.Clock):
    """Virtual time that jumps to the next deadline whenever every task is
    blocked, like ``MockClock(autojump_threshold=0)``, one run-loop iteration
    sooner.

    Trio asks the clock how long to sleep (``deadline_to_sleep_time``) only
    when no task is runnable. MockClock answers "forever" and an idle
    iteration then calls its ``_autojump``, so the expired task runs one
    iteration later. This clock moves straight to the deadline when asked and
    answers 0: the expired task runs in the same iteration, at the same
    virtual time, for about half the run-loop cost per timer (and reading the
    time is an attribute read). Time starts at 0 and only moves forward.

    While a task waits in ``wait_all_tasks_blocked`` the clock does not jump
    and answers the virtual time left, so idle waiters keep their priority
    over jumps, as with MockClock."""

    def __init__(self):
        self._now = 0.0
        # the simulator's own timers: [at, seq, task, owner] entries in a
        # heap, served when the clock moves (see ``park``); a fired or
        # aborted entry has task None. Instead of a task an entry may hold a
        # callback (``arm``): it is called from the clock, outside any task
        self._timers: list = []
        self._seq = 0
        self._runq = None  # the run loop's queue of runnable tasks (first use)

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        timers = self._timers
        runq = self._runq
        if runq is None:
            runq = self._runq = _runner_runq()
        while True:
            while timers and timers[0][2] is None:
                heapq.heappop(timers)
            if timers and timers[0][0] < deadline:
                at = timers[0][0]
                if at > self._now:
                    if _idle_waiters():
                        return at - self._now
                    self._now = at
                self._fire()
                if runq:
                    return 0.0
                # only clock callbacks ran (the simulator's clients): serve
                # the next timer without a trip through Trio's run loop
                continue
            d = deadline - self._now
            if d <= 0:
                if timers:
                    self._fire()
                return 0.0
            if deadline == math.inf:
                return 86400.0  # nothing to wait for: deadlocked unless I/O comes
            if _idle_waiters():
                return d
            self._now = deadline
            if timers:
                self._fire()
            return 0.0

    def _fire(self) -> None:
        """Serve the timers that are due, in (time, registration) order: wake
        their tasks, call their callbacks."""
        timers = self._timers
        now = self._now
        while timers and timers[0][0] <= now:
            e = heapq.heappop(timers)
            task = e[2]
            if task is not None:
                e[2] = None
                owner = e[3]
                if owner is not None and owner.waiter is e:
                    owner.waiter = None
                if type(task) is _Task:
                    _reschedule(task)
                else:
                    task()

    def timer(self, at: float, task, owner=None) -> list:
        self._seq += 1
        e = [at, self._seq, task, owner]
        if at != math.inf:
            heapq.heappush(self._timers, e)
        return e

    def jump(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time can't go backwards")
        self._now += seconds


def _runner_runq():
    return trio._core._run.GLOBAL_RUN_CONTEXT.runner.runq


def _idle_waiters() -> bool:
    try:
        return bool(trio._core._run.GLOBAL_RUN_CONTEXT.runner.waiting_for_idle)
    except AttributeError:
        return True  # unknown internals: behave exactly like MockClock


def run(async_fn, *args, seed: int, clock=None,
        instruments=()):
    """``trio.run`` on a seeded schedule and a virtual clock (``SimClock``)."""
    if clock is None:
        clock = SimClock()
    enable(seed)
    return trio.run(async_fn, *args, clock=clock, instruments=list(instruments))


async def park(until: float = math.inf, owner=None, clock=None) -> None:
    """Block the current task until ``until`` (virtual time) or until
    ``wake(owner)`` is called, whichever comes first, without a cancel
    scope: on ``SimClock`` a timed wake-up is a heap entry the clock serves
    when it moves, not a cancellation (a Trio timer is a cancel-scope
    deadline whose expiry raises ``Cancelled`` through the task: several
    times the cost). ``owner`` (an object with a ``waiter`` attribute) lets
    ``wake`` find the parked task. Cancellation of the task still works.
    ``clock``: the run's SimClock, when the caller has it at hand."""
    if clock is None:
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, SimClock):  # pragma: no cover - the simulator always runs on SimClock
            raise RuntimeError("park needs the simulator's clock")
    e = clock.timer(until, _current_task(), owner)
    if owner is not None:
        owner.waiter = e

    def abort(_raise_cancel):
        e[2] = None
        if owner is not None and owner.waiter is e:
            owner.waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    await _wait_task_rescheduled(abort)


_current_task = trio.lowlevel.current_task
_wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
_reschedule = trio.lowlevel.reschedule
_Task = trio.lowlevel.Task


def arm(owner, fn, at: float, clock: SimClock) -> list:
    """Call ``fn()`` from the clock at virtual time ``at`` (``math.inf``:
    only when ``wake``/``wake_at`` asks), with ``owner.waiter`` as ``park``
    sets it: what wakes a parked task on ``owner`` calls ``fn`` instead. The
    callback runs outside any task, between two steps of Trio's run loop,
    in (time, registration) order with the other timers: it must not
    block, and must not raise (an exception would end the run); it may
    send, arm again, reschedule tasks or spawn them. Used by the
    simulator's own clients (``frtrio/sim/client.py``), which need no task
    between two requests."""
    e = clock.timer(at, fn, owner)
    owner.waiter = e
    return e


def disarm(owner) -> None:
    """Forget the callback armed on ``owner``, if any (it will not be called)."""
    e = owner.waiter
    if e is not None and type(e[2]) is not _Task:
        e[2] = None
        owner.waiter = None


def wake_at(owner, at: float, clock=None) -> None:
    """The task parked on ``owner`` without a time limit wakes at virtual
    time ``at`` instead of now (a parked task with a time limit, or none,
    is left alone). Used when something arrives that will only be usable at
    ``at`` (a network chunk in flight): waking the reader now would only see
    it park again until then."""
    e = owner.waiter
    if e is not None and e[0] == math.inf and e[2] is not None:
        if clock is None:
            clock = trio.lowlevel.current_clock()
        clock._seq += 1
        e[0] = at
        e[1] = clock._seq
        heapq.heappush(clock._timers, e)


def wake(owner) -> None:
    """Wake the task parked on ``owner`` (``park(..., owner=owner)``), if
    any; a callback armed on ``owner`` (``arm``) is called from the clock
    at the current virtual time, after the running task's step."""
    e = owner.waiter
    if e is not None:
        task = e[2]
        if task is None:
            owner.waiter = None
        elif type(task) is _Task:
            owner.waiter = None
            e[2] = None
            _reschedule(task)
        else:
            clock = trio.lowlevel.current_clock()
            now = clock._now
            if e[0] == math.inf:
                clock._seq += 1
                e[0] = now
                e[1] = clock._seq
                heapq.heappush(clock._timers, e)
            elif e[0] > now:
                e[2] = None
                owner.waiter = clock.timer(now, task, owner)
