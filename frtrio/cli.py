"""Command lines.

``frtrio-server [config-file] [--option value ...] [-]`` takes redis-server
7.0's command line and redis.conf files: the options are turned into config
lines appended after the file (and after stdin when ``-`` is given), exactly
as redis-server does, so a bad option is reported with the same FATAL CONFIG
FILE ERROR block, line number and reason. ``frtrio`` is the tool for the rest
(``frtrio cluster ...``, ``frtrio sim ...`` as those land).

Process duties live here too: logging in Redis's format (``logfile``,
``loglevel``), ``daemonize yes`` (fork, setsid, stdio to /dev/null),
``pidfile`` (written once listening, removed at exit), SIGTERM/SIGINT
(the handler sets a flag; the node's cron carries out the shutdown).
"""

from __future__ import annotations

import errno
import glob as _glob
import logging
import os
import signal
import sys
import time

from frtrio.config import (
    VERSION,
    Config,
    ConfigError,
    FatalConfig,
    Host,
    LoadAbort,
    load_config_text,
    repr_bytes,
    to_bytes,
)
from frtrio.protocol.parser import split_args

USAGE = """Usage: ./frtrio-server [/path/to/redis.conf] [options] [-]
       ./frtrio-server - (read config from stdin)
       ./frtrio-server -v or --version
       ./frtrio-server -h or --help
       ./frtrio-server --test-memory <megabytes>
       ./frtrio-server --check-system

Examples:
       ./frtrio-server (run the server with default conf)
       echo 'maxmemory 128mb' | ./frtrio-server -
       ./frtrio-server /etc/redis/6379.conf
       ./frtrio-server --port 7777
       ./frtrio-server --port 7777 --replicaof 127.0.0.1 8888
       ./frtrio-server /etc/myredis.conf --loglevel verbose -
       ./frtrio-server /etc/myredis.conf --loglevel verbose

Sentinel mode:
       ./frtrio-server /etc/sentinel.conf --sentinel
"""

log = logging.getLogger("frtrio")

# Redis's four log levels; notice is Python's INFO
from frtrio.core import VERBOSE  # noqa: E402
logging.addLevelName(VERBOSE, "VERBOSE")
_LEVELS = {"debug": logging.DEBUG, "verbose": VERBOSE, "notice": logging.INFO,
           "warning": logging.WARNING}


class UsageExit(Exception):
    def __init__(self, code: int, out: str = "", err: str = ""):
        super().__init__(code)
        self.code = code
        self.out = out
        self.err = err


# --- logging in Redis's format ------------------------------------------------------


class RedisFormatter(logging.Formatter):
    """``pid:role dd Mon yyyy hh:mm:ss.mmm <level> message``."""

    role = "C"

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        ms = int((t - int(t)) * 1000)
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(t))
        lv = record.levelno
        ch = "." if lv < VERBOSE else "-" if lv < logging.INFO else "*" if lv < logging.WARNING else "#"
        msg = record.getMessage()
        if getattr(record, "raw", False):  # the startup banner: as is
            return msg
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return "%d:%s %s.%03d %s %s" % (os.getpid(), self.role, stamp, ms, ch, msg)


_formatter = RedisFormatter()


def _setup_logging(cfg: Config | None) -> None:
    if cfg is not None and cfg.get("logfile"):
        handler: logging.Handler = logging.FileHandler(cfg.get("logfile"))
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_formatter)
    root = logging.getLogger("frtrio")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[cfg.get("loglevel")] if cfg is not None else logging.INFO)
    root.propagate = False


# --- the config host: real files, cwd, command table ----------------------------------


class RealHost(Host):
    def read_config_file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise LoadAbort(
                "Fatal error, can't open config file '%s': %s" % (path, self.strerror(e))
            ) from None

    def glob(self, pattern: str) -> list[str]:
        return sorted(_glob.glob(pattern))

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def getcwd(self) -> str:
        return os.getcwd()

    def check_logfile(self, path: str) -> None:
        with open(path, "a"):
            pass

    def command_exists(self, name: str) -> bool:
        from frtrio.commands import table

        import frtrio.commands  # noqa: F401  (registers every command)

        return name.encode("latin-1", "replace") in table.TABLE


# --- command line -> config text ------------------------------------------------------


def build_options(argv: list[bytes]) -> tuple[bytes | None, bool, bytes]:
    """(config file argument, read stdin?, options text) from redis-server's
    arguments (without argv[0]), following redis-server's main()."""
    config_file = None
    j = 0
    argc = len(argv) + 1  # as C counts, with the program name
    if argv and argv[0][:1] != b"-":
        config_file = argv[0]
        j = 1
    options = b""
    from_stdin = False
    handled_last = True
    while j < len(argv):
        a = argv[j]
        cj = j + 1  # C index
        if a == b"-" and (cj == 1 or cj == argc - 1):
            from_stdin = True
        elif handled_last and a[:2] == b"--":
            if options:
                options += b"\n"
            options += a[2:] + b" "
            words = split_args(a)
            if words is not None and len(words) == 1:
                handled_last = False
                nxt = argv[j + 1] if cj != argc - 1 else None
                if nxt is not None and nxt[:2] == b"--" and a.lower() == b"--save":
                    options += b'""'
                    handled_last = True
                elif nxt is None and a.lower() == b"--save":
                    options += b'""'
            else:
                handled_last = True
        else:
            options += repr_bytes(a).encode("latin-1") + b" "
            handled_last = True
        j += 1
    return config_file, from_stdin, options


def configure(argv: list[str], host: Host, stdin=None) -> Config:
    """The Config redis-server would run with for these arguments.

    Raises UsageExit (-v, -h...), FatalConfig (a bad line: the FATAL CONFIG
    FILE ERROR block) or LoadAbort (a file that cannot be read)."""
    bargv = [os.fsencode(a) for a in argv]
    cfg = Config()
    if bargv:
        first = bargv[0]
        if first in (b"-v", b"--version"):
            raise UsageExit(0, out="Redis server v=%s sha=00000000:0 malloc=libc bits=64 "
                                   "build=frtrio\n" % VERSION)
        if first in (b"--help", b"-h"):
            raise UsageExit(1, err=USAGE)
        if first == b"--test-memory":
            raise UsageExit(1, err="frtrio-server: --test-memory is not supported\n")
        if first == b"--check-system":
            raise UsageExit(1, err="frtrio-server: --check-system is not supported\n")
    if any(a == b"--sentinel" for a in bargv):
        raise UsageExit(1, err="frtrio-server: Sentinel mode is not supported\n")
    if not bargv:
        cfg.values["dir"] = host.getcwd()
        return cfg
    config_file, from_stdin, options = build_options(bargv)
    text = b""
    if config_file is not None:
        path = os.path.abspath(os.fsdecode(config_file))
        cfg.config_file = path
        if any(ch in path for ch in "*?["):
            for f in host.glob(path):
                text += host.read_config_file(f)
        else:
            text += host.read_config_file(path)
    if from_stdin:
        log.warning("Reading config from stdin")
        src = stdin if stdin is not None else sys.stdin.buffer
        text += src.read()
    text += b"\n" + options
    load_config_text(cfg, text, host)
    _check_unsupported(cfg)
    cfg.values["dir"] = host.getcwd()  # CONFIG GET dir shows the working directory
    return cfg


def _check_unsupported(cfg: Config) -> None:
    """User directives are checked as Redis's ACLAppendUserForLoading does
    (the FATAL CONFIG block), then as ACLLoadUsersAtStartup does (users and
    an aclfile together, unknown commands, a bad aclfile: exit 1); modules
    are refused."""
    from frtrio.core import acl as A

    seen = set()
    for args in cfg.users:
        argv = [to_bytes("user")] + [to_bytes(a) for a in args]
        name = argv[1]
        if name in seen:
            raise FatalConfig("Error in user declaration '%s': %s" % (args[0], A.E_ALREADY))
        seen.add(name)
        merged, bad = A.merge_selector_args(argv[2:])
        if merged is None:
            # (Redis reports whatever errno was left behind, which is ENOENT
            # at that point of its startup, and indexes argv from "user")
            raise FatalConfig("Error in user declaration '%s': %s"
                              % (argv[bad].decode("latin-1"), A.E_NOENT))
        u = A.User(name)
        for j, op in enumerate(merged):
            try:
                u.apply(op)
            except A.RuleError as e:
                if e.args[0] != A.E_NOENT:
                    raise FatalConfig("Error in user declaration '%s': %s"
                                      % (argv[j].decode("latin-1"), e.args[0])) from None
    if cfg.users and cfg.get("aclfile"):
        raise LoadAbort(
            "Configuring Redis with users defined in redis.conf and at the same setting an ACL "
            "file path is invalid. This setup is very likely to lead to configuration errors "
            "and security holes, please define either an ACL file or declare users directly "
            "in your redis.conf, but not both.")
    for args in cfg.users:
        u = A.User(to_bytes(args[0]))
        for op in A.merge_selector_args([to_bytes(a) for a in args[1:]])[0]:
            try:
                u.apply(op)
            except A.RuleError as e:
                raise LoadAbort("Error loading ACL rule '%s' for the user named '%s': %s\n"
                                "Critical error while loading ACLs. Exiting."
                                % (op.decode("latin-1"), args[0], e.args[0])) from None
    if cfg.get("aclfile"):
        name = cfg.get("aclfile")
        try:
            with open(name, "rb") as f:
                text = f.read()
        except OSError as e:
            raise LoadAbort("Aborting Redis startup because of ACL errors: Error loading ACLs, "
                            "opening file '%s': %s" % (name, e.strerror)) from None
        _, errors = A.Acl().load_text(text, name)
        if errors is not None:
            raise LoadAbort("Aborting Redis startup because of ACL errors: " + errors)
    if cfg.module_configs and not cfg.modules:
        raise LoadAbort("Module Configuration detected without loadmodule directive or no "
                        "ApplyConfig call: aborting")
    for args in cfg.modules:
        raise LoadAbort("Module %s failed to load: frtrio does not support modules\n"
                        "Can't load module from %s: server aborting" % (args[0], args[0]))


# --- the process ----------------------------------------------------------------------


def server_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging(None)
    try:
        cfg = configure(argv, RealHost())
    except UsageExit as e:
        sys.stdout.write(e.out)
        sys.stderr.write(e.err)
        return e.code
    except FatalConfig as e:
        sys.stderr.write(e.render())
        sys.stderr.flush()
        return 1
    except LoadAbort as e:
        for line in str(e).split("\n"):
            log.warning("%s", line)
        return 1
    if cfg.get("daemonize") == "yes":
        _daemonize()
    _setup_logging(cfg)
    log.warning("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo")
    log.warning("Redis version=%s, bits=64, commit=00000000, modified=0, pid=%d, just started "
                "(frtrio %s)", VERSION, os.getpid(), _version())
    if not argv:
        log.warning("Warning: no config file specified, using the default config. In order to "
                    "specify a config file use %s /path/to/redis.conf", sys.argv[0])
    else:
        log.warning("Configuration loaded")
    _formatter.role = "M"
    if not _adjust_open_files_limit(cfg):
        return 1
    if not _listen_check(cfg):
        return 1
    return run_server(cfg)


def _banner(cfg: Config) -> None:
    """The startup banner, where redis-server shows its logo: with
    ``always-show-logo yes``, or when logging to a terminal; else one line.
    (Redis's test harness waits for the banner's `` PID: <pid>`` line.)"""
    mode = "cluster" if cfg.get("cluster-enabled") == "yes" else "standalone"
    port = int(cfg.get("port"))
    show = cfg.get("always-show-logo") == "yes" or (
        not cfg.get("logfile") and cfg.get("syslog-enabled") != "yes" and sys.stdout.isatty())
    if not show:
        log.info("Running mode=%s, port=%d.", mode, port)
        return
    lines = [
        "",
        "    frtrio %s   (Redis %s compatible, 64 bit)" % (_version(), VERSION),
        "    Running in %s mode" % mode,
        "    Port: %d" % port,
        "    PID: %d" % os.getpid(),
        "",
    ]
    log.info("\n".join(lines), extra={"raw": True})


# descriptors Redis keeps for itself beyond one per client (CONFIG_MIN_RESERVED_FDS)
_RESERVED_FDS = 32


def _adjust_open_files_limit(cfg: Config) -> bool:
    """Redis's adjustOpenFilesLimit: raise RLIMIT_NOFILE to maxclients + 32
    if the OS lets us; otherwise lower maxclients to what the limit allows,
    so that extra clients get "max number of clients reached" instead of
    waiting in the accept queue while accept() fails with EMFILE."""
    import resource

    maxclients = cfg.get_int("maxclients")
    want = maxclients + _RESERVED_FDS
    try:
        old, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError) as e:
        log.warning("Unable to obtain the current NOFILE limit (%s), assuming 1024 and setting "
                    "the max clients configuration accordingly.", e)
        cfg.set("maxclients", str(1024 - _RESERVED_FDS))
        return True
    if old == resource.RLIM_INFINITY or old >= want:
        return True
    best, err = want, None
    while best > old:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, best))
            break
        except (OSError, ValueError) as e:
            err = e
            if best < 16:
                best = old
                break
            best -= 16
    best = max(best, old)
    if best < want:
        if best <= _RESERVED_FDS:
            log.warning("Your current 'ulimit -n' of %d is not enough for the server to start. "
                        "Please increase your open file limit to at least %d. Exiting.", old, want)
            return False
        cfg.set("maxclients", str(best - _RESERVED_FDS))
        log.warning("You requested maxclients of %d requiring at least %d max file descriptors.",
                    maxclients, want)
        reason = err.strerror if isinstance(err, OSError) else os.strerror(errno.EPERM)
        log.warning("Server can't set maximum open files to %d because of OS error: %s.", want,
                    reason)
        log.warning("Current maximum open files is %d. maxclients has been reduced to %d to "
                    "compensate for low ulimit. If you need higher maxclients increase "
                    "'ulimit -n'.", best, best - _RESERVED_FDS)
    else:
        log.info("Increased maximum number of open files to %d (it was originally set to %d).",
                 want, old)
    return True


def _listen_check(cfg: Config) -> bool:
    """Where redis-server would listen, and what frtrio cannot do (TLS):
    refuse when nothing usable is left (TCP needs a port and a bind address;
    a unix socket alone will do)."""
    tcp = cfg.get_int("port") != 0 and cfg.get("bind").strip() != ""
    unix = cfg.get("unixsocket") not in (None, "")
    tls = cfg.get("tls-port") not in ("", "0")
    if not tcp and not unix and not tls:
        log.warning("Configured to not listen anywhere, exiting.")
        return False
    if tls:
        log.warning("frtrio does not implement TLS (tls-port %s): ignored", cfg.get("tls-port"))
    if not tcp and not unix:
        log.warning("frtrio can only listen on TCP or a unix socket without TLS; set a port. "
                    "Exiting.")
        return False
    return True


def _daemonize() -> None:
    """As redis-server: fork, the parent exits 0, the child leads a new
    session with stdio on /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def _register_appliers(node) -> None:
    """How CONFIG SET of process-wide parameters is applied (their ApplyConfig
    effect): dir (chdir), loglevel, oom-score-adj. (appendonly:
    ``runtime.persistence``.)"""
    cfg = node.config

    def apply_dir(value: str) -> None:
        try:
            os.chdir(value)
        except OSError as e:
            raise ConfigError(os.strerror(e.errno) if e.errno else str(e), "dir") from None
        cfg.values["dir"] = os.getcwd()

    def apply_loglevel(value: str) -> None:
        logging.getLogger("frtrio").setLevel(_LEVELS[value])

    node.config_appliers["dir"] = apply_dir
    node.config_appliers["loglevel"] = apply_loglevel
    from frtrio.runtime import crash, oom, proctitle

    oom.install(node)  # oom-score-adj (its own appliers)
    crash.install(node)  # a crash report on fatal signals
    proctitle.install(node)  # the process title (proc-title-template)


def run_server(cfg: Config) -> int:
    import trio

    from frtrio.persist.aof_format import AOFLoadError
    from frtrio.runtime.env import RealEnv
    from frtrio.runtime.node import Node

    env = RealEnv()
    node = Node(cfg, env)
    node.persist_rdb = True  # dump.rdb at start, save points, save at shutdown
    node.load_serving = True  # a big dump.rdb loads while clients are served
    # the banner once the listeners are open (before a big dataset loads):
    # Redis's test harness connects as soon as it sees its PID line
    node.on_listening.append(lambda: _banner(cfg))
    _register_appliers(node)
    pidfile = cfg.get("pidfile")
    if not pidfile and cfg.get("daemonize") == "yes":
        pidfile = "/var/run/redis.pid"
    pid_written = []

    def remove_pidfile():
        if pid_written:
            log.info("Removing the pid file.")
            _remove(pidfile)
            pid_written.clear()

    node.on_shutdown.append(remove_pidfile)

    async def main():
        async with trio.open_nursery() as n:

            async def when_ready():
                await node.ready.wait()
                if pidfile:
                    try:
                        with open(pidfile, "w") as f:
                            f.write("%d\n" % os.getpid())
                        pid_written.append(pidfile)
                    except OSError as e:
                        log.warning("Failed to write PID file: %s", e.strerror)
                log.info("Ready to accept connections")

            n.start_soon(when_ready)
            try:
                await node.run()
            finally:
                n.cancel_scope.cancel()

    from frtrio.runtime.env import run_tasks_in_wakeup_order

    run_tasks_in_wakeup_order()  # commands from two clients run in arrival order
    old_handlers = _install_signal_handlers(node)
    try:
        trio.run(main)
    except KeyboardInterrupt:  # pragma: no cover - a second ^C
        return 1
    except BaseException as e:  # noqa: BLE001
        first = _first_error(e, (AOFLoadError, OSError))
        if first is None:
            raise
        remove_pidfile()
        if isinstance(first, AOFLoadError):
            for line in str(first).split("\n"):
                log.warning("%s", line)
            sys.stderr.write("%s\n" % first)
        else:
            port, kind = getattr(first, "listen_port", (cfg.get("port"), "TCP"))
            msg = "Failed listening on port %s (%s), aborting." % (port, kind)
            log.warning("%s", msg)
            sys.stderr.write(msg + "\n")
        return 1
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    log.warning("Redis is now ready to exit, bye bye...")
    return node.exit_code


def _install_signal_handlers(node) -> dict:
    """SIGTERM and SIGINT as Redis's sigShutdownHandler: the handler only
    logs and sets the flag the node's cron acts on (frtrio/core/shutdown.py),
    so DEBUG PAUSE-CRON holds the shutdown and SHUTDOWN ABORT can cancel it.
    A second SIGINT while one is pending exits at once with code 1 (a save
    under way leaves no temp file behind). Python runs the handler in the
    main thread between two bytecodes, so it also comes through during a
    synchronous save. Returns the handlers it replaced."""
    import trio

    from frtrio.core import shutdown as _sd
    from frtrio.runtime.persistence import dump_path

    def handler(signum, frame):
        name = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}.get(signum, "")
        action, msg = _sd.signal_received(node.server, name)
        log.warning("%s", msg)
        if node.trio_token is not None:  # (an idle node's cron may sleep past its next tick)
            try:
                node.trio_token.run_sync_soon(node.cron_poke)
            except trio.RunFinishedError:
                pass
        if action == "exit":
            _remove("%s.tmp-%d" % (dump_path(node.config), os.getpid()))
            os._exit(1)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def _first_error(e: BaseException, types) -> BaseException | None:
    if isinstance(e, types):
        return e
    if isinstance(e, BaseExceptionGroup):  # noqa: F821
        for sub in e.exceptions:
            f = _first_error(sub, types)
            if f is not None:
                return f
    return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("frtrio")
    except Exception:  # pragma: no cover
        return "dev"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: frtrio server [redis-server arguments]\n"
              "       frtrio cluster up|status|down|chaos   (local cluster)\n"
              "       frtrio cluster migrate --slots 0-100 --to HOST:PORT   (atomic slot migration)\n"
              "       frtrio sim list|run|replay|explore|timeline")
        return 0
    if argv[0] == "server":
        return server_main(argv[1:])
    if argv[0] == "cluster":
        from frtrio.localcluster import cluster_main

        return cluster_main(argv[1:])
    if argv[0] == "sim":
        from frtrio.sim.cli import sim_main

        return sim_main(argv[1:])
    sys.stderr.write("frtrio: unknown command %r\n" % argv[0])
    return 2


if __name__ == "__main__":
    sys.exit(server_main())
