import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import support  # noqa: E402
from support import HAVE_REDIS, ServerProc  # noqa: E402

from frtrio.core import engine as _engine  # noqa: E402


@pytest.fixture(autouse=True)
def _no_internal_errors(request):
    """A caught bug (``-ERR internal error``) in an in-process engine fails
    the test that caused it, unless the test is marked to expect one."""
    before = _engine.internal_errors_total
    yield
    if request.node.get_closest_marker("expects_internal_error"):
        return
    n = _engine.internal_errors_total - before
    assert n == 0, f"{n} internal error(s) caught in the engine during this test (see the log)"


def pytest_sessionfinish(session, exitstatus):
    """frtrio processes that logged a caught bug fail the whole run."""
    if support.INTERNAL_ERRORS:
        rep = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["frtrio processes logged internal errors (bugs caught instead of crashing):"]
        lines += ["  " + e for e in support.INTERNAL_ERRORS[:50]]
        if rep is not None:
            rep.write_line("\n".join(lines), red=True)
        session.exitstatus = 1

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
