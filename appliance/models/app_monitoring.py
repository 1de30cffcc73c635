"""Monitored applications: the apps a tenant registers, the result of every check, hourly rollups of them,
and the incidents (down periods) they had."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow


class AppKind(enum.StrEnum):
    HTTP = "http"
    """The monitor requests the app's URL every interval."""
    HEARTBEAT = "heartbeat"
    """The app calls its heartbeat URL; silence for longer than interval + grace is a failed check."""


class AppStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    """Registered, not checked yet (or not enough to tell)."""
    UP = "up"
    DOWN = "down"
    """Failed ``fail_threshold`` checks in a row; an incident is open until it recovers."""


#: Allowed changes of an app's status, each with why (appliance.services.monitoring.status applies them).
APP_STATUS_TRANSITIONS: dict[tuple[AppStatus, AppStatus], str] = {
    # UNKNOWN -> UP: nothing was wrong to recover from, so the first success is enough.
    (AppStatus.UNKNOWN, AppStatus.UP): "its first check succeeded",
    # UNKNOWN -> DOWN: a new app that never answered is down like any other (an incident opens, app.down).
    (AppStatus.UNKNOWN, AppStatus.DOWN): "fail_threshold checks in a row failed before any succeeded",
    # UP -> DOWN: one failure is noise; fail_threshold in a row open an incident and send app.down.
    (AppStatus.UP, AppStatus.DOWN): "fail_threshold checks in a row failed",
    # DOWN -> UP: recover_threshold successes in a row close the incident and send app.up.
    (AppStatus.DOWN, AppStatus.UP): "recover_threshold checks in a row succeeded",
}


class App(TenantOwned, Base):
    """An application a tenant runs and wants watched."""

    __tablename__ = "apps"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        # The heartbeat route finds its app by the token (which names the tenant:
        # appliance.services.monitoring.apps).
        UniqueConstraint("tenant_id", "heartbeat_token"),
        Index("ix_apps_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default=AppKind.HTTP.value)
    url: Mapped[str | None] = mapped_column(String(2048), default=None)
    """The URL probed (http apps); None for heartbeat apps."""
    interval: Mapped[int] = mapped_column(default=60)
    """Seconds between probes, or the longest silence between beats."""
    timeout: Mapped[float] = mapped_column(default=10.0)
    expected_status: Mapped[int] = mapped_column(default=200)
    keyword: Mapped[str | None] = mapped_column(String(200), default=None)
    """Text the body must contain (searched in its first bytes only: appliance.services.monitoring.probes)."""
    grace: Mapped[int] = mapped_column(default=0)
    """Heartbeat apps: seconds of lateness tolerated after the interval."""
    heartbeat_token: Mapped[str | None] = mapped_column(String(100), default=None)
    fail_threshold: Mapped[int] = mapped_column(default=3)
    recover_threshold: Mapped[int] = mapped_column(default=2)
    enabled: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default=AppStatus.UNKNOWN.value)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_beat_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When the heartbeat URL was last called."""
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AppCheck(TenantOwned, Base):
    """One check's result (kept for ``monitoring.raw_days``)."""

    __tablename__ = "app_checks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "app_id"], ["apps.tenant_id", "apps.id"], ondelete="CASCADE"),
        # An app's checks newest first, by cursor.
        Index("ix_app_checks_tenant_id_app_id_checked_at_id", "tenant_id", "app_id", "checked_at", "id"),
        # The cleanup of old checks.
        Index("ix_app_checks_tenant_id_checked_at", "tenant_id", "checked_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    app_id: Mapped[uuid.UUID]
    checked_at: Mapped[dt.datetime]
    ok: Mapped[bool]
    status_code: Mapped[int | None] = mapped_column(default=None)
    latency_ms: Mapped[float | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    """Why the check failed (connection refused, timeout, wrong status, keyword missing, ...)."""


class AppCheckHourly(Base):
    """The checks of one app in one hour, counted (kept ``monitoring.rollup_days``; uptime reads these)."""

    __tablename__ = "app_check_hourly"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "app_id"], ["apps.tenant_id", "apps.id"], ondelete="CASCADE"),
        Index("ix_app_check_hourly_tenant_id_hour", "tenant_id", "hour"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    app_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    """The start of the hour (UTC)."""
    checks: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    latency_ms_sum: Mapped[float] = mapped_column(default=0.0)
    """Sum of the latencies of the checks that measured one (an average is this / (checks with one))."""
    latency_count: Mapped[int] = mapped_column(default=0)


class AppIncident(TenantOwned, Base):
    """A down period of an app: open (ended_at None) until it recovers."""

    __tablename__ = "app_incidents"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "app_id"], ["apps.tenant_id", "apps.id"], ondelete="CASCADE"),
        Index("ix_app_incidents_tenant_id_app_id_started_at_id", "tenant_id", "app_id", "started_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    app_id: Mapped[uuid.UUID]
    started_at: Mapped[dt.datetime]
    """The first failed check of the run that brought it down."""
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """The first successful check of the run that brought it up again."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    """The error of the check that brought it down."""
