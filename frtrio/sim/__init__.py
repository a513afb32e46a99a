"""Deterministic simulation of whole frtrio clusters in one ``trio.run``.

A run is a pure function of (scenario, parameters, seed, code, Trio and
Python versions): same inputs, byte-identical event log. The parts:

* ``sched``     seeded Trio scheduling (the private hooks, checked loudly)
                and ``SimClock``, virtual time that jumps to the next deadline
* ``net``       in-memory TCP: ordered byte streams between hosts, latency,
                resets, one- and two-way partitions, paused hosts
* ``fs``        an in-memory disk per node that knows what is fsynced; a
                crash keeps, loses or tears the rest
* ``env``       ``SimEnv``: the ``RealEnv`` interface on all of the above
* ``world``     ``SimWorld``: nodes (start, kill, restart from disk), faults,
                the event log, the task-leak tracker
* ``client``    a RESP client for workloads (hiredis parsing)
* ``faults``    random faults drawn from the seed, or a fixed schedule
* ``scenario``  the scenario API, registry and runner; ``scenarios`` the
                library (``frtrio sim list``)
* ``timeline``  event log -> self-contained HTML, one lane per node
* ``cli``       ``frtrio sim list|run|replay|explore|timeline``

Node code runs unchanged: it only sees an Env. Node code must take time,
randomness, sockets and files from the Env, never iterate hash-ordered sets
of str/bytes where the order is observable, and pause with ``await
env.pause()`` (DEBUG SLEEP), which stops the one node on virtual time.
"""

from frtrio.sim.scenario import RunResult, Scenario, Workload, run_scenario

# (the ``scenario`` decorator stays in ``frtrio.sim.scenario``: re-exporting
# it here would shadow the submodule of the same name)
__all__ = ["RunResult", "Scenario", "Workload", "run_scenario"]
