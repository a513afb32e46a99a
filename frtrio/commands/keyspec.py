"""Which arguments of a command are keys (pure): Redis 7.0's key
extraction, in one place, with its two entry points:

* :func:`routing_keys` is getKeysFromCommand: the command's getkeys
  procedure when it has one, else its legacy (first, last, step) range.
  Cluster routing and MIGRATE's in-flight guard use it (through
  ``Command.get_keys``).
* :func:`command_keys` is getKeysFromCommandWithSpecs: the key specs
  recorded in facts.json when they are complete and their flags fixed, else
  the same getkeys procedure. COMMAND GETKEYS / GETKEYSANDFLAGS use it.

The getkeys procedures below behave as Redis's (db.c) do.
"""

from __future__ import annotations

from frtrio.core.cnum import atoi as _atoi
from frtrio.core.cnum import cstr as _cstr
from frtrio.protocol.parser import string2ll


def _unwrap(v):
    if isinstance(v, dict):
        if "set" in v:
            return [_unwrap(x) for x in v["set"]]
        if "map" in v:
            return {k: _unwrap(x) for k, x in v["map"]}
        if "s" in v:
            return v["s"]
    if isinstance(v, list):
        return [_unwrap(x) for x in v]
    return v


_SPECS_CACHE: dict = {}


def _key_specs(cmd) -> list[dict]:
    specs = _SPECS_CACHE.get(cmd.fullname)
    if specs is None:
        specs = _SPECS_CACHE[cmd.fullname] = _unwrap(cmd.fact[8])
    return specs


def _keys_from_specs(cmd, argv):
    """getKeysUsingKeySpecs: [(pos, flags)], or None for an invalid spec."""
    argc = len(argv)
    out = []
    for spec in _key_specs(cmd):
        flags = spec["flags"]
        if "not_key" in flags:
            continue
        bs = spec["begin_search"]
        fk = spec["find_keys"]
        if bs["type"] == "index":
            first = bs["spec"]["index"]
        elif bs["type"] == "keyword":
            kw = bs["spec"]["keyword"].encode().lower()
            sf = bs["spec"]["startfrom"]
            start = sf if sf > 0 else argc + sf
            end = argc - 1 if sf > 0 else 1
            first = 0
            i = start
            while i != end:
                if i >= argc or i < 1:
                    break
                if _cstr(argv[i]).lower() == kw:
                    first = i + 1
                    break
                i = i + 1 if start <= end else i - 1
            if not first:
                continue
        else:
            return None
        if fk["type"] == "range":
            step = fk["spec"]["keystep"]
            lastkey = fk["spec"]["lastkey"]
            limit = fk["spec"]["limit"]
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif fk["type"] == "keynum":
            step = fk["spec"]["keystep"]
            idx = fk["spec"]["keynumidx"]
            if idx >= argc or first + idx >= argc:
                return None
            numkeys = string2ll(argv[first + idx])
            if numkeys is None or numkeys < 0:
                return None
            first += fk["spec"]["firstkey"]
            last = first + numkeys - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        i = first
        while i <= last:
            out.append((i, tuple(flags)))
            i += step
        if "incomplete" in flags:
            return None
    return out


def _generic_keys(store_ofs, count_ofs, first_ofs, argv):
    num = _atoi(argv[count_ofs])
    if num < 1 or num > len(argv) - first_ofs:
        return []
    out = [(first_ofs + i, ()) for i in range(num)]
    if store_ofs:
        out.append((store_ofs, ()))
    return out


def _sort_keys(argv):
    out = [(1, ("RO", "access"))]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    n = len(argv)
    while i < n:
        a = _cstr(argv[i]).lower()
        if a in skip:
            i += skip[a]
        elif a == b"store" and i + 1 < n:
            store = i + 1
        i += 1
    if store is not None:
        out.append((store, ("OW", "update")))
    return out


def _migrate_keys(argv):
    first, num = 3, 1
    n = len(argv)
    if n > 6:
        skip = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}
        i = 6
        while i < n:
            a = _cstr(argv[i]).lower()
            if a == b"keys":
                if argv[3]:
                    return []
                first = i + 1
                num = n - first
                break
            i += skip.get(a, 0) + 1
    return [(first + i, ("RW", "access", "delete")) for i in range(num)]


def _xread_keys(argv):
    streams = -1
    n = len(argv)
    i = 1
    while i < n:
        a = _cstr(argv[i]).lower()
        if a in (b"block", b"count"):
            i += 1
        elif a == b"group":
            i += 2
        elif a == b"streams":
            streams = i
            break
        elif a != b"noack":
            break  # a syntax error
        i += 1
    num = n - streams - 1 if streams >= 0 else 0
    if streams < 0 or num == 0 or num % 2:
        return []
    return [(i, ()) for i in range(streams + 1, n - num // 2)]


def _georadius_keys(argv):
    stored = -1
    n = len(argv)
    i = 5
    while i < n:
        if _cstr(argv[i]).lower() in (b"store", b"storedist") and i + 1 < n:
            stored = i + 1  # the last one counts, as in GEORADIUS itself
            i += 1
        i += 1
    return [(1, ())] if stored < 0 else [(1, ()), (stored, ())]


def _set_keys(argv):
    for a in argv[3:]:
        if _cstr(a).lower() == b"get":
            return [(1, ("RW", "access", "update"))]
    return [(1, ("OW", "update"))]


_set_keys.positions = (1,)  # always argv[1]: only the key's flags vary (routing's fast path)


def _bitfield_keys(argv):
    readonly = True
    i = 2
    n = len(argv)
    while i < n:
        rem = n - i - 1
        a = _cstr(argv[i]).lower()
        if a == b"get" and rem >= 2:
            i += 2
        elif a in (b"set", b"incrby") and rem >= 3:
            readonly = False
            break
        elif a == b"overflow" and rem >= 1:
            i += 1
        else:
            readonly = False
            break
        i += 1
    return [(1, ("RO", "access") if readonly else ("RW", "access", "update"))]


_GETKEYS_PROCS = {
    "set": _set_keys,
    "bitfield": _bitfield_keys,
    "sort": _sort_keys,
    "sort_ro": lambda argv: [(1, ("RO", "access"))],
    "migrate": _migrate_keys,
    "xread": _xread_keys,
    "xreadgroup": _xread_keys,
    "georadius": _georadius_keys,
    "georadiusbymember": _georadius_keys,
}
for _name, _ofs in (
    ("zunion", (0, 1, 2)), ("zinter", (0, 1, 2)), ("zdiff", (0, 1, 2)),
    ("zunionstore", (1, 2, 3)), ("zinterstore", (1, 2, 3)), ("zdiffstore", (1, 2, 3)),
    ("eval", (0, 2, 3)), ("evalsha", (0, 2, 3)), ("eval_ro", (0, 2, 3)),
    ("evalsha_ro", (0, 2, 3)), ("fcall", (0, 2, 3)), ("fcall_ro", (0, 2, 3)),
    ("lmpop", (0, 1, 2)), ("blmpop", (0, 2, 3)), ("zmpop", (0, 1, 2)),
    ("bzmpop", (0, 2, 3)), ("sintercard", (0, 1, 2)), ("zintercard", (0, 1, 2)),
):
    _GETKEYS_PROCS[_name] = (lambda o: lambda argv: _generic_keys(o[0], o[1], o[2], argv))(_ofs)


def command_has_keys(cmd) -> bool:
    """Redis's doesCommandHaveKeys."""
    if cmd.fullname in _GETKEYS_PROCS:
        return True
    return any("not_key" not in s["flags"] for s in _key_specs(cmd))


def command_keys(cmd, argv):
    """Redis's getKeysFromCommandWithSpecs: [(position, flags)]."""
    specs = _key_specs(cmd)
    has_keyspec = any("not_key" not in s["flags"] for s in specs)
    has_varflags = any("variable_flags" in s["flags"] for s in specs)
    if has_keyspec and not has_varflags:
        r = _keys_from_specs(cmd, argv)
        if r is not None:
            return r
    proc = _GETKEYS_PROCS.get(cmd.fullname)
    if proc is not None:
        return proc(argv)
    return []


def getkeys_proc(fullname: str):
    """The command's getkeys procedure (argv -> [(position, flags)]), or None."""
    return _GETKEYS_PROCS.get(fullname)


def legacy_range_keys(cmd, argv) -> list[int]:
    """getKeysUsingLegacyRangeSpec: positions first..last by step; none when
    the range runs past argv (the command then reports its own error)."""
    first = cmd.first
    if first == 0:
        return []
    last = cmd.last
    if last < 0:
        last = len(argv) + last
    keys = list(range(first, last + 1, cmd.step or 1))
    if keys and keys[-1] >= len(argv):
        return []
    return keys


def routing_keys(cmd, argv) -> list[int]:
    """getKeysFromCommand: key positions for routing."""
    proc = _GETKEYS_PROCS.get(cmd.fullname)
    if proc is not None:
        return [pos for pos, _ in proc(argv)]
    return legacy_range_keys(cmd, argv)
