"""Atomic slot migration commands (Redis 8.4): CLUSTER MIGRATION (the
operator's), CLUSTER SYNCSLOTS (between the two masters) and TRIMSLOTS.

The rules are in the core (frtrio/cluster/migration.py); these handlers
parse, check who may call, and hand connections to the shell with the
``ServeMigration`` effect. Not listed by COMMAND (a 7.0 server's table).
"""

from __future__ import annotations

from frtrio.cluster import migration as m
from frtrio.commands.cluster import DISABLED
from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.core.client import F
from frtrio.core.effects import ServeMigration
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, OK, Map, Raw


def _mig(c) -> m.Migrations:
    core = c.server.cluster
    if core is None:
        raise err(DISABLED)
    return core.migrations


def _arity(name: str):
    return err("ERR wrong number of arguments for '%s' command" % name)


@command("cluster|migration")
def cluster_migration(c, argv):
    mig = _mig(c)
    sub = argv[2].lower()
    if sub == b"import":
        args = argv[3:]
        if not args or len(args) % 2:
            raise _arity("cluster|migration")
        return mig.import_cmd(args).encode()
    if sub == b"cancel":
        return mig.cancel_cmd(argv)
    if sub == b"status":
        return [Map(x) for x in mig.status_cmd(argv)]
    raise err("ERR unknown argument")


# per connection: the destination named by CONF NODE-ID
_DEST: dict[int, str] = {}


@command("cluster|syncslots")
def cluster_syncslots(c, argv):
    mig = _mig(c)
    srv = c.server
    if not c.flags & (F.INTERNAL | F.MASTER) and not srv.loading:
        c.flags |= F.CLOSE_AFTER_REPLY
        raise err("ERR CLUSTER SYNCSLOTS subcommands are only allowed for internal clients")
    sub = argv[2].upper()
    if sub == b"CONF":
        opts = argv[3:]
        if not opts or len(opts) % 2:
            raise _arity("cluster|syncslots")
        for i in range(0, len(opts), 2):
            name, value = opts[i].upper(), opts[i + 1]
            if name == b"NODE-ID":
                v = value.decode("latin-1")
                if len(v) != 40:
                    raise err("ERR Invalid node id length %d" % len(v))
                if srv.cluster.state.get(v) is None:
                    raise err("ERR Node %s not found in cluster" % v)
                _DEST[c.id] = v
            elif name == b"ASM-TASK":
                if not (c.flags & F.MASTER or srv.loading):
                    raise err("ERR CLUSTER SYNCSLOTS CONF ASM-TASK only allowed on replica")
                mig.mirror_received(value)
            elif name in (b"SLOT-INFO", b"CAPA"):
                pass  # a size hint / reserved
            else:
                raise err("ERR Unknown option %s" % name.decode("latin-1"))
        return OK
    if sub == b"SYNC":
        if len(argv) < 6 or len(argv) % 2:
            raise _arity("cluster|syncslots")
        if mig.failpoint == ("migrate-main-channel", "none"):
            # (DEBUG ASM-FAILPOINT: the source cannot start a task now)
            raise err("NOTREADY the node cannot start a slot migration task now")
        t = mig.sync_cmd(argv[3].decode("latin-1"), argv[4:], _DEST.pop(c.id, None))
        srv.effects.append(ServeMigration(t, "main"))
        return Raw(b"+RDBCHANNELSYNCSLOTS\r\n")
    if sub == b"RDBCHANNEL":
        if len(argv) != 4:
            raise _arity("cluster|syncslots")
        t = mig.rdbchannel_cmd(argv[3].decode("latin-1"))
        # the fork point: the slots as they are now, then every later write
        snap = m.SlotSnapshot(srv, t.slots)
        srv.start_snapshot(snap)
        mig.snapshot_started(t)
        srv.effects.append(ServeMigration(t, "rdb", snap))
        return NO_REPLY
    if sub in (b"ACK", b"SNAPSHOT-EOF", b"STREAM-EOF", b"FAIL"):
        return NO_REPLY  # meaningful only on a migration's channels
    raise err("ERR syntax error")


@command("trimslots")
def cmd_trimslots(c, argv):
    mig = _mig(c)
    if argv[1].lower() != b"ranges":
        raise err("ERR missing ranges argument")
    n = string2ll(argv[2])
    if n is None or n < 1 or n > 16384 or len(argv) != 3 + 2 * n:
        raise err("ERR invalid number of ranges")
    ranges = m.parse_ranges(argv[3:])
    st = mig.st
    if not c.flags & F.MASTER and st.myself.is_master:
        for j in m.slots_of(ranges):
            if st.owner(j) is st.myself:
                raise err("ERR the slot %d is served by this node" % j)
    slots = list(m.slots_of(ranges))
    srv = c.server
    if srv.loading:
        # loading the AOF: at once (a later command of the file may write
        # the same key again), as Redis does
        db = srv.dbs[0]
        for s in slots:
            d = db.slot_keys.get(s)
            while d:
                db.delete(next(iter(d)))
                d = db.slot_keys.get(s)
    else:
        mig.trim_slots(slots)
    # (forced propagation to replicas and the AOF, whatever it deleted)
    argv2 = [b"TRIMSLOTS", b"RANGES", b"%d" % len(ranges)]
    for s, e in ranges:
        argv2 += [b"%d" % s, b"%d" % e]
    srv.propagate(0, argv2)
    return OK
