"""The application monitor against real HTTP servers on loopback, on both databases (PostgreSQL as an app
role without BYPASSRLS): an app that starts failing goes down with an incident and an app.down event and
comes back up with the incident closed and app.up; checks, rollups and uptime agree; a name that does not
resolve is a failed check with its reason while other apps carry on; heartbeat silence and beats; a changed
URL and a deleted app are picked up; and the same from a real `appliance worker --periodic` process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from appliance.db import tenancy
from appliance.models import AppCheck, AppCheckHourly
from appliance.workers.monitor import Monitor
from tests.conftest import PgDatabase
from tests.identity import Identity, TenantHandle, identity_api
from tests.receivers import Received, Receiver, Reply
from tests.support import settings_env, stop_gracefully, wait_for

APPS = "/api/v1/apps"
OVERRIDES: dict[str, Any] = {
    "outbound": {"allow_networks": ["127.0.0.0/8"]},
    "monitoring": {"min_interval": 1, "refresh_seconds": 0.5},
}


class Target:
    """A loopback server the monitor probes; ``status`` is what it answers now."""

    def __init__(self) -> None:
        self.status = 200
        self._lock = threading.Lock()
        self.receiver = Receiver(self._respond, path="/health")

    def _respond(self, _got: Received, _number: int) -> Reply:
        with self._lock:
            return Reply(self.status, body=b"ok")

    def answer(self, status: int) -> None:
        with self._lock:
            self.status = status

    @property
    def url(self) -> str:
        return self.receiver.url

    def __enter__(self) -> Target:
        self.receiver.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.receiver.__exit__(*exc)


@pytest.fixture
def mon(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Identity]:
    app_url = None
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        app_url = pg.url_as(role, "app-secret")
    with identity_api(tmp_path, database_url, app_url, **OVERRIDES) as ident:
        yield ident


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as t:
        yield t


@pytest.fixture
def running(mon: Identity) -> Iterator[Monitor]:
    monitor = Monitor(mon.settings, mon.database, refresh_every=0.5, flush_every=0.2).start()
    try:
        yield monitor
    finally:
        monitor.stop()


def create(mon: Identity, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    payload = {"name": "Shop", "interval": 1, "timeout": 1, **body}
    response = mon.client.post(APPS, json=payload, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def get(mon: Identity, tenant: TenantHandle, path: str, **params: Any) -> Any:
    response = mon.client.get(path, params=params, headers=tenant.owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def status(mon: Identity, tenant: TenantHandle, app_id: str) -> str:
    value: str = get(mon, tenant, f"{APPS}/{app_id}")["status"]
    return value


def all_checks(mon: Identity, tenant: TenantHandle, app_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = get(mon, tenant, f"{APPS}/{app_id}/checks", **params)
        found.extend(page["items"])
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def event_types(mon: Identity, tenant: TenantHandle) -> list[str]:
    items = get(mon, tenant, "/api/v1/webhooks/messages", limit=100)["items"]
    return [m["event_type"] for m in reversed(items)]  # oldest first


def test_an_app_goes_down_and_up_with_its_incident_and_events(
    mon: Identity, target: Target, running: Monitor
) -> None:
    acme = mon.tenant("acme")
    with Receiver() as hook:  # an endpoint for the events: their messages are what is checked
        endpoint = mon.client.post(
            "/api/v1/webhooks/endpoints",
            json={"url": hook.url, "event_types": ["app.down", "app.up"]},
            headers=acme.owner.headers,
        )
        assert endpoint.status_code == 201, endpoint.text
        app = create(mon, acme, url=target.url, fail_threshold=2, recover_threshold=2)
        app_id = app["id"]
        wait_for(lambda: status(mon, acme, app_id) == "up", 15, what="the first successful checks")
        assert get(mon, acme, f"{APPS}/{app_id}/incidents")["items"] == []
        assert event_types(mon, acme) == []  # unknown -> up tells nobody

        target.answer(500)
        wait_for(lambda: status(mon, acme, app_id) == "down", 15, what="two failed checks")
        incidents = get(mon, acme, f"{APPS}/{app_id}/incidents")["items"]
        assert len(incidents) == 1
        assert incidents[0]["ended_at"] is None
        assert "500" in incidents[0]["reason"]
        assert event_types(mon, acme) == ["app.down"]
        failed = get(mon, acme, f"{APPS}/{app_id}/checks", ok="false")["items"]
        assert failed
        assert {c["status_code"] for c in failed} == {500}

        target.answer(200)
        wait_for(lambda: status(mon, acme, app_id) == "up", 15, what="two successful checks")
        (closed,) = get(mon, acme, f"{APPS}/{app_id}/incidents")["items"]
        assert closed["id"] == incidents[0]["id"]
        assert closed["ended_at"] is not None
        assert closed["ended_at"] >= closed["started_at"]
        assert event_types(mon, acme) == ["app.down", "app.up"]

    running.stop()  # everything measured is written
    checks = all_checks(mon, acme, app_id)
    failures = sum(1 for c in checks if not c["ok"])
    assert failures >= 2
    assert len(checks) > failures
    uptime = get(mon, acme, f"{APPS}/{app_id}/uptime")["windows"]
    assert (uptime["24h"]["checks"], uptime["24h"]["failures"]) == (len(checks), failures)
    assert uptime["24h"]["percent"] == round(100 * (len(checks) - failures) / len(checks), 3)
    with mon.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        rolled = session.execute(
            select(func.sum(AppCheckHourly.checks), func.sum(AppCheckHourly.failures)).where(
                AppCheckHourly.app_id == uuid.UUID(app_id)
            )
        ).one()
        raw = session.scalar(
            select(func.count()).select_from(AppCheck).where(AppCheck.app_id == uuid.UUID(app_id))
        )
    assert tuple(rolled) == (len(checks), failures)
    assert raw == len(checks)


def test_a_name_that_does_not_resolve_fails_with_its_reason_and_others_carry_on(
    mon: Identity, target: Target, running: Monitor
) -> None:
    acme = mon.tenant("acme")
    lost = create(mon, acme, name="Lost", url="http://no-such-host.invalid/health", fail_threshold=1)
    fine = create(mon, acme, name="Fine", url=target.url)
    wait_for(lambda: status(mon, acme, lost["id"]) == "down", 20, what="the unresolvable app down")
    wait_for(lambda: status(mon, acme, fine["id"]) == "up", 20, what="the other app up")
    failed = get(mon, acme, f"{APPS}/{lost['id']}/checks")["items"]
    assert failed
    assert not any(c["ok"] for c in failed)
    assert all(c["status_code"] is None for c in failed)
    assert all("no-such-host.invalid" in c["error"] for c in failed), failed[0]["error"]
    (incident,) = get(mon, acme, f"{APPS}/{lost['id']}/incidents")["items"]
    assert "no-such-host.invalid" in incident["reason"]
    ok = get(mon, acme, f"{APPS}/{fine['id']}/checks")["items"]
    assert ok
    assert all(c["ok"] and c["status_code"] == 200 for c in ok)


def test_heartbeat_silence_is_down_and_a_beat_is_up(mon: Identity, running: Monitor) -> None:
    acme = mon.tenant("acme")
    app = create(
        mon, acme, kind="heartbeat", url=None, interval=1, grace=1, fail_threshold=1, recover_threshold=1
    )
    beat_path = app["heartbeat_url"]
    wait_for(lambda: status(mon, acme, app["id"]) == "down", 20, what="silence past interval + grace")
    (check, *_) = get(mon, acme, f"{APPS}/{app['id']}/checks")["items"]
    assert not check["ok"]
    assert "no heartbeat within 2 s" in check["error"]

    assert mon.client.post(beat_path).status_code in (200, 202, 204)
    wait_for(lambda: status(mon, acme, app["id"]) == "up", 20, what="the beat counted")
    (incident,) = get(mon, acme, f"{APPS}/{app['id']}/incidents")["items"]
    assert incident["ended_at"] is not None


def test_a_changed_url_and_a_deleted_app_are_picked_up(
    mon: Identity, target: Target, running: Monitor
) -> None:
    acme = mon.tenant("acme")
    with Target() as other:
        other.answer(503)
        app = create(mon, acme, url=target.url, fail_threshold=1, recover_threshold=1)
        wait_for(lambda: status(mon, acme, app["id"]) == "up", 15, what="the first check")
        changed = mon.client.patch(f"{APPS}/{app['id']}", json={"url": other.url}, headers=acme.owner.headers)
        assert changed.status_code == 200, changed.text
        wait_for(lambda: status(mon, acme, app["id"]) == "down", 15, what="the new URL probed")
        wait_for(lambda: other.receiver.count() > 0, 5, what="a probe of the new URL")

        gone = create(mon, acme, name="Gone", url=target.url)
        wait_for(lambda: len(get(mon, acme, f"{APPS}/{gone['id']}/checks")["items"]) > 0, 15, what="checks")
        assert mon.client.delete(f"{APPS}/{gone['id']}", headers=acme.owner.headers).status_code == 204
        # Within a refresh (0.5 s) the deleted app is dropped: the old URL, its only target now, goes quiet.
        time.sleep(1.5)
        quiet_from = target.receiver.count()
        kept = other.receiver.count()
        time.sleep(2.5)
        assert target.receiver.count() == quiet_from
        assert other.receiver.count() >= kept + 2  # the changed app is still probed, each second


def test_a_worker_process_monitors_the_apps(mon: Identity, target: Target, tmp_path: Path) -> None:
    acme = mon.tenant("acme")
    app = create(mon, acme, url=target.url, fail_threshold=1, recover_threshold=1)
    env = settings_env(mon.settings) | {
        "APPLIANCE_DATABASE__MIGRATIONS_URL": mon.settings.migrations_url,
        "APPLIANCE_MONITORING__ENABLED": "true",
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "1", "--periodic"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: status(mon, acme, app["id"]) == "up", 60, what="the worker's first check")
        target.answer(500)
        wait_for(lambda: status(mon, acme, app["id"]) == "down", 20, what="the worker's failed check")
    finally:
        stop_gracefully(worker)
    checks = all_checks(mon, acme, app["id"])
    assert any(c["ok"] and c["status_code"] == 200 for c in checks)
    assert any(not c["ok"] and c["status_code"] == 500 for c in checks)
    assert target.receiver.count() >= len(checks)
    assert worker.returncode == 0, log.read_text()[-3000:]
