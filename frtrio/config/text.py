"""How configuration text is spelled (pure): parameter strings to bytes
(surrogateescape, as read from the file) and Redis's sdscatrepr quoting."""

from __future__ import annotations

def repr_bytes(b: bytes) -> str:
    """Redis's sdscatrepr: a double-quoted, escaped rendering."""
    out = ['"']
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif c == 0x22:
            out.append('\\"')
        elif c == 10:
            out.append("\\n")
        elif c == 13:
            out.append("\\r")
        elif c == 9:
            out.append("\\t")
        elif c == 7:
            out.append("\\a")
        elif c == 8:
            out.append("\\b")
        elif 32 <= c <= 126:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    out.append('"')
    return "".join(out)


def to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("latin-1", "replace")


def repr_str(s: str) -> str:
    return repr_bytes(to_bytes(s))
