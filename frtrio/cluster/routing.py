"""The routing decision (Redis's getNodeByQuery), pure.

``decide(...)`` returns a ``Route``: where a command must be served, as a
function of the command, its keys, the client's flags and the cluster state
(invariant I01). ``Router`` wraps it with a memo of the slot-owner lookups,
keyed by slot and invalidated whenever the state's ``version`` changes.

Reply bytes for each outcome follow Redis exactly (contract C04).
"""

from __future__ import annotations

from frtrio.cluster.slots import key_slot

LOCAL = 0
MOVED = 1
ASK = 2
TRYAGAIN = 3
CROSSSLOT = 4
DOWN_STATE = 5
DOWN_RO_STATE = 6
DOWN_UNBOUND = 7

ERR_TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot"
ERR_CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
ERR_DOWN = "CLUSTERDOWN The cluster is down"
ERR_DOWN_RO = "CLUSTERDOWN The cluster is down and only accepts read commands"
ERR_UNBOUND = "CLUSTERDOWN Hash slot not served"

_SHARD_PUBSUB = frozenset(["ssubscribe", "sunsubscribe", "spublish"])


class Route:
    __slots__ = ("kind", "slot", "node")

    def __init__(self, kind: int, slot: int = -1, node=None):
        self.kind = kind
        self.slot = slot
        self.node = node

    def __eq__(self, other):
        return (
            isinstance(other, Route)
            and self.kind == other.kind
            and self.slot == other.slot
            and (self.node.id if self.node else None) == (other.node.id if other.node else None)
        )

    def __repr__(self):
        return "Route(%d, %d, %s)" % (self.kind, self.slot, self.node.id if self.node else None)


_LOCAL = Route(LOCAL)


class RoutingOptions:
    """The configuration the decision depends on."""

    __slots__ = ("allow_reads_when_down", "allow_pubsubshard_when_down", "endpoint_type")

    def __init__(self, allow_reads_when_down=False, allow_pubsubshard_when_down=True,
                 endpoint_type="ip"):
        self.allow_reads_when_down = allow_reads_when_down
        self.allow_pubsubshard_when_down = allow_pubsubshard_when_down
        self.endpoint_type = endpoint_type


def endpoint(node, endpoint_type: str) -> str:
    if endpoint_type == "hostname":
        return node.hostname or "?"
    if endpoint_type == "unknown-endpoint":
        return ""
    return node.ip


def error_text(route: Route, endpoint_type: str = "ip") -> str | None:
    k = route.kind
    if k == LOCAL:
        return None
    if k == MOVED:
        return "MOVED %d %s:%d" % (route.slot, endpoint(route.node, endpoint_type), route.node.port)
    if k == ASK:
        return "ASK %d %s:%d" % (route.slot, endpoint(route.node, endpoint_type), route.node.port)
    if k == TRYAGAIN:
        return ERR_TRYAGAIN
    if k == CROSSSLOT:
        return ERR_CROSSSLOT
    if k == DOWN_STATE:
        return ERR_DOWN
    if k == DOWN_RO_STATE:
        return ERR_DOWN_RO
    return ERR_UNBOUND


def _key_missing(db, key: bytes, now_ms: int) -> bool:
    if key not in db.data:
        return True
    t = db.expires.get(key)
    return t is not None and t <= now_ms


def command_keys(cmd, argv, queued):
    """(command, argv) pairs whose keys take part in routing."""
    if cmd.fullname == "exec":
        return queued or []
    return [(cmd, argv)]


def decide(st, opts: RoutingOptions, cmd, argv, *, asking: bool, readonly: bool,
           queued=None, multi=None, db=None, now_ms: int = 0, owner_of=None) -> Route:
    """Where this command must be served (Redis's getNodeByQuery).

    ``multi`` is the client's MULTI queue when the client is in MULTI (else
    None); ``queued`` is the same queue, the keys of EXEC (either may be given
    for EXEC). ``db`` is db 0, used to tell existing from missing keys in open
    slots; ``owner_of(slot)`` returns (owner, migrating_to, importing_from)
    and defaults to a direct lookup.

    Two write flags, as in Redis: the cluster-down check looks at the
    command's own WRITE flag (EXEC has none), the replica-read check looks at
    the command's own flag too, except for EXEC, where it is the flags of the
    queued commands (Redis: ``c->cmd->flags & CMD_WRITE || (EXEC &&
    c->mstate.cmd_flags & CMD_WRITE)``): a write queued in MULTI on a
    replica is MOVED (upstream cluster 16-transactions-on-replica).
    """
    if owner_of is None:
        owner_of = lambda s: direct_owner(st, s)  # noqa: E731
    is_exec = cmd.fullname == "exec"
    is_shard = cmd.fullname in _SHARD_PUBSUB
    if queued is None and is_exec:
        queued = multi
    if multi is None and is_exec:
        multi = queued
    if is_exec and queued is None:
        return _LOCAL  # EXEC without MULTI: EXEC itself errors
    is_write = cmd.is_write
    if is_exec:
        is_write_for_replica = any(qc.is_write for qc, _ in multi)
    else:
        is_write_for_replica = is_write
    slot = -1
    first_key = None
    owner = None
    migrating = importing = False
    multiple = False
    existing = missing = 0
    for qc, qa in command_keys(cmd, argv, queued):
        for pos in qc.get_keys(qa):
            key = qa[pos]
            if first_key is None:
                first_key = key
                slot = key_slot(key)
                owner, mig_to, imp_from = owner_of(slot)
                if owner is None:
                    return Route(DOWN_UNBOUND, slot)
                if owner is st.myself and mig_to is not None:
                    migrating = True
                elif imp_from is not None:
                    importing = True
            elif key != first_key:
                if key_slot(key) != slot:
                    return Route(CROSSSLOT, slot)
                multiple = True
            if (migrating or importing) and not is_shard and db is not None:
                if _key_missing(db, key, now_ms):
                    missing += 1
                else:
                    existing += 1
    if first_key is None:
        return _LOCAL
    if not st.state_ok:
        if is_shard:
            if not opts.allow_pubsubshard_when_down:
                return Route(DOWN_STATE, slot)
        elif not opts.allow_reads_when_down:
            return Route(DOWN_STATE, slot)
        elif is_write:
            return Route(DOWN_RO_STATE, slot)
    if (migrating or importing) and cmd.fullname == "migrate":
        return _LOCAL
    if migrating and missing:
        if existing:
            return Route(TRYAGAIN, slot)
        _, mig_to, _ = owner_of(slot)
        return Route(ASK, slot, mig_to)
    if importing and (asking or cmd.asking):
        if multiple and missing:
            return Route(TRYAGAIN, slot)
        return _LOCAL
    me = st.myself
    if (readonly or is_shard) and not is_write_for_replica and me.is_replica and me.master_id == owner.id:
        return _LOCAL
    if owner is not me:
        return Route(MOVED, slot, owner)
    return _LOCAL


def direct_owner(st, slot: int):
    return st.slots[slot], st.migrating_to.get(slot), st.importing_from.get(slot)


class Router:
    """``decide`` with the slot-owner lookups memoised per state version."""

    def __init__(self, st):
        self.st = st
        self._memo: dict[int, tuple] = {}
        self._version = -1

    def owner_of(self, slot: int):
        st = self.st
        if st.version != self._version:
            self._memo.clear()
            self._version = st.version
        r = self._memo.get(slot)
        if r is None:
            r = self._memo[slot] = direct_owner(st, slot)
        return r

    def decide(self, opts, cmd, argv, **kw) -> Route:
        return decide(self.st, opts, cmd, argv, owner_of=self.owner_of, **kw)
