"""Persistence commands: BGREWRITEAOF, SAVE, BGSAVE, LASTSAVE.

The work is done by the node's persistence shell (runtime/persistence.py)
right after the command, before its reply leaves (the dataset lives in this
process, there is no fork): the command leaves an effect and a deferred
reply, which the shell answers with the result. So BGSAVE and BGREWRITEAOF
have finished when they answer; they answer what redis-server answers when
it starts the background job.

* BGREWRITEAOF: a new AOF base (RDB or commands, as aof-use-rdb-preamble
  says) and a fresh incr file; with appendonly off it writes a base and a
  manifest in the AOF directory, as redis-server does too.
* SAVE / BGSAVE [SCHEDULE]: the dataset into ``<dir>/<dbfilename>`` in RDB
  format, which redis-server can load (and frtrio loads it at start when
  appendonly is off).
"""

from __future__ import annotations

from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import syntax_error
from frtrio.core.effects import RewriteAof, SaveSnapshot
from frtrio.protocol.reply import NO_REPLY


@command("bgrewriteaof")
def cmd_bgrewriteaof(c, argv):
    # inside EXEC Redis only schedules the rewrite (for its cron); here the
    # work is done after the EXEC all the same, the reply says what Redis says
    ok = ("Background append only file rewriting scheduled" if c.flags & F.IN_EXEC
          else "Background append only file rewriting started")
    c.server.effects.append(RewriteAof(c.defer_reply(), ok))
    return NO_REPLY


@command("save")
def cmd_save(c, argv):
    c.server.effects.append(SaveSnapshot(c.defer_reply()))
    return NO_REPLY


@command("bgsave")
def cmd_bgsave(c, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise syntax_error()
    ok = "Background saving scheduled" if c.flags & F.IN_EXEC else "Background saving started"
    c.server.effects.append(SaveSnapshot(c.defer_reply(), ok))
    return NO_REPLY


@command("lastsave")
def cmd_lastsave(c, argv):
    return c.server.lastsave_ms // 1000
