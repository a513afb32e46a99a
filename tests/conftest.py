import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support import HAVE_REDIS, ServerProc  # noqa: E402

requires_redis = pytest.mark.skipif(
    not HAVE_REDIS and not os.environ.get("CI"),
    reason="redis-server is not installed (CI installs it; there this test runs)",
)


@pytest.fixture(scope="session")
def frtrio_proc():
    p = ServerProc("frtrio").start()
    yield p
    p.cleanup()


@pytest.fixture(scope="session")
def redis_proc():
    if not HAVE_REDIS:
        if os.environ.get("CI"):
            pytest.fail("redis-server must be installed in CI")
        pytest.skip("redis-server not installed")
    p = ServerProc("redis").start()
    yield p
    p.cleanup()


class Diff:
    """Send the same commands to frtrio and redis-server; compare reply bytes."""

    def __init__(self, f, r):
        self.f = f.conn()
        self.r = r.conn()
        self.saved_config = {}  # name -> (frtrio raw value, redis raw value)
        for c in (self.f, self.r):
            c.cmd("FLUSHALL")

    def _remember_config(self, args):
        """Before a CONFIG SET, remember the old values (restored at close)
        so one test's settings never leak into the next."""
        if len(args) >= 4 and str(args[0]).upper() == "CONFIG" and str(args[1]).upper() == "SET":
            names = args[2::2]
            for n in names:
                n = n if isinstance(n, str) else n.decode("latin-1")
                key = n.lower()
                if key in self.saved_config:
                    continue
                vals = []
                for c in (self.f, self.r):
                    raw = c.cmd("CONFIG", "GET", key)
                    parts = raw.split(b"\r\n")
                    vals.append(parts[-2] if raw.startswith(b"*2") else None)
                self.saved_config[key] = tuple(vals)

    def __call__(self, *args):
        self._remember_config(args)
        a = self.f.cmd(*args)
        b = self.r.cmd(*args)
        assert a == b, f"{args!r}: frtrio {a!r} != redis {b!r}"
        return a

    def both(self, *args):
        """Run on both, return (frtrio, redis) without asserting."""
        self._remember_config(args)
        return self.f.cmd(*args), self.r.cmd(*args)

    def close(self):
        for name, (fv, rv) in self.saved_config.items():
            try:
                if fv is not None:
                    self.f.cmd("CONFIG", "SET", name, fv)
                if rv is not None:
                    self.r.cmd("CONFIG", "SET", name, rv)
            except (OSError, ConnectionError):
                pass
        self.f.close()
        self.r.close()


@pytest.fixture
def diff(frtrio_proc, redis_proc):
    d = Diff(frtrio_proc, redis_proc)
    yield d
    d.close()


# --- never a silent failure ----------------------------------------------------------
# An internal error (a bug that a guard turned into "-ERR internal error ..." or a
# closed connection) fails the test that caused it: in-process engines count it in
# frtrio.internal_errors, real frtrio processes log it and ServerProc.stop reports it.


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "internal_errors_expected: the test provokes internal errors on purpose")


@pytest.fixture(autouse=True)
def _no_internal_errors(request):
    import support
    from frtrio import internal_errors

    before = internal_errors.total
    nrep = len(support.INTERNAL_ERROR_REPORTS)
    yield
    if request.node.get_closest_marker("internal_errors_expected"):
        del support.INTERNAL_ERROR_REPORTS[nrep:]
        return
    new = internal_errors.total - before
    reports = support.INTERNAL_ERROR_REPORTS[nrep:]
    if new or reports:
        pytest.fail("internal errors during this test: %d in-process, %d in server logs\n%s"
                    % (new, len(reports), "\n\n".join(reports)[:4000]), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    import support

    if support.INTERNAL_ERROR_REPORTS:
        sys.stderr.write("\nfrtrio internal errors in server logs:\n%s\n"
                         % "\n\n".join(support.INTERNAL_ERROR_REPORTS)[:4000])
        session.exitstatus = 1
