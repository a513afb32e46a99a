"""Cluster bus packets <-> typed messages (pure), Redis 7.0's wire format.

Every packet is a 2256-byte big-endian header plus a type-specific body
(``spec/cluster-bus.md`` §2-§5). ``decode`` validates before anything else may
look at the packet (contract C10): a packet that fails validation raises
``PacketRejected`` whose ``close_link`` tells the shell whether Redis would
close the connection (bad signature or length < header) or just ignore the
packet. ``encode`` builds byte-exact packets; ``decode(encode(m)) == m`` and
``encode(decode(raw)) == raw`` for any packet Redis sends.
"""

from __future__ import annotations

import struct

from frtrio.core.cnum import cstr
from frtrio.cluster.bus_types import (
    FAIL,
    FAILOVER_AUTH_ACK,
    FAILOVER_AUTH_REQUEST,
    MEET,
    MFSTART,
    MODULE,
    PING,
    PONG,
    PUBLISH,
    PUBLISHSHARD,
    TYPE_NAMES,
    UPDATE,
)

SIG = b"RCmb"
HEADER_LEN = 2256
GOSSIP_LEN = 104
PROTO_VER = 1
BITMAP_LEN = 2048

# node flags (16-bit)
F_MASTER = 1
F_SLAVE = 2
F_PFAIL = 4
F_FAIL = 8
F_MYSELF = 16
F_HANDSHAKE = 32
F_NOADDR = 64
F_MEET = 128
F_MIGRATE_TO = 256
F_NOFAILOVER = 512

# mflags[0]
MF_PAUSED = 1
MF_FORCEACK = 2
MF_EXT_DATA = 4

EXT_HOSTNAME = 0
EXT_INTERNALSECRET = 4  # Redis 8: the cluster-wide secret of internal connections
INTERNALSECRET_LEN = 40

FLAG_NAMES = (
    (F_MASTER, "master"), (F_SLAVE, "slave"), (F_PFAIL, "fail?"), (F_FAIL, "fail"),
    (F_MYSELF, "myself"), (F_HANDSHAKE, "handshake"), (F_NOADDR, "noaddr"),
    (F_MEET, "meet"), (F_MIGRATE_TO, "migrate_to"), (F_NOFAILOVER, "nofailover"),
)

_HDR = struct.Struct(">4sIHHHHQQQ40s2048s40s46sH30sHHHB3s")
assert _HDR.size == HEADER_LEN
_GOSSIP = struct.Struct(">40sII46sHHHHH")
assert _GOSSIP.size == GOSSIP_LEN


class PacketRejected(Exception):
    """A packet that must not change state. ``close_link``: drop the link."""

    def __init__(self, reason: str, close_link: bool = False, type: int = -1):
        super().__init__(reason)
        self.reason = reason
        self.close_link = close_link
        self.type = type


def _cstr(b: bytes) -> str:
    return cstr(b).decode("latin-1")


def _pad(s: str, n: int) -> bytes:
    b = s.encode("latin-1")[:n]
    return b + b"\0" * (n - len(b))


def valid_node_id(b: bytes) -> bool:
    return len(b) == 40 and all(48 <= c <= 57 or 97 <= c <= 122 for c in b)


class Gossip:
    __slots__ = ("node_id", "ping_sent", "pong_received", "ip", "port", "cport", "flags",
                 "pport", "notused")

    def __init__(self, node_id, ping_sent=0, pong_received=0, ip="", port=0, cport=0,
                 flags=0, pport=0, notused=0):
        self.node_id = node_id
        self.ping_sent = ping_sent
        self.pong_received = pong_received
        self.ip = ip
        self.port = port
        self.cport = cport
        self.flags = flags
        self.pport = pport
        self.notused = notused

    def __eq__(self, o):
        return isinstance(o, Gossip) and all(getattr(self, a) == getattr(o, a) for a in self.__slots__)

    def __repr__(self):
        return "Gossip(%s %s:%d@%d flags=%d)" % (self.node_id[:8], self.ip, self.port, self.cport, self.flags)


class Message:
    """A decoded bus packet. Header fields plus the body of its type."""

    __slots__ = (
        "type", "port", "current_epoch", "config_epoch", "offset", "sender", "myslots",
        "slaveof", "myip", "pport", "cport", "flags", "state", "mflags", "notused1",
        "gossip", "extensions", "fail_node", "channel", "message", "update_epoch",
        "update_node", "update_slots", "module_id", "module_type", "module_payload",
        "raw_len", "mflags_rest",
    )

    def __init__(self, type: int, **kw):
        self.type = type
        self.port = 0
        self.current_epoch = 0
        self.config_epoch = 0
        self.offset = 0
        self.sender = "0" * 40
        self.myslots = bytes(BITMAP_LEN)
        self.slaveof = None  # node id or None (all NULs)
        self.myip = ""
        self.pport = 0
        self.cport = 0
        self.flags = 0
        self.state = 0
        self.mflags = 0
        self.mflags_rest = b"\0\0"
        self.notused1 = bytes(30)
        self.gossip: list[Gossip] = []
        self.extensions: list[tuple[int, bytes]] = []  # (type, payload incl. padding)
        self.fail_node = ""
        self.channel = b""
        self.message = b""
        self.update_epoch = 0
        self.update_node = ""
        self.update_slots = bytes(BITMAP_LEN)
        self.module_id = bytes(8)
        self.module_type = 0
        self.module_payload = b""
        self.raw_len = 0
        for k, v in kw.items():
            setattr(self, k, v)

    def hostname(self) -> str | None:
        for t, payload in self.extensions:
            if t == EXT_HOSTNAME:
                return _cstr(payload)
        return None

    def internal_secret(self) -> bytes | None:
        for t, payload in self.extensions:
            if t == EXT_INTERNALSECRET and len(payload) >= INTERNALSECRET_LEN:
                return bytes(payload[:INTERNALSECRET_LEN])
        return None

    def __eq__(self, o):
        if not isinstance(o, Message):
            return False
        return all(getattr(self, a) == getattr(o, a) for a in self.__slots__ if a != "raw_len")

    def __repr__(self):
        return "Message(%s from %s)" % (TYPE_NAMES.get(self.type, self.type), self.sender[:8])


def internal_secret_extension(secret: bytes) -> tuple[int, bytes]:
    return (EXT_INTERNALSECRET, secret + b"\0" * ((8 - len(secret) % 8) % 8))


def hostname_extension(hostname: str) -> tuple[int, bytes]:
    b = hostname.encode("latin-1") + b"\0"
    b += b"\0" * ((8 - len(b) % 8) % 8)
    return (EXT_HOSTNAME, b)


# --- encode -------------------------------------------------------------------


def encode(m: Message) -> bytes:
    t = m.type
    body = b""
    count = 0
    nexts = 0
    mflags = m.mflags
    if t in (PING, PONG, MEET):
        parts = []
        for g in m.gossip:
            parts.append(_GOSSIP.pack(_pad(g.node_id, 40), g.ping_sent, g.pong_received,
                                      _pad(g.ip, 46), g.port, g.cport, g.flags, g.pport, g.notused))
        count = len(m.gossip)
        for et, payload in m.extensions:
            parts.append(struct.pack(">IHH", 8 + len(payload), et, 0) + payload)
        nexts = len(m.extensions)
        if nexts:
            mflags |= MF_EXT_DATA
        body = b"".join(parts)
    elif t == FAIL:
        body = _pad(m.fail_node, 40)
    elif t in (PUBLISH, PUBLISHSHARD):
        body = struct.pack(">II", len(m.channel), len(m.message)) + m.channel + m.message
    elif t == UPDATE:
        body = struct.pack(">Q", m.update_epoch) + _pad(m.update_node, 40) + m.update_slots
    elif t == MODULE:
        body = m.module_id + struct.pack(">IB", len(m.module_payload), m.module_type) + m.module_payload
    totlen = HEADER_LEN + len(body)
    hdr = _HDR.pack(
        SIG, totlen, PROTO_VER, m.port, t, count, m.current_epoch, m.config_epoch, m.offset,
        _pad(m.sender, 40), m.myslots, _pad(m.slaveof, 40) if m.slaveof else bytes(40),
        _pad(m.myip, 46), nexts, m.notused1, m.pport, m.cport, m.flags, m.state,
        bytes([mflags & 0xFF]) + m.mflags_rest,
    )
    return hdr + body


# --- decode -------------------------------------------------------------------


def frame_length(first8: bytes) -> int:
    """The totlen announced by a packet's first 8 bytes; raises
    PacketRejected(close_link=True) on a bad signature or short length."""
    if len(first8) < 8 or first8[:4] != SIG:
        raise PacketRejected("Bad message length or signature received from Cluster bus.",
                             close_link=True)
    totlen = struct.unpack(">I", first8[4:8])[0]
    if totlen < HEADER_LEN:
        raise PacketRejected("Bad message length or signature received from Cluster bus.",
                             close_link=True)
    return totlen


def decode(raw: bytes) -> Message:
    """Validate and decode one whole packet (exactly ``totlen`` bytes)."""
    totlen = frame_length(raw[:8])
    if len(raw) != totlen:
        raise PacketRejected("packet length %d differs from totlen %d" % (len(raw), totlen),
                             close_link=True)
    (sig, _tl, ver, port, t, count, cur, cfg, off, sender, myslots, slaveof, myip, nexts,
     notused1, pport, cport, flags, state, mflags3) = _HDR.unpack_from(raw, 0)
    if ver != PROTO_VER:
        raise PacketRejected("Received packet with unsupported protocol version %d" % ver, type=t)
    name = TYPE_NAMES.get(t)
    mflags = mflags3[0]
    explen = HEADER_LEN
    exts: list[tuple[int, bytes]] = []
    if t in (PING, PONG, MEET):
        if GOSSIP_LEN * count > totlen - HEADER_LEN:
            raise PacketRejected("Received invalid %s packet with gossip count %d that exceeds "
                                 "total packet length" % (name, count), type=t)
        explen += GOSSIP_LEN * count
        if mflags & MF_EXT_DATA:
            pos = explen
            for _ in range(nexts):
                if pos + 8 > totlen:
                    raise PacketRejected("Received invalid %s packet with extension data that "
                                         "exceeds total packet length" % name, type=t)
                elen, etype = struct.unpack_from(">IH", raw, pos)
                if elen < 8 or pos + elen > totlen:
                    raise PacketRejected("Received invalid %s packet with extension data that "
                                         "exceeds total packet length" % name, type=t)
                if elen % 8:
                    raise PacketRejected("Received a %s packet without proper padding (%d bytes)"
                                         % (name, elen), type=t)
                payload = raw[pos + 8 : pos + elen]
                if etype == EXT_HOSTNAME and b"\0" not in payload:
                    raise PacketRejected("Received invalid %s packet with missing null terminator "
                                         "in extension type 0" % name, type=t)
                exts.append((etype, payload))
                pos += elen
                explen += elen
        elif nexts:
            # Redis walks `extensions` even without EXT_DATA; a sender must
            # set both together, so a packet with only the count is invalid
            raise PacketRejected("Received %s packet with extensions but no EXT_DATA flag"
                                 % name, type=t)
    elif t == FAIL:
        explen += 40
    elif t in (PUBLISH, PUBLISHSHARD):
        if totlen < HEADER_LEN + 8:
            raise PacketRejected("Received invalid %s packet of length %d" % (name, totlen), type=t)
        cl, ml = struct.unpack_from(">II", raw, HEADER_LEN)
        explen += 8 + cl + ml
    elif t in (FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK, MFSTART):
        pass
    elif t == UPDATE:
        explen += 8 + 40 + BITMAP_LEN
    elif t == MODULE:
        if totlen < HEADER_LEN + 13:
            raise PacketRejected("Received invalid MODULE packet of length %d" % totlen, type=t)
        (ln,) = struct.unpack_from(">I", raw, HEADER_LEN + 8)
        explen += 13 + ln
    else:
        raise PacketRejected("Received unknown packet type: %d" % t, type=t)
    if totlen != explen:
        raise PacketRejected("Received invalid %s packet of length %d but expected length %d"
                             % (name, totlen, explen), type=t)
    if not valid_node_id(sender):
        raise PacketRejected("Received packet with invalid sender id", type=t)
    m = Message(t)
    m.port, m.current_epoch, m.config_epoch, m.offset = port, cur, cfg, off
    m.sender = sender.decode("latin-1")
    m.myslots = myslots
    m.slaveof = None if slaveof == bytes(40) else slaveof.decode("latin-1")
    m.myip = _cstr(myip)
    m.pport, m.cport, m.flags, m.state = pport, cport, flags, state
    m.mflags = mflags
    m.mflags_rest = mflags3[1:]
    m.notused1 = notused1
    m.raw_len = totlen
    if t in (PING, PONG, MEET):
        pos = HEADER_LEN
        for _ in range(count):
            nid, ps, pr, ip, gport, gcport, gflags, gpport, nu = _GOSSIP.unpack_from(raw, pos)
            m.gossip.append(Gossip(nid.decode("latin-1"), ps, pr, _cstr(ip), gport, gcport,
                                   gflags, gpport, nu))
            pos += GOSSIP_LEN
        m.extensions = exts
        if exts:
            m.mflags &= ~MF_EXT_DATA  # encode() sets it again from the extensions
    elif t == FAIL:
        m.fail_node = raw[HEADER_LEN : HEADER_LEN + 40].decode("latin-1")
    elif t in (PUBLISH, PUBLISHSHARD):
        cl, ml = struct.unpack_from(">II", raw, HEADER_LEN)
        m.channel = raw[HEADER_LEN + 8 : HEADER_LEN + 8 + cl]
        m.message = raw[HEADER_LEN + 8 + cl : HEADER_LEN + 8 + cl + ml]
    elif t == UPDATE:
        (m.update_epoch,) = struct.unpack_from(">Q", raw, HEADER_LEN)
        m.update_node = raw[HEADER_LEN + 8 : HEADER_LEN + 48].decode("latin-1")
        m.update_slots = raw[HEADER_LEN + 48 : HEADER_LEN + 48 + BITMAP_LEN]
    elif t == MODULE:
        m.module_id = raw[HEADER_LEN : HEADER_LEN + 8]
        ln, mt = struct.unpack_from(">IB", raw, HEADER_LEN + 8)
        m.module_type = mt
        m.module_payload = raw[HEADER_LEN + 13 : HEADER_LEN + 13 + ln]
    return m


def flags_to_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES if flags & bit]


def names_to_flags(names) -> int:
    v = 0
    for bit, name in FLAG_NAMES:
        if name in names:
            v |= bit
    return v
