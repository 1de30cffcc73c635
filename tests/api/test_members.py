"""/api/v1/members over HTTP: invitations, the list, role changes that end sessions, removals, isolation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import AuditLog, Membership
from tests.identity import Identity, TenantHandle


def audit_records(identity: Identity, tenant: TenantHandle, action: str) -> list[AuditLog]:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)))


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def owner_membership(identity: Identity, tenant: TenantHandle) -> str:
    listed = identity.client.get("/api/v1/members?role=owner", headers=tenant.owner.headers).json()
    (owner,) = listed["items"]
    membership_id: str = owner["id"]
    return membership_id


def test_owner_invites_new_and_existing_users_and_lists_them(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    created = identity.client.post(
        "/api/v1/members",
        json={"email": "Ada@Example.test", "role": "viewer", "display_name": "Ada L."},
        headers=acme.owner.headers,
    )
    assert created.status_code == 201, created.text
    ada = created.json()
    assert created.headers["location"] == f"/api/v1/members/{ada['id']}"
    assert ada["email"] == "ada@example.test"
    assert ada["display_name"] == "Ada L."
    assert ada["role"] == "viewer"
    assert ada["one_time_password"]
    assert ada["last_login_at"] is None

    # globex's owner already has an account: invited into acme, no password is made for them.
    existing = identity.client.post(
        "/api/v1/members",
        json={"email": "owner@globex.test", "role": "admin"},
        headers=acme.owner.headers,
    )
    assert existing.status_code == 201, existing.text
    assert existing.json()["one_time_password"] is None
    assert existing.json()["user_id"] == str(globex.owner.user_id)

    page = identity.client.get("/api/v1/members", headers=acme.owner.headers).json()
    assert [m["email"] for m in page["items"]] == ["owner@acme.test", "ada@example.test", "owner@globex.test"]
    assert page["next_cursor"] is None
    assert page["items"][0]["last_login_at"] is not None
    assert "one_time_password" not in page["items"][1]

    first = identity.client.get("/api/v1/members?limit=2", headers=acme.owner.headers).json()
    rest = identity.client.get(
        "/api/v1/members", params={"limit": 2, "cursor": first["next_cursor"]}, headers=acme.owner.headers
    ).json()
    assert [m["email"] for m in first["items"] + rest["items"]] == [m["email"] for m in page["items"]]
    assert rest["next_cursor"] is None

    admins = identity.client.get("/api/v1/members?role=admin", headers=acme.owner.headers).json()
    assert [m["email"] for m in admins["items"]] == ["owner@globex.test"]

    one = identity.client.get(f"/api/v1/members/{ada['id']}", headers=acme.owner.headers)
    assert one.status_code == 200
    assert one.json() == {k: v for k, v in ada.items() if k != "one_time_password"}

    (record, _) = audit_records(identity, acme, "membership.create")[-2:]
    assert record.resource_id == ada["id"]
    assert record.actor_user_id == acme.owner.user_id
    assert record.summary == {"email": "ada@example.test", "role": "viewer", "new_user": True}


def test_invitations_that_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    viewer = identity.member(acme, "viewer@acme.test", "viewer")
    invite = "/api/v1/members"

    duplicate = identity.client.post(
        invite, json={"email": "VIEWER@acme.test", "role": "member"}, headers=acme.owner.headers
    )
    assert error(duplicate, 409)["code"] == "ALREADY_MEMBER"
    bad_email = identity.client.post(
        invite, json={"email": "not-an-address", "role": "viewer"}, headers=acme.owner.headers
    )
    assert "not-an-address" in error(bad_email, 422)["message"]
    unknown = identity.client.post(
        invite, json={"email": "x@acme.test", "role": "wizard"}, headers=acme.owner.headers
    )
    assert error(unknown, 422)["code"] == "ROLE_UNKNOWN"
    assert error(unknown, 422)["details"] == {"role": "wizard"}
    too_strong = identity.client.post(
        invite, json={"email": "x@acme.test", "role": "owner"}, headers=admin.headers
    )
    body = error(too_strong, 403)
    assert body["code"] == "ROLE_TOO_STRONG"
    assert body["details"]["missing"] == ["tenant:manage"]
    denied = identity.client.post(
        invite, json={"email": "x@acme.test", "role": "viewer"}, headers=viewer.headers
    )
    assert error(denied, 403)["code"] == "PERMISSION_DENIED"
    missing = identity.client.post(invite, json={"role": "viewer"}, headers=acme.owner.headers)
    assert error(missing, 422)["code"] == "VALIDATION_FAILED"

    # An admin may grant up to admin.
    assert (
        identity.client.post(
            invite, json={"email": "x@acme.test", "role": "admin"}, headers=admin.headers
        ).status_code
        == 201
    )
    emails = [r.summary["email"] for r in audit_records(identity, acme, "membership.create")]
    assert emails == ["owner@acme.test", "admin@acme.test", "viewer@acme.test", "x@acme.test"]


def test_a_role_change_ends_the_members_sessions(identity: Identity) -> None:
    acme = identity.tenant("acme")
    viewer = identity.member(acme, "viewer@acme.test", "viewer")
    assert viewer.membership_id is not None
    changed = identity.client.patch(
        f"/api/v1/members/{viewer.membership_id}", json={"role": "admin"}, headers=acme.owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "admin"

    old = identity.client.get("/api/v1/auth/me", headers=viewer.headers)
    assert error(old, 401)["code"] == "TOKEN_REVOKED"
    refreshed = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": viewer.refresh_token})
    assert error(refreshed, 401)["code"] == "TOKEN_REVOKED"
    # The owner's own session is untouched; the member signs in again with the new role.
    assert identity.client.get("/api/v1/auth/me", headers=acme.owner.headers).status_code == 200
    again = identity.sign_in(viewer.email, viewer.password, "acme")
    me = identity.client.get("/api/v1/auth/me", headers=again.headers).json()
    assert "users:write" in me["permissions"]

    (record,) = audit_records(identity, acme, "membership.update")
    assert record.resource_id == str(viewer.membership_id)
    assert record.summary == {"role": ["viewer", "admin"]}


def test_role_changes_that_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    owner_id = owner_membership(identity, acme)
    url = f"/api/v1/members/{owner_id}"

    last = identity.client.patch(url, json={"role": "admin"}, headers=acme.owner.headers)
    assert error(last, 409)["code"] == "LAST_OWNER"
    assert error(identity.client.delete(url, headers=acme.owner.headers), 409)["code"] == "LAST_OWNER"
    # An admin can neither demote nor remove someone stronger, nor promote anyone to owner.
    assert error(identity.client.patch(url, json={"role": "viewer"}, headers=admin.headers), 403)["code"] == (
        "ROLE_TOO_STRONG"
    )
    assert error(identity.client.delete(url, headers=admin.headers), 403)["code"] == "ROLE_TOO_STRONG"
    promote = identity.client.patch(
        f"/api/v1/members/{admin.membership_id}", json={"role": "owner"}, headers=admin.headers
    )
    assert error(promote, 403)["code"] == "ROLE_TOO_STRONG"
    unknown = identity.client.patch(
        f"/api/v1/members/{admin.membership_id}", json={"role": "wizard"}, headers=acme.owner.headers
    )
    assert error(unknown, 422)["code"] == "ROLE_UNKNOWN"
    missing = identity.client.patch(
        f"/api/v1/members/{uuid.uuid4()}", json={"role": "viewer"}, headers=acme.owner.headers
    )
    assert error(missing, 404)["code"] == "MEMBER_NOT_FOUND"
    assert audit_records(identity, acme, "membership.update") == []

    # With a second owner, the first may step down.
    promoted = identity.client.patch(
        f"/api/v1/members/{admin.membership_id}", json={"role": "owner"}, headers=acme.owner.headers
    )
    assert promoted.status_code == 200, promoted.text
    stepped_down = identity.client.patch(url, json={"role": "admin"}, headers=acme.owner.headers)
    assert stepped_down.status_code == 200, stepped_down.text


def test_removing_a_member_ends_their_sessions(identity: Identity) -> None:
    acme = identity.tenant("acme")
    member = identity.member(acme, "member@acme.test", "member")
    url = f"/api/v1/members/{member.membership_id}"
    removed = identity.client.delete(url, headers=acme.owner.headers)
    assert removed.status_code == 204, removed.text
    assert removed.content == b""
    assert error(identity.client.get(url, headers=acme.owner.headers), 404)["code"] == "MEMBER_NOT_FOUND"
    assert (
        error(identity.client.get("/api/v1/auth/me", headers=member.headers), 401)["code"] == "TOKEN_REVOKED"
    )
    refreshed = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh_token})
    assert refreshed.status_code == 401
    assert error(identity.login(member.email, member.password, "acme"), 403)["code"] == "NOT_A_MEMBER"
    (record,) = audit_records(identity, acme, "membership.delete")
    assert record.resource_id == str(member.membership_id)
    assert record.summary == {"user_id": str(member.user_id)}


def test_another_tenants_members_are_not_found(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    member = identity.member(acme, "member@acme.test", "member")
    url = f"/api/v1/members/{member.membership_id}"
    for response in (
        identity.client.get(url, headers=globex.owner.headers),
        identity.client.patch(url, json={"role": "viewer"}, headers=globex.owner.headers),
        identity.client.delete(url, headers=globex.owner.headers),
    ):
        assert error(response, 404)["code"] == "MEMBER_NOT_FOUND"
    listed = identity.client.get("/api/v1/members", headers=globex.owner.headers).json()
    assert [m["email"] for m in listed["items"]] == ["owner@globex.test"]

    # Nothing changed in acme: the member keeps their role and their session.
    assert identity.client.get(url, headers=acme.owner.headers).json()["role"] == "member"
    assert identity.client.get("/api/v1/auth/me", headers=member.headers).status_code == 200
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        assert session.get(Membership, member.membership_id) is not None
    assert audit_records(identity, globex, "membership.update") == []
    assert audit_records(identity, globex, "membership.delete") == []
    # And the error names nothing of acme's.
    body = error(identity.client.get(url, headers=globex.owner.headers), 404)
    assert "acme" not in str(body)
