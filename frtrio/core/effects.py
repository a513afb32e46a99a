"""Effects: what a command asks the node's shell to do once it has run
(pure, typed). A command appends effect objects to ``Server.effects`` and
returns; the client connection's shell (``runtime/node.py``) takes them after
each command and carries them out in order, so command code itself never
waits, sleeps or touches the network. The reader loop asks one question per
command: are there effects?

Deferred duties that belong to the whole node (the cluster's state update
and nodes.conf save, the AOF write) are not effects: they run in the
before-sleep manager (``frtrio/core/beforesleep.py``).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Sleep:
    """DEBUG SLEEP: pause the whole node for ``ms`` milliseconds (Redis
    blocks its event loop; the simulator pauses only this node)."""

    timed = True  # the command's time runs on until this is carried out

    ms: int


@attrs.frozen
class RunMigrate:
    """MIGRATE: the network part of the command (connect, send the RESTORE
    payloads, read the replies, then delete the moved keys); the client that
    ran MIGRATE waits for it, the others go on (``runtime/migrate.py``)."""

    timed = True  # the command's time runs on until this is carried out

    job: object


@attrs.frozen
class RunScript:
    """A script ran past busy-reply-threshold and was suspended
    (frtrio/scripting/runner.py): the client's shell resumes it in slices,
    letting the other clients in between (they get -BUSY), until it ends;
    then the script's reply goes to the client."""

    timed = True  # the command's time runs on until this is carried out

    scripting: object


# --- persistence (carried out by frtrio/runtime/persistence.py) ---
# ``reply`` is the command's deferred reply (``Client.defer_reply``): the
# shell answers it with the result, in the place the command's reply takes in
# the client's output (also inside a MULTI/EXEC array). None when the client
# has replies switched off.


@attrs.frozen
class SaveSnapshot:
    """SAVE / BGSAVE: the dataset into dump.rdb. ``reply_ok`` is the status
    text on success (None: +OK)."""

    reply: object
    reply_ok: str | None = None
    # counted in INFO's rdb_saves (SAVE, BGSAVE); FLUSHALL's save is not
    counted: bool = True


@attrs.frozen
class RewriteAof:
    """BGREWRITEAOF: a new AOF base and incr file; ``reply_ok`` is the
    status text on success."""

    reply: object
    reply_ok: str = "Background append only file rewriting started"


@attrs.frozen
class DebugReload:
    """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save (unless NOSAVE), empty
    (unless NOFLUSH), load dump.rdb."""

    reply: object
    save: bool = True
    flush: bool = True
    merge: bool = False


@attrs.frozen
class DebugLoadAof:
    """DEBUG LOADAOF: write and fsync the AOF, empty, replay it."""

    reply: object


@attrs.frozen
class RewriteConfig:
    """CONFIG REWRITE: the config file rewritten with the live values
    (DEBUG CONFIG-REWRITE-FORCE-ALL: every parameter, defaults too)."""

    reply: object
    force_all: bool = False


@attrs.frozen
class AclFile:
    """ACL SAVE / ACL LOAD (``op``): the node's shell writes or reads the
    aclfile, applies a loaded one (``commands/acl.py``) and answers
    ``reply``; ``client`` sent the command (closed after its reply when
    LOAD removes its user)."""

    op: str
    reply: object
    client: object


@attrs.frozen
class SaveClusterConfig:
    """CLUSTER SAVECONFIG: nodes.conf now, with fsync; the reply says
    whether it worked."""

    reply: object


@attrs.frozen
class ApplyConfig:
    """CONFIG SET of parameters whose new value the node's shell applies
    (flag SHELL: ``dir`` changes the process's directory, ``port``/``bind``
    move the client listeners, ``appendonly``
    opens or closes the AOF, ``loglevel`` the logger). The values are set
    already; ``changes`` is every (name, old value, new value) of that CONFIG
    SET in order, so the shell applies the new values (a later CONFIG SET in
    the same MULTI may have set others since) and undoes all of it when
    applying one fails (CONFIG SET is all or nothing), then answers ``reply``
    with OK or the error."""

    reply: object
    changes: tuple


@attrs.frozen
class PauseChanged:
    """CLIENT PAUSE / UNPAUSE: clients held by a pause look again."""


@attrs.frozen
class Crash:
    """DEBUG SEGFAULT / ASSERT / PANIC: the process writes a crash report to
    its log and dies as Redis would (``runtime/crash.py``). ``kind`` is
    "segfault", "assert" or "panic"; ``what`` the assertion or the panic's
    message."""

    kind: str
    what: str = ""


@attrs.frozen
class Shutdown:
    """SHUTDOWN: prepare (and maybe finish) the shutdown with these flags
    (frtrio/core/shutdown.py); the client that sent it is blocked until the
    shutdown fails or is aborted (then it gets an error) or the process
    exits."""

    flags: int


PERSISTENCE = (SaveSnapshot, RewriteAof, DebugReload, DebugLoadAof, RewriteConfig)


# --- the cluster bus core's effects (frtrio/cluster/gossip.py -> runtime/bus.py) ---


@attrs.frozen
class SendOnLink:
    """Send ``msg`` on that very link (a PONG reply, a PING on a new link)."""

    link: object
    msg: object


@attrs.frozen
class SendToNode:
    """Send ``msg`` on the node's outbound link, if it has one."""

    node_id: str
    msg: object


@attrs.frozen
class Broadcast:
    """Send ``msg`` to every known node but myself and handshake nodes,
    through their outbound links."""

    msg: object


@attrs.frozen
class FreeLink:
    """Close that link (the cron re-creates outbound links)."""

    link: object


@attrs.frozen
class Connect:
    """Open an outbound link to the node."""

    node_id: str


@attrs.frozen
class SweepLinks:
    """Free the links of nodes that are no longer known (CLUSTER FORGET,
    RESET, a handshake that timed out): a packet on an inbound link of a
    forgotten node must not be taken as coming from that node."""


@attrs.frozen
class Deliver:
    """A PUBLISH (or SPUBLISH, ``shard``) from the bus, for local subscribers."""

    channel: bytes
    message: bytes
    shard: bool


# --- replication (frtrio/commands/replication.py -> runtime/replication.py) ---


@attrs.frozen
class SetMaster:
    """REPLICAOF host port: (re)start the master link towards host:port."""

    host: str
    port: int


@attrs.frozen
class UnsetMaster:
    """REPLICAOF NO ONE: cancel the master link and drop sub-replicas
    (unless the command already did: PSYNC ... FAILOVER keeps the new
    replica that asked)."""

    drop_replicas: bool = True


@attrs.frozen
class ServeReplica:
    """PSYNC/SYNC accepted: this connection becomes a replica. ``replica``
    is its ``replication.core.Replica``; ``snapshot`` the full sync's
    snapshot (None for a partial resync, whose backlog bytes are in
    ``data``)."""

    replica: object
    snapshot: object
    data: bytes
    # a full sync to the socket (EOF framing); "delayed": its snapshot starts
    # after repl-diskless-sync-delay, and the shell starts it
    diskless: bool = False
    delayed: bool = False


class AofOnly(list):
    """An argv in ``Server.propagated`` for the AOF only (Redis's
    PROPAGATE_AOF target: a script's ``redis.set_repl(redis.REPL_AOF)``)."""

    __slots__ = ()


class ReplOnly(list):
    """An argv in ``Server.propagated`` for the replicas only (PROPAGATE_REPL:
    ``redis.set_repl(redis.REPL_REPLICA)``)."""

    __slots__ = ()


@attrs.frozen
class ServeMigration:
    """This connection is a channel of an atomic slot migration from now on
    (source side: ``main`` after SYNCSLOTS SYNC, ``rdb`` after RDBCHANNEL)."""

    task: object
    channel: str
    snapshot: object = None
