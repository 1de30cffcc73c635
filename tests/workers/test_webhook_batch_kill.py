"""A real `appliance worker` SIGKILLed while a batch of successful webhook attempts is inside its transaction
(PostgreSQL, as the app role; Redis): the batch leaves nothing behind, and the restarted worker sends those
deliveries again and logs each attempt once."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import Tenant, WebhookAttempt, WebhookDelivery
from appliance.services.access.actors import Actor
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.services.webhooks.batches import APPLICATION_NAME
from appliance.workers import jobs as job_runner
from appliance.workers import queue
from tests.conftest import PgDatabase
from tests.receivers import Receiver
from tests.support import make_settings, stop_gracefully, wait_for
from tests.workers.test_webhook_worker import OVERRIDES, start_worker, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def settings(tmp_path: Path, pg_database: PgDatabase, redis_url: str) -> Iterator[Settings]:
    role = pg_database.create_role(password="app-secret")
    database = {"url": pg_database.url_as(role, "app-secret"), "migrations_url": pg_database.url}
    built = make_settings(tmp_path, None, redis_url, database=database, **OVERRIDES)
    queue.configure(built)
    jobs.install_pusher(job_runner.push)
    try:
        yield built
    finally:
        jobs.install_pusher(None)


def _count(owner: Database, what: Any, *where: Any) -> int:
    with owner.session_scope(write=False) as session:
        tenancy.set_platform(session)
        return int(session.scalar(select(func.count()).select_from(what).where(*where)) or 0)


def test_a_worker_killed_inside_a_batch_of_successes_loses_nothing_and_logs_nothing_twice(
    tmp_path: Path, settings: Settings, pg_database: PgDatabase
) -> None:
    total = 60
    app, owner = Database(settings), Database(settings, settings.migrations_url)
    log = tmp_path / "worker.log"
    with Receiver() as receiver:
        with app.session_scope() as session:
            tenancy.set_platform(session)
            tenant = Tenant(slug="acme", name="Acme")
            session.add(tenant)
            session.flush()
            tenancy.set_tenant(session, tenant.id)
            webhook_endpoints.create(
                session,
                Actor(user_id=None, tenant_id=tenant.id),
                url=receiver.url,
                policy=outbound.AddressPolicy.of(settings.outbound.allow_networks),
                event_types=["project.created"],
            )
            for n in range(total):
                events.publish(session, tenant_id=tenant.id, event_type="project.created", data={"n": n})
        # Hold every delivery's row against updates (not against the attempts' foreign-key checks): the
        # worker's first batch of successes logs its attempts, then waits inside its transaction to settle
        # their deliveries.
        holder = owner.engine.connect()
        holder.execute(text("SELECT id FROM webhook_deliveries FOR NO KEY UPDATE"))
        env = worker_env(settings)
        worker = start_worker(env, log)
        try:

            def batch_waits() -> bool:
                with owner.engine.connect() as conn:
                    waiting = conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                            "AND wait_event_type = 'Lock'"
                        ),
                        {"name": APPLICATION_NAME},
                    ).scalar_one()
                return bool(waiting) and receiver.count() >= 10

            wait_for(batch_waits, timeout=60, interval=0.05, what=f"a batch waiting (worker log: {log})")
        finally:
            worker.send_signal(signal.SIGKILL)  # (also when the wait failed: no worker outlives the test)
            worker.wait(timeout=30)
            holder.rollback()
            holder.close()
        sent_before = receiver.count()
        try:
            assert _count(owner, WebhookAttempt) == 0  # the killed batch left nothing
            assert _count(owner, WebhookDelivery, WebhookDelivery.state == "succeeded") == 0
            worker = start_worker(env, log)

            def all_succeeded() -> bool:
                return _count(owner, WebhookDelivery, WebhookDelivery.state == "succeeded") == total

            wait_for(all_succeeded, timeout=120, interval=0.2, what=f"every delivery (worker log: {log})")
        finally:
            stop_gracefully(worker)
        received = list(receiver.received)
    with owner.session_scope(write=False) as session:
        tenancy.set_platform(session)
        logged = Counter(session.scalars(select(WebhookAttempt.delivery_id)))
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery))
    app.dispose()
    owner.dispose()
    assert len(logged) == deliveries == total
    assert set(logged.values()) == {1}  # one attempt logged per delivery: none twice
    assert len(Counter(r.headers["webhook-id"] for r in received)) == total  # every message arrived
    assert len(received) >= total + sent_before  # those sent before the kill were sent again
