"""LCS (Redis 7.0 semantics): the longest common subsequence of two strings,
with LEN, IDX, MINMATCHLEN and WITHMATCHLEN. The table and the walk back
through it are Redis's, so with several longest subsequences the same one is
returned, and the IDX ranges are emitted the same way."""

from __future__ import annotations

from frtrio.commands.table import command
from frtrio.commands.util import err, lookup_read, parse_int, syntax_error
from frtrio.protocol.reply import Map


@command("lcs")
def cmd_lcs(c, argv):
    oa = lookup_read(c, argv[1])
    ob = lookup_read(c, argv[2])
    if (oa is not None and type(oa) is not bytes) or (ob is not None and type(ob) is not bytes):
        raise err("ERR The specified keys must contain string values")
    a = oa or b""
    b = ob or b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    n = len(argv)
    j = 3
    while j < n:
        opt = argv[j].split(b"\0", 1)[0].lower()
        more = (n - 1) - j
        if opt == b"idx":
            getidx = True
        elif opt == b"len":
            getlen = True
        elif opt == b"withmatchlen":
            withmatchlen = True
        elif opt == b"minmatchlen" and more:
            minmatchlen = max(parse_int(argv[j + 1]), 0)
            j += 1
        else:
            raise syntax_error()
        j += 1
    if getlen and getidx:
        raise err("ERR If you want both the length and indexes, please just use IDX.")
    alen, blen = len(a), len(b)
    if (alen + 1) * (blen + 1) * 4 > c.server.config.get_int("proto-max-bulk-len"):
        raise err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    # rows[i][j] = LCS length of a[:i], b[:j]
    rows = [[0] * (blen + 1)]
    for i in range(1, alen + 1):
        prev = rows[-1]
        cur = [0] * (blen + 1)
        ai = a[i - 1]
        for jj in range(1, blen + 1):
            if ai == b[jj - 1]:
                cur[jj] = prev[jj - 1] + 1
            else:
                x = prev[jj]
                y = cur[jj - 1]
                cur[jj] = x if x > y else y
        rows.append(cur)
    total = rows[alen][blen]
    if getlen:
        return total
    idx = total
    result = bytearray(idx)
    matches = []
    a_start, a_end, b_start, b_end = alen, 0, 0, 0
    i, jj = alen, blen
    while i > 0 and jj > 0:
        emit = False
        if a[i - 1] == b[jj - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = jj - 1
            elif a_start == i and b_start == jj:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            jj -= 1
        else:
            if rows[i - 1][jj] > rows[i][jj - 1]:
                i -= 1
            else:
                jj -= 1
            if a_start != alen:
                emit = True
        if emit:
            mlen = (a_end - a_start + 1) & 0xFFFFFFFF
            if minmatchlen == 0 or mlen >= minmatchlen:
                if getidx:
                    e = [[a_start, a_end], [b_start, b_end]]
                    if withmatchlen:
                        e.append(mlen)
                    matches.append(e)
            a_start = alen
    if getidx:
        return Map([(b"matches", matches), (b"len", total)])
    return bytes(result)
