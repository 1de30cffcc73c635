"""Webhooks end to end with a real `appliance worker` process, on both databases (PostgreSQL as an app role
without BYPASSRLS) and both queues: a change made through the API reaches a receiver that verifies it with
the reference library; a worker SIGKILLed in the middle of a batch and restarted loses no message."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import Tenant, WebhookDelivery
from appliance.services.access.actors import Actor
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.workers import jobs as job_runner
from appliance.workers import queue
from tests.conftest import PgDatabase
from tests.identity import identity_api
from tests.receivers import Receiver, Reply, verifying
from tests.support import make_settings, settings_env, stop_gracefully, wait_for

OVERRIDES: dict[str, Any] = {
    "outbound": {"allow_networks": ["127.0.0.0/8"]},
    "jobs": {"lease_seconds": 2, "reap_interval": 0.5, "requeue_after": 2},
    "webhooks": {"concurrency": 10},
}


def worker_env(settings: Settings) -> dict[str, str]:
    return settings_env(settings) | {
        "APPLIANCE_DATABASE__MIGRATIONS_URL": settings.migrations_url,
        "APPLIANCE_OUTBOUND__ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "APPLIANCE_JOBS__LEASE_SECONDS": "2",
        "APPLIANCE_JOBS__REAP_INTERVAL": "0.5",
        "APPLIANCE_JOBS__REQUEUE_AFTER": "2",
        "APPLIANCE_WEBHOOKS__CONCURRENCY": "10",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def database_urls(database_url: str, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The owner's URL, and on PostgreSQL the URL of an app role without BYPASSRLS."""
    if not database_url.startswith("postgresql"):
        return database_url, None
    pg: PgDatabase = request.getfixturevalue("pg_database")
    role = pg.create_role(password="app-secret")
    return database_url, pg.url_as(role, "app-secret")


def test_a_project_made_through_the_api_reaches_a_verifying_receiver(
    tmp_path: Path, database_urls: tuple[str, str | None], queue_url: str
) -> None:
    owner_url, app_url = database_urls
    seen: list[dict[str, Any]] = []
    secret = ""
    log = tmp_path / "worker.log"
    with (
        Receiver(verifying(lambda: secret, seen)) as receiver,
        identity_api(tmp_path, owner_url, app_url, queue={"url": queue_url}, **OVERRIDES) as api,
    ):
        acme = api.tenant("acme")
        made = api.client.post(
            "/api/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["project.created"]},
            headers=acme.owner.headers,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        worker = start_worker(worker_env(api.settings), log)
        try:
            org = api.client.post(
                "/api/v1/organizations", json={"name": "Eng", "slug": "eng"}, headers=acme.owner.headers
            ).json()
            project = api.client.post(
                "/api/v1/projects",
                json={"organization_id": org["id"], "name": "Rocket"},
                headers=acme.owner.headers,
            ).json()
            wait_for(lambda: seen, timeout=60, what=f"the delivery (worker log: {log})")
        finally:
            stop_gracefully(worker)
    (got,) = seen
    assert got["payload"]["type"] == "project.created"
    assert got["payload"]["data"]["id"] == project["id"]


@pytest.fixture
def batch_settings(
    tmp_path: Path, database_urls: tuple[str, str | None], queue_url: str
) -> Iterator[Settings]:
    owner_url, app_url = database_urls
    database: dict[str, Any] = {"url": app_url or owner_url}
    if app_url:
        database["migrations_url"] = owner_url
    settings = make_settings(tmp_path, None, queue_url, database=database, **OVERRIDES)
    queue.configure(settings)
    jobs.install_pusher(job_runner.push)
    try:
        yield settings
    finally:
        jobs.install_pusher(None)


def test_a_worker_killed_mid_batch_loses_no_message(tmp_path: Path, batch_settings: Settings) -> None:
    total = 200
    database = Database(batch_settings)
    log = tmp_path / "worker.log"
    with Receiver(lambda _g, _n: Reply(204, delay=0.3)) as receiver:
        with database.session_scope() as session:
            tenancy.set_platform(session)
            tenant = Tenant(slug="acme", name="Acme")
            session.add(tenant)
            session.flush()
            tenancy.set_tenant(session, tenant.id)
            actor = Actor(user_id=None, tenant_id=tenant.id)
            policy = outbound.AddressPolicy.of(batch_settings.outbound.allow_networks)
            webhook_endpoints.create(
                session, actor, url=receiver.url, policy=policy, event_types=["project.created"]
            )
            for i in range(total):
                events.publish(session, tenant_id=tenant.id, event_type="project.created", data={"n": i})
        tenant_id = tenant.id
        env = worker_env(batch_settings)
        worker = start_worker(env, log)
        try:
            wait_for(lambda: receiver.count() >= 40, timeout=60, what="the first deliveries")
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            assert receiver.count() < total, "the batch finished before the kill"
            worker = start_worker(env, log)

            def succeeded() -> bool:
                with database.session_scope(write=False) as session:
                    tenancy.set_tenant(session, tenant_id)
                    done = session.scalar(
                        select(func.count())
                        .select_from(WebhookDelivery)
                        .where(WebhookDelivery.state == "succeeded")
                    )
                return done == total

            wait_for(succeeded, timeout=180, interval=0.2, what=f"every delivery (worker log: {log})")
        finally:
            stop_gracefully(worker)
        received = list(receiver.received)
    database.dispose()
    ids = Counter(r.headers["webhook-id"] for r in received)
    assert len(ids) == total  # every message arrived
    bodies: dict[str, set[bytes]] = {}
    for r in received:
        bodies.setdefault(r.headers["webhook-id"], set()).add(r.body)
    differing = {i: b for i, b in bodies.items() if len(b) != 1}
    assert differing == {}  # a duplicate is the same message, same id and body
    assert len(received) >= total
