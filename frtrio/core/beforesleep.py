"""The before-sleep task manager (pure): the one place that orders the
deferred duties of a node.

Redis runs ``beforeSleep`` once per event-loop iteration, before it blocks
and before replies leave: the cluster's deferred work (manual failover step,
failover, state update, config save, broadcast), blocked clients whose keys
became ready, the AOF write and fsync, replication feeds. frtrio's shells
call :meth:`BeforeSleep.run` at the same point: before any client reply, bus
packet or cron result is sent. So a reply never leaves before the AOF record
(under ``appendfsync always``) or the nodes.conf it depends on is on disk.

Each duty has a fixed slot in :data:`ORDER`; a slot holds at most one
callable, which checks cheaply whether it has work and does it. Adding a duty
is one line in the shell that owns the work::

    node.before_sleep.register("replication_feed", feeder.flush)

Slots with nothing registered are skipped. Nothing here awaits or touches
I/O: the duties are the shell's own synchronous functions, and the same
manager runs under the simulator.
"""

from __future__ import annotations

from typing import Callable

# Redis's order (server.c beforeSleep, cluster.c clusterBeforeSleep), named.
ORDER = (
    # clusterBeforeSleep (contract row C13)
    "cluster_manual_failover",  # manual failover: the replica's step
    "cluster_failover",  # automatic failover: the replica's election
    "cluster_update_state",  # recompute OK/FAIL
    "cluster_save_config",  # nodes.conf, with fsync when asked
    "cluster_broadcast",  # PONG to all after a config change
    # then the rest of beforeSleep
    "blocked_clients",  # clients whose keys became ready
    "slot_migration",  # atomic slot migration steps
    "tracking_broadcast",  # client-side caching: BCAST invalidations
    "aof_flush",  # write (and, by policy, fsync) the AOF buffer
    "replication_feed",  # the replication stream to replicas
    "free_clients",  # clients closed by the engine leave CLIENT LIST (freeClientsInAsyncFreeQueue)
)
_INDEX = {name: i for i, name in enumerate(ORDER)}
_MAX_ROUNDS = 4


class DutyOrderError(AssertionError):
    """Two duties ran out of ORDER (a duty ran another slot's work itself)."""


class BeforeSleep:
    __slots__ = ("_slots", "_active", "_running", "_again", "_last", "trace")

    def __init__(self):
        self._slots: list[Callable[[], None] | None] = [None] * len(ORDER)
        self._active: tuple = ()  # the registered duties, in ORDER (the fast round)
        self._running = False
        self._again = False
        self._last = -1
        # tests set this to a list: the name of every duty run, in order
        self.trace: list[str] | None = None

    def register(self, name: str, fn: Callable[[], None]) -> None:
        i = _INDEX.get(name)
        if i is None:
            raise KeyError("no before-sleep duty slot %r (see ORDER)" % name)
        self._slots[i] = fn
        self._active = tuple(f for f in self._slots if f is not None)

    def unregister(self, name: str) -> None:
        self._slots[_INDEX[name]] = None
        self._active = tuple(f for f in self._slots if f is not None)

    def registered(self) -> list[str]:
        return [ORDER[i] for i, fn in enumerate(self._slots) if fn is not None]

    def run(self) -> bool:
        """Run every registered duty once, in ORDER. A call made while the
        duties are running (a duty whose work led to another flush) is not
        nested: the round runs once more afterwards, still in order (at most
        a few times). Returns False for such a nested call, True when this
        call ran the duties."""
        if self._running:
            self._again = True
            return False
        self._running = True
        try:
            for _ in range(_MAX_ROUNDS):
                self._again = False
                if self.trace is None:
                    # the command path's round: the duties in ORDER, nothing else
                    for fn in self._active:
                        fn()
                else:
                    # traced (tests): record each duty and check the order
                    self._last = -1
                    for i, fn in enumerate(self._slots):
                        if fn is not None:
                            self._enter(i)
                            fn()
                if not self._again:
                    break
        finally:
            self._running = False
        return True

    def _enter(self, i: int) -> None:
        if i <= self._last:
            raise DutyOrderError("before-sleep duty %s ran after %s" % (ORDER[i], ORDER[self._last]))
        self._last = i
        if self.trace is not None:
            self.trace.append(ORDER[i])
