"""The before-sleep task manager (frtrio/core/beforesleep.py): one place orders the
deferred duties of a node, in Redis's order (contract row C13)."""

from __future__ import annotations

import os
import random

import pytest

from frtrio.core.beforesleep import ORDER, BeforeSleep, DutyOrderError


def test_c13_duties_run_in_redis_order_whatever_the_registration_order():
    for seed in range(20):
        bs = BeforeSleep()
        ran = []
        names = list(ORDER)
        random.Random(seed).shuffle(names)
        for n in names:
            bs.register(n, lambda n=n: ran.append(n))
        assert bs.run() is True
        assert ran == list(ORDER)
    assert ORDER.index("cluster_manual_failover") < ORDER.index("cluster_failover") \
        < ORDER.index("cluster_update_state") < ORDER.index("cluster_save_config") \
        < ORDER.index("cluster_broadcast")


def test_c13_a_flush_requested_by_a_duty_reruns_the_round_in_order():
    bs = BeforeSleep()
    bs.trace = []
    state = {"n": 0}

    def save():  # work that asks for another flush (as a save may)
        state["n"] += 1
        if state["n"] == 1:
            assert bs.run() is False  # not nested: deferred
    bs.register("aof_flush", lambda: None)
    bs.register("cluster_save_config", save)
    bs.register("cluster_update_state", lambda: None)
    bs.run()
    assert bs.trace == ["cluster_update_state", "cluster_save_config", "aof_flush"] * 2


def test_c13_running_a_duty_out_of_order_fails():
    bs = BeforeSleep()
    bs.trace = []  # (the order is checked on the traced round)
    bs.register("aof_flush", lambda: bs._enter(ORDER.index("cluster_save_config")))
    with pytest.raises(DutyOrderError):
        bs.run()


def test_unknown_slot_is_refused():
    with pytest.raises(KeyError):
        BeforeSleep().register("no-such-duty", lambda: None)


def test_c13_a_cluster_node_runs_state_update_then_save_then_aof(tmp_path):
    """A real node (in process): after CLUSTER ADDSLOTS and a write, one flush
    runs the cluster state update, the nodes.conf save and the AOF write in
    that order, and both files are on disk before anything is sent."""
    import frtrio.commands  # noqa: F401
    from frtrio.config import Config
    from frtrio.runtime.env import RealEnv
    from frtrio.runtime.node import Node

    cfg = Config()
    for k, v in (("dir", str(tmp_path)), ("cluster-enabled", "yes"), ("appendonly", "yes"),
                 ("appendfsync", "always"), ("port", "7999")):
        cfg.set(k, v)
    node = Node(cfg, RealEnv(seed=1))
    node.load()
    try:
        srv = node.server
        c = srv.new_client()
        node.before_sleep.trace = []
        srv.execute(c, [b"CLUSTER", b"ADDSLOTS", b"0", b"1"])
        srv.execute(c, [b"FLUSHALL"])  # a write that needs no slot
        node.flush_effects()
        assert node.before_sleep.trace == ["cluster_update_state", "cluster_save_config",
                                           "blocked_clients", "slot_migration",
                                           "tracking_broadcast", "aof_flush", "replication_feed",
                                           "free_clients"]
        assert b"0-1" in open(os.path.join(str(tmp_path), "nodes.conf"), "rb").read()
        aof_dir = os.path.join(str(tmp_path), "appendonlydir")
        incr = [f for f in os.listdir(aof_dir) if f.endswith(".incr.aof")]
        assert b"FLUSHALL" in open(os.path.join(aof_dir, incr[0]), "rb").read()
    finally:
        node._final_flush()
