"""/api/v1/apps over HTTP on both databases: the round trip, every refusal naming its value, heartbeats,
checks and incidents a page at a time, uptime, permissions and isolation between tenants."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models import AppIncident, AuditLog
from appliance.services.monitoring import checks as app_checks
from appliance.services.monitoring.checks import CheckRow
from tests.api.test_projects import invite
from tests.identity import Identity, Member, TenantHandle, identity_api

APPS = "/api/v1/apps"
PUBLIC_URL = "https://93.184.215.14/health"  # a literal public address: accepted without resolving a name


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def create(identity: Identity, member: Member, **body: Any) -> dict[str, Any]:
    response = identity.client.post(
        APPS, json={"name": "Shop", "url": PUBLIC_URL, **body}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{APPS}/{response.json()['id']}"
    data: dict[str, Any] = response.json()
    return data


def test_an_app_round_trip_with_audit_records(identity: Identity) -> None:
    acme = identity.tenant("acme")
    headers = acme.owner.headers
    app = create(identity, acme.owner, interval=30, keyword="ok", fail_threshold=4)
    assert (app["status"], app["kind"], app["interval"], app["fail_threshold"]) == ("unknown", "http", 30, 4)
    assert app["recover_threshold"] == 2
    assert app["heartbeat_url"] is None
    assert identity.client.get(f"{APPS}/{app['id']}", headers=headers).json() == app
    listed = identity.client.get(APPS, headers=headers).json()
    assert [a["id"] for a in listed["items"]] == [app["id"]]
    changed = identity.client.patch(
        f"{APPS}/{app['id']}", json={"name": "Storefront", "keyword": ""}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["keyword"]) == ("Storefront", None)
    assert identity.client.delete(f"{APPS}/{app['id']}", headers=headers).status_code == 204
    assert error(identity.client.get(f"{APPS}/{app['id']}", headers=headers), 404)["code"] == "APP_NOT_FOUND"
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.resource_id == app["id"]).order_by(AuditLog.seq)
        ).all()
    assert actions == ["app.create", "app.update", "app.delete"]


def test_bad_input_is_refused_naming_the_value(identity: Identity) -> None:
    acme = identity.tenant("acme")

    def refused(**body: Any) -> dict[str, Any]:
        payload = {"name": "Shop", "url": PUBLIC_URL, **body}
        return error(identity.client.post(APPS, json=payload, headers=acme.owner.headers), 422)

    not_http = refused(url="ftp://files.example/")
    assert not_http["code"] == "INVALID_URL"
    assert "ftp://files.example/" in not_http["message"]
    assert "http and https" in not_http["message"]
    too_long = refused(url="https://example.com/" + "a" * 2100)
    assert too_long["code"] == "INVALID_URL"
    assert "longer than 2048" in too_long["message"]
    loopback = refused(url="http://127.0.0.1:6379/")
    assert loopback["code"] == "INVALID_URL"
    assert "loopback" in loopback["message"]
    assert loopback["details"]["fields"][0]["loc"] == ["body", "url"]
    short = refused(interval=4)
    assert short["code"] == "INTERVAL_TOO_SHORT"
    assert "at least 5 seconds" in short["message"]
    assert "4" in short["message"]
    assert refused(url=None)["code"] == "URL_REQUIRED"
    assert refused(kind="heartbeat")["code"] == "URL_NOT_ALLOWED"
    assert refused(timeout=40, interval=30)["code"] == "TIMEOUT_TOO_LONG"
    assert refused(expected_status=99)["code"] == "VALIDATION_FAILED"
    app = create(identity, acme.owner)
    patched = identity.client.patch(f"{APPS}/{app['id']}", json={"interval": 1}, headers=acme.owner.headers)
    assert error(patched, 422)["code"] == "INTERVAL_TOO_SHORT"


def test_a_heartbeat_app_is_beaten_by_its_url_only(identity: Identity) -> None:
    acme = identity.tenant("acme")
    app = create(identity, acme.owner, kind="heartbeat", url=None, interval=60, grace=30)
    path = app["heartbeat_url"]
    assert path.startswith("/api/v1/heartbeats/hb_")
    assert app["last_beat_at"] is None
    assert identity.client.post(path).status_code == 204  # no credential but the URL
    assert identity.client.get(path).status_code == 204
    beaten = identity.client.get(f"{APPS}/{app['id']}", headers=acme.owner.headers).json()
    assert beaten["last_beat_at"] is not None
    assert beaten["updated_at"] == app["updated_at"]  # a beat is not a change of the app's settings
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    for wrong in (
        forged,
        "/api/v1/heartbeats/hb_" + uuid.uuid4().hex + "x" * 32,
        "/api/v1/heartbeats/nonsense",
    ):
        response = identity.client.post(wrong)
        assert error(response, 404)["code"] == "HEARTBEAT_NOT_FOUND"
        assert wrong.rsplit("/", 1)[1] not in response.text  # the token is a credential: never echoed


def test_the_heartbeat_url_is_whole_on_the_public_url(tmp_path: Path, database_url: str) -> None:
    """With api.public_url (behind a proxy, with a path prefix) every answer gives the URL to call as is."""
    public = {"public_url": "https://forge.example.com/monitor/"}
    with identity_api(tmp_path, database_url, api=public) as identity:
        acme = identity.tenant("acme")
        app = create(identity, acme.owner, kind="heartbeat", url=None, interval=60)
        url = app["heartbeat_url"]
        assert url.startswith("https://forge.example.com/monitor/api/v1/heartbeats/hb_"), url
        headers = acme.owner.headers
        assert identity.client.get(f"{APPS}/{app['id']}", headers=headers).json()["heartbeat_url"] == url
        assert [a["heartbeat_url"] for a in identity.client.get(APPS, headers=headers).json()["items"]] == [
            url
        ]
        patched = identity.client.patch(f"{APPS}/{app['id']}", json={"grace": 5}, headers=headers)
        assert patched.json()["heartbeat_url"] == url
        # The proxy takes the prefix off: the path after it beats the app here.
        assert identity.client.post(url.removeprefix("https://forge.example.com/monitor")).status_code == 204


def _record(identity: Identity, tenant: TenantHandle, app_id: str, rows: list[CheckRow]) -> None:
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, tenant.id)
        app_checks.record(session, tenant.id, rows)


def test_checks_incidents_and_uptime(identity: Identity) -> None:
    acme = identity.tenant("acme")
    headers = acme.owner.headers
    app = create(identity, acme.owner)
    app_id = uuid.UUID(app["id"])
    now = utcnow().replace(microsecond=0)
    # Today: 7 successes and 3 failures; 3 days ago: 10 failures; 20 days ago: 10 successes.
    rows = [CheckRow(app_id, now - dt.timedelta(seconds=i), i >= 3, 200, 12.5) for i in range(10)]
    rows += [
        CheckRow(app_id, now - dt.timedelta(days=3, seconds=i), False, error="timed out") for i in range(10)
    ]
    rows += [CheckRow(app_id, now - dt.timedelta(days=20, seconds=i), True, 200, 10.0) for i in range(10)]
    _record(identity, acme, app["id"], rows)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = identity.client.get(f"{APPS}/{app_id}/checks", params=params, headers=headers).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 30
    times = [c["checked_at"] for c in seen]
    assert times == sorted(times, reverse=True)  # newest first
    failed = identity.client.get(
        f"{APPS}/{app_id}/checks", params={"ok": False, "limit": 200}, headers=headers
    )
    assert len(failed.json()["items"]) == 13
    assert {c["error"] for c in failed.json()["items"]} == {None, "timed out"}
    uptime = identity.client.get(f"{APPS}/{app_id}/uptime", headers=headers).json()["windows"]
    assert uptime["24h"] == {"checks": 10, "failures": 3, "percent": 70.0}
    assert uptime["7d"] == {"checks": 20, "failures": 13, "percent": 35.0}
    assert uptime["30d"] == {"checks": 30, "failures": 13, "percent": 56.667}
    bad = identity.client.get(f"{APPS}/{app_id}/checks", params={"cursor": "bm9wZQ"}, headers=headers)
    assert error(bad, 422)["code"] == "INVALID_CURSOR"
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        for days in (2, 1):
            start = now - dt.timedelta(days=days)
            session.add(AppIncident(tenant_id=acme.id, app_id=app_id, started_at=start, reason="timed out"))
    incidents = identity.client.get(f"{APPS}/{app_id}/incidents", params={"limit": 1}, headers=headers).json()
    assert len(incidents["items"]) == 1
    assert incidents["items"][0]["ended_at"] is None
    rest = identity.client.get(
        f"{APPS}/{app_id}/incidents", params={"cursor": incidents["next_cursor"]}, headers=headers
    ).json()
    assert len(rest["items"]) == 1
    assert rest["items"][0]["started_at"] < incidents["items"][0]["started_at"]


def test_viewers_read_and_members_write(identity: Identity) -> None:
    acme = identity.tenant("acme")
    app = create(identity, acme.owner)
    viewer = invite(identity, acme, "viewer@acme.test", "viewer")
    assert identity.client.get(f"{APPS}/{app['id']}/uptime", headers=viewer.headers).status_code == 200
    refused = identity.client.post(APPS, json={"name": "x", "url": PUBLIC_URL}, headers=viewer.headers)
    assert error(refused, 403)["code"] == "PERMISSION_DENIED"
    assert identity.client.delete(f"{APPS}/{app['id']}", headers=viewer.headers).status_code == 403
    member = invite(identity, acme, "dev@acme.test", "member")
    create(identity, member, name="Member's app")


def test_another_tenant_sees_none_of_it(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    app = create(identity, acme.owner, name="acme-secret-app")
    for suffix in ("", "/checks", "/incidents", "/uptime"):
        response = identity.client.get(f"{APPS}/{app['id']}{suffix}", headers=globex.owner.headers)
        assert error(response, 404)["code"] == "APP_NOT_FOUND"
    listed = identity.client.get(APPS, headers=globex.owner.headers)
    assert listed.json() == {"items": [], "next_cursor": None}
    patched = identity.client.patch(f"{APPS}/{app['id']}", json={"name": "x"}, headers=globex.owner.headers)
    assert patched.status_code == 404
    assert identity.client.delete(f"{APPS}/{app['id']}", headers=globex.owner.headers).status_code == 404
    assert (
        identity.client.get(f"{APPS}/{app['id']}", headers=acme.owner.headers).json()["name"]
        == "acme-secret-app"
    )
