"""SORT and SORT_RO (Redis 7.0 semantics).

The elements of a list, set or sorted set are sorted numerically (each parsed
as C ``strtod`` would: a value that does not parse whole is an error), or with
ALPHA by their bytes, optionally by the values of other keys named by a BY
pattern (``weight_*`` or ``hash_*->field``), and GET patterns fetch other
keys' values for the output. In cluster mode BY and GET patterns are refused
as redis-server 7.0 refuses them (a constant BY, which means "do not sort",
is allowed). STORE writes the result as a list.

Ties: numeric ties are broken by the element's bytes, as Redis does; the
remaining ties (ALPHA with BY) keep the input order, which for sets is the
set's iteration order and so can differ from Redis's hash-table order.
"""

from __future__ import annotations

import math
import re

from frtrio.commands.util import ev
from frtrio.core.notify import GENERIC, LIST
from frtrio.commands.pqsort import pqsort
from frtrio.commands.strings import modified
from frtrio.commands.table import command
from frtrio.commands.util import err, lookup_read, parse_int, syntax_error, wrongtype
from frtrio.store.db import ListValue, SetValue
from frtrio.store.zset import ZSetValue


def _cstr(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _word(a: bytes) -> bytes:
    return _cstr(a).lower()


def lookup_by_pattern(c, pattern: bytes, subst: bytes):
    """Redis's lookupKeyByPattern: the string (or hash field) the pattern
    names for this element, or None."""
    if pattern[:1] == b"#" and (len(pattern) == 1 or pattern[1] == 0):
        return subst
    cpat = _cstr(pattern)
    star = cpat.find(b"*")
    if star < 0:
        return None
    arrow = cpat.find(b"->", star + 1)
    field = None
    fieldlen = 0
    if arrow >= 0 and arrow + 2 < len(cpat):
        field = pattern[arrow + 2:]
        fieldlen = len(field)
    postfixlen = len(pattern) - (star + 1) - (fieldlen + 2 if fieldlen else 0)
    key = pattern[:star] + subst + pattern[star + 1:star + 1 + postfixlen]
    o = lookup_read(c, key)
    if o is None:
        return None
    if field is not None:
        if getattr(o, "type_name", None) != b"hash":
            return None
        return o.get(field)
    if type(o) is not bytes:
        return None
    return o


_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:inf(?:inity)?|nan(?:\([0-9a-z_]*\))?"
    rb"|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))",
    re.IGNORECASE,
)
_NONZERO = re.compile(rb"[1-9a-f]", re.IGNORECASE)


def _strtod_score(b: bytes):
    """(score, ok) as Redis's SORT computes it with strtod."""
    s = _cstr(b)
    if not s:
        return 0.0, True
    if len(s) <= 15 and (s.isdigit() or (s[:1] == b"-" and s[1:].isdigit())):
        return float(int(s)), True  # (exact: at most 15 digits)
    m = _STRTOD.match(s)
    if m is None or m.end() != len(s):
        return 0.0, False
    t = m.group(1)
    low = t.lower().lstrip(b"+-")
    if low.startswith(b"nan"):
        return math.nan, False
    neg = t[:1] == b"-"
    if low.startswith(b"inf"):
        return (-math.inf if neg else math.inf), True
    txt = t.decode("ascii")
    if low.startswith(b"0x"):
        try:
            v = float.fromhex(txt)
        except OverflowError:
            return 0.0, False
        mant = low[2:].split(b"p")[0]
    else:
        v = float(txt)
        mant = low.split(b"e")[0]
    if math.isinf(v):
        return v, False
    if v == 0.0 and _NONZERO.search(mant.replace(b"x", b"")):
        return v, False
    if v != 0.0 and abs(v) < 2.2250738585072014e-308:
        return v, False  # glibc reports a subnormal result as ERANGE
    return v, True


def _full_key_access(c, argv) -> bool:
    """BY/GET patterns read any key: the user needs a selector that allows
    this command with read access to every key (Redis's
    ACLUserCheckCmdWithUnrestrictedKeyAccess)."""
    u = c.auser
    if u.allow_all:
        return True
    from frtrio.core.acl import READ

    cmd = c.server.commands.get(argv[0].lower())
    return cmd is not None and u.unrestricted_keys(cmd, argv, READ)


def _sort_generic(c, argv, readonly: bool):
    desc = alpha = False
    limit_start, limit_count = 0, -1
    dontsort = False
    sortby = None
    storekey = None
    gets = []
    cluster = c.server.cluster is not None
    n = len(argv)
    j = 2
    while j < n:
        left = n - j - 1
        a = _word(argv[j])
        if a == b"asc":
            desc = False
        elif a == b"desc":
            desc = True
        elif a == b"alpha":
            alpha = True
        elif a == b"limit" and left >= 2:
            limit_start = parse_int(argv[j + 1])
            limit_count = parse_int(argv[j + 2])
            j += 2
        elif not readonly and a == b"store" and left >= 1:
            storekey = argv[j + 1]
            j += 1
        elif a == b"by" and left >= 1:
            sortby = argv[j + 1]
            if b"*" not in _cstr(sortby):
                dontsort = True
            elif cluster:
                raise err("ERR BY option of SORT denied in Cluster mode.")
            elif not _full_key_access(c, argv):
                raise err("ERR BY option of SORT denied due to insufficient ACL permissions.")
            j += 1
        elif a == b"get" and left >= 1:
            if cluster:
                raise err("ERR GET option of SORT denied in Cluster mode.")
            if not _full_key_access(c, argv):
                raise err("ERR GET option of SORT denied due to insufficient ACL permissions.")
            gets.append(argv[j + 1])
            j += 1
        else:
            raise syntax_error()
        j += 1
    v = lookup_read(c, argv[1])
    if v is not None and type(v) not in (ListValue, SetValue, ZSetValue):
        raise wrongtype()
    if v is None:
        v = ListValue()
    is_list = type(v) is ListValue
    is_set = type(v) is SetValue
    is_zset = type(v) is ZSetValue
    if dontsort and is_set and (storekey is not None or getattr(c, "in_script", False)):
        dontsort = False
        alpha = True
        sortby = None
    vlen = len(v)
    start = min(max(limit_start, 0), vlen)
    limit_count = min(max(limit_count, -1), vlen)
    end = vlen - 1 if limit_count < 0 else start + limit_count - 1
    if start >= vlen:
        start = vlen - 1
        end = vlen - 2
    if end >= vlen:
        end = vlen - 1
    if (is_zset or is_list) and dontsort and (start != 0 or end != vlen - 1):
        vlen = end - start + 1
    if is_list and dontsort:
        items = []
        if end >= start:
            if desc:
                idx = len(v) - start - 1
                items = [v[i] for i in range(idx, max(idx - vlen, -1), -1)]
            else:
                items = [v[i] for i in range(start, min(start + vlen, len(v)))]
            end -= start
            start = 0
    elif is_list:
        items = list(v)
    elif is_set:
        items = list(v)
    elif is_zset and dontsort:
        if desc:
            sl = list(v.islice(max(len(v) - start - vlen, 0), len(v) - start, reverse=True))
        else:
            sl = list(v.islice(start, start + vlen))
        items = [m for _s, m in sl]
        end -= start
        start = 0
    else:
        items = list(v)
    conv_error = False
    if not dontsort:
        keyed = []
        for e in items:
            if sortby is not None:
                byval = lookup_by_pattern(c, sortby, e)
                if byval is None:
                    keyed.append((e, 0.0, None))
                    continue
            else:
                byval = e
            if alpha:
                keyed.append((e, 0.0, byval if sortby is not None else None))
            else:
                score, ok = _strtod_score(byval)
                if not ok:
                    conv_error = True
                keyed.append((e, score, None))
        bypattern = sortby is not None
        store = storekey is not None
        # sort keys equivalent to Redis's sortCompare (numeric: score, then
        # the element's bytes; ALPHA: bytes, or strcoll's NUL-terminated view
        # when not storing; a missing BY value sorts first); DESC is the
        # reversed comparison of a stable sort, as reverse=True is
        if not alpha:
            def key(x):
                return (x[1], x[0])
        elif bypattern:
            def key(x):
                if x[2] is None:
                    return (0, b"")
                return (1, x[2] if store else _cstr(x[2]))
        elif store:
            def key(x):
                return x[0]
        else:
            def key(x):
                return _cstr(x[0])

        if conv_error:
            pass
        elif sortby is not None and (start != 0 or end != len(keyed) - 1):
            # Redis sorts partially here (pqsort, not stable)
            def cmp(x, y, key=key):
                kx, ky = key(x), key(y)
                r = (kx > ky) - (kx < ky)
                return -r if desc else r

            pqsort(keyed, cmp, start, end)
        else:
            keyed.sort(key=key, reverse=desc)
        items = [k[0] for k in keyed]
    if conv_error:
        raise err("ERR One or more scores can't be converted into double")
    count = end - start + 1
    sel = items[start:end + 1] if count > 0 else []
    if storekey is None:
        out = []
        for e in sel:
            if not gets:
                out.append(e)
            for g in gets:
                out.append(lookup_by_pattern(c, g, e))
        return out
    res = ListValue()
    for e in sel:
        if not gets:
            res.append(e)
        for g in gets:
            val = lookup_by_pattern(c, g, e)
            res.append(b"" if val is None else val)
    outputlen = len(gets) * len(sel) if gets else len(sel)
    db = c.db
    if outputlen:
        db.set(storekey, res)
        modified(c, storekey, outputlen)
        ev(c, LIST, b"sortstore", storekey)
        c.server.signal_key_ready(db, storekey)
    elif db.lookup(storekey, c.server.now_ms) is not None:
        db.delete(storekey)
        modified(c, storekey)
        ev(c, GENERIC, b"del", storekey)
    return outputlen


@command("sort")
def cmd_sort(c, argv):
    return _sort_generic(c, argv, False)


@command("sort_ro")
def cmd_sort_ro(c, argv):
    return _sort_generic(c, argv, True)
