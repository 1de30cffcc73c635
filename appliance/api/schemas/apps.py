"""Request and response bodies of /api/v1/apps and its checks, incidents and uptime."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.models import App, AppCheck, AppIncident
from appliance.services.monitoring.checks import Uptime
from appliance.services.monitoring.every_tenant import AppRow

Kind = Literal["http", "heartbeat"]
HEARTBEATS_PATH = "/api/v1/heartbeats"


class AppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Kind = "http"
    """http: the appliance requests ``url`` every interval; heartbeat: the app calls its heartbeat URL."""
    url: str | None = Field(default=None, max_length=4096)
    """The URL probed (http apps only): http or https, a public address unless the operator allowed more.
    Longer than 2048 characters is refused with INVALID_URL."""
    interval: int = Field(default=60, ge=1, le=86_400)
    """Seconds between probes, or the longest silence between beats; at least the operator's minimum
    (monitoring.min_interval, 5 s by default: 422 INTERVAL_TOO_SHORT)."""
    timeout: float = Field(default=10.0, gt=0, le=60)
    """Seconds a probe may take; not longer than the interval."""
    expected_status: int = Field(default=200, ge=100, le=599)
    """The status the app must answer (redirects are not followed)."""
    keyword: str | None = Field(default=None, min_length=1, max_length=200)
    """Text the body must contain (searched in its first 64 KiB)."""
    grace: int = Field(default=0, ge=0, le=86_400)
    """Heartbeat apps: seconds of lateness tolerated after the interval."""
    fail_threshold: int = Field(default=3, ge=1, le=100)
    """Failed checks in a row that make the app down (an incident opens, app.down is sent)."""
    recover_threshold: int = Field(default=2, ge=1, le=100)
    """Successful checks in a row that make a down app up again (the incident closes, app.up is sent)."""
    enabled: bool = True


class AppPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Kind | None = None
    url: str | None = Field(default=None, max_length=4096)
    interval: int | None = Field(default=None, ge=1, le=86_400)
    timeout: float | None = Field(default=None, gt=0, le=60)
    expected_status: int | None = Field(default=None, ge=100, le=599)
    keyword: str | None = Field(default=None, max_length=200)
    """An empty string removes the keyword."""
    grace: int | None = Field(default=None, ge=0, le=86_400)
    fail_threshold: int | None = Field(default=None, ge=1, le=100)
    recover_threshold: int | None = Field(default=None, ge=1, le=100)
    enabled: bool | None = None

    def changes(self) -> dict[str, object]:
        """The fields given (null for url and keyword clears them; for the others it is ignored)."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        changes = {k: v for k, v in given.items() if v is not None or k in ("url", "keyword")}
        if changes.get("keyword") == "":
            changes["keyword"] = None
        return changes


class AppOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: Kind
    url: str | None
    interval: int
    timeout: float
    expected_status: int
    keyword: str | None
    grace: int
    fail_threshold: int
    recover_threshold: int
    enabled: bool
    status: Literal["unknown", "up", "down"]
    status_changed_at: Timestamp | None
    heartbeat_url: str | None
    """Heartbeat apps: the URL to call (POST or GET); the token in it is the credential, keep it secret. A
    whole URL when the operator set api.public_url, else the path to call on the API's address."""
    last_beat_at: Timestamp | None
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, app: App, public_url: str | None = None) -> AppOut:
        """``app`` as the API shows it; its heartbeat URL on ``public_url`` (api.public_url) when set."""
        token = app.heartbeat_token
        return cls(
            id=app.id,
            name=app.name,
            kind=app.kind,
            url=app.url,
            interval=app.interval,
            timeout=app.timeout,
            expected_status=app.expected_status,
            keyword=app.keyword,
            grace=app.grace,
            fail_threshold=app.fail_threshold,
            recover_threshold=app.recover_threshold,
            enabled=app.enabled,
            status=app.status,
            status_changed_at=app.status_changed_at,
            heartbeat_url=None if token is None else f"{public_url or ''}{HEARTBEATS_PATH}/{token}",
            last_beat_at=app.last_beat_at,
            created_by=app.created_by,
            created_at=app.created_at,
            updated_at=app.updated_at,
        )


class CheckOut(BaseModel):
    id: uuid.UUID
    checked_at: Timestamp
    ok: bool
    status_code: int | None
    latency_ms: float | None
    error: str | None
    """Why it failed (cannot connect, timed out, answered 503, keyword missing, no heartbeat, ...)."""

    @classmethod
    def of(cls, check: AppCheck) -> CheckOut:
        return cls(
            id=check.id,
            checked_at=check.checked_at,
            ok=check.ok,
            status_code=check.status_code,
            latency_ms=check.latency_ms,
            error=check.error,
        )


class IncidentOut(BaseModel):
    id: uuid.UUID
    started_at: Timestamp
    """The first failed check of the run that brought the app down."""
    ended_at: Timestamp | None
    """The first successful check of the run that brought it up again; null while it is down."""
    reason: str

    @classmethod
    def of(cls, incident: AppIncident) -> IncidentOut:
        return cls(
            id=incident.id, started_at=incident.started_at, ended_at=incident.ended_at, reason=incident.reason
        )


class UptimeWindow(BaseModel):
    checks: int
    failures: int
    percent: float | None
    """Share of successful checks in percent; null without a check in the window."""


class UptimeOut(BaseModel):
    """Counted by whole hours: the current one and those before it that started inside the window."""

    app_id: uuid.UUID
    windows: dict[str, UptimeWindow]
    """By window: ``24h``, ``7d``, ``30d``."""

    @classmethod
    def of(cls, app_id: uuid.UUID, windows: list[Uptime]) -> UptimeOut:
        return cls(
            app_id=app_id,
            windows={
                w.window: UptimeWindow(checks=w.checks, failures=w.failures, percent=w.percent)
                for w in windows
            },
        )


class PlatformAppOut(AppOut):
    """An app as operators see it, across tenants: whose it is, and since when it is down."""

    tenant_id: uuid.UUID
    tenant_slug: str
    open_incident_since: Timestamp | None
    """The start of the app's open incident; null when it has none."""

    @classmethod
    def of_row(cls, row: AppRow, public_url: str | None = None) -> PlatformAppOut:
        return cls(
            **AppOut.of(row.app, public_url).model_dump(),
            tenant_id=row.app.tenant_id,
            tenant_slug=row.tenant_slug,
            open_incident_since=row.open_incident_since,
        )
