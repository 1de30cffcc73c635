"""/api/v1/webhooks over HTTP on both databases (PostgreSQL as an app role under row-level security):
endpoints and their secrets, refusals naming the value, events from changes made through the API, the
delivery log, replays and permissions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import Job, WebhookDelivery
from appliance.services.outbound import clients as http_clients
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import events
from appliance.services.webhooks import store as webhook_store
from tests.conftest import PgDatabase
from tests.identity import Identity, TenantHandle, identity_api
from tests.receivers import Receiver, Reply, verifying

ENDPOINTS = "/api/v1/webhooks/endpoints"
MESSAGES = "/api/v1/webhooks/messages"


@pytest.fixture
def hooks(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Identity]:
    """The identity fixture, with calls to loopback allowed (the receivers listen there)."""
    app_url = None
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        app_url = pg.url_as(role, "app-secret")
    with identity_api(tmp_path, database_url, app_url, outbound={"allow_networks": ["127.0.0.0/8"]}) as ident:
        yield ident


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def add_endpoint(hooks: Identity, tenant: TenantHandle, url: str, **extra: Any) -> dict[str, Any]:
    response = hooks.client.post(ENDPOINTS, json={"url": url, **extra}, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_project(hooks: Identity, tenant: TenantHandle, name: str = "Rocket") -> dict[str, Any]:
    headers = tenant.owner.headers
    org = hooks.client.post("/api/v1/organizations", json={"name": "Eng", "slug": "eng"}, headers=headers)
    if org.status_code == 409:
        org_id = hooks.client.get("/api/v1/organizations", headers=headers).json()["items"][0]["id"]
    else:
        org_id = org.json()["id"]
    project = hooks.client.post(
        "/api/v1/projects", json={"organization_id": org_id, "name": name}, headers=headers
    )
    assert project.status_code == 201, project.text
    body: dict[str, Any] = project.json()
    return body


def messages(hooks: Identity, tenant: TenantHandle, **params: Any) -> list[dict[str, Any]]:
    response = hooks.client.get(MESSAGES, params=params, headers=tenant.owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def send(hooks: Identity, tenant: TenantHandle, delivery_id: str, number: int = 1) -> Any:
    """Run the delivery's job body once, as the worker would."""
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
            )
        except Exception as exc:
            return exc
        finally:
            await clients.aclose()

    return asyncio.run(go())


def test_an_endpoint_round_trip_shows_its_secret_only_when_made_and_rotated(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    made = add_endpoint(
        hooks, acme, "https://example.com/hook", event_types=["project.created"], description="CI"
    )
    assert made["secret"].startswith("whsec_")
    one = hooks.client.get(f"{ENDPOINTS}/{made['id']}", headers=acme.owner.headers).json()
    assert "secret" not in one
    assert one["event_types"] == ["project.created"]
    assert one["enabled"] is True
    listed = hooks.client.get(ENDPOINTS, headers=acme.owner.headers).json()
    assert [e["id"] for e in listed["items"]] == [made["id"]]
    assert "secret" not in listed["items"][0]
    rotated = hooks.client.post(f"{ENDPOINTS}/{made['id']}/rotate-secret", headers=acme.owner.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != made["secret"]
    expires = dt.datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    changed = hooks.client.patch(
        f"{ENDPOINTS}/{made['id']}",
        json={"event_types": [], "description": "all"},
        headers=acme.owner.headers,
    )
    assert changed.json()["event_types"] == []
    assert changed.json()["description"] == "all"
    gone = hooks.client.delete(f"{ENDPOINTS}/{made['id']}", headers=acme.owner.headers)
    assert gone.status_code == 204
    assert error(hooks.client.get(f"{ENDPOINTS}/{made['id']}", headers=acme.owner.headers), 404)["code"] == (
        "WEBHOOK_ENDPOINT_NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "only http and https URLs are allowed"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("https://example.com/" + "a" * 2100, "longer than 2048 characters"),
        ("http://user:pw@example.com/", "credentials in the URL are not allowed"),
    ],
)
def test_a_bad_url_is_refused_naming_the_reason(hooks: Identity, url: str, reason: str) -> None:
    acme = hooks.tenant("acme")
    body = error(hooks.client.post(ENDPOINTS, json={"url": url}, headers=acme.owner.headers), 422)
    assert body["code"] == "INVALID_URL"
    assert reason in body["message"]
    made = add_endpoint(hooks, acme, "https://example.com/ok")
    patched = hooks.client.patch(f"{ENDPOINTS}/{made['id']}", json={"url": url}, headers=acme.owner.headers)
    assert error(patched, 422)["code"] == "INVALID_URL"


def test_an_unknown_event_type_is_refused_by_name(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    response = hooks.client.post(
        ENDPOINTS,
        json={"url": "https://example.com/", "event_types": ["project.exploded"]},
        headers=acme.owner.headers,
    )
    body = error(response, 422)
    assert body["code"] == "UNKNOWN_EVENT_TYPE"
    assert "'project.exploded'" in body["message"]
    types = hooks.client.get("/api/v1/webhooks/event-types", headers=acme.owner.headers).json()["items"]
    assert {"project.created", "app.down", "webhook_endpoint.disabled"} <= {t["name"] for t in types}


def test_a_project_made_through_the_api_is_delivered_and_logged(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    seen: list[dict[str, Any]] = []
    secret = ""
    with Receiver(verifying(lambda: secret, seen)) as receiver:
        secret = add_endpoint(hooks, acme, receiver.url, event_types=["project.created"])["secret"]
        project = make_project(hooks, acme)
        (message,) = messages(hooks, acme)
        assert message["event_type"] == "project.created"
        assert message["payload"]["data"]["id"] == project["id"]
        assert message["payload"]["data"]["summary"]["name"] == "Rocket"
        assert message["payload"]["data"]["actor"]["user_id"] == str(acme.owner.user_id)
        detail = hooks.client.get(f"{MESSAGES}/{message['id']}", headers=acme.owner.headers).json()
        (delivery,) = detail["deliveries"]
        assert delivery["state"] == "pending"
        assert send(hooks, acme, delivery["id"]) == {"status": 204, "attempt": 1}
    assert [s["id"] for s in seen] == [message["webhook_id"]]
    assert seen[0]["payload"] == message["payload"]
    detail = hooks.client.get(f"{MESSAGES}/{message['id']}", headers=acme.owner.headers).json()
    assert detail["deliveries"][0]["state"] == "succeeded"
    endpoint_id = detail["deliveries"][0]["endpoint_id"]
    for path in (f"{ENDPOINTS}/{endpoint_id}/attempts", f"{MESSAGES}/{message['id']}/attempts"):
        (attempt,) = hooks.client.get(path, headers=acme.owner.headers).json()["items"]
        assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 204, None)


def test_replays_send_the_same_message_again(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    with Receiver(lambda _g, n: Reply(500 if n == 1 else 204)) as receiver:
        endpoint = add_endpoint(hooks, acme, receiver.url)
        make_project(hooks, acme)
        project_message = messages(hooks, acme, event_type="project.created")[0]
        (delivery,) = hooks.client.get(
            f"{MESSAGES}/{project_message['id']}", headers=acme.owner.headers
        ).json()["deliveries"]
        assert isinstance(send(hooks, acme, delivery["id"], number=8), Exception)  # its last attempt fails
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        replay = hooks.client.post(
            f"{ENDPOINTS}/{endpoint['id']}/replay",
            json={"since": since.isoformat()},
            headers=acme.owner.headers,
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["replayed"] == 1
        assert replay.json()["more"] is False
        assert send(hooks, acme, delivery["id"]) == {"status": 204, "attempt": 2}
        again = hooks.client.post(f"{MESSAGES}/{project_message['id']}/replay", headers=acme.owner.headers)
        assert again.status_code == 202
        assert again.json()["replayed"] == 1
        assert send(hooks, acme, delivery["id"]) == {"status": 204, "attempt": 3}
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    with hooks.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)  # the app role sees a tenant's jobs inside the tenant only
        jobs = session.scalars(
            select(Job).where(Job.kind == events.DELIVER.name, Job.tenant_id == acme.id)
        ).all()
    assert len(jobs) >= 3  # one per message to the endpoint, and one per replay
    missing = hooks.client.post(
        f"{MESSAGES}/{project_message['id']}/replay",
        json={"endpoint_id": str(uuid.uuid4())},
        headers=acme.owner.headers,
    )
    assert error(missing, 404)["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"
    hooks.client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"enabled": False}, headers=acme.owner.headers)
    refused = hooks.client.post(
        f"{MESSAGES}/{project_message['id']}/replay",
        json={"endpoint_id": endpoint["id"]},
        headers=acme.owner.headers,
    )
    assert error(refused, 409)["code"] == "WEBHOOK_ENDPOINT_DISABLED"


def test_a_disabled_endpoint_gets_nothing_until_re_enabled(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    endpoint = add_endpoint(hooks, acme, "https://example.com/hook", event_types=["project.created"])
    off = hooks.client.patch(
        f"{ENDPOINTS}/{endpoint['id']}", json={"enabled": False}, headers=acme.owner.headers
    )
    assert off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "disabled by the tenant"
    make_project(hooks, acme, "One")
    assert messages(hooks, acme, event_type="project.created") == []
    on = hooks.client.patch(
        f"{ENDPOINTS}/{endpoint['id']}", json={"enabled": True}, headers=acme.owner.headers
    )
    assert on.json()["enabled"] is True
    assert on.json()["disabled_reason"] is None
    make_project(hooks, acme, "Two")
    assert len(messages(hooks, acme, event_type="project.created")) == 1


def test_an_operator_suspending_the_tenant_is_an_event_of_the_tenant(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    add_endpoint(hooks, acme, "https://example.com/hook", event_types=["tenant.suspended"])
    suspended = hooks.client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=hooks.operator.headers)
    assert suspended.status_code == 200, suspended.text
    resumed = hooks.client.post(f"/api/v1/tenants/{acme.id}/resume", headers=hooks.operator.headers)
    assert resumed.status_code == 200, resumed.text
    (message,) = messages(hooks, acme)
    assert message["event_type"] == "tenant.suspended"
    assert message["payload"]["data"]["id"] == str(acme.id)
    assert message["payload"]["data"]["summary"]["status"] == ["active", "suspended"]


def test_webhooks_need_their_permissions(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    member = hooks.member(acme, "dev@acme.test", "member")
    assert error(hooks.client.get(ENDPOINTS, headers=member.headers), 403)["code"] == "PERMISSION_DENIED"
    created = hooks.client.post(ENDPOINTS, json={"url": "https://example.com/"}, headers=member.headers)
    assert created.status_code == 403


def test_lists_page_by_cursor(hooks: Identity) -> None:
    acme = hooks.tenant("acme")
    made = [add_endpoint(hooks, acme, f"https://example.com/{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = hooks.client.get(ENDPOINTS, params=params, headers=acme.owner.headers).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    bad = hooks.client.get(ENDPOINTS, params={"cursor": "nonsense"}, headers=acme.owner.headers)
    assert error(bad, 422)["code"] == "INVALID_CURSOR"
