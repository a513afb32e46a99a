#!/usr/bin/env python3
"""In-process cost of the ACL check per command (no sockets): GET and SET
through ``Server.execute`` as the default user (all permissions: one
attribute test) and as restricted users (command bit, key patterns,
selectors). Prints microseconds per call (best of --rounds) and writes
artifacts/bench-acl.txt.

    PYTHONPATH=. python3 scripts/bench_acl.py [-n 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import time

import frtrio.commands  # noqa: F401
from frtrio.config import Config
from frtrio.core.engine import Server

USERS = [
    ("default (allow_all)", None),
    ("+@all ~k* (keys checked)", [b"+@all", b"~k*"]),
    ("+get +set %R~k* %W~k*", [b"+get", b"+set", b"%R~k*", b"%W~k*"]),
    ("-@all (~x* +get) (~k* +@all)", [b"-@all", b"(~x* +get)", b"(~k* +@all)"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="artifacts/bench-acl.txt")
    a = ap.parse_args()
    srv = Server(Config(), random.Random(1))
    rows = []
    for label, rules in USERS:
        c = srv.new_client("bench", "")
        if rules is not None:
            u = srv.acl.build_user(None, [b"on", b"nopass"] + rules)
            u.name = b"bench"
            srv.set_client_user(c, u)
        res = []
        for argv in ([b"GET", b"k1"], [b"SET", b"k1", b"v"]):
            best = 1e9
            for _ in range(a.rounds):
                t = time.perf_counter()
                for _ in range(a.n):
                    srv.execute(c, argv)
                    c.out.clear()
                    c.out_bytes = 0
                best = min(best, time.perf_counter() - t)
            res.append(best / a.n * 1e6)
        rows.append((label, *res))
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        git = "?"
    lines = ["# scripts/bench_acl.py -n %d --rounds %d  git %s  %s" % (
        a.n, a.rounds, git, time.strftime("%Y-%m-%dT%H:%M:%S")),
        "# us per Server.execute (best of rounds); the machine is shared: compare rows of one run",
        "%-32s %8s %8s" % ("user", "GET us", "SET us")]
    lines += ["%-32s %8.2f %8.2f" % r for r in rows]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
