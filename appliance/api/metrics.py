"""Prometheus metrics of the API, correct across several API processes (prometheus-client multiprocess mode).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the supervisor sets it for the API processes it runs, before any
of them imports prometheus-client), every process writes its samples there and a scrape of any one of them
reads them all. Without it, a single process serves its own registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine

REQUESTS = Counter(
    "appliance_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "appliance_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "appliance_http_requests_in_flight", "HTTP requests being served right now.", multiprocess_mode="livesum"
)
DB_POOL_IN_USE = Gauge(
    "appliance_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "appliance_db_pool_size",
    "Database connections each pool may hold, summed over processes.",
    multiprocess_mode="livesum",
)
API_WAITING = Gauge(
    "appliance_api_requests_waiting",
    "Requests waiting for one of the API's threads (appliance.api.offload).",
    multiprocess_mode="livesum",
)
API_SHED = Counter(
    "appliance_api_requests_shed_total",
    "Requests answered 503 because the API process was too busy to start them in time, by reason "
    "(queue_full: too many already waiting; queue_timeout: no thread free in time).",
    ["reason"],
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def instrument_pool(engine: Engine, size: int) -> None:
    """Keep the pool gauges current from the pool's own checkout and checkin events."""
    DB_POOL_SIZE.inc(size)

    @event.listens_for(engine, "checkout")
    def _checkout(*_: object) -> None:
        DB_POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_: object) -> None:
        DB_POOL_IN_USE.dec()


class QueueDepthCollector(Collector):
    """Reads the queue's depth at scrape time (one value for the whole appliance, not per process)."""

    def __init__(self, depth: Callable[[], int]):
        self.depth = depth

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("appliance_queue_depth", "Tasks waiting in the queue.")
        try:
            family.add_metric([], float(self.depth()))
        except Exception:  # a down queue must not break the scrape; readiness reports it)
            family.add_metric([], float("nan"))
        yield family


class JobStateCollector(Collector):
    """Reads the durable jobs by state at scrape time (queued and running are the backlog; dead needs a
    person)."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("appliance_jobs", "Durable jobs by state.", labels=["state"])
        try:
            counts = self.counts()
        except Exception:  # a down database must not break the scrape; readiness reports it
            counts = {}
        for state, count in counts.items():
            family.add_metric([state], float(count))
        yield family


class BackupCollector(Collector):
    """Reads when the newest backup that completed was made, at scrape time (from the platform's audit
    chain: the same value on every host, whichever one took the backup)."""

    def __init__(self, newest: Callable[[], float | None]):
        self.newest = newest

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "appliance_backup_last_success_timestamp_seconds",
            "When the newest backup that completed was made (Unix time); absent before the first one.",
        )
        try:
            newest = self.newest()
        except Exception:  # a down database must not break the scrape; readiness reports it
            newest = None
        if newest is not None:
            family.add_metric([], newest)
        yield family


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics plus the extra collectors."""
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Delegate(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield from self.registry.collect()  # type: ignore[misc]


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared directory when it exits."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
