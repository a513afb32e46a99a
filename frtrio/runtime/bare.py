"""A bare Trio RESP server: the ceiling for a Python server here.

It has frtrio's connection loop without the engine: the same parser
(``frtrio.protocol.parser.RequestParser``), the same socket I/O
(``frtrio.runtime.sockio``: one scheduler trip per wait), ``receive_some(65536)``,
parse everything buffered, answer every request with ``+OK``, one ``send_all``.
``scripts/bench`` compares frtrio-server with it: what frtrio spends above
this is the engine, the reply encoder and the node's bookkeeping.

    python -m frtrio.runtime.bare --port 7777 [--bind 127.0.0.1]

It also answers a protocol error as Redis does (the error, then close), so a
benchmark client that sends something odd sees the same thing.
"""

from __future__ import annotations

import argparse
import socket
import sys

import trio

from frtrio.protocol.parser import RequestParser
from frtrio.runtime import sockio

RECV_SIZE = 65536
OK = b"+OK\r\n"


async def handle(stream: trio.SocketStream) -> None:
    try:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover
        pass
    parser = RequestParser()
    cmds: list = []
    io = sockio.for_stream(stream)
    try:
        while True:
            data = await io.receive_some(RECV_SIZE)
            if not data:
                return
            parser.feed(data)
            err = parser.parse(cmds)
            out = OK * len(cmds) if cmds else b""
            cmds.clear()
            if err is not None:
                out += b"-ERR " + err.reply_text.encode("latin-1") + b"\r\n"
            if out:
                await io.send_all(out)
            if err is not None:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def serve(port: int, host: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=511)
    await trio.serve_listeners(handle, listeners, task_status=task_status)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m frtrio.runtime.bare", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=7777)
    ap.add_argument("--bind", default="127.0.0.1")
    a = ap.parse_args(argv)
    try:
        trio.run(serve, a.port, a.bind)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
