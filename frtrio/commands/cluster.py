"""The CLUSTER command and its subcommands (Redis 7.0 surface, contract C01).

Subcommands that need other nodes (MEET, FAILOVER...) do here what is
node-local in Redis (argument checks, state marks, replies); the bus carries
out the rest.
"""

from __future__ import annotations

import ipaddress

from frtrio.cluster.routing import endpoint
from frtrio.cluster.slots import CLUSTER_SLOTS, key_slot
from frtrio.cluster.state import ClusterNode
from frtrio.commands.table import command, container
from frtrio.commands.util import NOT_INT, err, syntax_error
from frtrio.protocol.parser import string2ll
from frtrio.cluster.bus_types import PONG
from frtrio.core.effects import Broadcast, SaveClusterConfig, SweepLinks
from frtrio.protocol.reply import NO_REPLY, OK, Map, Status, Verbatim

container("cluster")

DISABLED = "ERR This instance has cluster support disabled"


def _core(c):
    core = c.server.cluster
    if core is None:
        raise err(DISABLED)
    return core


def _bad_args(argv) -> Exception:
    return err("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLUSTER HELP."
               % argv[1].decode("latin-1"))


def _slot(b: bytes) -> int:
    n = string2ll(b)
    if n is None or n < 0 or n >= CLUSTER_SLOTS:
        raise err("ERR Invalid or out of range slot")
    return n


def _changed(core, save=True, fsync=False) -> None:
    st = core.state
    st.bump()
    st.todo_update_state = True
    if save:
        st.todo_save = True
        if fsync:
            st.todo_fsync = True


# Redis 7.0.15's text, verbatim (clusterCommandHelp + addReplyHelp).
HELP_LINES = [
    'CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    'ADDSLOTS <slot> [<slot> ...]',
    '    Assign slots to current node.',
    'ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]',
    '    Assign slots which are between <start-slot> and <end-slot> to current node.',
    'BUMPEPOCH',
    '    Advance the cluster config epoch.',
    'COUNT-FAILURE-REPORTS <node-id>',
    '    Return number of failure reports for <node-id>.',
    'COUNTKEYSINSLOT <slot>',
    '    Return the number of keys in <slot>.',
    'DELSLOTS <slot> [<slot> ...]',
    '    Delete slots information from current node.',
    'DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]',
    '    Delete slots information which are between <start-slot> and <end-slot> from current node.',
    'FAILOVER [FORCE|TAKEOVER]',
    '    Promote current replica node to being a master.',
    'FORGET <node-id>',
    '    Remove a node from the cluster.',
    'GETKEYSINSLOT <slot> <count>',
    '    Return key names stored by current node in a slot.',
    'FLUSHSLOTS',
    '    Delete current node own slots information.',
    'INFO',
    '    Return information about the cluster.',
    'KEYSLOT <key>',
    '    Return the hash slot for <key>.',
    'MEET <ip> <port> [<bus-port>]',
    '    Connect nodes into a working cluster.',
    'MYID',
    '    Return the node id.',
    'NODES',
    '    Return cluster configuration seen by node. Output format:',
    '    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...',
    'REPLICATE <node-id>',
    '    Configure current node as replica to <node-id>.',
    'RESET [HARD|SOFT]',
    '    Reset current node (default: soft).',
    'SET-CONFIG-EPOCH <epoch>',
    '    Set config epoch of current node.',
    'SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)',
    '    Set slot state.',
    'REPLICAS <node-id>',
    '    Return <node-id> replicas.',
    'SAVECONFIG',
    '    Force saving cluster configuration on disk.',
    'SLOTS',
    '    Return information about slots range mappings. Each range is made of:',
    '    start, end, master and replicas IP addresses, ports and ids',
    'SHARDS',
    '    Return information about slot range mappings and the nodes associated with them.',
    'LINKS',
    '    Return information about all network links between this node and its peers.',
    '    Output format is an array where each array element is a map containing attributes of a link',
    'HELP',
    '    Prints this help.',
]


@command("cluster|help")
def cluster_help(c, argv):
    _core(c)
    return [Status(line) for line in HELP_LINES]


@command("cluster|info")
def cluster_info(c, argv):
    core = _core(c)
    from frtrio.cluster.bus_types import TYPE_NAMES

    lines = core.state.info_lines(TYPE_NAMES) + core.migrations.info_lines()
    return Verbatim(("\r\n".join(lines) + "\r\n").encode())


@command("cluster|myid")
def cluster_myid(c, argv):
    return _core(c).state.myself.id.encode()


@command("cluster|nodes")
def cluster_nodes(c, argv):
    return Verbatim(_core(c).state.nodes_text().encode())


@command("cluster|keyslot")
def cluster_keyslot(c, argv):
    _core(c)
    return key_slot(argv[2])


@command("cluster|countkeysinslot")
def cluster_countkeysinslot(c, argv):
    core = _core(c)
    n = string2ll(argv[2])
    if n is None:
        raise err(NOT_INT)
    if n < 0 or n >= CLUSTER_SLOTS:
        raise err("ERR Invalid slot")
    if n in core.migrations.hidden_slots:
        return 0
    return core.keys_in_slot(n)


@command("cluster|getkeysinslot")
def cluster_getkeysinslot(c, argv):
    _core(c)
    slot = string2ll(argv[2])
    count = string2ll(argv[3])
    if slot is None or count is None:
        raise err(NOT_INT)
    if slot < 0 or slot >= CLUSTER_SLOTS or count < 0:
        raise err("ERR Invalid slot or number of keys")
    d = c.server.dbs[0].slot_keys.get(slot)
    if not d or slot in c.server.cluster.migrations.hidden_slots:
        return []
    out = []
    for k in reversed(d):
        if len(out) >= count:
            break
        out.append(k)
    return out


def _check_slots(st, seen: dict, delete: bool, a: int, b: int) -> None:
    """Redis's checkSlotAssignmentsOrReply for slots a..b."""
    for s in range(a, b + 1):
        if delete and st.slots[s] is None:
            raise err("ERR Slot %d is already unassigned" % s)
        if not delete and st.slots[s] is not None:
            raise err("ERR Slot %d is already busy" % s)
        if s in seen:
            raise err("ERR Slot %d specified multiple times" % s)
        seen[s] = None


def _slot_args(st, argv, ranges: bool, delete: bool) -> list[int]:
    """The slots named by ADDSLOTS/DELSLOTS[RANGE], checked in Redis's order:
    single slots are all parsed before any is checked; ranges are parsed and
    checked pair by pair. Nothing changes unless every check passes."""
    args = argv[2:]
    seen: dict[int, None] = {}
    if ranges:
        if len(args) % 2:
            raise err("ERR wrong number of arguments for '%s' command"
                      % ("cluster|" + argv[1].decode("latin-1").lower()))
        for i in range(0, len(args), 2):
            a, b = _slot(args[i]), _slot(args[i + 1])
            if a > b:
                raise err("ERR start slot number %d is greater than end slot number %d" % (a, b))
            _check_slots(st, seen, delete, a, b)
    else:
        for s in [_slot(a) for a in args]:
            _check_slots(st, seen, delete, s, s)
    return list(seen)


def _addslots(c, argv, ranges: bool):
    core = _core(c)
    st = core.state
    slots = _slot_args(st, argv, ranges, False)
    core.migrations.cancel_all("slots configuration updated", slots=slots)
    for s in slots:
        st.importing_from.pop(s, None)
    st.assign_slots(slots, st.myself)
    _changed(core)
    core.emit("cluster.slot_owner_state_update", outcome="addslots", count=len(slots))
    return OK


def _delslots(c, argv, ranges: bool):
    core = _core(c)
    st = core.state
    slots = _slot_args(st, argv, ranges, True)
    core.migrations.cancel_all("slots configuration updated", slots=slots)
    for s in slots:
        # Redis's clusterUpdateSlots clears an importing mark on DELSLOTS too
        st.importing_from.pop(s, None)
        st.unassign_slot(s)
    _changed(core)
    core.emit("cluster.slot_owner_state_update", outcome="delslots", count=len(slots))
    return OK


@command("cluster|addslots")
def cluster_addslots(c, argv):
    return _addslots(c, argv, False)


@command("cluster|addslotsrange")
def cluster_addslotsrange(c, argv):
    return _addslots(c, argv, True)


@command("cluster|delslots")
def cluster_delslots(c, argv):
    return _delslots(c, argv, False)


@command("cluster|delslotsrange")
def cluster_delslotsrange(c, argv):
    return _delslots(c, argv, True)


@command("cluster|flushslots")
def cluster_flushslots(c, argv):
    core = _core(c)
    if c.server.dbs[0].data:
        raise err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    st = core.state
    for s in range(CLUSTER_SLOTS):
        if st.slots[s] is st.myself:
            st.unassign_slot(s)
    _changed(core)
    return OK


@command("cluster|setslot")
def cluster_setslot(c, argv):
    core = _core(c)
    st = core.state
    me = st.myself
    if me.is_replica:
        raise err("ERR Please use SETSLOT only with masters.")
    slot = _slot(argv[2])
    core.migrations.setslot_allowed(slot)
    action = argv[3].lower()
    n = len(argv)
    if action == b"migrating" and n == 5:
        if st.slots[slot] is not me:
            raise err("ERR I'm not the owner of hash slot %d" % slot)
        target = st.get(argv[4].decode("latin-1"))
        if target is None:
            raise err("ERR I don't know about node %s" % argv[4].decode("latin-1"))
        if target.is_replica:
            raise err("ERR Target node is not a master")
        st.migrating_to[slot] = target
    elif action == b"importing" and n == 5:
        if st.slots[slot] is me:
            raise err("ERR I'm already the owner of hash slot %d" % slot)
        source = st.get(argv[4].decode("latin-1"))
        if source is None:
            raise err("ERR I don't know about node %s" % argv[4].decode("latin-1"))
        if source.is_replica:
            raise err("ERR Target node is not a master")
        st.importing_from[slot] = source
    elif action == b"stable" and n == 4:
        st.migrating_to.pop(slot, None)
        st.importing_from.pop(slot, None)
    elif action == b"node" and n == 5:
        nid = argv[4].decode("latin-1")
        target = st.get(nid)
        if target is None:
            raise err("ERR Unknown node %s" % nid)
        if target.is_replica:
            raise err("ERR Target node is not a master")
        keys = core.keys_in_slot(slot)
        if st.slots[slot] is me and target is not me and keys:
            raise err("ERR Can't assign hashslot %d to a different node while I still hold keys "
                      "for this hash slot." % slot)
        if keys == 0:
            st.migrating_to.pop(slot, None)
        was_mine = st.slots[slot] is me
        st.assign_slot(slot, target)
        if (was_mine and target is not me and me.numslots == 0
                and c.server.config.get("cluster-allow-replica-migration") == "yes"):
            # Redis's clusterSetMaster: close all open slots, replicate
            st.migrating_to.clear()
            st.importing_from.clear()
            me.migrate_to = False
            st.set_master(me, target)
            if hasattr(c.server, "start_replication"):
                c.server.start_replication(target)
            core.emit("cluster.role_changed", outcome="replica", master=target.id)
        if target is me and slot in st.importing_from:
            if st.bump_epoch_without_consensus():
                core.emit("cluster.epoch_changed", outcome="bumped", slot=slot,
                          config_epoch=me.config_epoch)
            st.importing_from.pop(slot, None)
            if core.bus_core is not None:
                core.to_bus(Broadcast(core.bus_core.ping_message(PONG)))
        core.emit("cluster.slot_owner_state_update", outcome="setslot_node", slot=slot, node=nid)
    else:
        raise err("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    # Redis: SAVE_CONFIG|UPDATE_STATE, no fsync (the epoch bump above asks
    # for its own fsync); an fsync per SETSLOT made resharding crawl
    _changed(core)
    return OK


@command("cluster|bumpepoch")
def cluster_bumpepoch(c, argv):
    core = _core(c)
    st = core.state
    bumped = st.bump_epoch_without_consensus()
    if bumped:
        core.emit("cluster.epoch_changed", outcome="bumped", config_epoch=st.myself.config_epoch)
    _changed(core, fsync=True)
    return Status("%s %d" % ("BUMPED" if bumped else "STILL", st.myself.config_epoch))


@command("cluster|set-config-epoch")
def cluster_set_config_epoch(c, argv):
    core = _core(c)
    st = core.state
    n = string2ll(argv[2])
    if n is None:
        raise err(NOT_INT)
    if n < 0:
        raise err("ERR Invalid config epoch specified: %d" % n)
    if len(st.nodes) > 1:
        raise err("ERR The user can assign a config epoch only when the node does not know any "
                  "other node.")
    if st.myself.config_epoch != 0:
        raise err("ERR Node config epoch is already non-zero")
    st.myself.config_epoch = n
    if st.current_epoch < n:
        st.current_epoch = n
    core.emit("cluster.epoch_changed", outcome="set", config_epoch=n)
    _changed(core, fsync=True)
    return OK


@command("cluster|count-failure-reports")
def cluster_count_failure_reports(c, argv):
    core = _core(c)
    n = core.state.get(argv[2].decode("latin-1"))
    if n is None:
        raise err("ERR Unknown node %s" % argv[2].decode("latin-1"))
    limit = c.server.now_ms - 2 * core.node_timeout()
    for rid in [r for r, t in n.fail_reports.items() if t < limit]:
        del n.fail_reports[rid]
    return len(n.fail_reports)


def _normalized_ip(ip: str) -> str | None:
    """The address as inet_pton/inet_ntop would normalise it, or None when
    inet_pton rejects it (Redis's clusterStartHandshake)."""
    if "%" in ip:
        return None  # a scope id: Python accepts it, inet_pton does not
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        return "::ffff:" + str(a.ipv4_mapped)
    return str(a)


@command("cluster|meet")
def cluster_meet(c, argv):
    core = _core(c)
    if len(argv) not in (4, 5):
        raise _bad_args(argv)
    ip = argv[2].decode("latin-1")
    port = string2ll(argv[3])
    if port is None:
        raise err("ERR Invalid TCP base port specified: %s" % argv[3].decode("latin-1"))
    if len(argv) == 5:
        cport = string2ll(argv[4])
        if cport is None:
            raise err("ERR Invalid TCP bus port specified: %s" % argv[4].decode("latin-1"))
    else:
        cport = port + 10000
    norm = _normalized_ip(ip)
    if norm is None or not (0 < port <= 65535) or not (0 < cport <= 65535):
        raise err("ERR Invalid node address specified: %s:%d" % (ip, port))
    core.start_handshake(norm, port, cport)
    return OK


@command("cluster|forget")
def cluster_forget(c, argv):
    core = _core(c)
    st = core.state
    nid = argv[2].decode("latin-1")
    n = st.get(nid)
    if n is None:
        raise err("ERR Unknown node %s" % nid)
    if n is st.myself:
        raise err("ERR I tried hard but I can't forget myself...")
    if st.myself.is_replica and st.myself.master_id == n.id:
        raise err("ERR Can't forget my master!")
    st.blacklist[nid] = c.server.now_ms // 1000 + 60
    core.migrations.cancel_all("node deleted", node_id=nid)
    st.delete_node(n)
    core.to_bus(SweepLinks())
    core.emit("cluster.membership_changed", outcome="forget", node=nid)
    _changed(core)  # Redis: UPDATE_STATE|SAVE_CONFIG, no fsync
    return OK


@command("cluster|replicate")
def cluster_replicate(c, argv):
    core = _core(c)
    st = core.state
    nid = argv[2].decode("latin-1")
    n = st.get(nid)
    if n is None:
        raise err("ERR Unknown node %s" % nid)
    me = st.myself
    if n is me:
        raise err("ERR Can't replicate myself")
    if n.is_replica:
        raise err("ERR I can only replicate a master, not a replica.")
    if me.is_master and (me.numslots or c.server.dbs[0].data):
        raise err("ERR To set a master the node must be empty and without assigned slots.")
    st.migrating_to.clear()
    st.importing_from.clear()
    me.migrate_to = False
    st.set_master(me, n)
    core.emit("cluster.role_changed", outcome="replica", master=nid)
    if hasattr(c.server, "start_replication"):
        c.server.start_replication(n)
    _changed(core, fsync=True)
    return OK


def _replicas(c, argv):
    core = _core(c)
    st = core.state
    nid = argv[2].decode("latin-1")
    n = st.get(nid)
    if n is None:
        raise err("ERR Unknown node %s" % nid)
    if n.is_replica:
        raise err("ERR The specified node is not a master")
    return [st.node_line(st.nodes[r]).encode() for r in n.replicas if r in st.nodes]


@command("cluster|replicas")
def cluster_replicas(c, argv):
    return _replicas(c, argv)


@command("cluster|slaves")
def cluster_slaves(c, argv):
    return _replicas(c, argv)


@command("cluster|failover")
def cluster_failover(c, argv):
    core = _core(c)
    st = core.state
    mode = "default"
    if len(argv) == 3:
        a = argv[2].lower()
        if a == b"force":
            mode = "force"
        elif a == b"takeover":
            mode = "takeover"
        else:
            raise syntax_error()
    elif len(argv) > 3:
        raise _bad_args(argv)
    me = st.myself
    if me.is_master:
        raise err("ERR You should send CLUSTER FAILOVER to a replica")
    master = st.get(me.master_id) if me.master_id else None
    if master is None:
        raise err("ERR I'm a replica but my master is unknown to me")
    if mode == "default" and (master.has("fail") or master.link is None):
        raise err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")
    core.request_manual_failover(mode)
    return OK


@command("cluster|reset")
def cluster_reset(c, argv):
    core = _core(c)
    hard = False
    if len(argv) == 3:
        a = argv[2].lower()
        if a == b"hard":
            hard = True
        elif a != b"soft":
            raise syntax_error()
    elif len(argv) > 3:
        raise _bad_args(argv)
    st = core.state
    me = st.myself
    srv = c.server
    if me.is_master and srv.dbs[0].data:
        raise err("ERR CLUSTER RESET can't be called with master nodes containing keys")
    core.reset(hard)
    return OK


@command("cluster|saveconfig")
def cluster_saveconfig(c, argv):
    _core(c)
    c.server.effects.append(SaveClusterConfig(c.defer_reply()))
    return NO_REPLY


@command("cluster|links")
def cluster_links(c, argv):
    core = _core(c)
    if core.bus_core is None:
        return []
    # the links are the bus shell's objects; the cluster state keeps a
    # reference to each node's two links (read here, never driven)
    out = []
    for n in core.state.nodes.values():
        for ln in (n.link, n.inbound_link):
            if ln is None or ln.closed:
                continue
            out.append(Map([
                (b"direction", b"from" if ln.inbound else b"to"),
                (b"node", n.id.encode()),
                (b"create-time", ln.ctime),
                (b"events", b"r" if not ln.out else b"rw"),
                (b"send-buffer-allocated", max(ln.out_bytes, 0)),
                (b"send-buffer-used", ln.out_bytes),
            ]))
    return out


def _node_tuple(core, n: ClusterNode):
    et = core.opts.endpoint_type
    ep = endpoint(n, et)
    meta = []
    if et != "ip":
        meta.append((b"ip", n.ip.encode()))
    if et != "hostname" and n.hostname:
        meta.append((b"hostname", n.hostname.encode()))
    return [None if et == "unknown-endpoint" else ep.encode(), n.port, n.id.encode(), Map(meta)]


@command("cluster|slots")
def cluster_slots(c, argv):
    core = _core(c)
    st = core.state
    out = []
    for a, b, owner in st.slot_ranges_by_owner():
        entry = [a, b, _node_tuple(core, owner)]
        for rid in owner.replicas:
            r = st.nodes.get(rid)
            if r is None or r.has("fail"):
                continue
            off = core.my_repl_offset() if r is st.myself else r.repl_offset
            if not off:
                continue
            entry.append(_node_tuple(core, r))
        out.append(entry)
    return out


def _shard_node(core, n: ClusterNode):
    st = core.state
    et = core.opts.endpoint_type
    fields = [(b"id", n.id.encode())]
    if n.port:
        fields.append((b"port", n.port))
    fields += [(b"ip", n.ip.encode()), (b"endpoint", endpoint(n, et).encode())]
    if n.hostname:
        fields.append((b"hostname", n.hostname.encode()))
    fields.append((b"role", b"replica" if n.is_replica else b"master"))
    off = core.my_repl_offset() if n is st.myself else n.repl_offset
    fields.append((b"replication-offset", off))
    if n.has("fail"):
        health = b"fail"
    elif n.is_replica and off == 0:
        health = b"loading"
    else:
        health = b"online"
    fields.append((b"health", health))
    return Map(fields)


@command("cluster|shards")
def cluster_shards(c, argv):
    core = _core(c)
    st = core.state
    out = []
    for m in st.nodes.values():
        if not m.is_master:
            continue
        slots = []
        for a, b in m.slot_ranges():
            slots += [a, b]
        nodes = [_shard_node(core, m)]
        for rid in m.replicas:
            r = st.nodes.get(rid)
            if r is not None:
                nodes.append(_shard_node(core, r))
        out.append(Map([(b"slots", slots), (b"nodes", nodes)]))
    return out
