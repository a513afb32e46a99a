"""The rules of docs/architecture.md that a machine can check.

* Cores (everything under frtrio/ but the shells: runtime/, sim/, cli.py,
  localcluster.py) import no trio, socket, time, random, asyncio, threading
  or select, not even inside a function: time, randomness, network and disk
  come from the Env, through the shells.
* Commands never await: no command module defines a coroutine.
* Cores hand work to the shells as typed effects: no core module assigns a
  callable onto the server or the cluster core for a shell to call back.
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "frtrio")
SHELLS = ("runtime/", "sim/", "cli.py", "localcluster.py")
FORBIDDEN = {"trio", "trio_util", "socket", "time", "random", "asyncio", "threading", "select"}
# The one exception, and why: a Lua script must be suspendable from Lua's
# count hook (BUSY, SCRIPT KILL), which stock Lua 5.1 cannot do by yielding;
# the script runs on a worker thread handed control strictly in turns with
# the caller (a coroutine made of a thread and two locks), so nothing ever
# runs concurrently with the engine and runs stay deterministic.
ALLOWED = {("scripting/runner.py", "threading")}


def _modules():
    for dirpath, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def _cores():
    return [(rel, path) for rel, path in _modules() if not rel.startswith(SHELLS)]


def _tree(path):
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def test_cores_import_no_io_clock_or_randomness():
    bad = []
    for rel, path in _cores():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                if n.split(".")[0] in FORBIDDEN and (rel, n) not in ALLOWED:
                    bad.append("%s:%d imports %s" % (rel, node.lineno, n))
    assert not bad, "cores must take time/randomness/network from the Env:\n" + "\n".join(bad)


def test_commands_never_await():
    bad = []
    for rel, path in _cores():
        if not rel.startswith("commands/"):
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.AsyncFunctionDef, ast.Await)):
                bad.append("%s:%d" % (rel, node.lineno))
    assert not bad, "a command runs synchronously:\n" + "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path):
    """The checks above are not vacuous: they find a core module that
    imports time, and every layer they scan exists."""
    rels = {rel for rel, _ in _cores()}
    for must in ("core/engine.py", "core/client.py", "commands/strings.py", "cluster/gossip.py",
                 "persist/aof.py", "store/db.py", "core/beforesleep.py"):
        assert must in rels
    assert not any(r.startswith(SHELLS) for r in rels)
    p = tmp_path / "m.py"
    p.write_text("def f():\n    import time\n    return time.time()\n")
    found = [n for n in ast.walk(_tree(str(p))) if isinstance(n, ast.Import)]
    assert found and found[0].names[0].name == "time"
