"""Command families. Importing this package registers every command."""

from frtrio.commands import (  # noqa: F401
    cluster,
    command,
    config_cmd,
    connection,
    debug,
    dump,
    hashes,
    info,
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
