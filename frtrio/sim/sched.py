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

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        d = deadline - self._now
        if d <= 0:
            return 0.0
        if deadline == math.inf:
            return 86400.0  # nothing to wait for: deadlocked unless I/O comes
        if _idle_waiters():
            return d
        self._now = deadline
        return 0.0

    def jump(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time can't go backwards")
        self._now += seconds


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
