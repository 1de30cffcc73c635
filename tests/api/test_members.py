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


def test_an_invitation_shows_only_the_address_and_grants_nothing_until_accepted(identity: Identity) -> None:
    """The issue's story: acme's owner adds the address of globex's owner, who has an account."""
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    created = identity.client.post(
        "/api/v1/members", json={"email": "Owner@Globex.test", "role": "admin"}, headers=acme.owner.headers
    )
    assert created.status_code == 201, created.text
    invited = created.json()
    assert created.headers["location"] == f"/api/v1/members/{invited['id']}"
    # The address and "invited": nothing of the account (its id, name, last sign-in), no hint it exists.
    assert {k: v for k, v in invited.items() if k not in ("id", "created_at", "expires_at")} == {
        "status": "invited",
        "user_id": None,
        "email": "owner@globex.test",
        "display_name": None,
        "role": "admin",
        "last_login_at": None,
        "invitation_token": invited["invitation_token"],
    }
    assert invited["invitation_token"].startswith("inv_")
    assert str(globex.owner.user_id) not in created.text
    assert "Owner" not in created.text.replace("owner@globex.test", "")

    # Their sign-in is untouched: one tenant, no "which tenant?" question, and acme refuses them.
    assert identity.login(globex.owner.email, globex.owner.password).status_code == 200
    assert error(identity.login(globex.owner.email, globex.owner.password, "acme"), 403)["code"] == (
        "NOT_A_MEMBER"
    )

    listed = identity.client.get("/api/v1/members", headers=acme.owner.headers).json()["items"]
    assert [(m["email"], m["status"]) for m in listed] == [
        ("owner@acme.test", "active"),
        ("owner@globex.test", "invited"),
    ]
    assert listed[1] == {k: v for k, v in invited.items() if k != "invitation_token"}
    one = identity.client.get(f"/api/v1/members/{invited['id']}", headers=acme.owner.headers)
    assert one.json() == listed[1]
    assert "invitation_token" not in one.text

    (record,) = audit_records(identity, acme, "invitation.create")
    assert record.resource_id == invited["id"]
    assert record.actor_user_id == acme.owner.user_id
    assert record.summary["email"] == "owner@globex.test"
    assert record.summary["role"] == "admin"
    assert "new_user" not in record.summary
    assert audit_records(identity, acme, "membership.create")[1:] == []  # only the owner's, at creation


def test_the_answer_is_the_same_whether_the_address_has_an_account_or_not(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    answers = [
        identity.client.post(
            "/api/v1/members", json={"email": email, "role": "member"}, headers=acme.owner.headers
        )
        for email in (globex.owner.email, "nobody-yet@example.test")
    ]
    existing, new = (a.json() for a in answers)
    assert [a.status_code for a in answers] == [201, 201]
    assert existing.keys() == new.keys()
    varying = {"id", "email", "created_at", "expires_at", "invitation_token"}
    assert {k: v for k, v in existing.items() if k not in varying} == {
        k: v for k, v in new.items() if k not in varying
    }
    assert len(existing["invitation_token"]) == len(new["invitation_token"])
    first, second = (set(a.headers.keys()) for a in answers)
    assert first == second
    for answer in answers:
        assert answer.headers["location"] == f"/api/v1/members/{answer.json()['id']}"
    # And the records say nothing of accounts either.
    summaries = [r.summary for r in audit_records(identity, acme, "invitation.create")]
    assert summaries[0].keys() == summaries[1].keys()


def test_members_and_invitations_are_listed_together_in_pages(identity: Identity) -> None:
    acme = identity.tenant("acme")
    dev = identity.member(acme, "dev@acme.test", "member")
    identity.invite(acme, "ada@example.test", "viewer")
    identity.member(acme, "ops@acme.test", "admin")
    identity.invite(acme, "bob@example.test", "admin")

    page = identity.client.get("/api/v1/members", headers=acme.owner.headers).json()
    expected = [
        ("owner@acme.test", "active"),
        ("dev@acme.test", "active"),
        ("ada@example.test", "invited"),
        ("ops@acme.test", "active"),
        ("bob@example.test", "invited"),
    ]
    assert [(m["email"], m["status"]) for m in page["items"]] == expected
    assert page["next_cursor"] is None
    assert page["items"][1]["user_id"] == str(dev.user_id)
    assert page["items"][1]["display_name"] == "dev"

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        step = identity.client.get("/api/v1/members", params=params, headers=acme.owner.headers).json()
        seen += [(m["email"], m["status"]) for m in step["items"]]
        cursor = step["next_cursor"]
        if cursor is None:
            break
    assert seen == expected

    def emails(**params: str) -> list[str]:
        response = identity.client.get("/api/v1/members", params=params, headers=acme.owner.headers)
        assert response.status_code == 200, response.text
        return [m["email"] for m in response.json()["items"]]

    assert emails(role="admin") == ["ops@acme.test", "bob@example.test"]
    assert emails(status="invited") == ["ada@example.test", "bob@example.test"]
    assert emails(status="active", role="admin") == ["ops@acme.test"]
    assert emails(status="expired") == []
    bad = identity.client.get("/api/v1/members?status=gone", headers=acme.owner.headers)
    assert error(bad, 422)["code"] == "STATUS_UNKNOWN"
    assert "'gone'" in error(bad, 422)["message"]

    # The operator's view of the tenant lists them the same way.
    operator_view = identity.client.get(
        f"/api/v1/tenants/{acme.id}/members", headers=identity.operator.headers
    ).json()
    assert operator_view["items"] == page["items"]


def test_invitations_that_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    viewer = identity.member(acme, "viewer@acme.test", "viewer")
    invite = "/api/v1/members"

    duplicate = identity.client.post(
        invite, json={"email": "VIEWER@acme.test", "role": "member"}, headers=acme.owner.headers
    )
    assert error(duplicate, 409)["code"] == "ALREADY_MEMBER"
    first = identity.invite(acme, "x@acme.test", "viewer")
    again = identity.client.post(
        invite, json={"email": "X@acme.test", "role": "member"}, headers=acme.owner.headers
    )
    assert error(again, 409)["code"] == "ALREADY_INVITED"
    assert error(again, 409)["details"] == {"email": "x@acme.test", "id": first["id"]}
    bad_email = identity.client.post(
        invite, json={"email": "not-an-address", "role": "viewer"}, headers=acme.owner.headers
    )
    assert "not-an-address" in error(bad_email, 422)["message"]
    unknown = identity.client.post(
        invite, json={"email": "y@acme.test", "role": "wizard"}, headers=acme.owner.headers
    )
    assert error(unknown, 422)["code"] == "ROLE_UNKNOWN"
    assert error(unknown, 422)["details"] == {"role": "wizard"}
    too_strong = identity.client.post(
        invite, json={"email": "y@acme.test", "role": "owner"}, headers=admin.headers
    )
    body = error(too_strong, 403)
    assert body["code"] == "ROLE_TOO_STRONG"
    assert body["details"]["missing"] == ["tenant:manage"]
    denied = identity.client.post(
        invite, json={"email": "y@acme.test", "role": "viewer"}, headers=viewer.headers
    )
    assert error(denied, 403)["code"] == "PERMISSION_DENIED"
    missing = identity.client.post(invite, json={"role": "viewer"}, headers=acme.owner.headers)
    assert error(missing, 422)["code"] == "VALIDATION_FAILED"
    named = identity.client.post(
        invite,
        json={"email": "y@acme.test", "role": "viewer", "display_name": "Y"},
        headers=acme.owner.headers,
    )
    assert "display_name" in error(named, 422)["message"]  # the person names themselves on acceptance

    # An admin may offer up to admin.
    assert (
        identity.client.post(
            invite, json={"email": "y@acme.test", "role": "admin"}, headers=admin.headers
        ).status_code
        == 201
    )
    emails = [r.summary["email"] for r in audit_records(identity, acme, "invitation.create")]
    assert emails == ["admin@acme.test", "viewer@acme.test", "x@acme.test", "y@acme.test"]
    # An invited entry has no role to change yet.
    patched = identity.client.patch(
        f"{invite}/{first['id']}", json={"role": "admin"}, headers=acme.owner.headers
    )
    assert error(patched, 409)["code"] == "MEMBER_INVITED"


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
