"""Redis's pqsort (pure): Bentley & McIlroy's quicksort that only recurses
into the parts overlapping a wanted index range. SORT ... BY ... LIMIT and
GEO searches with COUNT use it, and it is not stable, so which of several
equal elements come out first is whatever this exact algorithm gives: it is
ported step for step (element indices instead of byte pointers)."""

from __future__ import annotations


def pqsort(v: list, cmp, lrange: int, rrange: int) -> None:
    """Sort ``v`` in place far enough that positions lrange..rrange hold
    what a full sort would put there (as Redis's pqsort)."""

    def med3(a, b, c):
        if cmp(v[a], v[b]) < 0:
            if cmp(v[b], v[c]) < 0:
                return b
            return c if cmp(v[a], v[c]) < 0 else a
        if cmp(v[b], v[c]) > 0:
            return b
        return a if cmp(v[a], v[c]) < 0 else c

    def swap(i, j):
        v[i], v[j] = v[j], v[i]

    def vecswap(i, j, n):
        for k in range(n):
            v[i + k], v[j + k] = v[j + k], v[i + k]

    def outside(lo, hi):
        return (lrange < lo and rrange < lo) or (lrange > hi and rrange > hi)

    def run(a, n):
        while True:
            if n < 7:
                for pm in range(a + 1, a + n):
                    pl = pm
                    while pl > a and cmp(v[pl - 1], v[pl]) > 0:
                        swap(pl, pl - 1)
                        pl -= 1
                return
            pm = a + n // 2
            if n > 7:
                pl = a
                pn = a + n - 1
                if n > 40:
                    d = n // 8
                    pl = med3(pl, pl + d, pl + 2 * d)
                    pm = med3(pm - d, pm, pm + d)
                    pn = med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(a, pm)
            pa = pb = a + 1
            pc = pd = a + n - 1
            while True:
                while pb <= pc:
                    r = cmp(v[pb], v[a])
                    if r > 0:
                        break
                    if r == 0:
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc:
                    r = cmp(v[pc], v[a])
                    if r < 0:
                        break
                    if r == 0:
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                pb += 1
                pc -= 1
            pn = a + n
            r = min(pa - a, pb - pa)
            vecswap(a, pb - r, r)
            r = min(pd - pc, pn - pd - 1)
            vecswap(pb, pn - r, r)
            r = pb - pa
            if r > 1 and not outside(a, a + r - 1):
                run(a, r)
            r = pd - pc
            if r > 1:
                a = pn - r
                n = r
                if not outside(a, a + r - 1):
                    continue
            return

    run(0, len(v))
