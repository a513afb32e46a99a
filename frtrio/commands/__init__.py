"""Command families. Importing this package registers every command."""

from frtrio.commands import connection, keys, server, strings  # noqa: F401

# Families added by later work register themselves here too.
try:  # noqa: SIM105
    from frtrio.commands import extra_families  # noqa: F401
except ImportError:
    pass
