"""DEBUG: the subcommands frtrio serves (HELP, SLEEP, RELOAD, LOADAOF,
SET-ACTIVE-EXPIRE, DROP-CLUSTER-PACKET-FILTER, CLUSTERLINK KILL); the work
that needs the outside world leaves as effects."""

from __future__ import annotations

from frtrio.core.cnum import atoi as _atoi
from frtrio.core.cnum import memtoull
from frtrio.core.cnum import cstr as _cstr
from frtrio.core.cnum import strtod_prefix
from frtrio.commands.table import command
from frtrio.commands.util import err, parse_int, protected_action_allowed
from frtrio.core.effects import Crash, DebugLoadAof, DebugReload, Sleep
from frtrio.protocol.reply import NO_REPLY, OK, Raw, Status
from frtrio.protocol.parser import string2ll
from frtrio.store.db import unpacked


def _debug_allowed(c) -> bool:
    return protected_action_allowed(c, c.server.config.get("enable-debug-command"))


DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
    "HELP",
    "    Prints this help.",
]


@command("debug")
def cmd_debug(c, argv):
    if not _debug_allowed(c):
        raise err(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to "
            "\"local\", you can run it from a local connection, otherwise you need to set "
            "this option in the configuration file, and then restart the server."
        )
    sub = _cstr(argv[1]).lower()
    if sub == b"help" and len(argv) == 2:
        return [Status(x) for x in DEBUG_HELP]
    if sub in (b"segfault", b"panic", b"assert"):
        # the process dies, after its crash report (runtime/crash.py)
        what = {b"segfault": "", b"assert": "1 == 2",
                b"panic": "DEBUG PANIC called at Unix time %d" % (c.server.now_ms // 1000)}[sub]
        c.server.effects.append(Crash(sub.decode(), what))
        return NO_REPLY
    if sub == b"sleep" and len(argv) == 3:
        secs = strtod_prefix(argv[2])
        us = secs * 1000000
        if us != us or us in (float("inf"), float("-inf")):
            us = 0
        ms = int(us) // 1000 if us > 0 else 0
        c.server.effects.append(Sleep(ms))
        return OK
    if sub == b"config-rewrite-force-all" and len(argv) == 2:
        from frtrio.core.effects import RewriteConfig

        srv = c.server
        if not srv.config.config_file:
            raise err("ERR CONFIG-REWRITE-FORCE-ALL failed: No such file or directory")
        srv.effects.append(RewriteConfig(c.defer_reply(), force_all=True))
        return NO_REPLY
    if sub == b"reload":
        # DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]
        save = flush = True
        merge = False
        for a in argv[2:]:
            o = _cstr(a).lower()
            if o == b"nosave":
                save = False
            elif o == b"noflush":
                flush = False
            elif o == b"merge":
                merge = True
            else:
                raise err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
        c.server.effects.append(DebugReload(c.defer_reply(), save, flush, merge))
        return NO_REPLY
    if sub == b"loadaof" and len(argv) == 2:
        # (appendonly off: the AOF files on disk are loaded all the same;
        # with none, nothing changes where Redis exits)
        c.server.effects.append(DebugLoadAof(c.defer_reply()))
        return NO_REPLY
    if sub == b"digest" and len(argv) == 2:
        from frtrio.store.digest import dataset_digest

        return Status(dataset_digest(c.server.dbs))
    if sub == b"digest-value" and len(argv) >= 2:
        from frtrio.store.digest import value_digest

        out = []
        db = c.db
        for k in argv[2:]:
            v = unpacked(db.data.get(k))  # (no lookup: logically expired keys count too)
            out.append(Status(value_digest(v, k in db.expires).hex() if v is not None
                              else "0" * 40))
        return out
    if sub == b"log" and len(argv) == 3:
        # a line in the server's log (test suites mark their steps with it)
        import logging

        logging.getLogger("frtrio").warning(
            "DEBUG LOG: %s", _cstr(argv[2]).decode("utf-8", "replace"))
        return OK
    if sub == b"aof-flush-sleep" and len(argv) == 3:
        # microseconds the node stops before each AOF write of a non-empty
        # buffer (the before-sleep duty, runtime/node.py): a test hook that
        # makes the AOF lag behind the replies' computation, as in Redis
        c.server.aof_flush_sleep_us = _atoi(argv[2])
        return OK
    if sub == b"pause-cron" and len(argv) == 3:
        # the node's cron (expiry, timeouts, replication and cluster crons)
        # stops while this is 1
        c.server.cron_paused = _atoi(argv[2]) != 0
        return OK
    if sub == b"replybuffer" and len(argv) == 4:
        # Redis's reply buffer resizing knobs: how often a client's reply
        # buffer peak is reset, and resizing on or off (the modelled
        # buffers of frtrio/core/iobufs.py, CLIENT LIST's rbs and rbp)
        what = _cstr(argv[2]).lower()
        if what == b"peak-reset-time":
            v = _cstr(argv[3]).lower()
            if v == b"never":
                c.server.reply_buffer_peak_reset_ms = -1
            elif v == b"reset":
                c.server.reply_buffer_peak_reset_ms = 5000
            else:
                c.server.reply_buffer_peak_reset_ms = parse_int(argv[3])
        elif what == b"resizing":
            c.server.reply_buffer_resizing = _atoi(argv[3]) != 0
        else:
            raise err("ERR unknown subcommand or wrong number of arguments for '%s'. "
                      "Try DEBUG HELP." % _cstr(argv[1]).decode("latin-1")[:128])
        return OK
    if sub == b"protocol" and len(argv) == 3:
        return _debug_protocol(c, argv[2].lower())
    if sub == b"change-repl-id" and len(argv) == 2:
        import logging

        from frtrio.commands.replication import _new_replid

        st = c.server.repl.state
        st.replid = _new_replid(c.server)
        st.clear_replid2()
        logging.getLogger("frtrio").info("Changing replication IDs after receiving DEBUG "
                                         "change-repl-id")
        return OK
    if sub == b"populate" and 3 <= len(argv) <= 5:
        return _debug_populate(c, argv)
    if sub == b"object" and len(argv) == 3:
        return _debug_object(c, argv[2])
    if sub == b"replicate" and len(argv) >= 3:
        # propagate argv[2:] as if a command had run (tests use it to plant
        # commands a replica cannot run)
        c.server.propagated.append((c.dbid, list(argv[2:])))
        c.server.repl.wrote(c)
        return OK
    if sub == b"set-skip-checksum-validation" and len(argv) == 3:
        c.server.config.skip_checksum_validation = _atoi(argv[2]) != 0
        return OK
    if sub == b"quicklist-packed-threshold" and len(argv) == 3:
        # a memory value up to 4 GiB - 1 MiB; 0 restores the default (1 GiB)
        sz = memtoull(argv[2])
        if sz is None or sz > (1 << 32) - (1 << 20):
            raise err("ERR argument must be a memory value bigger than 1 and smaller than 4gb")
        c.server.config.ql_packed_threshold = sz or 1 << 30
        return OK
    if sub == b"set-active-expire" and len(argv) == 3:
        c.server.active_expire_enabled = _atoi(argv[2]) != 0
        return OK
    if sub == b"set-disable-deny-scripts" and len(argv) == 3:
        # scripts may then run commands flagged noscript (frtrio/scripting)
        c.server.script_disable_deny = _atoi(argv[2]) != 0
        return OK
    if sub == b"drop-cluster-packet-filter" and len(argv) == 3:
        # Redis 7.0: accepted in any mode; received bus packets of exactly
        # this type are dropped (after being counted), -1 = none
        t = parse_int(argv[2])
        core = c.server.cluster
        if core is not None and core.bus_core is not None:
            core.bus_core.drop_filter = t
        return OK
    if sub == b"pack-values" and len(argv) == 2:
        # frtrio's (not in DEBUG HELP, which stays Redis's): pack every small
        # aggregate now, as the cron packs the ones left alone (the number
        # packed; tests prove packing invisible)
        return sum(db.pack_all() for db in c.server.dbs)
    if sub == b"asm-failpoint" and len(argv) == 4:
        # Redis 8.4's test hook: the slot migration task fails when the
        # named channel reaches the named state ("" "" clears it)
        core = c.server.cluster
        if core is None:
            raise err("ERR Debug option only available for cluster mode enabled setup!")
        core.migrations.set_failpoint(argv[2].decode("latin-1"), argv[3].decode("latin-1"))
        return OK
    if sub == b"asm-trim-method" and len(argv) in (3, 4):
        # Redis 8.4's test hook: how atomic slot migration trims (default:
        # active when a client tracks keys, else background; none: never);
        # <delay> us counted for each key an active trim deletes (negative:
        # active trim jobs are scheduled but do not run)
        core = c.server.cluster
        if core is None:
            raise err("ERR Debug option only available for cluster mode enabled setup!")
        method = _cstr(argv[2]).lower().decode("latin-1")
        if method not in ("default", "none", "bg", "active"):
            raise err("ERR Invalid trim method: %s (one of: default, none, bg, active)" % method)
        delay = 0
        if len(argv) == 4:
            d = string2ll(argv[3])
            if d is None:
                raise err("ERR value is not an integer or out of range")
            delay = d
        core.migrations.set_trim_method(method, delay)
        return OK
    if (sub == b"clusterlink" and len(argv) == 5
            and _cstr(argv[2]).lower() == b"kill"):
        core = c.server.cluster
        if core is None:
            raise err("ERR Debug option only available for cluster mode enabled setup!")
        nid = argv[4].decode("latin-1")
        n = core.state.get(nid) if len(argv[4]) == 40 else None
        if n is None:
            raise err("ERR Unknown node %s" % nid)
        d = _cstr(argv[3]).lower()
        if d not in (b"to", b"from", b"all"):
            # Redis 7.0 sends this error and then +OK as well (two replies
            # to one command); frtrio sends the error only
            raise err("ERR Unknown direction %s" % argv[3].decode("latin-1"))
        # a link that does not exist (or myself) is a no-op here; Redis 7.0
        # crashes in freeClusterLink(NULL)
        if core.bus_core is not None and n is not core.state.myself:
            core.to_bus(*core.bus_core.kill_links_effects(n, d.decode()))
        return OK
    raise err(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try DEBUG HELP."
        % _cstr(argv[1]).decode("latin-1")[:128]
    )


def _debug_object(c, key: bytes):
    """DEBUG OBJECT: the key's internals as Redis prints them. The value is
    read without an expiry check (a logically expired key on a replica is
    still there). lru is the key's 24-bit access data (the LFU value under an
    LFU policy, read as a clock like Redis does)."""
    from frtrio.commands.objectcmd import encoding_name, refcount
    from frtrio.store import rdb

    v = unpacked(c.db.data.get(key))
    if v is None:
        raise err("ERR no such key")
    cfg = c.server.config
    enc = encoding_name(v, cfg, c.db.str_enc.get(key))
    body = rdb.encode_object(v, rdb.Limits.from_config(cfg))
    extra = ""
    if enc == "quicklist":
        fill = cfg.get_int("list-max-listpack-size")
        nodes = rdb._quicklist_nodes(list(v), fill, cfg.ql_packed_threshold)
        n = len(nodes)
        # a packed node's listpack (header, entries, end); a plain node's
        # element as is
        size = sum(len(items[0]) if kind == rdb.QUICKLIST_NODE_PLAIN
                   else 7 + sum(len(e) for e in items) for kind, items in nodes)
        extra = (" ql_nodes:%d ql_avg_node:%.2f ql_listpack_max:%d ql_compressed:%d "
                 "ql_uncompressed_size:%d" % (n, len(v) / n if n else 0.0, fill,
                                              cfg.get_int("list-compress-depth") != 0, size))
    from frtrio.core import evict

    clock = evict.lru_clock(c.server.now_ms)
    lru = c.db.access_value(key)
    if lru is None:
        lru = clock
    idle = evict.idle_ms(clock, lru) // 1000
    if type(v) is bytes:
        # a string value is an immutable bytes object, replaced on every
        # write; Redis changes an integer in place (INCR keeps the address),
        # so the address shown is the key's: stable while the key lives
        addr = 0x7F0000000000 | (hash(key) & 0xFFFFFFFF) << 4
    else:
        addr = id(c.db.data.get(key))  # (the stored object: a packed one is not v)
    return Status("Value at:0x%x refcount:%d encoding:%s serializedlength:%d lru:%d "
                  "lru_seconds_idle:%d%s" % (addr, refcount(v, cfg), enc, len(body) - 1, lru,
                                             idle, extra))


def _positive(b: bytes) -> int:
    from frtrio.protocol.parser import string2ll

    n = string2ll(b)
    if n is None or n < 0:  # (Redis's getPositiveLong: one message for both)
        raise err("ERR value is out of range, must be positive")
    return n


def _debug_populate(c, argv):
    """DEBUG POPULATE count [prefix] [size]: keys prefix:0.. (default
    "key") holding "value:N" (zero-padded or cut to size), skipping keys
    that exist; like Redis, nothing is propagated."""
    n = _positive(argv[2])
    size = _positive(argv[4]) if len(argv) == 5 else 0
    prefix = argv[3] if len(argv) >= 4 else b"key"
    srv = c.server
    db = c.db
    now = srv.now_ms
    for j in range(n):
        key = (b"%s:%d" % (prefix, j))[:127]  # (Redis formats into 128 bytes)
        if db.lookup(key, now) is not None:
            continue
        val = b"value:%d" % j
        if size:
            val = val[:size].ljust(size, b"\0")
        db.set(key, val)
        srv.touch_key(db, key)
    return OK


_PROTOCOL_TYPES = ("string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|"
                   "true|false")


def _debug_protocol(c, name: bytes):
    """DEBUG PROTOCOL <type>: one reply of each RESP type, as Redis sends it
    in the client's protocol (RESP2 falls back as Redis does)."""
    r3 = c.resp == 3
    ints = b":0\r\n:1\r\n:2\r\n"
    if name == b"string":
        return Raw(b"$11\r\nHello World\r\n")
    if name == b"integer":
        return Raw(b":12345\r\n")
    if name == b"double":
        return Raw(b",3.141\r\n" if r3 else b"$5\r\n3.141\r\n")
    if name == b"bignum":
        n = b"1234567999999999999999999999999999999"
        return Raw(b"(" + n + b"\r\n" if r3 else b"$37\r\n" + n + b"\r\n")
    if name == b"null":
        return Raw(b"_\r\n" if r3 else b"$-1\r\n")
    if name == b"array":
        return Raw(b"*3\r\n" + ints)
    if name == b"set":
        return Raw((b"~3\r\n" if r3 else b"*3\r\n") + ints)
    if name == b"map":
        t, f = (b"#t\r\n", b"#f\r\n") if r3 else (b":1\r\n", b":0\r\n")
        return Raw((b"%3\r\n" if r3 else b"*6\r\n") + b":0\r\n" + f + b":1\r\n" + t
                   + b":2\r\n" + f)
    if name == b"attrib":
        real = b"$39\r\nSome real reply following the attribute\r\n"
        if r3:
            return Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n" + real)
        return Raw(real)
    if name == b"push":
        if not r3:
            raise err("ERR RESP2 is not supported by this command")
        return Raw(b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n"
                   b"$40\r\nSome real reply following the push reply\r\n")
    if name == b"true":
        return Raw(b"#t\r\n" if r3 else b":1\r\n")
    if name == b"false":
        return Raw(b"#f\r\n" if r3 else b":0\r\n")
    if name == b"verbatim":
        return Raw(b"=29\r\ntxt:This is a verbatim\nstring\r\n" if r3
                   else b"$25\r\nThis is a verbatim\nstring\r\n")
    raise err("ERR Wrong protocol type name. Please use one of the following: "
              + _PROTOCOL_TYPES)
