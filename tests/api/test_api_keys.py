"""/api/v1/api-keys over HTTP, and keys authenticating with X-API-Key end to end."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import ApiKey, AuditLog
from appliance.services import tokens
from tests.identity import Identity, TenantHandle

KEYS = "/api/v1/api-keys"


def audit_records(identity: Identity, tenant: TenantHandle, action: str) -> list[AuditLog]:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)))


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def new_key(identity: Identity, headers: dict[str, str], *scopes: str, **extra: Any) -> dict[str, Any]:
    response = identity.client.post(
        KEYS, json={"name": "ci", "scopes": list(scopes), **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


def stored(identity: Identity, tenant: TenantHandle, key_id: str) -> ApiKey:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        row = session.get(ApiKey, uuid.UUID(key_id))
        assert row is not None
        return row


def test_a_key_is_shown_once_and_listed_without_its_secret(identity: Identity) -> None:
    acme = identity.tenant("acme")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0)
    response = identity.client.post(
        KEYS,
        json={
            "name": "deploy bot",
            "scopes": ["users:read", "projects:read"],
            "expires_at": expires.isoformat(),
        },
        headers=acme.owner.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{KEYS}/{created['id']}"
    assert created["key"].startswith(created["prefix"] + "_")
    assert created["prefix"].startswith("fak_")
    assert created["name"] == "deploy bot"
    assert created["scopes"] == ["projects:read", "users:read"]
    assert dt.datetime.fromisoformat(created["expires_at"]) == expires
    assert created["created_by"] == str(acme.owner.user_id)
    assert created["revoked_at"] is None
    assert created["last_used_at"] is None

    listed = identity.client.get(KEYS, headers=acme.owner.headers)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item == {k: v for k, v in created.items() if k != "key"}
    got = identity.client.get(f"{KEYS}/{created['id']}", headers=acme.owner.headers).json()
    assert got == item
    assert created["key"] not in listed.text
    assert stored(identity, acme, created["id"]).key_hash not in listed.text

    (record,) = audit_records(identity, acme, "api_key.create")
    assert record.resource_id == created["id"]
    assert record.actor_user_id == acme.owner.user_id
    assert record.summary["scopes"] == ["projects:read", "users:read"]
    assert created["key"] not in str(record.summary)

    second = new_key(identity, acme.owner.headers, "projects:read")
    first_page = identity.client.get(f"{KEYS}?limit=1", headers=acme.owner.headers).json()
    next_page = identity.client.get(
        KEYS, params={"limit": 1, "cursor": first_page["next_cursor"]}, headers=acme.owner.headers
    ).json()
    assert [k["id"] for k in first_page["items"] + next_page["items"]] == [created["id"], second["id"]]
    assert next_page["next_cursor"] is None


def test_keys_that_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    member = identity.member(acme, "member@acme.test", "member")

    def create(headers: dict[str, str], **body: Any) -> Any:
        return identity.client.post(
            KEYS, json={"name": "k", "scopes": ["projects:read"], **body}, headers=headers
        )

    unknown = error(create(acme.owner.headers, scopes=["projects:read", "projects:fly"]), 422)
    assert unknown["code"] == "SCOPE_UNKNOWN"
    assert "projects:fly" in unknown["message"]
    assert unknown["details"] == {"scopes": ["projects:fly"]}
    broad = error(create(admin.headers, scopes=["projects:read", "tenant:manage"]), 403)
    assert broad["code"] == "SCOPE_TOO_BROAD"
    assert broad["details"] == {"scopes": ["tenant:manage"]}
    assert "tenant:manage" in broad["message"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    assert error(create(acme.owner.headers, expires_at=past), 422)["code"] == "EXPIRES_IN_PAST"
    naive = error(create(acme.owner.headers, expires_at="2099-01-01T00:00:00"), 422)
    assert naive["details"]["fields"][0]["loc"] == ["body", "expires_at"]
    assert error(create(acme.owner.headers, scopes=[]), 422)["code"] == "VALIDATION_FAILED"
    assert error(create(member.headers), 403)["details"] == {"permission": "api_keys:write"}
    assert error(identity.client.get(KEYS, headers=member.headers), 403)["code"] == "PERMISSION_DENIED"
    missing = identity.client.get(f"{KEYS}/{uuid.uuid4()}", headers=acme.owner.headers)
    assert error(missing, 404)["code"] == "API_KEY_NOT_FOUND"
    assert audit_records(identity, acme, "api_key.create") == []

    # A key that may create keys cannot create one wider than itself.
    maker = new_key(identity, acme.owner.headers, "api_keys:write", "users:read")
    wider = error(create({"X-API-Key": maker["key"]}, scopes=["users:read", "projects:read"]), 403)
    assert wider["details"] == {"scopes": ["projects:read"]}
    narrower = create({"X-API-Key": maker["key"]}, scopes=["users:read"])
    assert narrower.status_code == 201, narrower.text
    assert narrower.json()["created_by"] is None
    assert audit_records(identity, acme, "api_key.create")[-1].actor_api_key_id == uuid.UUID(maker["id"])


def test_a_key_acts_with_its_scopes_only(identity: Identity) -> None:
    acme = identity.tenant("acme")
    reader = new_key(identity, acme.owner.headers, "projects:read")
    users = new_key(identity, acme.owner.headers, "users:read")

    denied = identity.client.get("/api/v1/members", headers={"X-API-Key": reader["key"]})
    assert error(denied, 403)["code"] == "PERMISSION_DENIED"
    allowed = identity.client.get("/api/v1/members", headers={"X-API-Key": users["key"]})
    assert allowed.status_code == 200, allowed.text
    assert [m["email"] for m in allowed.json()["items"]] == ["owner@acme.test"]
    assert stored(identity, acme, users["id"]).last_used_at is not None
    listed = identity.client.get(f"{KEYS}/{users['id']}", headers=acme.owner.headers).json()
    assert listed["last_used_at"] is not None

    for bad in (
        "not-a-key",
        users["key"][:-1] + ("A" if users["key"][-1] != "A" else "B"),
        "fak_abcdefgh_" + "x" * 43,
    ):
        invalid = identity.client.get("/api/v1/members", headers={"X-API-Key": bad})
        body = error(invalid, 401)
        assert body["code"] == "API_KEY_INVALID"
        assert bad not in invalid.text
        assert invalid.headers["www-authenticate"] == "Bearer"


def test_a_revoked_or_expired_key_stops_working(identity: Identity) -> None:
    acme = identity.tenant("acme")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    revoked = new_key(identity, acme.owner.headers, "users:read")
    expiring = new_key(identity, acme.owner.headers, "users:read", expires_at=soon)
    for key in (revoked, expiring):
        assert identity.client.get("/api/v1/members", headers={"X-API-Key": key["key"]}).status_code == 200

    gone = identity.client.delete(f"{KEYS}/{revoked['id']}", headers=acme.owner.headers)
    assert gone.status_code == 204, gone.text
    refused = identity.client.get("/api/v1/members", headers={"X-API-Key": revoked["key"]})
    assert error(refused, 401)["code"] == "API_KEY_REVOKED"
    listed = identity.client.get(f"{KEYS}/{revoked['id']}", headers=acme.owner.headers).json()
    assert listed["revoked_at"] is not None
    # Revoking again changes nothing and records nothing more.
    assert identity.client.delete(f"{KEYS}/{revoked['id']}", headers=acme.owner.headers).status_code == 204
    (record,) = audit_records(identity, acme, "api_key.revoke")
    assert record.resource_id == revoked["id"]
    usable = identity.client.get(f"{KEYS}?revoked=false", headers=acme.owner.headers).json()
    assert [k["id"] for k in usable["items"]] == [expiring["id"]]

    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        row = session.get(ApiKey, uuid.UUID(expiring["id"]))
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = identity.client.get("/api/v1/members", headers={"X-API-Key": expiring["key"]})
    assert error(expired, 401)["code"] == "API_KEY_EXPIRED"


def test_another_tenants_keys_are_not_found(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    key = new_key(identity, acme.owner.headers, "users:read")
    url = f"{KEYS}/{key['id']}"
    for response in (
        identity.client.get(url, headers=globex.owner.headers),
        identity.client.delete(url, headers=globex.owner.headers),
    ):
        assert error(response, 404)["code"] == "API_KEY_NOT_FOUND"
    assert identity.client.get(KEYS, headers=globex.owner.headers).json()["items"] == []

    # acme's key still works, and only ever sees acme.
    assert stored(identity, acme, key["id"]).revoked_at is None
    members = identity.client.get("/api/v1/members", headers={"X-API-Key": key["key"]}).json()
    assert [m["email"] for m in members["items"]] == ["owner@acme.test"]
    assert audit_records(identity, globex, "api_key.revoke") == []


def test_a_prefix_taken_in_another_tenant_is_drawn_again(
    identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    taken = new_key(identity, acme.owner.headers, "users:read")
    real = tokens.new_api_key
    drawn: list[tokens.NewApiKey] = []

    def colliding_first(kind: str = tokens.API_KEY_KIND) -> tokens.NewApiKey:
        fresh = real(kind)
        if not drawn:  # the first draw repeats acme's prefix, which globex cannot even see
            secret = fresh.secret.replace(fresh.prefix, taken["prefix"])
            fresh = tokens.NewApiKey(secret, taken["prefix"], tokens.hash_api_key(secret))
        drawn.append(fresh)
        return fresh

    monkeypatch.setattr(tokens, "new_api_key", colliding_first)
    theirs = new_key(identity, globex.owner.headers, "users:read")
    assert len(drawn) == 2
    assert theirs["prefix"] == drawn[1].prefix != taken["prefix"]
    for tenant, key in ((acme, taken), (globex, theirs)):
        members = identity.client.get("/api/v1/members", headers={"X-API-Key": key["key"]}).json()
        assert [m["email"] for m in members["items"]] == [f"owner@{tenant.slug}.test"]
    assert len(audit_records(identity, globex, "api_key.create")) == 1
