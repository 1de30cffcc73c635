"""An app's status machine with an injected clock: every edge of APP_STATUS_TRANSITIONS, the thresholds,
and on both databases the incident each down period opens and closes, with its app.down / app.up event."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import (
    APP_STATUS_TRANSITIONS,
    App,
    AppIncident,
    AppStatus,
    WebhookEndpoint,
    WebhookMessage,
)
from appliance.services.monitoring import status as app_status
from appliance.services.monitoring.status import Tracker, Transition
from tests.db.seed import Seeded

T0 = dt.datetime(2026, 11, 22, 1, 0, 0, tzinfo=dt.UTC)


def feed(tracker: Tracker, outcomes: str, *, fail: int = 3, recover: int = 2) -> list[tuple[int, AppStatus]]:
    """Observe one check per character ('+' success, '-' failure), a second apart; the changes by index."""
    changes = []
    for i, mark in enumerate(outcomes):
        at = T0 + dt.timedelta(seconds=i)
        new = app_status.observe(
            tracker, ok=mark == "+", at=at, fail_threshold=fail, recover_threshold=recover
        )
        if new is not None:
            changes.append((i, new))
    return changes


def test_unknown_goes_up_on_the_first_success() -> None:
    tracker = Tracker()
    assert feed(tracker, "+") == [(0, AppStatus.UP)]
    assert tracker.status == AppStatus.UP


def test_unknown_goes_down_after_n_failures_only() -> None:
    tracker = Tracker()
    assert feed(tracker, "--") == []
    assert tracker.status == AppStatus.UNKNOWN
    assert feed(tracker, "-") == [(0, AppStatus.DOWN)]


def test_up_goes_down_after_n_failures_in_a_row_and_back_after_m_successes() -> None:
    tracker = Tracker(AppStatus.UP)
    # Two failures, a success (the run breaks), three failures: down at the third of those.
    assert feed(tracker, "--+---") == [(5, AppStatus.DOWN)]
    assert tracker.run_started == T0 + dt.timedelta(seconds=3)  # the first failure of the run
    # One success is not enough, a failure breaks the recovery, two in a row bring it up.
    assert feed(tracker, "+-++") == [(3, AppStatus.UP)]
    assert tracker.run_started == T0 + dt.timedelta(seconds=2)


def test_thresholds_are_per_app() -> None:
    tracker = Tracker(AppStatus.UP)
    assert feed(tracker, "-", fail=1, recover=5) == [(0, AppStatus.DOWN)]
    assert feed(tracker, "+++++", fail=1, recover=5) == [(4, AppStatus.UP)]


def test_every_edge_taken_is_in_the_table_and_every_edge_is_taken() -> None:
    taken = set()
    for start in AppStatus:
        for outcomes in ("+", "---", "+++", "---++"):
            tracker = Tracker(start)
            before = start
            for _, new in feed(tracker, outcomes):
                taken.add((before, new))
                before = new
    assert taken == set(APP_STATUS_TRANSITIONS)


def _app(db: Database, tenant_id: uuid.UUID) -> uuid.UUID:
    with db.session_scope() as session:
        tenancy.set_tenant(session, tenant_id)
        app = App(tenant_id=tenant_id, name="Shop", url="https://shop.example/health")
        session.add(app)
        session.add(WebhookEndpoint(tenant_id=tenant_id, url="https://hooks.example/in", secret="whsec_x"))
        session.flush()
        return app.id


def _apply(db: Database, transition: Transition) -> AppIncident | None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, transition.tenant_id)
        return app_status.apply(session, transition)


def test_down_opens_an_incident_and_up_closes_it_each_with_its_event(db: Database, seeded: Seeded) -> None:
    tenant = seeded.tenant_a
    app_id = _app(db, tenant)
    started, down_at = T0, T0 + dt.timedelta(seconds=20)
    recovered, up_at = T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=5, seconds=10)
    down = Transition(
        tenant, app_id, AppStatus.UP, AppStatus.DOWN, down_at, started, "answered 503, expected 200"
    )
    opened = _apply(db, down)
    assert opened is not None
    up = Transition(tenant, app_id, AppStatus.DOWN, AppStatus.UP, up_at, recovered, "recovered")
    closed = _apply(db, up)
    assert closed is not None
    assert closed.id == opened.id
    with db.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant)
        app = session.get(App, app_id)
        assert app is not None
        assert (app.status, app.status_changed_at) == ("up", up_at)
        incident = session.scalars(select(AppIncident)).one()
        assert (incident.started_at, incident.ended_at) == (started, recovered)
        assert incident.reason == "answered 503, expected 200"
        messages = session.scalars(select(WebhookMessage).order_by(WebhookMessage.created_at)).all()
    bodies = [json.loads(m.body) for m in messages]
    assert [b["type"] for b in bodies] == ["app.down", "app.up"]
    assert bodies[0]["data"]["incident_id"] == str(incident.id)
    assert bodies[0]["data"]["app_id"] == str(app_id)
    assert bodies[0]["data"]["ended_at"] is None
    assert bodies[1]["data"]["ended_at"] is not None
    assert bodies[1]["data"]["reason"] == "answered 503, expected 200"


def test_a_first_success_sends_nothing_and_a_deleted_app_is_skipped(db: Database, seeded: Seeded) -> None:
    tenant = seeded.tenant_a
    app_id = _app(db, tenant)
    assert _apply(db, Transition(tenant, app_id, AppStatus.UNKNOWN, AppStatus.UP, T0, T0, "")) is None
    gone = Transition(tenant, uuid.uuid4(), AppStatus.UP, AppStatus.DOWN, T0, T0, "timed out")
    assert _apply(db, gone) is None
    with db.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant)
        assert session.scalars(select(WebhookMessage)).all() == []
        assert session.scalars(select(AppIncident)).all() == []
