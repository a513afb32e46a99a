"""``frtrio cluster up|status|down``: a local frtrio cluster on loopback.

``up`` starts N masters and, with ``--replicas R``, R replicas of each
(frtrio-server processes, one directory each under --dir, with a pidfile),
spreads the 16384 slots over the masters, gives each master its own config
epoch, introduces every node with CLUSTER MEET, makes each replica CLUSTER
REPLICATE its master and waits until every node reports
``cluster_state:ok`` and knows every replica — what ``redis-cli --cluster
create --cluster-replicas R`` does, without needing redis-cli. ``status`` shows each node's view; ``down``
stops the processes by pid; ``chaos`` kills, restarts and pauses nodes on a
seeded schedule and prints a timeline of what it did, the cluster's state
and what a probing client saw, second by second. ``migrate`` moves slots of
any running frtrio cluster with atomic slot migration (CLUSTER MIGRATION
IMPORT on the destination) and shows the task's progress until it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

STATE_FILE = "frtrio-cluster.json"


def _send(port: int, *args: str, timeout: float = 5.0) -> bytes:
    """One command to 127.0.0.1:port; returns the raw reply bytes."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    return data


def _complete(data: bytes) -> bool:
    if not data.endswith(b"\r\n"):
        return False
    if data[:1] == b"$":
        n = int(data[1:data.index(b"\r\n")])
        return n < 0 or len(data) >= data.index(b"\r\n") + 2 + n + 2
    return True


def _bulk(reply: bytes) -> str:
    if reply[:1] == b"$":
        i = reply.index(b"\r\n")
        return reply[i + 2 : i + 2 + int(reply[1:i])].decode()
    return reply.decode().strip()


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _send(port, "PING", timeout=1).startswith(b"+PONG"):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _spawn(args):
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def cmd_up(a) -> int:
    base = os.path.abspath(a.dir)
    os.makedirs(base, exist_ok=True)
    statef = os.path.join(base, STATE_FILE)
    if os.path.exists(statef):
        print("a cluster is already described in %s; run `frtrio cluster down --dir %s` first"
              % (statef, a.dir), file=sys.stderr)
        return 1
    total = a.nodes * (1 + a.replicas)
    all_ports = [a.port + i for i in range(total)]
    ports = all_ports[: a.nodes]  # the masters; replicas follow
    nodes = []
    for port in all_ports:
        d = os.path.join(base, str(port))
        os.makedirs(d, exist_ok=True)
        args = [sys.executable, "-m", "frtrio.cli", "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-node-timeout", str(a.node_timeout),
                "--dir", d, "--save", "", "--appendonly", "yes" if a.aof else "no",
                "--logfile", os.path.join(d, "server.log"), "--pidfile", os.path.join(d, "server.pid")]
        p = _spawn(args)
        nodes.append({"port": port, "pid": p.pid, "dir": d, "args": args})
    with open(statef, "w") as f:
        json.dump({"nodes": nodes}, f)
    for n in nodes:
        if not _wait_port(n["port"], 15):
            print("node on port %d did not start (see %s/server.log)" % (n["port"], n["dir"]),
                  file=sys.stderr)
            cmd_down(a)
            return 1
    # slots, epochs, meet
    per = 16384 // len(ports)
    for i, port in enumerate(ports):
        lo = i * per
        hi = 16383 if i == len(ports) - 1 else (i + 1) * per - 1
        _send(port, "CLUSTER", "ADDSLOTSRANGE", str(lo), str(hi))
        _send(port, "CLUSTER", "SET-CONFIG-EPOCH", str(i + 1))
    for port in all_ports[1:]:
        _send(port, "CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
    deadline = time.monotonic() + a.wait
    replicas = all_ports[a.nodes:]
    ids = {p: _bulk(_send(p, "CLUSTER", "MYID")) for p in ports}
    pending = {r: ports[i % a.nodes] for i, r in enumerate(replicas)}
    while time.monotonic() < deadline:
        infos = [_bulk(_send(p, "CLUSTER", "INFO")) for p in all_ports]
        known = all("cluster_known_nodes:%d" % total in i for i in infos)
        for r, m in list(pending.items()):
            # a replica can follow its master once it knows it
            if known and _send(r, "CLUSTER", "REPLICATE", ids[m]).startswith(b"+OK"):
                del pending[r]
        if known and not pending and all("cluster_state:ok" in i for i in infos):
            view = _bulk(_send(ports[0], "CLUSTER", "NODES"))
            if view.count(" slave ") + view.count(",slave ") >= len(replicas):
                print("frtrio cluster up: %d masters and %d replicas on 127.0.0.1:%d-%d (dir %s)"
                      % (a.nodes, len(replicas), all_ports[0], all_ports[-1], base))
                print("try: redis-cli -c -p %d" % ports[0])
                return 0
        time.sleep(0.2)
    print("cluster did not reach cluster_state:ok within %ds; `frtrio cluster status` shows why"
          % a.wait, file=sys.stderr)
    return 1


def _load(a):
    statef = os.path.join(os.path.abspath(a.dir), STATE_FILE)
    if not os.path.exists(statef):
        return None, statef
    with open(statef) as f:
        return json.load(f), statef


def cmd_status(a) -> int:
    st, statef = _load(a)
    if st is None:
        print("no cluster in %s" % statef)
        return 1
    for n in st["nodes"]:
        try:
            info = _bulk(_send(n["port"], "CLUSTER", "INFO")).splitlines()[0]
            myid = _bulk(_send(n["port"], "CLUSTER", "MYID"))
            print("127.0.0.1:%d pid %d %s %s" % (n["port"], n["pid"], myid[:8], info))
        except OSError as e:
            print("127.0.0.1:%d pid %d down (%s)" % (n["port"], n["pid"], e))
    try:
        print(_bulk(_send(st["nodes"][0]["port"], "CLUSTER", "NODES")), end="")
    except OSError:
        pass
    return 0


def cmd_down(a) -> int:
    st, statef = _load(a)
    if st is None:
        print("no cluster in %s" % statef)
        return 0
    for n in st["nodes"]:
        try:
            os.kill(n["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for n in st["nodes"]:
        while time.monotonic() < deadline:
            try:
                os.kill(n["pid"], 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(n["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.remove(statef)
    print("frtrio cluster down (%d nodes stopped)" % len(st["nodes"]))
    return 0


# --- chaos: faults on a seeded schedule ---------------------------------------------------


def _role(port: int) -> str:
    try:
        line = [ln for ln in _bulk(_send(port, "CLUSTER", "NODES", timeout=1)).splitlines()
                if "myself" in ln]
        return "master" if line and "master" in line[0].split()[2] else "replica"
    except (OSError, ValueError, IndexError):
        return "?"


class _Probe:
    """What a client sees: a SET and a GET of its own key every few ms,
    following MOVED; counts successes and errors per second."""

    def __init__(self, ports):
        self.ports = ports
        self.i = 0
        self.ok = 0
        self.errors: dict[str, int] = {}

    def once(self) -> None:
        self.i += 1
        key = "chaos:%d" % (self.i % 1000)
        port = self.ports[self.i % len(self.ports)]
        for _hop in range(3):
            try:
                r = _send(port, "SET", key, str(self.i), timeout=0.5)
            except OSError as e:
                self._err(type(e).__name__)
                return
            if r.startswith((b"-MOVED", b"-ASK")):
                port = int(r.split()[2].rsplit(b":", 1)[1])
                continue
            if r.startswith(b"+OK"):
                self.ok += 1
            else:
                self._err(r.split()[0][1:].decode("latin-1", "replace"))
            return

    def _err(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def take(self) -> str:
        out = "%d ok" % self.ok + "".join(", %d %s" % (n, k) for k, n in sorted(self.errors.items()))
        self.ok = 0
        self.errors = {}
        return out


def cmd_chaos(a) -> int:
    """Kill, restart, pause and cut off nodes of a local cluster on a seeded
    schedule, printing a timeline of what was done, the cluster's state and
    what a probing client saw, second by second."""
    import random

    st, statef = _load(a)
    if st is None:
        print("no cluster in %s (start one with `frtrio cluster up`)" % statef, file=sys.stderr)
        return 1
    rng = random.Random(a.seed)
    kinds = [k for k in a.kinds.split(",") if k]
    for k in kinds:
        if k not in ("kill", "pause"):
            print("unknown fault kind %r (kill, pause)" % k, file=sys.stderr)
            return 2
    nodes = st["nodes"]
    ports = [n["port"] for n in nodes]
    probe = _Probe(ports)
    t0 = time.monotonic()
    down: dict[int, float] = {}  # index -> when to bring it back
    paused: dict[int, float] = {}
    next_fault = t0 + rng.uniform(*a.every)
    next_report = t0 + 1.0

    def log(msg: str) -> None:
        print("%7.2fs  %s" % (time.monotonic() - t0, msg), flush=True)

    log("chaos seed %d on %d nodes: %s every %.1f-%.1f s for %d s"
        % (a.seed, len(nodes), ",".join(kinds), a.every[0], a.every[1], a.duration))
    try:
        while time.monotonic() - t0 < a.duration:
            now = time.monotonic()
            for i, until in list(down.items()):
                if now >= until:
                    p = _spawn(nodes[i]["args"])
                    nodes[i]["pid"] = p.pid
                    del down[i]
                    log("restart 127.0.0.1:%d (pid %d)" % (ports[i], p.pid))
            for i, until in list(paused.items()):
                if now >= until:
                    os.kill(nodes[i]["pid"], signal.SIGCONT)
                    del paused[i]
                    log("resume 127.0.0.1:%d" % ports[i])
            if now >= next_fault:
                next_fault = now + rng.uniform(*a.every)
                kind = rng.choice(kinds)
                i = rng.randrange(len(nodes))
                if i not in down and i not in paused and len(down) + len(paused) < a.max_down:
                    length = rng.uniform(*a.length)
                    role = _role(ports[i])
                    if kind == "kill":
                        os.kill(nodes[i]["pid"], signal.SIGKILL)
                        down[i] = now + length
                        log("kill -9 127.0.0.1:%d (%s), back in %.1f s" % (ports[i], role, length))
                    else:
                        os.kill(nodes[i]["pid"], signal.SIGSTOP)
                        paused[i] = now + length
                        log("pause 127.0.0.1:%d (%s) for %.1f s" % (ports[i], role, length))
            probe.once()
            if now >= next_report:
                next_report += 1.0
                states = []
                for i, port in enumerate(ports):
                    if i in down or i in paused:
                        states.append("-")
                        continue
                    try:
                        info = _bulk(_send(port, "CLUSTER", "INFO", timeout=0.5))
                        states.append("ok" if "cluster_state:ok" in info else "fail")
                    except OSError:
                        states.append("?")
                log("state %s | client: %s" % (" ".join(states), probe.take()))
            time.sleep(0.005)
    finally:
        for i in list(paused):
            os.kill(nodes[i]["pid"], signal.SIGCONT)
            log("resume 127.0.0.1:%d" % ports[i])
        for i in list(down):
            p = _spawn(nodes[i]["args"])
            nodes[i]["pid"] = p.pid
            log("restart 127.0.0.1:%d (pid %d)" % (ports[i], p.pid))
        with open(statef, "w") as f:
            json.dump(st, f)
    log("chaos over; `frtrio cluster status` shows the cluster now")
    return 0


def _call(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 5.0):
    """One command, its reply parsed (an error reply comes back as a
    hiredis.ReplyError value)."""
    import hiredis

    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    reader = hiredis.Reader()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by %s:%d" % (host, port))
            reader.feed(chunk)
            r = reader.gets()
            if r is not False:
                return r


def _parse_slots(text: str) -> list[str]:
    out = []
    for part in text.replace(",", " ").split():
        a, _, b = part.partition("-")
        out += [a, b or a]
    return out


def cmd_migrate(a) -> int:
    """Atomic slot migration on a running cluster: CLUSTER MIGRATION IMPORT
    on the destination, then its progress until the task ends."""
    import hiredis

    host, _, port = a.to.rpartition(":")
    host, port = host or "127.0.0.1", int(port)
    try:
        tid = _call(port, "CLUSTER", "MIGRATION", "IMPORT", *_parse_slots(a.slots), host=host)
    except OSError as e:
        print("frtrio cluster migrate: cannot reach %s:%d: %s" % (host, port, e))
        return 1
    if isinstance(tid, hiredis.ReplyError):
        print("frtrio cluster migrate: %s" % tid)
        return 1
    tid = tid.decode()
    print("task %s: importing slots %s into %s:%d" % (tid, a.slots, host, port), flush=True)
    t0 = time.monotonic()
    last = None
    while True:
        st = _call(port, "CLUSTER", "MIGRATION", "STATUS", "ID", tid, host=host)
        f = dict(zip(st[0][0::2], st[0][1::2])) if st and isinstance(st[0], list) else {}
        state = f.get(b"state", b"?").decode()
        keys = 0
        info = _call(port, "INFO", "keyspace", host=host).decode()
        for line in info.splitlines():
            if line.startswith("db0:keys="):
                keys = int(line.split("=", 1)[1].split(",")[0])
        now = (state, f.get(b"retries"), f.get(b"last_error"))
        if now != last or a.verbose:
            err = f.get(b"last_error") or b""
            print("  %6.2f s  %-18s keys on destination: %d%s%s" % (
                time.monotonic() - t0, state, keys,
                "  retries: %d" % f[b"retries"] if f.get(b"retries") else "",
                "  (%s)" % err.decode() if err else ""), flush=True)
            last = now
        if state in ("completed", "canceled"):
            return 0 if state == "completed" else 1
        if time.monotonic() - t0 > a.timeout:
            _call(port, "CLUSTER", "MIGRATION", "CANCEL", "ID", tid, host=host)
            print("frtrio cluster migrate: not done in %d s: task cancelled" % a.timeout)
            return 1
        time.sleep(0.2)


def cluster_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="frtrio cluster", description="a local frtrio cluster")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("migrate", help="move slots with atomic slot migration")
    p.add_argument("--slots", required=True,
                   help="slot ranges for the destination to take, e.g. 0-100,200-300")
    p.add_argument("--to", required=True, help="the destination master, HOST:PORT")
    p.add_argument("--timeout", type=int, default=600, help="cancel after this many seconds")
    p.add_argument("--verbose", action="store_true", help="a progress line every 0.2 s")
    for name in ("up", "status", "down", "chaos"):
        p = sub.add_parser(name)
        p.add_argument("--dir", default="frtrio-cluster", help="where nodes keep their files")
        if name == "up":
            p.add_argument("--nodes", type=int, default=3, help="number of masters")
            p.add_argument("--replicas", type=int, default=0, help="replicas per master")
            p.add_argument("--port", type=int, default=7000, help="first client port")
            p.add_argument("--node-timeout", type=int, default=5000)
            p.add_argument("--aof", action="store_true", help="appendonly yes")
            p.add_argument("--wait", type=int, default=30, help="seconds to wait for cluster_state:ok")
        if name == "chaos":
            p.add_argument("--seed", type=int, default=1, help="the schedule's seed")
            p.add_argument("--duration", type=int, default=30, help="seconds of chaos")
            p.add_argument("--kinds", default="kill,pause", help="fault kinds: kill,pause")
            p.add_argument("--every", type=float, nargs=2, default=(2.0, 6.0),
                           metavar=("MIN", "MAX"), help="seconds between faults")
            p.add_argument("--length", type=float, nargs=2, default=(1.0, 8.0),
                           metavar=("MIN", "MAX"), help="seconds a node stays down or paused")
            p.add_argument("--max-down", type=int, default=1, help="nodes down at once, at most")
    a = ap.parse_args(argv)
    return {"up": cmd_up, "status": cmd_status, "down": cmd_down, "chaos": cmd_chaos,
            "migrate": cmd_migrate}[a.cmd](a)
