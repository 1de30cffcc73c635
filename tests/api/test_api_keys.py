"""/api/v1/api-keys over HTTP, and keys authenticating with X-API-Key end to end."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import ApiKey, AuditLog, Membership, User
from appliance.services.identity import tokens
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
    # It acts for the member behind the key that made it, as that key does.
    assert narrower.json()["created_by"] == str(acme.owner.user_id)
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


# --------------------------------------------------------------------------- bounded by the creator, now


def organization(identity: Identity, tenant: TenantHandle) -> str:
    response = identity.client.post(
        "/api/v1/organizations", json={"name": "Ops", "slug": "ops"}, headers=tenant.owner.headers
    )
    assert response.status_code == 201, response.text
    org_id: str = response.json()["id"]
    return org_id


def listed(identity: Identity, tenant: TenantHandle) -> dict[str, dict[str, Any]]:
    response = identity.client.get(KEYS, headers=tenant.owner.headers)
    assert response.status_code == 200, response.text
    return {k["id"]: k for k in response.json()["items"]}


def test_a_key_never_does_more_than_its_creator_can_do_now(identity: Identity) -> None:
    """An admin makes a key that writes projects, is demoted to viewer (the key may only read now), then
    removed from the tenant (the key is revoked, one audit record per key of theirs, and refused)."""
    acme = identity.tenant("acme")
    org = organization(identity, acme)
    admin = identity.member(acme, "admin@acme.test", "admin")
    writer = new_key(identity, admin.headers, "projects:read", "projects:write")
    reader = new_key(identity, admin.headers, "projects:read")
    owners = new_key(identity, acme.owner.headers, "projects:read")
    assert writer["effective_scopes"] == ["projects:read", "projects:write"]
    as_key = {"X-API-Key": writer["key"]}

    def create_project(name: str) -> Any:
        return identity.client.post(
            "/api/v1/projects", json={"organization_id": org, "name": name}, headers=as_key
        )

    assert create_project("before").status_code == 201

    demoted = identity.client.patch(
        f"/api/v1/members/{admin.membership_id}", json={"role": "viewer"}, headers=acme.owner.headers
    )
    assert demoted.status_code == 200, demoted.text
    assert identity.client.get("/api/v1/projects", headers=admin.headers).status_code == 401
    refused = error(create_project("after demotion"), 403)
    assert refused["code"] == "PERMISSION_DENIED"
    assert refused["details"] == {"permission": "projects:write"}
    assert "creator" in refused["message"]
    assert identity.client.get("/api/v1/projects", headers=as_key).status_code == 200  # narrowed, not revoked
    keys = listed(identity, acme)
    assert keys[writer["id"]]["scopes"] == ["projects:read", "projects:write"]
    assert keys[writer["id"]]["effective_scopes"] == ["projects:read"]
    assert keys[writer["id"]]["revoked_at"] is None

    removed = identity.client.delete(f"/api/v1/members/{admin.membership_id}", headers=acme.owner.headers)
    assert removed.status_code == 204, removed.text
    keys = listed(identity, acme)
    for key in (writer, reader):
        assert keys[key["id"]]["revoked_at"] is not None, "revoked when its creator left, not at its next use"
        assert keys[key["id"]]["effective_scopes"] == []
    assert keys[owners["id"]]["revoked_at"] is None
    assert keys[owners["id"]]["effective_scopes"] == ["projects:read"]
    gone = error(create_project("after removal"), 401)
    assert gone["code"] == "API_KEY_REVOKED"
    assert error(identity.client.get("/api/v1/projects", headers=as_key), 401)["code"] == "API_KEY_REVOKED"

    records = audit_records(identity, acme, "api_key.revoke")
    assert sorted(r.resource_id or "" for r in records) == sorted([writer["id"], reader["id"]])
    for record in records:
        assert record.summary["reason"] == "creator_removed"
        assert record.summary["created_by"] == str(admin.user_id)
        assert record.actor_user_id == acme.owner.user_id  # who removed the member
    names = identity.client.get("/api/v1/projects", headers=acme.owner.headers).json()["items"]
    assert sorted(p["name"] for p in names) == ["before"]


def test_a_key_made_with_a_key_is_bounded_by_the_member_behind_it(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    maker = new_key(identity, admin.headers, "api_keys:write", "roles:read", "projects:read")
    made = identity.client.post(
        KEYS, json={"name": "made", "scopes": ["roles:read"]}, headers={"X-API-Key": maker["key"]}
    )
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == str(admin.user_id)
    assert made.json()["effective_scopes"] == ["roles:read"]
    as_made = {"X-API-Key": made.json()["key"]}
    assert identity.client.get("/api/v1/roles", headers=as_made).status_code == 200

    # A viewer holds projects:read but neither roles:read nor api_keys:write: both keys lose them at once.
    demoted = identity.client.patch(
        f"/api/v1/members/{admin.membership_id}", json={"role": "viewer"}, headers=acme.owner.headers
    )
    assert demoted.status_code == 200, demoted.text
    keys = listed(identity, acme)
    assert keys[maker["id"]]["effective_scopes"] == ["projects:read"]
    assert keys[made.json()["id"]]["effective_scopes"] == []
    assert error(identity.client.get("/api/v1/roles", headers=as_made), 403)["code"] == "PERMISSION_DENIED"
    again = identity.client.post(
        KEYS, json={"name": "again", "scopes": ["projects:read"]}, headers={"X-API-Key": maker["key"]}
    )
    assert error(again, 403)["details"] == {"permission": "api_keys:write"}


@pytest.mark.parametrize("how", ["membership_deleted", "account_disabled", "creator_unknown"])
def test_a_key_whose_creator_went_another_way_is_revoked_at_its_next_use(
    identity: Identity, how: str
) -> None:
    """However the creator stopped being able to act (their membership deleted by something other than the
    members route, their account disabled, or no creator recorded at all), the key is refused, revoked and
    audited with the reason at its next use."""
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    key = new_key(identity, admin.headers, "users:read")
    sibling = new_key(identity, admin.headers, "projects:read")
    as_key = {"X-API-Key": key["key"]}
    assert identity.client.get("/api/v1/members", headers=as_key).status_code == 200
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        if how == "membership_deleted":
            membership = session.get(Membership, admin.membership_id)
            assert membership is not None
            session.delete(membership)
        elif how == "account_disabled":
            user = session.get(User, admin.user_id)
            assert user is not None
            user.is_active = False
        else:
            row = session.get(ApiKey, uuid.UUID(key["id"]))
            assert row is not None
            row.created_by = None
    reason = {
        "membership_deleted": "creator_removed",
        "account_disabled": "creator_disabled",
        "creator_unknown": "creator_unknown",
    }[how]
    keys = listed(identity, acme)
    assert keys[key["id"]]["effective_scopes"] == []  # shown before anyone uses it
    assert keys[key["id"]]["revoked_at"] is None

    refused = error(identity.client.get("/api/v1/members", headers=as_key), 401)
    assert refused["code"] == "API_KEY_REVOKED"
    assert refused["details"] == {"reason": reason}
    assert error(identity.client.get("/api/v1/members", headers=as_key), 401)["code"] == "API_KEY_REVOKED"
    records = audit_records(identity, acme, "api_key.revoke")
    revoked = {r.resource_id: r for r in records}
    # The creator's other key goes too (the one with no creator stands alone).
    expected = {key["id"]} if how == "creator_unknown" else {key["id"], sibling["id"]}
    assert set(revoked) == expected
    for record in records:
        assert record.summary["reason"] == reason
        assert record.actor_user_id is None  # the appliance itself
        assert record.actor_api_key_id is None
        assert record.request_id is not None
    assert stored(identity, acme, key["id"]).revoked_at is not None


def test_disabling_an_account_revokes_its_keys_at_once(identity: Identity) -> None:
    """An operator who is also a tenant's owner made a key there; another operator disables the account:
    the key is revoked then (not at its next use), audited in the tenant's trail."""
    member_operator = identity.new_operator()
    acme = identity.tenant("acme", owner_email=member_operator.email)
    key = new_key(identity, acme.owner.headers, "projects:read")
    disabled = identity.client.post(
        f"/api/v1/operators/{member_operator.user_id}/disable", headers=identity.operator.headers
    )
    assert disabled.status_code == 200, disabled.text
    assert stored(identity, acme, key["id"]).revoked_at is not None
    (record,) = audit_records(identity, acme, "api_key.revoke")
    assert record.resource_id == key["id"]
    assert record.summary["reason"] == "creator_disabled"
    assert record.actor_user_id == identity.operator.user_id
    refused = identity.client.get("/api/v1/projects", headers={"X-API-Key": key["key"]})
    assert error(refused, 401)["code"] == "API_KEY_REVOKED"
