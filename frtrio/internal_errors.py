"""Internal errors: bugs that a guard turned into an error reply or a closed
connection instead of a crash. Never silent: each one is logged with its
traceback (the log line starts with ``frtrio internal error``), counted per
Server (INFO ``# Stats`` field ``frtrio_internal_errors``) and in this
process-wide counter, which the test session checks after every test.
"""

from __future__ import annotations

LOG_MARKER = "frtrio internal error"

total = 0  # every internal error in this process (commands and connections)
shell = 0  # connection-level ones (the runtime's per-connection guard)


def note(where: str = "command") -> None:
    global total, shell
    total += 1
    if where == "connection":
        shell += 1
