"""Settings of the running processes: the API, its rate limits, the log and the supervisor."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from appliance.config.section import Section


class ApiSettings(Section):
    host: str = "127.0.0.1"
    """Address the API listens on. Use 0.0.0.0 to serve other machines."""

    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port the API listens on."""

    instances: int = Field(default=1, ge=1, le=64)
    """How many API processes the supervisor runs behind the one listening socket."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted, in bytes; larger bodies get 413."""

    metrics_allow_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Networks (CIDR) whose clients may read /metrics without an operator credential."""

    trusted_proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies whose X-Forwarded-For header is believed."""

    threads: int | None = Field(default=None, ge=1, le=200)
    """Threads each API process runs its blocking work on (database transactions, password hashes).
    Unset: database.pool_size - 1 (one connection stays free for health checks). More threads than pooled
    connections would only wait for a connection."""

    max_in_flight: int = Field(default=256, ge=0)
    """Requests an API process works on at once (health checks aside); beyond, a request is answered 503
    with Retry-After at once, before it costs the process anything more. 0: no bound."""

    queue_limit: int = Field(default=200, ge=0)
    """Requests an API process lets wait for a thread; beyond that it answers 503 with Retry-After at once
    (load beyond capacity is shed, not queued without limit)."""

    queue_timeout: float = Field(default=5.0, gt=0)
    """Seconds a request may wait for a thread before it is answered 503 with Retry-After."""

    queue_target: float = Field(default=0.2, gt=0)
    """Seconds a request may wait for a thread while the queue is congested (it has not emptied for half
    a second): the newest requests are then served first and those that waited longer are answered 503
    with Retry-After, so that under a burst the requests served are served fast and latency is back to
    normal as soon as the burst ends."""

    stall_seconds: float = Field(default=60.0, gt=0)
    """/health/live answers 503 when requests have waited this long with none finishing (a wedged
    process), so that the supervisor's health check restarts it. Keep it above database.statement_timeout."""

    min_free_disk_mb: int = Field(default=256, ge=0)
    """/health/ready answers 503 when the data directory's file system has less free space than this
    (writes would fail), so that a load balancer sends traffic elsewhere. 0 turns the check off."""

    public_url: str | None = None
    """The API's address as its clients reach it (through a proxy or a load balancer, with a path prefix if
    it has one), e.g. https://forge.example.com: the URLs the API hands out are whole ones on it (an app's
    heartbeat_url). Unset: they are paths (/api/v1/heartbeats/...), to be put after the address the client
    used."""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"{value!r} is not a base URL such as https://forge.example.com (http or https, a host, "
                "no query or fragment)"
            )
        return value.rstrip("/")

    @field_validator("metrics_allow_from", "trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network such as 10.0.0.0/8") from None
        return value


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""

    json_format: bool = True
    """One JSON object per line (with the request id). False: plain text for reading by eye."""

    access_log: bool = True
    """Write one line per HTTP request."""


class SupervisorSettings(Section):
    services_file: Path | None = None
    """The supervisor's program list. Unset: the built-in default (the API and one worker)."""

    run_dir: Path | None = None
    """Where the supervisor keeps its pid, state and control socket. Unset: <data_dir>/run."""

    log_dir: Path | None = None
    """Where each program's output is written. Unset: <data_dir>/logs."""

    ready_timeout: float = Field(default=60.0, gt=0)
    """How long `appliance up` waits for /health/ready before giving up, in seconds."""


class RateLimitSettings(Section):
    enabled: bool = True
    """Rate limit requests (per IP, per user or API key, per tenant plan) and throttle failed logins."""

    url: str | None = None
    """Redis URL for the shared limiter; unset: the queue's Redis when queue.url is Redis, else in-process."""

    per_ip: int = Field(default=1200, ge=1)
    """Requests per minute from one client IP address."""

    per_principal: int | None = Field(default=None, ge=1)
    """Requests per minute by one user or API key. Unset: the limit of its tenant's plan tier."""

    free: int = Field(default=60, ge=1)
    """Requests per minute per tenant on the free plan (and on an unknown plan)."""

    team: int = Field(default=300, ge=1)
    """Requests per minute per tenant on the team plan."""

    business: int = Field(default=1000, ge=1)
    """Requests per minute per tenant on the business plan."""

    enterprise: int = Field(default=5000, ge=1)
    """Requests per minute per tenant on the enterprise plan."""

    login_failures_per_account: int = Field(default=10, ge=1)
    """Failed logins per 15 minutes for one account before its logins are refused for a while."""

    login_failures_per_ip: int = Field(default=50, ge=1)
    """Failed logins per 15 minutes from one client IP address before its logins are refused for a while."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r} is not a Redis URL: use redis://host:port/db")
        return value
