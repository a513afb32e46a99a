"""The AOF manifest (pure): Redis 7.0's multi-part layout.

``<dir>/<appenddirname>/`` holds a manifest naming one base file and the
incremental files after it (and, with ``aof-disable-auto-gc yes``, history
files waiting to be deleted)::

    file appendonly.aof.1.base.rdb seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i
"""

from __future__ import annotations

from frtrio.config import repr_bytes
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
        m = cls()
        bad = "Invalid AOF manifest file format (%s)" % path
        last_incr = 0
        for raw in data.split(b"\n"):
            line = raw.strip(b" \t\r\n")
            if not line or line[:1] == b"#":
                continue
            words = split_args(line)
            if not words or len(words) % 2:
                raise AOFLoadError(bad)
            kv = {}
            for k, v in zip(words[0::2], words[1::2]):
                kv[k.decode("latin-1")] = v
            if "file" not in kv or "seq" not in kv or "type" not in kv:
                raise AOFLoadError(bad)
            fname = kv["file"].decode("utf-8", "surrogateescape")
            if "/" in fname:
                raise AOFLoadError(bad)
            try:
                seq = int(kv["seq"])
            except ValueError:
                raise AOFLoadError(bad) from None
            typ = kv["type"]
            if typ == b"b":
                if m.base is not None:
                    raise AOFLoadError("Found duplicate base file information (%s)" % path)
                m.base = (fname, seq)
            elif typ == b"h":
                m.history.append((fname, seq))
            elif typ == b"i":
                if seq <= last_incr:
                    raise AOFLoadError("Found a non-monotonic sequence number (%s)" % path)
                last_incr = seq
                m.incrs.append((fname, seq))
            else:
                raise AOFLoadError("Unknown AOF file type (%s)" % path)
        return m
