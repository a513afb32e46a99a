"""The other measurements of ``scripts/bench``: a 3-master cluster under
``redis-benchmark --cluster``, the idle CPU of local clusters, and memory
per key or element. Each runs redis-server and frtrio-server side by side
in one run and reports the ratio frtrio/redis-server (see ``scripts/bench
--help``). Every server is started on a free loopback port and stopped by
its pid at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

CLI = shutil.which("redis-cli") or "redis-cli"


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process; nanosecond precision from schedstat where
    the kernel has it (idle servers use a few ticks a minute)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _cli(port: int, *args: str, timeout: float = 30) -> str:
    return subprocess.run([CLI, "-p", str(port), *args], capture_output=True, text=True,
                          timeout=timeout).stdout


def cluster_port() -> int:
    """A free client port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + 10000 > 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def start_cluster(Server, kind: str, workdir: str, masters: int, extra: list[str]) -> list:
    """``masters`` cluster-enabled nodes of one kind, joined by
    ``redis-cli --cluster create``, cluster_state:ok on every node."""
    nodes = []
    for i in range(masters):
        s = Server(kind, os.path.join(workdir, f"{kind}-{i}"), ["--cluster-enabled", "yes"] + extra)
        s.port = cluster_port()
        nodes.append(s)
        s.start()
    for s in nodes:
        s.wait_ready()
    subprocess.run([CLI, "--cluster", "create", *[f"127.0.0.1:{s.port}" for s in nodes],
                    "--cluster-yes"], check=True, capture_output=True, timeout=300)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all("cluster_state:ok" in _cli(s.port, "CLUSTER", "INFO") for s in nodes):
            return nodes
        time.sleep(0.2)
    raise RuntimeError(f"{kind} cluster of {masters} did not reach cluster_state:ok")


# --- 3 masters under redis-benchmark --cluster ------------------------------------


def cluster_benchmark(Server, a, workdir: str, kinds: list[str], tests, depths) -> list[str]:
    """redis-benchmark --cluster against an N-master cluster of each kind.
    Columns: requests/s, the ratio, and the CPU the cluster's nodes spent
    per request (summed over the nodes)."""
    clusters = {k: start_cluster(Server, k, workdir, a.cluster_masters, []) for k in kinds}
    res: dict = {}
    for rnd in range(a.rounds):
        order = kinds if rnd % 2 == 0 else kinds[::-1]
        for p in depths:
            for t in tests:
                for k in order:
                    nodes = clusters[k]
                    c0 = sum(_proc_cpu(s.proc.pid) for s in nodes)
                    t0 = time.monotonic()
                    r = subprocess.run(["redis-benchmark", "--cluster", "-p", str(nodes[0].port),
                                        "-t", t, "-n", str(a.requests), "-c", str(a.clients),
                                        "-P", str(p), "--csv"], capture_output=True, text=True,
                                       timeout=a.timeout)
                    wall = time.monotonic() - t0
                    cpu = sum(_proc_cpu(s.proc.pid) for s in nodes) - c0
                    rate = None
                    for line in r.stdout.splitlines():
                        cells = [c.strip('"') for c in line.split(",")]
                        if len(cells) > 1 and cells[0].upper().startswith(t.upper()):
                            try:
                                rate = float(cells[1])
                            except ValueError:
                                pass
                    if rate is None:
                        raise RuntimeError(f"redis-benchmark --cluster {t} on {k}: {r.stdout[-300:]}"
                                           f"{r.stderr[-300:]}")
                    res.setdefault((t, p, k), []).append((rate, cpu / (rate * wall) * 1e6))
                    print(f"  round {rnd + 1} {t:>6} P={p:<3} {k:>6}: {rate:>12,.0f} req/s "
                          f"cluster cpu {cpu / wall:4.0%}", flush=True)
    head = ["test", "P"] + kinds + (["frtrio/redis"] if len(kinds) == 2 else []) \
        + [f"us/req {k}" for k in kinds]
    rows = []
    for p in depths:
        for t in tests:
            rates = {k: statistics.median(x[0] for x in res[(t, p, k)]) for k in kinds}
            us = {k: statistics.median(x[1] for x in res[(t, p, k)]) for k in kinds}
            row = [t, str(p)] + [f"{rates[k]:,.0f}" for k in kinds]
            if len(kinds) == 2:
                row.append(f"{rates['frtrio'] / rates['redis']:.2f}")
            row += [f"{us[k]:.2f}" for k in kinds]
            rows.append(row)
    return [f"# redis-benchmark --cluster -t TEST -n {a.requests} -c {a.clients} -P P against "
            f"{a.cluster_masters}-master clusters; {a.rounds} round(s), medians; requests/s; "
            f"us/req = CPU of all the cluster's nodes per request"] + table(head, rows)


# --- instructions per request -----------------------------------------------------------


def _instructions(Server, kind: str, workdir: str, extra: list[str], cluster: bool, test: str,
                  n: int, clients: int, pipeline: int, timeout: float) -> int:
    """Instructions a server process executes in all, from start to stop,
    under valgrind's cachegrind, having served ``redis-benchmark -t test
    -n n`` (``n`` 0: none). Repeatable where seconds are not."""
    class Counted(Server):
        def command(self):
            return ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                    "--cachegrind-out-file=/dev/null"] + super().command()

    srv = Counted(kind, os.path.join(workdir, "%s-%s-%d-%d" % (kind, test, pipeline, n)),
                  extra + (["--cluster-enabled", "yes"] if cluster and kind != "bare" else []))
    if cluster:
        srv.port = cluster_port()
    srv.start()
    try:
        srv.wait_ready(timeout=180)
        if cluster and kind != "bare":
            _cli(srv.port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            deadline = time.monotonic() + 120
            while "cluster_state:ok" not in _cli(srv.port, "CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} under valgrind did not reach cluster_state:ok")
                time.sleep(0.2)
        if n:
            r = subprocess.run(["redis-benchmark", "-p", str(srv.port), "-t", test, "-n", str(n),
                                "-c", str(clients), "-P", str(pipeline), "-q"],
                               capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError(f"redis-benchmark {test} on {kind}: {r.stderr[-300:]}")
    finally:
        p = srv.proc
        p.send_signal(15)  # SIGTERM: valgrind writes its count as the process ends
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    with open(os.path.join(srv.dir, "stderr.log"), errors="replace") as f:
        for line in f:
            if "I   refs:" in line:  # (valgrind's summary: "==pid== I   refs:  1,234")
                return int(line.split(":", 1)[1].strip().replace(",", ""))
    raise RuntimeError(f"no instruction count from valgrind for {kind}; see {srv.dir}")


def instructions(Server, a, workdir: str, kinds: list[str], tests, depths) -> list[str]:
    """Instructions per request: each server runs twice under cachegrind,
    serving n/3 and then n requests (everything else equal); the
    difference divided by the difference in requests leaves out start-up
    and shutdown. Columns: per server, and frtrio/bare and frtrio/redis as
    ratios of instructions per request."""
    if not shutil.which("valgrind"):
        raise RuntimeError("valgrind is not installed")
    n2 = a.requests
    n1 = n2 // 3
    res = {}
    for p in depths:
        for t in tests:
            for k in kinds:
                extra = a.frtrio_args.split() if k == "frtrio" else []
                i1 = _instructions(Server, k, workdir, extra, a.cluster, t, n1, a.clients, p,
                                   a.timeout)
                i2 = _instructions(Server, k, workdir, extra, a.cluster, t, n2, a.clients, p,
                                   a.timeout)
                res[(t, p, k)] = (i2 - i1) / (n2 - n1)
                print(f"  {t:>6} P={p:<3} {k:>6}: {res[(t, p, k)]:>10,.0f} instructions/request",
                      flush=True)
    ratios = [(x, y) for x, y in (("frtrio", "bare"), ("frtrio", "redis")) if x in kinds and y in kinds]
    head = ["test", "P"] + kinds + [f"{x}/{y}" for x, y in ratios]
    rows = []
    for p in depths:
        for t in tests:
            row = [t, str(p)] + [f"{res[(t, p, k)]:,.0f}" for k in kinds]
            row += [f"{res[(t, p, x)] / res[(t, p, y)]:.2f}" for x, y in ratios]
            rows.append(row)
    mode = "cluster-enabled nodes owning every slot" if a.cluster else "standalone"
    return [f"# instructions per request (valgrind cachegrind), {mode}: redis-benchmark -t TEST "
            f"-c {a.clients} -P P, -n {n2} minus -n {n1}"] + table(head, rows)


# --- idle CPU -------------------------------------------------------------------------


def idle(Server, a, workdir: str, kinds: list[str]) -> list[str]:
    """CPU seconds an idle local cluster uses over ``--idle-seconds``, for
    each size in ``--idle`` (masters, no replicas) and each kind."""
    sizes = [int(x) for x in a.idle.split(",") if x.strip()]
    rows = []
    for n in sizes:
        per = {}
        for k in kinds:
            nodes = start_cluster(Server, k, os.path.join(workdir, f"idle{n}"), n, [])
            try:
                time.sleep(3)  # the creation's gossip settles
                c0 = [_proc_cpu(s.proc.pid) for s in nodes]
                t0 = time.monotonic()
                time.sleep(a.idle_seconds)
                wall = time.monotonic() - t0
                c1 = [_proc_cpu(s.proc.pid) for s in nodes]
            finally:
                for s in nodes:
                    s.stop()
            tot = sum(c1) - sum(c0)
            per[k] = (tot, tot / wall * 60 / n, max(b - x for b, x in zip(c1, c0)) / wall * 60)
            print(f"  {n:>3} nodes {k:>6}: {tot:.3f} CPU s in {wall:.0f} s", flush=True)
        row = [str(n)] + [f"{per[k][1]:.3f}" for k in kinds] + [f"{per[k][2]:.3f}" for k in kinds]
        if len(kinds) == 2:
            row.append(f"{per['frtrio'][1] / per['redis'][1]:.1f}")
        row += [f"{per[k][0] / a.idle_seconds:.1%}" for k in kinds]
        rows.append(row)
    head = ["nodes"] + [f"cpu s/min/node {k}" for k in kinds] + [f"busiest {k}" for k in kinds] \
        + (["frtrio/redis"] if len(kinds) == 2 else []) + [f"cores {k}" for k in kinds]
    return [f"# idle clusters of N masters (no replicas, no clients), {a.idle_seconds:.0f} s each "
            "after 3 s to settle; CPU seconds per minute per node (mean and busiest node); "
            "'cores' = the whole cluster's share of one core"] + table(head, rows)


# --- memory ---------------------------------------------------------------------------

# (name, how many keys, elements per key, the commands that build key i)
BIG_MIN = 100000


def _mem_cases(count: int):
    def s(i):
        return [[b"SET", b"key:%010d" % i, b"value:%06d" % i]]

    def agg(cmd, n, pair):
        def build(i):
            args = [cmd, b"agg:%010d" % i]
            for j in range(n):
                args += ([b"%d" % j, b"member:%08d" % j] if pair == "score"
                         else [b"field:%08d" % j, b"v%06d" % j] if pair == "field"
                         else [b"member:%08d" % j])
            return [args]
        return build

    def big(cmd, pair):
        def build(i):  # element i of one big aggregate
            m = b"member:%010d" % i
            if pair == "score":
                return [[cmd, b"big", b"%d" % i, m]]
            if pair == "field":
                return [[cmd, b"big", m, b"v%06d" % (i % 1000000)]]
            return [[cmd, b"big", m]]
        return build

    small = max(1, count // 10)
    # big aggregates: at least 100000 elements, or a packed list's second
    # batch (about 2 MB) fits in the allocator space the first one freed
    big_n = max(count, BIG_MIN)
    return [
        ("string (per key)", count, 1, s),
        ("hash of 10 small fields (per key)", small, 10, agg(b"HSET", 10, "field")),
        ("set of 10 members (per key)", small, 10, agg(b"SADD", 10, None)),
        ("zset of 10 members (per key)", small, 10, agg(b"ZADD", 10, "score")),
        ("list of 10 elements (per key)", small, 10, agg(b"RPUSH", 10, None)),
        ("big hash (per field)", big_n, 1, big(b"HSET", "field")),
        ("big set (per member)", big_n, 1, big(b"SADD", None)),
        ("big zset (per member)", big_n, 1, big(b"ZADD", "score")),
        ("big list (per element)", big_n, 1, big(b"RPUSH", None)),
    ]


def _resp(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for x in args:
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)


def _load(port: int, n: int, build, start: int = 0) -> None:
    """Send build(start..start+n-1) pipelined in chunks and read every reply."""
    end = start + n
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        i = start
        while i < end:
            chunk = []
            for j in range(i, min(end, i + 1000)):
                chunk += build(j)
            sock.sendall(b"".join(_resp(c) for c in chunk))
            want = len(chunk)
            buf = b""
            while buf.count(b"\r\n") < want:  # every reply here is one line
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError("server closed the connection")
                buf += data
            if b"-" in buf[:1] or b"\r\n-" in buf:
                raise RuntimeError(f"error reply while loading: {buf[:200]!r}")
            i += 1000


def memory(Server, a, workdir: str, kinds: list[str]) -> list[str]:
    """Resident memory per key (or per element of one big aggregate): what
    a second batch of ``--memory`` keys adds to a fresh server that already
    holds a first batch of as many.

    Why two batches: a fresh frtrio process holds about 2 MB of free
    allocator space left over by its start (imports, tables), which the
    first keys fill without growing the resident size. Measured from the
    start, 2000 small aggregates looked about half their real size (a
    10-member zset: 1665 bytes against 2590 allocated, by tracemalloc in
    process). The first batch uses that slack up; the second one is
    measured."""
    rows = []
    for name, n, per, build in _mem_cases(a.memory):
        vals = {}
        for k in kinds:
            s = Server(k, os.path.join(workdir, "mem-" + k), [])
            s.start()
            try:
                s.wait_ready()
                _cli(s.port, "SET", "warmup", "x")
                _load(s.port, n, build)
                time.sleep(0.5)
                r0 = _rss_bytes(s.proc.pid)
                _load(s.port, n, build, start=n)
                time.sleep(0.5)
                r1 = _rss_bytes(s.proc.pid)
            finally:
                s.stop()
            vals[k] = (r1 - r0) / n
        row = [name] + [f"{vals[k]:.1f}" for k in kinds]
        if len(kinds) == 2:
            row.append(f"{vals['frtrio'] / vals['redis']:.2f}")
        rows.append(row)
        print("  " + "  ".join(row), flush=True)
    head = ["value"] + [f"bytes {k}" for k in kinds] + (["frtrio/redis"] if len(kinds) == 2 else [])
    return [f"# resident memory (VmRSS) grown per key, or per element of one aggregate, by a second "
            f"batch of {a.memory} strings / {max(1, a.memory // 10)} small aggregates / "
            f"{max(a.memory, BIG_MIN)} elements of one aggregate, loaded after a first batch of as many; "
            "fresh server each"] + table(head, rows)


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    return (["  ".join(h.rjust(w) for h, w in zip(head, widths)),
             "  ".join("-" * w for w in widths)]
            + ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows])


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run scripts/bench --help")
