"""Idempotency-Key on POST: a repeat returns the first response and does not act twice; the same key with
another body is 409; keys belong to their caller."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select

from appliance.models import Tenant
from tests.identity import Identity


def _tenants(identity: Identity) -> int:
    with identity.database.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Tenant)) or 0)


def test_a_repeated_post_is_answered_once(identity: Identity) -> None:
    headers = {**identity.operator.headers, "Idempotency-Key": "create-acme-1"}
    body = {"slug": "acme", "name": "Acme"}
    first = identity.client.post("/api/v1/tenants", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = identity.client.post("/api/v1/tenants", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert _tenants(identity) == 1

    other = identity.client.post(
        "/api/v1/tenants", json={"slug": "globex", "name": "Globex"}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _tenants(identity) == 1


def test_a_failed_request_is_replayed_as_it_failed_and_a_new_key_acts(identity: Identity) -> None:
    headers = {**identity.operator.headers, "Idempotency-Key": "k-1"}
    identity.client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"})  # no credential: 401
    assert (
        identity.client.post(
            "/api/v1/tenants", json={"slug": "acme", "name": "A"}, headers=headers
        ).status_code
        == 201
    )
    dup = {**identity.operator.headers, "Idempotency-Key": "k-2"}
    conflict = identity.client.post("/api/v1/tenants", json={"slug": "acme", "name": "A"}, headers=dup)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "SLUG_TAKEN"
    replayed = identity.client.post("/api/v1/tenants", json={"slug": "acme", "name": "A"}, headers=dup)
    assert replayed.status_code == 409
    assert replayed.json()["error"]["code"] == "SLUG_TAKEN"
    assert replayed.headers["idempotent-replayed"] == "true"


def test_keys_belong_to_their_caller(identity: Identity) -> None:
    key = str(uuid.uuid4())
    acme = identity.tenant("acme")
    first = identity.client.post(
        "/api/v1/tenants",
        json={"slug": "one", "name": "One"},
        headers={**identity.operator.headers, "Idempotency-Key": key},
    )
    assert first.status_code == 201
    # The same key from another caller is that caller's own: it acts (and is refused here on permission).
    other = identity.client.post(
        "/api/v1/tenants",
        json={"slug": "one", "name": "One"},
        headers={**acme.owner.headers, "Idempotency-Key": key},
    )
    assert other.status_code == 403
    assert "idempotent-replayed" not in other.headers


def test_a_malformed_key_is_refused(identity: Identity) -> None:
    response = identity.client.post(
        "/api/v1/tenants",
        json={"slug": "acme", "name": "Acme"},
        headers={**identity.operator.headers, "Idempotency-Key": "x" * 300},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_INVALID"
    assert _tenants(identity) == 0


def test_concurrent_repeats_wait_for_the_first_and_get_its_answer(identity: Identity) -> None:
    """The key is claimed in the transaction of the change: a repeat sent while the first is being served
    waits for its commit and gets its answer, never "in progress", and the change is made once."""
    tenant = identity.tenant("acme")
    created = identity.client.post(
        "/api/v1/organizations", json={"slug": "eng", "name": "Eng"}, headers=tenant.owner.headers
    )
    body = {"organization_id": created.json()["id"], "name": "Rocket"}
    headers = {**tenant.owner.headers, "Idempotency-Key": "burst-1"}

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(identity.client.base_url), timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/api/v1/projects", json=body, headers=headers) for _ in range(12))
                )
            )

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 11
    listed = identity.client.get("/api/v1/projects", headers=tenant.owner.headers).json()["items"]
    assert [p["name"] for p in listed] == ["Rocket"]


def test_a_request_that_fails_validation_does_not_use_up_its_key(identity: Identity) -> None:
    headers = {**identity.operator.headers, "Idempotency-Key": "fix-and-retry"}
    bad = identity.client.post("/api/v1/tenants", json={"slug": "Not A Slug!", "name": ""}, headers=headers)
    assert bad.status_code == 422
    good = identity.client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=headers)
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers
    assert _tenants(identity) == 1


APPS = "/api/v1/apps"
SHOP = {"name": "Shop", "kind": "heartbeat", "interval": 60, "grace": 30}


def _apps(identity: Identity, headers: dict[str, str]) -> dict[str, str]:
    items = identity.client.get(APPS, headers=headers).json()["items"]
    return {item["id"]: item["heartbeat_url"] for item in items}


def test_the_same_key_in_another_tenant_acts_there_and_nothing_of_the_first_is_replayed(
    identity: Identity,
) -> None:
    """One person in tenants A and B sends the same POST with the same Idempotency-Key, first with an API key
    of A, then with their B token: B gets a new app of its own (201, no Idempotent-Replayed), never A's app
    and its heartbeat URL (a credential); nor after the person has left A. The same with their A token then
    their B token (the same user as principal). The same key with another method or path is no replay."""
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    email = "dual@example.test"
    in_acme = identity.member(acme, email, "admin")
    in_globex = identity.member(globex, email, "admin")
    made = identity.client.post(
        "/api/v1/api-keys",
        json={"name": "ci", "scopes": ["apps:read", "apps:write"]},
        headers=in_acme.headers,
    )
    assert made.status_code == 201, made.text
    acme_key = {"X-API-Key": made.json()["key"]}

    def send(headers: dict[str, str], key: str) -> httpx.Response:
        return identity.client.post(APPS, json=SHOP, headers={**headers, "Idempotency-Key": key})

    in_a = send(acme_key, "shop-1")
    assert in_a.status_code == 201, in_a.text
    assert send(acme_key, "shop-1").headers.get("idempotent-replayed") == "true"  # A's own repeat
    in_b = send(in_globex.headers, "shop-1")
    assert in_b.status_code == 201, in_b.text
    assert "idempotent-replayed" not in in_b.headers
    assert in_b.json()["id"] != in_a.json()["id"]
    assert in_b.json()["heartbeat_url"] != in_a.json()["heartbeat_url"]
    # The same user as principal in both tenants: still two callers.
    by_token_in_a = send(in_acme.headers, "shop-2")
    by_token_in_b = send(in_globex.headers, "shop-2")
    assert (by_token_in_a.status_code, by_token_in_b.status_code) == (201, 201)
    assert "idempotent-replayed" not in by_token_in_b.headers
    assert by_token_in_b.json()["id"] != by_token_in_a.json()["id"]
    assert set(_apps(identity, in_globex.headers)) == {in_b.json()["id"], by_token_in_b.json()["id"]}
    assert set(_apps(identity, acme.owner.headers)) == {in_a.json()["id"], by_token_in_a.json()["id"]}

    # The person leaves A: their B token replays B's own answers, and nothing of A.
    assert in_acme.membership_id is not None
    left = identity.client.delete(f"/api/v1/members/{in_acme.membership_id}", headers=acme.owner.headers)
    assert left.status_code == 204, left.text
    for key, answer in (("shop-1", in_b), ("shop-2", by_token_in_b)):
        again = send(in_globex.headers, key)
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
        assert again.json() == answer.json()
    assert len(_apps(identity, in_globex.headers)) == 2

    # Another path or method with the same key is never a replay: a conflict, or a plain answer.
    other_path = identity.client.post(
        "/api/v1/organizations",
        json={"slug": "eng", "name": "Eng"},
        headers={**in_globex.headers, "Idempotency-Key": "shop-1"},
    )
    assert other_path.status_code == 409
    assert other_path.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "idempotent-replayed" not in other_path.headers
    listed = identity.client.get(APPS, headers={**in_globex.headers, "Idempotency-Key": "shop-1"})
    assert listed.status_code == 200
    assert "idempotent-replayed" not in listed.headers
    assert {item["id"] for item in listed.json()["items"]} == set(_apps(identity, in_globex.headers))
