"""Restart backoff: immediate first retry, then exponential delays, reset once a process proves stable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """When to respawn a process that exited on its own, and when to call it crash-looping."""

    base: float = 0.5  # the second retry waits this long, each next one twice as long...
    cap: float = 30.0  # ...up to this; a process that keeps crashing is retried at the cap forever
    stable_after: float = 10.0  # up this long: the failure count starts again from zero
    crash_loop_after: int = 5  # this many quick failures in a row: reported as crash-looping

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th quick failure in a row (1-based)."""
        if failures <= 1:
            return 0.0
        return min(self.base * 2.0 ** (failures - 2), self.cap)


class Backoff:
    """The failure count of one process and what it implies."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self.failures = 0

    def failed(self, uptime: float) -> float:
        """Record an unexpected exit after `uptime` seconds; return the delay before the next spawn."""
        if uptime >= self.policy.stable_after:
            self.failures = 0
        self.failures += 1
        return self.policy.delay(self.failures)

    def stable(self, uptime: float) -> bool:
        """Forget past failures once up for long enough; True if there were some to forget."""
        if self.failures and uptime >= self.policy.stable_after:
            self.failures = 0
            return True
        return False

    @property
    def crash_looping(self) -> bool:
        """True while the process keeps failing soon after each start."""
        return self.failures >= self.policy.crash_loop_after
