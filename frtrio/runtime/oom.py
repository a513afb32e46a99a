"""oom-score-adj: the process's Linux OOM-killer score follows the node's
role, as Redis's setOOMScoreAdj does.

``oom-score-adj`` is ``no`` (leave the score alone), ``yes``/``relative``
(add the class's value to the score the process had before frtrio first
changed it) or ``absolute``; ``oom-score-adj-values`` holds the values of the
classes master, replica and background child (frtrio has no children). The
score is written to /proc/self/oom_score_adj at start, when either parameter
changes (CONFIG SET fails with Redis's error when the write fails) and when
the node's role changes (REPLICAOF, a failover; the cron checks once a
second too). Turning it off
puts back the score the process had. A shell service: it writes a file."""

from __future__ import annotations

import logging

from frtrio.config import ConfigError

log = logging.getLogger("frtrio")

PATH = "/proc/self/oom_score_adj"


class OomScore:
    def __init__(self, node, path: str = PATH):
        self.node = node
        self.path = path
        self.base: int | None = None  # the score before frtrio changed it
        self.applied_class = -1

    def _class(self) -> int:
        return 1 if self.node.server.repl.masterhost is not None else 0

    def apply(self, _value=None) -> None:
        """Write the score for the current settings and role (Redis's
        setOOMScoreAdj(-1)); ConfigError when the file cannot be read or
        written."""
        cfg = self.node.config
        mode = cfg.get("oom-score-adj")
        cls = self._class()
        if mode != "no":
            if self.base is None:
                try:
                    with open(self.path) as f:
                        self.base = int(f.read().strip() or 0)
                except (OSError, ValueError) as e:
                    log.warning("Unable to read oom_score_adj: %s", getattr(e, "strerror", e))
                    raise ConfigError("Failed to set current oom_score_adj. Check server logs.",
                                      "oom-score-adj") from None
            vals = [int(x) for x in cfg.get("oom-score-adj-values").split()]
            val = vals[cls] + (self.base if mode in ("yes", "relative") else 0)
            val = max(-1000, min(1000, val))
        elif self.base is not None:
            val, self.base = self.base, None
        else:
            self.applied_class = cls
            return
        try:
            with open(self.path, "w") as f:
                f.write("%d\n" % val)
        except OSError as e:
            log.warning("Unable to write oom_score_adj: %s", e.strerror)
            raise ConfigError("Failed to set current oom_score_adj. Check server logs.",
                              "oom-score-adj") from None
        self.applied_class = cls

    def on_cron(self) -> None:
        """The role changed since the score was written: write it again."""
        if self.base is not None and self._class() != self.applied_class:
            try:
                self.apply()
            except ConfigError:
                pass


def install(node) -> OomScore:
    """Apply at start, on CONFIG SET of either parameter, on role changes."""
    oom = OomScore(node)
    node.config_appliers["oom-score-adj"] = oom.apply
    node.config_appliers["oom-score-adj-values"] = oom.apply
    node.on_role_change.append(oom.on_cron)
    node.cron_hooks.append(oom.on_cron)
    try:
        oom.apply()
    except ConfigError:
        pass
    return oom
