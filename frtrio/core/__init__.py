"""The server's pure core: the engine (command execution, the keyspace's
owner), clients, effects, the before-sleep manager, the blocking and pub/sub
registries, output limits, the hardening policy, the event log's records and
C-number parsing. Like every package outside ``runtime/`` and ``sim/`` it does
no I/O and reads no clock: see docs/architecture.md."""

# Redis's "verbose" log level, between Python's DEBUG and INFO (notice);
# frtrio/cli.py names it and maps the loglevel setting onto these levels
VERBOSE = 15
