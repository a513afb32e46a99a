"""Shutdown decisions (pure): what SHUTDOWN, SIGTERM/SIGINT and the cron
decide, as Redis 7.0 does; the shell (``runtime/node.py``, ``cli.py``)
carries out the work (flush and fsync the AOF, the final snapshot, exit).

The sequence, after Redis's prepareForShutdown / finishShutdown:

* a signal only sets ``shutdown_asap`` (and which signal it was); the next
  serverCron tick turns it into a shutdown with the flags of
  ``shutdown-on-sigterm`` / ``shutdown-on-sigint`` (so ``DEBUG PAUSE-CRON 1``
  holds it, and ``SHUTDOWN ABORT`` can clear it meanwhile). A second SIGINT
  while one is pending means "exit now" (exit code 1, nothing saved).
* SHUTDOWN blocks the client that sent it, then prepares the shutdown.
* ``prepare``: unless NOW, with ``shutdown-timeout`` set and a replica that
  has not acknowledged the whole stream, the shutdown is *initiated*: writes
  are paused, replicas asked for an ACK, and the cron finishes it when they
  have caught up or the timeout passed. Otherwise it is finished at once.
* finishing can fail (the final RDB save, unless FORCE): then the shutdown
  is cancelled, the clients blocked in SHUTDOWN get an error, and the node
  goes on serving.
"""

from __future__ import annotations

from frtrio.core.effects import PauseChanged
from frtrio.protocol.reply import ErrorReply

# Redis's SHUTDOWN_* flags (the shutdown-on-sig* config values use the same bits)
SAVE = 1
NOSAVE = 2
NOW = 4
FORCE = 8

_WORDS = {"default": 0, "save": SAVE, "nosave": NOSAVE, "now": NOW, "force": FORCE}

BLOCKED_ERROR = "ERR Errors trying to SHUTDOWN. Check logs."


def flags_of(words: str) -> int:
    """``shutdown-on-sigterm``'s value ("save now", "default"...) as flags."""
    out = 0
    for w in words.split():
        out |= _WORDS.get(w.lower(), 0)
    return out


def initiated(srv) -> bool:
    """Redis's isShutdownInitiated: waiting for replicas to catch up."""
    return srv.shutdown_deadline_ms != 0


def signal_received(srv, sig: str) -> tuple[str, str]:
    """What the signal handler does (Redis's sigShutdownHandler): returns
    ``("exit", message)`` for a second SIGINT while a shutdown is pending
    (the process exits 1 at once), else ``("scheduled", message)`` after
    setting the flag the cron acts on."""
    if srv.shutdown_asap and sig == "SIGINT":
        return "exit", "You insist... exiting now."
    if srv.loading:
        msg = "Received shutdown signal during loading, scheduling shutdown."
    elif sig in ("SIGTERM", "SIGINT"):
        msg = "Received %s scheduling shutdown..." % sig
    else:
        msg = "Received shutdown signal, scheduling shutdown..."
    srv.shutdown_asap = True
    srv.last_sig = sig
    return "scheduled", msg


def signal_flags(srv, cfg) -> int:
    """The flags a pending signal's shutdown uses (0: the default)."""
    if srv.last_sig == "SIGINT":
        return flags_of(cfg.get("shutdown-on-sigint"))
    if srv.last_sig == "SIGTERM":
        return flags_of(cfg.get("shutdown-on-sigterm"))
    return 0


def cron_step(srv, cfg, lagging: bool):
    """serverCron's shutdown part: ``("prepare", flags)`` when a signal is
    pending (while loading: NOSAVE), ``("finish", 0)`` when an initiated
    shutdown may finish (replicas caught up, or the timeout passed), else
    None."""
    if srv.shutdown_asap and not initiated(srv):
        return "prepare", (NOSAVE if srv.loading else signal_flags(srv, cfg))
    if initiated(srv) and (srv.now_ms >= srv.shutdown_deadline_ms or not lagging):
        return "finish", 0
    return None


def prepare(srv, flags: int, timeout_s: int, lagging: bool) -> str:
    """Redis's prepareForShutdown: ``"busy"`` when a shutdown is already
    initiated (nothing changes), ``"wait"`` when it is initiated now (writes
    paused until the replicas acknowledge or ``timeout_s`` passes; the
    caller logs it and sends the GETACK), ``"finish"`` when the shell
    should finish it at once (``srv.shutdown_flags`` say how)."""
    if initiated(srv):
        return "busy"
    if srv.loading:  # a half-loaded dataset is never saved
        flags = (flags & ~SAVE) | NOSAVE
    srv.shutdown_flags = flags
    if not flags & NOW and timeout_s and lagging:
        srv.shutdown_deadline_ms = srv.now_ms + timeout_s * 1000
        if not srv.pause_end_ms:
            srv.repl.getack_wanted = True
        srv.pause_clients(1 << 62, False, "shutdown")
        srv.effects.append(PauseChanged())
        return "wait"
    return "finish"


def save_at_exit(flags: int, has_save_points: bool) -> bool:
    """finishShutdown's snapshot rule: save points and not NOSAVE, or SAVE."""
    return bool(flags & SAVE) or (has_save_points and not flags & NOSAVE)


def cancel(srv) -> None:
    """Redis's cancelShutdown: forget it all, answer the clients blocked in
    SHUTDOWN with an error, let writes through again."""
    srv.shutdown_asap = False
    srv.shutdown_flags = 0
    srv.shutdown_deadline_ms = 0
    srv.last_sig = ""
    waiting, srv.shutdown_blocked = srv.shutdown_blocked, {}
    for c, b in waiting.values():
        # (only while still blocked in that SHUTDOWN: CLIENT UNBLOCK may
        # have released it, and it may be blocked in something else since)
        if c.blocked is b and srv.blocking is not None:
            srv.blocking.unblock(c, ErrorReply(BLOCKED_ERROR))
    srv.unpause_clients("shutdown")
    srv.effects.append(PauseChanged())


def abort(srv) -> bool:
    """SHUTDOWN ABORT (Redis's abortShutdown): True when there was a
    shutdown to abort (initiated, or a signal's still pending)."""
    if initiated(srv):
        cancel(srv)
    elif srv.shutdown_asap:
        srv.shutdown_asap = False
    else:
        return False
    return True


def remaining_ms(srv) -> int | None:
    """INFO's shutdown_in_milliseconds (None when no shutdown is initiated)."""
    if not initiated(srv):
        return None
    return srv.shutdown_deadline_ms - srv.now_ms
