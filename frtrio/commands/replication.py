"""Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC, SYNC,
FAILOVER (spec §6). They change the pure replication state (``Server.repl``,
frtrio/replication/core.py) at once and leave the network part to the
node's shell as effects (SetMaster, UnsetMaster, ServeReplica)."""

from __future__ import annotations

import logging

from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.config import VERSION
from frtrio.core.effects import PauseChanged, ServeReplica, SetMaster, UnsetMaster
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY, OK, ErrorReply, Status
from frtrio.replication.core import FAILOVER_IN_PROGRESS, NO_FAILOVER, ONLINE, Replica
from frtrio.replication.snapshot import Snapshot
from frtrio.replication.state import Continue

log = logging.getLogger("frtrio")

UNBLOCKED_ROLE = ("UNBLOCKED force unblock from blocking operation, instance state changed "
                  "(master -> replica?)")


def _new_replid(srv) -> str:
    return "".join("0123456789abcdef"[srv.rng.randrange(16)] for _ in range(40))


def _replicaof(c, argv):
    srv = c.server
    repl = srv.repl
    if srv.cluster is not None:
        raise err("ERR REPLICAOF not allowed in cluster mode.")
    if repl.failover_state != NO_FAILOVER:
        raise err("ERR REPLICAOF not allowed while failing over.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if repl.masterhost is not None:
            line = unset_master(srv)
            log.info("%s", line)
            log.info("MASTER MODE enabled (user request from 'id=%d addr=%s')", c.id, c.addr)
            srv.effects.append(UnsetMaster())
        return OK
    if c.id in repl.replicas:
        raise err("ERR Command is not valid when client is a replica.")
    port = string2ll(argv[2])
    if port is None or port < 0 or port > 65535:
        raise err("ERR Invalid master port")
    host = argv[1].decode("latin-1")
    if (repl.masterhost is not None and repl.masterhost.lower() == host.lower()
            and repl.masterport == port):
        return Status("OK Already connected to specified master")
    set_master(srv, host, port)
    log.info("REPLICAOF %s:%d enabled (user request from 'id=%d addr=%s')",
             host, port, c.id, c.addr)
    return OK


def unset_master(srv) -> str:
    """Become a master (REPLICAOF NO ONE, a FAILOVER handoff or abort):
    a new replication id; returns the shiftReplicationId log line."""
    if srv.cluster is None:
        srv.config.values["replicaof"] = ""  # CONFIG GET/REWRITE show the role
    return srv.repl.unset_master(_new_replid(srv), srv.now_ms)


def set_master(srv, host: str, port: int, effect: bool = True) -> None:
    """Become a replica of host:port (REPLICAOF, the replicaof directive,
    CLUSTER REPLICATE); ``effect``: ask the client's shell to connect."""
    repl = srv.repl
    # blocked clients (WAIT included) are failed and closed (spec §6.1)
    for bc in list(srv.clients.values()):
        if bc.blocked is not None:
            repl.waiters.pop(bc.id, None)
            srv.blocking.unblock(bc, ErrorReply(UNBLOCKED_ROLE))
            bc.flags |= F.CLOSE_AFTER_REPLY
            srv.kill_client(bc)
    repl.set_master(host, port, srv.now_ms // 1000)
    if srv.cluster is None:
        srv.config.values["replicaof"] = "%s %d" % (host, port)
    if effect:
        srv.effects.append(SetMaster(host, port))


command("replicaof")(_replicaof)
command("slaveof")(_replicaof)


@command("role")
def cmd_role(c, argv):
    return c.server.repl.role()


@command("replconf")
def cmd_replconf(c, argv):
    srv = c.server
    repl = srv.repl
    if len(argv) % 2 == 0:
        raise err("ERR syntax error")
    conf = repl.pending_conf.setdefault(c.id, {})
    for j in range(1, len(argv), 2):
        opt = argv[j].lower()
        val = argv[j + 1]
        if opt == b"listening-port":
            p = string2ll(val)
            if p is None:
                raise err("ERR value is not an integer or out of range")
            conf["port"] = p
        elif opt == b"ip-address":
            if len(val) >= 256:
                raise err("ERR REPLCONF ip-address provided by replica instance is too long: "
                          "%d bytes" % len(val))
            conf["ip"] = val.decode("latin-1")
        elif opt == b"capa":
            if val.lower() == b"eof":
                conf["eof"] = True
            elif val.lower() == b"psync2":
                conf["psync2"] = True
        elif opt == b"ack":
            r = repl.replicas.get(c.id)
            off = string2ll(val)
            if r is not None and off is not None:
                repl.on_ack(r, off, srv.now_ms)
            return NO_REPLY
        elif opt == b"getack":
            return NO_REPLY  # answered by the master link itself (runtime/replication.py)
        elif opt == b"rdb-only":
            v = string2ll(val)
            if v not in (0, 1):
                raise err("ERR value is out of range, value must between 0 and 1")
        elif opt == b"rdb-filter-only":
            if val.lower() not in (b"functions", b""):
                raise err("ERR Unsupported rdb-filter-only option: %s" % val.decode("latin-1"))
            # redis-cli --functions-rdb: the payload holds the functions only
            conf["functions_only"] = val.lower() == b"functions"
        else:
            raise err("ERR Unrecognized REPLCONF option: %s" % argv[j].decode("latin-1"))
    return OK


def _sync_refused(c):
    srv = c.server
    repl = srv.repl
    if c.id in repl.replicas:
        return NO_REPLY  # already a replica: ignored
    if repl.failover_state != NO_FAILOVER:
        raise err("NOMASTERLINK Can't SYNC while failing over")
    if c.out:
        raise err("ERR SYNC and PSYNC are invalid with pending output")
    if srv.loading:
        raise err("LOADING Redis is loading the dataset in memory")
    if repl.masterhost is not None and not repl.link_up:
        raise err("NOMASTERLINK Can't SYNC while not connected with my master")
    return None


def _attach(c, presync: bool) -> Replica:
    srv = c.server
    repl = srv.repl
    conf = repl.pending_conf.pop(c.id, {})
    ip = conf.get("ip") or c.addr.rsplit(":", 1)[0]
    r = Replica(c, ip, conf.get("port", 0), conf.get("eof", False), conf.get("psync2", False),
                presync, srv.now_ms)
    r.functions_only = conf.get("functions_only", False)
    repl.attach(r, int(srv.config.get("repl-backlog-size")), _new_replid(srv))
    c.flags |= F.SLAVE
    return r


def _full_sync(c, r: Replica, announce: bool) -> None:
    """A full sync: to the socket (EOF framing) when repl-diskless-sync is
    on and the replica can read it, else with a length prefix; a diskless
    one waits repl-diskless-sync-delay first (the node's shell starts its
    snapshot, see start_snapshot)."""
    srv = c.server
    cfg = srv.config
    srv.repl.state.sync_full += 1
    diskless = cfg.get("repl-diskless-sync") == "yes" and r.capa_eof and not r.presync
    c.reply_mode = 1  # a replica link never gets a reply again
    if diskless and int(cfg.get("repl-diskless-sync-delay")) > 0:
        srv.effects.append(ServeReplica(r, None, b"", diskless=True, delayed=True))
        return
    snap = start_snapshot(srv, c, r, announce)
    srv.effects.append(ServeReplica(r, snap, b"", diskless=diskless))


def start_snapshot(srv, c, r: Replica, announce: bool) -> Snapshot:
    """The fork point of a full sync: +FULLRESYNC with the offset now, and a
    point-in-time snapshot; later writes go to the replica's buffer."""
    repl = srv.repl
    st = repl.state
    repl.feed(srv.propagated)  # what ran before this point is in the snapshot, not the stream
    if repl.masterhost is None:
        st.slaveseldb = -1
        stream_db = 0
    else:
        stream_db = repl.master_db
    if announce:
        c.out.append(st.fullresync_reply())
    log.info("Starting BGSAVE for SYNC with target: replicas sockets (frtrio: incremental "
             "point-in-time snapshot)")
    snap = Snapshot(srv, srv.config, st.replid, st.master_repl_offset, stream_db,
                    VERSION.encode(), srv.now_ms // 1000, srv.used_memory(),
                    with_keys=not r.functions_only)
    srv.start_snapshot(snap)
    r.buffering = True
    return snap


@command("psync")
def cmd_psync(c, argv):
    srv = c.server
    repl = srv.repl
    if len(argv) > 3 and argv[3].lower() == b"failover" and c.id not in repl.replicas:
        # the standalone FAILOVER handoff (spec §6.7): my master asks me to
        # take over, if we share a replication history
        log.warning("Failover request received for replid %s.", argv[1].decode("latin-1"))
        if repl.masterhost is None:
            raise err("ERR PSYNC FAILOVER can't be sent to a master.")
        if argv[1].decode("latin-1") != repl.state.replid:
            raise err("ERR PSYNC FAILOVER replid must match my replid.")
        log.info("%s", unset_master(srv))
        log.info("MASTER MODE enabled (failover request from 'id=%d addr=%s')", c.id, c.addr)
        # sub-replicas learn the new id by reconnecting (the shell keeps
        # the connection asking, which is not a replica yet)
        for r in list(repl.replicas.values()):
            srv.kill_client(r.client)
        srv.effects.append(UnsetMaster(drop_replicas=False))
    refused = _sync_refused(c)
    if refused is not None:
        return refused
    off = string2ll(argv[2])
    if off is None:
        raise err("ERR value is not an integer or out of range")
    psync_id = argv[1].decode("latin-1")
    res = repl.state.try_partial(psync_id, off, repl.pending_conf.get(c.id, {}).get("psync2",
                                                                                    False))
    r = _attach(c, False)
    if isinstance(res, Continue):
        repl.state.sync_partial_ok += 1
        log.info("Partial resynchronization request from %s accepted. Sending %d bytes of "
                 "backlog starting from offset %d.", c.addr, len(res.data), off)
        c.out.append(res.reply)
        r.state = ONLINE
        r.buffering = True
        repl.refresh_good(srv.config, srv.now_ms)
        c.reply_mode = 1
        srv.effects.append(ServeReplica(r, None, res.data))
        return NO_REPLY
    if res.partial_err:
        repl.state.sync_partial_err += 1
    log.info("Replica %s asks for synchronization; %s", c.addr, res.reason)
    _full_sync(c, r, True)
    return NO_REPLY


@command("sync")
def cmd_sync(c, argv):
    refused = _sync_refused(c)
    if refused is not None:
        return refused
    r = _attach(c, True)
    _full_sync(c, r, False)
    return NO_REPLY


# --- standalone FAILOVER (spec §6.7) --------------------------------------------

PAUSE_FOREVER_MS = 1 << 62


@command("failover")
def cmd_failover(c, argv):
    """FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | FAILOVER ABORT: pause
    writes, wait for a replica to have the whole stream, then hand it the
    master role with PSYNC ... FAILOVER (the cron drives the rest)."""
    srv = c.server
    repl = srv.repl
    if srv.cluster is not None:
        raise err("ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command "
                  "instead.")
    if len(argv) == 2 and argv[1].lower() == b"abort":
        if repl.failover_state == NO_FAILOVER:
            raise err("ERR No failover in progress.")
        abort_failover(srv, "Failover manually aborted")
        return OK
    timeout = 0
    force = False
    target = None
    j = 1
    while j < len(argv):
        a = argv[j].lower()
        if a == b"timeout" and j + 1 < len(argv) and timeout == 0:
            t = string2ll(argv[j + 1])
            if t is None:
                raise err("ERR value is not an integer or out of range")
            if t <= 0:
                raise err("ERR FAILOVER timeout must be greater than 0")
            timeout = t
            j += 2
        elif a == b"to" and j + 2 < len(argv) and target is None:
            port = string2ll(argv[j + 2])
            if port is None:
                raise err("ERR value is not an integer or out of range")
            target = (argv[j + 1].decode("latin-1"), port)
            j += 3
        elif a == b"force" and not force:
            force = True
            j += 1
        else:
            raise err("ERR syntax error")
    if repl.failover_state != NO_FAILOVER:
        raise err("ERR FAILOVER already in progress.")
    if repl.masterhost is not None:
        raise err("ERR FAILOVER is not valid when server is a replica.")
    if not repl.replicas:
        raise err("ERR FAILOVER requires connected replicas.")
    if force and (not timeout or target is None):
        raise err("ERR FAILOVER with force option requires both a timeout and target HOST "
                  "and IP.")
    if target is not None:
        r = repl.find_replica(*target)
        if r is None:
            raise err("ERR FAILOVER target HOST and PORT is not a replica.")
        if r.state != ONLINE:
            raise err("ERR FAILOVER target replica is not online.")
        log.info("FAILOVER requested to %s:%d.", *target)
    else:
        log.info("FAILOVER requested to any replica.")
    repl.failover_begin(target, srv.now_ms + timeout if timeout else 0, force)
    srv.pause_clients(PAUSE_FOREVER_MS, False, "failover")
    srv.effects.append(PauseChanged())
    return OK


def clear_failover(srv) -> None:
    """The failover is over (done or aborted): writes flow again."""
    srv.repl.failover_clear()
    srv.unpause_clients("failover")
    srv.effects.append(PauseChanged())


def abort_failover(srv, reason: str) -> None:
    """Redis's abortFailover: after the switch, turn back into a master."""
    repl = srv.repl
    if repl.failover_state == NO_FAILOVER:
        return
    log.info("%s", repl.failover_aborted_line(reason))
    if repl.failover_state == FAILOVER_IN_PROGRESS:
        log.info("%s", unset_master(srv))
        srv.effects.append(UnsetMaster())
    clear_failover(srv)


def update_failover(srv) -> None:
    """The fast cron's failover step (Redis's updateFailoverStatus)."""
    act = srv.repl.failover_step(srv.now_ms)
    if act is None:
        return
    if act[0] == "abort":
        abort_failover(srv, act[1])
        return
    _, host, port, line = act
    log.info("%s", line)
    set_master(srv, host, port)
