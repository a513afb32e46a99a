"""Cluster mode of one node, in process: the engine with a ClusterCore over a
constructed state (no sockets). Contract rows:

* C01 CLUSTER dispatch, arity and every subcommand's error texts;
* C04 redirect replies as they leave the engine (bytes);
* C05 blocked clients released when their slot stops being served here;
* C06 CLUSTER SLOTS / SHARDS / NODES / INFO shapes (RESP2 and RESP3);
* C07 ASKING (one-shot) / READONLY / READWRITE transitions;
* C08 startup reconciliation (verifyClusterConfigWithData);
* C14 slot-table consistency under any ADDSLOTS/DELSLOTS/SETSLOT/FLUSHSLOTS/
  RESET sequence (hypothesis) and the OK/FAIL reducer (coverage, majority,
  rejoin delay, the 2 s startup hold).

Layout (as in test_cluster_routing): myself = A owns 0-5460, B owns
5461-10922, C owns 10923-16382, 16383 unbound, R replicates B, X is an empty
master.
"""

from __future__ import annotations

import random

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from frtrio.core.client import F
import frtrio.commands  # noqa: F401
from frtrio.cluster import routing
from frtrio.cluster.core import ClusterCore, StartupError
from frtrio.cluster.slots import CLUSTER_SLOTS, key_slot
from frtrio.cluster.state import ClusterNode, ClusterState
from frtrio.commands.table import _FACTS, TABLE
from frtrio.config import Config
from frtrio.core.engine import BlockOn, Server

ID_A = "a" * 40
ID_B = "b" * 40
ID_C = "c" * 40
ID_R = "d" * 40
ID_X = "e" * 40
UNKNOWN = "f" * 40
T0 = 1_700_000_000_000

SLOT_A, SLOT_B, SLOT_C, SLOT_FREE = 100, 6000, 12000, 16383


def key_for(slot: int, prefix: str = "k") -> bytes:
    i = 0
    while True:
        k = ("%s%d" % (prefix, i)).encode()
        if key_slot(k) == slot:
            return k
        i += 1


KA, KB, KC, KFREE = (key_for(s) for s in (SLOT_A, SLOT_B, SLOT_C, SLOT_FREE))


def _node(nid, flags, ip, port, hostname=""):
    n = ClusterNode(nid, flags)
    n.ip, n.port, n.cport, n.hostname = ip, port, port + 10000, hostname
    return n


class H:
    """An in-process cluster node: ``run(*argv) -> reply bytes``."""

    def __init__(self, layout: str = "three", me_replica: bool = False, **config):
        cfg = Config()
        cfg.values["cluster-enabled"] = "yes"
        # the layout leaves slot 16383 unbound: by default do not let that
        # alone fail the cluster (tests about coverage turn it back on)
        cfg.values["cluster-require-full-coverage"] = "no"
        for k, v in config.items():
            cfg.values[k.replace("_", "-")] = v
        self.srv = srv = Server(cfg, random.Random(7))
        srv.now_ms = T0
        a = _node(ID_A, ("master",), "127.0.0.1", 7000)
        if layout == "alone":
            a.set_flag("myself")
            st = ClusterState(a)
        else:
            b = _node(ID_B, ("master",), "127.0.0.2", 7001, "b.example")
            c = _node(ID_C, ("master",), "127.0.0.3", 7002)
            r = _node(ID_R, ("slave",), "127.0.0.4", 7003)
            x = _node(ID_X, ("master",), "127.0.0.5", 7004)
            me = r if me_replica else a
            me.set_flag("myself")
            st = ClusterState(me)
            for n in (a, b, c, r, x):
                st.add_node(n)
            st.set_master(r, b)
            b.config_epoch, c.config_epoch, a.config_epoch, x.config_epoch = 2, 3, 1, 4
            st.current_epoch = 4
            # (in three runs: the bulk binding is tested equal to binding
            # slot by slot, test_c14_assign_slots_binds_as_assign_slot_one_by_one)
            st.assign_slots(range(0, 5461), a)
            st.assign_slots(range(5461, 10923), b)
            st.assign_slots(range(10923, 16383), c)
            st.state_ok = True
        st.first_update_call = T0 - 10_000  # past the startup hold
        self.st = st
        self.core = ClusterCore(srv, st)
        srv.cluster = self.core
        self.saved: list[tuple[str, bool]] = []
        self.save_error: OSError | None = None
        self.c = srv.new_client()

    def node(self, nid):
        return self.st.nodes[nid]

    def client(self, resp=2):
        c = self.srv.new_client()
        c.resp = resp
        return c

    def run(self, *args, c=None) -> bytes:
        c = c or self.c
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.srv.execute(c, argv)
        self.shell()
        return c.take_output()

    def shell(self) -> None:
        """What the node's shell does after a command: carry out its
        effects (CLUSTER SAVECONFIG), then the before-sleep cluster duties;
        nodes.conf writes go to ``saved`` (or fail with ``save_error``)."""
        from frtrio.core.effects import SaveClusterConfig

        effects = list(self.srv.effects)
        self.srv.effects.clear()
        for e in effects:
            assert type(e) is SaveClusterConfig, e
            text = self.st.config_text()
            if self.save_error is None:
                self.saved.append((text, True))
            e.reply.fill(self.core.saveconfig_result(text, self.save_error))
        pending = self.core.flush_todo()
        if pending is not None:
            self.saved.append(pending)

    def val(self, *args, c=None):
        r = hiredis.Reader()
        r.feed(self.run(*args, c=c))
        return r.gets()

    def tick(self, ms: int) -> None:
        self.srv.now_ms += ms
        self.core.cron()


def err(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


OK = b"+OK\r\n"


# --- C01: dispatch and arity -----------------------------------------------------

CLUSTER_SUBS = sorted(k.split("|")[1] for k in _FACTS if k.startswith("cluster|"))


def test_c01_every_subcommand_is_registered():
    assert len(CLUSTER_SUBS) == 27
    registered = TABLE[b"cluster"].subcommands
    # (plus Redis 8.4's atomic slot migration, not listed by COMMAND)
    assert sorted(s.decode() for s, c in registered.items() if c.listed) == CLUSTER_SUBS
    assert sorted(s.decode() for s, c in registered.items() if not c.listed) == [
        "migration", "syncslots"]


def test_c01_container_errors():
    h = H()
    assert h.run("CLUSTER") == err("ERR wrong number of arguments for 'cluster' command")
    assert h.run("CLUSTER", "FoO") == err("ERR unknown subcommand 'FoO'. Try CLUSTER HELP.")
    assert h.run("cluster", "foo", "bar") == err("ERR unknown subcommand 'foo'. Try CLUSTER HELP.")


@pytest.mark.parametrize("sub", CLUSTER_SUBS)
def test_c01_wrong_arity_every_subcommand(sub):
    h = H()
    arity = _FACTS["cluster|" + sub][1]
    if arity >= 0:
        argcs = [arity + 1, arity - 1] if arity > 2 else [arity + 1]
    else:
        argcs = [-arity - 1] if -arity - 1 >= 2 else []
    for argc in argcs:
        argv = ["CLUSTER", sub.upper()] + ["1"] * (argc - 2)
        assert h.run(*argv) == err(
            "ERR wrong number of arguments for 'cluster|%s' command" % sub), argv


@pytest.mark.parametrize("sub", CLUSTER_SUBS)
def test_c01_disabled_without_cluster(sub):
    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    arity = _FACTS["cluster|" + sub][1]
    argv = [b"CLUSTER", sub.encode()] + [b"1"] * (abs(arity) - 2)
    srv.execute(c, argv)
    assert c.take_output() == err("ERR This instance has cluster support disabled")


@pytest.mark.parametrize("name", ["ASKING", "READONLY", "READWRITE"])
def test_c01_client_mode_commands_disabled_without_cluster(name):
    srv = Server(Config(), random.Random(1))
    c = srv.new_client()
    srv.execute(c, [name.encode()])
    assert c.take_output() == err("ERR This instance has cluster support disabled")


def test_c01_parser_level_argument_errors():
    h = H()
    assert h.run("CLUSTER", "MEET", "a", "b", "c", "d") == err(
        "ERR unknown subcommand or wrong number of arguments for 'MEET'. Try CLUSTER HELP.")
    assert h.run("CLUSTER", "reset", "HARD", "x") == err(
        "ERR unknown subcommand or wrong number of arguments for 'reset'. Try CLUSTER HELP.")
    assert h.run("CLUSTER", "FAILOVER", "FORCE", "x") == err(
        "ERR unknown subcommand or wrong number of arguments for 'FAILOVER'. Try CLUSTER HELP.")
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "1", "2", "3") == err(
        "ERR wrong number of arguments for 'cluster|addslotsrange' command")
    assert h.run("CLUSTER", "DELSLOTSRANGE", "1", "2", "3") == err(
        "ERR wrong number of arguments for 'cluster|delslotsrange' command")


def test_c01_help():
    h = H()
    v = h.val("CLUSTER", "HELP")
    assert v[0] == b"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert v[-2:] == [b"HELP", b"    Prints this help."]
    assert len(v) == 56
    assert h.run("CLUSTER", "HELP").startswith(b"*56\r\n+CLUSTER <subcommand>")


def test_c01_addslots_errors():
    h = H("alone")
    assert h.run("CLUSTER", "ADDSLOTS", "abc") == err("ERR Invalid or out of range slot")
    assert h.run("CLUSTER", "ADDSLOTS", "16384") == err("ERR Invalid or out of range slot")
    assert h.run("CLUSTER", "ADDSLOTS", "-1") == err("ERR Invalid or out of range slot")
    # every argument is parsed before any is checked
    assert h.run("CLUSTER", "ADDSLOTS", "1", "1", "x") == err("ERR Invalid or out of range slot")
    assert h.run("CLUSTER", "ADDSLOTS", "1", "2", "1") == err("ERR Slot 1 specified multiple times")
    assert h.st.myself.numslots == 0  # nothing changed
    assert h.run("CLUSTER", "ADDSLOTS", "5", "6") == OK
    assert h.run("CLUSTER", "ADDSLOTS", "7", "5") == err("ERR Slot 5 is already busy")
    assert h.st.myself.numslots == 2
    assert h.run("CLUSTER", "DELSLOTS", "5", "8") == err("ERR Slot 8 is already unassigned")
    assert h.run("CLUSTER", "DELSLOTS", "5", "5") == err("ERR Slot 5 specified multiple times")
    assert h.run("CLUSTER", "DELSLOTS", "5", "6") == OK
    assert h.st.myself.numslots == 0


def test_c01_slot_range_errors():
    h = H("alone")
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "5", "2") == err(
        "ERR start slot number 5 is greater than end slot number 2")
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "0", "x") == err("ERR Invalid or out of range slot")
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "0", "10", "5", "6") == err(
        "ERR Slot 5 specified multiple times")
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "0", "10") == OK
    # ranges are parsed and checked pair by pair (Redis's order)
    assert h.run("CLUSTER", "ADDSLOTSRANGE", "5", "6", "x", "y") == err("ERR Slot 5 is already busy")
    assert h.run("CLUSTER", "DELSLOTSRANGE", "20", "30", "x", "y") == err(
        "ERR Slot 20 is already unassigned")
    assert h.run("CLUSTER", "DELSLOTSRANGE", "0", "10") == OK
    assert h.st.myself.numslots == 0 and h.st.check_consistency() == []


def test_c01_setslot_errors():
    h = H()
    me_err = h.run("CLUSTER", "SETSLOT", "x", "STABLE")
    assert me_err == err("ERR Invalid or out of range slot")
    assert h.run("CLUSTER", "SETSLOT", "1", "FOO") == err(
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    assert h.run("CLUSTER", "SETSLOT", "1", "STABLE", "x") == err(
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    assert h.run("CLUSTER", "SETSLOT", "1", "MIGRATING") == err(
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "MIGRATING", ID_C) == err(
        "ERR I'm not the owner of hash slot %d" % SLOT_B)
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", UNKNOWN) == err(
        "ERR I don't know about node %s" % UNKNOWN)
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_R) == err(
        "ERR Target node is not a master")
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "IMPORTING", ID_B) == err(
        "ERR I'm already the owner of hash slot %d" % SLOT_A)
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", UNKNOWN) == err(
        "ERR I don't know about node %s" % UNKNOWN)
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_R) == err(
        "ERR Target node is not a master")
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "NODE", UNKNOWN) == err("ERR Unknown node %s" % UNKNOWN)
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "NODE", ID_R) == err("ERR Target node is not a master")
    h.srv.dbs[0].set(KA, b"v")
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B) == err(
        "ERR Can't assign hashslot %d to a different node while I still hold keys for this "
        "hash slot." % SLOT_A)
    assert h.st.owner(SLOT_A) is h.st.myself
    r = H(me_replica=True)
    assert r.run("CLUSTER", "SETSLOT", "x", "STABLE") == err("ERR Please use SETSLOT only with masters.")


def test_c01_setslot_effects():
    h = H()
    me, b = h.st.myself, h.node(ID_B)
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_B) == OK
    assert h.st.migrating_to[SLOT_A] is b
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B) == OK
    assert h.st.importing_from[SLOT_B] is b
    # IMPORTING is accepted from any master, even one that does not own the slot
    assert h.run("CLUSTER", "SETSLOT", SLOT_FREE, "IMPORTING", ID_X) == OK
    assert h.run("CLUSTER", "SETSLOT", SLOT_FREE, "STABLE") == OK
    assert SLOT_FREE not in h.st.importing_from
    # NODE myself while importing: bump the epoch, clear the import
    epoch_before = h.st.current_epoch
    assert h.run("CLUSTER", "SETSLOT", SLOT_B, "NODE", ID_A) == OK
    assert h.st.owner(SLOT_B) is me and SLOT_B not in h.st.importing_from
    assert me.config_epoch == h.st.current_epoch == epoch_before + 1
    # NODE elsewhere of an empty migrating slot: clears the migrating mark
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B) == OK
    assert h.st.owner(SLOT_A) is b and SLOT_A not in h.st.migrating_to
    assert h.st.check_consistency() == []


def test_c01_setslot_node_last_slot_turns_master_into_replica():
    h = H()
    me = h.st.myself
    for s in range(0, 5461):
        if s != SLOT_A:
            h.st.assign_slot(s, h.node(ID_C))
    h.st.importing_from[SLOT_C] = h.node(ID_C)
    assert h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B) == OK
    assert me.is_replica and me.master_id == ID_B and ID_A in h.node(ID_B).replicas
    assert h.st.importing_from == {} and h.st.migrating_to == {}
    h2 = H(cluster_allow_replica_migration="no")
    for s in range(0, 5461):
        if s != SLOT_A:
            h2.st.assign_slot(s, h2.node(ID_C))
    assert h2.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B) == OK
    assert h2.st.myself.is_master and h2.st.myself.numslots == 0


def test_c01_delslots_clears_importing():
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    assert h.run("CLUSTER", "DELSLOTS", SLOT_B) == OK
    assert SLOT_B not in h.st.importing_from and h.st.owner(SLOT_B) is None


def test_c01_addslots_clears_importing():
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_FREE, "IMPORTING", ID_B)
    assert h.run("CLUSTER", "ADDSLOTS", SLOT_FREE) == OK
    assert SLOT_FREE not in h.st.importing_from and h.st.owner(SLOT_FREE) is h.st.myself


def test_c01_countkeys_getkeys():
    h = H()
    for k in (b"{t}1", b"{t}2", b"{t}3"):
        h.srv.dbs[0].set(k, b"v")
    s = key_slot(b"t")
    assert h.run("CLUSTER", "COUNTKEYSINSLOT", s) == b":3\r\n"
    assert h.run("CLUSTER", "COUNTKEYSINSLOT", "x") == err("ERR value is not an integer or out of range")
    assert h.run("CLUSTER", "COUNTKEYSINSLOT", "-1") == err("ERR Invalid slot")
    assert h.run("CLUSTER", "COUNTKEYSINSLOT", "16384") == err("ERR Invalid slot")
    assert h.val("CLUSTER", "GETKEYSINSLOT", s, "2") == [b"{t}3", b"{t}2"]  # newest first
    assert h.val("CLUSTER", "GETKEYSINSLOT", s, "0") == []
    assert h.run("CLUSTER", "GETKEYSINSLOT", s, "-1") == err("ERR Invalid slot or number of keys")
    assert h.run("CLUSTER", "GETKEYSINSLOT", "16384", "1") == err("ERR Invalid slot or number of keys")
    assert h.run("CLUSTER", "GETKEYSINSLOT", "x", "1") == err("ERR value is not an integer or out of range")
    assert h.run("CLUSTER", "GETKEYSINSLOT", "1", "x") == err("ERR value is not an integer or out of range")
    assert h.run("CLUSTER", "KEYSLOT", "{user1000}.following") == b":3443\r\n"


def test_c01_meet_errors():
    h = H("alone")
    assert h.run("CLUSTER", "MEET", "127.0.0.1", "x") == err("ERR Invalid TCP base port specified: x")
    assert h.run("CLUSTER", "MEET", "127.0.0.1", "1", "y") == err("ERR Invalid TCP bus port specified: y")
    for ip, port in (("300.0.0.1", "1"), ("127.0.0.1", "0"), ("127.0.0.1", "65536"),
                     ("127.0.0.1", "60000"), ("localhost", "7000"), ("fe80::1%lo", "7000")):
        assert h.run("CLUSTER", "MEET", ip, port) == err(
            "ERR Invalid node address specified: %s:%s" % (ip, port)), ip
    assert h.run("CLUSTER", "MEET", "127.0.0.1", "60000", "1") == OK
    assert h.run("CLUSTER", "MEET", "127.0.0.1", "60000", "1") == OK  # pending: still OK
    hs_nodes = [n for n in h.st.nodes.values() if n.has("handshake")]
    assert len(hs_nodes) == 1 and hs_nodes[0].port == 60000 and hs_nodes[0].cport == 1
    assert h.run("CLUSTER", "MEET", "::FFFF:127.0.0.1", "7000") == OK
    assert any(n.ip == "::ffff:127.0.0.1" for n in h.st.nodes.values())


def test_c01_forget_replicate_replicas_errors():
    h = H()
    assert h.run("CLUSTER", "FORGET", UNKNOWN) == err("ERR Unknown node %s" % UNKNOWN)
    assert h.run("CLUSTER", "FORGET", ID_A) == err("ERR I tried hard but I can't forget myself...")
    assert h.run("CLUSTER", "REPLICATE", UNKNOWN) == err("ERR Unknown node %s" % UNKNOWN)
    assert h.run("CLUSTER", "REPLICATE", ID_A) == err("ERR Can't replicate myself")
    assert h.run("CLUSTER", "REPLICATE", ID_R) == err("ERR I can only replicate a master, not a replica.")
    assert h.run("CLUSTER", "REPLICATE", ID_B) == err(
        "ERR To set a master the node must be empty and without assigned slots.")
    assert h.run("CLUSTER", "REPLICAS", UNKNOWN) == err("ERR Unknown node %s" % UNKNOWN)
    assert h.run("CLUSTER", "SLAVES", ID_R) == err("ERR The specified node is not a master")
    assert h.run("CLUSTER", "COUNT-FAILURE-REPORTS", UNKNOWN) == err("ERR Unknown node %s" % UNKNOWN)
    r = H(me_replica=True)
    assert r.run("CLUSTER", "FORGET", ID_B) == err("ERR Can't forget my master!")


def test_c01_forget_effects():
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_B)
    assert h.run("CLUSTER", "FORGET", ID_B) == OK
    st = h.st
    assert ID_B not in st.nodes and st.owner(SLOT_B) is None
    assert st.migrating_to == {}
    assert st.blacklist[ID_B] == T0 // 1000 + 60
    # the forgotten master's replica now has no master: "slave -"
    line = st.node_line(st.nodes[ID_R])
    assert line.split()[2:4] == ["slave", "-"]
    assert st.check_consistency() == []


def test_c01_replicate_and_replicas():
    h = H("alone")
    b = _node(ID_B, ("master",), "127.0.0.2", 7001)
    h.st.add_node(b)
    assert h.run("CLUSTER", "REPLICATE", ID_B) == OK
    assert h.st.myself.is_replica and h.st.myself.master_id == ID_B
    lines = h.val("CLUSTER", "REPLICAS", ID_B)
    assert lines == [h.st.node_line(h.st.myself).encode()]
    assert not lines[0].endswith(b"\n")
    assert h.val("CLUSTER", "SLAVES", ID_B) == lines


def test_c01_failover_errors():
    h = H()
    assert h.run("CLUSTER", "FAILOVER", "x") == err("ERR syntax error")
    assert h.run("CLUSTER", "FAILOVER") == err("ERR You should send CLUSTER FAILOVER to a replica")
    r = H(me_replica=True)
    assert r.run("CLUSTER", "FAILOVER") == err(
        "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")  # no link to B
    assert r.run("CLUSTER", "FAILOVER", "FORCE") == OK
    assert r.run("CLUSTER", "FAILOVER", "takeover") == OK
    r.st.myself.master_id = None
    assert r.run("CLUSTER", "FAILOVER", "FORCE") == err(
        "ERR I'm a replica but my master is unknown to me")


def test_c01_epoch_commands():
    h = H("alone")
    assert h.run("CLUSTER", "BUMPEPOCH") == b"+BUMPED 1\r\n"
    assert h.run("CLUSTER", "BUMPEPOCH") == b"+STILL 1\r\n"
    assert h.saved and h.saved[-1][1] is True  # saved with fsync
    assert h.run("CLUSTER", "SET-CONFIG-EPOCH", "x") == err("ERR value is not an integer or out of range")
    assert h.run("CLUSTER", "SET-CONFIG-EPOCH", "-1") == err("ERR Invalid config epoch specified: -1")
    assert h.run("CLUSTER", "SET-CONFIG-EPOCH", "5") == err("ERR Node config epoch is already non-zero")
    h2 = H("alone")
    assert h2.run("CLUSTER", "SET-CONFIG-EPOCH", "5") == OK
    assert h2.st.myself.config_epoch == 5 and h2.st.current_epoch == 5
    h3 = H()
    assert h3.run("CLUSTER", "SET-CONFIG-EPOCH", "5") == err(
        "ERR The user can assign a config epoch only when the node does not know any other node.")
    # BUMPEPOCH when my epoch is not the maximum
    assert h3.run("CLUSTER", "BUMPEPOCH") == b"+BUMPED 5\r\n"
    assert h3.run("CLUSTER", "BUMPEPOCH") == b"+STILL 5\r\n"


def test_c01_reset():
    h = H()
    assert h.run("CLUSTER", "RESET", "x") == err("ERR syntax error")
    h.srv.dbs[0].set(KA, b"v")
    assert h.run("CLUSTER", "RESET") == err("ERR CLUSTER RESET can't be called with master nodes containing keys")
    h.srv.dbs[0].delete(KA)
    old_id = h.st.myself.id
    assert h.run("CLUSTER", "RESET", "soft") == OK
    assert list(h.st.nodes) == [old_id] and h.st.myself.numslots == 0
    assert h.st.current_epoch == 4 and h.st.myself.config_epoch == 1
    assert h.run("CLUSTER", "RESET", "HARD") == OK
    assert h.st.myself.id != old_id and list(h.st.nodes) == [h.st.myself.id]
    assert (h.st.current_epoch, h.st.last_vote_epoch, h.st.myself.config_epoch) == (0, 0, 0)
    assert h.val("CLUSTER", "MYID") == h.st.myself.id.encode()
    assert h.saved[-1][1] is True
    # a replica resets with data: it becomes an empty master
    r = H(me_replica=True)
    r.srv.dbs[0].set(KB, b"v")
    assert r.run("CLUSTER", "RESET") == OK
    assert r.st.myself.is_master and not r.srv.dbs[0].data


def test_c01_saveconfig_and_errors():
    h = H("alone")
    assert h.run("CLUSTER", "SAVECONFIG") == OK
    assert h.saved[-1] == (h.st.config_text(), True)

    h.save_error = PermissionError(13, "Permission denied")
    assert h.run("CLUSTER", "SAVECONFIG") == err(
        "ERR error saving the cluster node config: Permission denied")


def test_c01_flushslots():
    h = H()
    h.srv.dbs[0].set(KA, b"v")
    assert h.run("CLUSTER", "FLUSHSLOTS") == err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    h.srv.dbs[0].delete(KA)
    assert h.run("CLUSTER", "FLUSHSLOTS") == OK
    assert h.st.myself.numslots == 0 and h.node(ID_B).numslots == 5462
    assert h.st.check_consistency() == []


def test_c01_myid_links_countfailure():
    h = H()
    assert h.run("CLUSTER", "MYID") == b"$40\r\n" + ID_A.encode() + b"\r\n"
    assert h.run("CLUSTER", "LINKS") == b"*0\r\n"
    b = h.node(ID_B)
    b.fail_reports = {ID_C: T0 - 1000, ID_X: T0 - 40_000}
    assert h.run("CLUSTER", "COUNT-FAILURE-REPORTS", ID_B) == b":1\r\n"  # expired one dropped
    assert list(b.fail_reports) == [ID_C]


# --- C04: redirects as they leave the engine --------------------------------------------


def test_c04_engine_redirect_bytes():
    h = H()
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    assert h.run("GET", KFREE) == err("CLUSTERDOWN Hash slot not served")
    assert h.run("MGET", KA, KB) == err("CROSSSLOT Keys in request don't hash to the same slot")
    h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_C)
    assert h.run("GET", KA) == err("ASK %d 127.0.0.3:7002" % SLOT_A)
    h.srv.dbs[0].set(b"{%s}1" % KA, b"v")
    assert h.run("MGET", b"{%s}1" % KA, b"{%s}2" % KA) == err(
        "TRYAGAIN Multiple keys request during rehashing of slot")
    h.srv.config.values["cluster-preferred-endpoint-type"] = "hostname"
    h.core.refresh_options()
    assert h.run("GET", KB) == err("MOVED %d b.example:7001" % SLOT_B)
    h.srv.config.values["cluster-preferred-endpoint-type"] = "unknown-endpoint"
    h.core.refresh_options()
    assert h.run("GET", KB) == err("MOVED %d :7001" % SLOT_B)


def test_c04_redirects_count_as_rejected_calls_and_errorstats():
    h = H()
    h.run("GET", KB)
    h.run("GET", KB)
    h.run("GET", KFREE)
    assert h.srv.errorstats["MOVED"] == 2 and h.srv.errorstats["CLUSTERDOWN"] == 1
    assert h.srv.cmdstats["get"][2] == 3


def test_c04_down_replies_through_engine():
    h = H(cluster_require_full_coverage="yes")
    h.node(ID_C).set_flag("fail")
    h.st.bump()
    h.run("PING")  # the reducer runs after the command
    assert not h.st.state_ok
    assert h.run("GET", KA) == err("CLUSTERDOWN The cluster is down")
    h.srv.config.values["cluster-allow-reads-when-down"] = "yes"
    h.core.refresh_options()
    assert h.run("GET", KA) == b"$-1\r\n"
    assert h.run("SET", KA, "v") == err("CLUSTERDOWN The cluster is down and only accepts read commands")
    assert h.run("PING") == b"+PONG\r\n"  # no keys: never redirected


def test_c04_keyless_commands_never_routed():
    h = H()
    h.st.state_ok = False
    for argv in (["PING"], ["DBSIZE"], ["KEYS", "*"], ["SCAN", "0"], ["SELECT", "0"],
                 ["CLUSTER", "INFO"]):
        assert not h.run(*argv).startswith((b"-MOVED", b"-CLUSTERDOWN", b"-ASK")), argv


def test_c04_cluster_mode_restrictions():
    h = H()
    assert h.run("SELECT", "1") == err("ERR SELECT is not allowed in cluster mode")
    assert h.run("SELECT", "0") == OK
    assert h.run("MOVE", KA, "1") == err("ERR MOVE is not allowed in cluster mode")
    assert h.run("SWAPDB", "0", "1") == err("ERR SWAPDB is not allowed in cluster mode")


# --- C05: blocked clients ---------------------------------------------------------------


def _block(h, key, argv=None, c=None):
    c = c or h.client()
    argv = argv or [b"blpop", key, b"0"]
    h.srv.blocking.block(c, BlockOn([key], h.srv.dbs[0], None, lambda cl: None, argv=argv))
    return c


def test_c05_blocked_client_moved_when_slot_reassigned():
    h = H()
    c = _block(h, KA)
    h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B)
    assert c.blocked is None
    assert c.take_output() == err("MOVED %d 127.0.0.2:7001" % SLOT_A)
    assert h.srv.errorstats.get("MOVED") == 1  # counted like any error reply


def test_c05_blocked_client_clusterdown_when_slot_unbound():
    h = H()
    c = _block(h, KA)
    h.run("CLUSTER", "DELSLOTS", SLOT_A)
    assert h.st.state_ok
    assert c.take_output() == err("CLUSTERDOWN Hash slot not served")


def test_c05_blocked_client_clusterdown_when_cluster_fails():
    h = H(cluster_allow_reads_when_down="yes", cluster_require_full_coverage="yes")
    c = _block(h, KA)
    c2 = _block(h, KB, argv=[b"xread", b"block", b"0", b"streams", KB, b"$"])
    h.run("CLUSTER", "DELSLOTS", SLOT_C)  # coverage lost
    assert not h.st.state_ok
    assert c.take_output() == err("CLUSTERDOWN The cluster is down")
    assert c2.take_output() == err("CLUSTERDOWN The cluster is down")


def test_c05_not_released_while_served():
    h = H(cluster_require_full_coverage="yes")
    h.st.assign_slot(SLOT_FREE, h.node(ID_C))  # full coverage
    c = _block(h, KA)
    c_imp = _block(h, KB)
    w = h.client()
    h.srv.blocking.block(w, BlockOn([], h.srv.dbs[0], None, lambda cl: None, argv=[b"wait", b"1", b"0"]))
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)  # importing: still served
    h.run("CLUSTER", "SETSLOT", SLOT_A, "MIGRATING", ID_B)  # migrating: still mine
    h.tick(100)
    assert c.blocked is not None and c_imp.blocked is not None and w.blocked is not None
    # WAIT (no keys) is not touched even when the cluster goes down
    h.run("CLUSTER", "DELSLOTS", SLOT_C)
    assert w.blocked is not None and c.blocked is None


def test_c05_readonly_replica_reader_stays_blocked():
    h = H(me_replica=True)
    reader = h.client()
    reader.flags |= F.READONLY
    _block(h, KB, argv=[b"xread", b"block", b"0", b"streams", KB, b"$"], c=reader)
    writer = h.client()
    writer.flags |= F.READONLY
    _block(h, KB, c=writer)  # BLPOP is a write: MOVED to the master
    h.tick(100)
    assert reader.blocked is not None
    assert writer.blocked is None and writer.take_output() == err("MOVED %d 127.0.0.2:7001" % SLOT_B)


# --- C06: SLOTS / SHARDS / NODES / INFO shapes --------------------------------------------


def test_c06_slots_shape():
    h = H()
    r = h.node(ID_R)
    v = h.val("CLUSTER", "SLOTS")
    assert v == [
        [0, 5460, [b"127.0.0.1", 7000, ID_A.encode(), []]],
        [5461, 10922, [b"127.0.0.2", 7001, ID_B.encode(), [b"hostname", b"b.example"]]],
        [10923, 16382, [b"127.0.0.3", 7002, ID_C.encode(), []]],
    ]  # R is hidden: replication offset 0 (still loading)
    r.repl_offset = 10
    v = h.val("CLUSTER", "SLOTS")
    assert v[1][3] == [b"127.0.0.4", 7003, ID_R.encode(), []]
    r.set_flag("fail")
    assert len(h.val("CLUSTER", "SLOTS")[1]) == 3  # a failed replica is hidden


def test_c06_slots_range_packing_and_bytes():
    h = H("alone")
    h.run("CLUSTER", "ADDSLOTS", "0", "1", "2", "5", "16383")
    me = ID_A.encode()
    node = b"*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\n" + me + b"\r\n*0\r\n"
    assert h.run("CLUSTER", "SLOTS") == (
        b"*3\r\n" + b"*3\r\n:0\r\n:2\r\n" + node + b"*3\r\n:5\r\n:5\r\n" + node
        + b"*3\r\n:16383\r\n:16383\r\n" + node)


def test_c06_slots_endpoint_types_and_resp3():
    h = H(cluster_preferred_endpoint_type="hostname")
    v = h.val("CLUSTER", "SLOTS")
    assert v[0][2] == [b"?", 7000, ID_A.encode(), [b"ip", b"127.0.0.1"]]
    assert v[1][2] == [b"b.example", 7001, ID_B.encode(), [b"ip", b"127.0.0.2"]]
    h = H(cluster_preferred_endpoint_type="unknown-endpoint")
    v = h.val("CLUSTER", "SLOTS")
    assert v[1][2] == [None, 7001, ID_B.encode(), [b"ip", b"127.0.0.2", b"hostname", b"b.example"]]
    c3 = h.client(resp=3)
    raw = h.run("CLUSTER", "SLOTS", c=c3)
    assert b"*4\r\n_\r\n:7001\r\n" in raw and b"%2\r\n$2\r\nip\r\n" in raw
    h = H()
    raw = h.run("CLUSTER", "SLOTS", c=h.client(resp=3))
    assert raw.count(b"%0\r\n") == 2 and raw.count(b"%1\r\n$8\r\nhostname\r\n") == 1


def test_c06_shards_shape():
    h = H()
    h.node(ID_R).repl_offset = 0
    v = h.val("CLUSTER", "SHARDS")
    shards = {s[3][0][1]: s for s in v}  # by the master's id
    assert [s[3][0][1] for s in v] == [ID_A.encode(), ID_B.encode(), ID_C.encode(), ID_X.encode()]
    assert shards[ID_X.encode()][:2] == [b"slots", []]
    b = shards[ID_B.encode()]
    assert b[0] == b"slots" and b[1] == [5461, 10922] and b[2] == b"nodes"
    assert b[3][0] == [b"id", ID_B.encode(), b"port", 7001, b"ip", b"127.0.0.2",
                       b"endpoint", b"127.0.0.2", b"hostname", b"b.example", b"role", b"master",
                       b"replication-offset", 0, b"health", b"online"]
    assert b[3][1] == [b"id", ID_R.encode(), b"port", 7003, b"ip", b"127.0.0.4",
                       b"endpoint", b"127.0.0.4", b"role", b"replica",
                       b"replication-offset", 0, b"health", b"loading"]
    h.node(ID_R).set_flag("fail")
    v = h.val("CLUSTER", "SHARDS")
    assert v[1][3][1][-1] == b"fail"  # failed replicas are still listed
    raw = h.run("CLUSTER", "SHARDS", c=h.client(resp=3))
    assert raw.startswith(b"*4\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*1\r\n%")


def test_c06_shards_node_without_port():
    """A node known only by name (port 0) has no port field; a noflags node
    is reported as master only if it is one (SHARDS lists masters)."""
    h = H()
    h.node(ID_X).port = 0
    v = h.val("CLUSTER", "SHARDS")
    x = [s for s in v if s[3][0][1] == ID_X.encode()][0]
    assert b"port" not in x[3][0]


def test_c06_nodes_lines():
    h = H()
    st = h.st
    h.run("CLUSTER", "SETSLOT", 20, "MIGRATING", ID_B)
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    h.run("CLUSTER", "SETSLOT", 10, "MIGRATING", ID_C)
    h.node(ID_C).set_flag("fail?")
    h.node(ID_X).set_flag("fail")
    h.node(ID_X).set_flag("nofailover")
    text = h.val("CLUSTER", "NODES").decode()
    assert text.endswith("\n")
    lines = {ln.split()[0]: ln for ln in text.splitlines()}
    assert lines[ID_A] == (
        "%s 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 "
        "[10->-%s] [20->-%s] [6000-<-%s]" % (ID_A, ID_C, ID_B, ID_B))
    assert lines[ID_B] == "%s 127.0.0.2:7001@17001,b.example master - 0 0 2 disconnected 5461-10922" % ID_B
    assert lines[ID_C].split()[2] == "master,fail?"
    assert lines[ID_X].split()[2] == "master,fail,nofailover"
    # a replica shows its master's epoch
    assert lines[ID_R] == "%s 127.0.0.4:7003@17003 slave %s 0 0 2 disconnected" % (ID_R, ID_B)
    st.nodes[ID_X].flags.clear()
    text = h.val("CLUSTER", "NODES").decode()
    assert text.count(" noflags ") == 1
    raw = h.run("CLUSTER", "NODES", c=h.client(resp=3))
    assert raw.startswith(b"=%d\r\ntxt:" % (len(text) + 4))


def test_c06_nodes_slot_both_migrating_and_importing_shows_migrating():
    h = H()
    h.st.migrating_to[SLOT_A] = h.node(ID_B)
    h.st.importing_from[SLOT_A] = h.node(ID_C)
    line = h.st.node_line(h.st.myself)
    assert line.endswith("0-5460 [%d->-%s]" % (SLOT_A, ID_B))


def test_c06_info_fields():
    h = H(cluster_require_full_coverage="yes")
    h.node(ID_C).set_flag("fail?")
    h.st.bump()
    h.run("PING")
    text = h.val("CLUSTER", "INFO").decode()
    assert text.endswith("\r\n")
    fields = [ln.split(":")[0] for ln in text.split("\r\n") if ln]
    assert fields == ["cluster_state", "cluster_slots_assigned", "cluster_slots_ok",
                      "cluster_slots_pfail", "cluster_slots_fail", "cluster_known_nodes",
                      "cluster_size", "cluster_current_epoch", "cluster_my_epoch",
                      "cluster_stats_messages_sent", "cluster_stats_messages_received",
                      "total_cluster_links_buffer_limit_exceeded"]
    vals = dict(ln.split(":") for ln in text.split("\r\n") if ln)
    assert vals["cluster_slots_assigned"] == "16383"
    assert vals["cluster_slots_pfail"] == "5460" and vals["cluster_slots_ok"] == "10923"
    assert vals["cluster_known_nodes"] == "5" and vals["cluster_size"] == "3"
    assert vals["cluster_state"] == "fail"  # 16383 unbound
    r = H(me_replica=True)
    vals = dict(ln.split(":") for ln in r.val("CLUSTER", "INFO").decode().split("\r\n") if ln)
    assert vals["cluster_my_epoch"] == "2"  # the master's epoch
    raw = h.run("CLUSTER", "INFO", c=h.client(resp=3))
    assert raw.startswith(b"=") and b"\r\ntxt:cluster_state:" in raw


# --- C07: ASKING / READONLY / READWRITE ----------------------------------------------------


def test_c07_asking_is_one_shot():
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    assert h.run("ASKING") == OK and h.c.flags & F.ASKING
    assert h.run("GET", KB) == b"$-1\r\n"
    assert not h.c.flags & F.ASKING
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)


def test_c07_asking_cleared_by_any_other_command():
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    for other in (["PING"], ["NOSUCHCOMMAND"], ["GET"], ["GET", KA], ["RESET"]):
        h.run("ASKING")
        h.run(*other)
        assert not h.c.flags & F.ASKING, other
    h.run("ASKING")
    h.run("ASKING")
    assert (h.c.flags & F.ASKING)  # ASKING after ASKING keeps it
    assert h.run("SET", KB, "v") == OK
    assert not h.c.flags & F.ASKING


def test_c07_asking_has_no_effect_on_non_importing_slot():
    h = H()
    h.run("ASKING")
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)


def test_c07_asking_survives_multi_until_exec():
    if b"multi" not in TABLE or b"exec" not in TABLE:
        pytest.skip("MULTI/EXEC not implemented yet")
    h = H()
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    h.run("ASKING")
    assert h.run("MULTI") == OK
    assert h.run("SET", KB, "v") == b"+QUEUED\r\n"
    assert h.c.flags & F.ASKING
    assert h.run("GET", KB) == b"+QUEUED\r\n"
    assert h.run("EXEC") == b"*2\r\n+OK\r\n$1\r\nv\r\n"
    assert not h.c.flags & F.ASKING


def test_c07_readonly_readwrite():
    h = H(me_replica=True)
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    assert h.run("READONLY") == OK and h.c.flags & F.READONLY
    assert h.run("GET", KB) == b"$-1\r\n"
    assert h.run("GET", KB) == b"$-1\r\n"  # persistent
    assert h.run("SET", KB, "v") == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    assert h.run("GET", KC) == err("MOVED %d 127.0.0.3:7002" % SLOT_C)
    assert h.run("READWRITE") == OK and not h.c.flags & F.READONLY
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    h.run("READONLY")
    h.run("RESET")
    assert not h.c.flags & F.READONLY


def test_c07_readonly_on_master_changes_nothing():
    h = H()
    assert h.run("READONLY") == OK
    assert h.run("GET", KB) == err("MOVED %d 127.0.0.2:7001" % SLOT_B)
    assert h.run("GET", KA) == b"$-1\r\n"


def test_c07_exec_redirect_discards_transaction():
    if b"multi" not in TABLE or b"exec" not in TABLE:
        pytest.skip("MULTI/EXEC not implemented yet")
    h = H()
    assert h.run("MULTI") == OK
    assert h.run("SET", KA, "1") == b"+QUEUED\r\n"
    assert h.run("GET", b"{%s}x" % KA) == b"+QUEUED\r\n"
    h.run("CLUSTER", "SETSLOT", SLOT_A, "NODE", ID_B, c=h.client())
    assert h.run("EXEC") == err("MOVED %d 127.0.0.2:7001" % SLOT_A)
    assert h.c.multi is None
    assert h.run("EXEC") == err("ERR EXEC without MULTI")


# --- C08: startup reconciliation ---------------------------------------------------------


def test_c08_claims_unassigned_slots_with_keys():
    h = H()
    h.srv.dbs[0].set(KFREE, b"v")
    logs = h.core.verify_config_with_data()
    assert logs == ["I have keys for unassigned slot %d. Taking responsibility for it." % SLOT_FREE]
    assert h.st.owner(SLOT_FREE) is h.st.myself
    assert h.st.todo_save and h.st.todo_fsync
    assert h.st.check_consistency() == []


def test_c08_imports_slots_owned_elsewhere():
    h = H()
    h.srv.dbs[0].set(KB, b"v")
    h.srv.dbs[0].set(KC, b"v")
    h.srv.dbs[0].set(KA, b"v")  # my own slot: nothing to do
    logs = h.core.verify_config_with_data()
    assert logs == [
        "I have keys for slot %d, but the slot is assigned to another node. Setting it to "
        "importing state." % s for s in (SLOT_B, SLOT_C)]
    assert h.st.importing_from == {SLOT_B: h.node(ID_B), SLOT_C: h.node(ID_C)}
    assert h.st.owner(SLOT_B) is h.node(ID_B)  # ownership unchanged, no key deleted
    assert KB in h.srv.dbs[0].data and KC in h.srv.dbs[0].data
    # I07: every key is now in a slot I own or import
    for k in h.srv.dbs[0].data:
        s = key_slot(k)
        assert h.st.owner(s) is h.st.myself or s in h.st.importing_from


def test_c08_nothing_to_do():
    h = H()
    h.srv.dbs[0].set(KA, b"v")
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_B)
    h.srv.dbs[0].set(KB, b"v")
    h.st.todo_save = h.st.todo_fsync = False
    assert h.core.verify_config_with_data() == []
    assert not h.st.todo_save
    assert h.st.importing_from == {SLOT_B: h.node(ID_B)}


def test_c08_replica_does_not_reconcile():
    h = H(me_replica=True)
    h.srv.dbs[0].set(KB, b"v")
    h.srv.dbs[0].set(KFREE, b"v")
    assert h.core.verify_config_with_data() == []
    assert h.st.owner(SLOT_FREE) is None and h.st.importing_from == {}


def test_c08_keys_outside_db0_refuse_start():
    h = H()
    h.srv.dbs[1].set(b"k", b"v")
    with pytest.raises(StartupError) as e:
        h.core.verify_config_with_data()
    assert str(e.value) == ("You can't have keys in a DB different than DB 0 when in Cluster "
                            "mode. Exiting.")


# --- C14: slot table consistency and the reducer --------------------------------------------

_OPS = hs.one_of(
    hs.tuples(hs.just("ADDSLOTS"), hs.lists(hs.integers(0, 40), min_size=1, max_size=4)),
    hs.tuples(hs.just("DELSLOTS"), hs.lists(hs.integers(0, 40), min_size=1, max_size=4)),
    hs.tuples(hs.just("ADDSLOTSRANGE"), hs.tuples(hs.integers(0, 40), hs.integers(0, 40))),
    hs.tuples(hs.just("DELSLOTSRANGE"), hs.tuples(hs.integers(0, 40), hs.integers(0, 40))),
    hs.tuples(hs.just("SETSLOT"), hs.tuples(
        hs.integers(0, 40), hs.sampled_from(["MIGRATING", "IMPORTING", "NODE", "STABLE"]),
        hs.sampled_from([ID_A, ID_B, ID_C, ID_R, UNKNOWN]))),
    hs.tuples(hs.just("FLUSHSLOTS"), hs.just(())),
    hs.tuples(hs.just("RESET"), hs.sampled_from([(), ("SOFT",), ("HARD",)])),
    hs.tuples(hs.just("KEY"), hs.integers(0, 40)),
)


def _argv_for(op, arg):
    if op in ("ADDSLOTS", "DELSLOTS"):
        return ["CLUSTER", op] + [str(a) for a in arg]
    if op in ("ADDSLOTSRANGE", "DELSLOTSRANGE"):
        return ["CLUSTER", op, str(arg[0]), str(arg[1])]
    if op == "SETSLOT":
        slot, action, nid = arg
        return ["CLUSTER", "SETSLOT", str(slot), action] + ([] if action == "STABLE" else [nid])
    return ["CLUSTER", op] + list(arg)


_SLOT_KEYS = {s: key_for(s, "p") for s in range(41)}


def _bitmaps_agree(st) -> bool:
    """A quick form of check_consistency (run after every step; the full
    check runs at the end of each sequence)."""
    expect = {nid: bytearray(CLUSTER_SLOTS // 8) for nid in st.nodes}
    for s, n in enumerate(st.slots):
        if n is not None:
            if st.nodes.get(n.id) is not n:
                return False  # a slot bound to a node the state forgot
            expect[n.id][s >> 3] |= 1 << (s & 7)
    return all(n.slots == expect[nid] and n.numslots == sum(bin(b).count("1") for b in n.slots)
               for nid, n in st.nodes.items())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(_OPS, min_size=1, max_size=12))
def test_c14_owner_table_and_bitmaps_never_disagree(ops):
    h = H()
    router = routing.Router(h.st)
    for op, arg in ops:
        if op == "KEY":
            h.srv.dbs[0].set(_SLOT_KEYS[arg], b"v")  # keys block FLUSHSLOTS / SETSLOT NODE / RESET
        else:
            reply = h.run(*_argv_for(op, arg))
            assert reply.startswith((b"+", b"-ERR ")), reply
        assert _bitmaps_agree(h.st)
        for s in range(41):
            k = _SLOT_KEYS[s]
            get = TABLE[b"get"]
            kw = dict(asking=False, readonly=False, db=h.srv.dbs[0], now_ms=h.srv.now_ms)
            assert router.decide(h.core.opts, get, [b"get", k], **kw) == \
                routing.decide(h.st, h.core.opts, get, [b"get", k], **kw)
    assert h.st.check_consistency() == []


def _reducer_state(nmasters=3, myself_replica=False):
    nodes = []
    for i in range(nmasters):
        n = ClusterNode(("%d" % i) * 40, ("master",))
        nodes.append(n)
    me = nodes[0]
    if myself_replica:
        me = ClusterNode("r" * 40, ("slave",))
    me.set_flag("myself")
    st = ClusterState(me)
    for n in nodes:
        st.add_node(n)
    if myself_replica:
        st.set_master(me, nodes[0])
    per = CLUSTER_SLOTS // nmasters
    for i, n in enumerate(nodes):
        end = CLUSTER_SLOTS if i == nmasters - 1 else (i + 1) * per
        for s in range(i * per, end):
            st.assign_slot(s, n)
    return st, nodes


def test_c14_startup_hold_two_seconds():
    st, _ = _reducer_state()
    assert st.update_state(T0, 15000, True) is None
    assert st.update_state(T0 + 1999, 15000, True) is None and not st.state_ok
    assert st.update_state(T0 + 2000, 15000, True) == "ok" and st.state_ok
    rst, _ = _reducer_state(myself_replica=True)  # replicas are not held
    assert rst.update_state(T0, 15000, True) == "ok"


def test_c14_fresh_node_fail_and_size():
    """A fresh master with no slots is FAIL; slots added after the 2 s hold
    still wait the rejoin delay, since every evaluation without slots was a
    minority (size 0, quorum 1). Slots added during the hold: OK at 2 s."""
    me = ClusterNode(ID_A, ("myself", "master"))
    st = ClusterState(me)
    assert st.size == 1  # the initial value, shown for the first ~2 s
    st.update_state(T0, 15000, True)
    st.update_state(T0 + 2500, 15000, True)
    assert not st.state_ok and st.size == 0
    for s in range(CLUSTER_SLOTS):
        st.assign_slot(s, me)
    assert st.update_state(T0 + 2600, 15000, True) is None and st.size == 1
    assert st.update_state(T0 + 7499, 15000, True) is None
    assert st.update_state(T0 + 7500, 15000, True) == "ok"
    st2 = ClusterState(ClusterNode(ID_B, ("myself", "master")))
    st2.update_state(T0, 15000, True)
    for s in range(CLUSTER_SLOTS):
        st2.assign_slot(s, st2.myself)
    assert st2.update_state(T0 + 1000, 15000, True) is None
    assert st2.update_state(T0 + 2000, 15000, True) == "ok"


def test_c14_coverage():
    st, nodes = _reducer_state()
    st.first_update_call = T0 - 10_000
    assert st.update_state(T0, 15000, True) == "ok"
    st.unassign_slot(7)
    assert st.update_state(T0, 15000, True) == "fail"
    # no full coverage needed; no rejoin delay (the majority was never lost)
    assert st.update_state(T0, 15000, False) == "ok"
    st.assign_slot(7, nodes[0])
    nodes[2].set_flag("fail")  # a slot on a FAIL node breaks coverage...
    assert st.update_state(T0 + 5000, 15000, False) is None  # ...but coverage is off; majority holds
    assert st.update_state(T0 + 5000, 15000, True) == "fail"
    nodes[2].clear_flag("fail")
    nodes[2].set_flag("fail?")  # PFAIL does not break coverage
    assert st.update_state(T0 + 20_000, 15000, True) == "ok"


def test_c14_majority_and_rejoin_delay():
    st, nodes = _reducer_state(5)
    st.first_update_call = T0 - 10_000
    assert st.update_state(T0, 15000, True) == "ok"
    nodes[1].set_flag("fail?")
    nodes[2].set_flag("fail?")
    assert st.update_state(T0, 15000, True) is None  # 3 of 5 reachable: quorum 3
    nodes[3].set_flag("fail?")
    assert st.update_state(T0 + 100, 15000, True) == "fail"
    assert st.among_minority_time == T0 + 100
    for n in nodes[1:4]:
        n.clear_flag("fail?")
    # rejoin delay = clamp(node_timeout, 500, 5000)
    assert st.update_state(T0 + 5099, 15000, True) is None
    assert st.update_state(T0 + 5100, 15000, True) == "ok"
    nodes[3].set_flag("fail?")
    nodes[4].set_flag("fail?")
    nodes[2].set_flag("fail?")
    assert st.update_state(T0 + 6000, 100, True) == "fail"
    for n in nodes[2:]:
        n.clear_flag("fail?")
    assert st.update_state(T0 + 6499, 100, True) is None
    assert st.update_state(T0 + 6500, 100, True) == "ok"  # clamp(100) = 500


def test_c14_replica_rejoins_at_once():
    st, nodes = _reducer_state(3, myself_replica=True)
    assert st.update_state(T0, 15000, True) == "ok"
    nodes[1].set_flag("fail?")
    nodes[2].set_flag("fail?")
    assert st.update_state(T0 + 1, 15000, True) == "fail"
    nodes[1].clear_flag("fail?")
    assert st.update_state(T0 + 2, 15000, True) == "ok"


def test_c14_state_through_engine_and_cron():
    h = H("alone", cluster_require_full_coverage="yes")
    h.st.first_update_call = 0
    h.tick(0)
    h.run("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    assert not h.st.state_ok  # held for 2 s after the first reducer run
    h.tick(1900)
    assert not h.st.state_ok
    h.tick(200)
    assert h.st.state_ok
    assert h.run("SET", KA, "v") == OK
    h.run("CLUSTER", "DELSLOTS", "0")
    assert not h.st.state_ok
    assert h.run("GET", KA) == err("CLUSTERDOWN The cluster is down")


# --- C08: nodes.conf parse / render / file (in process) -------------------------------------

_CONF = (
    "%s 127.0.0.1:7000@17000 myself,master - 0 0 5 connected 0-100 200 [50->-%s] [300-<-%s]\n"
    "%s 127.0.0.2:7001@17001,b.example master - 1795898031000 1795898031000 7 connected 101-199\n"
    "%s 127.0.0.4:7003@17003 slave %s 0 1795898031915 7 connected\n"
    "%s :0@0 master,fail,noaddr - 0 0 3 disconnected\n"
    "vars currentEpoch 8 lastVoteEpoch 6\n"
    % (ID_A, ID_B, ID_C, ID_B, ID_R, ID_B, ID_X)
)


def test_c08_nodes_conf_parse_and_render_roundtrip():
    from frtrio.cluster import nodes_conf

    st = nodes_conf.parse(_CONF, T0)
    me = st.myself
    assert me.id == ID_A and me.config_epoch == 5
    assert (st.current_epoch, st.last_vote_epoch) == (8, 6)
    assert [st.owner(s).id for s in (0, 100, 200, 101, 199)] == [ID_A, ID_A, ID_A, ID_B, ID_B]
    assert st.owner(150).id == ID_B and st.owner(201) is None
    assert st.migrating_to[50].id == ID_B and st.importing_from[300].id == ID_C
    b, r, x = st.nodes[ID_B], st.nodes[ID_R], st.nodes[ID_X]
    assert b.hostname == "b.example" and b.ping_sent == T0 and b.pong_received == T0
    assert r.is_replica and r.master_id == ID_B and st.nodes[ID_B].replicas == [ID_R]
    assert r.config_epoch == 0  # a replica with a known master takes its master's
    assert x.has("fail") and x.fail_time == T0 and x.has("noaddr")
    # C is only named by an open slot: a placeholder without flags or address
    c = st.nodes[ID_C]
    assert c.flags_text() == "noflags" and (c.ip, c.port) == ("", 0)
    assert st.check_consistency() == []
    # rendering: the same lines apart from ping/pong ("now") and link state
    # (no links here), plus the placeholder
    text = nodes_conf.render(st)
    orig = {ln.split()[0]: ln.split() for ln in _CONF.splitlines() if not ln.startswith("vars")}
    for ln in text.splitlines():
        w = ln.split()
        if w[0] == "vars":
            assert ln == "vars currentEpoch 8 lastVoteEpoch 6"
        elif w[0] == ID_C:
            assert w[1:] == [":0@0", "noflags", "-", "0", "0", "0", "disconnected"]
        else:
            o = orig[w[0]]
            assert w[:4] == o[:4] and w[6] == o[6] and w[8:] == o[8:], (w, o)
    again = nodes_conf.parse(text, T0 + 5)
    assert nodes_conf.render(again).replace(str(T0 + 5), str(T0)) == text


def test_c08_nodes_conf_lenient_forms():
    """Forms Redis accepts: no @cport (port+10000), quoted fields, blank
    lines, upper-case flags and vars, IPv6 addresses, no vars line."""
    from frtrio.cluster import nodes_conf

    text = ("\n%s ::1:7000 MYSELF,Master - 0 0 1 connected 0-5\n\n"
            "%s \"127.0.0.2:7001@17001\" master - 0 0 2 connected\n"
            "VARS currentepoch 3 lastvoteepoch 1 someFutureVar x\n" % (ID_A, ID_B))
    st = nodes_conf.parse(text, T0)
    me = st.myself
    assert (me.ip, me.port, me.cport) == ("::1", 7000, 17000)
    assert st.nodes[ID_B].cport == 17001
    assert (st.current_epoch, st.last_vote_epoch) == (3, 1)
    st = nodes_conf.parse("%s :7000@17000 myself,master - 0 0 9 connected\n" % ID_A, T0)
    assert st.current_epoch == 9  # raised to the largest configEpoch


@pytest.mark.parametrize("text,lineno,reason", [
    (_CONF[:30], 1, "fewer than 8 fields"),
    (_CONF.replace(" 0-100 ", " 0-16384 "), 1, "slot out of range"),
    (_CONF.replace(" 0 0 5 ", " 0 0 x "), 1, "bad ping/pong/epoch field"),
    (_CONF.replace("myself,master", "myself,master,bogus"), 1, "unknown flag"),
    (_CONF + "garbage line\n", 6, "fewer than 8 fields"),
    (_CONF.replace(ID_R, "zz", 1), 3, "bad node id"),
    (_CONF.replace("slave " + ID_B, "slave 123"), 3, "bad master id"),
    (_CONF.replace("[50->-", "[50->>"), 1, "bad open slot"),
    (_CONF.replace("127.0.0.2:7001@17001", "127.0.0.2-7001"), 2, "bad address"),
    (_CONF.replace("127.0.0.2:7001@17001", "127.0.0.2:7001@x"), 2, "bad bus port"),
    (_CONF.replace("vars currentEpoch 8", "vars currentEpoch"), 5, "vars needs key/value pairs"),
    (_CONF.replace("currentEpoch 8", "currentEpoch x"), 5, "bad currentEpoch"),
    (_CONF.replace(" 200 [", " \"200 ["), 1, "unbalanced quotes"),
    (_CONF.replace("myself,", ""), 0, "no line with the myself flag"),
    (_CONF.replace("master - 1795898031000", "myself,master - 1795898031000"), 2, "two myself lines"),
    ("\n \n", 0, "no line with the myself flag"),
])
def test_c08_corrupt_nodes_conf_named_line(tmp_path, text, lineno, reason):
    from frtrio.cluster import nodes_conf
    from frtrio.runtime.cluster_files import ClusterConfigError, ClusterFile
    from frtrio.runtime.env import RealEnv

    with pytest.raises(nodes_conf.NodesConfError) as e:
        nodes_conf.parse(text, T0)
    assert (e.value.lineno, e.value.reason.split(" '")[0]) == (lineno, reason)
    path = tmp_path / "nodes.conf"
    path.write_text(text)
    cf = ClusterFile(RealEnv(), str(path))
    with pytest.raises(ClusterConfigError) as e:
        cf.load(T0, ID_A)
    msg = str(e.value)
    assert msg.startswith('Unrecoverable error: corrupted cluster config file "%s" ' % path)
    assert ("at line %d (" % lineno in msg) if lineno else ("(%s)" % reason in msg)
    cf.close()
    assert path.read_text() == text  # untouched


def test_c08_cluster_file_lock_and_atomic_save(tmp_path):
    from frtrio.runtime.cluster_files import ClusterConfigError, ClusterFile
    from frtrio.runtime.env import RealEnv

    env = RealEnv()
    path = str(tmp_path / "nodes.conf")
    cf = ClusterFile(env, path)
    st, fresh = cf.load(T0, ID_A)
    assert fresh and st.myself.id == ID_A and st.myself.flags_text() == "myself,master"
    cf.save(st.config_text(), fsync=True)
    assert open(path).read() == "%s :0@0 myself,master - 0 0 0 connected\nvars currentEpoch 0 lastVoteEpoch 0\n" % ID_A
    for _ in range(2):  # the lock follows the renamed file
        cf.save(st.config_text(), fsync=False)
        with pytest.raises(ClusterConfigError, match="nodes.conf is already used by a different"):
            ClusterFile(env, path).load(T0, ID_B)
    assert [f for f in tmp_path.iterdir() if f.name != "nodes.conf"] == []  # no temp left
    cf.close()
    st2, fresh2 = ClusterFile(env, path).load(T0, ID_B)
    assert not fresh2 and st2.myself.id == ID_A


def test_c08_cluster_file_on_the_simulated_disk():
    """The simulator's disk locks by path: saving must not trip over our own lock."""
    from frtrio.runtime.cluster_files import ClusterConfigError, ClusterFile
    from frtrio.sim.fs import SimDisk, SimFS

    fs = SimFS(SimDisk("n1"))
    fs.makedirs("/n1")

    class Env:
        pass

    env = Env()
    env.fs = fs
    cf = ClusterFile(env, "/n1/nodes.conf")
    st, fresh = cf.load(T0, ID_A)
    cf.save(st.config_text(), True)
    cf.save(st.config_text(), False)
    with pytest.raises(ClusterConfigError):
        ClusterFile(env, "/n1/nodes.conf").load(T0, ID_B)
    cf.close()
    assert ClusterFile(env, "/n1/nodes.conf").load(T0, ID_B)[0].myself.id == ID_A


def test_c05_shard_channels_follow_the_slot():
    """Shard subscriptions survive while the slot is served here (owner, the
    owner's replica, importing) and are dropped with ``sunsubscribe`` once
    it is not."""
    h = H(me_replica=True)  # R serves B's slots for shard pub/sub
    sub = h.client()
    assert h.run("SSUBSCRIBE", KB, c=sub).startswith(b"*3\r\n$10\r\nssubscribe")
    h.run("CLUSTER", "SETSLOT", SLOT_B, "IMPORTING", ID_C, c=h.client())  # refused: replica
    h.st.importing_from[SLOT_B] = h.node(ID_C)
    h.st.assign_slot(SLOT_B, h.node(ID_C))
    h.run("PING")
    assert KB in sub.ssubscriptions  # importing: still served
    del h.st.importing_from[SLOT_B]
    h.st.bump()
    h.run("PING")
    assert sub.ssubscriptions == {}
    assert sub.take_output() == b"*3\r\n$12\r\nsunsubscribe\r\n$%d\r\n%s\r\n:0\r\n" % (len(KB), KB)


_SINGLE_KEY = sorted(n.decode() for n, c in TABLE.items()
                     if c.single_key and c.handler is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=hs.sampled_from(_SINGLE_KEY), slot=hs.integers(0, 16383),
       migrating=hs.booleans(), importing=hs.booleans(), ok=hs.booleans(),
       asking=hs.booleans(), readonly=hs.booleans(), replica=hs.booleans())
def test_c02_route_fast_path_agrees_with_decide(name, slot, migrating, importing, ok, asking,
                                                readonly, replica):
    """ClusterCore.route's fast path (one key, a slot owned outright, cluster
    ok) answers what routing.decide answers, whatever the slot's state."""
    h = H(me_replica=replica)
    st = h.st
    if migrating and st.slots[slot] is st.myself:
        st.migrating_to[slot] = h.node(ID_B)
    if importing and st.slots[slot] is not st.myself:
        st.importing_from[slot] = st.slots[slot] or h.node(ID_B)
    st.state_ok = ok
    st.version += 1
    cmd = TABLE[name.encode()]
    argv = [name.encode(), key_for(slot)] + [b"1"] * max(0, abs(cmd.arity) - 2)
    c = h.client()
    if asking:
        c.flags |= F.ASKING
    if readonly:
        c.flags |= F.READONLY
    got = h.core.route(c, cmd, argv)
    r = routing.decide(st, h.core.opts, cmd, argv, asking=asking, readonly=readonly,
                       db=h.srv.dbs[0], now_ms=h.srv.now_ms)
    want = None if r.kind == routing.LOCAL else routing.error_text(r, h.core.opts.endpoint_type)
    assert got == want


_RUNS = hs.builds(lambda a, k: list(range(a, min(a + k, CLUSTER_SLOTS))),
                  hs.sampled_from([0, 1, 5, 7, 8, 13, 16, 40, 16370]), hs.integers(0, 40))


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 3),
                          hs.one_of(hs.lists(hs.integers(0, 63), max_size=20), _RUNS)),
                max_size=12))
def test_c14_assign_slots_binds_as_assign_slot_one_by_one(batches):
    """The bulk binding (ADDSLOTS, nodes.conf, a PONG's claims) leaves the
    owner table, every node's bitmap and count as binding each slot in turn
    would, and moves the version exactly when something changed. Runs of
    consecutive slots, some of them unowned (bound in slices), some not."""
    def fresh():
        nodes = [ClusterNode("%040d" % i, flags=("master",)) for i in range(4)]
        st = ClusterState(nodes[0])
        for n in nodes[1:]:
            st.add_node(n)
        return st, nodes

    one, one_nodes = fresh()
    bulk, bulk_nodes = fresh()
    for who, slots in batches:
        v = bulk.version
        changed = sum(one.assign_slot(s, one_nodes[who]) for s in slots)
        n = bulk.assign_slots(slots, bulk_nodes[who])
        assert n == changed and (bulk.version != v) == bool(changed)
    assert [x.id if x else None for x in one.slots] == [x.id if x else None for x in bulk.slots]
    for a, b in zip(one_nodes, bulk_nodes):
        assert (bytes(a.slots), a.numslots) == (bytes(b.slots), b.numslots)
    assert bulk.check_consistency() == []


_BYTE = hs.one_of(hs.sampled_from([0, 1, 2, 255]), hs.integers(0, 255))


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 2047), _BYTE, _BYTE, _BYTE), max_size=12))
def test_c14_claim_walk_skips_exactly_the_bytes_that_change_nothing(diffs):
    """A PONG's claimed bitmap is walked 64 bytes at a time in C: the bytes
    it yields are exactly those a byte-by-byte walk would look at (claimed
    differs from held, or part of the claim is marked not-claiming)."""
    from frtrio.cluster.gossip import _changed_bytes

    claims, have, nc = bytearray(2048), bytearray(2048), bytearray(2048)
    for i, c, h, n in diffs:
        claims[i], have[i], nc[i] = c, h, n
    want = [i for i in range(2048) if claims[i] != have[i] or nc[i] & claims[i]]
    assert list(_changed_bytes(bytes(claims), have, nc)) == want


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 2047), _BYTE, _BYTE), max_size=12), hs.booleans())
def test_c14_claimed_slots_missing_from_a_bitmap_in_slot_order(diffs, same):
    """The slots a PONG claims that the sender's bitmap here lacks (found by
    comparing the bitmaps as integers) are those a bit-by-bit walk finds."""
    from frtrio.cluster.gossip import _set_bits_not_in

    claims, have = bytearray(2048), bytearray(2048)
    for i, c, h in diffs:
        claims[i], have[i] = c, h
    if same:
        have = bytearray(claims)
    want = [j for j in range(CLUSTER_SLOTS)
            if claims[j >> 3] >> (j & 7) & 1 and not have[j >> 3] >> (j & 7) & 1]
    assert list(_set_bits_not_in(bytes(claims), have)) == want
