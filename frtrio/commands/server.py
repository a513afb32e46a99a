"""Server control commands: TIME, SHUTDOWN, WAIT."""

from __future__ import annotations

from frtrio.core.blocking import BlockOn
from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import LLONG_MAX, err, parse_int, syntax_error
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import NO_REPLY


@command("time")
def cmd_time(c, argv):
    us = c.server.unix_us()
    return [b"%d" % (us // 1000000), b"%d" % (us % 1000000)]



@command("shutdown")
def cmd_shutdown(c, argv):
    mode = "default"
    for a in argv[1:]:
        la = a.lower()
        if la == b"nosave":
            mode = "nosave"
        elif la == b"save":
            mode = "save"
        elif la in (b"now", b"force"):
            pass
        elif la == b"abort":
            raise err("ERR No shutdown in progress.")
        else:
            raise syntax_error()
    c.server.shutdown_requested = mode
    c.flags |= F.CLOSE_AFTER_REPLY
    return NO_REPLY


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
