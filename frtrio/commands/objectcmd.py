"""OBJECT ENCODING / REFCOUNT / IDLETIME / FREQ / HELP (Redis 7.0 semantics).

frtrio keeps one representation per type, so ENCODING answers the name Redis
7.0 would use for the same content under the current configuration:

* strings: ``int`` (a canonical 64-bit integer of at most 20 characters),
  ``embstr`` (at most 44 bytes), else ``raw``;
* lists: ``quicklist`` (7.0 has no other list encoding);
* sets: ``intset`` (all members integers, at most set-max-intset-entries),
  else ``hashtable``;
* hashes: ``listpack`` (at most hash-max-listpack-entries fields, fields and
  values at most hash-max-listpack-value bytes), else ``hashtable``;
* sorted sets: what ``store/zset.py`` tracks (it applies Redis's conversion
  rules), ``listpack`` or ``skiplist``.

A string modified in place (APPEND, SETRANGE, SETBIT, BITFIELD, BITOP's
destination, PFADD...) is ``raw`` whatever its content until the key is
written otherwise (``Db.mark_raw``), as in Redis. For the other types Redis
decides from history (a hash that once grew past the limits stays
``hashtable`` after shrinking, RESTORE keeps a small hash with long values a
listpack); those cases differ.

REFCOUNT is 2147483647 for the integers 0..9999 Redis shares (unless an LRU or
LFU maxmemory policy with a maxmemory limit forbids sharing), else 1.

IDLETIME and FREQ read the key's 24-bit access data (frtrio/core/evict.py):
the LRU clock of its last access, or its LFU counter decayed to now (FREQ
stores nothing, as Redis). Each is refused under the other kind of policy
with Redis's error. OBJECT itself never touches the key.
"""

from __future__ import annotations

from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.core import evict
from frtrio.protocol.parser import string2ll
from frtrio.protocol.reply import Status
from frtrio.store.db import set_is_ht

SHARED_REFCOUNT = 2147483647
SHARED_INTEGERS = 10000
EMBSTR_LIMIT = 44
LFU_INIT_VAL = 5

_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]

_LFU_NOT_SELECTED = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
    "Please note that when switching between policies at runtime LRU and LFU data "
    "will take some time to adjust."
)
_LFU_SELECTED = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take "
    "some time to adjust."
)


def _int_string(v: bytes) -> int | None:
    return string2ll(v) if len(v) <= 20 else None


def encoding_name(v, cfg, forced: str | None = None) -> str:
    """The OBJECT ENCODING Redis 7.0 reports for this content (``forced``:
    the string's mark in ``Db.str_enc``, if any)."""
    if type(v) is bytes:
        if forced is not None:
            if forced == "raw" or len(v) > EMBSTR_LIMIT:
                return "raw"
            return "embstr"
        if _int_string(v) is not None:
            return "int"
        return "embstr" if len(v) <= EMBSTR_LIMIT else "raw"
    tn = v.type_name
    if tn == b"stream":
        return "stream"
    if tn == b"list":
        return "quicklist"
    if tn == b"set":
        if set_is_ht(v):
            return "hashtable"
        if len(v) <= cfg.get_int("set-max-intset-entries"):
            for m in v:
                if string2ll(m) is None:
                    return "hashtable"
            return "intset"
        return "hashtable"
    if tn == b"hash":
        if len(v) > cfg.get_int("hash-max-listpack-entries"):
            return "hashtable"
        lim = cfg.get_int("hash-max-listpack-value")
        for f, x in v.items():
            if len(f) > lim or len(x) > lim:
                return "hashtable"
        return "listpack"
    if tn == b"zset":
        lp = getattr(v, "listpack", None)  # store/zset.py tracks Redis's choice
        if lp is not None:
            return "listpack" if lp else "skiplist"
        if len(v) > cfg.get_int("zset-max-listpack-entries"):
            return "skiplist"
        lim = cfg.get_int("zset-max-listpack-value")
        for m, _ in v.items():
            if len(m) > lim:
                return "skiplist"
        return "listpack"
    return "unknown"


def _lfu_policy(cfg) -> bool:
    return "lfu" in cfg.get("maxmemory-policy")


def _shares_integers(cfg) -> bool:
    if cfg.get_int("maxmemory") == 0:
        return True
    p = cfg.get("maxmemory-policy")
    return not ("lru" in p or "lfu" in p)


def _lookup(c, key: bytes):
    return c.db.peek(key, c.server.now_ms)  # (LOOKUP_NOTOUCH)


@command("object|encoding")
def object_encoding(c, argv):
    v = _lookup(c, argv[2])
    if v is None:
        return None
    return encoding_name(v, c.server.config, c.db.str_enc.get(argv[2])).encode()


def refcount(v, cfg) -> int:
    """Small integers are Redis's shared objects unless an LRU/LFU policy
    needs one object per key."""
    if type(v) is bytes and _shares_integers(cfg):
        n = _int_string(v)
        if n is not None and 0 <= n < SHARED_INTEGERS:
            return SHARED_REFCOUNT
    return 1


@command("object|refcount")
def object_refcount(c, argv):
    v = _lookup(c, argv[2])
    if v is None:
        return None
    return refcount(v, c.server.config)


@command("object|idletime")
def object_idletime(c, argv):
    v = _lookup(c, argv[2])
    if v is None:
        return None
    srv = c.server
    if _lfu_policy(srv.config):
        raise err(_LFU_SELECTED)
    lru = c.db.access_value(argv[2])
    clock = evict.lru_clock(srv.now_ms)
    return evict.idle_ms(clock, clock if lru is None else lru) // 1000


@command("object|freq")
def object_freq(c, argv):
    v = _lookup(c, argv[2])
    if v is None:
        return None
    srv = c.server
    if not _lfu_policy(srv.config):
        raise err(_LFU_NOT_SELECTED)
    val = c.db.access_value(argv[2])
    now_min = evict.lfu_minutes(srv.now_ms)
    if val is None:
        val = evict.lfu_init(now_min)
    return evict.lfu_decr(val, now_min, srv.config.get_int("lfu-decay-time"))


@command("object|help")
def object_help(c, argv):
    return [Status(line) for line in _HELP]
