"""An app's status as its checks come in: the state machine (models.app_monitoring.APP_STATUS_TRANSITIONS),
the incidents it opens and closes, and the events (``app.down``, ``app.up``) that make webhooks fire.

:func:`observe` is pure and runs in the monitor's event loop for every check; :func:`apply` writes a
transition in the caller's transaction (the monitor's batch). The counts of a run live in the monitor's
memory: after a restart of the monitor an app keeps its stored status and counts its run afresh.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.errors import NotFound
from appliance.models import APP_STATUS_TRANSITIONS, App, AppIncident, AppStatus
from appliance.services.common import pagination
from appliance.services.webhooks import events

#: An app's incidents, newest first: (started_at, id).
CURSORS = pagination.Keyset("app_incidents", dt.datetime, uuid.UUID)


@dataclass
class Tracker:
    """What the monitor knows of one app between checks."""

    status: AppStatus = AppStatus.UNKNOWN
    failures: int = 0
    """Failed checks in a row."""
    successes: int = 0
    """Successful checks in a row."""
    run_started: dt.datetime | None = None
    """The first check of the current run of failures (or successes)."""


@dataclass(frozen=True)
class Transition:
    tenant_id: uuid.UUID
    app_id: uuid.UUID
    old: AppStatus
    new: AppStatus
    at: dt.datetime
    """The check that made the change."""
    since: dt.datetime
    """The first check of the run that made it: an incident starts (or ends) here."""
    reason: str


def observe(
    tracker: Tracker, *, ok: bool, at: dt.datetime, fail_threshold: int, recover_threshold: int
) -> AppStatus | None:
    """Count one check; the new status when this check changes it, else None."""
    if ok:
        if tracker.successes == 0:
            tracker.run_started = at
        tracker.successes, tracker.failures = tracker.successes + 1, 0
    else:
        if tracker.failures == 0:
            tracker.run_started = at
        tracker.failures, tracker.successes = tracker.failures + 1, 0
    wanted = _wanted(tracker, fail_threshold, recover_threshold)
    if wanted is None or wanted == tracker.status:
        return None
    if (tracker.status, wanted) not in APP_STATUS_TRANSITIONS:
        raise AssertionError(f"no transition {tracker.status} -> {wanted}")
    tracker.status = wanted
    return wanted


def _wanted(tracker: Tracker, fail_threshold: int, recover_threshold: int) -> AppStatus | None:
    if tracker.failures >= fail_threshold:
        return AppStatus.DOWN
    if tracker.successes == 0:
        return None
    if tracker.status == AppStatus.UNKNOWN:
        return AppStatus.UP  # UNKNOWN -> UP: the first success
    if tracker.successes >= recover_threshold:
        return AppStatus.UP
    return None


def apply(session: Session, transition: Transition) -> AppIncident | None:
    """Store a transition (the session scoped to its tenant): the app's status, the incident opened or
    closed, and its event. Nothing when the app was deleted meanwhile."""
    app = session.get(App, transition.app_id)
    if app is None:
        return None
    app.status, app.status_changed_at = transition.new.value, transition.at
    if transition.new == AppStatus.DOWN:
        incident = AppIncident(
            id=uuid.uuid4(),
            tenant_id=app.tenant_id,
            app_id=app.id,
            started_at=transition.since,
            reason=transition.reason[:500],
        )
        session.add(incident)
        _publish(session, "app.down", app, incident)
        return incident
    if transition.old != AppStatus.DOWN:
        return None  # UNKNOWN -> UP: no incident to close, nothing to tell
    open_incident = session.scalars(
        select(AppIncident)
        .where(AppIncident.app_id == app.id, AppIncident.ended_at.is_(None))
        .order_by(AppIncident.started_at.desc())
    ).first()
    if open_incident is not None:
        open_incident.ended_at = max(transition.since, open_incident.started_at)
    _publish(session, "app.up", app, open_incident)
    return open_incident


def _publish(session: Session, event_type: str, app: App, incident: AppIncident | None) -> None:
    data: dict[str, Any] = {
        "app_id": str(app.id),
        "name": app.name,
        "kind": app.kind,
        "url": app.url,
        "incident_id": None if incident is None else str(incident.id),
        "started_at": None if incident is None else incident.started_at,
        "ended_at": None if incident is None else incident.ended_at,
        "reason": None if incident is None else incident.reason,
    }
    events.publish(session, tenant_id=app.tenant_id, event_type=event_type, data=data)


def incidents_page(
    session: Session,
    app_id: uuid.UUID,
    *,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[AppIncident], str | None]:
    """An app's incidents, newest first."""
    if session.get(App, app_id) is None:
        raise NotFound(
            f"app {str(app_id)!r} was not found", code="APP_NOT_FOUND", details={"app_id": str(app_id)}
        )
    keyset = (AppIncident.started_at, AppIncident.id)
    query = select(AppIncident).where(AppIncident.app_id == app_id)
    if cursor is not None:
        query = pagination.after(query, keyset, CURSORS.decode(cursor), True)
    rows = list(session.scalars(pagination.ordered(query, keyset, True).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = CURSORS.encode([rows[-1].started_at, rows[-1].id])
    return rows, next_cursor
