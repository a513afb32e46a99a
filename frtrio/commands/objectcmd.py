"""objectcmd commands (filled in by the data-types work)."""
