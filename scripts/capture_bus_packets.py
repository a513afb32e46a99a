#!/usr/bin/env python3
"""Capture cluster bus packets sent by a real redis-server 7.0 node.

Starts a one-node redis-server cluster, pretends to be a second node (a plain
socket answering every MEET/PING with a PONG built by frtrio's codec), makes
the real node send MEET, PING, PUBLISH and UPDATE packets, and stores each raw
packet under tests/fixtures/bus/. The fixtures let the codec tests check that
frtrio decodes and re-encodes what Redis sends byte for byte.

Usage: scripts/capture_bus_packets.py [outdir]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from frtrio.cluster import bus_codec as bc  # noqa: E402
from frtrio.cluster.bus_types import PONG, TYPE_NAMES  # noqa: E402

FAKE_ID = "f" * 40


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError
        buf += chunk
    return buf


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "fixtures", "bus")
    os.makedirs(out, exist_ok=True)
    port = free_port()
    cport = free_port()
    fake_port = free_port()
    fake_cport = free_port()
    d = tempfile.mkdtemp()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--cluster-enabled", "yes", "--cluster-port", str(cport),
         "--cluster-node-timeout", "3000", "--save", "", "--dir", d, "--bind", "127.0.0.1",
         "--cluster-announce-hostname", "host-1.example"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    captured = {}
    claim = {"slots": bytes(2048), "epoch": 0}

    def pong():
        m = bc.Message(PONG)
        m.sender = FAKE_ID
        m.port, m.cport = fake_port, fake_cport
        m.flags = bc.F_MASTER | bc.F_MYSELF
        m.myslots = claim["slots"]
        m.config_epoch = claim["epoch"]
        return bc.encode(m)

    def serve_conn(conn):
        try:
            while True:
                first = recv_exact(conn, 8)
                totlen = int.from_bytes(first[4:8], "big")
                raw = first + recv_exact(conn, totlen - 8)
                t = int.from_bytes(raw[12:14], "big")
                name = TYPE_NAMES.get(t, str(t))
                captured.setdefault(name, raw)
                if t in (0, 2):  # PING, MEET
                    conn.sendall(pong())
        except (ConnectionError, OSError):
            pass

    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", fake_cport))
    lsock.listen(5)

    def acceptor():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=serve_conn, args=(c,), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        cli = ["redis-cli", "-p", str(port)]
        subprocess.run(cli + ["cluster", "addslotsrange", "0", "5460"], check=True, capture_output=True)
        subprocess.run(cli + ["cluster", "bumpepoch"], check=True, capture_output=True)
        subprocess.run(cli + ["cluster", "meet", "127.0.0.1", str(fake_port), str(fake_cport)],
                       check=True, capture_output=True)
        deadline = time.time() + 10
        while time.time() < deadline and "ping" not in captured:
            time.sleep(0.1)
        subprocess.run(cli + ["publish", "chanA", "hello-world"], check=True, capture_output=True)
        # claim slot 0 with epoch 0: the real node answers with UPDATE
        bm = bytearray(2048)
        bm[0] = 1
        claim["slots"] = bytes(bm)
        deadline = time.time() + 10
        while time.time() < deadline and not {"publish", "update"} <= set(captured):
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
        lsock.close()
        shutil.rmtree(d, ignore_errors=True)
    for name, raw in sorted(captured.items()):
        with open(os.path.join(out, "redis70-%s.bin" % name), "wb") as f:
            f.write(raw)
        print(name, len(raw))


if __name__ == "__main__":
    main()
