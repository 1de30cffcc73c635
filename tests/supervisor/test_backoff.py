"""Restart delays: immediate, then doubling from 0.5 s, capped, reset once stable."""

from __future__ import annotations

from appliance.supervisor.backoff import Backoff, BackoffPolicy


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(BackoffPolicy())
    delays = [backoff.failed(uptime=0.1) for _ in range(10)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_failure_after_a_stable_run_restarts_at_once() -> None:
    backoff = Backoff(BackoffPolicy())
    for _ in range(6):
        backoff.failed(uptime=0.1)
    assert backoff.crash_looping
    assert backoff.failed(uptime=10.0) == 0.0
    assert not backoff.crash_looping


def test_crash_looping_after_five_quick_failures() -> None:
    backoff = Backoff(BackoffPolicy())
    flags = []
    for _ in range(6):
        backoff.failed(uptime=0.0)
        flags.append(backoff.crash_looping)
    assert flags == [False, False, False, False, True, True]
