"""Server control commands: TIME, SHUTDOWN, WAIT."""

from __future__ import annotations

import logging

from frtrio.core.blocking import BlockOn
from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import LLONG_MAX, err, parse_int, syntax_error
from frtrio.protocol.parser import string2ll
from frtrio.core import shutdown as _sd
from frtrio.core.effects import Shutdown
from frtrio.protocol.reply import NO_REPLY, OK


@command("time")
def cmd_time(c, argv):
    us = c.server.unix_us()
    return [b"%d" % (us // 1000000), b"%d" % (us % 1000000)]



@command("shutdown")
def cmd_shutdown(c, argv):
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | SHUTDOWN ABORT. The client
    blocks; the node's shell prepares the shutdown (``Shutdown`` effect):
    without NOW it first lets lagging replicas catch up (shutdown-timeout),
    which ABORT can interrupt. The decisions: frtrio/core/shutdown.py."""
    flags = 0
    abort = False
    for a in argv[1:]:
        la = a.lower()
        if la == b"nosave":
            flags |= _sd.NOSAVE
        elif la == b"save":
            flags |= _sd.SAVE
        elif la == b"now":
            flags |= _sd.NOW
        elif la == b"force":
            flags |= _sd.FORCE
        elif la == b"abort":
            abort = True
        else:
            raise syntax_error()
    if (abort and flags) or (flags & _sd.NOSAVE and flags & _sd.SAVE):
        raise syntax_error()
    srv = c.server
    if abort:
        if not _sd.abort(srv):
            raise err("ERR No shutdown in progress.")
        logging.getLogger("frtrio").info("Shutdown manually aborted.")
        return OK
    # (SHUTDOWN is refused in MULTI and in scripts: it always blocks here)
    b = BlockOn([], c.db, None, lambda cl: None, argv=argv)
    srv.shutdown_blocked[c.id] = (c, b)
    srv.effects.append(Shutdown(flags))
    return b


def replicas_lagging(srv) -> bool:
    """Redis's !isReadyToShutdown: a replica has not acknowledged the whole
    stream."""
    off = srv.repl.state.master_repl_offset
    return any(r.ack_off != off for r in srv.repl.replicas.values())


@command("monitor")
def cmd_monitor(c, argv):
    """MONITOR: from now on this connection receives every command the node
    runs (Redis's replicationFeedMonitors format) and may not touch keys."""
    if c.flags & F.IN_EXEC:
        raise err("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if c.flags & (F.SLAVE | F.MONITOR):
        return NO_REPLY  # already a replica or a monitor: ignored
    c.flags |= F.MONITOR
    c.server.monitors.append(c)
    return OK


@command("wait")
def cmd_wait(c, argv):
    srv = c.server
    repl = srv.repl
    if repl.masterhost is not None:
        raise err(
            "ERR WAIT cannot be used with replica instances. Please also note that since "
            "Redis 4.0 if a replica is configured to be writable (which is not the default) "
            "writes to replicas are just local and are not propagated."
        )
    n = parse_int(argv[1])
    t = string2ll(argv[2])
    if t is None:
        raise err("ERR timeout is not an integer or out of range")
    if t < 0:
        raise err("ERR timeout is negative")
    repl.feed(srv.propagated)  # this client's writes get their stream offset now
    acked = repl.acked(c.woff)
    if c.multi is not None or c.flags & F.IN_EXEC or acked >= n:
        return acked
    deadline = srv.now_ms + t if t > 0 else None
    if deadline is not None and deadline > LLONG_MAX:
        deadline = None  # wraps negative in Redis 7.0.15, which then never times out
    repl.wait_block(c, n)
    return BlockOn([], c.db, deadline, lambda cl: None, on_timeout=acked, argv=argv)
