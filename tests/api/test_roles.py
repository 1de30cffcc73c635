"""/api/v1/roles over HTTP: built-in and custom roles, inheritance, changes that end holders' sessions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import BUILTIN_ROLES, AuditLog, Role
from tests.identity import Identity, TenantHandle

VIEWER = sorted(BUILTIN_ROLES["viewer"].permissions)


def audit_records(identity: Identity, tenant: TenantHandle, action: str) -> list[AuditLog]:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)))


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def create(identity: Identity, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = identity.client.post("/api/v1/roles", json=body, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    role: dict[str, Any] = response.json()
    return role


def test_the_builtin_roles_are_listed_with_their_permissions(identity: Identity) -> None:
    acme = identity.tenant("acme")
    member = identity.member(acme, "member@acme.test", "member")
    viewer = identity.member(acme, "viewer@acme.test", "viewer")
    listed = identity.client.get("/api/v1/roles", headers=member.headers)
    assert listed.status_code == 200, listed.text
    items = {r["name"]: r for r in listed.json()["items"]}
    assert set(items) == set(BUILTIN_ROLES)
    for name, builtin in BUILTIN_ROLES.items():
        assert items[name]["builtin"] is True
        assert items[name]["id"] is None
        assert items[name]["permissions"] == sorted(builtin.permissions)
    assert "roles:read" in items["member"]["permissions"]
    assert "api_keys:read" not in items["member"]["permissions"]
    assert {"roles:read", "api_keys:read"} <= set(items["admin"]["permissions"])
    assert (
        error(identity.client.get("/api/v1/roles", headers=viewer.headers), 403)["code"]
        == "PERMISSION_DENIED"
    )
    # Reading is not writing.
    refused = identity.client.post(
        "/api/v1/roles", json={"name": "x1", "permissions": []}, headers=member.headers
    )
    assert error(refused, 403)["details"] == {"permission": "roles:write"}


def test_custom_roles_inherit_and_are_listed_by_name(identity: Identity) -> None:
    acme = identity.tenant("acme")
    response = identity.client.post(
        "/api/v1/roles",
        json={"name": "auditor", "permissions": ["audit:read"], "inherits": "viewer"},
        headers=acme.owner.headers,
    )
    assert response.status_code == 201, response.text
    auditor = response.json()
    assert response.headers["location"] == f"/api/v1/roles/{auditor['id']}"
    assert auditor["builtin"] is False
    assert auditor["own_permissions"] == ["audit:read"]
    assert auditor["permissions"] == sorted({"audit:read", *VIEWER})
    assert auditor["inherits"] == "viewer"
    senior = create(identity, acme, name="senior-auditor", permissions=["projects:write"], inherits="auditor")
    assert senior["permissions"] == sorted({"audit:read", "projects:write", *VIEWER})

    got = identity.client.get(f"/api/v1/roles/{auditor['id']}", headers=acme.owner.headers)
    assert got.status_code == 200
    assert got.json() == auditor
    names = [
        r["name"] for r in identity.client.get("/api/v1/roles", headers=acme.owner.headers).json()["items"]
    ]
    assert names == ["admin", "auditor", "member", "owner", "senior-auditor", "viewer"]
    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = identity.client.get("/api/v1/roles", params=params, headers=acme.owner.headers).json()
        pages += [r["name"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == names
    custom = identity.client.get("/api/v1/roles?builtin=false", headers=acme.owner.headers).json()
    assert [r["name"] for r in custom["items"]] == ["auditor", "senior-auditor"]

    # A member holding a custom role gets what it grants.
    holder = identity.member(acme, "holder@acme.test", "senior-auditor")
    me = identity.client.get("/api/v1/auth/me", headers=holder.headers).json()
    assert me["permissions"] == senior["permissions"]

    records = audit_records(identity, acme, "role.create")
    assert [r.resource_id for r in records] == [auditor["id"], senior["id"]]
    assert records[0].summary == {"name": "auditor", "permissions": ["audit:read"], "inherits": "viewer"}


def test_custom_roles_that_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    admin = identity.member(acme, "admin@acme.test", "admin")
    url = "/api/v1/roles"
    headers = acme.owner.headers

    unknown = identity.client.post(url, json={"name": "r1", "permissions": ["projects:fly"]}, headers=headers)
    body = error(unknown, 422)
    assert body["code"] == "PERMISSION_UNKNOWN"
    assert "projects:fly" in body["message"]
    assert (
        error(identity.client.post(url, json={"name": "admin"}, headers=headers), 409)["code"]
        == "ROLE_EXISTS"
    )
    bad_name = identity.client.post(url, json={"name": "Not A Name"}, headers=headers)
    assert error(bad_name, 422)["code"] == "ROLE_NAME_INVALID"
    no_parent = identity.client.post(url, json={"name": "r1", "inherits": "ghost"}, headers=headers)
    assert error(no_parent, 422)["code"] == "ROLE_UNKNOWN"
    # Nobody writes into a role more than they hold, directly or by inheritance.
    for body_in in ({"name": "r1", "permissions": ["tenant:manage"]}, {"name": "r1", "inherits": "owner"}):
        too_strong = error(identity.client.post(url, json=body_in, headers=admin.headers), 403)
        assert too_strong["code"] == "ROLE_TOO_STRONG"
        assert too_strong["details"]["missing"] == ["tenant:manage"]

    first = create(identity, acme, name="r1", permissions=[])
    create(identity, acme, name="r2", inherits="r1")
    cycle = identity.client.patch(f"{url}/{first['id']}", json={"inherits": "r2"}, headers=headers)
    assert error(cycle, 422)["code"] == "ROLE_CYCLE"
    assert (
        error(identity.client.post(url, json={"name": "r1"}, headers=headers), 409)["code"] == "ROLE_EXISTS"
    )
    escalate = identity.client.patch(
        f"{url}/{first['id']}", json={"permissions": ["tenant:manage"]}, headers=admin.headers
    )
    assert error(escalate, 403)["code"] == "ROLE_TOO_STRONG"
    assert (
        error(identity.client.get(f"{url}/{uuid.uuid4()}", headers=headers), 404)["code"] == "ROLE_NOT_FOUND"
    )
    assert [r.summary["name"] for r in audit_records(identity, acme, "role.create")] == ["r1", "r2"]
    assert audit_records(identity, acme, "role.update") == []


def test_changing_a_role_ends_its_holders_sessions(identity: Identity) -> None:
    acme = identity.tenant("acme")
    auditor = create(identity, acme, name="auditor", permissions=["audit:read"], inherits="viewer")
    create(identity, acme, name="senior", permissions=["projects:write"], inherits="auditor")
    direct = identity.member(acme, "direct@acme.test", "auditor")
    inherited = identity.member(acme, "inherited@acme.test", "senior")
    bystander = identity.member(acme, "bystander@acme.test", "viewer")

    changed = identity.client.patch(
        f"/api/v1/roles/{auditor['id']}",
        json={"permissions": ["audit:read", "organizations:write"]},
        headers=acme.owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["inherits"] == "viewer"  # omitted: unchanged
    assert "organizations:write" in changed.json()["permissions"]

    for holder in (direct, inherited):
        old = identity.client.get("/api/v1/auth/me", headers=holder.headers)
        assert error(old, 401)["code"] == "TOKEN_REVOKED"
        refreshed = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        assert refreshed.status_code == 401, refreshed.text
        again = identity.sign_in(holder.email, holder.password, "acme")
        permissions = identity.client.get("/api/v1/auth/me", headers=again.headers).json()["permissions"]
        assert "organizations:write" in permissions
    for untouched in (bystander, acme.owner):
        assert identity.client.get("/api/v1/auth/me", headers=untouched.headers).status_code == 200

    (record,) = audit_records(identity, acme, "role.update")
    assert record.resource_id == auditor["id"]
    summary = dict(record.summary)
    # Each holder has one session: the sign-in after accepting the invitation.
    assert summary.pop("sessions_ended") == 2
    assert summary == {
        "name": "auditor",
        "permissions": [["audit:read"], ["audit:read", "organizations:write"]],
    }

    # inherits: null cuts the role loose from viewer; a change to nothing ends nobody's session.
    loose = identity.client.patch(
        f"/api/v1/roles/{auditor['id']}", json={"inherits": None}, headers=acme.owner.headers
    )
    assert loose.json()["inherits"] is None
    assert loose.json()["permissions"] == ["audit:read", "organizations:write"]
    again = identity.sign_in(direct.email, direct.password, "acme")
    same = identity.client.patch(
        f"/api/v1/roles/{auditor['id']}",
        json={"permissions": ["organizations:write", "audit:read"]},
        headers=acme.owner.headers,
    )
    assert same.status_code == 200
    assert identity.client.get("/api/v1/auth/me", headers=again.headers).status_code == 200
    assert len(audit_records(identity, acme, "role.update")) == 2


def test_a_role_in_use_is_not_deleted(identity: Identity) -> None:
    acme = identity.tenant("acme")
    parent = create(identity, acme, name="parent", permissions=["audit:read"])
    child = create(identity, acme, name="child", inherits="parent")
    holder = identity.member(acme, "holder@acme.test", "child")

    inherited = identity.client.delete(f"/api/v1/roles/{parent['id']}", headers=acme.owner.headers)
    assert error(inherited, 409)["code"] == "ROLE_IN_USE"
    held = identity.client.delete(f"/api/v1/roles/{child['id']}", headers=acme.owner.headers)
    assert error(held, 409)["code"] == "ROLE_IN_USE"

    moved = identity.client.patch(
        f"/api/v1/members/{holder.membership_id}", json={"role": "viewer"}, headers=acme.owner.headers
    )
    assert moved.status_code == 200, moved.text
    for role in (child, parent):
        deleted = identity.client.delete(f"/api/v1/roles/{role['id']}", headers=acme.owner.headers)
        assert deleted.status_code == 204, deleted.text
        gone = identity.client.get(f"/api/v1/roles/{role['id']}", headers=acme.owner.headers)
        assert error(gone, 404)["code"] == "ROLE_NOT_FOUND"
    assert [r.resource_id for r in audit_records(identity, acme, "role.delete")] == [
        child["id"],
        parent["id"],
    ]


def test_another_tenants_roles_are_not_found(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    auditor = create(identity, acme, name="auditor", permissions=["audit:read"])
    url = f"/api/v1/roles/{auditor['id']}"
    for response in (
        identity.client.get(url, headers=globex.owner.headers),
        identity.client.patch(url, json={"permissions": []}, headers=globex.owner.headers),
        identity.client.delete(url, headers=globex.owner.headers),
    ):
        assert error(response, 404)["code"] == "ROLE_NOT_FOUND"
    theirs = identity.client.get("/api/v1/roles?builtin=false", headers=globex.owner.headers).json()
    assert theirs["items"] == []
    # acme's role names mean nothing in globex: the name is free, and inviting with it is refused.
    invite = identity.client.post(
        "/api/v1/members", json={"email": "x@globex.test", "role": "auditor"}, headers=globex.owner.headers
    )
    assert error(invite, 422)["code"] == "ROLE_UNKNOWN"
    create(identity, globex, name="auditor", permissions=["projects:read"])

    assert identity.client.get(url, headers=acme.owner.headers).json() == auditor
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        stored = session.get(Role, uuid.UUID(auditor["id"]))
        assert stored is not None
        assert stored.permissions == ["audit:read"]
    assert audit_records(identity, globex, "role.update") == []
    assert audit_records(identity, globex, "role.delete") == []
