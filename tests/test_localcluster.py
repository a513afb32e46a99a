"""`frtrio cluster up|status|down`: the local cluster newcomers start."""

import socket

from support import free_port

from frtrio.localcluster import cluster_main


def _three_free_ports() -> int:
    for _ in range(50):
        base = free_port()
        ok = True
        for p in (base, base + 1, base + 2, base + 10000, base + 10001, base + 10002):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no three consecutive free ports")


def test_c14_local_cluster_up_status_down(tmp_path, capsys):
    d = str(tmp_path / "c")
    base = _three_free_ports()
    try:
        assert cluster_main(["up", "--dir", d, "--port", str(base), "--node-timeout", "2000"]) == 0
        out = capsys.readouterr().out
        assert "3 nodes on 127.0.0.1:%d-%d" % (base, base + 2) in out
        assert cluster_main(["status", "--dir", d]) == 0
        out = capsys.readouterr().out
        assert out.count("cluster_state:ok") == 3
        assert out.count("myself,master") == 1 and out.count(" master ") + 1 >= 3
    finally:
        assert cluster_main(["down", "--dir", d]) == 0
    assert "3 nodes stopped" in capsys.readouterr().out
