"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0 semantics).

Queueing happens in the gate (``engine.Server.execute``): while ``c.multi``
is a list every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET is appended
to it and answered ``+QUEUED``; a command refused at queue time (unknown,
wrong arity, not allowed, redirected) sets the DIRTY_EXEC client flag so that EXEC
answers ``-EXECABORT``.

WATCH bookkeeping lives on the server (``Server.watch`` / ``unwatch_all`` /
``touch_key`` / ``touch_all``): any change to a watched key (by any client,
including its removal by expiry, FLUSHDB/FLUSHALL and SWAPDB) sets
DIRTY_CAS. As in Redis 7.0, a key that was already logically expired
when WATCHed does not abort EXEC when it is finally removed, while a key that
expires between WATCH and EXEC does, even if nothing has removed it yet.

EXEC runs the queued commands through ``Server.call`` (so errors of single
commands are elements of the reply array, statistics and propagation work as
for top-level commands) with the IN_EXEC flag set, which tells blocking commands
not to block. The writes are propagated wrapped in MULTI ... EXEC when there
is more than one of them, as Redis 7.0's propagatePendingCommands does. The
gate serves blocked clients whose keys became ready once, after the whole
EXEC.
"""

from __future__ import annotations

from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.protocol.reply import OK, NullArray, Raw

EXECABORT = "EXECABORT Transaction discarded because of previous errors."


def discard_transaction(c) -> None:
    """Leave the MULTI state and forget WATCHes (Redis's discardTransaction)."""
    c.multi = None
    c.flags &= ~F.DIRTY_EXEC
    c.server.unwatch_all(c)  # also clears watch_dirty


def watched_key_expired(c) -> bool:
    """Redis's isWatchedKeyExpired: a key that was alive when WATCHed has
    expired since (whether or not it was removed yet)."""
    w = c.watched
    if not w:
        return False
    srv = c.server
    now = srv.now_ms
    for (dbid, key), expired_at_watch in w.items():
        if expired_at_watch:
            continue
        if srv.dbs[dbid].is_expired(key, now):
            return True
    return False


@command("multi")
def cmd_multi(c, argv):
    if c.multi is not None:
        raise err("ERR MULTI calls can not be nested")
    c.multi = []
    c.flags &= ~F.DIRTY_EXEC
    return OK


@command("discard")
def cmd_discard(c, argv):
    if c.multi is None:
        raise err("ERR DISCARD without MULTI")
    discard_transaction(c)
    return OK


@command("exec")
def cmd_exec(c, argv):
    from frtrio.core.engine import NO_REPLY

    if c.multi is None:
        raise err("ERR EXEC without MULTI")
    srv = c.server
    if not c.flags & F.DIRTY_CAS and watched_key_expired(c):
        c.flags |= F.DIRTY_CAS
    if c.flags & (F.DIRTY_EXEC | F.DIRTY_CAS):
        aborted = bool(c.flags & F.DIRTY_EXEC)
        discard_transaction(c)
        if aborted:
            raise err(EXECABORT)
        return NullArray
    queued = c.multi
    # Unwatch first: the transaction's own writes must not matter.
    srv.unwatch_all(c)
    c.multi = None
    c.flags &= ~F.DIRTY_EXEC
    c.flags |= F.IN_EXEC
    first = len(srv.propagated)
    skip = c.reply_mode == 2  # CLIENT REPLY SKIP: the whole EXEC reply goes
    if skip:
        c.reply_mode = 1
    c.reply(Raw(b"*%d\r\n" % len(queued)))
    call = srv.call
    blocking = srv.blocking
    check = not c.auser.allow_all
    try:
        for cmd, qargv in queued:
            if check:
                kind = srv.acl_denied(c, cmd, qargv, 1)[0]
                if kind:
                    # the rules changed since the command was queued
                    msg = "NOPERM ACLs rules changed between the moment the transaction was " \
                          "accumulated and the EXEC call. This command is no longer allowed " \
                          "for the following reason: " + _EXEC_NOPERM[kind]
                    srv.count_error(msg)
                    c.reply_error(msg)
                    continue
            call(c, cmd, qargv)
            if c.blocked is not None and blocking is not None:
                # a blocking command must answer at once inside EXEC
                blocking.timeout(c)
    finally:
        c.flags &= ~F.IN_EXEC
        if skip and c.reply_mode == 1:
            c.reply_mode = 0
    prop = srv.propagated
    if len(prop) - first > 1:
        prop.insert(first, (prop[first][0], [b"MULTI"]))
        prop.append((prop[-1][0], [b"EXEC"]))
    return NO_REPLY


_EXEC_NOPERM = {
    1: "no permission to execute the command or subcommand",
    2: "no permission to touch the specified keys",
    4: "no permission to access one of the channels used as arguments",
}


@command("watch")
def cmd_watch(c, argv):
    if c.multi is not None:
        raise err("ERR WATCH inside MULTI is not allowed")
    if c.flags & F.DIRTY_CAS:
        return OK  # already doomed: nothing worth watching
    srv = c.server
    for key in argv[1:]:
        srv.watch(c, key)
    return OK


@command("unwatch")
def cmd_unwatch(c, argv):
    c.server.unwatch_all(c)
    return OK
