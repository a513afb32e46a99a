"""Command families. Importing this package registers every command."""

from frtrio.commands import (  # noqa: F401
    cluster,
    connection,
    dump,
    hashes,
    keys,
    lists,
    objectcmd,
    persistence,
    pubsub,
    replication,
    server,
    sets,
    streams,
    strings,
    transactions,
    zsets,
)
