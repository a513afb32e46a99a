"""The redis.conf loader (pure): applies config text (file, stdin and
command-line options) to a ``Config`` the way loadServerConfigFromString
does, with Redis's FATAL CONFIG FILE ERROR reports.

Nothing here touches the disk: reading an ``include``d file, ``dir``'s chdir
and the logfile check go through a *host* object the caller passes in.
"""

from __future__ import annotations

from frtrio.config.params import BY_NAME, DEPRECATED, MULTI, VERSION, ConfigError, Param
from frtrio.config.text import to_bytes
from frtrio.config.values import Config
from frtrio.protocol.parser import split_args, string2ll


class FatalConfig(Exception):
    """A config error as redis-server reports it (the FATAL CONFIG FILE ERROR block)."""

    def __init__(self, reason: str, lineno: int | None = None, line: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.lineno = lineno
        self.line = line

    def render(self) -> str:
        s = "\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n" % VERSION
        if self.lineno is not None:
            s += "Reading the configuration file, at line %d\n>>> '%s'\n" % (self.lineno, self.line)
        return s + self.reason + "\n"


class LoadAbort(Exception):
    """Loading stopped with a log message and exit code 1 (not a FATAL block),
    e.g. an include that cannot be opened."""


class Host:
    """What the loader needs from the outside world. The real one is in
    ``cli.py``; tests pass a virtual one."""

    def read_config_file(self, path: str) -> bytes:  # raises LoadAbort
        raise NotImplementedError

    def glob(self, pattern: str) -> list[str]:
        raise NotImplementedError

    def chdir(self, path: str) -> None:  # raises OSError
        raise NotImplementedError

    def getcwd(self) -> str:
        raise NotImplementedError

    def check_logfile(self, path: str) -> None:  # raises OSError
        raise NotImplementedError

    def command_exists(self, name: str) -> bool:
        return True

    def strerror(self, e: OSError) -> str:
        import os

        return os.strerror(e.errno) if e.errno else str(e)


class Loader:
    """Applies redis.conf text to a Config the way loadServerConfigFromString does."""

    def __init__(self, cfg: Config, host: Host):
        self.cfg = cfg
        self.host = host
        self.reading_file = True
        self.save_loaded = False
        self.renamed: dict[str, str | None] = {}

    def load_text(self, text: bytes) -> None:
        cfg = self.cfg
        self.reading_file = True
        lines = text.split(b"\n")
        for i, raw in enumerate(lines):
            lineno = i + 1
            line = raw.strip(b" \t\r\n")
            if not line or line[:1] == b"#":
                continue
            shown = line.decode("utf-8", "surrogateescape")
            words = split_args(line)
            if words is None:
                raise FatalConfig("Unbalanced quotes in configuration line", lineno, shown)
            if not words:
                continue
            name = words[0].decode("latin-1").lower()
            args = [w.decode("utf-8", "surrogateescape") for w in words[1:]]
            argc = len(words)
            try:
                self._directive(name, args, argc)
            except ConfigError as e:
                raise FatalConfig(e.message, lineno, shown) from None
        # checks made after each file, as Redis does
        logfile = cfg.values["logfile"]
        if logfile:
            try:
                self.host.check_logfile(logfile)
            except OSError as e:
                raise FatalConfig("Can't open the log file: %s" % self.host.strerror(e)) from None
        if cfg.values["cluster-enabled"] == "yes" and cfg.values["replicaof"]:
            raise FatalConfig("replicaof directive not allowed in cluster mode")
        self.reading_file = False

    def _directive(self, name: str, args: list[str], argc: int) -> None:
        cfg = self.cfg
        p = BY_NAME.get(name)
        if p is not None:
            if not (p.flags & MULTI) and argc != 2:
                raise ConfigError("wrong number of arguments")
            if p.flags & MULTI and argc == 2 and args[0] != "":
                sub = split_args(to_bytes(args[0]))
                args = [w.decode("utf-8", "surrogateescape") for w in (sub or [])]
            self._set(p, args)
            return
        if name in DEPRECATED and argc == 2:
            return
        if name == "include" and argc == 2:
            self._include(args[0])
            return
        if name == "rename-command" and argc == 3:
            self._rename(args[0], args[1])
            return
        if name == "user" and argc >= 2:
            cfg.users.append(args)
            return
        if name == "loadmodule" and argc >= 2:
            cfg.modules.append(args)
            return
        if "." in name:
            if argc != 2:
                raise ConfigError("Module config specified without value")
            cfg.module_configs[name] = args[0]
            return
        if name == "sentinel":
            if argc != 1:
                raise ConfigError("sentinel directive while not in sentinel mode")
            return
        raise ConfigError("Bad directive or wrong number of arguments")

    def _set(self, p: Param, args: list[str]) -> None:
        cfg = self.cfg
        if p.name == "dir":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            try:
                self.host.chdir(args[0])
            except OSError as e:
                raise ConfigError(self.host.strerror(e)) from None
            cfg.values["dir"] = self.host.getcwd()
            return
        v = cfg.validate(p.name, args, loading=True)
        if p.name == "save":
            empty = not args or (len(args) == 1 and args[0] == "")
            if self.reading_file and not self.save_loaded:
                self.save_loaded = True
                cfg.values["save"] = ""
            if empty or not self.reading_file:
                cfg.values["save"] = ""
            if v:
                cfg.values["save"] = (cfg.values["save"] + " " + v).strip()
            return
        if p.name == "hz":
            raw = args[0]
            n = string2ll(to_bytes(raw))
            cfg.hz_clamped = n is not None and not 1 <= n <= 500
        cfg.values[p.name] = v

    def _include(self, path: str) -> None:
        self.depth = getattr(self, "depth", 0) + 1
        if self.depth > 64:
            raise LoadAbort("Fatal error: include nesting too deep at '%s'" % path)
        if any(ch in path for ch in "*?["):
            paths = self.host.glob(path)
        else:
            paths = [path]
        data = b"".join(self.host.read_config_file(f) for f in paths)
        try:
            self.load_text(data)
        finally:
            self.depth -= 1

    def _rename(self, old: str, new: str) -> None:
        lo = old.lower()
        current = dict(self.renamed)
        # a name exists if it is an original command not renamed away, or a new name
        exists = (self.host.command_exists(lo) and lo not in current) or lo in current.values()
        if not exists:
            raise ConfigError("No such command in rename-command")
        orig = lo
        for o, n in current.items():
            if n == lo:
                orig = o
        if new:
            ln = new.lower()
            taken = (self.host.command_exists(ln) and ln not in current) or ln in current.values()
            if taken:
                raise ConfigError("Target command name already exists")
            self.renamed[orig] = ln
        else:
            self.renamed[orig] = None
        self.cfg.renames.append((old, new))


def load_config_text(cfg: Config, text: bytes, host: Host) -> Loader:
    """Apply config text (file + stdin + command-line options) to cfg.
    Raises FatalConfig or LoadAbort."""
    loader = Loader(cfg, host)
    loader.load_text(text)
    return loader
