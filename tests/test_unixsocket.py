"""unixsocket / unixsocketperm, side by side with redis-server: the socket
file gets the permissions asked for, clients connect through it (redis-cli,
redis-benchmark, redis-py), CLIENT LIST shows them as `path:0`, and the
file is removed at shutdown."""

from __future__ import annotations

import os
import subprocess

import pytest
from support import HAVE_REDIS, ServerProc

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server 7.0.15")]


@pytest.mark.parametrize("kind", ["frtrio", "redis"])
def test_unix_socket_serves_clients_and_is_removed_at_shutdown(kind, tmp_path):
    path = str(tmp_path / "server.sock")
    open(path, "w").close()  # a stale file there is replaced
    p = ServerProc(kind, ["--unixsocket", path, "--unixsocketperm", "700"]).start()
    try:
        assert os.stat(path).st_mode & 0o777 == 0o700
        cli = subprocess.run(["redis-cli", "-s", path, "PING"], capture_output=True, text=True)
        assert cli.stdout.strip() == "PONG"
        import redis

        r = redis.Redis(unix_socket_path=path)
        r.set("k", "v")
        me = [c for c in r.client_list() if c["cmd"] == "client|list"][0]
        assert me["addr"] == path + ":0" and me["laddr"] == path + ":0"
        out = subprocess.run(["redis-benchmark", "-s", path, "-n", "2000", "-t", "set", "-q"],
                             capture_output=True, text=True, timeout=60).stdout
        assert "requests per second" in out
        assert p.client().get("k") == b"v"  # the same server on TCP
        r.close()
        assert p.terminate() == 0
        assert not os.path.exists(path)
    finally:
        p.cleanup()
