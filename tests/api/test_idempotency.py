"""Idempotency-Key on POST: a repeat returns the first response and does not act twice; the same key with
another body is 409; keys belong to their caller."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from appliance.api.middleware import RequestContextMiddleware
from appliance.models import IdempotencyKey, Tenant
from appliance.services import idempotency
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


def test_the_response_is_stored_before_its_last_part_reaches_the_client(identity: Identity) -> None:
    """A client may repeat the request the moment it has the answer: by then the key must be settled."""

    def begin() -> idempotency.Claim | idempotency.Replay:
        return idempotency.begin(
            identity.database,
            principal="user:test",
            key="k-stream",
            method="POST",
            path="/api/v1/things",
            body=b"{}",
            now=dt.datetime.now(dt.UTC),
        )

    claim = begin()
    assert isinstance(claim, idempotency.Claim)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["idempotency"] = claim
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
        await send({"type": "http.response.body", "body": b"1}"})

    def stored_status() -> int | None:
        with identity.database.session_scope() as session:
            return session.scalar(select(IdempotencyKey.status).where(IdempotencyKey.id == claim.id))

    seen: list[tuple[bool, int | None]] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            seen.append((bool(message.get("more_body")), stored_status()))

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}"}

    scope: Scope = {"type": "http", "method": "POST", "path": "/api/v1/things", "headers": [], "state": {}}
    asyncio.run(RequestContextMiddleware(route, max_body_bytes=1024)(scope, receive, send))
    assert seen == [(True, None), (False, 201)]
    replay = begin()
    assert isinstance(replay, idempotency.Replay)
    assert (replay.status, replay.body) == (201, b'{"id":1}')
