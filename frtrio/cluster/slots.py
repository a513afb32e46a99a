"""Key hash slots (pure).

Redis Cluster maps a key to one of 16384 slots with CRC16 (the XMODEM
variant: polynomial 0x1021, initial value 0) modulo 16384. If the key holds a
``{`` followed later by a ``}`` with at least one byte between them, only the
bytes between the first ``{`` and the first ``}`` after it are hashed.
``binascii.crc_hqx`` with initial value 0 is exactly that CRC.
"""

from __future__ import annotations

from binascii import crc_hqx

CLUSTER_SLOTS = 16384


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that is hashed."""
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            return key[s + 1 : e]
    return key


def key_slot(key: bytes) -> int:
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1 : e]
    return crc_hqx(key, 0) & 16383
