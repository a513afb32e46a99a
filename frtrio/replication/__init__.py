"""Replication (Redis 7.0 PSYNC2, wire-compatible), as pure cores:

* ``backlog``: the circular replication backlog;
* ``state``: replication ids and offsets, the stream encoder (SELECT
  insertion) and the master's PSYNC decision;
* ``handshake``: the replica side's handshake state machine (sans-IO);
* ``snapshot``: a point-in-time view of the dataset, serialized as an RDB
  incrementally (key-granular copy-on-write).

No trio, sockets, wall clock or randomness here: the shells
(``frtrio/runtime/replication.py``) pass time and random ids in.
"""
