"""Differential tests: a one-node frtrio cluster against redis-server 7.0.15
started with ``--cluster-enabled yes`` (fresh directory each). The same
commands go to both; the reply bytes must be equal once node ids and ports
are replaced by placeholders (lengths of bulk strings are recomputed, so
ports of different widths compare equal).

Rows: C01 (CLUSTER subcommands and error texts), C03/C04 (routing outcomes
and redirect bytes: MOVED / ASK / TRYAGAIN / CROSSSLOT / CLUSTERDOWN), C05
(BLPOP released with MOVED / CLUSTERDOWN, shard subscribers dropped with
their slot), C06 (INFO / NODES / SLOTS / SHARDS in RESP2 and RESP3), C07
(ASKING / READONLY / READWRITE replies and effect).

MOVED and ASK need a second master: ``TwoPair`` starts both servers from a
nodes.conf naming one (B) at a port nobody listens on. (Binding slots to
the handshake node a ``CLUSTER MEET`` leaves behind would be simpler, but
redis-server 7.0.15 dies on an assertion in clusterGetNodesServingMySlots as
soon as such a slot is unbound again: SETSLOT, DELSLOTS, FORGET or the
handshake timeout.)
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import requires_redis
from support import ServerProc, free_port, reply_end

from frtrio.cluster.slots import key_slot

pytestmark = [requires_redis, pytest.mark.e2e]

class Side:
    """One server of the pair, with the substitutions that hide its identity."""

    def __init__(self, proc: ServerProc):
        self.proc = proc
        self.conn = proc.conn()
        self.names: dict[str, bytes] = {}  # placeholder -> real value
        self.refresh()

    def refresh(self) -> None:
        r = self.conn.cmd("CLUSTER", "MYID")
        self.names["ME"] = r.split(b"\r\n")[1]

    def subs(self):
        out = [(re.compile(rb"(?<![0-9a-f])" + v + rb"(?![0-9a-f])"), b"<" + k.encode() + b">")
               for k, v in self.names.items()]
        p = self.proc.port
        out.append((re.compile(rb"(?<!\d)%d(?!\d)" % (p + 10000)), b"<CPORT>"))
        out.append((re.compile(rb"(?<!\d)%d(?!\d)" % p), b"<PORT>"))
        return out

    def arg(self, a):
        if isinstance(a, str) and a.startswith("$"):
            return self.names[a[1:]]
        return a

    def cmd(self, *args) -> bytes:
        return self.conn.cmd(*[self.arg(a) for a in args])


def _tail(path: str, n: int = 3000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError as e:
        return str(e)


def normalize(raw: bytes, subs) -> bytes:
    out: list[bytes] = []
    end = _norm(raw, 0, subs, out)
    assert end == len(raw), raw
    return b"".join(out)


def _sub(b: bytes, subs) -> bytes:
    for rx, new in subs:
        b = rx.sub(new, b)
    return b


def _norm(raw, pos, subs, out) -> int:
    nl = raw.index(b"\r\n", pos)
    t = raw[pos:pos + 1]
    line = raw[pos + 1:nl]
    end = nl + 2
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            out.append(raw[pos:end])
            return end
        payload = _sub(raw[end:end + n], subs)
        out.append(t + b"%d\r\n" % len(payload) + payload + b"\r\n")
        return end + n + 2
    if t in (b"*", b"%", b"~", b">", b"|"):
        n = int(line)
        out.append(raw[pos:end])
        if n < 0:
            return end
        if t in (b"%", b"|"):
            n *= 2
        p = end
        for _ in range(n):
            p = _norm(raw, p, subs, out)
        return p
    out.append(t + _sub(line, subs) + b"\r\n")
    return end


class Pair:
    """frtrio and redis-server, both one-node clusters."""

    def __init__(self, extra=()):
        self.fp = ServerProc("frtrio", ["--cluster-enabled", "yes", *extra])
        self.rp = ServerProc("redis", ["--cluster-enabled", "yes", *extra])
        try:
            self.fp.start()
            self.rp.start()
        except Exception:
            self.close()
            raise
        self.f = Side(self.fp)
        self.r = Side(self.rp)

    def __call__(self, *args) -> bytes:
        try:
            a = normalize(self.f.cmd(*args), self.f.subs())
            b = normalize(self.r.cmd(*args), self.r.subs())
        except ConnectionError as e:
            raise AssertionError("%r: %s\nfrtrio log:\n%s\nredis log:\n%s" % (
                args, e, _tail(self.fp.log_path), _tail(self.rp.log_path))) from None
        assert a == b, f"{args!r}:\n frtrio {a!r}\n redis  {b!r}"
        return a

    def both(self, *args):
        return self.f.cmd(*args), self.r.cmd(*args)

    def refresh(self):
        self.f.refresh()
        self.r.refresh()

    def wait_state(self, state: str = "ok", timeout: float = 10.0) -> None:
        want = b"cluster_state:" + state.encode()
        deadline = time.monotonic() + timeout
        pending = [self.f, self.r]
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if want not in s.cmd("CLUSTER", "INFO")]
            if pending:
                time.sleep(0.05)
        assert not pending, "cluster_state did not become %s on %s" % (
            state, [s.proc.kind for s in pending])

    def close(self):
        for p in (self.fp, self.rp):
            p.cleanup()


@pytest.fixture(scope="module")
def pair():
    """Both nodes own every slot and are OK (slots added within the 2 s
    startup hold, so OK comes at 2 s)."""
    p = Pair()
    try:
        p("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        p.wait_state("ok")
        yield p
    finally:
        p.close()


@pytest.fixture
def fresh():
    p = Pair()
    try:
        yield p
    finally:
        p.close()


FOO = "foo"  # slot 12182
BAR = "bar"  # slot 5061


# --- C06 / C01 on a fresh node -----------------------------------------------------


def test_c06_diff_fresh_node_views(fresh):
    d = fresh
    for sub in ("INFO", "NODES", "SLOTS", "SHARDS", "MYID", "LINKS"):
        d("CLUSTER", sub)
    d("CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "300")
    d("CLUSTER", "ADDSLOTS", "5000", "5001", "16383")
    d("CLUSTER", "SETSLOT", "1000", "IMPORTING", "$ME")
    d("CLUSTER", "SETSLOT", "50", "MIGRATING", "$ME")
    d("CLUSTER", "SETSLOT", "20", "MIGRATING", "$ME")
    d("CLUSTER", "SETSLOT", "10", "IMPORTING", "$ME")
    d("CLUSTER", "SETSLOT", "900", "IMPORTING", "$ME")
    for sub in ("INFO", "NODES", "SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d("CLUSTER", "SETSLOT", "50", "STABLE")
    d("CLUSTER", "SETSLOT", "1000", "NODE", "$ME")  # importing -> bump epoch
    d("CLUSTER", "NODES")
    d("CLUSTER", "INFO")
    d("CLUSTER", "DELSLOTSRANGE", "250", "260")
    d("CLUSTER", "DELSLOTS", "5001")
    d("CLUSTER", "SLOTS")
    d("CLUSTER", "SHARDS")
    d("CLUSTER", "COUNTKEYSINSLOT", "0")
    d("CLUSTER", "GETKEYSINSLOT", "0", "10")
    d.both("HELLO", "3")  # (client ids differ)
    for sub in ("INFO", "NODES", "SLOTS", "SHARDS", "MYID", "LINKS"):
        d("CLUSTER", sub)
    d("CLUSTER", "FLUSHSLOTS")
    d("CLUSTER", "SLOTS")
    d("CLUSTER", "SHARDS")
    d("CLUSTER", "NODES")


def test_c01_diff_epochs_reset_meet(fresh):
    d = fresh
    d("CLUSTER", "BUMPEPOCH")
    d("CLUSTER", "BUMPEPOCH")
    d("CLUSTER", "SET-CONFIG-EPOCH", "x")
    d("CLUSTER", "SET-CONFIG-EPOCH", "-1")
    d("CLUSTER", "SET-CONFIG-EPOCH", "5")
    d("CLUSTER", "ADDSLOTS", "7")
    d("CLUSTER", "RESET", "SOFT")
    d("CLUSTER", "INFO")
    d("CLUSTER", "NODES")
    d("CLUSTER", "RESET", "HARD")
    fresh.refresh()  # new ids
    d("CLUSTER", "INFO")
    d("CLUSTER", "NODES")
    d("CLUSTER", "SET-CONFIG-EPOCH", "5")
    d("CLUSTER", "SET-CONFIG-EPOCH", "6")
    d("CLUSTER", "BUMPEPOCH")
    d("CLUSTER", "INFO")
    d("CLUSTER", "RESET", "x")
    d("CLUSTER", "RESET", "HARD", "x")
    # MEET: errors, then a handshake that cannot complete (nobody listens)
    d("CLUSTER", "MEET", "a", "b", "c", "d")
    d("CLUSTER", "MEET", "127.0.0.1", "x")
    d("CLUSTER", "MEET", "127.0.0.1", "1", "x")
    d("CLUSTER", "MEET", "300.0.0.1", "1")
    d("CLUSTER", "MEET", "127.0.0.1", "60000")
    d("CLUSTER", "MEET", "127.0.0.1", "0")
    d("CLUSTER", "MEET", "127.0.0.1", "65536", "1")
    d("CLUSTER", "MEET", "localhost", "7000")
    d("CLUSTER", "MEET", "::1", "70000")
    port = free_port()
    d("CLUSTER", "MEET", "127.0.0.1", str(port))
    d("CLUSTER", "MEET", "127.0.0.1", str(port))  # already pending: still OK
    d("CLUSTER", "SET-CONFIG-EPOCH", "9")  # knows another node now
    a, b = d.both("CLUSTER", "INFO")
    for x in (a, b):
        assert b"cluster_known_nodes:2\r\n" in x


def test_c01_diff_subcommand_errors(pair):
    d = pair
    for argv in [
        ("CLUSTER",), ("CLUSTER", "FOO"), ("CLUSTER", "foo", "bar"), ("CLUSTER", "HELP"),
        ("CLUSTER", "HELP", "x"), ("CLUSTER", "INFO", "x"), ("CLUSTER", "MYID", "x"),
        ("CLUSTER", "ADDSLOTS"), ("CLUSTER", "ADDSLOTS", "abc"), ("CLUSTER", "ADDSLOTS", "16384"),
        ("CLUSTER", "ADDSLOTS", "-1"), ("CLUSTER", "ADDSLOTS", "1", "1"), ("CLUSTER", "ADDSLOTS", "5"),
        ("CLUSTER", "ADDSLOTSRANGE", "1"), ("CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"),
        ("CLUSTER", "ADDSLOTSRANGE", "5", "2"), ("CLUSTER", "ADDSLOTSRANGE", "0", "10"),
        ("CLUSTER", "ADDSLOTSRANGE", "5", "6", "x", "y"),
        ("CLUSTER", "DELSLOTS", "x"), ("CLUSTER", "DELSLOTSRANGE", "9", "3"),
        ("CLUSTER", "KEYSLOT", "foo"), ("CLUSTER", "KEYSLOT", "{user1000}.following"),
        ("CLUSTER", "KEYSLOT", "foo{}{bar}"), ("CLUSTER", "KEYSLOT", "foo{{bar}}zap"),
        ("CLUSTER", "KEYSLOT", ""), ("CLUSTER", "KEYSLOT", "a", "b"),
        ("CLUSTER", "COUNTKEYSINSLOT", "abc"), ("CLUSTER", "COUNTKEYSINSLOT", "16384"),
        ("CLUSTER", "COUNTKEYSINSLOT", "-1"), ("CLUSTER", "GETKEYSINSLOT", "0", "-1"),
        ("CLUSTER", "GETKEYSINSLOT", "x", "1"), ("CLUSTER", "GETKEYSINSLOT", "16384", "1"),
        ("CLUSTER", "GETKEYSINSLOT", "1", "x"),
        ("CLUSTER", "SETSLOT", "1", "FOO"), ("CLUSTER", "SETSLOT", "x", "STABLE"),
        ("CLUSTER", "SETSLOT", "1", "STABLE", "x"), ("CLUSTER", "SETSLOT", "1"),
        ("CLUSTER", "SETSLOT", "1", "MIGRATING"), ("CLUSTER", "SETSLOT", "1", "NODE", "$ME", "x"),
        ("CLUSTER", "SETSLOT", "15", "MIGRATING", "0" * 40),
        ("CLUSTER", "SETSLOT", "15", "IMPORTING", "0" * 40),
        ("CLUSTER", "SETSLOT", "15", "IMPORTING", "$ME"),
        ("CLUSTER", "SETSLOT", "15", "NODE", "0" * 40),
        ("CLUSTER", "SETSLOT", "15", "NODE", "$ME"),
        ("CLUSTER", "FORGET", "0" * 40), ("CLUSTER", "FORGET", "$ME"),
        ("CLUSTER", "REPLICATE", "$ME"), ("CLUSTER", "REPLICATE", "0" * 40),
        ("CLUSTER", "REPLICAS", "$ME"), ("CLUSTER", "SLAVES", "0" * 40),
        ("CLUSTER", "REPLICAS", "$ME", "x"),
        ("CLUSTER", "COUNT-FAILURE-REPORTS", "$ME"), ("CLUSTER", "COUNT-FAILURE-REPORTS", "x"),
        ("CLUSTER", "FAILOVER"), ("CLUSTER", "FAILOVER", "x"), ("CLUSTER", "FAILOVER", "FORCE"),
        ("CLUSTER", "FAILOVER", "TAKEOVER"), ("CLUSTER", "FAILOVER", "FORCE", "x"),
        ("CLUSTER", "FLUSHSLOTS", "x"), ("CLUSTER", "SAVECONFIG"), ("CLUSTER", "LINKS"),
        ("CLUSTER", "SET-CONFIG-EPOCH", "1"), ("CLUSTER", "BUMPEPOCH", "x"),
        ("CLUSTER", "RESET", "FOO"), ("CLUSTER", "RESET", "HARD", "x"),
        ("CLUSTER", "MEET", "a", "b", "c", "d"), ("CLUSTER", "MEET", "1.2.3.4"),
    ]:
        d(*argv)


def test_c01_diff_key_guards(pair):
    """FLUSHSLOTS / RESET / SETSLOT NODE refuse while keys exist."""
    d = pair
    d("SET", FOO, "v")
    d("CLUSTER", "FLUSHSLOTS")
    d("CLUSTER", "RESET")
    d("CLUSTER", "RESET", "HARD")
    d("CLUSTER", "COUNTKEYSINSLOT", "12182")
    d("DEL", FOO)


# --- C03 / C04 / C07: routing ------------------------------------------------------


def test_c03_diff_data_commands(pair):
    d = pair
    d("SET", FOO, "bar")
    d("GET", FOO)
    d("MSET", "a", "1", "b", "2")  # CROSSSLOT
    d("MSET", "{a}1", "1", "{a}2", "2")
    d("MGET", "{a}1", "{a}2", "{a}3")
    d("MGET", "{a}1", "{a}1", "zz")
    d("DEL", "{a}1", "{b}1")
    d("EXISTS", "{a}1", "{a}2")
    d("RENAME", "{a}1", "{a}9")
    d("RENAME", "{a}9", "{b}9")
    d("SET", "{user1000}.following", "x")
    d("SET", "{user1000}.followers", "y")
    d("CLUSTER", "COUNTKEYSINSLOT", "3443")
    d("CLUSTER", "GETKEYSINSLOT", "3443", "10")
    d("CLUSTER", "GETKEYSINSLOT", "3443", "1")
    d("CLUSTER", "KEYSLOT", "{user1000}.following")
    d("SELECT", "1")
    d("SELECT", "0")
    d("MOVE", FOO, "1")
    d("SWAPDB", "0", "1")
    d("COPY", FOO, "bar", "DB", "1")
    d("COPY", FOO, "{foo}bar")
    d("PING")
    d("DBSIZE")
    d("READONLY")
    d("GET", FOO)
    d("READWRITE")
    d("ASKING")
    d("GET", FOO)
    d("ASKING", "x")
    d("READONLY", "x")
    d("FLUSHALL")


def test_c03_diff_multi_exec(pair):
    d = pair
    d("MULTI")
    d("SET", "{a}1", "1")
    d("SET", "{b}1", "1")
    d("EXEC")  # CROSSSLOT at EXEC: the transaction is discarded
    d("EXEC")
    d("MULTI")
    d("SET", "{a}1", "1")
    d("MGET", "{a}1", "{b}1")  # CROSSSLOT when queued: EXECABORT
    d("EXEC")
    d("MULTI")
    d("SET", "{a}1", "1")
    d("GET", "{a}2")
    d("EXEC")
    d("FLUSHALL")


def test_c04_diff_clusterdown_after_delslots(pair):
    d = pair
    d("SET", BAR, "1")
    d("CLUSTER", "DELSLOTS", "12182")
    d("CLUSTER", "INFO")
    d("GET", FOO)  # CLUSTERDOWN Hash slot not served
    d("SET", FOO, "x")
    d("GET", BAR)  # CLUSTERDOWN The cluster is down
    d("MGET", FOO, BAR)  # CROSSSLOT first
    d("MGET", BAR, FOO)
    d("PING")
    d("SPUBLISH", FOO, "x")  # unbound
    d("SPUBLISH", BAR, "x")  # shard pub/sub is allowed while down by default
    d("PUBLISH", FOO, "x")  # no keys: never routed
    d("SSUBSCRIBE", BAR, FOO)  # CROSSSLOT
    d("CONFIG", "SET", "cluster-allow-pubsubshard-when-down", "no")
    d("SPUBLISH", BAR, "x")
    d("CONFIG", "SET", "cluster-allow-pubsubshard-when-down", "yes")
    d("CONFIG", "SET", "cluster-allow-reads-when-down", "yes")
    d("GET", BAR)
    d("SET", BAR, "2")  # down and only accepts read commands
    d("GET", FOO)
    d("CONFIG", "SET", "cluster-allow-reads-when-down", "no")
    d("CONFIG", "SET", "cluster-require-full-coverage", "no")
    pair.wait_state("ok")
    d("GET", BAR)
    d("GET", FOO)
    d("CLUSTER", "INFO")
    d("CONFIG", "SET", "cluster-require-full-coverage", "yes")
    d("CLUSTER", "ADDSLOTS", "12182")
    pair.wait_state("ok")
    d("CLUSTER", "INFO")
    d("DEL", BAR)


def test_c05_diff_shard_subscribers_dropped_with_their_slot(pair):
    """Shard channels of a slot this node stops serving are dropped, each
    subscriber told ``sunsubscribe`` (cluster-semantics §5.2), in RESP2 and
    RESP3."""
    d = pair
    subs = []
    for side in (d.f, d.r):
        s2, s3 = side.proc.conn(), side.proc.conn()
        assert s3.cmd("HELLO", "3").startswith(b"%")
        for s in (s2, s3):
            s.send(b"*3\r\n$10\r\nSSUBSCRIBE\r\n$3\r\nfoo\r\n$6\r\n{foo}x\r\n")
            s.read_reply()
            s.read_reply()
        subs.append((s2, s3))
    d("CLUSTER", "DELSLOTS", "12182")
    got = [[s.read_reply() + s.read_reply() for s in pair_] for pair_ in subs]
    assert got[0] == got[1]
    assert got[0][0] == (b"*3\r\n$12\r\nsunsubscribe\r\n$3\r\nfoo\r\n:1\r\n"
                         b"*3\r\n$12\r\nsunsubscribe\r\n$6\r\n{foo}x\r\n:0\r\n")
    for pair_ in subs:
        for s in pair_:
            assert s.cmd("PING") in (b"+PONG\r\n",)  # out of pub/sub mode
            s.close()
    d("CLUSTER", "ADDSLOTS", "12182")
    pair.wait_state("ok")


ID_ME = "1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f"
ID_B = "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b"


class TwoPair(Pair):
    """Both servers start from a nodes.conf naming myself (0-8191) and a
    master B (8192-16383) at a port where nobody listens: B stays a healthy
    master in everyone's view for far longer than the test (node timeout
    60 s, no ping ever completes), so every redirect is real."""

    def __init__(self, tmp_path_factory):
        self.b_port = free_port()
        self.dirs = []
        procs = []
        for kind in ("frtrio", "redis"):
            d = str(tmp_path_factory.mktemp("two-" + kind))
            port = free_port()
            with open(d + "/nodes.conf", "w") as f:
                f.write(
                    "%s 127.0.0.1:%d@%d myself,master - 0 0 1 connected 0-8191\n"
                    "%s 127.0.0.1:%d@%d master - 0 0 2 connected 8192-16383\n"
                    "vars currentEpoch 2 lastVoteEpoch 0\n"
                    % (ID_ME, port, port + 10000, ID_B, self.b_port, self.b_port + 10000))
            procs.append(ServerProc(kind, ["--cluster-enabled", "yes",
                                           "--cluster-node-timeout", "60000"],
                                    port=port, workdir=d))
        self.fp, self.rp = procs
        try:
            self.fp.start()
            self.rp.start()
        except Exception:
            self.close()
            raise
        self.f = Side(self.fp)
        self.r = Side(self.rp)
        for side in (self.f, self.r):
            side.names["B"] = ID_B.encode()

    def subs_b(self):
        return [(re.compile(rb"(?<!\d)%d(?!\d)" % (self.b_port + 10000)), b"<BCPORT>"),
                (re.compile(rb"(?<!\d)%d(?!\d)" % self.b_port), b"<BPORT>")]

    def __call__(self, *args) -> bytes:
        try:
            a = normalize(self.f.cmd(*args), self.f.subs() + self.subs_b())
            b = normalize(self.r.cmd(*args), self.r.subs() + self.subs_b())
        except ConnectionError as e:
            raise AssertionError("%r: %s\nredis log:\n%s" % (args, e, _tail(self.rp.log_path)))
        assert a == b, f"{args!r}:\n frtrio {a!r}\n redis  {b!r}"
        return a

    def info(self) -> None:
        """CLUSTER INFO compared without the bus message counters (redis
        counts a PING queued on a link whose connect then fails; that is the
        bus's business, tested with the bus)."""
        got = []
        for side in (self.f, self.r):
            text = side.cmd("CLUSTER", "INFO").split(b"\r\n", 1)[1]
            got.append([ln for ln in text.split(b"\r\n")
                        if not ln.startswith(b"cluster_stats_messages_")])
        assert got[0] == got[1], got

    def unordered(self, *args) -> None:
        """A top-level array whose order is Redis's hash-table order (SHARDS):
        compared as a sorted list of normalised elements."""
        got = []
        for side in (self.f, self.r):
            raw = side.cmd(*args)
            assert raw[:1] == b"*", raw
            nl = raw.index(b"\r\n")
            n, p, elems = int(raw[1:nl]), nl + 2, []
            for _ in range(n):
                e = reply_end(raw, p)
                elems.append(normalize(raw[p:e], side.subs() + self.subs_b()))
                p = e
            got.append(sorted(elems))
        assert got[0] == got[1], got

    def nodes(self) -> None:
        """CLUSTER NODES as sorted lines; B's ping-sent / pong-received /
        link-state fields are the bus's (redis marks a ping sent on a link
        whose connect fails), so they are masked."""
        got = []
        for side in (self.f, self.r):
            text = normalize(side.cmd("CLUSTER", "NODES"), side.subs() + self.subs_b())
            lines = text.split(b"\r\n", 1)[1].rstrip(b"\r\n").split(b"\n")
            out = []
            for ln in lines:
                w = ln.split(b" ")
                if b"myself" not in w[2]:
                    w[4] = w[5] = w[7] = b"*"
                out.append(b" ".join(w))
            got.append(sorted(out))
        assert got[0] == got[1], got

    def my_line(self, side) -> bytes:
        text = side.cmd("CLUSTER", "NODES")
        line = [ln for ln in text.split(b"\n") if b"myself" in ln][0]
        return normalize(b"+" + line + b"\r\n", side.subs() + self.subs_b())


@pytest.fixture
def two(tmp_path_factory):
    p = TwoPair(tmp_path_factory)
    try:
        p.wait_state("ok")
        yield p
    finally:
        p.close()


def test_c04_diff_moved_ask_tryagain(two):
    d = two
    s_foo, s_bar = key_slot(b"foo"), key_slot(b"bar")  # B's, mine
    assert s_foo > 8191 >= s_bar
    k1, k2 = "{bar}1", "{bar}2"
    d("CLUSTER", "MYID")
    d.info()
    d("CLUSTER", "SLOTS")
    d.unordered("CLUSTER", "SHARDS")
    assert d.my_line(d.f) == d.my_line(d.r)
    d.nodes()
    # MOVED: the slot belongs to B
    d("GET", FOO)
    d("SET", FOO, "v")
    d("MGET", FOO, "{foo}x")
    d("MGET", BAR, FOO)
    d("READONLY")
    d("GET", FOO)  # READONLY on a master changes nothing
    d("READWRITE")
    d("CLUSTER", "COUNTKEYSINSLOT", str(s_foo))
    # ASK / TRYAGAIN: my slot migrating to B
    d("SET", k1, "v")
    d("CLUSTER", "SETSLOT", str(s_bar), "MIGRATING", "$B")
    assert d.my_line(d.f) == d.my_line(d.r)
    d("GET", k1)
    d("GET", k2)
    d("SET", k2, "v")  # a write of a missing key is ASKed too
    d("MGET", k1, k2)
    d("MGET", k2, k2)
    d("MULTI")
    d("GET", k1)
    d("GET", k2)
    d("EXEC")
    d("DEL", k1, k1)
    d("EXISTS", k1)
    d("CLUSTER", "SETSLOT", str(s_bar), "NODE", "$B")  # no keys left: allowed
    d("GET", k1)
    d("CLUSTER", "SLOTS")
    # importing from B: MOVED without ASKING, served with it
    d("CLUSTER", "SETSLOT", str(s_foo), "IMPORTING", "$B")
    assert d.my_line(d.f) == d.my_line(d.r)
    d("GET", FOO)
    d("ASKING")
    d("GET", FOO)
    d("GET", FOO)  # ASKING was one-shot
    d("ASKING")
    d("SET", "{foo}1", "v")
    d("ASKING")
    d("MGET", "{foo}1", "{foo}2")  # multiple keys, one missing: TRYAGAIN
    d("ASKING")
    d("MGET", "{foo}1", "{foo}1")
    d("ASKING")
    d("PING")
    d("GET", FOO)  # PING consumed ASKING
    d("MULTI")
    d("GET", FOO)  # MOVED while queueing: the transaction is flagged
    d("EXEC")
    d("ASKING")
    d("MULTI")
    d("GET", "{foo}1")
    d("SET", "{foo}1", "x")
    d("EXEC")  # ASKING held through MULTI
    # take the slot: importing -> configEpoch bump
    d("CLUSTER", "SETSLOT", str(s_foo), "NODE", "$ME")
    d.info()
    assert d.my_line(d.f) == d.my_line(d.r)
    d("GET", "{foo}1")
    d("CLUSTER", "SETSLOT", str(s_foo), "NODE", "$B")  # keys: refused
    d("CLUSTER", "BUMPEPOCH")
    d("CLUSTER", "SET-CONFIG-EPOCH", "9")
    d("CLUSTER", "COUNT-FAILURE-REPORTS", "$B")
    d("CLUSTER", "REPLICAS", "$B")
    d("CLUSTER", "REPLICATE", "$B")
    d("CLUSTER", "FORGET", "$B")
    d("CLUSTER", "FORGET", "$B")
    d.info()
    d.nodes()
    d("CLUSTER", "SLOTS")
    d.unordered("CLUSTER", "SHARDS")
    d("GET", BAR)  # slot unbound now


def test_c03_diff_movable_keys_route(two):
    """Commands whose keys move (numkeys, STREAMS, STORE, KEYS) are routed by
    the keys Redis's getkeys procedures find: XREAD redirects, a Z*STORE
    destination counts, MIGRATE's key is its key."""
    d = two
    d("XREAD", "STREAMS", FOO, "0")
    d("XREAD", "COUNT", "1", "STREAMS", BAR, FOO, "0", "0")
    d("XREAD", "STREAMS", BAR, "0")
    d("XREADGROUP", "GROUP", "g", "c", "STREAMS", FOO, ">")
    d("ZUNIONSTORE", BAR, "1", FOO)
    d("ZUNIONSTORE", "{foo}d", "1", FOO)
    d("ZUNIONSTORE", "{bar}d", "1", BAR)
    d("ZINTER", "2", FOO, "{foo}2")
    d("LMPOP", "1", FOO, "LEFT")
    d("SINTERCARD", "2", BAR, FOO)
    d("BLMPOP", "0.01", "1", FOO, "LEFT")
    d("MIGRATE", "127.0.0.1", "1", FOO, "0", "10")
    d("MIGRATE", "127.0.0.1", "1", "", "0", "10", "KEYS", BAR, FOO)


def test_c05_diff_blocked_clients_released(two):
    """BLPOP on a slot that moves away is answered MOVED; on a cluster that
    goes down, CLUSTERDOWN (Redis does it from clientsCron within ~1 s)."""
    d = two
    s_bar = key_slot(b"bar")
    for side in (d.f, d.r):
        side.blocked = side.proc.conn()
        side.blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$3\r\nbar\r\n$1\r\n0\r\n")
    time.sleep(0.1)
    d("CLUSTER", "SETSLOT", str(s_bar), "NODE", "$B")
    got = [normalize(s.blocked.read_reply(), s.subs() + d.subs_b()) for s in (d.f, d.r)]
    assert got[0] == got[1] == b"-MOVED %d 127.0.0.1:<BPORT>\r\n" % s_bar
    for side in (d.f, d.r):
        side.blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$3\r\n06S\r\n$1\r\n0\r\n")  # slot 0
    time.sleep(0.1)
    d("CLUSTER", "DELSLOTS", str(key_slot(b"x")))  # coverage lost: the cluster fails
    got = [s.blocked.read_reply() for s in (d.f, d.r)]
    assert got[0] == got[1] == b"-CLUSTERDOWN The cluster is down\r\n"
    for side in (d.f, d.r):
        side.blocked.close()


def test_c06_diff_views(pair):
    d = pair
    d("SET", FOO, "1")
    for sub in ("INFO", "NODES", "SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d.both("HELLO", "3")
    for sub in ("INFO", "NODES", "SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d("CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname")
    d("CLUSTER", "SLOTS")
    d("CLUSTER", "SHARDS")
    d("CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint")
    d("CLUSTER", "SLOTS")
    d("CLUSTER", "SHARDS")
    d("CONFIG", "SET", "cluster-announce-hostname", "host-1.example")
    for sub in ("NODES", "SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d("CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname")
    for sub in ("SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d("CONFIG", "SET", "cluster-preferred-endpoint-type", "ip")
    d.both("HELLO", "2")
    for sub in ("NODES", "SLOTS", "SHARDS"):
        d("CLUSTER", sub)
    d("CONFIG", "SET", "cluster-announce-hostname", "")
    d("CLUSTER", "NODES")
    d("DEL", FOO)


def test_c01_diff_cluster_disabled(diff):
    """A server without cluster support (the session pair from conftest)."""
    for argv in (("CLUSTER", "INFO"), ("CLUSTER", "HELP"), ("CLUSTER", "KEYSLOT", "a"),
                 ("CLUSTER", "NODES"), ("CLUSTER", "FOO"), ("CLUSTER",),
                 ("ASKING",), ("READONLY",), ("READWRITE",), ("CLUSTER", "ADDSLOTS")):
        diff(*argv)
