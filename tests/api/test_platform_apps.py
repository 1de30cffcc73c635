"""/api/v1/platform/apps over HTTP on SQLite and on PostgreSQL as an app role under row-level security:
operators see every tenant's monitored apps with their tenant and open incident (from checks the monitor's
services wrote), one tenant's with ?tenant_id=, a page at a time, and one app's checks, incidents and
uptime; tenants' users are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from appliance.api.schemas.times import rfc3339
from appliance.db.base import utcnow
from appliance.services.monitoring import monitor
from appliance.services.monitoring import status as app_status
from appliance.services.monitoring.checks import CheckRow
from appliance.services.monitoring.status import Tracker, Transition
from tests.api.test_apps import PUBLIC_URL
from tests.identity import Identity, Member, TenantHandle

PLATFORM = "/api/v1/platform/apps"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _app(identity: Identity, tenant: TenantHandle, name: str) -> dict[str, Any]:
    made = identity.client.post(
        "/api/v1/apps", json={"name": name, "url": PUBLIC_URL}, headers=tenant.owner.headers
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _checks(
    identity: Identity, tenant: TenantHandle, app_id: str, results: list[bool], start: dt.datetime
) -> None:
    """Count ``results`` (one a second from ``start``) as the monitor does, and store them with the
    transitions they make (3 failures in a row: down, an incident opens; 2 successes: up again)."""
    tracker, batch = Tracker(), monitor.Batch()
    for i, ok in enumerate(results):
        at = start + dt.timedelta(seconds=i)
        row = CheckRow(uuid.UUID(app_id), at, ok, 200 if ok else None, 5.0, None if ok else "timed out")
        batch.add(tenant.id, row)
        old = tracker.status
        new = app_status.observe(tracker, ok=ok, at=at, fail_threshold=3, recover_threshold=2)
        if new is not None:
            since = tracker.run_started or at
            batch.transitions.append(
                Transition(tenant.id, uuid.UUID(app_id), old, new, at, since, row.error or "recovered")
            )
    with identity.database.session_scope() as session:
        monitor.store(session, batch)


def _every_page(identity: Identity, member: Member, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = _ok(identity.client.get(PLATFORM, params=query, headers=member.headers))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_operators_see_every_tenants_apps_with_their_tenant_and_open_incident(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    shop = _app(identity, acme, "Shop")
    blog = _app(identity, globex, "Blog")
    api = _app(identity, acme, "API")
    start = utcnow().replace(microsecond=0) - dt.timedelta(minutes=10)
    _checks(identity, acme, shop["id"], [True, False, False, False], start)  # down since its 2nd check
    _checks(identity, globex, blog["id"], [False, False, False, True, True], start)  # down, then up
    _checks(identity, acme, api["id"], [True], start)

    operator = identity.operator.headers
    listed = _ok(identity.client.get(PLATFORM, headers=operator))
    assert listed["next_cursor"] is None
    items = {item["name"]: item for item in listed["items"]}
    assert [item["name"] for item in listed["items"]] == ["API", "Blog", "Shop"]  # newest first
    assert (items["Shop"]["tenant_slug"], items["Shop"]["tenant_id"]) == ("acme", str(acme.id))
    assert (items["Blog"]["tenant_slug"], items["Blog"]["tenant_id"]) == ("globex", str(globex.id))
    assert items["Shop"]["status"] == "down"
    assert items["Shop"]["open_incident_since"] == rfc3339(start + dt.timedelta(seconds=1))
    assert items["Blog"]["status"] == "up"
    assert items["Blog"]["open_incident_since"] is None  # its incident closed
    assert items["API"]["open_incident_since"] is None
    # The app as its tenant sees it, plus whose it is.
    own = _ok(identity.client.get(f"/api/v1/apps/{shop['id']}", headers=acme.owner.headers))
    assert {k: v for k, v in items["Shop"].items() if k in own} == own

    mine = _ok(identity.client.get(PLATFORM, params={"tenant_id": str(acme.id)}, headers=operator))
    assert [item["name"] for item in mine["items"]] == ["API", "Shop"]
    down = _ok(identity.client.get(PLATFORM, params={"status": "down"}, headers=operator))
    assert [item["name"] for item in down["items"]] == ["Shop"]
    globex_down = identity.client.get(
        PLATFORM, params={"status": "down", "tenant_id": str(globex.id)}, headers=operator
    )
    assert _ok(globex_down)["items"] == []
    unknown = identity.client.get(PLATFORM, params={"tenant_id": str(uuid.uuid4())}, headers=operator)
    _error(unknown, 404, "TENANT_NOT_FOUND")
    assert identity.client.get(PLATFORM, params={"status": "sideways"}, headers=operator).status_code == 422


def test_one_app_with_its_checks_incidents_and_uptime(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    shop = _app(identity, acme, "Shop")
    _app(identity, globex, "Blog")
    start = utcnow().replace(microsecond=0) - dt.timedelta(minutes=10)
    _checks(identity, acme, shop["id"], [False, False, False, True, True, False, False, False], start)
    operator = identity.operator.headers
    url = f"{PLATFORM}/{shop['id']}"

    one = _ok(identity.client.get(url, headers=operator))
    assert (one["name"], one["tenant_slug"], one["status"]) == ("Shop", "acme", "down")
    assert one["open_incident_since"] == rfc3339(start + dt.timedelta(seconds=5))
    checks = _ok(identity.client.get(f"{url}/checks", params={"limit": 200}, headers=operator))["items"]
    assert len(checks) == 8
    assert [c["checked_at"] for c in checks] == sorted((c["checked_at"] for c in checks), reverse=True)
    failed = _ok(identity.client.get(f"{url}/checks", params={"ok": False}, headers=operator))["items"]
    assert len(failed) == 6
    assert {c["error"] for c in failed} == {"timed out"}
    # The same pages as the tenant's own route.
    theirs = _ok(identity.client.get(f"/api/v1/apps/{shop['id']}/checks", headers=acme.owner.headers))
    assert _ok(identity.client.get(f"{url}/checks", headers=operator)) == theirs
    first = _ok(identity.client.get(f"{url}/incidents", params={"limit": 1}, headers=operator))
    assert [(i["started_at"], i["ended_at"]) for i in first["items"]] == [
        (rfc3339(start + dt.timedelta(seconds=5)), None)
    ]
    rest = _ok(
        identity.client.get(f"{url}/incidents", params={"cursor": first["next_cursor"]}, headers=operator)
    )
    assert [(i["started_at"], i["ended_at"]) for i in rest["items"]] == [
        (rfc3339(start), rfc3339(start + dt.timedelta(seconds=3)))
    ]
    uptime = _ok(identity.client.get(f"{url}/uptime", headers=operator))
    assert uptime["app_id"] == shop["id"]
    assert uptime["windows"]["24h"] == {"checks": 8, "failures": 6, "percent": 25.0}

    nobody = uuid.uuid4()
    for tail in ("", "/checks", "/incidents", "/uptime"):
        missing = identity.client.get(f"{PLATFORM}/{nobody}{tail}", headers=operator)
        assert _error(missing, 404, "APP_NOT_FOUND")["details"] == {"app_id": str(nobody)}


def test_pages_cross_tenants_newest_first(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    made = [_app(identity, acme if i % 2 else globex, f"app-{i}")["id"] for i in range(7)]
    operator = identity.operator
    seen = _every_page(identity, operator, limit=2)
    assert [item["id"] for item in seen] == made[::-1]
    assert [item["tenant_slug"] for item in seen] == ["globex", "acme"] * 3 + ["globex"]
    one_tenant = _every_page(identity, operator, limit=2, tenant_id=str(acme.id))
    assert [item["id"] for item in one_tenant] == [made[5], made[3], made[1]]
    # A cursor of the tenant's own list is not one of this list's.
    theirs = _ok(identity.client.get("/api/v1/apps", params={"limit": 1}, headers=acme.owner.headers))
    refused = identity.client.get(
        PLATFORM, params={"cursor": theirs["next_cursor"]}, headers=operator.headers
    )
    _error(refused, 422, "INVALID_CURSOR")


def test_only_operators_read_them(identity: Identity) -> None:
    acme = identity.tenant("acme")
    shop = _app(identity, acme, "Shop")
    for path in (PLATFORM, f"{PLATFORM}/{shop['id']}", f"{PLATFORM}/{shop['id']}/checks"):
        refused = identity.client.get(path, headers=acme.owner.headers)
        assert _error(refused, 403, "OPERATOR_REQUIRED")["details"] == {"permission": "platform_apps:read"}
        assert "Shop" not in refused.text
    watcher = identity.new_operator(read_only=True)
    assert [item["id"] for item in _every_page(identity, watcher)] == [shop["id"]]
    assert _ok(identity.client.get(f"{PLATFORM}/{shop['id']}/uptime", headers=watcher.headers))
