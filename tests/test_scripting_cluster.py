"""Scripting in cluster mode, differential against redis-server 7.0.15 in
cluster mode (the pairs of tests/test_cluster_diff.py): EVAL/FCALL routed by
their declared keys (MOVED / CROSSSLOT), ``redis.call`` on an undeclared key
of another node or another slot refused with Redis's errors, the
``no-cluster`` and ``allow-cross-slot-keys`` flags."""

from __future__ import annotations

import pytest
from conftest import requires_redis
from test_cluster_diff import Pair, TwoPair, two  # noqa: F401

pytestmark = [requires_redis, pytest.mark.e2e]

FOO = "foo"  # slot 12182: node B's in TwoPair
BAR = "bar"  # slot 5061: mine


def test_scripting_routing_in_cluster(two):  # noqa: F811
    d = two
    d("SET", BAR, "1")
    d("SET", "{bar}2", "2")
    for cmd in ("EVAL", "EVAL_RO"):
        d(cmd, "return redis.call('get', KEYS[1])", "1", BAR)
        d(cmd, "return redis.call('get', KEYS[1])", "1", FOO)  # MOVED
        d(cmd, "return 1", "2", BAR, FOO)  # CROSSSLOT
        d(cmd, "return redis.call('get', KEYS[1])", "2", BAR, "{bar}2")
        d(cmd, "return 1", "0")
    d("EVAL", "return redis.call('get', 'foo')", "0")  # undeclared key of node B
    d("EVAL", "return redis.call('get', 'bar')", "0")  # undeclared but local: allowed
    d("EVAL", "#!lua\nreturn redis.call('get', 'foo')", "0")
    d("EVAL", "#!lua\nredis.call('get', KEYS[1]); return redis.call('get', 'x1')", "1", BAR)
    d("EVAL", "#!lua flags=allow-cross-slot-keys\nredis.call('get', KEYS[1]); "
              "return redis.call('get', '{bar}2')", "1", BAR)
    d("EVAL", "#!lua\nreturn redis.call('mget', 'bar', 'x1')", "0")
    d("EVAL", "redis.call('get', KEYS[1]); return redis.call('get', 'x1')", "1", BAR)
    d("EVAL", "#!lua flags=no-cluster\nreturn 1", "0")
    d("EVAL", "return redis.pcall('get', 'foo')", "0")
    d("SCRIPT", "LOAD", "return redis.call('get', KEYS[1])")
    d("EVALSHA", "4e6d8fc8bb01276962cce5371fa795a7763657ae", "1", FOO)
    d("FUNCTION", "LOAD", "REPLACE",
      "#!lua name=cl\nredis.register_function('g', function(k) return redis.call('get', k[1]) end)\n"
      "redis.register_function{function_name='nc', callback=function() return 1 end, flags={'no-cluster'}}")
    d("FCALL", "g", "1", BAR)
    d("FCALL", "g", "1", FOO)
    d("FCALL", "g", "2", BAR, FOO)
    d("FCALL", "nc", "0")
    d("FUNCTION", "FLUSH")
