"""INFO's ``instantaneous_*`` fields (pure): Redis's trackInstantaneousMetric.

Every 100 ms the server cron takes one sample of each tracked counter's rate
(what it grew by, per second, since the last sample); INFO shows the mean of
the last 16 samples, so a rate shows within 1.6 s of its start and is gone
1.6 s after its end. The counters: commands processed, network bytes in and
out, and network bytes in and out for replication (frtrio counts a
replication link's bytes with the others, so those two stay 0).
"""

from __future__ import annotations

SAMPLES = 16
COMMANDS, NET_INPUT, NET_OUTPUT, NET_INPUT_REPL, NET_OUTPUT_REPL = range(5)


def _div(a: int, b: int) -> int:
    """C's integer division (towards zero) by a positive ``b``: a counter
    that went back (CONFIG RESETSTAT) gives a negative ``a``."""
    return a // b if a >= 0 else -(-a // b)


class InstMetrics:
    __slots__ = ("samples", "idx", "last_time", "last_count")

    def __init__(self, now_ms: int):
        self.reset(now_ms)

    def reset(self, now_ms: int) -> None:
        """CONFIG RESETSTAT: no samples, counting from now and from 0."""
        self.samples = [[0] * SAMPLES for _ in range(5)]
        self.idx = [0] * 5
        self.last_time = [now_ms] * 5
        self.last_count = [0] * 5

    def track(self, now_ms: int, readings) -> None:
        """One sample of each counter (``readings``: their values now)."""
        for m, cur in enumerate(readings):
            t = now_ms - self.last_time[m]
            self.samples[m][self.idx[m]] = _div((cur - self.last_count[m]) * 1000, t) if t > 0 else 0
            self.idx[m] = (self.idx[m] + 1) % SAMPLES
            self.last_time[m] = now_ms
            self.last_count[m] = cur

    def skipped(self, n: int) -> None:
        """``n`` samples the cron did not take because it slept through an
        idle stretch (nothing connected: no counter moved): rates of 0."""
        for m in range(5):
            s = self.samples[m]
            for _ in range(min(n, SAMPLES)):
                s[self.idx[m]] = 0
                self.idx[m] = (self.idx[m] + 1) % SAMPLES

    def get(self, m: int) -> int:
        """The mean of the samples (getInstantaneousMetric)."""
        return sum(self.samples[m]) // SAMPLES
