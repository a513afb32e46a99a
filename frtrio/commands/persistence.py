"""Persistence commands: BGREWRITEAOF, SAVE, BGSAVE.

frtrio persists through the AOF only (``frtrio/persist/aof.py``); it writes
no RDB snapshots. So:

* BGREWRITEAOF rewrites the AOF (synchronously: the dataset lives in this
  process) and answers as Redis does. With appendonly off it writes a base
  file and manifest in the AOF directory, as redis-server does too.
* SAVE / BGSAVE with appendonly on rewrite the AOF, which leaves the whole
  dataset compacted and durable on disk, and answer as Redis does (LASTSAVE
  moves); with appendonly off there is nothing they can write, and they say
  so with an error instead of pretending a dump.rdb exists.

The node installs ``server.aof_rewrite`` (see ``persist.aof.attach``).
"""

from __future__ import annotations

from frtrio.commands.table import command
from frtrio.commands.util import err, syntax_error
from frtrio.protocol.reply import OK, Status

NO_RDB = (
    "ERR frtrio does not write RDB snapshots (dump.rdb); turn on appendonly for "
    "persistence (then SAVE and BGSAVE rewrite the AOF)"
)


def _rewrite(c) -> None:
    srv = c.server
    hook = getattr(srv, "aof_rewrite", None)
    if hook is None:
        raise err("ERR Background append only file rewriting is not available on this node")
    try:
        hook()
    except OSError as e:
        raise err("ERR Background append only file rewriting failed: %s"
                  % (e.strerror or e)) from None


@command("bgrewriteaof")
def cmd_bgrewriteaof(c, argv):
    _rewrite(c)
    return Status("Background append only file rewriting started")


def _snapshot(c) -> None:
    srv = c.server
    if srv.aof is None or not getattr(srv.aof, "enabled", True):
        raise err(NO_RDB)
    _rewrite(c)
    srv.lastsave_ms = srv.now_ms
    srv.dirty = 0
    srv.rdb_saves = getattr(srv, "rdb_saves", 0) + 1


@command("save")
def cmd_save(c, argv):
    _snapshot(c)
    return OK


@command("bgsave")
def cmd_bgsave(c, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise syntax_error()
    _snapshot(c)
    return Status("Background saving started")
