"""/api/v1/tenants for operators: the list with each tenant's counts, computed for a whole page at once, on
SQLite and on PostgreSQL as the app role under row-level security."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.identity import Identity, TenantHandle


def _post(identity: Identity, tenant: TenantHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = identity.client.post(path, json=body, headers=tenant.owner.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _fill(
    identity: Identity, tenant: TenantHandle, *, members: int, orgs: int, projects: int, keys: int
) -> None:
    for n in range(members):
        identity.member(tenant, f"user{n}@{tenant.slug}.test", "member")
    org_ids = [
        _post(identity, tenant, "/api/v1/organizations", {"name": f"Org {n}", "slug": f"org-{n}"})["id"]
        for n in range(orgs)
    ]
    for n in range(projects):
        _post(identity, tenant, "/api/v1/projects", {"organization_id": org_ids[0], "name": f"p{n}"})
    for n in range(keys):
        _post(identity, tenant, "/api/v1/api-keys", {"name": f"k{n}", "scopes": ["projects:read"]})


def _counts(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {t["slug"]: t["counts"] for t in items}


def test_the_list_counts_each_tenants_contents(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    identity.tenant("initech")  # only its owner
    _fill(identity, acme, members=2, orgs=2, projects=3, keys=1)
    _fill(identity, globex, members=1, orgs=1, projects=1, keys=2)
    operator = identity.operator.headers

    listed = identity.client.get("/api/v1/tenants", headers=operator)
    assert listed.status_code == 200, listed.text
    expected = {
        "acme": {"users": 3, "organizations": 2, "projects": 3, "api_keys": 1},
        "globex": {"users": 2, "organizations": 1, "projects": 1, "api_keys": 2},
        "initech": {"users": 1, "organizations": 0, "projects": 0, "api_keys": 0},
    }
    assert _counts(listed.json()["items"]) == expected
    # The list and each tenant's own page agree.
    for item in listed.json()["items"]:
        detail = identity.client.get(f"/api/v1/tenants/{item['id']}", headers=operator).json()
        assert detail == item
    # Page by page (and filtered), each page counts its own tenants.
    seen: dict[str, dict[str, int]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = identity.client.get("/api/v1/tenants", params=params, headers=operator).json()
        seen |= _counts(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    only = identity.client.get("/api/v1/tenants", params={"q": "glob"}, headers=operator).json()
    assert _counts(only["items"]) == {"globex": expected["globex"]}


def test_a_revoked_api_key_no_longer_counts(identity: Identity) -> None:
    acme = identity.tenant("acme")
    kept = _post(identity, acme, "/api/v1/api-keys", {"name": "kept", "scopes": ["projects:read"]})
    gone = _post(identity, acme, "/api/v1/api-keys", {"name": "gone", "scopes": ["projects:read"]})
    revoked = identity.client.delete(f"/api/v1/api-keys/{gone['id']}", headers=acme.owner.headers)
    assert revoked.status_code == 204
    operator = identity.operator.headers
    listed = identity.client.get("/api/v1/tenants", headers=operator).json()
    assert _counts(listed["items"])["acme"]["api_keys"] == 1
    detail = identity.client.get(f"/api/v1/tenants/{acme.id}", headers=operator).json()
    assert detail["counts"]["api_keys"] == 1
    # Still listed to the tenant, as revoked.
    keys = identity.client.get("/api/v1/api-keys", headers=acme.owner.headers).json()["items"]
    assert {k["id"]: k["revoked_at"] is not None for k in keys} == {kept["id"]: False, gone["id"]: True}


def test_counts_take_one_statement_whatever_the_page_size(identity: Identity) -> None:
    for slug in ("acme", "globex", "initech", "umbrella"):
        _fill(identity, identity.tenant(slug), members=0, orgs=1, projects=1, keys=0)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lower())

    engine = identity.database.engine
    counting_by_size = {}
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for limit in (1, 4):
            statements.clear()
            page = identity.client.get(
                "/api/v1/tenants", params={"limit": limit}, headers=identity.operator.headers
            )
            assert page.status_code == 200
            assert len(page.json()["items"]) == limit
            counting_by_size[limit] = [s for s in statements if "count(" in s or "tenant_row_counts" in s]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # One statement whatever the page size: on PostgreSQL the owner's view (migration 0004), on SQLite a
    # UNION ALL of one grouped query per table; both group per tenant.
    assert [len(c) for c in counting_by_size.values()] == [1, 1], counting_by_size
    if identity.database.backend == "sqlite":
        assert all(s.count("group by") == 4 for c in counting_by_size.values() for s in c)


def test_suspended_and_deleted_tenants_keep_their_counts(identity: Identity) -> None:
    acme = identity.tenant("acme")
    _fill(identity, acme, members=1, orgs=1, projects=2, keys=1)
    operator = identity.operator.headers
    assert identity.client.delete(f"/api/v1/tenants/{acme.id}", headers=operator).status_code == 204
    listed = identity.client.get("/api/v1/tenants", params={"status": "deleted"}, headers=operator).json()
    assert _counts(listed["items"]) == {
        "acme": {"users": 2, "organizations": 1, "projects": 2, "api_keys": 1}
    }
    # Its deletion times read the same in the list as on its own page.
    [item] = listed["items"]
    assert item["deleted_at"] is not None
    assert item["purge_after"] is not None
    assert identity.client.get(f"/api/v1/tenants/{acme.id}", headers=operator).json() == item
