"""The worker's daily purge: removes the deleted tenants past their grace period, as the schema owner (on
PostgreSQL the worker itself connects as an app role that may not remove audit records), and nothing else."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import IdempotencyKey
from appliance.services.access.actors import cli_operator
from appliance.services.audit import log as audit
from appliance.services.common import idempotency
from appliance.services.tenancy import tenants
from appliance.workers import runtime, tasks
from tests.cli.test_tenants import app_role_settings, make_due, rows_of
from tests.db.seed import Seeded, seed


@pytest.fixture
def owner(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """The owner's Database, with a worker runtime installed whose own Database is the app role's."""
    settings = app_role_settings(tmp_path, database_url, request)
    app_db, owner_db = Database(settings), Database(settings, settings.migrations_url)
    monkeypatch.setattr(runtime, "_current", None)  # restored after the test
    runtime.install(runtime.WorkerRuntime(settings=settings, database=app_db))
    try:
        yield owner_db
    finally:
        app_db.dispose()
        owner_db.dispose()


def deleted(owner: Database) -> Seeded:
    """acme and globex (seeded with members and projects, and an audit record each), both deleted."""
    with owner.session_scope() as session:
        seeded = seed(session)
        for tenant_id in (seeded.tenant_a, seeded.tenant_b):
            tenancy.set_tenant(session, tenant_id)
            audit.record(session, action="project.create", tenant_id=tenant_id)
            tenants.delete_tenant(session, cli_operator(), tenant_id, dt.datetime.now(dt.UTC))
    return seeded


def test_the_daily_task_purges_the_tenants_due(owner: Database, caplog: pytest.LogCaptureFixture) -> None:
    seeded = deleted(owner)
    make_due(owner, seeded.tenant_a)
    kept = rows_of(owner, seeded.tenant_b)

    with caplog.at_level(logging.INFO, logger=tasks.log.name):
        assert tasks.purge_tenants_periodic.call_local() == ["acme"]
    assert rows_of(owner, seeded.tenant_a) == dict.fromkeys(kept, 0)
    assert rows_of(owner, seeded.tenant_b) == kept  # deleted, but still within its grace period
    (line,) = [r for r in caplog.records if r.getMessage() == "purged deleted tenants"]
    assert (line.__dict__["purged"], line.__dict__["tenants"]) == (1, ["acme"])

    assert tasks.purge_tenants_periodic.call_local() == []  # a second run has nothing left to do


def test_the_purge_is_scheduled_daily() -> None:
    task = tasks.purge_tenants_periodic.task_class()
    runs = [dt.datetime(2024, 5, 1, 0, 0) + dt.timedelta(minutes=m) for m in range(2 * 24 * 60)]
    assert [when for when in runs if task.validate_datetime(when)] == [
        dt.datetime(2024, 5, 1, 3, 17),
        dt.datetime(2024, 5, 2, 3, 17),
    ]


def test_the_hourly_task_removes_every_tenants_expired_idempotency_keys(owner: Database) -> None:
    """Their stored answers may hold credentials and are never replayed after 24 hours: the worker removes
    them for every tenant (on PostgreSQL as the app role, through the owner's function) and keeps the rest."""
    with owner.session_scope() as session:
        seeded = seed(session)
    app = runtime.current().database
    now = dt.datetime.now(dt.UTC)
    old, fresh = now - idempotency.RETENTION - dt.timedelta(minutes=1), now - dt.timedelta(hours=1)
    answer = idempotency.Replay(201, [], b"{}")
    for tenant_id, when in (
        (seeded.tenant_a, old),
        (seeded.tenant_b, old),
        (None, old),
        (seeded.tenant_a, fresh),
    ):
        scope = idempotency.scope(tenant_id, "user:x")
        request = idempotency.Request(tenant_id, scope, f"k-{when.timestamp()}", "POST", "/api/v1/apps", "h")
        idempotency.keep(app, request, answer, when)

    assert tasks.purge_idempotency_keys_periodic.call_local() == 3
    assert tasks.purge_idempotency_keys_periodic.call_local() == 0
    with owner.session_scope(write=False) as session:
        kept = session.execute(select(IdempotencyKey.tenant_id, IdempotencyKey.created_at)).all()
    assert [(tenant_id, when) for tenant_id, when in kept] == [(seeded.tenant_a, fresh)]


def test_the_idempotency_key_purge_is_scheduled_hourly() -> None:
    task = tasks.purge_idempotency_keys_periodic.task_class()
    runs = [dt.datetime(2024, 5, 1, 0, 0) + dt.timedelta(minutes=m) for m in range(3 * 60)]
    assert [when for when in runs if task.validate_datetime(when)] == [
        dt.datetime(2024, 5, 1, hour, 41) for hour in range(3)
    ]
