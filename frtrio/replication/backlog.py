"""The replication backlog (pure): a circular buffer of the last
``size`` bytes of the replication stream.

Offsets are stream offsets as Redis counts them: the first byte ever
produced is offset 1; ``master_repl_offset`` is the offset of the last byte
appended (the owner keeps it); the backlog holds bytes
``first_byte_offset .. first_byte_offset + histlen - 1``.
"""

from __future__ import annotations

MIN_SIZE = 16 * 1024


class Backlog:
    __slots__ = ("buf", "size", "idx", "histlen", "offset")

    def __init__(self, size: int, offset: int = 0):
        """A backlog whose next byte will be offset ``offset + 1``."""
        self.size = max(MIN_SIZE, size)
        self.buf = bytearray(self.size)
        self.idx = 0  # where the next byte goes
        self.histlen = 0
        self.offset = offset  # offset of the last byte appended

    @property
    def first_byte_offset(self) -> int:
        return self.offset - self.histlen + 1

    def append(self, data: bytes) -> None:
        n = len(data)
        self.offset += n
        size = self.size
        if n >= size:
            self.buf[:] = data[n - size:]
            self.idx = 0
            self.histlen = size
            return
        end = self.idx + n
        if end <= size:
            self.buf[self.idx:end] = data
        else:
            k = size - self.idx
            self.buf[self.idx:] = data[:k]
            self.buf[: n - k] = data[k:]
        self.idx = end % size
        self.histlen = min(size, self.histlen + n)

    def covers(self, off: int) -> bool:
        """Whether a replica asking for ``off`` (the next byte it wants) can
        be served from here: first_byte_offset <= off <= offset + 1."""
        return self.first_byte_offset <= off <= self.offset + 1

    def read_from(self, off: int) -> bytes:
        """Bytes ``off .. offset`` (``covers(off)`` must hold)."""
        n = self.offset - off + 1
        if n <= 0:
            return b""
        start = (self.idx - n) % self.size
        if start + n <= self.size:
            return bytes(self.buf[start:start + n])
        return bytes(self.buf[start:]) + bytes(self.buf[: n - (self.size - start)])

    def resize(self, size: int) -> None:
        """CONFIG SET repl-backlog-size: keep the newest history that fits."""
        size = max(MIN_SIZE, size)
        if size == self.size:
            return
        keep = min(self.histlen, size)
        data = self.read_from(self.offset - keep + 1) if keep else b""
        self.size = size
        self.buf = bytearray(size)
        self.idx = 0
        self.histlen = 0
        off = self.offset - keep
        self.offset = off
        self.append(data)
