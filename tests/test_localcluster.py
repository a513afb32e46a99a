"""`frtrio cluster up|status|down`: the local cluster newcomers start."""

import socket

import pytest

from support import free_port

from frtrio.localcluster import cluster_main


def _free_ports(n: int = 3) -> int:
    """A base port such that base..base+n-1 and their bus ports are free."""
    for _ in range(50):
        base = free_port()
        ok = True
        for p in [base + i for i in range(n)] + [base + 10000 + i for i in range(n)]:
            s = socket.socket()
            # as the servers bind (a TIME_WAIT left by a client connection
            # on that port does not stop them)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no %d consecutive free ports" % n)


@pytest.mark.slow  # (13 s: the default run is at its 10-minute budget)
def test_c14_local_cluster_up_status_down(tmp_path, capsys):
    d = str(tmp_path / "c")
    base = _free_ports(3)
    try:
        assert cluster_main(["up", "--dir", d, "--port", str(base), "--node-timeout", "2000"]) == 0
        out = capsys.readouterr().out
        assert "3 masters and 0 replicas on 127.0.0.1:%d-%d" % (base, base + 2) in out
        assert cluster_main(["status", "--dir", d]) == 0
        out = capsys.readouterr().out
        assert out.count("cluster_state:ok") == 3
        assert out.count("myself,master") == 1 and out.count(" master ") + 1 >= 3
    finally:
        assert cluster_main(["down", "--dir", d]) == 0
    assert "3 nodes stopped" in capsys.readouterr().out


@pytest.mark.slow  # (17 s: the default run is at its 10-minute budget)
def test_c12_local_cluster_with_replicas_replicates(tmp_path, capsys):
    """`frtrio cluster up --replicas 1`: three masters, each with a replica
    that holds its master's data (READONLY reads on the replica)."""
    import time

    from support import RawConn

    d = str(tmp_path / "c")
    base = _free_ports(6)
    try:
        assert cluster_main(["up", "--dir", d, "--port", str(base), "--node-timeout", "2000",
                             "--replicas", "1", "--wait", "60"]) == 0
        out = capsys.readouterr().out
        assert "3 masters and 3 replicas on 127.0.0.1:%d-%d" % (base, base + 5) in out
        with RawConn(base) as c:
            nodes = c.cmd("CLUSTER", "NODES").decode()
        lines = [ln.split() for ln in nodes.strip().splitlines()[1:]]
        masters = {ln[0]: ln for ln in lines if "master" in ln[2]}
        replicas = [ln for ln in lines if "slave" in ln[2]]
        assert len(masters) == 3 and len(replicas) == 3
        assert sorted(r[3] for r in replicas) == sorted(masters)  # one replica per master
        # a key written on its master can be read on that master's replica
        with RawConn(base) as c:
            slot = int(c.cmd("CLUSTER", "KEYSLOT", "k").split(b":")[1])
        owner = next(m for m in masters.values()
                     if any(int(r.split("-")[0]) <= slot <= int(r.split("-")[-1]) for r in m[8:]))
        mport = int(owner[1].split(":")[1].split("@")[0])
        rep = next(r for r in replicas if r[3] == owner[0])
        rport = int(rep[1].split(":")[1].split("@")[0])
        with RawConn(mport) as c:
            assert c.cmd("SET", "k", "v") == b"+OK\r\n"
            assert c.cmd("WAIT", "1", "5000") == b":1\r\n"
        with RawConn(rport) as c:
            assert c.cmd("READONLY") == b"+OK\r\n"
            deadline = time.monotonic() + 5
            while c.cmd("GET", "k") != b"$1\r\nv\r\n" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.cmd("GET", "k") == b"$1\r\nv\r\n"
    finally:
        assert cluster_main(["down", "--dir", d]) == 0


@pytest.mark.slow  # (about 20 s: thirty seconds of chaos on a local cluster)
def test_c12_cluster_chaos_timeline_and_recovery(tmp_path, capsys):
    """`frtrio cluster chaos`: seeded kills and pauses with a timeline of
    the faults, the cluster state and the probing client's results; the
    cluster is whole again afterwards."""
    import time

    from support import RawConn

    d = str(tmp_path / "c")
    base = _free_ports(3)
    try:
        assert cluster_main(["up", "--dir", d, "--port", str(base), "--node-timeout", "1000"]) == 0
        capsys.readouterr()
        assert cluster_main(["chaos", "--dir", d, "--seed", "3", "--duration", "6",
                             "--every", "0.5", "1.0", "--length", "0.5", "1.5"]) == 0
        out = capsys.readouterr().out
        assert "chaos seed 3 on 3 nodes" in out
        assert "kill -9 127.0.0.1:" in out or "pause 127.0.0.1:" in out
        assert out.count(" state ") >= 4 and "client: " in out
        deadline = time.monotonic() + 30
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                states = []
                for p in range(base, base + 3):
                    with RawConn(p) as c:
                        states.append(b"cluster_state:ok" in c.cmd("CLUSTER", "INFO"))
                ok = all(states)
            except OSError:
                pass
            time.sleep(0.2)
        assert ok, "the cluster did not recover after the chaos"
    finally:
        assert cluster_main(["down", "--dir", d]) == 0
