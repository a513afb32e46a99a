"""Persistence commands: BGREWRITEAOF, SAVE, BGSAVE.

The work is done synchronously (the dataset lives in this process, there is
no fork), so BGSAVE and BGREWRITEAOF have finished when they answer; they
answer what redis-server answers when it starts the background job.

* BGREWRITEAOF: a new AOF base (RDB or commands, as aof-use-rdb-preamble
  says) and a fresh incr file; with appendonly off it writes a base and a
  manifest in the AOF directory, as redis-server does too.
* SAVE / BGSAVE [SCHEDULE]: the dataset into ``<dir>/<dbfilename>`` in RDB
  format, which redis-server can load (and frtrio loads it at start when
  appendonly is off).

The node installs ``server.aof_rewrite`` and ``server.rdb_save``
(``persist.aof.attach``).
"""

from __future__ import annotations

from frtrio.commands.table import command
from frtrio.commands.util import err, syntax_error
from frtrio.protocol.reply import OK, Status


def _hook(c, name: str):
    hook = getattr(c.server, name, None)
    if hook is None:
        raise err("ERR persistence is not available on this node")
    return hook


@command("bgrewriteaof")
def cmd_bgrewriteaof(c, argv):
    try:
        _hook(c, "aof_rewrite")()
    except Exception as e:  # noqa: BLE001 - OSError, or a value that cannot be written
        if hasattr(e, "message") and str(getattr(e, "message", "")).startswith("ERR"):
            raise
        raise err("ERR Background append only file rewriting failed: %s"
                  % (getattr(e, "strerror", None) or e)) from None
    return Status("Background append only file rewriting started")


def _save(c) -> None:
    try:
        _hook(c, "rdb_save")()
    except Exception as e:  # noqa: BLE001
        if str(getattr(e, "message", "")).startswith("ERR"):
            raise
        raise err("ERR") from None


@command("save")
def cmd_save(c, argv):
    _save(c)
    return OK


@command("bgsave")
def cmd_bgsave(c, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise syntax_error()
    _save(c)
    return Status("Background saving started")
