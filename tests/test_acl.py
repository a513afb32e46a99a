"""ACL, compared with redis-server 7.0.15: the SETUSER rule language, what
GETUSER / LIST / USERS / CAT / DRYRUN / LOG answer, the error texts, NOPERM
at the gate, in MULTI/EXEC and in scripts, AUTH / HELLO with users, and an
end-to-end run with redis-py as a restricted user. Plus a hypothesis fuzz of
the rule parser (pure, in process).

Both servers are this module's own pair (users do not leak into other
tests). Redis prints single-command rules in its (random) hash order, so
rule lists with several single commands are compared as sets of words.
"""

from __future__ import annotations

import re

import pytest
from conftest import Diff, requires_redis
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ServerProc

from frtrio.core import acl as A

pytestmark = requires_redis


@pytest.fixture(scope="module")
def pair():
    f = ServerProc("frtrio").start()
    r = ServerProc("redis").start()
    yield f, r
    f.cleanup()
    r.cleanup()


@pytest.fixture
def d(pair):
    dd = Diff(*pair)
    dd.ports = (pair[0].port, pair[1].port)
    yield dd
    dd.close()
    cleanup = Diff(*pair)
    users = [u for u in _bulk_list(cleanup.f.cmd("ACL", "USERS")) if u != b"default"]
    if users:
        cleanup.both("ACL", "DELUSER", *users)
    cleanup.both("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
    cleanup.close()


def _bulk_list(raw: bytes) -> list[bytes]:
    parts = raw.split(b"\r\n")
    return [parts[i] for i in range(2, len(parts), 2)]


def _words(raw: bytes) -> list:
    """A reply with its rule lists as sorted words (hash order in Redis)."""
    return sorted(raw.replace(b"\r\n", b" ").split(b" "))


RULE_CASES = [
    ["on", ">pw", "~foo*", "+get"],
    ["on", "nopass", "allkeys", "allchannels", "allcommands"],
    ["off", "resetpass", "resetkeys", "resetchannels", "nocommands"],
    ["+@all", "-@dangerous"],
    ["+@all", "-@dangerous", "+config|get"],
    ["-@all", "+@read", "-@hash"],
    ["+@read", "+@write", "-@keyspace"],
    ["%R~r*", "%W~w*", "%RW~rw*", "~plain"],
    ["%R~k", "%W~k"],
    ["&chan*", "&other"],
    ["+select|0"],
    ["+client|id", "+client|setname"],
    ["+@all", "-client|kill"],
    ["#" + "a" * 64, "!" + "a" * 64],
    [">one", ">two", "<one"],
    ["(~x* +get)", "(%R~y* +@read)"],
    ["(~x*", "+get)", "clearselectors"],
    ["reset"],
    ["on", "skip-sanitize-payload"],
    ["sanitize-payload"],
    ["+@all", "-@all", "+get"],
    ["+memory"],
    ["+memory|doctor"],
]


@pytest.mark.parametrize("rules", RULE_CASES, ids=lambda r: " ".join(r)[:40])
def test_setuser_rules_give_the_same_getuser_and_list(d, rules):
    d("ACL", "SETUSER", "u1", *rules)
    a, b = d.both("ACL", "GETUSER", "u1")
    assert _words(a) == _words(b)
    a, b = d.both("ACL", "LIST")
    assert _words(a) == _words(b)
    d("ACL", "USERS")


ERROR_CASES = [
    ["+nosuchcommand"],
    ["-@nosuchcat"],
    ["~*", "~foo"],
    ["&*", "&foo"],
    ["allkeys", "%R~x"],
    ["#abc"],
    ["!" + "A" * 64],
    ["<never"],
    ["+client|id|x"],
    ["+config|"],
    ["+get|x|y"],
    ["%X~foo"],
    ["~a b"],
    ["bogus"],
    ["(~x", "+get"],
    ["(bogus)"],
    ["(+nosuch)"],
    ["+@all", "+select|0", "+debug|digest"],
]


@pytest.mark.parametrize("rules", ERROR_CASES, ids=lambda r: " ".join(r)[:40])
def test_setuser_errors_are_redis_texts_and_change_nothing(d, rules):
    d("ACL", "SETUSER", "u2", "on", ">x")
    d("ACL", "SETUSER", "u2", *rules)
    a, b = d.both("ACL", "GETUSER", "u2")
    assert _words(a) == _words(b)


def test_acl_misc_replies(d):
    d("ACL", "SETUSER", "a b")
    d("ACL", "DELUSER", "default")
    d("ACL", "DELUSER", "nosuch", "other")
    d("ACL", "GETUSER", "nosuch")
    d("ACL", "WHOAMI")
    d("ACL", "CAT")
    for cat in A.CATEGORIES:
        a, b = d.both("ACL", "CAT", cat)
        assert _words(a) == _words(b), cat
    d("ACL", "CAT", "nosuch")
    d("ACL", "CAT", "a", "b")
    d("ACL", "GENPASS", "0")
    d("ACL", "GENPASS", "4097")
    d("ACL", "GENPASS", "x")
    a, b = d.both("ACL", "GENPASS", "5")
    assert len(a) == len(b) == len(b"$2\r\nab\r\n")
    a, b = d.both("ACL", "GENPASS")
    assert len(a) == len(b)
    d("ACL", "HELP")
    d("ACL", "LOAD")
    d("ACL", "SAVE")
    d("ACL", "NOSUCH")
    d("ACL", "LOG", "x")
    d("ACL", "LOG", "1", "2")


def test_dryrun_answers(d):
    d("ACL", "SETUSER", "dr", "on", "nopass", "+get", "+set", "%R~r*", "&ch", "+publish")
    for args in (["get", "rk"], ["get", "wk"], ["set", "rk", "v"], ["hget", "a", "b"],
                 ["publish", "ch", "m"], ["publish", "other", "m"], ["get"],
                 ["nosuchcmd"], ["memory", "usage", "rk"], ["client", "id"]):
        d("ACL", "DRYRUN", "dr", *args)
    d("ACL", "DRYRUN", "nosuchuser", "get", "x")


def _fresh(d: Diff) -> Diff:
    """A second pair of connections on the same servers."""
    from support import RawConn

    class _D(Diff):
        def __init__(self, f, r):
            self.f = RawConn(f, 10.0)
            self.r = RawConn(r, 10.0)
            self.saved_config = {}

    return _D(*d.ports)


def test_noperm_texts_at_the_gate_in_multi_and_in_scripts(d):
    d("ACL", "SETUSER", "np", "on", ">p", "+@all", "-hset", "~k*", "resetchannels", "&c")
    d("SET", "kx", "1")
    e = _fresh(d)
    e("AUTH", "np", "p")
    e("ACL", "WHOAMI")
    e("HSET", "k", "f", "v")
    e("GET", "other")
    e("MGET", "k1", "other")
    e("PUBLISH", "nope", "m")
    e("PUBLISH", "c", "m")
    e("SUBSCRIBE", "nope")
    e("PSUBSCRIBE", "c*")
    # scripts: redis.call is checked against the caller
    e("EVAL", "return redis.call('hset', KEYS[1], 'f', 'v')", "1", "k1")
    e("EVAL", "return redis.call('get', 'other')", "0")
    e("EVAL", "return redis.acl_check_cmd('hset', 'k', 'f', 'v')", "0")
    e("EVAL", "return redis.acl_check_cmd('get', 'k1')", "0")
    # MULTI: refused when queued; refused at EXEC when rules changed since
    e("MULTI")
    e("HSET", "k", "f", "v")
    e("GET", "k1")
    e("EXEC")
    e("MULTI")
    e("GET", "k1")
    e("SET", "k2", "v")
    d("ACL", "SETUSER", "np", "-get")
    e("EXEC")
    e.f.close()
    e.r.close()


def _masked_log(raw: bytes) -> bytes:
    raw = re.sub(rb"age-seconds\r\n\$\d+\r\n[^\r]*\r\n", b"age-seconds\r\n$?\r\nAGE\r\n", raw)
    return re.sub(rb"client-info\r\n\$\d+\r\n[^\r]*\r\n", b"client-info\r\n$?\r\nINFO\r\n", raw)


def test_acl_log_entries_match_but_age_and_client_info(d):
    d("ACL", "LOG", "RESET")
    d("ACL", "SETUSER", "lg", "on", ">p", "+get", "~k*", "&c", "+publish", "+multi", "+exec",
      "+discard")
    e = _fresh(d)
    e("AUTH", "lg", "wrong")
    e("AUTH", "nosuch", "x")
    e("AUTH", "lg", "p")
    e("SET", "k", "v")
    e("GET", "x")
    e("GET", "x")
    e("PUBLISH", "z", "m")
    e("MULTI")
    e("GET", "y")
    e("DISCARD")
    e("EVAL", "return redis.call('get', 'z')", "0")
    e("MULTI")
    e("AUTH", "lg", "bad")
    e("EXEC")
    a, b = d.both("ACL", "LOG")
    assert _masked_log(a) == _masked_log(b)
    a, b = d.both("ACL", "LOG", "2")
    assert _masked_log(a) == _masked_log(b)
    # client-info names the user and the command, as Redis
    assert b"user=lg" in a
    d("CONFIG", "SET", "acllog-max-len", "2")
    e("GET", "q1")
    e("GET", "q2")
    e("GET", "q3")
    a, b = d.both("ACL", "LOG")
    assert _masked_log(a) == _masked_log(b)
    d("CONFIG", "SET", "acllog-max-len", "128")
    d("ACL", "LOG", "RESET")
    d("ACL", "LOG")
    e.f.close()
    e.r.close()


def test_auth_and_hello_flows_with_users(d):
    d("ACL", "SETUSER", "au", "on", ">secret", "+@all", "~*")
    d("ACL", "SETUSER", "offu", "off", ">secret", "+@all")
    e = _fresh(d)
    e("AUTH", "au", "bad")
    e("AUTH", "offu", "secret")
    e("AUTH", "x")  # default is nopass
    e("AUTH", "a", "b", "c")
    e("AUTH", "au", "secret")
    e("ACL", "WHOAMI")
    a, b = e.both("HELLO", "3", "AUTH", "au", "secret")
    assert a.replace(b":%d" % 0, b"")[:20] == b[:20]
    e("HELLO", "2", "AUTH", "au", "nope")
    e("ACL", "WHOAMI")
    # the default user with a password: AUTH <pw> is AUTH default <pw>
    d("ACL", "SETUSER", "default", "resetpass", ">dpw")
    g = _fresh(d)
    g("PING")
    g("AUTH", "dpw")
    g("ACL", "WHOAMI")
    g("RESET")
    g("GET", "x")
    g("HELLO", "3")
    g("AUTH", "default", "dpw")
    # deleting a user closes its connections
    d("ACL", "DELUSER", "au")
    for conn in (e.f, e.r):
        with pytest.raises((ConnectionError, OSError)):
            conn.cmd("PING")
            conn.cmd("PING")
    d("ACL", "SETUSER", "default", "nopass")
    g.f.close()
    g.r.close()


def test_requirepass_sets_the_default_users_password(d):
    d("CONFIG", "SET", "requirepass", "rp")
    a, b = d.both("ACL", "GETUSER", "default")
    assert _words(a) == _words(b)
    e = _fresh(d)
    e("GET", "x")
    e("AUTH", "rp")
    d("CONFIG", "SET", "requirepass", "")
    a, b = d.both("ACL", "LIST")
    assert a == b
    e.f.close()
    e.r.close()


def test_client_list_user_field_and_kill_user(d):
    d("ACL", "SETUSER", "ku", "on", "nopass", "+@all", "~*")
    e = _fresh(d)
    e("AUTH", "ku", "x")
    a = e.f.cmd("CLIENT", "INFO")
    assert b" user=ku " in a
    d("CLIENT", "KILL", "USER", "nosuch")
    d("CLIENT", "KILL", "USER", "ku")


def test_pubsub_clients_lose_revoked_channels(d):
    d("ACL", "SETUSER", "ps", "on", "nopass", "+@all", "resetchannels", "&a", "&b")
    e = _fresh(d)
    e("AUTH", "ps", "x")
    e("SUBSCRIBE", "a")
    d("ACL", "SETUSER", "ps", "resetchannels", "&a")  # still allowed: kept
    d("PUBLISH", "a", "hello")
    assert e.f.read_reply() == e.r.read_reply()
    d("ACL", "SETUSER", "ps", "resetchannels", "&b")  # revoked: killed
    for conn in (e.f, e.r):
        with pytest.raises((ConnectionError, OSError)):
            conn.cmd("PING")


def test_redis_py_end_to_end_as_a_restricted_user(pair):
    import redis

    f, r = pair
    out = []
    for p in (f, r):
        admin = redis.Redis(port=p.port)
        admin.acl_setuser("app", enabled=True, passwords=["+apppw"], keys=["app:*"],
                          commands=["+@read", "+@write", "-flushall"])
        c = redis.Redis(port=p.port, username="app", password="apppw")
        res = [c.set("app:1", "v"), c.get("app:1"), c.exists("app:1")]
        for fn in (lambda: c.get("other"), lambda: c.flushall(), lambda: c.config_get("*")):
            try:
                fn()
                res.append("ok")
            except redis.exceptions.NoPermissionError as e:
                res.append(str(e))
        res.append(sorted(admin.acl_getuser("app")["flags"]))
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=p.port, username="app", password="bad",
                        retry=Retry(NoBackoff(), 0)).ping()
        admin.acl_deluser("app")
        admin.delete("app:1")
        out.append(res)
    assert out[0] == out[1]


# --- pure ---------------------------------------------------------------------

_RULE_ATOMS = st.sampled_from([
    "on", "off", "nopass", "resetpass", "reset", "allkeys", "resetkeys", "allchannels",
    "resetchannels", "allcommands", "nocommands", "clearselectors", "+@all", "-@all",
    "+@read", "-@write", "+get", "-set", "+client|id", "-client", "+select|1", "~*", "~a*",
    "%R~r", "%W~w", "&*", "&c*", ">pw", "<pw", "#" + "b" * 64, "!" + "b" * 64, "(", ")",
    "(~x +get)", "+nosuch", "%", "%RX~", "&", "~", "+", "-", "+@", "(+@read",
])
_RULE = st.one_of(_RULE_ATOMS, st.binary(max_size=12).map(lambda b: b.decode("latin-1")))


@settings(max_examples=120, deadline=None)
@given(st.lists(_RULE, max_size=8))
def test_fuzz_setuser_never_crashes_and_describe_rebuilds_the_user(rules):
    acl = A.Acl()
    args = [r.encode("latin-1") for r in rules]
    try:
        u = acl.build_user(None, args)
    except A.RuleError as e:
        assert isinstance(e.args[0], str) and e.args[0]
        return
    # what LIST shows, replayed as rules, gives the same permissions
    again = acl.build_user(None, _split_describe(u.describe()))
    assert again.describe() == u.describe()
    for a, b in zip(u.selectors, again.selectors):
        assert a.allowed == b.allowed


def _split_describe(text: bytes) -> list[bytes]:
    out, depth, cur = [], 0, []
    for w in text.split(b" "):
        if depth == 0 and w.startswith(b"("):
            depth = 1
            cur = [w]
            if w.endswith(b")"):
                out.append(w)
                depth = 0
            continue
        if depth:
            cur.append(w)
            if w.endswith(b")"):
                out.append(b" ".join(cur))
                depth = 0
            continue
        out.append(w)
    return out


def test_default_user_allows_all_with_one_attribute():
    acl = A.Acl()
    assert acl.default.allow_all
    acl.default.apply(b"-debug")
    assert not acl.default.allow_all
    acl.default.apply(b"+@all")
    assert acl.default.allow_all


def test_config_rewrite_writes_every_user_and_a_restart_loads_them(tmp_path):
    lines = {}
    for kind in ("frtrio", "redis"):
        p = ServerProc(kind, config_text="port 0\n").start()
        try:
            c = p.conn()
            assert c.cmd("ACL", "SETUSER", "rw", "on", ">pw", "~k*", "+get") == b"+OK\r\n"
            assert c.cmd("CONFIG", "REWRITE") == b"+OK\r\n"
            with open(p.dir + "/server.conf") as f:
                lines[kind] = sorted(x for x in f.read().splitlines() if x.startswith("user "))
            c.close()
            p.stop()
            p.start()
            c = p.conn()
            assert c.cmd("AUTH", "rw", "pw") == b"+OK\r\n"
            assert c.cmd("GET", "kx") == b"$-1\r\n"
            c.close()
        finally:
            p.cleanup()
    assert lines["frtrio"] == lines["redis"]
    assert len(lines["frtrio"]) == 2


def test_aclfile_at_startup_save_and_load(tmp_path):
    out = {}
    for kind in ("frtrio", "redis"):
        d = tmp_path / kind
        d.mkdir()
        (d / "users.acl").write_text("user alice on >a ~a* +get\nuser default on nopass ~* &* +@all\n")
        p = ServerProc(kind, args=["--aclfile", str(d / "users.acl")]).start()
        try:
            c = p.conn()
            res = [c.cmd("ACL", "LIST"), c.cmd("ACL", "SETUSER", "bob", "on", ">b", "+@read")]
            res.append(c.cmd("ACL", "SAVE"))
            res.append(sorted((d / "users.acl").read_text().splitlines()))
            (d / "users.acl").write_text("user carol on nopass +@all\nuser bad +nosuchcmd\n")
            res.append(c.cmd("ACL", "LOAD"))
            (d / "users.acl").write_text("user carol on nopass +@all\n")
            res.append(c.cmd("ACL", "LOAD"))
            res.append(c.cmd("ACL", "USERS"))
            out[kind] = res
            c.close()
        finally:
            p.cleanup()
    f, r = out["frtrio"], out["redis"]
    f[4] = f[4].replace(str(tmp_path / "frtrio").encode(), b"DIR")
    r[4] = r[4].replace(str(tmp_path / "redis").encode(), b"DIR")
    assert f == r


KEY_CASES = [
    ["GET", "r1"], ["GET", "w1"], ["GET", "rw1"], ["SET", "r1", "v"], ["SET", "w1", "v"],
    ["SET", "w1", "v", "GET"], ["SET", "rw1", "v", "GET"], ["APPEND", "w1", "x"],
    ["COPY", "r1", "w1"], ["COPY", "w1", "r1"], ["COPY", "rw1", "rw2"],
    ["LMOVE", "r1", "w1", "LEFT", "RIGHT"], ["LMOVE", "rw1", "w1", "LEFT", "RIGHT"],
    ["SORT", "r1"], ["SORT", "rw1", "STORE", "w1"], ["SORT", "r1", "BY", "x*"],
    ["SINTERSTORE", "w1", "r1", "r2"], ["SINTERSTORE", "r1", "w1"], ["SUNION", "r1", "w1"],
    ["DEL", "r1"], ["DEL", "w1"], ["EXISTS", "r1", "w1", "x"], ["TYPE", "w1"],
    ["EXPIRE", "w1", "100"], ["OBJECT", "ENCODING", "r1"], ["RENAME", "rw1", "w2"],
    ["BITFIELD", "r1", "GET", "u8", "0"], ["BITFIELD", "r1", "SET", "u8", "0", "1"],
    ["BITFIELD_RO", "w1", "GET", "u8", "0"], ["XREAD", "STREAMS", "r1", "0"],
    ["XADD", "w1", "1-1", "f", "v"], ["EVAL", "return 1", "2", "r1", "w1"],
    ["MSET", "w1", "1", "w2", "2"], ["MSET", "w1", "1", "r2", "2"], ["MGET", "r1", "rw1"],
    ["GETDEL", "rw1"], ["GETDEL", "w1"], ["PFCOUNT", "r1"], ["PFMERGE", "w1", "r1"],
    ["ZUNIONSTORE", "w1", "2", "r1", "rw1"], ["ZUNIONSTORE", "w1", "2", "r1", "x1"],
    ["GET", "s1"], ["SET", "s1", "v"], ["GET", "t1"], ["SET", "t1", "v"],
    ["PUBLISH", "ch1", "m"], ["PUBLISH", "zz", "m"], ["SPUBLISH", "ch1", "m"],
    ["FLUSHALL"], ["CONFIG", "GET", "maxmemory"], ["CLIENT", "GETNAME"], ["CLIENT", "KILL", "ID", "0"],
]


@pytest.mark.parametrize("with_selectors", [False, True], ids=["root", "selectors"])
def test_key_read_write_permissions_and_selectors_match_redis(d, with_selectors):
    rules = ["on", "nopass", "+@all", "-flushall", "-client|kill", "%R~r*", "%W~w*", "~rw*",
             "resetchannels", "&ch*"]
    if with_selectors:
        rules += ["(~s* +get +set)", "(%R~t* +@read)"]
    d("ACL", "SETUSER", "kp", *rules)
    e = _fresh(d)
    e("AUTH", "kp", "x")
    for args in KEY_CASES:
        e(*args)
        d("ACL", "DRYRUN", "kp", *args)
    e("SELECT", "0")
    d("FLUSHALL")
    e.f.close()
    e.r.close()


def test_compiled_key_finders_agree_with_the_generic_key_extraction():
    from frtrio.commands.table import TABLE

    A.universe()
    n = 0
    for top in TABLE.values():
        for cmd in [top] + list(top.subcommands.values()):
            finder = A._key_finder(cmd)
            for argc in range(1, 9):
                argv = [cmd.name_bytes] + [b"a%d" % i for i in range(1, argc)]
                assert finder(argv) == A._command_keys(cmd, argv), (cmd.fullname, argc)
                n += 1
    assert n > 2000


@pytest.mark.parametrize("master_kind,replica_kind",
                         [("frtrio", "frtrio"), ("redis", "frtrio"), ("frtrio", "redis")])
def test_replica_authenticates_to_its_master_as_a_user(master_kind, replica_kind):
    """masteruser/masterauth: a replica syncs from a master (frtrio and
    redis-server either side) whose default user is off, as a user allowed only the
    replication commands; with a wrong password the link stays down."""
    import time

    import redis

    m = ServerProc(master_kind).start()
    rep = None
    try:
        admin = redis.Redis(port=m.port)
        admin.execute_command("ACL", "SETUSER", "repl", "on", ">rpw", "-@all", "+psync",
                              "+replconf", "+ping", "+sync")
        admin.execute_command("ACL", "SETUSER", "admin", "on", ">apw", "+@all", "~*", "&*")
        admin.set("k", "v")
        admin.execute_command("ACL", "SETUSER", "default", "off")
        admin.execute_command("AUTH", "admin", "apw")
        rep = ServerProc(replica_kind, args=["--replicaof", "127.0.0.1", str(m.port),
                                         "--masteruser", "repl", "--masterauth", "rpw"]).start()
        rc = redis.Redis(port=rep.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if rc.info("replication").get("master_link_status") == "up" and rc.get("k"):
                break
            time.sleep(0.05)
        assert rc.get("k") == b"v"
        assert b"user=(superuser)" in rc.execute_command("CLIENT", "LIST", "TYPE", "master")
        rc.config_set("masterauth", "wrong")
        rc.execute_command("CLIENT", "KILL", "TYPE", "master")
        time.sleep(0.5)
        assert rc.info("replication").get("master_link_status") == "down"
        log = admin.execute_command("ACL", "LOG")
        assert any(b"repl" in str(e).encode() for e in log)
    finally:
        if rep is not None:
            rep.cleanup()
        m.cleanup()


@settings(max_examples=60, deadline=None)
@given(st.lists(_RULE, min_size=1, max_size=5))
def test_fuzz_setuser_through_the_server_gives_ok_or_one_clean_error(rules):
    """Any rule list gets +OK or a single-line -ERR reply from the server
    (a newline in a refused rule is not echoed raw)."""
    import random

    from frtrio.config import Config
    from frtrio.core.engine import Server

    srv = Server(Config(), random.Random(0))
    c = srv.new_client("t", "")
    srv.execute(c, [b"ACL", b"SETUSER", b"fz"] + [r.encode("latin-1") for r in rules])
    out = c.take_output()
    assert out == b"+OK\r\n" or (out.startswith(b"-ERR ") and out.count(b"\r\n") == 1
                                 and out.endswith(b"\r\n")), out
    srv.execute(c, [b"ACL", b"LIST"])
    assert c.take_output().startswith(b"*2\r\n" if out == b"+OK\r\n" else b"*1\r\n")


def test_acl_pubsub_default_decides_new_users_and_reset(d):
    d("CONFIG", "SET", "acl-pubsub-default", "allchannels")
    d("ACL", "SETUSER", "pd1", "on")
    d("ACL", "SETUSER", "pd2", "&x", "reset")
    d("ACL", "SETUSER", "pd3", "(+get)")
    d("ACL", "LIST")
    d("CONFIG", "SET", "acl-pubsub-default", "resetchannels")
    d("ACL", "SETUSER", "pd4", "on")
    d("ACL", "SETUSER", "pd1", "reset")
    d("ACL", "LIST")
    d("CONFIG", "GET", "acl-pubsub-default")


def test_hello_auth_reply_and_errors(d):
    d("ACL", "SETUSER", "hu", "on", ">hp", "+@all")
    e = _fresh(d)
    a, b = e.both("HELLO", "3", "AUTH", "hu", "hp", "SETNAME", "n1")
    mask = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")
    assert mask.sub(b"ID", a) == mask.sub(b"ID", b)
    e("ACL", "WHOAMI")
    e("CLIENT", "GETNAME")
    e("HELLO", "3", "AUTH", "hu")
    e("HELLO", "3", "AUTH", "hu", "bad")
    e("HELLO", "2", "AUTH", "nosuch", "x")
    e("ACL", "WHOAMI")
    e.f.close()
    e.r.close()


def test_getuser_and_log_in_resp3(d):
    d("ACL", "SETUSER", "r3", "on", ">p", "~a*", "&c", "+get", "(%R~b* +@read)")
    e = _fresh(d)
    a, b = e.both("HELLO", "3")
    e("ACL", "GETUSER", "r3")
    e("ACL", "GETUSER", "nosuch")
    e("AUTH", "r3", "bad")
    a, b = e.both("ACL", "LOG", "1")
    mask = re.compile(rb"age-seconds\r\n,[^\r]*\r\n|client-info\r\n\$\d+\r\n[^\r]*\r\n")
    assert mask.sub(b"X", a) == mask.sub(b"X", b)
    e.f.close()
    e.r.close()


def test_standins_for_unserved_commands_never_reach_the_command_table():
    """Rules may name Redis commands frtrio does not serve (MEMORY...), and
    DRYRUN judges them, but the gate still answers 'unknown command'."""
    from frtrio.commands.table import TABLE

    u = A.universe()
    # (every command Redis 7.0 lists is in the table now, QUIT included,
    # which the engine answers before its checks: no stand-ins are left)
    assert b"quit" in TABLE and b"quit" not in u.standins
    assert all(name.split(b"|")[0] not in TABLE for name in u.standins)
    for top in TABLE.values():
        for sub in top.subcommands.values():
            assert sub.handler is not None or sub.subcommands, sub.fullname
