"""/api/v1/platform/webhooks/endpoints over HTTP on SQLite and on PostgreSQL as an app role under
row-level security: operators see every tenant's endpoints with their tenant and how the last 24 hours of
attempts went (attempts made by the delivery service against real receivers), read an endpoint's delivery
log, turn on an endpoint the appliance disabled, and replay failed deliveries and one message, each leaving
the tenant's audit records; read-only operators read only, tenants' users are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models import AuditLog, WebhookDelivery
from appliance.services.outbound import clients as http_clients
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import store as webhook_store
from tests.api.test_webhooks import add_endpoint, make_project
from tests.conftest import PgDatabase
from tests.identity import Identity, Member, TenantHandle, identity_api
from tests.receivers import Receiver, Reply

PLATFORM = "/api/v1/platform/webhooks/endpoints"


@pytest.fixture
def hooks(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Identity]:
    """The API with calls to loopback allowed (the receivers listen there)."""
    app_url = None
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        app_url = pg.url_as(role, "app-secret")
    with identity_api(tmp_path, database_url, app_url, outbound={"allow_networks": ["127.0.0.0/8"]}) as ident:
        yield ident


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _deliveries(hooks: Identity, tenant: TenantHandle, event_type: str) -> list[dict[str, Any]]:
    """The deliveries of the tenant's newest message of ``event_type``."""
    listed = _ok(
        hooks.client.get(
            "/api/v1/webhooks/messages", params={"event_type": event_type}, headers=tenant.owner.headers
        )
    )
    detail = _ok(
        hooks.client.get(
            f"/api/v1/webhooks/messages/{listed['items'][0]['id']}", headers=tenant.owner.headers
        )
    )
    deliveries: list[dict[str, Any]] = detail["deliveries"]
    return deliveries


def _deliver(
    hooks: Identity,
    tenant: TenantHandle,
    delivery_id: str,
    number: int = 1,
    now: Callable[[], dt.datetime] | None = None,
) -> Any:
    """Run the delivery's job body once, as the worker would (at ``now``, if given)."""
    with hooks.database.session_scope() as session:
        tenancy.set_tenant(session, tenant.id)
        job_id = session.scalars(
            select(WebhookDelivery.job_id).where(WebhookDelivery.id == uuid.UUID(delivery_id))
        ).one()
    assert job_id is not None

    async def go() -> Any:
        clients = http_clients.Clients()
        try:
            return await webhook_delivery.deliver(
                webhook_store.SessionStore(hooks.database),
                tenant.id,
                uuid.UUID(delivery_id),
                attempt=webhook_delivery.JobAttempt(job_id, number, 8),
                config=webhook_delivery.DeliveryConfig.of(hooks.settings),
                clients=clients,
                now=now or utcnow,
            )
        except Exception as exc:
            return exc
        finally:
            await clients.aclose()

    return asyncio.run(go())


def _trail(hooks: Identity, tenant: TenantHandle, resource_id: str) -> list[tuple[str, uuid.UUID | None]]:
    """The tenant's audit records about one resource: (action, acting user), oldest first."""
    with hooks.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        rows = session.execute(
            select(AuditLog.action, AuditLog.actor_user_id)
            .where(AuditLog.tenant_id == tenant.id, AuditLog.resource_id == resource_id)
            .order_by(AuditLog.seq)
        ).all()
    return [(row.action, row.actor_user_id) for row in rows]


def _queued_deliveries(hooks: Identity, tenant: TenantHandle) -> int:
    jobs = _ok(
        hooks.client.get(
            "/api/v1/jobs",
            params={"kind": "webhooks.deliver", "state": "queued", "limit": 200},
            headers=tenant.owner.headers,
        )
    )
    return len(jobs["items"])


def _every_page(hooks: Identity, member: Member, path: str, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = _ok(hooks.client.get(path, params=query, headers=member.headers))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_operators_see_every_tenants_endpoints_and_their_last_day(hooks: Identity) -> None:
    acme, globex = hooks.tenant("acme"), hooks.tenant("globex")
    with (
        Receiver(lambda _r, n: Reply(204 if n == 3 else 500)) as flaky,
        Receiver(lambda _r, _n: Reply(503)) as broken,
    ):
        shop = add_endpoint(hooks, acme, flaky.url, event_types=["project.created"])
        quiet = add_endpoint(hooks, acme, "https://example.com/quiet", event_types=["role.created"])
        failing = add_endpoint(hooks, globex, broken.url, event_types=["project.created"])
        make_project(hooks, acme)
        (to_shop,) = _deliveries(hooks, acme, "project.created")
        # Two days ago: an attempt that is not among the last 24 hours'.
        two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        assert isinstance(_deliver(hooks, acme, to_shop["id"], now=lambda: two_days_ago), Exception)
        assert isinstance(_deliver(hooks, acme, to_shop["id"], 2), Exception)  # 500
        assert _deliver(hooks, acme, to_shop["id"], 3) == {"status": 204, "attempt": 3}
        make_project(hooks, globex)
        (to_failing,) = _deliveries(hooks, globex, "project.created")
        assert isinstance(_deliver(hooks, globex, to_failing["id"]), Exception)

    operator = hooks.operator.headers
    listed = _ok(hooks.client.get(PLATFORM, headers=operator))
    assert [e["id"] for e in listed["items"]] == [failing["id"], quiet["id"], shop["id"]]  # newest first
    items = {e["id"]: e for e in listed["items"]}
    assert (items[shop["id"]]["tenant_slug"], items[shop["id"]]["tenant_id"]) == ("acme", str(acme.id))
    assert (items[failing["id"]]["tenant_slug"], items[failing["id"]]["tenant_id"]) == (
        "globex",
        str(globex.id),
    )
    assert (items[shop["id"]]["attempts_24h"], items[shop["id"]]["success_rate"]) == (2, 0.5)
    assert (items[failing["id"]]["attempts_24h"], items[failing["id"]]["success_rate"]) == (1, 0.0)
    assert (items[quiet["id"]]["attempts_24h"], items[quiet["id"]]["success_rate"]) == (0, None)
    assert all("secret" not in e for e in listed["items"])
    # The endpoint as its tenant sees it, plus whose it is and how its day went.
    own = _ok(hooks.client.get(f"/api/v1/webhooks/endpoints/{shop['id']}", headers=acme.owner.headers))
    assert {k: v for k, v in items[shop["id"]].items() if k in own} == own
    assert _ok(hooks.client.get(f"{PLATFORM}/{shop['id']}", headers=operator)) == items[shop["id"]]

    mine = _ok(hooks.client.get(PLATFORM, params={"tenant_id": str(acme.id)}, headers=operator))
    assert [e["id"] for e in mine["items"]] == [quiet["id"], shop["id"]]
    hooks.client.patch(
        f"/api/v1/webhooks/endpoints/{quiet['id']}", json={"enabled": False}, headers=acme.owner.headers
    )
    off = _ok(hooks.client.get(PLATFORM, params={"enabled": "false"}, headers=operator))
    assert [e["id"] for e in off["items"]] == [quiet["id"]]
    on = _ok(
        hooks.client.get(PLATFORM, params={"enabled": "true", "tenant_id": str(acme.id)}, headers=operator)
    )
    assert [e["id"] for e in on["items"]] == [shop["id"]]
    _error(
        hooks.client.get(PLATFORM, params={"tenant_id": str(uuid.uuid4())}, headers=operator),
        404,
        "TENANT_NOT_FOUND",
    )
    nobody = uuid.uuid4()
    missing = _error(
        hooks.client.get(f"{PLATFORM}/{nobody}", headers=operator), 404, "WEBHOOK_ENDPOINT_NOT_FOUND"
    )
    assert missing["details"] == {"endpoint_id": str(nobody)}

    # The delivery log, newest first, with each attempt's message, a page at a time.
    attempts = _every_page(hooks, hooks.operator, f"{PLATFORM}/{shop['id']}/attempts", limit=1)
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(3, 204), (2, 500), (1, 500)]
    assert {(a["message_id"], a["event_type"], a["delivery_id"]) for a in attempts} == {
        (to_shop["message_id"], "project.created", to_shop["id"])
    }
    theirs = _ok(
        hooks.client.get(f"/api/v1/webhooks/endpoints/{shop['id']}/attempts", headers=acme.owner.headers)
    )
    assert [{k: v for k, v in a.items() if k in theirs["items"][0]} for a in attempts] == theirs["items"]
    first = _ok(
        hooks.client.get(
            f"/api/v1/webhooks/endpoints/{shop['id']}/attempts",
            params={"limit": 1},
            headers=acme.owner.headers,
        )
    )
    foreign = hooks.client.get(
        f"{PLATFORM}/{shop['id']}/attempts", params={"cursor": first["next_cursor"]}, headers=operator
    )
    _error(foreign, 422, "INVALID_CURSOR")
    _error(
        hooks.client.get(f"{PLATFORM}/{nobody}/attempts", headers=operator), 404, "WEBHOOK_ENDPOINT_NOT_FOUND"
    )


def test_an_operator_turns_on_an_endpoint_the_appliance_disabled(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    with Receiver(lambda _r, _n: Reply(410)) as gone:
        endpoint = add_endpoint(hooks, acme, gone.url, event_types=["project.created"])
        make_project(hooks, acme)
        (delivery,) = _deliveries(hooks, acme, "project.created")
        assert isinstance(_deliver(hooks, acme, delivery["id"]), Exception)
    url = f"{PLATFORM}/{endpoint['id']}"
    disabled = _ok(hooks.client.get(url, headers=hooks.operator.headers))
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "the receiver answered 410 Gone")
    assert disabled["failing_since"] is not None

    watcher = hooks.new_operator(read_only=True)
    assert _ok(hooks.client.get(url, headers=watcher.headers))["enabled"] is False  # reads...
    refused = _error(
        hooks.client.patch(url, json={"enabled": True}, headers=watcher.headers), 403, "PERMISSION_DENIED"
    )
    assert refused["details"] == {"permission": "platform_webhooks:manage"}  # ...but changes nothing
    owner = _error(
        hooks.client.patch(url, json={"enabled": True}, headers=acme.owner.headers), 403, "OPERATOR_REQUIRED"
    )
    assert owner["details"] == {"permission": "platform_webhooks:manage"}
    extra = hooks.client.patch(
        url, json={"enabled": True, "url": "https://example.com/"}, headers=hooks.operator.headers
    )
    _error(extra, 422, "VALIDATION_FAILED")
    _error(hooks.client.patch(url, json={}, headers=hooks.operator.headers), 422, "VALIDATION_FAILED")
    assert _ok(hooks.client.get(url, headers=hooks.operator.headers))["enabled"] is False

    on = _ok(hooks.client.patch(url, json={"enabled": True}, headers=hooks.operator.headers))
    assert (on["enabled"], on["disabled_reason"], on["failing_since"]) == (True, None, None)
    assert on["tenant_slug"] == "acme"
    own = _ok(hooks.client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=acme.owner.headers))
    assert (own["enabled"], own["disabled_reason"]) == (True, None)
    same = _ok(hooks.client.patch(url, json={"enabled": True}, headers=hooks.operator.headers))
    assert same["enabled"] is True  # nothing to change
    off = _ok(hooks.client.patch(url, json={"enabled": False}, headers=hooks.operator.headers))
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled by a platform operator")
    # The tenant's trail: the appliance's disable, then the operator's two changes, as its own PATCH
    # records them (the second call changed nothing and recorded nothing).
    operator_id = hooks.operator.user_id
    assert _trail(hooks, acme, endpoint["id"]) == [
        ("webhook_endpoint.create", acme.owner.user_id),
        ("webhook_endpoint.disable", None),
        ("webhook_endpoint.update", operator_id),
        ("webhook_endpoint.update", operator_id),
    ]
    _error(
        hooks.client.patch(
            f"{PLATFORM}/{uuid.uuid4()}", json={"enabled": True}, headers=hooks.operator.headers
        ),
        404,
        "WEBHOOK_ENDPOINT_NOT_FOUND",
    )


def test_an_operator_replays_failed_deliveries_and_one_message(hooks: Identity) -> None:
    acme, globex = hooks.tenant("acme"), hooks.tenant("globex")
    operator = hooks.operator.headers
    with Receiver(lambda _r, n: Reply(500 if n == 1 else 204)) as receiver:
        endpoint = add_endpoint(hooks, acme, receiver.url, event_types=["project.created"])
        other = add_endpoint(hooks, acme, "https://example.com/orgs", event_types=["organization.created"])
        make_project(hooks, acme)
        (delivery,) = _deliveries(hooks, acme, "project.created")
        assert isinstance(_deliver(hooks, acme, delivery["id"], number=8), Exception)  # its last attempt
        queued = _queued_deliveries(hooks, acme)
        url = f"{PLATFORM}/{endpoint['id']}"
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()

        watcher = hooks.new_operator(read_only=True).headers
        refused = hooks.client.post(f"{url}/replay", json={"since": since}, headers=watcher)
        assert _error(refused, 403, "PERMISSION_DENIED")["details"] == {
            "permission": "platform_webhooks:manage"
        }
        message_url = f"{url}/messages/{delivery['message_id']}/replay"
        _error(hooks.client.post(message_url, headers=watcher), 403, "PERMISSION_DENIED")
        _error(hooks.client.post(message_url, headers=acme.owner.headers), 403, "OPERATOR_REQUIRED")
        assert _queued_deliveries(hooks, acme) == queued

        replayed = _ok(hooks.client.post(f"{url}/replay", json={"since": since}, headers=operator), 202)
        assert (replayed["replayed"], replayed["more"]) == (1, False)
        assert _queued_deliveries(hooks, acme) == queued + 1  # a delivery job queued
        assert _deliver(hooks, acme, delivery["id"], 9) == {"status": 204, "attempt": 2}
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        nothing = _ok(hooks.client.post(f"{url}/replay", json={"since": later}, headers=operator), 202)
        assert nothing["replayed"] == 0

        again = _ok(hooks.client.post(message_url, headers=operator), 202)
        assert again["replayed"] == 1
        assert [(d["id"], d["endpoint_id"], d["state"]) for d in again["deliveries"]] == [
            (delivery["id"], endpoint["id"], "pending")
        ]
        assert _queued_deliveries(hooks, acme) == queued + 2
        assert _deliver(hooks, acme, delivery["id"], 10) == {"status": 204, "attempt": 3}
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same message each time

    # A message that never went to this endpoint, or another tenant's, is not found from here.
    hooks.client.post(
        "/api/v1/organizations", json={"name": "Ops", "slug": "ops"}, headers=acme.owner.headers
    )
    (to_other,) = _deliveries(hooks, acme, "organization.created")
    assert to_other["endpoint_id"] == other["id"]
    not_sent = hooks.client.post(f"{url}/messages/{to_other['message_id']}/replay", headers=operator)
    assert _error(not_sent, 404, "WEBHOOK_MESSAGE_NOT_FOUND")["details"] == {
        "message_id": to_other["message_id"]
    }
    add_endpoint(hooks, globex, "https://example.com/globex", event_types=["project.created"])
    make_project(hooks, globex)
    (theirs,) = _deliveries(hooks, globex, "project.created")
    _error(
        hooks.client.post(f"{url}/messages/{theirs['message_id']}/replay", headers=operator),
        404,
        "WEBHOOK_MESSAGE_NOT_FOUND",
    )
    nobody = uuid.uuid4()
    _error(
        hooks.client.post(f"{PLATFORM}/{nobody}/replay", json={"since": since}, headers=operator),
        404,
        "WEBHOOK_ENDPOINT_NOT_FOUND",
    )
    # A disabled endpoint is turned on first.
    hooks.client.patch(url, json={"enabled": False}, headers=operator)
    _error(
        hooks.client.post(f"{url}/replay", json={"since": since}, headers=operator),
        409,
        "WEBHOOK_ENDPOINT_DISABLED",
    )
    _error(hooks.client.post(message_url, headers=operator), 409, "WEBHOOK_ENDPOINT_DISABLED")

    # The tenant's trail names the operator, as its own replays name its members.
    operator_id = hooks.operator.user_id
    assert ("webhook_endpoint.replay", operator_id) in _trail(hooks, acme, endpoint["id"])
    assert _trail(hooks, acme, delivery["message_id"]) == [("webhook_message.replay", operator_id)]


def test_pages_cross_tenants_newest_first(hooks: Identity) -> None:
    acme, globex = hooks.tenant("acme"), hooks.tenant("globex")
    made = [
        add_endpoint(hooks, acme if i % 2 else globex, f"https://example.com/{i}")["id"] for i in range(5)
    ]
    seen = _every_page(hooks, hooks.operator, PLATFORM, limit=2)
    assert [e["id"] for e in seen] == made[::-1]
    assert [e["tenant_slug"] for e in seen] == ["globex", "acme", "globex", "acme", "globex"]
    one = _every_page(hooks, hooks.operator, PLATFORM, limit=1, tenant_id=str(globex.id))
    assert [e["id"] for e in one] == [made[4], made[2], made[0]]
    watcher = hooks.new_operator(read_only=True)
    assert len(_every_page(hooks, watcher, PLATFORM)) == 5
    theirs = _ok(
        hooks.client.get("/api/v1/webhooks/endpoints", params={"limit": 1}, headers=acme.owner.headers)
    )
    foreign = hooks.client.get(
        PLATFORM, params={"cursor": theirs["next_cursor"]}, headers=hooks.operator.headers
    )
    _error(foreign, 422, "INVALID_CURSOR")
    for path in (PLATFORM, f"{PLATFORM}/{made[1]}", f"{PLATFORM}/{made[1]}/attempts"):
        refused = hooks.client.get(path, headers=acme.owner.headers)
        assert _error(refused, 403, "OPERATOR_REQUIRED")["details"] == {
            "permission": "platform_webhooks:read"
        }
