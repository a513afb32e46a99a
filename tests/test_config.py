"""Configuration: redis.conf files and redis-server's command line, checked
against redis-server 7.0.15 itself.

* Bad configs and bad arguments: both binaries get the same arguments and
  files; the FATAL CONFIG FILE ERROR block (line number, quoted line,
  reason) on stderr, the log message on stdout and the exit code must be the
  same. frtrio's side runs in-process (``cli.configure`` with a virtual cwd)
  so the table stays fast; ``test_cli.py`` runs the real ``frtrio-server``
  process for a sample of them.
* Good configs: redis-server is started with them and ``CONFIG GET *`` is
  compared, value by value, with what frtrio's loader produced.
* CONFIG SET / GET through the ``diff`` fixture (both servers, reply bytes).
* CONFIG REWRITE: both servers start from the same file, take the same
  CONFIG SETs, rewrite; the files must agree (lines in place identical,
  appended lines equal as a set: Redis appends them in hash order).
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
from conftest import requires_redis
from support import REDIS_SERVER, RawConn, ServerProc, free_port

from frtrio import cli
from frtrio.config import Config, FatalConfig, Host, LoadAbort, rewrite_config_text

pytestmark = requires_redis

LOG_PREFIX = re.compile(rb"^\d+:[CMSX] \d\d \w\w\w \d{4} \d\d:\d\d:\d\d\.\d{3} [.\-*#] ", re.M)


class VirtualHost(cli.RealHost):
    """Real files, but a virtual current directory (so `dir` does not move
    the test process)."""

    def __init__(self, cwd: str):
        self.cwd = cwd

    def _abs(self, p: str) -> str:
        return os.path.normpath(os.path.join(self.cwd, p))

    def read_config_file(self, path: str) -> bytes:
        return super().read_config_file(self._abs(path)) if not os.path.isabs(path) else \
            super().read_config_file(path)

    def chdir(self, path: str) -> None:
        p = self._abs(path)
        if not os.path.exists(p):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if not os.path.isdir(p):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        self.cwd = p

    def getcwd(self) -> str:
        return self.cwd

    def check_logfile(self, path: str) -> None:
        super().check_logfile(self._abs(path))


def frtrio_outcome(args, cwd, stdin=b""):
    """(exit code or None when it would start, stdout message, stderr, cfg)."""
    old = os.getcwd()
    os.chdir(cwd)  # only for os.path.abspath of the config file argument
    try:
        cfg = cli.configure(args, VirtualHost(cwd), stdin=io.BytesIO(stdin))
    except cli.UsageExit as e:
        return e.code, e.out.encode(), e.err.encode(), None
    except FatalConfig as e:
        return 1, b"", e.render().encode(), None
    except LoadAbort as e:
        return 1, str(e).encode() + b"\n", b"", None
    finally:
        os.chdir(old)
    return None, b"", b"", cfg


def redis_outcome(args, cwd, stdin=b"", wait=3.0):
    """(exit code or None when it started, stdout messages, stderr)."""
    p = subprocess.Popen([REDIS_SERVER] + args, cwd=cwd, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(stdin, timeout=wait)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    # keep the log messages that matter: fatal ones ('#'), without the prefix
    msgs = [LOG_PREFIX.sub(b"", ln) for ln in out.splitlines()
            if b"Fatal error" in ln or b"Module" in ln or b"aborting" in ln]
    return rc, b"".join(m + b"\n" for m in msgs), err


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="cfgdiff-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _write(d, name, text):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    return p


def compare(args, work, files=None, stdin=b""):
    for name, text in (files or {}).items():
        _write(work, name, text)
    r = redis_outcome(args, work, stdin)
    f = frtrio_outcome(args, work, stdin)
    assert r[0] is not None, "redis-server started: not an error case %r" % (args,)
    assert (f[0], f[1], f[2]) == r, "%r\nredis:  %r\nfrtrio: %r" % (args, r, f[:3])


BIND17 = ["127.0.0.%d" % i for i in range(1, 18)]

ERROR_ARGS = [
    ["--port", "abc"],
    ["--port", "70000"],
    ["--port", "-1"],
    ["--port", "7000", "7001"],
    ["--port"],
    ["--port", "--bind"],
    ["--port", "01"],
    ["--port", "+5"],
    ["--appendonly", "maybe"],
    ["--appendfsync", "sometimes"],
    ["--maxmemory", "1zb"],
    ["--maxmemory", "-1"],
    ["--maxmemory", "1.5gb"],
    ["--nosuch", "1"],
    ["--save", "1"],
    ["--save", "0", "1"],
    ["--save", "10", "-1"],
    ["--save", "10", "x"],
    ["--save", "900 1", "300 10"],
    ["--save", "--port", "abc"],
    ["-x"],
    ["--loglevel", "bogus"],
    ["--loglevel"],
    ["--maxclients", "-1"],
    ["--maxclients", "0"],
    ["--slowlog-max-len", "-1"],
    ["--hash-max-listpack-entries", "-1"],
    ["--hash-max-ziplist-entries", "abc"],
    ["--maxmemory-clients", "101%"],
    ["--maxmemory-clients", "abc"],
    ["--maxmemory-clients", "-5"],
    ["--unixsocketperm", "999"],
    ["--unixsocketperm", "abc"],
    ["--unixsocketperm", "1000"],
    ["--client-output-buffer-limit", "master 1 1 1"],
    ["--client-output-buffer-limit", "normal 1x 1 1"],
    ["--client-output-buffer-limit", "normal 1 1"],
    ["--client-output-buffer-limit", "normal 1 1 -1"],
    ["--oom-score-adj-values", "0 200 5000"],
    ["--oom-score-adj-values", "0 200"],
    ["--oom-score-adj", "sometimes"],
    ["--notify-keyspace-events", "KEq"],
    ["--notify-keyspace-events", "K", "E"],
    ["--bind"] + BIND17,
    ["--replicaof", "127.0.0.1"],
    ["--replicaof", "127.0.0.1", "99999"],
    ["--slaveof", "127.0.0.1", "abc"],
    ["--cluster-enabled", "yes", "--replicaof", "127.0.0.1", "6380"],
    ["--latency-tracking-info-percentiles", "101"],
    ["--latency-tracking-info-percentiles", "abc"],
    ["--shutdown-on-sigterm", "save", "nosave"],
    ["--shutdown-on-sigterm", "save nosave"],
    ["--shutdown-on-sigint", "sometimes"],
    ["--shutdown-on-sigterm"],
    ["--propagation-error-behavior", "foo"],
    ["--proc-title-template", "{foo}"],
    ["--proc-title-template", ""],
    ["--cluster-announce-hostname", "a_b"],
    ["--dbfilename", "a/b"],
    ["--appendfilename", ""],
    ["--appendfilename", "x/y"],
    ["--appenddirname", "a/b"],
    ["--appenddirname", ""],
    ["--activedefrag", "yes"],
    ["--dir", "/nonexistent/dir"],
    ["--dir", "/etc/hostname"],
    ["--logfile", "/nonexistent/dir/log"],
    ["--proto-max-bulk-len", "1k"],
    ["--client-query-buffer-limit", "1000"],
    ["--list-max-listpack-size", "-2147483649"],
    ["--databases", "0"],
    ["--io-threads", "129"],
    ["--active-expire-effort", "11"],
    ["--tls-auth-clients", "bad"],
    ["--syslog-facility", "local9"],
    ["--supervised", "sometimes"],
    ["--repl-diskless-load", "x"],
    ["--enable-debug-command", "maybe"],
    ["--rename-command", "nosuch", "x"],
    ["--rename-command", "get", "set"],
    ["--rename-command", "get"],
    ["--foo.bar"],
    ["--include", "/nonexistent.conf"],
    ["/nonexistent.conf"],
    ["--list-max-ziplist-entries", "5", "6"],
    ["--lua-replicate-commands", "yes", "--port", "x"],
    ["--sentinel-thing", "x"],
    ["--use-exit-on-panic", "maybe"],
    ["--rdb-key-save-delay", "x"],
    ["--loading-process-events-interval-bytes", "10"],
    ["--timeout", "-1"],
    ["--repl-backlog-size", "0"],
    ["--slowlog-log-slower-than", "-2"],
    ["--socket-mark-id", "-1"],
    ["--daemonize", "yes", "--port", "1", "--nosuch"],
]


@pytest.mark.parametrize("args", ERROR_ARGS, ids=lambda a: " ".join(a)[:60])
def test_bad_command_line_same_error(args, work):
    compare(args, work)


FILE_CASES = [
    # (file text, extra args)
    ("port 7000\n  maxmemory 1xb \n", []),
    ('port 7000\nrequirepass "abc\n', []),
    ("port 7000\r\nhz abc\r\n", []),
    ("# comment\n\n\t\nlist-max-ziplist-entries 5\nfoo bar\n", []),
    ("save 900 1\nsave 300\n", []),
    ("sentinel monitor mymaster 127.0.0.1 6379 2\n", []),
    ("port 7000\n", ["--hz", "x"]),
    ("port 7000", ["--hz", "x"]),
    ("PORT 7000\nMaxMemory 1qb\n", []),
    ("bind 127.0.0.1 ::1\nport abc\n", []),
    ('requirepass "a\\x41b" extra\n', []),
    ("include inc.conf\nport x\n", []),
    ("dir sub\nlogfile nodir/log\n", []),
    ("loadmodule\n", []),
    ("rename-command\n", []),
    ("include\n", []),
    ("port 7000 # trailing comment\n", []),
    ("'port' '7000'x\n", []),
]


@pytest.mark.parametrize("text,extra", FILE_CASES, ids=lambda x: repr(x)[:40])
def test_bad_config_file_same_error(text, extra, work):
    os.mkdir(os.path.join(work, "sub"))
    _write(work, "inc.conf", "timeout 5\nmaxclients abc\n")
    compare(["my.conf"] + extra, work, files={"my.conf": text})


def test_include_glob_and_nested_error(work):
    os.mkdir(os.path.join(work, "conf.d"))
    _write(work, "conf.d/a.conf", "timeout 5\n")
    _write(work, "conf.d/b.conf", "hz 10\nmaxclients -3\n")
    compare(["my.conf"], work, files={"my.conf": "include %s/conf.d/*.conf\n" % work})


def test_config_from_stdin_same_error(work):
    compare(["-"], work, stdin=b"port 7000\nhz nope\n")
    compare(["my.conf", "-"], work, files={"my.conf": "port 7000\n"}, stdin=b"hz nope\n")
    compare(["my.conf", "--port", "7001", "-"], work, files={"my.conf": "port 7000\n"},
            stdin=b"timeout nope\n")
    compare(["-", "--port", "x"], work, stdin=b"timeout 1\n")


def test_version_and_help_exit_codes(work):
    r = redis_outcome(["--version"], work)
    f = frtrio_outcome(["--version"], work)
    assert r[0] == f[0] == 0
    assert f[1].startswith(b"Redis server v=7.0.15 ")
    r = redis_outcome(["-h"], work)
    f = frtrio_outcome(["-h"], work)
    assert r[0] == f[0] == 1
    assert f[2].startswith(b"Usage: ") and r[2].startswith(b"Usage: ")


# --- good configs: CONFIG GET * must agree ---------------------------------------


def _redis_config_get_all(args, work):
    import redis

    port = free_port()
    p = subprocess.Popen([REDIS_SERVER] + args + ["--port", str(port), "--dir", work,
                                                  "--logfile", "redis.log"],
                         cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        pw = args[args.index("--requirepass") + 1] if "--requirepass" in args else None
        while True:
            try:
                r = redis.Redis(port=port, decode_responses=True, password=pw, socket_timeout=5)
                r.ping()
                break
            except Exception:
                if p.poll() is not None or time.monotonic() > deadline:
                    p.kill()
                    p.wait()
                    raise AssertionError("redis-server did not start: %r" % p.stderr.read())
                time.sleep(0.02)
        allc = r.config_get("*")
        hidden = {k: r.config_get(k)[k] for k in ("use-exit-on-panic", "watchdog-period")}
        r.close()
        return port, allc, hidden
    finally:
        p.kill()
        p.wait()
        p.stderr.close()


GOOD_CONFIGS = [
    ["--save", "900", "1", "--save", "300", "10"],
    ["--save", "900 1", "--save", ""],
    ["--save", "", "--save", "60 5"],
    ["--save", "+100 1"],
    ["--save"],
    ["--maxmemory", "1gb", "--maxmemory-clients", "10%", "--notify-keyspace-events", "KEA",
     "--oom-score-adj", "relative", "--unixsocketperm", "700", "--hz", "1000",
     "--client-output-buffer-limit", "replica 1gb 1mb 5 pubsub 1k 2kb 3",
     "--latency-tracking-info-percentiles", "1.5 100 0",
     "--shutdown-on-sigterm", "now nosave", "--shutdown-on-sigint", "force now save"],
    ["--maxmemory", "kb", "--hz", "0", "--notify-keyspace-events", "dtmnE",
     "--bind", "127.0.0.1", "-::1", "--appendfsync", "ALWAYS", "--loglevel", "WARNING",
     "--slave-read-only", "no", "--hash-max-ziplist-entries", "100",
     "--lua-time-limit", "100", "--tls-auth-clients", "optional", "--unixsocketperm", ""],
    ["--oom-score-adj-values", "-5 100 2000", "--latency-tracking-info-percentiles", "",
     "--list-max-ziplist-entries", "5", "--maxmemory", "100MB", "--proto-max-bulk-len", "2mb",
     "--client-query-buffer-limit", "1g", "--repl-backlog-size", "3k",
     "--slaveof", "127.0.0.1", "1", "--replicaof", "no", "one"],
    ["--requirepass", "sekret", "--masterauth", "x y", "--cluster-announce-hostname", "a.b-c",
     "--proc-title-template", "{title} {port}", "--notify-keyspace-events", "",
     "--enable-debug-command", "local", "--enable-protected-configs", "yes"],
]


@pytest.mark.parametrize("args", GOOD_CONFIGS, ids=lambda a: " ".join(a)[:60])
def test_good_config_same_values(args, work):
    port, rvals, rhidden = _redis_config_get_all(args, work)
    rc, out, err, cfg = frtrio_outcome(args + ["--port", str(port), "--dir", work,
                                               "--logfile", "redis.log"], work)
    assert rc is None, (out, err)
    fvals = dict(cfg.matching("*"))
    assert sorted(fvals) == sorted(rvals)
    diffs = {k: (rvals[k], fvals[k]) for k in rvals if rvals[k] != fvals[k]}
    assert not diffs
    for k, v in rhidden.items():
        assert cfg.matching(k) == [(k, v)]


def test_config_file_save_semantics(work):
    """The first save line of a file replaces the defaults; later lines add;
    save "" clears."""
    for text, want in [
        ("save 900 1\nsave 300 10\n", "900 1 300 10"),
        ('save 900 1\nsave ""\n', ""),
        ('save ""\nsave 60 5\n', "60 5"),
        ("port 7000\n", "3600 1 300 100 60 10000"),
    ]:
        path = _write(work, "s.conf", text)
        port, rvals, _ = _redis_config_get_all([path], work)
        _, _, _, cfg = frtrio_outcome([path, "--port", str(port)], work)
        assert rvals["save"] == cfg.get("save") == want, text


# --- CONFIG SET / GET on live servers ------------------------------------------


SET_CASES = [
    ("maxmemory", "2gb"), ("maxmemory", "-1"), ("maxmemory", "1.5"),
    ("hz", "0"), ("hz", "1000"), ("hz", "x"),
    ("maxclients", "-1"), ("slowlog-max-len", "-1"),
    ("maxmemory-clients", "101%"), ("maxmemory-clients", "5%"), ("maxmemory-clients", "abc"),
    ("notify-keyspace-events", "g$lshzxetd"), ("notify-keyspace-events", "dtmnKAE"),
    ("notify-keyspace-events", "KEq"), ("notify-keyspace-events", ""),
    ("appendfsync", "sometimes"), ("appendfsync", "NO"),
    ("oom-score-adj", "relative"), ("oom-score-adj", "absolute"),
    ("oom-score-adj-values", "0 200 5000"), ("oom-score-adj-values", "0 200"),
    ("oom-score-adj-values", "1 2 3"),
    ("latency-tracking-info-percentiles", "1.5 100 0"),
    ("latency-tracking-info-percentiles", "101"), ("latency-tracking-info-percentiles", "abc"),
    ("latency-tracking-info-percentiles", ""),
    # C parsing through frtrio.core.cnum: overflow, underflow, hex; a non-ASCII unit
    ("latency-tracking-info-percentiles", "1e400"), ("latency-tracking-info-percentiles", "1e-400"),
    ("latency-tracking-info-percentiles", "0x10"), ("maxmemory", "1\u212a"),
    ("maxmemory", "3MB"), ("unixsocketperm", "0777x"), ("save", "10 99999999999"),
    ("save", "100 1"), ("save", "1 1 2"), ("save", "0 5"), ("save", ""),
    ("client-output-buffer-limit", "SLAVE 1gb 1mb 5"),
    ("client-output-buffer-limit", "master 1 1 1"),
    ("client-output-buffer-limit", "normal 1x 1 1"),
    ("client-output-buffer-limit", "normal 1 1"),
    ("shutdown-on-sigint", "nosave now"), ("shutdown-on-sigint", "save nosave"),
    ("shutdown-on-sigint", "bad"),
    ("tls-auth-clients", "optional"), ("tls-auth-clients", "bad"),
    ("proc-title-template", "{foo}"), ("cluster-announce-hostname", "a_b"),
    ("activedefrag", "yes"), ("proto-max-bulk-len", "1k"),
    ("list-max-listpack-size", "-2147483649"), ("replica-priority", "7"),
    ("slave-priority", "8"), ("lua-time-limit", "77"),
    ("daemonize", "yes"), ("dir", "/tmp"), ("dbfilename", "x.rdb"),
    ("syslog-facility", "bad"), ("nosuch", "1"), ("replicaof", "no one"),
    ("requirepass", ""),
]


@pytest.mark.parametrize("name,value", SET_CASES, ids=lambda x: str(x)[:30])
def test_config_set_get_same(diff, name, value):
    diff("CONFIG", "SET", name, value)
    a, b = diff.both("CONFIG", "GET", name)
    if name not in ("dir",):
        assert a == b


def test_config_get_patterns_same(diff):
    for pat in ("*max*", "slave*", "*PORT*", "save", "SAVE", "bind", "*ziplist*",
                "use-exit-on-panic", "*panic*", "nosuch", "tls-*", "?z"):
        a, b = diff.both("CONFIG", "GET", pat)
        ma, mb = _as_map(a), _as_map(b)
        for k in (b"port", b"PORT", b"dir", b"logfile"):
            if k in ma and k in mb:
                ma[k] = mb[k] = b"?"
        assert ma == mb, pat


def test_config_get_all_same_names(diff):
    a, b = diff.both("CONFIG", "GET", "*")
    ma, mb = _as_map(a), _as_map(b)
    assert sorted(ma) == sorted(mb)


def _as_map(raw: bytes) -> dict:
    """Parse a RESP2 flat array reply of bulk strings into a dict."""
    parts = raw.split(b"\r\n")
    n = int(parts[0][1:])
    vals = []
    i = 1
    while len(vals) < n:
        ln = int(parts[i][1:])
        vals.append(parts[i + 1] if ln >= 0 else None)
        i += 2
    return dict(zip(vals[0::2], vals[1::2]))


# --- CONFIG REWRITE ------------------------------------------------------------------

REWRITE_BASE = """# top comment
include {inc}
rename-command FLUSHALL ""

  maxmemory 100mb   
save 900 1
save 300 10
# middle


# end
hz 10
loglevel notice
slave-read-only yes
hash-max-ziplist-entries 100
appendfsync everysec
"""


def _start(kind, conf, d):
    import sys

    import redis

    port = free_port()
    base = [conf, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--logfile", "s.log"]
    cmd = ([REDIS_SERVER] if kind == "redis" else [sys.executable, "-m", "frtrio.cli"]) + base
    proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            r = redis.Redis(port=port)
            r.ping()
            return proc, port, r
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("%s did not start: %r" % (kind, proc.stderr.read()))
            time.sleep(0.05)


def _rewrite_both(work, text, sets, inc_text="timeout 5\n"):
    inc = _write(work, "inc.conf", inc_text)
    out = {}
    for kind in ("redis", "frtrio"):
        d = os.path.join(work, kind)
        os.mkdir(d)
        conf = _write(d, "r.conf", text.format(inc=inc))
        proc, port, r = _start(kind, conf, d)
        try:
            for args in sets:
                r.execute_command("CONFIG", "SET", *args)
            assert r.execute_command("CONFIG", "REWRITE") in (b"OK", True)
            r.close()
        finally:
            proc.kill()
            proc.wait()
            proc.stderr.close()
        with open(conf) as f:
            content = f.read()
        out[kind] = content.replace(str(port), "PORT").replace(d, "DIR")
    return out["redis"], out["frtrio"]


def _split_rewritten(text):
    marker = "# Generated by CONFIG REWRITE\n"
    if marker in text:
        head, tail = text.split(marker, 1)
        return head, sorted(tail.splitlines())
    return text, []


def test_config_rewrite_same_file(work):
    r, f = _rewrite_both(work, REWRITE_BASE, [
        ("maxmemory", "2gb"), ("hz", "20"), ("appendfsync", "always"),
        ("notify-keyspace-events", "KEx"), ("client-output-buffer-limit", "pubsub 64mb 16mb 90"),
        ("slave-read-only", "no"), ("maxmemory-clients", "10%"), ("save", ""),
        ("requirepass", "pw"), ("oom-score-adj-values", "1 2 3"),
    ])
    rh, rt = _split_rewritten(r)
    fh, ft = _split_rewritten(f)
    assert fh == rh
    assert ft == rt


def test_config_rewrite_defaults_kept_in_place(work):
    text = "port 1\nhz 10\nmaxmemory 0\n# keep me\nsave 900 1\n"
    r, f = _rewrite_both(work, text, [("hz", "10"), ("save", "900 1 60 5")])
    assert _split_rewritten(f) == _split_rewritten(r)


def test_config_rewrite_without_file(diff):
    diff("CONFIG", "REWRITE")


def test_rewrite_text_pure():
    cfg = Config()
    cfg.values["maxmemory"] = str(3 * 1024 * 1024)
    out = rewrite_config_text(cfg, b"# c\nmaxmemory 1\n\n\n\nmaxmemory 2\n", "/x")
    assert out == ('# c\nmaxmemory 3mb\n\n'
                   '# Generated by CONFIG REWRITE\ndir "/x"\n'
                   'save 3600 1\nsave 300 100\nsave 60 10000\n'
                   'latency-tracking-info-percentiles 50 99 99.9\n'
                   'user default on nopass ~* &* +@all\n')


def test_unsupported_directives_and_bad_users_refuse_to_start(work):
    for args, needle in [
        (["--user", "alice", "on", "#abc", "~*", "+@all"], "Error in user declaration"),
        (["--user", "alice", "on", "+nosuchcommand"], "Critical error while loading ACLs"),
        (["--loadmodule", "/x.so"], "Module /x.so failed to load"),
    ]:
        rc, out, err, _ = frtrio_outcome(args, work)
        assert rc == 1
        assert needle.encode() in out + err
    # the user line CONFIG REWRITE writes for requirepass is accepted
    import hashlib

    h = hashlib.sha256(b"pw").hexdigest()
    rc, out, err, cfg = frtrio_outcome(["--requirepass", "pw", "--user", "default", "on",
                                        "#" + h, "~*", "&*", "+@all"], work)
    assert rc is None, err
    # other users are accepted too (ACL)
    rc, out, err, cfg = frtrio_outcome(["--user", "alice", "on", ">pw", "~*", "+@all"], work)
    assert rc is None, err


def test_host_interface_is_complete():
    for name in ("read_config_file", "glob", "chdir", "getcwd", "check_logfile"):
        assert getattr(cli.RealHost, name) is not getattr(Host, name)


def test_config_rewrite_duplicates_and_multi_line_options(work):
    text = ("hz 10\nhz 20\nclient-output-buffer-limit normal 0 0 0\n"
            "client-output-buffer-limit pubsub 32mb 8mb 60\nsave 1 1\nsave 2 2\nsave 3 3\n"
            "notify-keyspace-events \"\"\nbind 127.0.0.1\nmaxmemory-policy noeviction\n"
            "lua-time-limit 100\n")
    r, f = _rewrite_both(work, text, [
        ("save", "10 1 20 2"), ("client-output-buffer-limit", "replica 1mb 2mb 3"),
        ("notify-keyspace-events", "Ex"), ("maxmemory-policy", "allkeys-lru"),
        ("busy-reply-threshold", "200"), ("latency-tracking-info-percentiles", "50"),
        ("shutdown-on-sigterm", "nosave now"),
    ])
    assert _split_rewritten(f) == _split_rewritten(r)


def test_rename_command_is_per_server():
    """rename-command changes only its own server's command table: another
    server in the same process (the simulator runs many) keeps every name."""
    import support

    import random

    from frtrio.core.engine import Server

    cfg = Config()
    cfg.renames.extend([("get", ""), ("set", "myset")])
    renamed = Server(cfg, random.Random(1))
    plain = support.engine()
    a, b = renamed.new_client(), plain.new_client()
    assert support.run(renamed, a, "SET", "k", "v").startswith(b"-ERR unknown command 'SET'")
    assert support.run(renamed, a, "MYSET", "k", "v") == b"+OK\r\n"
    assert support.run(renamed, a, "GET", "k").startswith(b"-ERR unknown command 'GET'")
    assert support.run(plain, b, "SET", "k", "w") == b"+OK\r\n"
    assert support.run(plain, b, "GET", "k") == b"$1\r\nw\r\n"
    assert support.run(plain, b, "COMMAND", "COUNT") != support.run(renamed, a, "COMMAND", "COUNT")


def test_config_set_applied_by_the_shell_is_all_or_nothing(tmp_path):
    """CONFIG SET of dir / appendonly / loglevel is applied by the node's
    shell (an ApplyConfig effect): a directory that does not exist refuses
    the whole CONFIG SET with Redis's words, the other values stay as they
    were; a good one applies, also inside MULTI/EXEC. Side by side."""
    good = tmp_path / "elsewhere"
    good.mkdir()
    script = [
        ("CONFIG", "SET", "maxmemory-clients", "1000000", "dir", str(tmp_path / "nope")),
        ("CONFIG", "GET", "maxmemory-clients"),
        ("CONFIG", "SET", "loglevel", "warning", "dir", str(tmp_path / "nope")),
        ("CONFIG", "GET", "loglevel"),
        ("CONFIG", "SET", "dir", str(good), "loglevel", "verbose"),
        ("CONFIG", "GET", "dir"), ("CONFIG", "GET", "loglevel"),
        ("MULTI",), ("CONFIG", "SET", "dir", str(tmp_path / "nope")),
        ("CONFIG", "SET", "dir", str(tmp_path)), ("PING",), ("EXEC",),
        ("CONFIG", "GET", "dir"),
        ("CONFIG", "SET", "appendonly", "yes"), ("SET", "k", "v"),
        ("CONFIG", "SET", "appendonly", "no"), ("CONFIG", "GET", "appendonly"),
    ]
    replies = {}
    for kind in ("redis", "frtrio"):
        with ServerProc(kind, ["--enable-protected-configs", "yes"]) as p:
            with RawConn(p.port) as c:
                replies[kind] = [c.cmd(*a) for a in script]
                if kind == "frtrio":
                    time.sleep(0.2)
                    assert os.path.exists(tmp_path / "appendonlydir")
    assert replies["frtrio"] == replies["redis"]
    assert replies["frtrio"][0].startswith(b"-ERR CONFIG SET failed (possibly related to argument 'dir')")
    assert replies["frtrio"][1] == b"*2\r\n$17\r\nmaxmemory-clients\r\n$1\r\n0\r\n"


@pytest.mark.parametrize("cluster", [False, True], ids=["client-port", "bus-port"])
def test_listen_failure_logs_and_exit_match_redis(cluster, work):
    """A port already taken: the same warning (Redis's anetTcpServer words)
    and the same "Failed listening on port P (TCP|cluster), aborting.", the
    bus port named when it is the bus port; exit code 1."""
    import socket
    import sys

    port = free_port()
    taken = port + 10000 if cluster else port
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", taken))
    holder.listen()
    try:
        out = {}
        for kind, exe in (("frtrio", [sys.executable, "-m", "frtrio.cli"]), ("redis", [REDIS_SERVER])):
            args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", work]
            if cluster:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes-%s.conf" % kind]
            p = subprocess.run(exe + args, capture_output=True, timeout=30, cwd=work)
            lines = [LOG_PREFIX.sub(b"", ln) for ln in p.stdout.splitlines()]
            out[kind] = (p.returncode, [ln for ln in lines if b"listening" in ln.lower()])
    finally:
        holder.close()
    assert out["frtrio"] == out["redis"], out
    assert out["redis"][1][-1] == b"Failed listening on port %d (%s), aborting." % (
        taken, b"cluster" if cluster else b"TCP")
