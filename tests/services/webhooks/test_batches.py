"""Webhook attempts in batches on PostgreSQL (appliance.services.webhooks.batches), as the worker's app role
without BYPASSRLS, against a real receiver: concurrent deliveries of two tenants are each logged once and
settled, a batch written twice logs nothing twice, a delivery the database refuses fails alone, one removed
meanwhile is left out, and what is not batched (a disabled endpoint, a failed attempt) takes the session
steps."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import Tenant, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import clients as http_clients
from appliance.services.webhooks import batches as webhook_batches
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import events
from appliance.services.webhooks import sender as webhook_sender
from appliance.services.webhooks.batches import BatchedStore, Read, Success
from tests.conftest import PgDatabase
from tests.receivers import Receiver, Reply
from tests.services.webhooks.harness import Harness, config
from tests.support import make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_db(tmp_path: Path, pg_database: PgDatabase) -> Iterator[Database]:
    """The database as the workers' role (row-level security applies)."""
    role = pg_database.create_role(password="app-secret")
    database = {"url": pg_database.url_as(role, "app-secret"), "migrations_url": pg_database.url}
    app = Database(make_settings(tmp_path, None, None, database=database))
    try:
        yield app
    finally:
        app.dispose()


@pytest.fixture
def owner(pg_database: PgDatabase, app_db: Database, tmp_path: Path) -> Iterator[Database]:
    """The schema owner (no row-level security), to look at every tenant's rows and to change them."""
    database = Database(make_settings(tmp_path / "owner", pg_database.url, migrated=False))
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def store(app_db: Database) -> Iterator[BatchedStore]:
    batched = BatchedStore(app_db)
    try:
        yield batched
    finally:
        batched.close()


def _tenant(owner: Database, slug: str, app_db: Database) -> Harness:
    with owner.session_scope() as session:
        tenant = Tenant(slug=slug, name=slug.title())
        session.add(tenant)
        session.flush()
        return Harness(app_db, tenant.id)


def _attempts(owner: Database) -> list[WebhookAttempt]:
    with owner.session_scope(write=False) as session:
        tenancy.set_platform(session)
        rows = list(session.scalars(select(WebhookAttempt)))
        session.expunge_all()
        return rows


def _deliveries(owner: Database) -> dict[uuid.UUID, WebhookDelivery]:
    with owner.session_scope(write=False) as session:
        tenancy.set_platform(session)
        rows = {row.id: row for row in session.scalars(select(WebhookDelivery))}
        session.expunge_all()
        return rows


def _ok(status: int = 204, excerpt: str = "") -> webhook_sender.Answer:
    return webhook_sender.Answer(status, 1.5, None, excerpt)


async def _deliver_all(store: BatchedStore, runs: list[tuple[Harness, WebhookDelivery]]) -> list[Any]:
    clients = http_clients.Clients()
    try:

        async def one(harness: Harness, delivery: WebhookDelivery) -> Any:
            assert delivery.job_id is not None
            return await webhook_delivery.deliver(
                store,
                harness.tenant_id,
                delivery.id,
                attempt=webhook_delivery.JobAttempt(delivery.job_id, 1, events.DELIVER.max_attempts),
                config=config(),
                clients=clients,
            )

        return await asyncio.gather(*(one(h, d) for h, d in runs), return_exceptions=True)
    finally:
        await clients.aclose()


def _prepared(store: BatchedStore, harness: Harness, deliveries: list[WebhookDelivery]) -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    reads = [Read(harness.tenant_id, d.id, d.job_id or uuid.uuid4(), now) for d in deliveries]
    return store.read_batch(reads)


def test_concurrent_deliveries_of_two_tenants_are_each_logged_once(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    acme, globex = _tenant(owner, "acme", app_db), _tenant(owner, "globex", app_db)
    with Receiver() as receiver:
        acme.endpoint(receiver.url)
        failing = globex.endpoint(receiver.url)
        with owner.session_scope() as session:  # globex's endpoint has failed since an hour ago
            tenancy.set_platform(session)
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == failing.id)
                .values(failing_since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            )
        runs = [(h, d) for n in range(20) for h in (acme, globex) for d in h.publish(n=n)]
        results = asyncio.run(_deliver_all(store, runs))
        assert receiver.count() == 40
    assert results == [{"status": 204, "attempt": 1}] * 40
    attempts = _attempts(owner)
    assert sorted(a.delivery_id for a in attempts) == sorted(d.id for _, d in runs)  # each once
    assert {(a.attempt, a.status_code, a.error) for a in attempts} == {(1, 204, None)}
    by_delivery = {a.delivery_id: a.tenant_id for a in attempts}
    assert all(by_delivery[d.id] == h.tenant_id for h, d in runs)
    deliveries = _deliveries(owner)
    # (each endpoint's creation was an event too, not sent here)
    assert {
        (deliveries[d.id].state, deliveries[d.id].attempts, deliveries[d.id].last_status) for _, d in runs
    } == {("succeeded", 1, 204)}
    assert globex.get_endpoint(failing.id).failing_since is None


def test_a_batch_written_twice_logs_each_attempt_once(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    acme, globex = _tenant(owner, "acme", app_db), _tenant(owner, "globex", app_db)
    acme.endpoint("http://127.0.0.1:9/hook")
    globex.endpoint("http://127.0.0.1:9/hook")
    now = dt.datetime.now(dt.UTC)
    successes = []
    for harness in (acme, globex):
        deliveries = [d for n in range(3) for d in harness.publish(n=n)]
        for delivery, prepared in zip(deliveries, _prepared(store, harness, deliveries), strict=True):
            assert isinstance(prepared, webhook_delivery.Prepared)
            assert delivery.job_id is not None
            successes.append(Success(prepared, _ok(), delivery.job_id, now, uuid.uuid4()))
    assert store.write_batch(successes) == [None] * 6
    assert store.write_batch(successes) == [None] * 6  # as if the first commit's answer had been lost
    attempts = _attempts(owner)
    assert sorted(a.id for a in attempts) == sorted(s.attempt_id for s in successes)
    states = _deliveries(owner)
    assert {states[s.prepared.delivery_id].state for s in successes} == {"succeeded"}


def test_a_delivery_the_database_refuses_fails_alone(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    acme = _tenant(owner, "acme", app_db)
    acme.endpoint("http://127.0.0.1:9/hook")
    deliveries = [d for n in range(3) for d in acme.publish(n=n)]
    now = dt.datetime.now(dt.UTC)
    answers = [_ok(), _ok(excerpt="a NUL \x00 no text column takes"), _ok()]
    successes = [
        Success(prepared, answer, delivery.job_id or uuid.uuid4(), now, uuid.uuid4())
        for delivery, prepared, answer in zip(
            deliveries, _prepared(store, acme, deliveries), answers, strict=True
        )
    ]
    outcome = store.write_batch(successes)
    assert outcome[0] is None
    assert outcome[1] is not None
    assert outcome[2] is None
    assert sorted(a.delivery_id for a in _attempts(owner)) == sorted([deliveries[0].id, deliveries[2].id])
    states = {k: v.state for k, v in _deliveries(owner).items()}
    assert [states[d.id] for d in deliveries] == ["succeeded", "pending", "succeeded"]


def test_a_delivery_removed_meanwhile_is_left_out(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    acme = _tenant(owner, "acme", app_db)
    acme.endpoint("http://127.0.0.1:9/hook")
    deliveries = [d for n in range(3) for d in acme.publish(n=n)]
    prepared = _prepared(store, acme, deliveries)
    with owner.session_scope() as session:
        tenancy.set_platform(session)
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.id == deliveries[1].id))
    now = dt.datetime.now(dt.UTC)
    successes = [
        Success(p, _ok(), d.job_id or uuid.uuid4(), now, uuid.uuid4())
        for d, p in zip(deliveries, prepared, strict=True)
    ]
    assert store.write_batch(successes) == [None] * 3
    assert sorted(a.delivery_id for a in _attempts(owner)) == sorted([deliveries[0].id, deliveries[2].id])


def test_what_is_not_batched_takes_the_session_steps(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    acme = _tenant(owner, "acme", app_db)
    with Receiver(lambda _g, _n: Reply(500, body=b"down")) as receiver:
        failing = acme.endpoint(receiver.url)
        off = acme.endpoint(receiver.url, event_types=["project.updated"])
        with owner.session_scope() as session:
            tenancy.set_platform(session)
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == off.id)
                .values(enabled=False, disabled_reason="turned off")
            )
        (first,) = acme.publish("project.created", n=1)
        with acme.session() as session:  # a delivery to the disabled endpoint
            message = session.get(WebhookMessage, first.message_id)
            assert message is not None
            stranded = events.add_delivery(session, message, off.id, now=dt.datetime.now(dt.UTC))
            session.flush()
            session.expunge(stranded)
        results = asyncio.run(_deliver_all(store, [(acme, first), (acme, stranded)]))
    assert isinstance(results[0], jobs.RetryLater)
    assert isinstance(results[1], jobs.PermanentFailure)
    assert "turned off" in results[1].reason
    deliveries = _deliveries(owner)
    assert (deliveries[first.id].state, deliveries[first.id].last_status) == ("pending", 500)
    assert deliveries[stranded.id].state == "failed"
    (attempt,) = _attempts(owner)
    assert (attempt.delivery_id, attempt.status_code, attempt.response_excerpt) == (first.id, 500, "down")
    assert acme.get_endpoint(failing.id).failing_since is not None


def test_a_batch_reads_its_deliveries_by_key_however_many_the_endpoint_has(
    owner: Database, app_db: Database, store: BatchedStore
) -> None:
    """Joined from the tenant's endpoint, the read walked every delivery of it (thousands) to keep the few
    asked for; its plan must find them by their keys."""
    acme = _tenant(owner, "acme", app_db)
    acme.endpoint("http://127.0.0.1:9/hook")
    with acme.session() as session:
        for n in range(1500):
            events.publish(session, tenant_id=acme.tenant_id, event_type="project.created", data={"n": n})
    with owner.session_scope(write=False) as session:
        tenancy.set_platform(session)
        ids = list(session.scalars(select(WebhookDelivery.id).limit(8)))
    raw = app_db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT set_config('app.tenant_id', %s, false)", (str(acme.tenant_id),))
        cursor.execute("EXPLAIN " + webhook_batches._READ, {"tenant": acme.tenant_id, "ids": ids})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        raw.close()
    assert "pk_webhook_deliveries" in plan, plan
    assert "ix_webhook_deliveries_tenant_id_endpoint_id_created_at" not in plan, plan
