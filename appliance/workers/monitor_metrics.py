"""Prometheus metrics of the application monitor (written to the shared multiprocess directory, so that the
API's /metrics shows them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENESS = Histogram(
    "appliance_monitor_probe_lateness_seconds",
    "How long after its due time a probe started.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CHECKS = Counter(
    "appliance_monitor_checks_total",
    "Checks of monitored apps, by kind (http, heartbeat) and outcome (ok, failed).",
    ["kind", "outcome"],
)
WATCHED = Gauge(
    "appliance_monitor_apps",
    "Monitored apps the monitor is watching.",
    multiprocess_mode="livesum",
)


def probed(lateness: float) -> None:
    LATENESS.observe(max(lateness, 0.0))


def checked(kind: str, ok: bool) -> None:
    CHECKS.labels(kind, "ok" if ok else "failed").inc()
