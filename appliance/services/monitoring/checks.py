"""Check results: written in batches by the monitor, rolled up per app and hour as they are written, read
a page at a time, summed into uptime, and removed when older than the retention.

Rollups are upserted in the same transaction as the checks they count, so the two never disagree and
uptime reads rollups only (24 to 720 rows per app, however many checks were made)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from appliance.errors import NotFound
from appliance.models import App, AppCheck, AppCheckHourly
from appliance.services.common import pagination

#: The uptime windows the API reports, by name.
WINDOWS: dict[str, dt.timedelta] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
#: An app's checks, newest first: (checked_at, id).
CURSORS = pagination.Keyset("app_checks", dt.datetime, uuid.UUID)


@dataclass(frozen=True)
class CheckRow:
    """One result, as the monitor hands it over."""

    app_id: uuid.UUID
    checked_at: dt.datetime
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Uptime:
    window: str
    checks: int
    failures: int

    @property
    def percent(self) -> float | None:
        """Share of successful checks, in percent (None without a check in the window)."""
        if self.checks == 0:
            return None
        return round(100.0 * (self.checks - self.failures) / self.checks, 3)


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def existing_apps(session: Session, app_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these apps of the session's tenant still exist (results of a deleted one are dropped)."""
    wanted = list(set(app_ids))
    if not wanted:
        return set()
    return set(session.scalars(select(App.id).where(App.id.in_(wanted))))


def record(session: Session, tenant_id: uuid.UUID, rows: Sequence[CheckRow]) -> None:
    """Insert ``rows`` (one statement) and add them to their hourly rollups (one upsert); the session is
    scoped to ``tenant_id`` and every row's app exists."""
    if not rows:
        return
    session.execute(
        insert(AppCheck),
        [
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "app_id": row.app_id,
                "checked_at": row.checked_at,
                "ok": row.ok,
                "status_code": row.status_code,
                "latency_ms": row.latency_ms,
                "error": None if row.error is None else row.error[:500],
            }
            for row in rows
        ],
    )
    counts: dict[tuple[uuid.UUID, dt.datetime], list[Any]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for row in rows:
        count = counts[row.app_id, hour_of(row.checked_at)]
        count[0] += 1
        count[1] += 0 if row.ok else 1
        if row.latency_ms is not None:
            count[2] += row.latency_ms
            count[3] += 1
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(AppCheckHourly)
    table = AppCheckHourly.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "app_id", "hour"],
        set_={
            name: table[name] + stmt.excluded[name]
            for name in ("checks", "failures", "latency_ms_sum", "latency_count")
        },
    )
    values = [
        {
            "tenant_id": tenant_id,
            "app_id": app_id,
            "hour": hour,
            "checks": c[0],
            "failures": c[1],
            "latency_ms_sum": c[2],
            "latency_count": c[3],
        }
        for (app_id, hour), c in counts.items()
    ]
    session.execute(stmt, values)


def _app(session: Session, app_id: uuid.UUID) -> App:
    app = session.get(App, app_id)
    if app is None:
        raise NotFound(
            f"app {str(app_id)!r} was not found", code="APP_NOT_FOUND", details={"app_id": str(app_id)}
        )
    return app


def checks_page(
    session: Session,
    app_id: uuid.UUID,
    *,
    ok: bool | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[AppCheck], str | None]:
    """An app's checks, newest first; only the failed (ok False) or successful ones if asked."""
    _app(session, app_id)
    keyset = (AppCheck.checked_at, AppCheck.id)
    query = select(AppCheck).where(AppCheck.app_id == app_id)
    if ok is not None:
        query = query.where(AppCheck.ok.is_(ok))
    if cursor is not None:
        query = pagination.after(query, keyset, CURSORS.decode(cursor), True)
    rows = list(session.scalars(pagination.ordered(query, keyset, True).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = CURSORS.encode([rows[-1].checked_at, rows[-1].id])
    return rows, next_cursor


def uptime(session: Session, app_id: uuid.UUID, now: dt.datetime) -> list[Uptime]:
    """The share of successful checks over each of :data:`WINDOWS`, counted by whole hours: the current
    hour and the ones before it that started inside the window."""
    _app(session, app_id)
    current = hour_of(now)
    result = []
    for name, span in WINDOWS.items():
        since = current - span + dt.timedelta(hours=1)
        checks, failures = session.execute(
            select(
                func.coalesce(func.sum(AppCheckHourly.checks), 0),
                func.coalesce(func.sum(AppCheckHourly.failures), 0),
            ).where(AppCheckHourly.app_id == app_id, AppCheckHourly.hour >= since)
        ).one()
        result.append(Uptime(name, int(checks), int(failures)))
    return result


def cleanup(session: Session, now: dt.datetime, *, raw_days: int, rollup_days: int) -> tuple[int, int]:
    """Remove the session's tenant's checks older than ``raw_days`` and rollups older than
    ``rollup_days``; how many of each went."""
    checks = session.execute(
        delete(AppCheck).where(AppCheck.checked_at < now - dt.timedelta(days=raw_days)),
        execution_options={"synchronize_session": False},
    )
    rollups = session.execute(
        delete(AppCheckHourly).where(AppCheckHourly.hour < hour_of(now - dt.timedelta(days=rollup_days))),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(checks, "rowcount", 0)), int(getattr(rollups, "rowcount", 0))
