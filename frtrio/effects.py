"""Effects: what a command asks the node's shell to do once it has run
(pure, typed). A command appends effect objects to ``Server.effects`` and
returns; the client connection's shell (``runtime/node.py``) takes them after
each command and carries them out in order, so command code itself never
waits, sleeps or touches the network. The reader loop asks one question per
command: are there effects?

Deferred duties that belong to the whole node (the cluster's state update
and nodes.conf save, the AOF write) are not effects: they run in the
before-sleep manager (``frtrio/beforesleep.py``).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Sleep:
    """DEBUG SLEEP: pause the whole node for ``ms`` milliseconds (Redis
    blocks its event loop; the simulator pauses only this node)."""

    ms: int


@attrs.frozen
class RunMigrate:
    """MIGRATE: the network part of the command (connect, send the RESTORE
    payloads, read the replies, then delete the moved keys); the client that
    ran MIGRATE waits for it, the others go on (``runtime/migrate.py``)."""

    job: object
