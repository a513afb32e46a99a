"""The RDB format's shared vocabulary (pure): the RDB version frtrio writes,
the object type bytes, the special string encodings, quicklist node kinds,
and ``RdbError``, raised by every decoder on bad data."""

from __future__ import annotations

RDB_VERSION = 10

# object types
T_STRING = 0
T_LIST = 1
T_SET = 2
T_ZSET = 3
T_HASH = 4
T_ZSET_2 = 5
T_MODULE = 6
T_MODULE_2 = 7
T_HASH_ZIPMAP = 9
T_LIST_ZIPLIST = 10
T_SET_INTSET = 11
T_ZSET_ZIPLIST = 12
T_HASH_ZIPLIST = 13
T_LIST_QUICKLIST = 14
T_STREAM_LISTPACKS = 15
T_HASH_LISTPACK = 16
T_ZSET_LISTPACK = 17
T_LIST_QUICKLIST_2 = 18
T_STREAM_LISTPACKS_2 = 19

# length-prefix special encodings (the low 6 bits after the 11 prefix)
ENC_INT8 = 0
ENC_INT16 = 1
ENC_INT32 = 2
ENC_LZF = 3

QUICKLIST_NODE_PLAIN = 1
QUICKLIST_NODE_PACKED = 2


class RdbError(Exception):
    """The payload is not a valid serialized object ("Bad data format")."""
