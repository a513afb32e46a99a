"""Current configuration values and their validation (pure): the
``Config`` store (values kept as strings, rendered the way CONFIG GET shows
them: ``1gb`` is kept as ``1073741824``, ``relative`` as ``yes``...), the
checks CONFIG SET and the config file share, and CONFIG GET's matching.

The facts (types, bounds, error strings) were taken from redis-server
7.0.15's behaviour; ``tests/test_config.py`` checks them against the real
binary."""

from __future__ import annotations

from frtrio.core.cnum import c_int, memtoull, string2d, strtoll
from frtrio.config.params import (
    BY_NAME, DEFAULTS, HIDDEN, LLONG_MAX, MEM, OCTAL, PARAMS, PERCENT, _UNSIGNED,
    ConfigError, Param, _render_num, canonical,
)
from frtrio.config.text import to_bytes
from frtrio.protocol.parser import string2ll
from frtrio.store.glob import match

_CSPACE = " \t\n\v\f\r"


def _trim_double(s: str) -> str:
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


# --- keyspace events flags ------------------------------------------------------------

_KS_CLASSES = "g$lshzxetd"  # the classes 'A' stands for, in rendering order


def keyspace_events_normalize(v: str) -> str | None:
    """Render a notify-keyspace-events value as CONFIG GET shows it; None if bad."""
    flags = set()
    for ch in v:
        if ch == "A":
            flags.update(_KS_CLASSES)
        elif ch in _KS_CLASSES or ch in "KEmn":
            flags.add(ch)
        else:
            return None
    if all(c in flags for c in _KS_CLASSES):
        out = "A"  # (Redis then drops 'n', which 'A' does not cover)
    else:
        out = "".join(c for c in _KS_CLASSES + "n" if c in flags)
    for c in "KEm":
        if c in flags:
            out += c
    return out


def _stringmatch_nocase(pattern: str, s: str) -> bool:
    return match(to_bytes(pattern), to_bytes(s), nocase=True)


class Config:
    """Current values of every parameter, as strings (Redis's rendering)."""

    def __init__(self):
        self.values: dict[str, str] = {p.name: DEFAULTS[p.name] for p in PARAMS}
        self.listeners: list = []  # callables (name, value) run after a change
        # notify-keyspace-events held 'n': CONFIG GET renders all classes as
        # 'A' and drops the 'n', but the event class stays on (Redis keeps
        # the flag bits, not the string)
        self.keyspace_events_new = False
        self.config_file: str | None = None
        # DEBUG QUICKLIST-PACKED-THRESHOLD (not a parameter: Redis keeps it
        # in quicklist.c): list elements of at least this many bytes get a
        # quicklist node of their own (a "plain" node) in RDB payloads,
        # MEMORY USAGE and DEBUG OBJECT
        self.ql_packed_threshold = 1 << 30
        # DEBUG SET-SKIP-CHECKSUM-VALIDATION: RESTORE, FUNCTION RESTORE and
        # RDB loading accept a payload whatever its CRC64 says
        self.skip_checksum_validation = False
        # what the config file said beyond parameters
        self.renames: list[tuple[str, str]] = []  # rename-command
        self.users: list[list[str]] = []  # user directives (argv after "user")
        self.modules: list[list[str]] = []  # loadmodule directives
        self.module_configs: dict[str, str] = {}
        self.sentinel_lines: list[str] = []
        self.hz_clamped = False
        # get_int's parse of each value, keyed by name: (the string parsed,
        # its number); a value replaced by any path is a new string, so a
        # stale entry never matches
        self._ints: dict[str, tuple[str, int]] = {}

    # --- access -------------------------------------------------------------------

    def get(self, name: str) -> str:
        return self.values[canonical(name)]

    def get_int(self, name: str) -> int:
        v = self.values[canonical(name)]
        hit = self._ints.get(name)
        if hit is not None and hit[0] is v:
            return hit[1]
        n = self._parse_int(name, v)
        self._ints[name] = (v, n)
        return n

    @staticmethod
    def _parse_int(name: str, v: str) -> int:
        p = BY_NAME.get(canonical(name))
        if p is not None and p.nflags & OCTAL:
            return int(v, 8)
        if v.endswith("%"):
            return -int(v[:-1])
        m = memtoull(to_bytes(v))
        if m is not None:
            return m
        return int(v)

    def get_bool(self, name: str) -> bool:
        return self.values[canonical(name)] == "yes"

    def known(self, name: str) -> bool:
        return name.lower() in BY_NAME

    def param(self, name: str) -> Param | None:
        return BY_NAME.get(name.lower())

    def save_params(self) -> list[tuple[int, int]]:
        w = self.values["save"].split()
        return [(int(w[i]), int(w[i + 1])) for i in range(0, len(w), 2)]

    def output_buffer_limits(self) -> dict:
        return self._parse_obl(self.values["client-output-buffer-limit"])

    def set(self, name: str, value: str) -> None:
        name = canonical(name.lower())
        self.values[name] = value
        for fn in self.listeners:
            fn(name, value)

    def matching(self, pattern: str) -> list[tuple[str, str]]:
        """(name, value) pairs CONFIG GET answers for one argument: an exact
        name (any case, hidden ones too) answers under the name as given; a
        glob pattern matches every visible name and alias, case-insensitively."""
        if not any(ch in pattern for ch in "*?["):
            p = BY_NAME.get(pattern.lower())
            if p is None:
                return []
            return [(pattern, self.values[p.name])]
        out = []
        for k, p in BY_NAME.items():
            if p.flags & HIDDEN:
                continue
            if _stringmatch_nocase(pattern, k):
                out.append((k, self.values[p.name]))
        return out

    # --- validation -------------------------------------------------------------------

    def validate(self, name: str, args: list[str], loading: bool = False) -> str:
        """Check a value and return its stored rendering; ConfigError if bad.

        ``args`` are the words after the name. ``loading`` selects the
        config-file rules where they differ from CONFIG SET (``save``
        appends to what earlier lines said)."""
        lname = name.lower()
        p = BY_NAME.get(lname)
        if p is None:
            raise ConfigError("Bad directive or wrong number of arguments", name)
        try:
            if p.kind == "special":
                return self._validate_special(p, args, loading)
            if p.kind == "flags":
                return self._validate_flags(p, args)
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            return self._validate_one(p, args[0])
        except ConfigError as e:
            e.name = name
            raise

    def _validate_one(self, p: Param, v: str) -> str:
        if p.kind == "bool":
            lv = v.lower()
            if lv not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            if p.check:
                p.check(lv == "yes")
            return lv
        if p.kind == "enum":
            lv = v.lower()
            for en, ev in p.enum:
                if en == lv:
                    # shown under the first name with that value
                    return next(n for n, x in p.enum if x == ev)
            raise ConfigError(
                "argument(s) must be one of the following: " + ", ".join(n for n, _ in p.enum)
            )
        if p.kind == "string":
            if p.check:
                p.check(v)
            return v
        if p.kind == "num":
            n = self._parse_num(p, v)
            self._bound_check(p, n)
            if p.name == "hz":
                n = max(1, min(500, n))
            return _render_num(p, n)
        raise ConfigError("unknown parameter type")  # pragma: no cover

    @staticmethod
    def _validate_flags(p: Param, args: list[str]) -> str:
        bad = ConfigError(
            "argument(s) must be one of the following: " + ", ".join(n for n, _ in p.enum)
        )
        if not args:
            raise bad
        names = dict(p.enum)
        bits = 0
        for a in args:
            b = names.get(a.lower())
            if b is None:
                raise bad
            bits |= b
        if p.name.startswith("shutdown-on-") and bits & 1 and bits & 2:
            raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
        if not bits:
            return p.enum[0][0]
        return " ".join(n for n, b in p.enum if b and bits & b)

    @staticmethod
    def _parse_num(p: Param, v: str) -> int:
        nf = p.nflags
        if nf & MEM:
            n = memtoull(to_bytes(v))
            if n is not None:
                if p.ctype not in _UNSIGNED and n > LLONG_MAX:
                    n -= 2**64
                return n
        if nf & PERCENT and len(v) > 1 and v.endswith("%"):
            n = string2ll(to_bytes(v[:-1]))
            if n is not None and n >= 0:
                return -n
        if nf & OCTAL:
            n, rest, over = strtoll(to_bytes(v), 8)
            if not over and rest == b"" or (v.strip(_CSPACE) == "" and not over):
                return n
        if not nf:
            n = string2ll(to_bytes(v))
            if n is not None:
                return n
        if nf & MEM and nf & PERCENT:
            raise ConfigError("argument must be a memory or percent value")
        if nf & MEM:
            raise ConfigError("argument must be a memory value")
        if nf & OCTAL:
            raise ConfigError("argument couldn't be parsed as an octal number")
        raise ConfigError("argument couldn't be parsed into an integer")

    @staticmethod
    def _bound_check(p: Param, n: int) -> None:
        if p.ctype in _UNSIGNED:
            u = n % 2**64
            if not p.lo <= u <= p.hi:
                if p.nflags & OCTAL:
                    raise ConfigError("argument must be between %o and %o inclusive" % (p.lo, p.hi))
                raise ConfigError("argument must be between %d and %d inclusive" % (p.lo, p.hi))
            return
        if p.nflags & PERCENT and n < 0:
            if n < p.lo:
                raise ConfigError("percentage argument must be less or equal to %d" % -p.lo)
            return
        if not p.lo <= n <= p.hi:
            raise ConfigError("argument must be between %d and %d inclusive" % (p.lo, p.hi))

    def _validate_special(self, p: Param, args: list[str], loading: bool) -> str:
        name = p.name
        if name == "dir":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            return args[0]
        if name == "save":
            if len(args) == 1 and args[0] == "":
                args = []
            if len(args) % 2:
                raise ConfigError("Invalid save parameters")
            pairs = []
            for j, a in enumerate(args):
                v, rest, _over = strtoll(to_bytes(a))
                if rest != b"" or (j % 2 == 0 and v < 1) or (j % 2 == 1 and v < 0):
                    raise ConfigError("Invalid save parameters")
                pairs.append(v if j % 2 == 0 else c_int(v))
            return " ".join("%d" % x for x in pairs)
        if name == "client-output-buffer-limit":
            if len(args) % 4:
                raise ConfigError("Wrong number of arguments in buffer limit configuration.")
            cur = self._parse_obl(self.values["client-output-buffer-limit"])
            new = {}
            for i in range(0, len(args), 4):
                cls = args[i].lower()
                if cls == "slave":
                    cls = "replica"
                if cls not in ("normal", "replica", "pubsub"):
                    raise ConfigError("Invalid client class specified in buffer limit configuration.")
                hard = memtoull(to_bytes(args[i + 1]))
                soft = memtoull(to_bytes(args[i + 2]))
                secs, rest, _o = strtoll(to_bytes(args[i + 3]))
                if hard is None or soft is None or secs < 0 or rest != b"":
                    raise ConfigError(
                        "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    )
                new[cls] = (hard, soft, c_int(secs))
            cur.update(new)
            return self._render_obl(cur)
        if name == "oom-score-adj-values":
            if len(args) != 3:
                raise ConfigError("wrong number of arguments")
            vals = []
            for a in args:
                v, rest, _o = strtoll(to_bytes(a))
                if rest != b"" or v < -2000 or v > 2000:
                    raise ConfigError(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                    )
                vals.append(v)
            return " ".join("%d" % v for v in vals)
        if name == "notify-keyspace-events":
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            v = keyspace_events_normalize(args[0])
            if v is None:
                raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
            self.keyspace_events_new = "n" in args[0]
            return v
        if name == "bind":
            if len(args) > 16:
                raise ConfigError("Too many bind addresses specified.")
            if len(args) == 1 and args[0] == "":
                args = []
            return " ".join(args)
        if name == "replicaof":
            if len(args) != 2:
                raise ConfigError("wrong number of arguments")
            if args[0].lower() == "no" and args[1].lower() == "one":
                return ""
            port, rest, over = strtoll(to_bytes(args[1]))
            if port < 0 or port > 65535 or rest != b"" or over:
                raise ConfigError("Invalid master port")
            return "%s %d" % (args[0], port)
        if name == "latency-tracking-info-percentiles":
            if len(args) == 1 and args[0] == "":
                args = []
            out = []
            for a in args:
                d = string2d(to_bytes(a)) if len(a) <= 5120 else None
                if d is None:
                    raise ConfigError("Invalid latency-tracking-info-percentiles parameters")
                if d > 100.0 or d < 0.0:
                    raise ConfigError(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    )
                out.append(_trim_double("%f" % d))
            return " ".join(out)
        raise ConfigError("wrong number of arguments")  # pragma: no cover

    @staticmethod
    def _parse_obl(v: str) -> dict:
        w = v.split()
        out = {}
        for i in range(0, len(w), 4):
            cls = "replica" if w[i] == "slave" else w[i]
            out[cls] = (int(w[i + 1]), int(w[i + 2]), int(w[i + 3]))
        return out

    @staticmethod
    def _render_obl(d: dict) -> str:
        parts = []
        for cls, shown in (("normal", "normal"), ("replica", "slave"), ("pubsub", "pubsub")):
            h, s, t = d[cls]
            parts.append("%s %d %d %d" % (shown, h, s, t))
        return " ".join(parts)
