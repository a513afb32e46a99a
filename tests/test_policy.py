"""Strict and hardened modes (contract row C16).

Unit tests of the policy core, and a differential test in the simulator:
a strict node and a hardened node get the same bytes at the same virtual
instants and must answer byte for byte the same, for generated valid
command sequences, long pipelines (where hardened's ResourceClamp yields) and
malformed input (where hardened only adds a bounded diagnostic)."""

from __future__ import annotations

import trio
from hypothesis import HealthCheck, given, settings, assume
from hypothesis import strategies as st

from frtrio.core.policy import (
    ALLOWLIST,
    BATCH_CLAMP,
    BOUNDED_PARSER_DIAGNOSTICS,
    DIAG_MAX_BYTES,
    HARDENED,
    META_MAX_CHARS,
    METADATA_SANITIZATION,
    REASON_BUDGET_EXHAUSTED,
    REASON_NONALLOWLISTED,
    RESOURCE_CLAMP,
    STRICT,
    Policy,
    bounded_excerpt,
)
from frtrio.sim.world import SimWorld
from support import reply_end


class Recorder:
    def __init__(self):
        self.events = []

    def emit(self, event, **kw):
        self.events.append((event, kw))
        return kw


# --- the policy core --------------------------------------------------------------------


def test_c16_allowlist_is_exactly_the_three_defences():
    assert ALLOWLIST == ("BoundedParserDiagnostics", "MetadataSanitization", "ResourceClamp")


def test_c16_strict_never_deviates():
    rec = Recorder()
    p = Policy(STRICT, events=rec)
    for d in ALLOWLIST + ("AnythingElse",):
        assert p.allow(d) is False
    assert p.batch_clamp() == 0 and p.effective_mode == STRICT
    assert p.sanitize(b"a\x00b\xff") == "a\x00b\\xff"  # text, not sanitised
    assert p.parser_diagnostic(b"*1\r\n$x\r\n") is None
    assert rec.events == []


def test_c16_hardened_takes_allowlisted_defences():
    p = Policy(HARDENED)
    assert p.allow(RESOURCE_CLAMP) and p.allow(METADATA_SANITIZATION)
    assert p.allow(BOUNDED_PARSER_DIAGNOSTICS)
    assert p.taken == {RESOURCE_CLAMP: 1, METADATA_SANITIZATION: 1, BOUNDED_PARSER_DIAGNOSTICS: 1}
    assert p.batch_clamp() == BATCH_CLAMP
    assert p.sanitize("x\ny\u00e9" + "z" * 500) == "x?y?" + "z" * (META_MAX_CHARS - 4)


def test_c16_hardened_nonallowlisted_rejected_fail_closed():
    rec = Recorder()
    p = Policy(HARDENED, events=rec)
    assert p.allow("AutoRepairSlots", slot=7) is False
    assert p.rejected == {"AutoRepairSlots": 1} and p.used == 0
    ev, kw = rec.events[0]
    assert ev == "policy.rejected" and kw["reason_code"] == REASON_NONALLOWLISTED
    assert kw["reason_code"] == "cluster.hardened_nonallowlisted_rejected"
    assert kw["outcome"] == "rejected" and kw["deviation"] == "AutoRepairSlots"


def test_c16_budget_exhausted_falls_back_to_strict_and_logs_once():
    rec = Recorder()
    p = Policy(HARDENED, budget=3, events=rec)
    assert [p.allow(RESOURCE_CLAMP) for _ in range(5)] == [True, True, True, False, False]
    assert p.exhausted and p.effective_mode == STRICT and p.batch_clamp() == 0
    assert p.parser_diagnostic(b"junk") is None
    assert [e for e, kw in rec.events] == ["policy.budget_exhausted"]
    assert rec.events[0][1]["reason_code"] == REASON_BUDGET_EXHAUSTED
    assert rec.events[0][1]["reason_code"] == "cluster.hardened_budget_exhausted_failclosed"


def test_c16_bounded_excerpt():
    data = b"*3\r\n$3\r\nSET\r\n" + b"\xff" * 1000
    ex = bounded_excerpt(data, 20)
    assert ex["total"] == len(data) and ex["truncated"]
    assert len(ex["bytes"].encode().decode("unicode_escape").encode("latin-1")) <= DIAG_MAX_BYTES
    assert ex["bytes"].isascii()


# --- differential: strict and hardened answer the same --------------------------------


def _count(buf: bytes) -> int:
    n = pos = 0
    while True:
        end = reply_end(buf, pos)
        if end < 0:
            return n
        n, pos = n + 1, end


async def _exchange(world, node, data: bytes, n_replies: int | None) -> bytes:
    slot = world.nodes[node]
    s = await world.net.connect(world.add_client_host("d-" + node), slot.host, slot.port)
    await s.send_all(data)
    buf = b""
    with trio.move_on_after(5):
        while n_replies is None or _count(buf) < n_replies:
            d = await s.receive_some(65536)
            if not d:
                break
            buf += d
    await s.aclose()
    return buf


def differential(cases) -> list:
    """Send each (bytes, expected replies) to a strict and a hardened node at
    the same virtual instant; return [(strict reply, hardened reply)] and the
    hardened node's policy."""
    w = SimWorld(seed=1, log_ops=False)
    w.add_node("strict", {"frtrio-mode": "strict"})
    w.add_node("hard", {"frtrio-mode": "hardened"})
    out = []

    async def main():
        async with trio.open_nursery() as root:
            w.nursery = root
            await w.start_node("strict")
            await w.start_node("hard")
            for data, n in cases:
                res = {}

                async def one(node):
                    res[node] = await _exchange(w, node, data, n)

                async with trio.open_nursery() as n2:
                    n2.start_soon(one, "strict")
                    n2.start_soon(one, "hard")
                out.append((res["strict"], res["hard"]))
            out.append(w.nodes["hard"].node.policy)
            root.cancel_scope.cancel()

    w.run(main)
    return out


def _resp(argv) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


KEYS = st.sampled_from([b"k1", b"k2", b"{t}a", b"l1", b"z1", b"h1", b"s1"])
VALS = st.one_of(st.sampled_from([b"", b"0", b"1", b"-5", b"10", b"abc", b"3.5", b"x" * 40]),
                 st.binary(max_size=8))
NUMS = st.sampled_from([b"0", b"1", b"-1", b"2", b"100", b"notanumber"])


def _cmd():
    return st.one_of(
        st.tuples(st.just(b"SET"), KEYS, VALS).map(list),
        st.tuples(st.just(b"GET"), KEYS).map(list),
        st.tuples(st.sampled_from([b"INCR", b"DECR", b"STRLEN", b"TYPE", b"LLEN", b"LPOP",
                                   b"RPOP", b"EXISTS", b"DEL", b"ZCARD", b"HGETALL",
                                   b"SMEMBERS", b"GETDEL"]), KEYS).map(list),
        st.tuples(st.sampled_from([b"APPEND", b"RPUSH", b"LPUSH", b"SADD", b"INCRBY",
                                   b"SETNX", b"GETSET"]), KEYS, VALS).map(list),
        st.tuples(st.just(b"LRANGE"), KEYS, NUMS, NUMS).map(list),
        st.tuples(st.just(b"GETRANGE"), KEYS, NUMS, NUMS).map(list),
        st.tuples(st.just(b"ZADD"), KEYS, NUMS, VALS).map(list),
        st.tuples(st.just(b"ZRANGE"), KEYS, NUMS, NUMS, st.just(b"WITHSCORES")).map(list),
        st.tuples(st.just(b"HSET"), KEYS, VALS, VALS).map(list),
        st.tuples(st.just(b"MSET"), KEYS, VALS, KEYS, VALS).map(list),
        st.tuples(st.just(b"MGET"), KEYS, KEYS).map(list),
        st.tuples(st.just(b"EXPIRE"), KEYS, NUMS).map(list),
        st.tuples(st.just(b"TTL"), KEYS).map(list),
        st.sampled_from([[b"PING"], [b"DBSIZE"], [b"MULTI"], [b"EXEC"], [b"DISCARD"],
                         [b"GET"], [b"NOSUCHCMD", b"x"], [b"ECHO", b"hi"], [b"SET", b"k1"]]),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_cmd(), min_size=1, max_size=6), min_size=1, max_size=6))
def test_c16_strict_and_hardened_reply_identically_to_valid_input(batches):
    cases = [(b"".join(_resp(c) for c in batch), len(batch)) for batch in batches]
    *pairs, policy = differential(cases)
    for (a, b), (data, n) in zip(pairs, cases):
        assert _count(a) == n, (data, a)
        assert a == b, (data, a, b)
    assert policy.mode == HARDENED and policy.rejected == {}


def test_c16_long_pipeline_clamped_in_hardened_same_replies():
    n = BATCH_CLAMP * 3 + 17
    cmds = [_resp([b"INCR", b"ctr"]) if i % 2 else _resp([b"PING"]) for i in range(n)]
    inline = b"".join(b"ECHO %d\r\n" % i for i in range(300))
    (a, b), (c, d), policy = differential([(b"".join(cmds), n), (inline, 300)])
    assert a == b and _count(a) == n and a.endswith(b":%d\r\n+PONG\r\n" % (n // 2))
    assert c == d and _count(c) == 300
    assert policy.taken.get(RESOURCE_CLAMP, 0) >= 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.binary(min_size=1, max_size=40),
    st.sampled_from([b"*1\r\n$x\r\n", b"*-\r\n", b"*2\r\n$3\r\nGET\r\n:1\r\n", b'SET "a\r\n',
                     b"*1\r\n$99999999999\r\n", b"PING\r\n"]),
), min_size=1, max_size=4))
def test_c16_malformed_input_same_replies_hardened_adds_diagnostics(chunks):
    # (SYNC/PSYNC start a full sync: its payload carries each server's own
    # replication id and time, different by design)
    assume(not any(b"sync" in c.lower() for c in chunks))
    cases = [(c, None) for c in chunks]
    *pairs, policy = differential(cases)
    for (a, b), (data, _) in zip(pairs, cases):
        assert a == b, (data, a, b)
    assert policy.rejected == {}
    errors = sum(a.count(b"-ERR Protocol error") for a, _ in pairs)
    assert policy.taken.get(BOUNDED_PARSER_DIAGNOSTICS, 0) == errors


# --- in whole simulated runs ---------------------------------------------------------------

from frtrio.runtime.node import Node  # noqa: E402


class RogueNode(Node):
    """Claims to have taken a deviation outside the allowlist (test only)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.policy.taken["AutoRepairSlots"] = 1


def test_c16_fault_scenarios_hold_in_hardened_mode():
    from frtrio.sim.scenario import run_scenario

    for name in ("blocked-clients", "multi-disconnect"):
        r = run_scenario(name, 5, {"mode": "hardened"}, keep_lines=True)
        assert r.ok, r.violations
        assert all('"mode":"hardened"' in line for line in r.lines)


def test_c16_i12_checker_flags_a_non_allowlisted_deviation():
    from frtrio.sim.scenario import run_scenario

    r = run_scenario("smoke", 1, {"mode": "hardened"}, node_class="test_policy:RogueNode")
    v = [v for v in r.violations if v["reason_code"] == "cluster.hardened_policy_violation"]
    assert v and v[0]["detail"]["deviations"] == ["AutoRepairSlots"]
