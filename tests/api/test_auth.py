"""Signing in and out over HTTP: tokens, refresh rotation and reuse, suspension, MFA."""

from __future__ import annotations

from tests.identity import Identity, bearer


def test_operator_creates_a_tenant_whose_owner_signs_in(identity: Identity) -> None:
    acme = identity.tenant("acme")
    me = identity.client.get("/api/v1/auth/me", headers=acme.owner.headers).json()
    assert me["tenant"]["slug"] == "acme"
    assert "tenant:manage" in me["permissions"]
    assert me["user"]["email"] == "owner@acme.test"


def test_refresh_rotates_and_reuse_ends_the_session(identity: Identity) -> None:
    acme = identity.tenant("acme")
    first = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": acme.owner.refresh_token})
    assert first.status_code == 200, first.text
    new_access = first.json()["access_token"]
    assert identity.client.get("/api/v1/auth/me", headers=bearer(new_access)).status_code == 200
    reused = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": acme.owner.refresh_token})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "TOKEN_REUSED"
    # The whole family is gone: the rotated child and the access token issued with it no longer work.
    child = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": first.json()["refresh_token"]})
    assert child.status_code == 401
    assert identity.client.get("/api/v1/auth/me", headers=bearer(new_access)).json()["error"]["code"] == (
        "TOKEN_REVOKED"
    )
