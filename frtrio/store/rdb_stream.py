"""RDB encoding of streams (RDB_TYPE_STREAM_LISTPACKS_2, as Redis 7.0 writes
it; RDB_TYPE_STREAM_LISTPACKS from older versions is read too).

Layout: the nodes (16-byte big-endian master ID, listpack), length, last ID,
first ID, max deleted ID, entries added, then the consumer groups (name, last
ID, entries read, PEL with delivery time and count, consumers with seen time
and the IDs of their PEL). Called by ``store.rdb``'s encode_object /
decode_object for stream values.
"""

from __future__ import annotations

from frtrio.store.listpack import lp_build, lp_entries
from frtrio.store.rdb_format import T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, RdbError
from frtrio.store.rdb_strings import enc_len
from frtrio.store.stream import (
    FLAG_DELETED,
    FLAG_SAMEFIELDS,
    NACK,
    U64,
    Consumer,
    Group,
    Node,
    Stream,
    estimate_distance,
)


def _id16(i: int) -> bytes:
    return i.to_bytes(16, "big")


def _ms_time(t: int) -> bytes:
    return (t & ((1 << 64) - 1)).to_bytes(8, "little")


def encode_stream(s: Stream, es) -> bytes:
    """``es`` writes a string (rdbSaveRawString, compression budgeted)."""
    parts = [bytes((T_STREAM_LISTPACKS_2,)), enc_len(len(s.nodes))]
    for node in s.nodes:
        parts.append(es(_id16(node.master)))
        parts.append(es(lp_build(node.lp_elements())))
    parts.append(enc_len(s.length))
    parts.append(enc_len(s.last_id >> 64))
    parts.append(enc_len(s.last_id & U64))
    parts.append(enc_len(s.first_id >> 64))
    parts.append(enc_len(s.first_id & U64))
    parts.append(enc_len(s.max_deleted >> 64))
    parts.append(enc_len(s.max_deleted & U64))
    parts.append(enc_len(s.entries_added))
    parts.append(enc_len(len(s.groups)))
    for name in sorted(s.groups):
        g = s.groups[name]
        parts.append(es(name))
        parts.append(enc_len(g.last_id >> 64))
        parts.append(enc_len(g.last_id & U64))
        parts.append(enc_len(g.entries_read & U64))
        pel = g.sorted_pel()
        parts.append(enc_len(len(pel)))
        for i, nack in pel:
            parts.append(_id16(i))
            parts.append(_ms_time(nack.delivery_time))
            parts.append(enc_len(nack.delivery_count))
        conss = g.sorted_consumers()
        parts.append(enc_len(len(conss)))
        for cons in conss:
            parts.append(es(cons.name))
            parts.append(_ms_time(cons.seen_time))
            ids = sorted(cons.pel)
            parts.append(enc_len(len(ids)))
            for i in ids:
                parts.append(_id16(i))
    return b"".join(parts)


def _int(b: bytes) -> int:
    try:
        return int(b)
    except ValueError:
        raise RdbError("Stream listpack integrity check failed.") from None


def _node_from_listpack(master: int, lp: bytes, deep: bool = True) -> Node:
    try:
        el = lp_entries(lp)
    except RdbError:
        raise RdbError("Stream listpack integrity check failed.") from None
    if not el:
        raise RdbError("Empty listpack inside stream")
    try:
        live = _int(el[0])
        deleted = _int(el[1])
        nf = _int(el[2])
        if nf < 0:
            raise RdbError("Stream listpack integrity check failed.")
        mfields = tuple(el[3 : 3 + nf])
        p = 3 + nf
        if _int(el[p]) != 0:
            raise RdbError("Stream listpack integrity check failed.")
        p += 1
        node = Node(master, mfields)
        mms, mseq = master >> 64, master & U64
        while p < len(el):
            flags = _int(el[p])
            ms = (mms + _int(el[p + 1])) & U64
            seq = (mseq + _int(el[p + 2])) & U64
            p += 3
            if flags & FLAG_SAMEFIELDS:
                vals = el[p : p + nf]
                p += nf
                flat = []
                for f, v in zip(mfields, vals):
                    flat.append(f)
                    flat.append(v)
                count = nf + 3
            else:
                n = _int(el[p])
                if n < 0:
                    raise RdbError("Stream listpack integrity check failed.")
                flat = list(el[p + 1 : p + 1 + 2 * n])
                p += 1 + 2 * n
                count = 2 * n + 4
            # lp-count (what Redis's deep check verifies): also catches an
            # entry cut short by the end of the listpack
            if _int(el[p]) != count and deep:
                raise RdbError("Stream listpack integrity check failed.")
            p += 1
            i = (ms << 64) | seq
            node.ids.append(i)
            node.vals.append(flat)
            node.dead.append(bool(flags & FLAG_DELETED))
            node.ebytes += node.entry_size(i, flat)
    except IndexError:
        raise RdbError("Stream listpack integrity check failed.") from None
    node.live = sum(1 for d in node.dead if not d)
    node.deleted = len(node.dead) - node.live
    if node.live != live or node.deleted != deleted:
        raise RdbError("Stream listpack integrity check failed.")
    return node


def _ms(r) -> int:
    v = int.from_bytes(r.take(8), "little", signed=True)
    return v


def decode_stream(r, t: int, deep: bool = True) -> Stream:
    s = Stream()
    nnodes = r.plain_length()
    for _ in range(nnodes):
        key = r.string()
        if len(key) != 16:
            raise RdbError("Stream node key entry is not the size of a stream ID")
        lp = r.string()
        master = int.from_bytes(key, "big")
        node = _node_from_listpack(master, lp, deep)
        if node.live == 0:
            raise RdbError("Empty listpack inside stream")
        s.nodes.append(node)
    # Redis keeps the nodes in a radix tree: any order loads, a repeated key not
    s.nodes.sort(key=lambda node: node.master)
    s.masters = [node.master for node in s.nodes]
    if len(set(s.masters)) != len(s.masters):
        raise RdbError("Listpack re-added with existing key")
    s.length = r.plain_length()
    s.last_id = (r.plain_length() << 64) | r.plain_length()
    if t == T_STREAM_LISTPACKS_2:
        s.first_id = (r.plain_length() << 64) | r.plain_length()
        s.max_deleted = (r.plain_length() << 64) | r.plain_length()
        s.entries_added = r.plain_length()
    else:
        s.entries_added = s.length
        f = s.first_entry_id()
        s.first_id = 0 if f is None else f
    if s.length and not s.nodes:
        raise RdbError("Stream length inconsistent")
    ngroups = r.plain_length()
    for _ in range(ngroups):
        name = r.string()
        last = (r.plain_length() << 64) | r.plain_length()
        if t == T_STREAM_LISTPACKS_2:
            er = r.plain_length()
            if er >= 1 << 63:
                er -= 1 << 64
        else:
            er = estimate_distance(s, last)
        if name in s.groups:
            raise RdbError("Duplicated consumer group name")
        g = Group(last, er)
        s.groups[name] = g
        npel = r.plain_length()
        for _ in range(npel):
            i = int.from_bytes(r.take(16), "big")
            nack = NACK(None, 0)
            nack.delivery_time = _ms(r)
            nack.delivery_count = r.plain_length()
            if i in g.pel:
                raise RdbError("Duplicated global PEL entry loading stream consumer group")
            g.pel[i] = nack
        ncons = r.plain_length()
        for _ in range(ncons):
            cname = r.string()
            if cname in g.consumers:
                raise RdbError("Duplicate stream consumer detected.")
            cons = Consumer(cname, _ms(r))
            g.consumers[cname] = cons
            n = r.plain_length()
            for _ in range(n):
                i = int.from_bytes(r.take(16), "big")
                nack = g.pel.get(i)
                if nack is None:
                    raise RdbError("Consumer entry not found in group global PEL")
                if nack.consumer is not None:
                    raise RdbError("Duplicated consumer PEL entry loading a stream consumer group")
                nack.consumer = cons
                cons.pel[i] = nack
        for nack in g.pel.values():
            if nack.consumer is None:
                raise RdbError("Stream CG PEL entry without consumer")
    return s


DECODES = (T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2)
