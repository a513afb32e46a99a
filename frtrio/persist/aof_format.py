"""The AOF's command format (pure): a command as a RESP multibulk request,
and a run of them read back the way Redis's loadSingleAppendOnlyFile reads
them (``#`` annotation lines skipped; counts read with atoi, lengths with
strtol)."""

from __future__ import annotations

from frtrio.core.cnum import atoi, strtol


class AOFLoadError(Exception):
    """The AOF cannot be loaded; the server must not start (exit code 1)."""


def encode_command(argv: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for a in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)



class Truncated(Exception):
    """Unexpected end of file (Redis's ``uxeof``)."""


class BadFormat(Exception):
    """Redis's ``fmterr``."""


def parse_aof(data: bytes, start: int = 0):
    """Yield (argv, end_offset) for each command from ``start``, reading the
    way Redis's loader does. Raises Truncated at a short tail and BadFormat
    on a format error."""
    pos = start
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        line = data[pos:] if nl < 0 else data[pos : nl + 1]
        if line[:1] == b"#":
            if nl < 0:
                return  # an annotation at EOF: nothing more
            pos = nl + 1
            continue
        if line[:1] != b"*":
            raise BadFormat()
        if len(line) < 2 or line[1:2] in (b"",):
            raise Truncated()
        argc = atoi(line[1:])  # Redis: atoi for the count
        if argc < 1:
            raise BadFormat()
        if nl < 0:
            raise Truncated()
        pos = nl + 1
        argv = []
        for _ in range(argc):
            if pos >= n:
                raise Truncated()
            nl = data.find(b"\n", pos)
            if data[pos : pos + 1] != b"$":
                raise BadFormat()
            if nl < 0:
                raise Truncated()
            ln = strtol(data[pos + 1 : nl])  # Redis: strtol for lengths
            if ln < 0:
                raise BadFormat()
            pos = nl + 1
            if pos + ln + 2 > n:
                raise Truncated()
            argv.append(data[pos : pos + ln])
            pos += ln + 2
        yield argv, pos
