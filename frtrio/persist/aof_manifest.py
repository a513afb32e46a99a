"""The AOF manifest (pure): Redis 7.0's multi-part layout.

``<dir>/<appenddirname>/`` holds a manifest naming one base file and the
incremental files after it (and, with ``aof-disable-auto-gc yes``, history
files waiting to be deleted)::

    file appendonly.aof.1.base.rdb seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i
"""

from __future__ import annotations

from frtrio.config import repr_bytes
from frtrio.core.cnum import strtol
from frtrio.persist.aof_format import AOFLoadError
from frtrio.protocol.parser import split_args


class Manifest:
    """The manifest: base, incr and history files, in order."""

    def __init__(self):
        self.base: tuple[str, int] | None = None
        self.incrs: list[tuple[str, int]] = []
        self.history: list[tuple[str, int]] = []

    @property
    def next_incr_seq(self) -> int:
        return (self.incrs[-1][1] if self.incrs else 0) + 1

    @property
    def next_base_seq(self) -> int:
        return (self.base[1] if self.base else 0) + 1

    def files(self) -> list[str]:
        out = [self.base[0]] if self.base else []
        return out + [f for f, _ in self.incrs]

    def entries(self) -> list[tuple[str, int]]:
        return ([self.base] if self.base else []) + list(self.incrs)

    def render(self) -> bytes:
        def name(f: str) -> str:
            b = f.encode("utf-8", "surrogateescape")
            if not b or any(c <= 32 or c >= 127 or c in b"\"'\\" for c in b):  # "" quoted too
                return repr_bytes(b)
            return f

        lines = []
        if self.base:
            lines.append("file %s seq %d type b\n" % (name(self.base[0]), self.base[1]))
        for f, seq in self.history:
            lines.append("file %s seq %d type h\n" % (name(f), seq))
        for f, seq in self.incrs:
            lines.append("file %s seq %d type i\n" % (name(f), seq))
        return "".join(lines).encode("utf-8", "surrogateescape")

    @classmethod
    def parse(cls, data: bytes, path: str) -> "Manifest":
        """Read a manifest as Redis 7.0's aofLoadManifestFromFile does: lines
        of at most 1024 bytes, each ending in a newline; ``#`` lines are
        comments; a blank line, fewer than 6 words, an odd count, a missing
        (or zero) file/seq/type, a path for a name are invalid; keys are
        case-insensitive and unknown ones ignored; the seq is read as atoll.
        Any error is an AOFLoadError whose lines are Redis's log lines."""
        m = cls()
        maxseq = 0
        pos = 0
        linenum = 0
        end = len(data)
        while True:
            if pos >= end:
                if linenum == 0:
                    raise _fatal("Found an empty AOF manifest")
                break
            nl = data.find(b"\n", pos, pos + MANIFEST_MAX_LINE)
            stop = nl + 1 if nl >= 0 else min(end, pos + MANIFEST_MAX_LINE)
            chunk = data[pos:stop]
            pos = stop
            linenum += 1
            if chunk[:1] == b"#":
                continue
            if nl < 0:
                raise _fatal("The AOF manifest file contains too long line")
            line = chunk.strip(b" \t\r\n")
            bad = _fatal("Invalid AOF manifest file format", linenum, line)
            if not line:
                raise bad
            words = split_args(line)
            if not words or len(words) < 6 or len(words) % 2:
                raise bad
            fname = None
            seq = 0
            typ = b""
            for k, v in zip(words[0::2], words[1::2]):
                k = k.lower()
                if k == b"file":
                    fname = v.decode("utf-8", "surrogateescape")
                    if "/" in fname:
                        raise _fatal("File can't be a path, just a filename", linenum, line)
                elif k == b"seq":
                    seq = strtol(v)  # (C's atoll)
                elif k == b"type":
                    typ = v[:1]
            if fname is None or not seq or not typ or typ == b"\0":
                raise bad
            if typ == b"b":
                if m.base is not None:
                    raise _fatal("Found duplicate base file information", linenum, line)
                m.base = (fname, seq)
            elif typ == b"h":
                m.history.append((fname, seq))
            elif typ == b"i":
                if seq <= maxseq:
                    raise _fatal("Found a non-monotonic sequence number", linenum, line)
                maxseq = seq
                m.incrs.append((fname, seq))
            else:
                raise _fatal("Unknown AOF file type", linenum, line)
        return m


MANIFEST_MAX_LINE = 1024


def _fatal(err: str, linenum: int = 0, line: bytes | None = None) -> AOFLoadError:
    """Redis's log lines for a manifest it refuses (then it exits 1)."""
    lines = ["*** FATAL AOF MANIFEST FILE ERROR ***"]
    if line is not None:
        lines.append("Reading the manifest file, at line %d" % linenum)
        lines.append(">>> '%s'" % line.decode("utf-8", "backslashreplace"))
    lines.append(err)
    return AOFLoadError("\n".join(lines))


