"""The process title, as Redis sets it: ``proc-title-template`` expanded
(``{title}`` the name the server was started under, ``{listen-addr}``
the first bind address and the port, ``{server-mode}`` ``[cluster]`` in
cluster mode, ``{port}``, ``{tls-port}``, ``{unixsocket}``,
``{config-file}``), so ``ps`` shows ``frtrio-server *:6379 [cluster]``
rather than a Python command line. Set at start and by CONFIG SET
proc-title-template, while ``set-proc-title`` is yes. A shell service
(it rewrites the process's argument area, through ``setproctitle``).

``{title}`` is the program's path as run (argv[0]); a wrapper that runs
frtrio-server under another name can pass its own in FRTRIO_ARGV0."""

from __future__ import annotations

import os
import sys

try:
    import setproctitle as _spt
except ImportError:  # pragma: no cover - a dependency; the title stays as is
    _spt = None


def argv0() -> str:
    name = os.environ.get("FRTRIO_ARGV0")
    if name:
        return name
    a = sys.argv[0] if sys.argv else ""
    if not a or a.endswith(("cli.py", "__main__.py")):
        return "frtrio-server"  # (python -m frtrio.cli)
    return a


def expand(template: str, cfg) -> str:
    """Redis's expandProcTitleTemplate, the result trimmed of spaces."""
    port = int(cfg.get("port") or 0)
    binds = (cfg.get("bind") or "").split()
    if port:
        first = binds[0].lstrip("-") if binds else "*"
        listen = "%s:%d" % (first, port)
    else:
        listen = "unixsocket:%s" % (cfg.get("unixsocket") or "")
    values = {
        "title": argv0(),
        "listen-addr": listen,
        "server-mode": "[cluster]" if cfg.get("cluster-enabled") == "yes" else "",
        "port": str(port),
        "tls-port": "0",
        "unixsocket": cfg.get("unixsocket") or "",
        "config-file": os.path.abspath(cfg.config_file) if cfg.config_file else "",
    }
    out = []
    i = 0
    while i < len(template):
        ch = template[i]
        j = template.find("}", i) if ch == "{" else -1
        if j > 0 and template[i + 1:j] in values:
            out.append(values[template[i + 1:j]])
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out).strip(" ")


def apply(node, _value=None) -> None:
    cfg = node.config
    if _spt is None or cfg.get("set-proc-title") != "yes":
        return
    _spt.setproctitle(expand(cfg.get("proc-title-template"), cfg))


def install(node) -> None:
    node.config_appliers["proc-title-template"] = lambda value: apply(node)
    apply(node)
