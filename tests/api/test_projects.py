"""/api/v1/projects over HTTP on both databases: the round trip, the fast list (pages in every sort order,
filters, times rendered as GET /{id} renders them), every refusal with its code, audit records, permissions
and isolation between tenants."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from appliance.db import tenancy
from appliance.models import AuditLog, Project
from tests.identity import Identity, Member, TenantHandle

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # appliance.api.schemas.times
PROJECTS = "/api/v1/projects"


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def organization(identity: Identity, tenant: TenantHandle, slug: str) -> str:
    response = identity.client.post(
        "/api/v1/organizations", json={"name": slug.title(), "slug": slug}, headers=tenant.owner.headers
    )
    assert response.status_code == 201, response.text
    org_id: str = response.json()["id"]
    return org_id


def create(identity: Identity, member: Member, org_id: str, name: str, **extra: Any) -> dict[str, Any]:
    response = identity.client.post(
        PROJECTS, json={"organization_id": org_id, "name": name, **extra}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def invite(identity: Identity, tenant: TenantHandle, email: str, role: str) -> Member:
    """A member with ``role``, invited by the tenant's owner, accepted and signed in."""
    return identity.member(tenant, email, role)


def audit_trail(identity: Identity, tenant: TenantHandle, resource_id: str) -> list[AuditLog]:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return list(
            session.scalars(
                select(AuditLog).where(AuditLog.resource_id == resource_id).order_by(AuditLog.seq)
            )
        )


def walk(identity: Identity, member: Member, limit: int = 50, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of the list, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = identity.client.get(PROJECTS, params=query, headers=member.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the list never ends"


def test_create_read_change_delete_with_audit(identity: Identity) -> None:
    acme = identity.tenant("acme")
    org = organization(identity, acme, "eng")
    response = identity.client.post(
        PROJECTS,
        json={"organization_id": org, "name": " Rocket ", "description": "to the moon"},
        headers=acme.owner.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/v1/projects/{created['id']}"
    assert created["name"] == "Rocket"
    assert created["organization_id"] == org
    assert created["created_by"] == str(acme.owner.user_id)
    assert TIME.match(created["created_at"])
    assert TIME.match(created["updated_at"])

    url = f"{PROJECTS}/{created['id']}"
    assert identity.client.get(url, headers=acme.owner.headers).json() == created

    other = organization(identity, acme, "ops")
    changed = identity.client.patch(
        url,
        json={"name": "Rocket 2", "description": "", "organization_id": other},
        headers=acme.owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Rocket 2"
    assert changed.json()["description"] == ""
    assert changed.json()["organization_id"] == other
    assert identity.client.get(url, headers=acme.owner.headers).json() == changed.json()

    deleted = identity.client.delete(url, headers=acme.owner.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert error_code(identity.client.get(url, headers=acme.owner.headers), 404) == "PROJECT_NOT_FOUND"

    trail = audit_trail(identity, acme, created["id"])
    assert [r.action for r in trail] == ["project.create", "project.update", "project.delete"]
    assert all(r.actor_user_id == acme.owner.user_id and r.resource_type == "project" for r in trail)
    assert trail[0].summary == {"name": "Rocket", "organization_id": org}
    assert trail[1].summary == {
        "name": ["Rocket", "Rocket 2"],
        "description": ["to the moon", ""],
        "organization_id": [org, other],
    }
    assert trail[2].summary == {"name": "Rocket 2", "organization_id": other}


def test_a_patch_that_changes_nothing_writes_no_audit_record(identity: Identity) -> None:
    acme = identity.tenant("acme")
    project = create(identity, acme.owner, organization(identity, acme, "eng"), "Rocket")
    same = identity.client.patch(
        f"{PROJECTS}/{project['id']}", json={"name": "Rocket"}, headers=acme.owner.headers
    )
    assert same.status_code == 200
    assert same.json() == project
    assert [r.action for r in audit_trail(identity, acme, project["id"])] == ["project.create"]


def test_a_listed_project_reads_exactly_as_it_does_on_its_own(identity: Identity) -> None:
    acme = identity.tenant("acme")
    org = organization(identity, acme, "eng")
    made = [create(identity, acme.owner, org, f"p{i}", description=f"d{i} ünïcode") for i in range(3)]
    listed = identity.client.get(PROJECTS, headers=acme.owner.headers).json()
    assert listed["next_cursor"] is None
    assert {p["id"] for p in listed["items"]} == {p["id"] for p in made}
    for item in listed["items"]:
        single = identity.client.get(f"{PROJECTS}/{item['id']}", headers=acme.owner.headers).json()
        assert item == single
        assert TIME.match(item["created_at"]), item["created_at"]


def seed_projects(identity: Identity, tenant: TenantHandle, orgs: list[str], count: int) -> list[Project]:
    """``count`` projects spread over ``orgs``; every three share a creation time and the same names recur
    in each organization, so that the id must break the ties of both sorts."""
    t0 = dt.datetime(2026, 11, 22, 1, 27, 39, 123456, tzinfo=dt.UTC)
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, tenant.id)
        rows = [
            Project(
                tenant_id=tenant.id,
                organization_id=uuid.UUID(orgs[i % len(orgs)]),
                name=f"project-{i // len(orgs):03d}",
                created_at=t0 + dt.timedelta(seconds=i // 3),
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return rows


SORT_KEYS: dict[str, tuple[Callable[[Project], tuple[Any, str]], bool]] = {
    "created_at": (lambda p: (p.created_at, str(p.id)), False),
    "-created_at": (lambda p: (p.created_at, str(p.id)), True),
    "name": (lambda p: (p.name, str(p.id)), False),
    "-name": (lambda p: (p.name, str(p.id)), True),
}


def test_pages_cover_every_project_once_in_each_sort_order(identity: Identity) -> None:
    acme = identity.tenant("acme")
    orgs = [organization(identity, acme, "eng"), organization(identity, acme, "ops")]
    rows = seed_projects(identity, acme, orgs, 120)
    for sort, (key, descending) in SORT_KEYS.items():
        pages = walk(identity, acme.owner, 50, sort=sort)
        assert [len(page) for page in pages] == [50, 50, 20], sort
        expected = [str(p.id) for p in sorted(rows, key=key, reverse=descending)]
        assert [item["id"] for page in pages for item in page] == expected, sort
    # The default is newest first.
    first = identity.client.get(PROJECTS, params={"limit": 5}, headers=acme.owner.headers).json()
    newest = sorted(rows, key=SORT_KEYS["-created_at"][0], reverse=True)[:5]
    assert [item["id"] for item in first["items"]] == [str(p.id) for p in newest]
    assert first["next_cursor"] is not None


def test_an_exact_last_page_has_no_next_cursor(identity: Identity) -> None:
    acme = identity.tenant("acme")
    seed_projects(identity, acme, [organization(identity, acme, "eng")], 4)
    pages = walk(identity, acme.owner, 2)
    assert [len(page) for page in pages] == [2, 2]


def test_filters_by_organization_and_by_part_of_the_name(identity: Identity) -> None:
    acme = identity.tenant("acme")
    eng, ops = organization(identity, acme, "eng"), organization(identity, acme, "ops")
    rows = seed_projects(identity, acme, [eng, ops], 30)
    by_name = sorted(rows, key=SORT_KEYS["name"][0])
    eng_ids = [str(p.id) for p in by_name if str(p.organization_id) == eng]
    pages = walk(identity, acme.owner, 4, organization_id=eng, sort="name")
    assert [item["id"] for page in pages for item in page] == eng_ids
    found = walk(identity, acme.owner, 50, q="JECT-00")
    assert sorted(item["name"] for page in found for item in page) == sorted(
        p.name for p in rows if p.name.startswith("project-00")
    )
    both = walk(identity, acme.owner, 50, q="ject-001", organization_id=ops)
    assert [(i["name"], i["organization_id"]) for page in both for i in page] == [("project-001", ops)]
    # LIKE's wildcards are matched literally.
    assert walk(identity, acme.owner, 50, q="%") == [[]]
    assert walk(identity, acme.owner, 50, organization_id=str(uuid.uuid4())) == [[]]


def forge(document: dict[str, Any]) -> str:
    """A cursor we never issued, built the way ours are."""
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


def test_cursors_are_checked(identity: Identity) -> None:
    acme = identity.tenant("acme")
    seed_projects(identity, acme, [organization(identity, acme, "eng")], 3)
    first = identity.client.get(PROJECTS, params={"limit": 1, "sort": "name"}, headers=acme.owner.headers)
    cursor = first.json()["next_cursor"]

    def listing(**params: Any) -> httpx.Response:
        return identity.client.get(PROJECTS, params=params, headers=acme.owner.headers)

    assert listing(cursor=cursor, sort="name").status_code == 200
    assert error_code(listing(cursor=cursor), 422) == "INVALID_CURSOR"  # another sort: the default
    assert error_code(listing(cursor=cursor, sort="-name"), 422) == "INVALID_CURSOR"
    assert error_code(listing(cursor="not-a-cursor"), 422) == "INVALID_CURSOR"
    an_id = {"u": str(uuid.uuid4())}
    forged = {
        "naive time": forge(
            {"l": "projects", "s": "-created_at", "k": [{"t": "2026-01-01T00:00:00"}, an_id]}
        ),
        "a number for an id": forge(
            {"l": "projects", "s": "-created_at", "k": [{"t": "2026-01-01T00:00:00+00:00"}, 7]}
        ),
        "not a list": forge({"l": "projects", "s": "-created_at", "k": 7}),
        "a name for a time": forge({"l": "projects", "s": "-created_at", "k": ["x", an_id]}),
        "one part": forge({"l": "projects", "s": "-created_at", "k": [{"t": "2026-01-01T00:00:00+00:00"}]}),
        "no id": forge({"l": "projects", "s": "name", "k": ["x", "y"]}),
    }
    for what, bad in forged.items():
        assert error_code(listing(cursor=bad), 422) == "INVALID_CURSOR", what
    assert error_code(listing(cursor=forged["no id"], sort="name"), 422) == "INVALID_CURSOR"


def test_list_parameters_are_validated(identity: Identity) -> None:
    acme = identity.tenant("acme")
    for params in (
        {"sort": "size"},
        {"limit": 0},
        {"limit": 201},
        {"organization_id": "no"},
        {"q": "x" * 101},
    ):
        response = identity.client.get(PROJECTS, params=params, headers=acme.owner.headers)
        assert error_code(response, 422) == "VALIDATION_FAILED", params
        assert response.json()["error"]["details"]["fields"], params


def test_refusals_carry_their_codes(identity: Identity) -> None:
    acme = identity.tenant("acme")
    eng, ops = organization(identity, acme, "eng"), organization(identity, acme, "ops")
    rocket = create(identity, acme.owner, eng, "Rocket")
    create(identity, acme.owner, ops, "Rocket")  # the same name in another organization is fine
    probe = create(identity, acme.owner, eng, "Probe")
    h = acme.owner.headers

    def post(body: dict[str, Any]) -> httpx.Response:
        return identity.client.post(PROJECTS, json=body, headers=h)

    duplicate = post({"organization_id": eng, "name": "Rocket"})
    assert error_code(duplicate, 409) == "PROJECT_EXISTS"
    assert duplicate.json()["error"]["details"] == {"organization_id": eng, "name": "Rocket"}
    missing = str(uuid.uuid4())
    unknown = post({"organization_id": missing, "name": "X"})
    assert error_code(unknown, 404) == "ORGANIZATION_NOT_FOUND"
    assert missing in unknown.json()["error"]["message"]
    assert error_code(post({"organization_id": eng, "name": "   "}), 422) == "NAME_REQUIRED"
    assert error_code(post({"organization_id": eng, "name": ""}), 422) == "VALIDATION_FAILED"
    assert error_code(post({"organization_id": eng}), 422) == "VALIDATION_FAILED"
    assert error_code(post({"organization_id": eng, "name": "Y", "owner": "me"}), 422) == "VALIDATION_FAILED"

    url = f"{PROJECTS}/{probe['id']}"
    assert error_code(identity.client.patch(url, json={"name": "Rocket"}, headers=h), 409) == "PROJECT_EXISTS"
    moved = identity.client.patch(f"{PROJECTS}/{rocket['id']}", json={"organization_id": ops}, headers=h)
    assert error_code(moved, 409) == "PROJECT_EXISTS"
    nowhere = identity.client.patch(url, json={"organization_id": missing}, headers=h)
    assert error_code(nowhere, 404) == "ORGANIZATION_NOT_FOUND"
    assert error_code(identity.client.patch(url, json={"name": " "}, headers=h), 422) == "NAME_REQUIRED"
    gone = f"{PROJECTS}/{uuid.uuid4()}"
    assert error_code(identity.client.get(gone, headers=h), 404) == "PROJECT_NOT_FOUND"
    assert error_code(identity.client.patch(gone, json={"name": "Z"}, headers=h), 404) == "PROJECT_NOT_FOUND"
    assert error_code(identity.client.delete(gone, headers=h), 404) == "PROJECT_NOT_FOUND"
    assert error_code(identity.client.get(f"{PROJECTS}/not-a-uuid", headers=h), 422) == "VALIDATION_FAILED"
    # Nothing was changed by the refusals.
    assert identity.client.get(url, headers=h).json() == probe


def test_a_viewer_reads_but_does_not_write(identity: Identity) -> None:
    acme = identity.tenant("acme")
    org = organization(identity, acme, "eng")
    project = create(identity, acme.owner, org, "Rocket")
    viewer = invite(identity, acme, "viewer@acme.test", "viewer")
    url = f"{PROJECTS}/{project['id']}"
    assert identity.client.get(url, headers=viewer.headers).json() == project
    assert identity.client.get(PROJECTS, headers=viewer.headers).json()["items"] == [project]
    refusals = [
        identity.client.post(PROJECTS, json={"organization_id": org, "name": "X"}, headers=viewer.headers),
        identity.client.patch(url, json={"name": "X"}, headers=viewer.headers),
        identity.client.delete(url, headers=viewer.headers),
    ]
    for refused in refusals:
        assert error_code(refused, 403) == "PERMISSION_DENIED"
        assert refused.json()["error"]["details"] == {"permission": "projects:write"}
    assert identity.client.get(url, headers=viewer.headers).json() == project
    # A member may write projects.
    member = invite(identity, acme, "member@acme.test", "member")
    assert create(identity, member, org, "Probe")["created_by"] == str(member.user_id)
    assert error_code(identity.client.get(PROJECTS), 401) == "UNAUTHENTICATED"


def test_another_tenant_sees_none_of_a_tenants_projects(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    acme_org = organization(identity, acme, "eng")
    project = create(identity, acme.owner, acme_org, "Rocket")
    globex_org = organization(identity, globex, "eng")
    own = create(identity, globex.owner, globex_org, "Rocket")
    h = globex.owner.headers
    url = f"{PROJECTS}/{project['id']}"
    assert error_code(identity.client.get(url, headers=h), 404) == "PROJECT_NOT_FOUND"
    assert (
        error_code(identity.client.patch(url, json={"name": "Mine"}, headers=h), 404) == "PROJECT_NOT_FOUND"
    )
    assert error_code(identity.client.delete(url, headers=h), 404) == "PROJECT_NOT_FOUND"
    # An organization of another tenant does not exist, for creating and for moving.
    into = identity.client.post(PROJECTS, json={"organization_id": acme_org, "name": "X"}, headers=h)
    assert error_code(into, 404) == "ORGANIZATION_NOT_FOUND"
    move = identity.client.patch(f"{PROJECTS}/{own['id']}", json={"organization_id": acme_org}, headers=h)
    assert error_code(move, 404) == "ORGANIZATION_NOT_FOUND"
    for params in ({}, {"organization_id": acme_org}, {"q": "Rocket"}, {"sort": "name"}):
        assert [item["id"] for page in walk(identity, globex.owner, 50, **params) for item in page] == (
            [] if "organization_id" in params else [own["id"]]
        )
    # Acme's project is as it was.
    assert identity.client.get(url, headers=acme.owner.headers).json() == project
    assert identity.client.get(PROJECTS, headers=acme.owner.headers).json()["items"] == [project]


def test_the_openapi_document_describes_the_list(identity: Identity) -> None:
    spec = identity.client.get("/openapi.json").json()
    listing = spec["paths"]["/api/v1/projects"]["get"]
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("Page_ProjectOut_")
    item = spec["components"]["schemas"]["ProjectOut"]["properties"]
    assert item["created_at"]["format"] == "date-time"
    names = {p["name"] for p in listing["parameters"]}
    assert {"limit", "cursor", "sort", "organization_id", "q"} <= names
    assert {"401", "403", "422", "429"} <= set(listing["responses"])
    assert {"404", "409"} <= set(spec["paths"]["/api/v1/projects"]["post"]["responses"])
