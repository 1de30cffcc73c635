"""Full and read-only platform operators over HTTP: what each may read and change, and how a client tells
them apart (the permissions at sign-in and in /auth/me)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from appliance.services import platform_permissions
from tests.identity import Identity

READS = ["platform:audit", "platform_jobs:read", "rate_limits:read", "tenants:read"]
EVERYTHING = [
    "platform:audit",
    "platform_jobs:manage",
    "platform_jobs:read",
    "rate_limits:manage",
    "rate_limits:read",
    "tenants:manage",
    "tenants:read",
]


def _refused(response: httpx.Response, permission: str) -> None:
    assert response.status_code == 403, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "PERMISSION_DENIED"
    assert permission in error["message"]
    assert error["details"] == {"permission": permission}


def test_the_permission_table_matches_what_clients_are_told() -> None:
    assert sorted(platform_permissions.READ) == READS
    assert sorted(platform_permissions.ALL) == EVERYTHING


def test_sign_in_and_me_list_the_operators_platform_permissions(identity: Identity) -> None:
    full = identity.login(identity.operator.email, identity.operator.password)
    assert full.json()["permissions"] == EVERYTHING
    watcher = identity.new_operator(read_only=True)
    signed = identity.login(watcher.email, watcher.password)
    assert signed.status_code == 200, signed.text
    assert signed.json()["permissions"] == READS
    assert signed.json()["tenant"] is None
    me = identity.client.get("/api/v1/auth/me", headers=watcher.headers).json()
    assert me["operator"] is True
    assert me["permissions"] == READS
    assert me["user"]["operator_read_only"] is True
    full_me = identity.client.get("/api/v1/auth/me", headers=identity.operator.headers).json()
    assert full_me["permissions"] == EVERYTHING
    assert full_me["user"]["operator_read_only"] is False
    # A refreshed session stays read-only.
    again = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": watcher.refresh_token})
    assert again.json()["permissions"] == READS
    refreshed = {"Authorization": f"Bearer {again.json()['access_token']}"}
    _refused(
        identity.client.post(f"/api/v1/tenants/{uuid.uuid4()}/suspend", headers=refreshed), "tenants:manage"
    )


def test_a_read_only_operator_reads_but_changes_nothing(identity: Identity) -> None:
    acme = identity.tenant("acme")
    watcher = identity.new_operator(read_only=True).headers
    client = identity.client

    listed = client.get("/api/v1/tenants", headers=watcher)
    assert listed.status_code == 200, listed.text
    assert [t["slug"] for t in listed.json()["items"]] == ["acme"]
    one = client.get(f"/api/v1/tenants/{acme.id}", headers=watcher)
    assert one.status_code == 200
    assert one.json()["counts"]["users"] == 1
    audit = client.get("/api/v1/audit-logs/platform", headers=watcher)
    assert audit.status_code == 200, audit.text
    assert "tenant.create" in {r["action"] for r in audit.json()["items"]}
    assert client.get("/api/v1/rate-limits", headers=watcher).status_code == 200
    for view in ("members", "organizations", "api-keys"):
        assert client.get(f"/api/v1/tenants/{acme.id}/{view}", headers=watcher).status_code == 200

    _refused(
        client.post("/api/v1/tenants", json={"slug": "globex", "name": "Globex"}, headers=watcher),
        "tenants:manage",
    )
    _refused(
        client.patch(f"/api/v1/tenants/{acme.id}", json={"name": "X"}, headers=watcher), "tenants:manage"
    )
    _refused(client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=watcher), "tenants:manage")
    _refused(client.post(f"/api/v1/tenants/{acme.id}/resume", headers=watcher), "tenants:manage")
    _refused(client.delete(f"/api/v1/tenants/{acme.id}", headers=watcher), "tenants:manage")
    _refused(client.patch("/api/v1/rate-limits", json={"per_ip": 5}, headers=watcher), "rate_limits:manage")
    _refused(client.delete("/api/v1/rate-limits", headers=watcher), "rate_limits:manage")

    # Nothing changed: acme is still active under its name, and globex was never made.
    after = client.get("/api/v1/tenants", headers=identity.operator.headers).json()["items"]
    assert [(t["slug"], t["name"], t["status"]) for t in after] == [("acme", "Acme", "active")]
    # The full operator does what the read-only one could not.
    suspended = client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=identity.operator.headers)
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"


def test_a_read_only_operator_is_still_kept_off_tenant_routes(identity: Identity) -> None:
    watcher = identity.new_operator(read_only=True).headers
    response = identity.client.get("/api/v1/projects", headers=watcher)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "TENANT_ROUTE"
