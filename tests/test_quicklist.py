"""``store.quicklist.ListValue`` behaves as a deque of the same elements
(model-based, hypothesis), and keeps a big list's interior packed."""

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as hs

from frtrio.store import quicklist
from frtrio.store.quicklist import CHUNK, ListValue

_elem = hs.binary(min_size=0, max_size=6)
_ops = hs.lists(hs.one_of(
    hs.tuples(hs.just("append"), _elem),
    hs.tuples(hs.just("appendleft"), _elem),
    hs.tuples(hs.just("extend"), hs.lists(_elem, max_size=300)),
    hs.tuples(hs.just("extendleft"), hs.lists(_elem, max_size=300)),
    hs.tuples(hs.just("pop"), hs.integers(0, 300)),
    hs.tuples(hs.just("popleft"), hs.integers(0, 300)),
    hs.tuples(hs.just("set"), hs.integers(-700, 700), _elem),
    hs.tuples(hs.just("insert"), hs.integers(-700, 700), _elem),
    hs.tuples(hs.just("trim"), hs.integers(0, 400), hs.integers(0, 400)),
    hs.tuples(hs.just("index"), _elem),
    hs.tuples(hs.just("range"), hs.integers(0, 700), hs.integers(0, 700)),
    hs.tuples(hs.just("copy")),
    hs.tuples(hs.just("clear")),
), max_size=40)


@given(init=hs.lists(_elem, max_size=600), ops=_ops)
@settings(max_examples=300, deadline=None)
def test_listvalue_matches_deque(init, ops):
    q, d = ListValue(init), deque(init)
    for op in ops:
        name = op[0]
        if name in ("append", "appendleft", "extend", "extendleft"):
            getattr(q, name)(op[1])
            getattr(d, name)(op[1])
        elif name in ("pop", "popleft"):
            for _ in range(min(op[1], len(d))):
                assert getattr(q, name)() == getattr(d, name)()
        elif name == "set":
            if -len(d) <= op[1] < len(d):
                q[op[1]] = op[2]
                d[op[1]] = op[2]
        elif name == "insert":
            q.insert(op[1], op[2])
            d.insert(op[1], op[2])
        elif name == "trim":
            left, right = op[1], op[2]
            q.trim(left, right)
            if left + right >= len(d):
                d.clear()
            else:
                for _ in range(left):
                    d.popleft()
                for _ in range(right):
                    d.pop()
        elif name == "index":
            want = d.index(op[1]) if op[1] in d else None
            assert (op[1] in q) == (want is not None)
            if want is not None:
                assert q.index(op[1]) == want
        elif name == "range":
            s, e = sorted((min(op[1], len(d)), min(op[2], len(d))))
            assert q.range(s, e) == list(d)[s:e]
        elif name == "copy":
            q2 = q.copy_value()
            q2.append(b"only-in-the-copy")
            if len(q2) > 1:
                q2[0] = b"changed"
        elif name == "clear":
            q.clear()
            d.clear()
        assert len(q) == len(d)
        assert bool(q) == bool(d)
    assert list(q) == list(d)
    assert list(reversed(q)) == list(reversed(d))
    assert q == ListValue(d)
    for i in range(-len(d), len(d), max(1, len(d) // 17)):
        assert q[i] == d[i]
    chunks = q._chunks
    assert type(chunks[0]) is list and type(chunks[-1]) is list
    assert all(quicklist._count(ch) for ch in chunks) or len(chunks) == 1


def test_big_list_is_packed_between_its_ends():
    q = ListValue()
    for i in range(20 * CHUNK):
        q.append(b"member:%010d" % i)
    packed = [ch for ch in q._chunks if type(ch) is tuple]
    assert len(packed) == len(q._chunks) - 2
    assert q[5 * CHUNK + 3] == b"member:%010d" % (5 * CHUNK + 3)
    # big elements stay open (Redis's plain nodes)
    big = ListValue([b"x" * 1000] * (4 * CHUNK))
    assert all(type(ch) is list for ch in big._chunks)
