"""nodes.conf: Redis 7.0's cluster config file, read and written (pure).

The file is the CLUSTER NODES text without handshake nodes, then a line
``vars currentEpoch <n> lastVoteEpoch <n>``. ``parse`` builds a ClusterState
from it or raises ``NodesConfError`` naming the offending line; nothing here
touches the disk (the shell does, through the Env's fs).
"""

from __future__ import annotations

import re

from frtrio.cluster.slots import CLUSTER_SLOTS
from frtrio.cluster.state import KNOWN_FLAGS, ClusterNode, ClusterState
from frtrio.protocol.parser import split_args, string2ll

_ID_RE = re.compile(r"[a-z0-9]{40}\Z")


class NodesConfError(Exception):
    """A corrupt cluster config file; the node must not start.

    ``lineno`` is 1-based, or 0 when the problem is the file as a whole (no
    ``myself`` line)."""

    def __init__(self, lineno: int, line: str, reason: str):
        where = ("line %d: %s" % (lineno, reason)) if lineno else reason
        super().__init__("Unrecoverable error: corrupted cluster config file (%s): %r"
                         % (where, line))
        self.lineno = lineno
        self.line = line
        self.reason = reason


def _int(s: str) -> int | None:
    return string2ll(s.encode("utf-8", "surrogateescape"))


def parse(text: str, now_ms: int) -> ClusterState:
    """Parse a nodes.conf; the ``myself`` line is required."""
    nodes: dict[str, ClusterNode] = {}
    myself: ClusterNode | None = None
    current_epoch = 0
    last_vote_epoch = 0
    slot_claims: list[tuple[int, int, ClusterNode]] = []  # (first, last, node)
    migrating: list[tuple[int, str]] = []
    importing: list[tuple[int, str]] = []
    masters_of: list[tuple[ClusterNode, str]] = []

    def node_for(nid: str) -> ClusterNode:
        n = nodes.get(nid)
        if n is None:
            n = ClusterNode(nid, ctime=now_ms)
            nodes[nid] = n
        return n

    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        words_b = split_args(line.encode("utf-8", "surrogateescape"))
        if words_b is None:
            raise NodesConfError(lineno, line, "unbalanced quotes")
        words = [w.decode("utf-8", "surrogateescape") for w in words_b]
        if not words:
            continue
        if words[0].lower() == "vars":
            if len(words) % 2 != 1:
                raise NodesConfError(lineno, line, "vars needs key/value pairs")
            for k, v in zip(words[1::2], words[2::2]):
                n = _int(v)
                k = k.lower()
                if k == "currentepoch":
                    if n is None:
                        raise NodesConfError(lineno, line, "bad currentEpoch")
                    current_epoch = n
                elif k == "lastvoteepoch":
                    if n is None:
                        raise NodesConfError(lineno, line, "bad lastVoteEpoch")
                    last_vote_epoch = n
            continue
        if len(words) < 8:
            raise NodesConfError(lineno, line, "fewer than 8 fields")
        nid = words[0]
        if not _ID_RE.match(nid):
            raise NodesConfError(lineno, line, "bad node id")
        n = node_for(nid)
        # address ip:port[@cport][,hostname]
        addr = words[1]
        hostname = ""
        if "," in addr:
            addr, hostname = addr.split(",", 1)
        cport = None
        if "@" in addr:
            addr, cp = addr.split("@", 1)
            cport = _int(cp)
            if cport is None or cport < 0:
                raise NodesConfError(lineno, line, "bad bus port")
        if ":" not in addr:
            raise NodesConfError(lineno, line, "bad address")
        ip, port_s = addr.rsplit(":", 1)
        port = _int(port_s)
        if port is None or port < 0 or port > 65535:
            raise NodesConfError(lineno, line, "bad port")
        n.ip = ip
        n.port = port
        n.cport = cport if cport is not None else port + 10000
        n.hostname = hostname
        # flags
        n.flags.clear()
        for f in words[2].lower().split(","):
            if f not in KNOWN_FLAGS:
                raise NodesConfError(lineno, line, "unknown flag %r" % f)
            if f == "noflags":
                continue
            n.set_flag(f)
            if f == "fail":
                n.fail_time = now_ms
        if n.has("myself"):
            if myself is not None:
                raise NodesConfError(lineno, line, "two myself lines")
            myself = n
        if words[3] != "-":
            if not _ID_RE.match(words[3]):
                raise NodesConfError(lineno, line, "bad master id")
            masters_of.append((n, words[3]))
        ping, pong, epoch = _int(words[4]), _int(words[5]), _int(words[6])
        if ping is None or pong is None or epoch is None or epoch < 0:
            raise NodesConfError(lineno, line, "bad ping/pong/epoch field")
        n.ping_sent = now_ms if ping else 0
        n.pong_received = now_ms if pong else 0
        n.config_epoch = epoch
        for w in words[8:]:
            if w.startswith("["):
                m = re.match(r"\[(\d+)-([<>])-([a-z0-9]{40})\]\Z", w)
                if not m:
                    raise NodesConfError(lineno, line, "bad open slot %r" % w)
                s = int(m.group(1))
                if s >= CLUSTER_SLOTS:
                    raise NodesConfError(lineno, line, "slot out of range")
                (migrating if m.group(2) == ">" else importing).append((s, m.group(3)))
                continue
            if "-" in w:
                a, b = w.split("-", 1)
                sa, sb = _int(a), _int(b)
            else:
                sa = sb = _int(w)
            if sa is None or sb is None or not (0 <= sa <= sb < CLUSTER_SLOTS):
                raise NodesConfError(lineno, line, "slot out of range")
            slot_claims.append((sa, sb, n))
    if myself is None:
        raise NodesConfError(0, "", "no line with the myself flag")
    st = ClusterState(myself)
    st.nodes = {}
    # myself first keeps views stable; then file order
    st.nodes[myself.id] = myself
    for nid, n in nodes.items():
        if n is not myself:
            st.nodes[nid] = n
    for n, mid in masters_of:
        st.set_master(n, st.nodes.get(mid) or _placeholder(st, mid, now_ms))
        n.config_epoch = 0  # a replica with a known master takes its master's
    run: list[int] = []
    run_node = None
    for sa, sb, n in slot_claims:  # (a run of claims by one node binds at once)
        if run_node is not n:
            if run:
                st.assign_slots(run, run_node)
            run, run_node = [], n
        run.extend(range(sa, sb + 1))
    if run:
        st.assign_slots(run, run_node)
    for s, nid in migrating:
        st.migrating_to[s] = st.nodes.get(nid) or _placeholder(st, nid, now_ms)
    for s, nid in importing:
        st.importing_from[s] = st.nodes.get(nid) or _placeholder(st, nid, now_ms)
    st.current_epoch = max(current_epoch, st.max_config_epoch())
    st.last_vote_epoch = last_vote_epoch
    return st


def _placeholder(st: ClusterState, nid: str, now_ms: int) -> ClusterNode:
    """A node named only as someone's master or as an open slot's peer: Redis
    creates it with no flags (``noflags``) and no address; gossip fills it in."""
    n = st.nodes.get(nid)
    if n is None:
        n = ClusterNode(nid, (), ctime=now_ms)
        st.nodes[nid] = n
    return n


def render(st: ClusterState) -> str:
    return st.config_text()
