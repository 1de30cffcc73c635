"""Settings of the background work: durable jobs, webhook deliveries, monitoring probes, outbound calls."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from appliance.config.section import Section


class JobSettings(Section):
    lease_seconds: float = Field(default=300.0, ge=1)
    """How long a worker holds a job it claimed; a job still running after it is taken to be lost (its
    worker died) and runs again. Longer than any job's own time limit."""

    reap_interval: float = Field(default=10.0, ge=0.1, le=3600)
    """How often the periodic worker looks for lost jobs, in seconds."""

    requeue_after: float = Field(default=60.0, ge=1)
    """A queued job not started this many seconds after it was handed to the queue is handed again (the
    hand-over after its commit may have been lost)."""

    keep_days: int = Field(default=30, ge=1)
    """Days finished jobs (succeeded, dead, cancelled) are kept before they are removed."""


class OutboundSettings(Section):
    allow_networks: tuple[str, ...] = ()
    """Networks (CIDR) that webhooks and probes may reach although they are private, loopback or
    link-local (refused by default, so that a tenant cannot reach the appliance's own network)."""

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network: use CIDR, e.g. 10.0.0.0/8") from None
        return value


class WebhookSettings(Section):
    timeout: float = Field(default=15.0, gt=0, le=60)
    """Seconds a delivery may take (connect, send, and read the answer) before it counts as failed."""

    max_response_bytes: int = Field(default=65_536, ge=0)
    """How much of a receiver's answer is read; the rest is not waited for."""

    disable_after_days: float = Field(default=5.0, gt=0)
    """An endpoint that has failed every delivery for this long is disabled and its owner told."""

    concurrency: int = Field(default=50, ge=1, le=1000)
    """Deliveries one worker process sends at once."""


class MonitoringSettings(Section):
    enabled: bool = True
    """Whether the periodic worker probes the monitored applications."""

    min_interval: int = Field(default=5, ge=1)
    """The shortest probe interval a tenant may ask for, in seconds."""

    concurrency: int = Field(default=200, ge=1, le=5000)
    """Probes in flight at once."""

    refresh_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How often the monitor reads the list of apps again (a new, changed or deleted app is seen within)."""

    raw_days: int = Field(default=7, ge=1)
    """Days each check result is kept."""

    rollup_days: int = Field(default=90, ge=1)
    """Days the hourly rollups are kept."""
