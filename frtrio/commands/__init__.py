"""Command families. Importing this package registers every command."""

from frtrio.commands import (  # noqa: F401
    bitmaps,
    cluster,
    connection,
    dump,
    geo,
    hashes,
    hll,
    keys,
    lcs,
    lists,
    objectcmd,
    persistence,
    pubsub,
    server,
    sets,
    sort,
    streams,
    strings,
    transactions,
    zsets,
)
