"""Prometheus metrics of the jobs a worker runs (written to the shared multiprocess directory, so that the
API's /metrics shows every worker's)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

DURATION = Histogram(
    "appliance_job_duration_seconds",
    "Time a job attempt ran, by kind and outcome (succeeded, retry, dead).",
    ["kind", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
FAILURES = Counter(
    "appliance_job_failures_total",
    "Failed job attempts, by kind and outcome (retry, dead).",
    ["kind", "outcome"],
)
RECOVERED = Counter(
    "appliance_jobs_recovered_total",
    "Jobs the reaper handed to the queue again, by reason (lease ran out, lost hand-over).",
    ["reason"],
)


_DURATIONS: dict[tuple[str, str], Any] = {}  # the labelled children, found once (labels() is not free)


def observe(kind: str, outcome: str, seconds: float) -> None:
    child = _DURATIONS.get((kind, outcome))
    if child is None:
        child = _DURATIONS.setdefault((kind, outcome), DURATION.labels(kind, outcome))
    child.observe(seconds)
    if outcome != "succeeded":
        FAILURES.labels(kind, outcome).inc()
