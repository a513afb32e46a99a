"""The replica side of the handshake (pure, sans-IO; spec §2.1, §2.2, §3.3).

The shell connects, then feeds every line the master sends (CR stripped)
to :meth:`Handshake.on_line` and carries out what comes back:

* ``Send(data)``: write these bytes, keep reading lines;
* ``None``: nothing to do (a keepalive newline), keep reading;
* ``Fail(log, retry_now)``: close the link, log, go back to CONNECT;
* ``FullSync(replid, offset)``: the payload follows (``bulk_header``);
* ``Partial(new_replid)``: +CONTINUE: the stream follows at once.

``state`` is Redis's ``repl_state``; :func:`role_state` spells it as ROLE does.
"""

from __future__ import annotations

import attrs

from frtrio.replication.state import encode_command

NONE = "none"
CONNECT = "connect"
CONNECTING = "connecting"
RECEIVE_PING_REPLY = "receive_ping_reply"
RECEIVE_AUTH_REPLY = "receive_auth_reply"
RECEIVE_PORT_REPLY = "receive_port_reply"
RECEIVE_IP_REPLY = "receive_ip_reply"
RECEIVE_CAPA_REPLY = "receive_capa_reply"
RECEIVE_PSYNC_REPLY = "receive_psync_reply"
RECEIVE_SYNC_REPLY = "receive_sync_reply"  # plain SYNC sent to an old master
TRANSFER = "transfer"
CONNECTED = "connected"

_HANDSHAKE = frozenset([RECEIVE_PING_REPLY, RECEIVE_AUTH_REPLY, RECEIVE_PORT_REPLY,
                        RECEIVE_IP_REPLY, RECEIVE_CAPA_REPLY, RECEIVE_PSYNC_REPLY,
                        RECEIVE_SYNC_REPLY])


def role_state(state: str) -> str:
    """The state word of ROLE on a replica."""
    if state in _HANDSHAKE:
        return "handshake"
    if state == TRANSFER:
        return "sync"
    return state


@attrs.frozen
class Send:
    data: bytes


@attrs.frozen
class Fail:
    log: str
    retry_now: bool = False


@attrs.frozen
class FullSync:
    replid: str  # "" when the +FULLRESYNC line was malformed (pre-PSYNC link)
    offset: int
    psync: bool = True  # False after a plain SYNC: no ACKs to this master


@attrs.frozen
class Partial:
    new_replid: str | None


class Handshake:
    def __init__(self, listening_port: int, announce_ip: str | None = None,
                 masteruser: str | None = None, masterauth: str | None = None,
                 cached: tuple[str, int] | None = None, failover: bool = False):
        """``cached``: (replid, reploff) of the cached master, if any: PSYNC
        asks for reploff + 1; else ``PSYNC ? -1``."""
        self.listening_port = listening_port
        self.announce_ip = announce_ip
        self.masteruser = masteruser
        self.masterauth = masterauth
        self.cached = cached
        # a master handing over in a standalone FAILOVER: PSYNC carries
        # FAILOVER, and only CONTINUE or FULLRESYNC are acceptable replies
        self.failover = failover
        self.state = CONNECTING
        self._pending: list[str] = []  # the burst replies still expected

    def connected(self) -> Send:
        """The TCP connection is up: send PING."""
        self.state = RECEIVE_PING_REPLY
        return Send(encode_command([b"PING"]))

    def psync_command(self) -> bytes:
        args = [b"PSYNC", b"?", b"-1"]
        if self.cached is not None:
            rid, off = self.cached
            args = [b"PSYNC", rid.encode(), b"%d" % (off + 1)]
        if self.failover:
            args.append(b"FAILOVER")
        return encode_command(args)

    def on_line(self, line: bytes):
        st = self.state
        if st == RECEIVE_PING_REPLY:
            if line.startswith(b"+") or line.startswith((b"-NOAUTH", b"-NOPERM",
                                                          b"-ERR operation not permitted")):
                return self._burst()
            return Fail("Error reply to PING from master: '%s'" % _s(line))
        if st in (RECEIVE_AUTH_REPLY, RECEIVE_PORT_REPLY, RECEIVE_IP_REPLY, RECEIVE_CAPA_REPLY):
            what = self._pending.pop(0)
            if line.startswith(b"-"):
                if what == RECEIVE_AUTH_REPLY:
                    return Fail("Unable to AUTH to MASTER: %s" % _s(line))
                # "(Non critical)": only logged
            if self._pending:
                self.state = self._pending[0]
                return None
            self.state = RECEIVE_PSYNC_REPLY
            return Send(self.psync_command())
        if st == RECEIVE_PSYNC_REPLY:
            if line == b"":
                return None  # keepalive
            if line.startswith(b"+FULLRESYNC"):
                rest = line[len(b"+FULLRESYNC"):]
                if len(rest) >= 42 and rest[0:1] == b" " and rest[41:42] == b" ":
                    rid = rest[1:41].decode("latin-1")
                    try:
                        off = int(rest[42:])
                    except ValueError:
                        off = -1
                    self.state = TRANSFER
                    return FullSync(rid, off)
                self.state = TRANSFER
                return FullSync("", -1)
            if line.startswith(b"+CONTINUE"):
                rest = line[len(b"+CONTINUE"):].strip()
                self.state = CONNECTED
                new = rest.decode("latin-1") if len(rest) == 40 else None
                return Partial(new)
            if line.startswith((b"-NOMASTERLINK", b"-LOADING")):
                return Fail("Master is currently unable to PSYNC but should be in the future: %s"
                            % _s(line))
            if self.failover:
                return Fail("Unexpected reply to PSYNC FAILOVER from the target: %s" % _s(line))
            if line.startswith(b"-ERR") or line.startswith(b"-"):
                # an old master: plain SYNC on the same connection
                self.state = RECEIVE_SYNC_REPLY
                return Send(b"SYNC\r\n")
            return Fail("Unexpected reply to PSYNC from master: %s" % _s(line))
        raise RuntimeError("on_line in state %s" % st)

    def _burst(self):
        out = []
        pend = []
        if self.masterauth:
            args = [b"AUTH"]
            if self.masteruser:
                args.append(self.masteruser.encode())
            args.append(self.masterauth.encode())
            out.append(encode_command(args))
            pend.append(RECEIVE_AUTH_REPLY)
        out.append(encode_command([b"REPLCONF", b"listening-port",
                                   b"%d" % self.listening_port]))
        pend.append(RECEIVE_PORT_REPLY)
        if self.announce_ip:
            out.append(encode_command([b"REPLCONF", b"ip-address", self.announce_ip.encode()]))
            pend.append(RECEIVE_IP_REPLY)
        out.append(encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]))
        pend.append(RECEIVE_CAPA_REPLY)
        self._pending = pend
        self.state = pend[0]
        return Send(b"".join(out))


# --- the payload's count line (spec §3.3) ---------------------------------


@attrs.frozen
class BulkLen:
    length: int


@attrs.frozen
class BulkEof:
    mark: bytes  # 40 bytes


def bulk_header(line: bytes):
    """The count line before the RDB payload: BulkLen, BulkEof, None for a
    keepalive newline, or Fail."""
    if line == b"":
        return None
    if line.startswith(b"-"):
        return Fail("MASTER aborted replication with an error: %s" % _s(line))
    if not line.startswith(b"$"):
        return Fail("Bad protocol from MASTER, the first byte is not '$' (we received '%s'), "
                    "are you sure the host and port are right?" % _s(line))
    if line.startswith(b"$EOF:") and len(line) >= 5 + 40:
        return BulkEof(line[5:45])
    try:
        return BulkLen(int(line[1:]))
    except ValueError:
        return Fail("Bad protocol from MASTER: bad bulk length '%s'" % _s(line))


def _s(b: bytes) -> str:
    return b.decode("latin-1")
