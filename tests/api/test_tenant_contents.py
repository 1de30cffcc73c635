"""An operator's view inside one tenant: /api/v1/tenants/{id}/members, /organizations and /api-keys show
what the tenant's owner sees on its own routes, page by page, never a key's secret, and nothing of another
tenant; on SQLite and on PostgreSQL as the app role under row-level security."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.identity import Identity, TenantHandle

VIEWS = ("members", "organizations", "api-keys")


def _post(identity: Identity, tenant: TenantHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = identity.client.post(path, json=body, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _all(identity: Identity, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, one item per page (so that the cursors are exercised)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 1, **params} | ({"cursor": cursor} if cursor else {})
        response = identity.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def test_the_operator_sees_what_the_owner_sees(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    identity.member(acme, "dev@acme.test", "member")
    identity.member(acme, "ops@acme.test", "viewer")
    identity.member(globex, "spy@globex.test", "member")
    rnd = _post(identity, acme, "/api/v1/organizations", {"name": "R&D", "slug": "rnd"})
    _post(identity, acme, "/api/v1/organizations", {"name": "Lab", "slug": "lab", "parent_id": rnd["id"]})
    _post(identity, globex, "/api/v1/organizations", {"name": "Globex Org", "slug": "globex-org"})
    secrets = [
        _post(identity, acme, "/api/v1/api-keys", {"name": f"ci-{n}", "scopes": ["projects:read"]})["key"]
        for n in range(2)
    ]
    _post(identity, globex, "/api/v1/api-keys", {"name": "globex-ci", "scopes": ["projects:read"]})
    operator = identity.operator.headers

    for view in VIEWS:
        own = _all(identity, f"/api/v1/{view}", acme.owner.headers)
        seen = _all(identity, f"/api/v1/tenants/{acme.id}/{view}", operator)
        assert seen == own, view
        assert own
    members = _all(identity, f"/api/v1/tenants/{acme.id}/members", operator)
    assert [m["email"] for m in members] == ["owner@acme.test", "dev@acme.test", "ops@acme.test"]
    orgs = _all(identity, f"/api/v1/tenants/{acme.id}/organizations", operator)
    assert [o["slug"] for o in orgs] == ["lab", "rnd"]
    keys = identity.client.get(f"/api/v1/tenants/{acme.id}/api-keys", headers=operator)
    assert [k["name"] for k in keys.json()["items"]] == ["ci-0", "ci-1"]
    assert not any(secret in keys.text for secret in secrets)
    assert {"key", "key_hash"}.isdisjoint(keys.json()["items"][0])
    # The filters of the tenant's own routes work here too.
    viewers = _all(identity, f"/api/v1/tenants/{acme.id}/members", operator, role="viewer")
    assert [m["email"] for m in viewers] == ["ops@acme.test"]
    roots = _all(identity, f"/api/v1/tenants/{acme.id}/organizations", operator, root=True)
    assert [o["slug"] for o in roots] == ["rnd"]
    # Another tenant's view shows its own rows only.
    globex_members = _all(identity, f"/api/v1/tenants/{globex.id}/members", operator)
    assert [m["email"] for m in globex_members] == ["owner@globex.test", "spy@globex.test"]
    globex_keys = identity.client.get(f"/api/v1/tenants/{globex.id}/api-keys", headers=operator).text
    assert "ci-0" not in globex_keys


def test_revoked_keys_are_listed_with_revoked_at(identity: Identity) -> None:
    acme = identity.tenant("acme")
    key = _post(identity, acme, "/api/v1/api-keys", {"name": "old", "scopes": ["projects:read"]})
    assert (
        identity.client.delete(f"/api/v1/api-keys/{key['id']}", headers=acme.owner.headers).status_code == 204
    )
    path = f"/api/v1/tenants/{acme.id}/api-keys"
    revoked = _all(identity, path, identity.operator.headers, revoked=True)
    assert [k["name"] for k in revoked] == ["old"]
    assert revoked[0]["revoked_at"] is not None
    assert _all(identity, path, identity.operator.headers, revoked=False) == []


@pytest.mark.parametrize("view", VIEWS)
def test_an_unknown_tenant_is_404_and_tenant_users_are_refused(identity: Identity, view: str) -> None:
    acme = identity.tenant("acme")
    missing = uuid.uuid4()
    response = identity.client.get(f"/api/v1/tenants/{missing}/{view}", headers=identity.operator.headers)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "TENANT_NOT_FOUND"
    assert str(missing) in error["message"]
    refused = identity.client.get(f"/api/v1/tenants/{acme.id}/{view}", headers=acme.owner.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "OPERATOR_REQUIRED"
    bad_cursor = identity.client.get(
        f"/api/v1/tenants/{acme.id}/{view}", params={"cursor": "nonsense"}, headers=identity.operator.headers
    )
    assert bad_cursor.status_code == 422, bad_cursor.text
