"""What the console knows about its appliance, kept between polls: each link's health, the latest answers,
and the recent past (for sparklines and rates). Plain data: no Textual, no I/O."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HISTORY = 60  # points kept per series: two minutes at the default 2 s refresh
BACKOFF_MAX_S = 30.0


@dataclass
class Link:
    """One thing the console talks to (the API, the supervisor): up, down or not yet known, and when to
    try it next. Failures back off (2, 4, 8 ... 30 s) so a dead API is not hammered."""

    name: str
    interval: float = 2.0
    up: bool | None = None
    error: str = ""
    failures: int = 0
    since: float = field(default_factory=time.time)
    next_try: float = 0.0
    latency_ms: float | None = None

    def due(self, now: float) -> bool:
        return now >= self.next_try

    def ok(self, now: float, latency_ms: float | None = None) -> None:
        if self.up is not True:
            self.since = now
        self.up, self.error, self.failures, self.latency_ms = True, "", 0, latency_ms
        self.next_try = now + self.interval

    def failed(self, now: float, error: str) -> None:
        if self.up is not False:
            self.since = now
        self.up, self.error, self.latency_ms = False, error, None
        self.failures += 1
        self.next_try = now + min(BACKOFF_MAX_S, self.interval * 2 ** min(self.failures, 5))


def series() -> deque[float]:
    return deque(maxlen=HISTORY)


@dataclass
class Rates:
    """Counters turned into per-second rates between two scrapes."""

    last: dict[str, float] = field(default_factory=dict)
    last_time: float | None = None

    def update(self, now: float, counters: dict[str, float]) -> dict[str, float]:
        rates: dict[str, float] = {}
        if self.last_time is not None and now > self.last_time:
            elapsed = now - self.last_time
            for name, value in counters.items():
                before = self.last.get(name)
                if before is not None and value >= before:  # a restarted process resets its counters
                    rates[name] = (value - before) / elapsed
        self.last, self.last_time = dict(counters), now
        return rates


def api_counters(text: str) -> dict[str, float]:
    """From the API's Prometheus text: requests, server errors (5xx), client errors (4xx), queue depth, and
    the durable jobs by state (``jobs_queued``, ``jobs_dead``...)."""
    from prometheus_client.parser import text_string_to_metric_families  # not needed for the first frame

    requests = server_errors = client_errors = 0.0
    queue_depth: float | None = None
    jobs: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "appliance_http_requests_total":
                requests += sample.value
                status = str(sample.labels.get("status", ""))
                if status.startswith("5"):
                    server_errors += sample.value
                elif status.startswith("4"):
                    client_errors += sample.value
            elif sample.name == "appliance_queue_depth":
                queue_depth = sample.value
            elif sample.name == "appliance_jobs":
                jobs[f"jobs_{sample.labels.get('state', '')}"] = sample.value
    counters = {"requests": requests, "server_errors": server_errors, "client_errors": client_errors}
    if queue_depth is not None:
        counters["queue_depth"] = queue_depth
    return counters | jobs


@dataclass
class CheckHistory:
    """One health check's recent results: (time, status, latency or None, error)."""

    name: str
    results: deque[tuple[float, str, float | None, str]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )

    @property
    def latest(self) -> tuple[float, str, float | None, str] | None:
        return self.results[-1] if self.results else None


@dataclass
class ProgramUsage:
    """CPU percent of one program instance, from two readings of its CPU seconds."""

    cpu_seconds: float
    at: float
    percent: float | None = None


@dataclass
class ConsoleState:
    """Everything the screens draw from."""

    api: Link = field(default_factory=lambda: Link("API"))
    supervisor: Link = field(default_factory=lambda: Link("supervisor"))
    health: dict[str, Any] | None = None
    checks: dict[str, CheckHistory] = field(default_factory=dict)
    programs: list[dict[str, Any]] = field(default_factory=list)
    supervisor_info: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, ProgramUsage] = field(default_factory=dict)
    latency: deque[float] = field(default_factory=series)
    request_rate: deque[float] = field(default_factory=series)
    error_rate: deque[float] = field(default_factory=series)
    queue_depth: deque[float] = field(default_factory=series)
    #: The durable jobs by state at the last scrape ({} before one answered).
    jobs: dict[str, int] = field(default_factory=dict)
    #: Jobs waiting (queued) at each scrape, and jobs that went dead per minute between scrapes.
    jobs_waiting: deque[float] = field(default_factory=series)
    jobs_dead_rate: deque[float] = field(default_factory=series)
    metrics_error: str = ""
    rates: Rates = field(default_factory=Rates)

    def record_health(self, now: float, report: dict[str, Any], latency_ms: float) -> None:
        self.health = report
        self.latency.append(latency_ms)
        for name, check in report.get("checks", {}).items():
            history = self.checks.setdefault(name, CheckHistory(name))
            history.results.append(
                (now, str(check.get("status")), check.get("latency_ms"), check.get("error", ""))
            )

    def record_metrics(self, now: float, text: str) -> None:
        counters = api_counters(text)
        rates = self.rates.update(now, counters)
        if "requests" in rates:
            self.request_rate.append(rates["requests"])
            self.error_rate.append(rates["server_errors"])
        if "queue_depth" in counters:
            self.queue_depth.append(counters["queue_depth"])
        jobs = {k.removeprefix("jobs_"): int(v) for k, v in counters.items() if k.startswith("jobs_")}
        if jobs:
            self.jobs = jobs
            self.jobs_waiting.append(float(jobs.get("queued", 0)))
            if "requests" in rates:  # a scrape before this one: retried jobs leave "dead", new ones count
                self.jobs_dead_rate.append(rates.get("jobs_dead", 0.0) * 60)
        self.metrics_error = ""

    def record_programs(self, now: float, status: dict[str, Any]) -> None:
        self.programs = list(status["programs"])
        self.supervisor_info = dict(status["supervisor"])
        seen: set[str] = set()
        for program in self.programs:
            key = f"{program['name']}#{program['instance']}:{program.get('pid')}"
            seen.add(key)
            cpu = program.get("cpu_seconds")
            if cpu is None:
                continue
            before = self.usage.get(key)
            usage = ProgramUsage(float(cpu), now)
            if before is not None and now > before.at:
                usage.percent = max(0.0, (usage.cpu_seconds - before.cpu_seconds) / (now - before.at) * 100)
            elif before is not None:
                usage.percent = before.percent
            self.usage[key] = usage
            program["cpu_percent"] = usage.percent
        for key in set(self.usage) - seen:
            del self.usage[key]
