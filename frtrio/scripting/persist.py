"""Functions in RDB files and in FUNCTION DUMP / RESTORE payloads.

Redis 7.0 writes each library as ``RDB_OPCODE_FUNCTION2`` (0xF5) followed by
the library's code as an RDB string, after the AUX fields and before the
databases; a FUNCTION DUMP payload is the same records followed by the RDB
version (2 bytes LE) and a CRC64 (8 bytes LE), as a DUMP payload. The AOF
holds FUNCTION LOAD / DELETE / FLUSH as the commands themselves (they are
write commands), and an AOF rewrite writes every library as FUNCTION LOAD.
"""

from __future__ import annotations

from frtrio.protocol.reply import ErrorReply
from frtrio.store import rdb as _rdb

OP_FUNCTION2 = 0xF5


def _scripting(server):
    from frtrio.commands.scripting import scripting

    return scripting(server)


def rdb_records(server, compress: bool) -> bytes:
    """The FUNCTION2 records of every library (empty when there are none)."""
    s = server.scripting
    if s is None or not s.libraries:
        return b""
    return b"".join(bytes((OP_FUNCTION2,)) + _rdb.enc_string(lib.code, compress)
                    for lib in s.libraries.values())


def load_rdb_library(server, code: bytes, replace: bool = True) -> None:
    """A FUNCTION2 record read from an RDB file: load the library (replacing
    one of the same name unless ``replace`` is False). Raises ValueError
    with Redis's reason."""
    try:
        _scripting(server).load_library(code, replace)
    except ErrorReply as e:
        raise ValueError(e.message) from None


def dump_payload(server) -> bytes:
    body = rdb_records(server, True) + _rdb.RDB_VERSION.to_bytes(2, "little")
    return body + _rdb.crc64(body).to_bytes(8, "little")


def restore(server, payload: bytes, policy: bytes) -> None:
    """FUNCTION RESTORE: raises ErrorReply as Redis does."""
    if not _rdb.verify_payload(payload, not server.config.skip_checksum_validation):
        raise ErrorReply("ERR DUMP payload version or checksum are wrong")
    r = _rdb.Reader(payload)
    end = len(payload) - 10
    codes = []
    try:
        while r.pos < end:
            t = r.byte()
            if t != OP_FUNCTION2:
                raise ErrorReply("ERR given type is not a function")
            codes.append(r.string())
    except _rdb.RdbError:
        raise ErrorReply("ERR failed loading the given functions payload") from None
    s = _scripting(server)
    # compile everything into a scratch state first: a bad payload changes nothing
    from frtrio.scripting.engine import Scripting

    scratch = Scripting(server)
    for code in codes:
        scratch.load_library(code, False)
    if policy == b"flush":
        s.flush_functions()
    elif policy == b"append":
        for name in scratch.libraries:
            if name in s.libraries:
                raise ErrorReply("ERR Library %s already exists" % name.decode("latin-1"))
        for name, lib in scratch.libraries.items():
            for fname in lib.functions:
                if fname in s.functions:
                    raise ErrorReply("ERR Function %s already exists" % fname.decode("latin-1"))
    else:  # replace
        for name, lib in scratch.libraries.items():
            for fname in lib.functions:
                f = s.functions.get(fname)
                if f is not None and f.library.name != name:
                    raise ErrorReply("ERR Function %s already exists" % fname.decode("latin-1"))
    scratch.runner.close()
    for code in codes:
        s.load_library(code, True)
