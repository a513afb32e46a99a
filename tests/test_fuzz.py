"""Fuzz smoke test: every ``scripts/fuzz`` target, a few thousand inputs each,
in the default test run (the campaign of a million inputs per target is
``scripts/fuzz``; its summary is artifacts/fuzz-latest.txt).

Each target gets its real seeds and then mutated inputs from a fixed RNG seed
(reproducible). A failure names the input (hex) so it can be kept as a
regression test. The harness is checked as well: it must reach both the
accepting and the refusing paths of the code under test, and it must report
a planted bug.
"""

from __future__ import annotations

import pytest

import fuzz_targets as ft

# inputs per target: together about 10 s on one core
SMOKE = {"parser": 4000, "reply": 4000, "bus": 3000, "dump": 3000, "nodes_conf": 1000, "aof": 4000,
         "config": 4000}


def _campaign(name: str, n: int, seed: int = 1):
    target = ft.TARGETS[name]()
    mut = ft.Mutator(target.seeds(), seed=seed)
    failures = []
    inputs = list(target.seeds()) + [mut.next() for _ in range(n)]
    for data in inputs:
        try:
            target.run(data)
        except Exception as e:  # noqa: BLE001 - every exception is a finding
            failures.append("%s: %s (input %s)" % (type(e).__name__, str(e)[:200], data[:300].hex()))
    return target, failures


@pytest.mark.parametrize("name", list(SMOKE))
def test_fuzz_smoke(name):
    target, failures = _campaign(name, SMOKE[name])
    assert failures == [], "%d finding(s), first: %s" % (len(failures), failures[0])
    if name == "dump":
        # both RESTORE outcomes are exercised, for every value type
        assert target.ok > 100 and target.bad > 100, (target.ok, target.bad)
    if name == "bus":
        assert target.accepted > 100 and target.rejected > 100, (target.accepted, target.rejected)


def test_fuzz_dump_seeds_cover_every_type():
    """The dump seeds restore, and cover every type Redis 7.0 DUMPs, in the
    encodings Redis 7.0.15 writes (tests/fixtures/dump)."""
    target = ft.DumpTarget()
    types = set()
    for body in target.seeds():
        target.run(body)
        types.add(target.srv.dbs[0].lookup(b"k", 0) is not None)
        target._cmd(b"RESTORE", b"t", b"0", ft.with_footer(body), b"REPLACE")
        types.add(target._cmd(b"TYPE", b"t"))
    assert {b"+string\r\n", b"+list\r\n", b"+set\r\n", b"+zset\r\n", b"+hash\r\n", b"+stream\r\n"} <= types


@pytest.mark.expects_internal_error
def test_fuzz_dump_target_reports_a_planted_bug(monkeypatch):
    """A decoder that crashes or accepts garbage is a finding, not a pass."""
    from frtrio.store import intset, rdb, rdb_format, rdb_strings

    target = ft.DumpTarget()
    body = bytes([rdb_format.T_SET_INTSET]) + rdb_strings.enc_string(intset.intset_build([1, 2, 3]), False)
    target.run(body)  # fine as it is

    def broken(blob):
        raise TypeError("planted")

    monkeypatch.setattr(rdb, "intset_members", broken)
    with pytest.raises(ft.FuzzFinding, match="internal error|RESTORE replied"):
        target.run(body)


def test_c10_fuzz_bus_target_reports_a_state_change(monkeypatch):
    """C10 / I09: a rejected packet that changes the bus core's state is a finding."""
    from frtrio.cluster import bus_codec as bc

    target = ft.BusTarget()
    bad = b"RCmb" + b"\x00" * 4  # too short: rejected
    target.run(bad)
    core = target.pristine[1]
    real = type(target.pristine[2]).receive_raw

    def leaky(self, link, data, now):
        core.state.current_epoch += 1
        return real(self, link, data, now)

    monkeypatch.setattr(type(target.pristine[2]), "receive_raw", leaky)
    with pytest.raises(ft.FuzzFinding, match="rejected packet changed state"):
        target.run(bad)
    assert bc  # the codec module is the one the target decodes with
