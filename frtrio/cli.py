"""Command lines.

``frtrio-server [config-file] [--option value ...]`` takes redis-server's
command line and redis.conf files. ``frtrio`` is the tool for the rest
(``frtrio cluster ...``, ``frtrio sim ...`` as those land).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from frtrio.config import (
    DEFAULTS,
    SPECIAL,
    VERSION,
    Config,
    ConfigError,
    canonical,
    parse_config_text,
)
from frtrio.protocol.parser import split_args

USAGE = """Usage: ./frtrio-server [/path/to/redis.conf] [options] [-]
       ./frtrio-server - (read config from stdin)
       ./frtrio-server -v or --version
       ./frtrio-server -h or --help

Examples:
       ./frtrio-server (run the server with default config)
       ./frtrio-server /etc/redis/6379.conf
       ./frtrio-server --port 7777
       ./frtrio-server --port 7777 --replicaof 127.0.0.1 8888
       ./frtrio-server /etc/myredis.conf --loglevel verbose -
       ./frtrio-server /etc/myredis.conf --loglevel verbose
"""

# directives frtrio accepts in a config file but that are not parameters
_IGNORED_DIRECTIVES = frozenset(["include", "rename-command", "user", "loadmodule", "sentinel"])


class FatalConfig(Exception):
    def __init__(self, lineno: int, line: str, reason: str):
        super().__init__(reason)
        self.lineno = lineno
        self.line = line
        self.reason = reason

    def render(self) -> str:
        return (
            "\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n"
            "Reading the configuration file, at line %d\n"
            ">>> '%s'\n%s\n" % (VERSION, self.lineno, self.line, self.reason)
        )


def _repr_arg(a: str) -> str:
    out = ['"']
    for ch in a:
        o = ord(ch)
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 32 or o > 126:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def build_config_text(argv: list[str]) -> tuple[str | None, str]:
    """(config file path, config text) from redis-server style arguments."""
    path = None
    text = ""
    i = 0
    if argv and not argv[0].startswith("--") and argv[0] != "-":
        path = argv[0]
        i = 1
    options = ""
    read_stdin = False
    while i < len(argv):
        a = argv[i]
        if a == "-":
            read_stdin = True
            i += 1
            continue
        if a.startswith("--"):
            name = a[2:]
            options += "\n" + name
            i += 1
            first = True
            while i < len(argv) and not argv[i].startswith("--"):
                if argv[i] == "-" and i == len(argv) - 1:
                    break
                options += " " + _repr_arg(argv[i])
                first = False
                i += 1
            if first and name in ("save",):
                options += ' ""'
        else:
            options += " " + _repr_arg(a)
            i += 1
    if path is not None:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    if read_stdin:
        text += "\n" + sys.stdin.read()
    return path, text + options


def apply_config_text(cfg: Config, text: str) -> None:
    """Apply redis.conf text to cfg; FatalConfig on the first bad line."""
    lines = text.split("\n")
    for lineno, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        words = split_args(s.encode("utf-8", "surrogateescape"))
        if words is None:
            raise FatalConfig(lineno, s, "Unbalanced quotes in configuration line")
        if not words:
            continue
        name = words[0].decode().lower()
        args = [w.decode("utf-8", "surrogateescape") for w in words[1:]]
        if name in _IGNORED_DIRECTIVES:
            continue
        if name not in DEFAULTS:
            raise FatalConfig(lineno, s, "Bad directive or wrong number of arguments")
        if name == "save" and len(args) == 1 and args[0] == "":
            cfg.values["save"] = ""
            continue
        if name not in SPECIAL and len(args) != 1:
            raise FatalConfig(lineno, s, "Bad directive or wrong number of arguments")
        try:
            if name == "save" and cfg._save_from_file is False:
                cfg._save_from_file = True
                cfg.values["save"] = ""
            v = cfg.validate(name, args)
            if name == "save" and cfg.values["save"]:
                v = cfg.values["save"] + " " + v
            cfg.values[canonical(name)] = v
        except ConfigError as e:
            raise FatalConfig(lineno, s, e.message) from None


def load_config(argv: list[str]) -> Config:
    path, text = build_config_text(argv)
    cfg = Config()
    cfg._save_from_file = False
    apply_config_text(cfg, text)
    if path is not None:
        cfg.config_file = os.path.abspath(path)
    return cfg


def _setup_logging(cfg: Config) -> None:
    level = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
             "warning": logging.WARNING}[cfg.get("loglevel")]
    pid = os.getpid()
    fmt = "%d:M %%(asctime)s.%%(msecs)03d * %%(message)s" % pid
    handler: logging.Handler
    if cfg.get("logfile"):
        handler = logging.FileHandler(cfg.get("logfile"))
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%d %b %Y %H:%M:%S"))
    root = logging.getLogger("frtrio")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def server_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-v", "--version"):
        print("Redis server v=%s sha=00000000:0 malloc=libc bits=64 build=frtrio" % VERSION)
        return 0
    if argv and argv[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 1
    try:
        cfg = load_config(argv)
    except FatalConfig as e:
        sys.stderr.write(e.render())
        return 1
    except OSError as e:
        sys.stderr.write("Fatal error, can't open config file '%s': %s\n" % (argv[0], e.strerror))
        return 1
    if cfg.get("daemonize") == "yes":
        sys.stderr.write("frtrio-server: daemonize yes is not supported; run it under a supervisor\n")
        return 1
    _setup_logging(cfg)
    if cfg.get("dir"):
        try:
            os.chdir(cfg.get("dir"))
        except OSError as e:
            sys.stderr.write("Can't chdir to '%s': %s\n" % (cfg.get("dir"), e.strerror))
            return 1
    cfg.values["dir"] = os.getcwd()
    return run_server(cfg)


def run_server(cfg: Config) -> int:
    import trio

    from frtrio.cluster.core import StartupError
    from frtrio.persist.aof import AOFLoadError
    from frtrio.runtime.cluster_files import ClusterConfigError

    fatal_types = (AOFLoadError, StartupError, ClusterConfigError)
    from frtrio.runtime.env import RealEnv
    from frtrio.runtime.node import Node

    log = logging.getLogger("frtrio")
    env = RealEnv()
    node = Node(cfg, env)
    pidfile = cfg.get("pidfile")
    if pidfile:
        with open(pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
        node.on_shutdown.append(lambda: _remove(pidfile))

    async def main():
        async with trio.open_nursery() as n:

            async def signals():
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as it:
                    async for sig in it:
                        log.info("Received %s scheduling shutdown...",
                                 "SIGTERM" if sig == signal.SIGTERM else "SIGINT")
                        node.request_shutdown("default")
                        return

            n.start_soon(signals)
            try:
                await node.run()
            finally:
                n.cancel_scope.cancel()

    log.info("frtrio %s (Redis %s compatible) starting, pid=%d", _version(), VERSION, os.getpid())
    try:
        trio.run(main)
    except fatal_types as e:
        log.warning("%s", e)
        sys.stderr.write("%s\n" % e)
        return 1
    except OSError as e:
        msg = "Failed listening on port %s (tcp), aborting: %s" % (cfg.get("port"), e.strerror or e)
        log.warning("%s", msg)
        sys.stderr.write(msg + "\n")
        return 1
    except BaseExceptionGroup as eg:  # noqa: F821
        load = eg.subgroup(lambda e: isinstance(e, fatal_types + (OSError,)))
        if load is not None:
            first = load.exceptions[0]
            while isinstance(first, BaseExceptionGroup):  # noqa: F821
                first = first.exceptions[0]
            sys.stderr.write("%s\n" % first)
            return 1
        raise
    log.info("frtrio is now ready to exit, bye bye...")
    return node.exit_code


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
              "       frtrio cluster up|status|down   (local cluster)\n"
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
