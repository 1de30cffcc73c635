"""Tenant isolation end to end: every route of the OpenAPI document, called by another tenant's owner (who
holds every permission in their own tenant) with tenant A's ids, answers 404 (or 403 on operator routes),
never A's data, and changes nothing of A's. Runs on SQLite (the ORM filter) and on PostgreSQL connected as
a role without BYPASSRLS (row-level security under the ORM filter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.identity import Identity, TenantHandle

SECRET_NAME = "acme-secret-project-x1"


@dataclass
class Resources:
    ids: dict[str, str]
    """A's resource id by the path segment that names its kind (projects, organizations, ...)."""
    snapshot: dict[str, Any]


def _create(identity: Identity, tenant: TenantHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = identity.client.post(path, json=body, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _seed(identity: Identity, acme: TenantHandle) -> Resources:
    hook = _create(identity, acme, "/api/v1/webhooks/endpoints", {"url": "https://example.com/acme-hook"})
    org = _create(identity, acme, "/api/v1/organizations", {"name": "Acme R&D", "slug": "acme-rnd"})
    project = _create(identity, acme, "/api/v1/projects", {"organization_id": org["id"], "name": SECRET_NAME})
    role = _create(identity, acme, "/api/v1/roles", {"name": "acme-auditor", "permissions": ["audit:read"]})
    key = _create(identity, acme, "/api/v1/api-keys", {"name": "acme-ci", "scopes": ["projects:read"]})
    member = identity.member(acme, "dev@acme.test", "member")
    invited = identity.invite(acme, "new@acme.test", "viewer")
    app = _create(
        identity, acme, "/api/v1/apps", {"name": "acme-shop", "url": "https://example.com/acme-shop"}
    )
    sent = identity.client.get("/api/v1/webhooks/messages", headers=acme.owner.headers)
    assert sent.status_code == 200, sent.text
    queued = identity.client.get("/api/v1/jobs", headers=acme.owner.headers)  # the deliveries' jobs
    assert queued.status_code == 200, queued.text
    ids = {
        "jobs": queued.json()["items"][0]["id"],
        "apps": app["id"],
        "webhooks/endpoints": hook["id"],
        "webhooks/messages": sent.json()["items"][0]["id"],
        "organizations": org["id"],
        "projects": project["id"],
        "roles": role["id"],
        "api-keys": key["id"],
        "members": str(member.membership_id),
        "invitations": invited["id"],
        "tenants": str(acme.id),
        "operators": str(identity.operator.user_id),  # platform accounts: a tenant's owner gets 403
        "backups": "forge-20260101T000000000000Z-full.age",  # the platform's archives: 403 as well
    }
    return Resources(ids, _snapshot(identity, acme, ids))


def _snapshot(identity: Identity, acme: TenantHandle, ids: dict[str, str]) -> dict[str, Any]:
    state = {}
    for kind, resource_id in ids.items():
        if kind in ("tenants", "operators", "backups"):
            continue  # not the tenant's own resources
        # An invitation is seen by its tenant among the members (/invitations is its invitee's side).
        shown = "members" if kind == "invitations" else kind
        response = identity.client.get(f"/api/v1/{shown}/{resource_id}", headers=acme.owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        body.pop("last_used_at", None)
        state[kind] = body
    return state


#: A body that passes validation, so that the request reaches the lookup (and must fail there).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("patch", "members"): {"role": "viewer"},
    ("patch", "projects"): {"name": "stolen"},
    ("patch", "apps"): {"name": "stolen"},
    ("patch", "organizations"): {"name": "stolen"},
    ("patch", "roles"): {"permissions": ["projects:read"]},
    ("patch", "tenants"): {"name": "stolen"},
    ("patch", "webhooks/endpoints"): {"enabled": False},
    ("post", "webhooks/endpoints"): {"since": "2020-01-01T00:00:00Z"},
}


def _kind(path: str) -> str:
    """The path segment that names a resource's kind (two for the webhook routes' kinds)."""
    parts = path.split("/")
    if parts[3] == "platform":  # operators' routes over the same resources
        parts = parts[1:]
    return "/".join(parts[3:5]) if parts[3] == "webhooks" else parts[3]


def test_every_route_refuses_another_tenants_ids(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    seeded = _seed(identity, acme)
    doc = identity.client.get("/openapi.json").json()
    walked = 0
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1/") or "{" not in path:
            continue
        if path.startswith("/api/v1/heartbeats/"):
            continue  # public: the token in the path is the credential, and names its tenant itself
        kind = _kind(path)
        assert kind in seeded.ids, f"{path}: no resource of tenant A to try (add one to _seed)"
        concrete = re.sub(r"\{[^}]+\}", seeded.ids[kind], path)
        for method in operations:
            body = BODIES.get((method, kind))
            response = identity.client.request(
                method.upper(), concrete, json=body, headers=globex.owner.headers
            )
            walked += 1
            # Operator routes refuse a tenant's user outright.
            operator_route = kind in ("tenants", "operators") or path.startswith("/api/v1/platform/")
            expected = {403} if operator_route else {404}
            assert response.status_code in expected, (
                f"{method.upper()} {path}: {response.status_code} {response.text}"
            )
            assert SECRET_NAME not in response.text
            assert "acme-rnd" not in response.text
            assert "acme-auditor" not in response.text
            assert "acme-hook" not in response.text
            assert "acme-shop" not in response.text
    assert walked >= 15
    # Nothing of A's changed, and A still sees all of it.
    assert _snapshot(identity, acme, seeded.ids) == seeded.snapshot


def test_lists_and_filters_never_show_another_tenants_rows(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    seeded = _seed(identity, acme)
    doc = identity.client.get("/openapi.json").json()
    # The operator is no tenant's (it made both tenants: globex's audit log names it rightly).
    a_ids = set(seeded.ids.values()) - {str(acme.id), seeded.ids["operators"]}
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1/") or "{" in path or "get" not in operations:
            continue
        response = identity.client.get(path, headers=globex.owner.headers)
        if response.status_code in (403, 405):
            continue  # operator routes
        assert response.status_code == 200, f"GET {path}: {response.text}"
        text = response.text
        assert SECRET_NAME not in text, path
        assert not any(resource_id in text for resource_id in a_ids), f"GET {path} shows tenant A's ids"
    filtered = identity.client.get(
        "/api/v1/projects",
        params={"organization_id": seeded.ids["organizations"]},
        headers=globex.owner.headers,
    )
    assert filtered.status_code in (200, 404)
    assert SECRET_NAME not in filtered.text
    forged = identity.client.post(
        "/api/v1/projects",
        json={"organization_id": seeded.ids["organizations"], "name": "planted"},
        headers=globex.owner.headers,
    )
    assert forged.status_code == 404
