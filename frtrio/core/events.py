"""The structured event log: one JSON object per line, one schema.

Every record has these fields, in this order (DESIGN.md §7):

=====================  ==========================================================
``ts_utc``             ISO-8601 UTC time with microseconds; virtual in the simulator
``node``               node name ("" for the simulator itself)
``suite_id``           ``frtrio-server`` for a real server, ``frtrio-sim`` in the simulator
``test_or_scenario_id`` scenario (or test) name; "" for a real server
``packet_id``          ``FR-P2C-007``
``mode``               ``strict`` or ``hardened``
``seed``               the run's seed (null when there is none)
``input_digest``       sha256 prefix (16 hex) of the input that led to the decision
``output_digest``      sha256 prefix of what came out of it
``duration_ms``        how long it took (virtual ms in the simulator)
``outcome``            ``ok``, ``error``, ``rejected``, ``violation``, ...
``reason_code``        a ``cluster.*`` (contract row) or ``sim.*`` code, or ""
``replay_cmd``         the command that replays the run ("" for a real server)
``artifact_refs``      list of paths or ids of related artifacts
``event``              what happened (``node.ready``, ``client.op``, ``fault.kill``...)
``detail``             an object with the event's own fields
=====================  ==========================================================

Records are serialised with a fixed field order, compact separators and
ASCII-only escapes, so a run's log is a byte-exact fingerprint of it.

A real server writes the log only when ``frtrio-event-log FILE`` is set; when
it is not, the node holds ``None`` instead of a log and every emission site is
one ``is not None`` test.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

PACKET_ID = "FR-P2C-007"

FIELDS = (
    "ts_utc",
    "node",
    "suite_id",
    "test_or_scenario_id",
    "packet_id",
    "mode",
    "seed",
    "input_digest",
    "output_digest",
    "duration_ms",
    "outcome",
    "reason_code",
    "replay_cmd",
    "artifact_refs",
    "event",
    "detail",
)

OUTCOMES = ("ok", "error", "rejected", "violation", "info", "fault", "timeout")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# keyword arguments of ``emit`` that fill schema fields (the rest is detail)
_SCHEMA_KW = ("input", "output", "input_digest", "output_digest", "duration_ms", "outcome",
              "reason_code", "artifact_refs", "mode")


_ts_second = [None, ""]  # (unix second, its "YYYY-MM-DDTHH:MM:SS" text): strftime is slow


def ts_utc(unix_us: int) -> str:
    """ISO-8601 UTC with microseconds for a unix time in microseconds."""
    sec, frac = divmod(unix_us, 1_000_000)
    if _ts_second[0] != sec:
        _ts_second[1] = (_EPOCH + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
        _ts_second[0] = sec
    return "%s.%06dZ" % (_ts_second[1], frac)


def parse_ts_utc(s: str) -> int:
    """Inverse of ``ts_utc``: unix microseconds."""
    dt = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    d = dt - _EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _resp(argv) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for a in argv:
        if isinstance(a, str):
            a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def digest(value) -> str:
    """16 hex digits of sha256 over a canonical byte form of ``value``:
    bytes as they are, str as UTF-8, a list/tuple of bytes as a RESP
    request, anything else by its ``repr`` (which must then be free of
    memory addresses)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
    elif isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, (list, tuple)) and all(isinstance(a, (bytes, str)) for a in value):
        b = _resp(value)
    else:
        b = repr(value).encode("utf-8", "backslashreplace")
    return hashlib.sha256(b).hexdigest()[:16]


def _json_default(o):
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).decode("utf-8", "backslashreplace")
    if isinstance(o, (set, frozenset)):
        # order of a set of str depends on PYTHONHASHSEED: sort it
        return sorted(_json_default(x) if isinstance(x, bytes) else x for x in o)
    return repr(o)


_dumps = json.JSONEncoder(
    ensure_ascii=True, separators=(",", ":"), default=_json_default, allow_nan=True
).encode


class EventLog:
    """Writes records through ``write(line: str)``.

    ``clock_us()`` gives the unix time in microseconds (virtual in the
    simulator). The run-wide fields are fixed at construction; ``emit`` fills
    the rest."""

    def __init__(self, write, *, clock_us, suite_id: str, test_or_scenario_id: str = "",
                 mode: str = "strict", seed=None, replay_cmd: str = "",
                 packet_id: str = PACKET_ID):
        self._write = write
        self.clock_us = clock_us
        self.suite_id = suite_id
        self.test_or_scenario_id = test_or_scenario_id
        self.mode = mode
        self.seed = seed
        self.replay_cmd = replay_cmd
        self.packet_id = packet_id
        self.count = 0
        self.closer = None

    def record(self, event: str, node: str = "", *, input=None, output=None,
               input_digest: str | None = None, output_digest: str | None = None,
               duration_ms: float = 0.0, outcome: str = "ok", reason_code: str = "",
               artifact_refs=(), mode: str | None = None, **detail) -> dict:
        """The record ``emit`` would write, as a dict (fields in order)."""
        return {
            "ts_utc": ts_utc(self.clock_us()),
            "node": node,
            "suite_id": self.suite_id,
            "test_or_scenario_id": self.test_or_scenario_id,
            "packet_id": self.packet_id,
            "mode": mode or self.mode,
            "seed": self.seed,
            "input_digest": input_digest if input_digest is not None else digest(input),
            "output_digest": output_digest if output_digest is not None else digest(output),
            "duration_ms": round(float(duration_ms), 3),
            "outcome": outcome,
            "reason_code": reason_code,
            "replay_cmd": self.replay_cmd,
            "artifact_refs": list(artifact_refs),
            "event": event,
            "detail": detail,
        }

    def emit(self, event: str, node: str = "", **kw) -> dict:
        rec = self.record(event, node, **kw)
        self._write(_dumps(rec) + "\n")
        self.count += 1
        return rec

    def emit_fields(self, node: str, event: str, fields: dict) -> dict:
        """``emit`` for callers whose detail may use any key (even ``node``):
        schema keywords are taken out of ``fields``, the rest is the detail."""
        kw = {k: fields.pop(k) for k in _SCHEMA_KW if k in fields}
        rec = self.record(event, node, **kw)
        rec["detail"] = fields
        self._write(_dumps(rec) + "\n")
        self.count += 1
        return rec

    def for_node(self, node: str, mode: str | None = None) -> "NodeEventLog":
        return NodeEventLog(self, node, mode)

    def close(self) -> None:
        if self.closer is not None:
            self.closer()
            self.closer = None


class NodeEventLog:
    """An ``EventLog`` bound to one node (and its mode)."""

    __slots__ = ("log", "node", "mode")

    def __init__(self, log: EventLog, node: str, mode: str | None = None):
        self.log = log
        self.node = node
        self.mode = mode

    def emit(self, event: str, **kw) -> dict:
        if "mode" not in kw and self.mode is not None:
            kw["mode"] = self.mode
        return self.log.emit_fields(self.node, event, kw)

    def close(self) -> None:
        self.log.close()


def open_node_event_log(config, env, node: str) -> NodeEventLog | None:
    """The event log a node writes to, or None when logging is off.

    In the simulator the Env provides the run's log (``node_event_log``).
    A real server logs when ``frtrio-event-log`` names a file; records are
    appended through the Env's fs, one unbuffered write per record."""
    mode = config.get("frtrio-mode")
    hook = getattr(env, "node_event_log", None)
    if hook is not None:
        return hook(mode)
    path = config.get("frtrio-event-log")
    if not path:
        return None
    fh = env.fs.open_append(path)
    log = EventLog(
        lambda line: fh.write(line.encode("ascii")),
        clock_us=env.unix_us,
        suite_id="frtrio-server",
        mode=mode,
        seed=getattr(env, "seed", None),
    )
    log.closer = fh.close
    return log.for_node(node, mode)


# --- reading ------------------------------------------------------------------------


def parse_line(line: str) -> dict:
    rec = json.loads(line)
    problems = validate(rec)
    if problems:
        raise ValueError("bad event record: %s" % "; ".join(problems))
    return rec


def read_events(path: str) -> list[dict]:
    with open(path, encoding="ascii") as f:
        return [parse_line(line) for line in f if line.strip()]


def validate(rec) -> list[str]:
    """Schema problems of one record (empty list: valid)."""
    out = []
    if not isinstance(rec, dict):
        return ["record is not an object"]
    keys = list(rec)
    if keys != list(FIELDS):
        missing = [f for f in FIELDS if f not in rec]
        extra = [k for k in keys if k not in FIELDS]
        if missing:
            out.append("missing fields %s" % missing)
        if extra:
            out.append("unknown fields %s" % extra)
        if not missing and not extra:
            out.append("fields out of order")
    types = {
        "ts_utc": str, "node": str, "suite_id": str, "test_or_scenario_id": str,
        "packet_id": str, "mode": str, "input_digest": str, "output_digest": str,
        "duration_ms": (int, float), "outcome": str, "reason_code": str,
        "replay_cmd": str, "artifact_refs": list, "event": str, "detail": dict,
    }
    for k, t in types.items():
        if k in rec and not isinstance(rec[k], t):
            out.append("%s has type %s" % (k, type(rec[k]).__name__))
    if "seed" in rec and rec["seed"] is not None and not isinstance(rec["seed"], int):
        out.append("seed must be an integer or null")
    if isinstance(rec.get("mode"), str) and rec["mode"] not in ("strict", "hardened"):
        out.append("mode must be strict or hardened")
    if isinstance(rec.get("ts_utc"), str):
        try:
            parse_ts_utc(rec["ts_utc"])
        except ValueError:
            out.append("ts_utc is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    rc = rec.get("reason_code")
    if isinstance(rc, str) and rc and not (rc.startswith("cluster.") or rc.startswith("sim.")):
        out.append("reason_code must be a cluster.* or sim.* name")
    return out
