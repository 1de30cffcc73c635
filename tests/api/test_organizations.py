"""/api/v1/organizations over HTTP on both databases: the hierarchy (path, children, moves, no cycles),
lists and their filters, refusals with their codes, audit records, permissions and isolation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import Organization
from tests.api.test_projects import TIME, audit_trail, create, error_code, invite
from tests.identity import Identity, Member, TenantHandle

ORGS = "/api/v1/organizations"


def make(
    identity: Identity,
    tenant: TenantHandle,
    slug: str,
    parent: str | None = None,
    member: Member | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": slug.title(), "slug": slug}
    if parent is not None:
        body["parent_id"] = parent
    response = identity.client.post(ORGS, json=body, headers=(member or tenant.owner).headers)
    assert response.status_code == 201, response.text
    org: dict[str, Any] = response.json()
    return org


def slugs(identity: Identity, member: Member, limit: int = 50, **params: Any) -> list[str]:
    """The slugs of every page of the list."""
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = identity.client.get(ORGS, params=query, headers=member.headers)
        assert response.status_code == 200, response.text
        found += [item["slug"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


def test_create_read_rename_delete_with_audit(identity: Identity) -> None:
    acme = identity.tenant("acme")
    h = acme.owner.headers
    response = identity.client.post(ORGS, json={"name": " Engineering ", "slug": "eng"}, headers=h)
    assert response.status_code == 201, response.text
    org = response.json()
    assert response.headers["location"] == f"/api/v1/organizations/{org['id']}"
    assert (org["name"], org["slug"], org["parent_id"]) == ("Engineering", "eng", None)
    assert TIME.match(org["created_at"])
    assert TIME.match(org["updated_at"])

    url = f"{ORGS}/{org['id']}"
    detail = identity.client.get(url, headers=h).json()
    assert detail == {**org, "path": [], "children": [], "child_count": 0}

    renamed = identity.client.patch(url, json={"name": "R&D"}, headers=h)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "R&D"
    assert renamed.json()["parent_id"] is None

    deleted = identity.client.delete(url, headers=h)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert error_code(identity.client.get(url, headers=h), 404) == "ORGANIZATION_NOT_FOUND"
    trail = audit_trail(identity, acme, org["id"])
    assert [r.action for r in trail] == ["organization.create", "organization.update", "organization.delete"]
    assert trail[0].summary == {"name": "Engineering", "slug": "eng", "parent_id": None}
    assert trail[1].summary == {"name": ["Engineering", "R&D"]}
    assert trail[2].summary == {"name": "R&D", "slug": "eng", "parent_id": None}
    assert all(r.actor_user_id == acme.owner.user_id for r in trail)


def test_the_hierarchy_shows_its_path_and_children_and_moves(identity: Identity) -> None:
    acme = identity.tenant("acme")
    h = acme.owner.headers
    root = make(identity, acme, "root")
    child = make(identity, acme, "child", root["id"])
    grandchild = make(identity, acme, "grandchild", child["id"])
    sibling = make(identity, acme, "a-sibling", root["id"])
    assert grandchild["parent_id"] == child["id"]

    deep = identity.client.get(f"{ORGS}/{grandchild['id']}", headers=h).json()
    assert deep["path"] == [
        {"id": root["id"], "slug": "root", "name": "Root"},
        {"id": child["id"], "slug": "child", "name": "Child"},
    ]
    top = identity.client.get(f"{ORGS}/{root['id']}", headers=h).json()
    assert top["children"] == [sibling["id"], child["id"]]  # by slug
    assert top["child_count"] == 2

    # Omitting parent_id leaves it; null moves to the top level; an id moves under that organization.
    url = f"{ORGS}/{grandchild['id']}"
    assert identity.client.patch(url, json={"name": "G"}, headers=h).json()["parent_id"] == child["id"]
    assert identity.client.patch(url, json={"parent_id": None}, headers=h).json()["parent_id"] is None
    assert identity.client.get(url, headers=h).json()["path"] == []
    assert (
        identity.client.patch(url, json={"parent_id": sibling["id"]}, headers=h).json()["parent_id"]
        == (sibling["id"])
    )
    trail = audit_trail(identity, acme, grandchild["id"])
    assert [r.summary for r in trail[1:]] == [
        {"name": ["Grandchild", "G"]},
        {"parent_id": [child["id"], None]},
        {"parent_id": [None, sibling["id"]]},
    ]

    # Moving root under its own descendant, or under itself, would make a cycle.
    for target in (grandchild["id"], child["id"], root["id"]):
        cycle = identity.client.patch(f"{ORGS}/{root['id']}", json={"parent_id": target}, headers=h)
        assert error_code(cycle, 422) == "ORG_CYCLE"
        assert cycle.json()["error"]["details"] == {"organization_id": root["id"], "parent_id": target}
    assert identity.client.get(f"{ORGS}/{root['id']}", headers=h).json()["parent_id"] is None
    missing = str(uuid.uuid4())
    nowhere = identity.client.patch(f"{ORGS}/{child['id']}", json={"parent_id": missing}, headers=h)
    assert error_code(nowhere, 404) == "ORGANIZATION_NOT_FOUND"
    assert nowhere.json()["error"]["details"] == {"parent_id": missing}


def test_lists_filter_by_parent_and_page_by_slug(identity: Identity) -> None:
    acme = identity.tenant("acme")
    top = [make(identity, acme, slug) for slug in ("delta", "alpha", "echo", "charlie")]
    nested = [make(identity, acme, f"{top[1]['slug']}-{i}", top[1]["id"]) for i in range(3)]
    everyone = sorted(o["slug"] for o in top + nested)
    assert slugs(identity, acme.owner, 3) == everyone
    assert slugs(identity, acme.owner) == everyone
    assert slugs(identity, acme.owner, 2, root="true") == sorted(o["slug"] for o in top)
    assert slugs(identity, acme.owner, 2, root="false") == sorted(o["slug"] for o in nested)
    assert slugs(identity, acme.owner, 2, parent_id=top[1]["id"]) == sorted(o["slug"] for o in nested)
    assert slugs(identity, acme.owner, parent_id=top[0]["id"]) == []

    h = acme.owner.headers
    both = identity.client.get(ORGS, params={"root": "true", "parent_id": top[1]["id"]}, headers=h)
    assert error_code(both, 422) == "FILTER_CONFLICT"
    assert (
        error_code(identity.client.get(ORGS, params={"cursor": "junk"}, headers=h), 422) == "INVALID_CURSOR"
    )
    for bad in ({"limit": 0}, {"limit": 201}, {"parent_id": "x"}, {"root": "maybe"}):
        assert error_code(identity.client.get(ORGS, params=bad, headers=h), 422) == "VALIDATION_FAILED"


def test_refusals_carry_their_codes(identity: Identity) -> None:
    acme = identity.tenant("acme")
    h = acme.owner.headers
    make(identity, acme, "eng")

    def post(body: dict[str, Any]) -> httpx.Response:
        return identity.client.post(ORGS, json=body, headers=h)

    taken = post({"name": "Again", "slug": "eng"})
    assert error_code(taken, 409) == "SLUG_TAKEN"
    assert taken.json()["error"]["details"] == {"slug": "eng"}
    for slug in ("Eng", "-eng", "eng-", "e_g", "", "a" * 64, "ü"):
        assert error_code(post({"name": "X", "slug": slug}), 422) in {"SLUG_INVALID", "VALIDATION_FAILED"}
    assert post({"name": "X", "slug": "a" * 63}).status_code == 201
    assert error_code(post({"name": "X", "slug": "bad slug"}), 422) == "SLUG_INVALID"
    assert error_code(post({"name": "  ", "slug": "blank"}), 422) == "NAME_REQUIRED"
    assert error_code(post({"slug": "nameless"}), 422) == "VALIDATION_FAILED"
    assert error_code(post({"name": "X", "slug": "x", "plan": "team"}), 422) == "VALIDATION_FAILED"
    missing = str(uuid.uuid4())
    orphan = post({"name": "X", "slug": "orphan", "parent_id": missing})
    assert error_code(orphan, 404) == "ORGANIZATION_NOT_FOUND"
    assert orphan.json()["error"]["details"] == {"parent_id": missing}
    gone = f"{ORGS}/{missing}"
    assert error_code(identity.client.get(gone, headers=h), 404) == "ORGANIZATION_NOT_FOUND"
    assert error_code(identity.client.patch(gone, json={"name": "Y"}, headers=h), 404) == (
        "ORGANIZATION_NOT_FOUND"
    )
    assert error_code(identity.client.delete(gone, headers=h), 404) == "ORGANIZATION_NOT_FOUND"
    # The same slug in another tenant is fine.
    globex = identity.tenant("globex")
    assert make(identity, globex, "eng")["slug"] == "eng"


def test_only_an_empty_organization_is_deleted(identity: Identity) -> None:
    acme = identity.tenant("acme")
    h = acme.owner.headers
    parent = make(identity, acme, "parent")
    child = make(identity, acme, "child", parent["id"])
    projects = [create(identity, acme.owner, parent["id"], name) for name in ("a", "b")]
    url = f"{ORGS}/{parent['id']}"
    full = identity.client.delete(url, headers=h)
    assert error_code(full, 409) == "ORG_NOT_EMPTY"
    assert full.json()["error"]["details"] == {
        "organization_id": parent["id"],
        "organizations": 1,
        "projects": 2,
    }
    assert "1 organization(s) and 2 project(s)" in full.json()["error"]["message"]
    assert identity.client.delete(f"{ORGS}/{child['id']}", headers=h).status_code == 204
    for project in projects:
        assert identity.client.delete(f"/api/v1/projects/{project['id']}", headers=h).status_code == 204
    assert identity.client.delete(url, headers=h).status_code == 204
    assert error_code(identity.client.get(url, headers=h), 404) == "ORGANIZATION_NOT_FOUND"


def test_a_viewer_reads_and_a_member_does_not_manage_organizations(identity: Identity) -> None:
    acme = identity.tenant("acme")
    org = make(identity, acme, "eng")
    url = f"{ORGS}/{org['id']}"
    for role in ("viewer", "member"):
        someone = invite(identity, acme, f"{role}@acme.test", role)
        assert identity.client.get(url, headers=someone.headers).json()["slug"] == "eng"
        assert slugs(identity, someone) == ["eng"]
        refusals = [
            identity.client.post(ORGS, json={"name": "X", "slug": "x"}, headers=someone.headers),
            identity.client.patch(url, json={"name": "X"}, headers=someone.headers),
            identity.client.delete(url, headers=someone.headers),
        ]
        for refused in refusals:
            assert error_code(refused, 403) == "PERMISSION_DENIED"
            assert refused.json()["error"]["details"] == {"permission": "organizations:write"}
    admin = invite(identity, acme, "admin@acme.test", "admin")
    assert make(identity, acme, "ops", member=admin)["slug"] == "ops"
    assert identity.client.get(url, headers=acme.owner.headers).json()["name"] == "Eng"


def test_another_tenant_sees_none_of_a_tenants_organizations(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    org = make(identity, acme, "eng")
    child = make(identity, acme, "eng-web", org["id"])
    own = make(identity, globex, "ops")
    h = globex.owner.headers
    for target in (org, child):
        url = f"{ORGS}/{target['id']}"
        assert error_code(identity.client.get(url, headers=h), 404) == "ORGANIZATION_NOT_FOUND"
        assert error_code(identity.client.patch(url, json={"name": "Mine"}, headers=h), 404) == (
            "ORGANIZATION_NOT_FOUND"
        )
        assert error_code(identity.client.delete(url, headers=h), 404) == "ORGANIZATION_NOT_FOUND"
    # Another tenant's organization can be neither a parent nor a place to move to.
    into = identity.client.post(ORGS, json={"name": "X", "slug": "x", "parent_id": org["id"]}, headers=h)
    assert error_code(into, 404) == "ORGANIZATION_NOT_FOUND"
    move = identity.client.patch(f"{ORGS}/{own['id']}", json={"parent_id": org["id"]}, headers=h)
    assert error_code(move, 404) == "ORGANIZATION_NOT_FOUND"
    assert slugs(identity, globex.owner) == ["ops"]
    assert slugs(identity, globex.owner, parent_id=org["id"]) == []
    # Acme's organizations are as they were.
    detail = identity.client.get(f"{ORGS}/{org['id']}", headers=acme.owner.headers).json()
    assert detail == {**org, "path": [], "children": [child["id"]], "child_count": 1}
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        assert sorted(session.scalars(select(Organization.slug))) == ["eng", "eng-web"]
