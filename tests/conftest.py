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
        for c in (self.f, self.r):
            c.cmd("FLUSHALL")

    def __call__(self, *args):
        a = self.f.cmd(*args)
        b = self.r.cmd(*args)
        assert a == b, f"{args!r}: frtrio {a!r} != redis {b!r}"
        return a

    def both(self, *args):
        """Run on both, return (frtrio, redis) without asserting."""
        return self.f.cmd(*args), self.r.cmd(*args)

    def close(self):
        self.f.close()
        self.r.close()


@pytest.fixture
def diff(frtrio_proc, redis_proc):
    d = Diff(frtrio_proc, redis_proc)
    yield d
    d.close()
