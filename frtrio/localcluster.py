"""``frtrio cluster up|status|down``: a local frtrio cluster on loopback.

``up`` starts N masters and, with ``--replicas R``, R replicas of each
(frtrio-server processes, one directory each under --dir, with a pidfile),
spreads the 16384 slots over the masters, gives each master its own config
epoch, introduces every node with CLUSTER MEET, makes each replica CLUSTER
REPLICATE its master and waits until every node reports
``cluster_state:ok`` and knows every replica — what ``redis-cli --cluster
create --cluster-replicas R`` does, without needing redis-cli. ``status`` shows each node's view; ``down``
stops the processes by pid.
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
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        nodes.append({"port": port, "pid": p.pid, "dir": d})
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


def cluster_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="frtrio cluster", description="a local frtrio cluster")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("up", "status", "down"):
        p = sub.add_parser(name)
        p.add_argument("--dir", default="frtrio-cluster", help="where nodes keep their files")
        if name == "up":
            p.add_argument("--nodes", type=int, default=3, help="number of masters")
            p.add_argument("--replicas", type=int, default=0, help="replicas per master")
            p.add_argument("--port", type=int, default=7000, help="first client port")
            p.add_argument("--node-timeout", type=int, default=5000)
            p.add_argument("--aof", action="store_true", help="appendonly yes")
            p.add_argument("--wait", type=int, default=30, help="seconds to wait for cluster_state:ok")
    a = ap.parse_args(argv)
    return {"up": cmd_up, "status": cmd_status, "down": cmd_down}[a.cmd](a)
