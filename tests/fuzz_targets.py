"""Fuzz targets for ``scripts/fuzz`` and ``tests/test_fuzz.py``.

Each target is a class with ``seeds()`` (real inputs to start mutating from)
and ``run(data)`` that feeds one input to the code under test and raises
``FuzzFinding`` (or any other exception) when a property fails. Expected
rejections (a protocol error, ``-ERR Bad data format``, a rejected bus packet)
are not findings; an unexpected exception, a wrong round trip, a state change
from a rejected bus packet, or an ``-ERR internal error`` reply are.

The mutation engine here (``Mutator``) is deterministic for a given seed, so
``scripts/fuzz --target T --seed S --inputs N`` reproduces a campaign.
"""

from __future__ import annotations

import glob
import math
import os
import random
import struct

import frtrio.commands  # noqa: F401  (registers the command table)
from frtrio.cluster import bus_codec as bc
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
    UPDATE,
)
from frtrio.protocol import parser as pp
from frtrio.protocol import reply as rp
from frtrio.store import crc64, listpack, rdb, rdb_format, rdb_strings, ziplist, zipmap

HERE = os.path.dirname(os.path.abspath(__file__))


class FuzzFinding(AssertionError):
    """A property of the target failed for this input."""


# --- the mutation engine ------------------------------------------------------------

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
                b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x01", b"\xfe", b"\x40", b"\xc0",
                b"\xc3", b"\x81", b"-1", b"0", b"\r\n", b"\n", b"*", b"$", b"18446744073709551615",
                b"9223372036854775807", b"-9223372036854775808", b"4294967296", b" ", b'"', b"'",
                b"\\x", b"\\"]


class Mutator:
    def __init__(self, seeds: list[bytes], seed: int = 0, max_len: int = 1 << 16):
        self.seeds = [bytes(s) for s in seeds] or [b""]
        self.rng = random.Random(seed)
        self.max_len = max_len

    def next(self) -> bytes:
        rng = self.rng
        data = bytearray(rng.choice(self.seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(10)
            n = len(data)
            if op == 0 and n:  # flip a bit
                i = rng.randrange(n)
                data[i] ^= 1 << rng.randrange(8)
            elif op == 1 and n:  # set a byte
                data[rng.randrange(n)] = rng.randrange(256)
            elif op == 2:  # insert random bytes
                i = rng.randint(0, n)
                data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 3 and n:  # delete a range
                i = rng.randrange(n)
                del data[i : i + rng.randint(1, 16)]
            elif op == 4 and n:  # duplicate a range
                i = rng.randrange(n)
                j = min(n, i + rng.randint(1, 32))
                k = rng.randint(0, n)
                data[k:k] = data[i:j]
            elif op == 5:  # an interesting token
                tok = rng.choice(_INTERESTING)
                i = rng.randint(0, n)
                if rng.random() < 0.5:
                    data[i:i] = tok
                else:
                    data[i : i + len(tok)] = tok
            elif op == 6 and n:  # truncate
                del data[rng.randrange(n) :]
            elif op == 7:  # splice with another seed
                other = rng.choice(self.seeds)
                if other:
                    i = rng.randint(0, n)
                    j = rng.randrange(len(other))
                    data[i:] = other[j:]
            elif op == 8 and n >= 2:  # overwrite a 16/32-bit field with an interesting value
                i = rng.randrange(n - 1)
                w = rng.choice((2, 4))
                v = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                rng.randrange(1 << 32)))
                data[i : i + w] = (v & ((1 << (8 * w)) - 1)).to_bytes(w, rng.choice(("big", "little")))
            elif op == 9 and n:  # an ASCII digit change (lengths in text protocols)
                i = rng.randrange(n)
                data[i] = rng.choice(b"0123456789-+")
        if len(data) > self.max_len:
            del data[self.max_len :]
        return bytes(data)


# --- RESP request parser ------------------------------------------------------------


class ParserTarget:
    """The request parser, fed in chunks; the hiredis fast path and the
    pure-Python path must give the same commands and the same error."""

    name = "parser"

    def seeds(self) -> list[bytes]:
        return [
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
            b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
            b"PING\r\nSET a \"b c\"\r\nGET 'x y'\r\n",
            b"set k \"\\x41\\n\"\r\n",
            b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
            b"*0\r\n*-1\r\n\r\n\n",
            b"*1\r\n$10\r\n0123456789\r\n" * 3,
            b"*2\r\n$3\r\nGET\r\n$-1\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + b"x" * 100 + b"\r\n",
        ]

    def _run(self, data: bytes, fast: bool, cuts: list[int], max_bulk: int):
        p = pp.RequestParser(max_bulk_len=max_bulk, fast=fast)
        out: list = []
        prev = 0
        err = None
        for c in cuts + [len(data)]:
            if c < prev:
                continue
            p.feed(data[prev:c])
            prev = c
            err = p.parse(out)
            if err is not None:
                break
        return [list(map(bytes, x)) for x in out], (err.reply_text if err is not None else None)

    def run(self, data: bytes) -> None:
        h = (data[0] if data else 0)
        cuts = sorted({(h * 7 + i * 13) % (len(data) + 1) for i in range(h % 4)})
        max_bulk = 512 * 1024 * 1024 if h & 0x10 else 64
        a = self._run(data, True, cuts, max_bulk)
        b = self._run(data, False, cuts, max_bulk)
        if a != b:
            raise FuzzFinding("fast and slow parser disagree: %r vs %r" % (a, b))


# --- reply encoder round trip --------------------------------------------------------


class _Src:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def byte(self) -> int:
        if self.i >= len(self.d):
            return 0
        self.i += 1
        return self.d[self.i - 1]

    def take(self, n: int) -> bytes:
        b = self.d[self.i : self.i + n]
        self.i += n
        return b


def _build(src: _Src, depth: int):
    """A reply value from fuzz bytes, and what hiredis must decode it to
    (RESP2, RESP3)."""
    op = src.byte() % 14
    if depth > 6 and op >= 6:
        op = 0
    if op == 0:
        b = src.take(src.byte() % 40)
        return b, b, b
    if op == 1:
        v = int.from_bytes(src.take(8).ljust(8, b"\0"), "little", signed=True)
        return v, v, v
    if op == 2:
        s = bytes(x for x in src.take(src.byte() % 20) if x not in (13, 10)).decode("latin-1")
        return rp.Status(s), s.encode("latin-1"), s.encode("latin-1")
    if op == 3:
        s = src.take(src.byte() % 30).decode("latin-1")
        msg = "ERR " + s
        clean = rp._clean_error(msg).decode("utf-8", "replace")  # hiredis decodes errors as UTF-8
        return rp.ErrorReply(msg), ("error", clean), ("error", clean)
    if op == 4:
        return None, None, None
    if op == 5:
        x = struct.unpack("<d", src.take(8).ljust(8, b"\0"))[0]
        d = rp.format_double(x)
        return rp.Double(x), d, ("double", x)
    if op == 6:
        v = bool(src.byte() & 1)
        return rp.Bool(v), int(v), v
    if op == 7:
        b = src.take(src.byte() % 20)
        return rp.Verbatim(b), b, b
    if op == 8:
        return rp.NullArray, None, None
    n = src.byte() % 5
    kids = [_build(src, depth + 1) for _ in range(n)]
    if op in (9, 10):
        return [k[0] for k in kids], [k[1] for k in kids], [k[2] for k in kids]
    if op == 11:
        return rp.SetReply(k[0] for k in kids), [k[1] for k in kids], [k[2] for k in kids]
    if op == 12:
        return rp.Push(k[0] for k in kids), [k[1] for k in kids], [k[2] for k in kids]
    # a map with bulk keys (what Redis sends)
    pairs = []
    e2 = []
    e3 = {}
    for i, k in enumerate(kids):
        key = b"%d:" % i + src.take(src.byte() % 8)  # unique keys, as Redis sends
        pairs.append((key, k[0]))
        e2 += [key, k[1]]
        e3[key] = k[2]
    return rp.Map(pairs), e2, e3


def _norm(x):
    """hiredis output in the shape of the expected value."""
    import hiredis

    if isinstance(x, hiredis.ReplyError):
        return ("error", str(x))
    if isinstance(x, list):
        return [_norm(y) for y in x]
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    return x


def _same(got, exp) -> bool:
    if isinstance(exp, tuple) and exp and exp[0] == "double":
        return isinstance(got, float) and (got == exp[1] or (math.isnan(got) and math.isnan(exp[1])))
    if isinstance(exp, list):
        return isinstance(got, list) and len(got) == len(exp) and all(map(_same, got, exp))
    if isinstance(exp, dict):
        return (isinstance(got, dict) and list(got) == list(exp)
                and all(_same(got[k], exp[k]) for k in exp))
    return got == exp and type(got) is type(exp)


class ReplyTarget:
    """Encode a generated reply in RESP2 and RESP3; hiredis must read back
    exactly one reply equal to what was encoded, with nothing left over."""

    name = "reply"

    def seeds(self) -> list[bytes]:
        rng = random.Random(7)
        return [bytes(rng.randrange(256) for _ in range(n)) for n in (4, 16, 64, 256)] + [
            b"\x09\x03\x00\x05k\x01\x02\x05abcde", b"\x0d\x02\x00\x01a\x05" + b"\x00" * 8 + b"\x01b"]

    def run(self, data: bytes) -> None:
        import hiredis

        src = _Src(data)
        v, e2, e3 = _build(src, 0)
        for resp3, exp in ((False, e2), (True, e3)):
            wire = rp.encode_one(v, resp3)
            r = hiredis.Reader()
            r.feed(wire)
            got = _norm(r.gets())
            if r.gets() is not False:
                raise FuzzFinding("bytes left after one reply: %r" % wire)
            if not _same(got, exp):
                raise FuzzFinding("RESP%d round trip: %r decoded as %r, expected %r"
                                  % (3 if resp3 else 2, wire, got, exp))


# --- cluster bus codec + bus core ----------------------------------------------------


def _nid(c: str) -> str:
    return c * 40


def bus_seed_messages() -> list[bytes]:
    out = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(HERE, "fixtures", "bus", "*.bin")))]
    msgs = []
    for t in (PING, PONG, MEET):
        m = bc.Message(t, sender=_nid("a"), port=7000, cport=17000, flags=1, current_epoch=5,
                       config_epoch=3, offset=99, myip="127.0.0.1", state=0)
        m.gossip = [bc.Gossip(_nid("b"), 1, 2, "127.0.0.1", 7001, 17001, 1, 0, 0),
                    bc.Gossip(_nid("c"), 0, 1795897748, "127.0.0.1", 7002, 17002, 2, 0, 0)]
        m.extensions = [bc.hostname_extension("host-1.example")]
        msgs.append(m)
    msgs.append(bc.Message(FAIL, sender=_nid("a"), fail_node=_nid("c")))
    msgs.append(bc.Message(PUBLISH, sender=_nid("a"), channel=b"chanA", message=b"hello-world"))
    msgs.append(bc.Message(PUBLISHSHARD, sender=_nid("a"), channel=b"x", message=b""))
    msgs.append(bc.Message(FAILOVER_AUTH_REQUEST, sender=_nid("a"), slaveof=_nid("d"), mflags=bc.MF_FORCEACK))
    msgs.append(bc.Message(FAILOVER_AUTH_ACK, sender=_nid("a")))
    msgs.append(bc.Message(MFSTART, sender=_nid("a")))
    bm = bytearray(2048)
    bm[0] = 0xFF
    msgs.append(bc.Message(UPDATE, sender=_nid("a"), update_epoch=7, update_node=_nid("b"), update_slots=bytes(bm)))
    msgs.append(bc.Message(MODULE, sender=_nid("a"), module_id=b"\x01\x02\x03\x04\x05\x06\x07\x08",
                           module_type=3, module_payload=b"payload"))
    return out + [bc.encode(m) for m in msgs]


class FakeLink:
    def __init__(self, node=None, inbound=True):
        self.node = node
        self.inbound = inbound
        self.ctime = 0
        self.local_ip = "127.0.0.1"
        self.peer_ip = "127.0.0.1"
        self.closed = False


def make_bus(my="b", others=("a", "c"), mode="strict"):
    """A bus core of node ``my`` that knows masters ``others`` (with links)."""
    from frtrio.cluster.core import ClusterCore
    from frtrio.cluster.gossip import BusCore
    from frtrio.cluster.state import ClusterNode, ClusterState
    from frtrio.config import Config
    from frtrio.core.engine import Server

    cfg = Config()
    cfg.values["cluster-enabled"] = "yes"
    cfg.values["cluster-node-timeout"] = "3000"
    srv = Server(cfg, random.Random(1))
    me = ClusterNode(_nid(my), ("myself", "master"))
    me.ip, me.port, me.cport = "127.0.0.1", 7000, 17000
    state = ClusterState(me)
    core = ClusterCore(srv, state)
    srv.cluster = core
    bus = BusCore(core)
    core.bus_core = bus
    names = [my] + list(others)
    per = 16384 // len(names)
    for i, name in enumerate(names):
        n = me if name == my else ClusterNode(_nid(name), ("master",))
        if n is not me:
            n.ip, n.port, n.cport = "127.0.0.1", 7001 + i, 17001 + i
            n.link = FakeLink(n, inbound=False)
            state.add_node(n)
        n.config_epoch = i + 1
        hi = 16383 if i == len(names) - 1 else (i + 1) * per - 1
        state.assign_slots(range(i * per, hi + 1), n)
    state.current_epoch = len(names)
    state.state_ok = True
    state.size = len(names)
    return srv, core, bus


def bus_digest(core) -> str:
    st = core.state
    parts = [st.config_text(), str(st.current_epoch), str(st.last_vote_epoch), str(st.state_ok),
             str(sorted(st.stats_received.items()) if False else "")]
    for n in st.nodes.values():
        parts.append("%s %s %d %d %d %s %s %s %d" % (
            n.id, ",".join(n.flags), n.ping_sent, n.pong_received, n.config_epoch, n.ip,
            sorted(n.fail_reports.items()), n.hostname, getattr(n, "data_received", 0)))
    return "\n".join(parts)


class BusTarget:
    """Decode a packet. Accepted: encode(decode(x)) decodes to the same
    message and the bus core handles it without an exception. Rejected: the
    bus core, given the raw packet, returns no effects and its state digest
    is unchanged (C10 / I09)."""

    name = "bus"

    def __init__(self):
        self.pristine = make_bus()
        self.before = bus_digest(self.pristine[1])
        self.scratch = None
        self.scratch_uses = 0
        self.rejected = 0
        self.accepted = 0
        self.state_changes = 0

    def seeds(self) -> list[bytes]:
        return bus_seed_messages()

    def run(self, data: bytes) -> None:
        try:
            m = bc.decode(data)
        except bc.PacketRejected:
            self.rejected += 1
            srv, core, bus = self.pristine
            effects, close = bus.receive_raw(FakeLink(None, inbound=True), data, 10_000)
            after = bus_digest(core)
            if effects or after != self.before:
                self.state_changes += 1
                self.pristine = make_bus()
                self.before = bus_digest(self.pristine[1])
                raise FuzzFinding("a rejected packet changed state (effects %r)" % (effects,))
            return
        self.accepted += 1
        again = bc.decode(bc.encode(m))
        if again != m:
            raise FuzzFinding("re-encoded packet decodes differently: %r vs %r" % (m, again))
        if self.scratch is None or self.scratch_uses > 2000:
            self.scratch = make_bus()
            self.scratch_uses = 0
        self.scratch_uses += 1
        srv, core, bus = self.scratch
        # from a known peer's link and from an unknown inbound link
        peer = core.state.nodes.get(_nid("a"))
        bus.handle(FakeLink(peer, inbound=False), m, 20_000)
        bus.handle(FakeLink(None, inbound=True), m, 20_000)


# --- RESTORE / DUMP payloads ---------------------------------------------------------


def _dump_seed_bodies() -> list[bytes]:
    from frtrio.store.db import HashValue, ListValue, SetValue

    out = []
    bodies = []
    vals = [b"hello", b"12345", b"-7", b"x" * 100, b"ab" * 40, b"-2147483648", b"70000"]
    vals.append(ListValue([b"a", b"bb", b"123", b"-5", b"x" * 70, b"9999999999"]))
    vals.append(ListValue([b"y" * 300] * 3))
    vals.append(SetValue.fromkeys([b"1", b"2", b"300", b"70000", b"-9"]))
    vals.append(SetValue.fromkeys([b"a", b"b", b"c"]))
    h = HashValue()
    h[b"f1"] = b"v1"
    h[b"f2"] = b"22"
    vals.append(h)
    big = HashValue()
    for i in range(200):
        big[b"field%d" % i] = b"%d" % i
    vals.append(big)
    for v in vals:
        bodies.append(rdb.encode_object(v, rdb.DEFAULT_LIMITS))
    # sorted sets through the engine (its own value type)
    from frtrio.config import Config
    from frtrio.core.engine import Server

    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    srv.execute(c, [b"ZADD", b"z1", b"1", b"a", b"2.5", b"b", b"-inf", b"c"])
    srv.execute(c, [b"ZADD", b"z2"] + [x for i in range(200) for x in (b"%d" % i, b"m%d" % i)])
    for k in (b"z1", b"z2"):
        v = srv.dbs[0].lookup(k, 0)
        bodies.append(rdb.encode_object(v, rdb.DEFAULT_LIMITS))
    # legacy encodings Redis 7.0 still loads: ziplist list/hash/zset, zipmap, plain list/set/zset
    bodies.append(bytes([rdb_format.T_LIST_ZIPLIST]) + rdb_strings.enc_string(ziplist.zl_build([b"a", b"12", b"xyz"]), False))
    bodies.append(bytes([rdb_format.T_HASH_ZIPLIST]) + rdb_strings.enc_string(ziplist.zl_build([b"f", b"v", b"g", b"7"]), False))
    bodies.append(bytes([rdb_format.T_ZSET_ZIPLIST]) + rdb_strings.enc_string(ziplist.zl_build([b"m", b"1.5", b"n", b"2"]), False))
    bodies.append(bytes([rdb_format.T_HASH_ZIPMAP]) + rdb_strings.enc_string(zipmap.zipmap_build([(b"f", b"v"), (b"g", b"w")]), False))
    bodies.append(bytes([rdb_format.T_LIST]) + rdb_strings.enc_len(2) + rdb_strings.enc_string(b"a") + rdb_strings.enc_string(b"b"))
    bodies.append(bytes([rdb_format.T_SET]) + rdb_strings.enc_len(2) + rdb_strings.enc_string(b"a") + rdb_strings.enc_string(b"b"))
    bodies.append(bytes([rdb_format.T_ZSET]) + rdb_strings.enc_len(1) + rdb_strings.enc_string(b"a") + b"\x031.5")
    bodies.append(bytes([rdb_format.T_ZSET_2]) + rdb_strings.enc_len(1) + rdb_strings.enc_string(b"a") + rdb_strings.enc_binary_double(2.0))
    bodies.append(bytes([rdb_format.T_HASH]) + rdb_strings.enc_len(1) + rdb_strings.enc_string(b"f") + rdb_strings.enc_string(b"v"))
    ql = bytes([rdb_format.T_LIST_QUICKLIST_2]) + rdb_strings.enc_len(2) + rdb_strings.enc_len(2) + rdb_strings.enc_string(
        listpack.lp_build([b"a", b"1"]), False) + rdb_strings.enc_len(1) + rdb_strings.enc_string(b"plain")
    bodies.append(ql)
    bodies.append(bytes([rdb_format.T_LIST_QUICKLIST]) + rdb_strings.enc_len(1) + rdb_strings.enc_string(ziplist.zl_build([b"q", b"5"]), False))
    real = os.path.join(HERE, "fixtures", "dump")
    for p in sorted(glob.glob(os.path.join(real, "*.bin"))):
        body = open(p, "rb").read()
        bodies.append(body[:-10])
    # the payloads of redis's corrupt-dump.tcl (each aimed at a weak spot)
    with open(os.path.join(real, "redis70-corrupt-dump.txt")) as f:
        for line in f:
            if line[:1].isdigit():
                bodies.append(bytes.fromhex(line.split()[1])[:-10])
    for b in bodies:
        if b not in out:
            out.append(b)
    return out


def with_footer(body: bytes) -> bytes:
    body = body + rdb_format.RDB_VERSION.to_bytes(2, "little")
    return body + crc64.crc64(body).to_bytes(8, "little")


_EXERCISE = {
    b"string": [[b"GET", b"k"], [b"STRLEN", b"k"], [b"GETRANGE", b"k", b"-3", b"-1"], [b"APPEND", b"k", b"x"],
                [b"INCR", b"k"], [b"BITCOUNT", b"k"], [b"BITPOS", b"k", b"1"], [b"PFCOUNT", b"k"],
                [b"PFADD", b"k", b"x", b"y"], [b"SETBIT", b"k", b"77", b"1"]],
    b"list": [[b"LRANGE", b"k", b"0", b"-1"], [b"LINDEX", b"k", b"-1"], [b"LPOS", b"k", b"a"],
              [b"LINSERT", b"k", b"BEFORE", b"a", b"b"], [b"RPUSH", b"k", b"x"], [b"LPOP", b"k"],
              [b"LSET", b"k", b"0", b"y"], [b"LTRIM", b"k", b"1", b"-2"]],
    b"set": [[b"SMEMBERS", b"k"], [b"SISMEMBER", b"k", b"1"], [b"SRANDMEMBER", b"k", b"-5"],
             [b"SADD", b"k", b"x", b"7"], [b"SINTERCARD", b"1", b"k"], [b"SPOP", b"k"], [b"SREM", b"k", b"1"]],
    b"hash": [[b"HGETALL", b"k"], [b"HRANDFIELD", b"k", b"-5", b"WITHVALUES"], [b"HSCAN", b"k", b"0"],
              [b"HSET", b"k", b"f", b"v"], [b"HINCRBY", b"k", b"f2", b"1"], [b"HDEL", b"k", b"f1"]],
    b"zset": [[b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"], [b"ZRANGEBYSCORE", b"k", b"-inf", b"+inf"],
              [b"ZRANGEBYLEX", b"k", b"-", b"+"], [b"ZRANK", b"k", b"a"], [b"ZRANDMEMBER", b"k", b"-5"],
              [b"ZADD", b"k", b"1.5", b"x"], [b"ZINCRBY", b"k", b"1", b"a"], [b"ZREMRANGEBYRANK", b"k", b"0", b"0"],
              [b"GEOPOS", b"k", b"a"], [b"GEORADIUS", b"k", b"0", b"0", b"5000", b"km", b"WITHCOORD"],
              [b"ZPOPMAX", b"k"]],
    b"stream": [[b"XLEN", b"k"], [b"XRANGE", b"k", b"-", b"+"], [b"XREVRANGE", b"k", b"+", b"-", b"COUNT", b"3"],
                [b"XINFO", b"STREAM", b"k"], [b"XINFO", b"STREAM", b"k", b"FULL"], [b"XINFO", b"GROUPS", b"k"],
                [b"XREAD", b"STREAMS", b"k", b"0"], [b"XADD", b"k", b"*", b"f", b"v"],
                [b"XADD", b"k", b"MAXLEN", b"~", b"5", b"*", b"g", b"w"], [b"XTRIM", b"k", b"MINID", b"2"],
                [b"XDEL", b"k", b"1-1"], [b"XSETID", b"k", b"99999999999999-0"]],
}
_EXERCISE_ANY = [[b"TYPE", b"k"], [b"OBJECT", b"ENCODING", b"k"], [b"MEMORY", b"USAGE", b"k"],
                 [b"COPY", b"k", b"k3"], [b"DUMP", b"k3"], [b"SORT", b"k3", b"ALPHA", b"LIMIT", b"0", b"5"]]


class DumpTarget:
    """RESTORE a mutated payload (the CRC fixed up so the body is what is
    tested) on an in-process server: the reply is +OK or exactly
    ``-ERR Bad data format``. After +OK the key DUMPs and RESTOREs again to
    an equal value, and reading and writing it with the commands of its type
    never ends in an internal error; after an error no key exists."""

    name = "dump"

    def __init__(self):
        from frtrio.config import Config
        from frtrio.core.engine import Server

        self.srv = Server(Config(), random.Random(1))
        self.c = self.srv.new_client()
        self.ok = 0
        self.bad = 0

    def seeds(self) -> list[bytes]:
        return _dump_seed_bodies()

    def _cmd(self, *argv) -> bytes:
        self.srv.execute(self.c, list(argv))
        return self.c.take_output()

    def _internal_errors(self) -> int:
        return self.srv.stats["frtrio_internal_errors"]

    def run(self, data: bytes) -> None:
        payload = with_footer(data)
        self._cmd(b"FLUSHALL")
        ie = self._internal_errors()
        r = self._cmd(b"RESTORE", b"k", b"0", payload, b"REPLACE")
        if r == b"+OK\r\n":
            self.ok += 1
            d = self._cmd(b"DUMP", b"k")
            if not d.startswith(b"$"):
                raise FuzzFinding("DUMP after RESTORE: %r" % d)
            body = d[d.index(b"\r\n") + 2 : -2]
            v1 = self.srv.dbs[0].lookup(b"k", 0)
            r2 = self._cmd(b"RESTORE", b"k2", b"0", body, b"REPLACE")
            if r2 != b"+OK\r\n":
                raise FuzzFinding("re-RESTORE of our own DUMP: %r" % r2)
            v2 = self.srv.dbs[0].lookup(b"k2", 0)
            if _value_items(v1) != _value_items(v2):
                raise FuzzFinding("DUMP/RESTORE changed the value")
            tn = b"string" if type(v1) is bytes else v1.type_name
            if tn == b"stream":
                for g in list(v1.groups)[:3]:
                    self._cmd(b"XINFO", b"CONSUMERS", b"k", g)
                    self._cmd(b"XPENDING", b"k", g, b"-", b"+", b"10")
                    self._cmd(b"XREADGROUP", b"GROUP", g, b"c1", b"STREAMS", b"k", b">")
                    self._cmd(b"XAUTOCLAIM", b"k", g, b"c2", b"0", b"0-0")
                    self._cmd(b"XCLAIM", b"k", g, b"c3", b"0", b"1-1", b"0-1")
            for argv in _EXERCISE_ANY + _EXERCISE[tn]:
                self._cmd(*argv)
            if self._internal_errors() != ie:
                raise FuzzFinding("an internal error while using the restored %s" % tn.decode())
            return
        if r != b"-ERR Bad data format\r\n":
            raise FuzzFinding("RESTORE replied %r" % r[:200])
        self.bad += 1
        if self.srv.dbs[0].lookup(b"k", 0) is not None:
            raise FuzzFinding("a refused RESTORE left a key")


def _value_items(v):
    if type(v) is bytes:
        return v
    tn = v.type_name
    if tn == b"zset":
        return sorted(rdb._zset_pairs(v))
    if tn == b"hash":
        return sorted(v.items())
    if tn == b"set":
        return sorted(v)
    if tn == b"stream":
        groups = []
        for name in sorted(v.groups):
            g = v.groups[name]
            pel = [(i, n.delivery_time, n.delivery_count, n.consumer.name if n.consumer else None)
                   for i, n in g.sorted_pel()]
            cons = [(c.name, c.seen_time, sorted(c.pel)) for c in g.sorted_consumers()]
            groups.append((name, g.last_id, g.entries_read, pel, cons))
        return (list(v.range(0, (1 << 128) - 1)), v.length, v.last_id, v.first_id, v.max_deleted,
                v.entries_added, groups)
    return list(v)


# --- nodes.conf, AOF/manifest, config file -----------------------------------------


class NodesConfTarget:
    """nodes.conf parsing: a NodesConfError or a state that renders and
    parses back to the same text."""

    name = "nodes_conf"

    def seeds(self) -> list[bytes]:
        a, b, c = _nid("a"), _nid("b"), _nid("c")
        return [
            ("%s 127.0.0.1:7000@17000,host-a myself,master - 0 0 1 connected 0-5460 [5461->-%s]\n"
             "%s 127.0.0.1:7001@17001 master - 0 1700000000000 2 connected 5461-10922 [5462-<-%s]\n"
             "%s 127.0.0.1:7002@17002 slave %s 0 1700000000000 2 connected\n"
             "vars currentEpoch 3 lastVoteEpoch 2\n" % (a, b, b, a, c, b)).encode(),
            ("%s :0@0 myself,master - 0 0 0 connected\nvars currentEpoch 0 lastVoteEpoch 0\n" % a).encode(),
            ("%s 10.0.0.1:6379@16379,,shard-id=abc myself,slave %s 0 0 5 connected\n"
             "%s 10.0.0.2:6379@16379 master,fail - 1 2 5 disconnected 0-16383\n" % (a, b, b)).encode(),
        ]

    def run(self, data: bytes) -> None:
        from frtrio.cluster import nodes_conf

        text = data.decode("utf-8", "surrogateescape")
        try:
            st = nodes_conf.parse(text, 1000)
        except nodes_conf.NodesConfError:
            return
        out = nodes_conf.render(st)
        st2 = nodes_conf.parse(out, 1000)
        if nodes_conf.render(st2) != out:
            raise FuzzFinding("nodes.conf render/parse is not stable")


class AofTarget:
    """AOF command stream and manifest parsing: clean errors only, and
    commands parsed from a stream re-encode to the bytes they came from."""

    name = "aof"

    def seeds(self) -> list[bytes]:
        from frtrio.persist.aof_format import encode_command

        return [
            encode_command([b"SELECT", b"0"]) + encode_command([b"SET", b"k", b"v"]) + b"#TS:1700000000\r\n"
            + encode_command([b"DEL", b"k"]),
            b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
            b"file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.base.aof seq 1 type h\n"
            b"file appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.4.incr.aof seq 4 type i\n",
            b"file \"name with space.aof\" seq 1 type b\n",
        ]

    def run(self, data: bytes) -> None:
        from frtrio.persist import aof_format, aof_manifest

        cmds = []
        try:
            prev = 0
            for argv, end in aof_format.parse_aof(data):
                if not prev < end <= len(data):
                    raise FuzzFinding("AOF parser went back or past the end: %d -> %d" % (prev, end))
                cmds.append(argv)
                prev = end
        except (aof_format.Truncated, aof_format.BadFormat):
            pass
        # what was read (annotations and non-canonical headers such as "*02"
        # aside) written back canonically reads back the same
        canon = b"".join(aof_format.encode_command(argv) for argv in cmds)
        again = [argv for argv, _ in aof_format.parse_aof(canon)]
        if again != cmds:
            raise FuzzFinding("AOF commands do not read back after rewriting: %r vs %r" % (cmds[:3], again[:3]))
        try:
            m = aof_manifest.Manifest.parse(data, "appendonly.aof.manifest")
        except aof_format.AOFLoadError:
            return
        again = aof_manifest.Manifest.parse(m.render(), "appendonly.aof.manifest")
        if again.render() != m.render():
            raise FuzzFinding("manifest render/parse is not stable")


class ConfigTarget:
    """The config file loader: FatalConfig / LoadAbort or a loaded config."""

    name = "config"

    def __init__(self):
        from frtrio.config import Host

        class _Host(Host):
            def read_config_file(self, path):
                from frtrio.config import LoadAbort

                raise LoadAbort("no include files in the fuzzer")

            def glob(self, pattern):
                return []

            def chdir(self, path):
                raise OSError(2, "No such file or directory")

            def getcwd(self):
                return "/"

            def check_logfile(self, path):
                raise OSError(2, "No such file or directory")

        self.host = _Host()

    def seeds(self) -> list[bytes]:
        return [
            b"port 7000\ncluster-enabled yes\nmaxmemory 100mb\nsave 900 1 300 10\n",
            b"appendonly yes\nappendfsync everysec\nrename-command FLUSHALL \"\"\n",
            b"client-output-buffer-limit normal 0 0 0\nclient-output-buffer-limit replica 256mb 64mb 60\n",
            b"bind 127.0.0.1 -::1\nnotify-keyspace-events KEA\nuser default on nopass ~* +@all\n",
            b"include /etc/none.conf\nmaxclients 10\nproto-max-bulk-len 1gb\nhz 10\n",
            b"dir /tmp\nlogfile \"\"\nlatency-tracking-info-percentiles 50 99 99.9\noom-score-adj-values 0 200 800\n",
        ]

    def run(self, data: bytes) -> None:
        from frtrio.config import Config, FatalConfig, LoadAbort, load_config_text

        try:
            load_config_text(Config(), data, self.host)
        except (FatalConfig, LoadAbort):
            pass


TARGETS = {
    "parser": ParserTarget,
    "reply": ReplyTarget,
    "bus": BusTarget,
    "dump": DumpTarget,
    "nodes_conf": NodesConfTarget,
    "aof": AofTarget,
    "config": ConfigTarget,
}
CODECS = ("parser", "reply", "bus", "dump")
