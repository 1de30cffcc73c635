"""An account that must change its password (a one-time password from `appliance admin create`, a new
tenant's owner, an invited member) is answered 403 PASSWORD_CHANGE_REQUIRED on every route but
/auth/password, /auth/me and /auth/logout until it has; then the same token works. API keys of such an
account are refused the same way, so that a key is no way around the change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import update

from appliance.api.errors import STATUS
from appliance.errors import PasswordChangeRequired
from appliance.models import User
from appliance.services.tenancy import operators
from tests.identity import STRONG_PASSWORD, Identity, Member, TenantHandle, bearer

#: What an account that must change its password may still call.
ALLOWED = {
    ("post", "/api/v1/auth/password"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/logout"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(client: httpx.Client) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation of the OpenAPI document: method, path template, operation."""
    doc = client.get("/openapi.json").json()
    for path, items in doc["paths"].items():
        for method, operation in items.items():
            if method in METHODS:
                yield method, path, operation


def needs_credential(operation: dict[str, Any]) -> bool:
    """Public routes (sign-in, refresh, a heartbeat, health) declare no security; /metrics declares it as
    optional ({}: its allowed networks, this test's loopback among them, need none)."""
    security = operation.get("security") or []
    return bool(security) and {} not in security


def call(
    client: httpx.Client, method: str, path: str, operation: dict[str, Any], headers: dict[str, str]
) -> Any:
    url = path
    while "{" in url:  # any path parameter: an id that exists nowhere (the refusal comes first)
        start = url.index("{")
        url = url[:start] + str(uuid.uuid4()) + url[url.index("}", start) + 1 :]
    body: dict[str, Any] | None = {} if "requestBody" in operation else None
    return client.request(method.upper(), url, headers=headers, json=body)


def walk(identity: Identity, headers: dict[str, str]) -> dict[str, tuple[int, str]]:
    """What each operation that needs a credential answered, but the allowed ones (logout would end the
    session)."""
    answers: dict[str, tuple[int, str]] = {}
    for method, path, operation in operations(identity.client):
        if not needs_credential(operation) or (method, path) in ALLOWED:
            continue
        response = call(identity.client, method, path, operation, headers)
        code = response.json().get("error", {}).get("code", "") if response.content else ""
        answers[f"{method.upper()} {path}"] = (response.status_code, code)
    return answers


def refused_everywhere(answers: dict[str, tuple[int, str]]) -> None:
    assert len(answers) > 60, sorted(answers)
    assert any(op.startswith("POST /api/v1/tenants") for op in answers)  # operator routes
    assert "POST /api/v1/projects" in answers  # tenant routes
    assert "POST /api/v1/auth/mfa/enroll" in answers  # one's own account, but not the password
    wrong = {op: answer for op, answer in answers.items() if answer != (403, "PASSWORD_CHANGE_REQUIRED")}
    assert wrong == {}


def flagged_operator(identity: Identity) -> tuple[Member, str]:
    email = f"operator-{uuid.uuid4().hex[:6]}@appliance.test"
    with identity.database.session_scope() as session:
        one_time = operators.create(session, email).one_time_password
    return identity.sign_in(email, one_time), one_time


def flagged_owner(identity: Identity, slug: str) -> tuple[TenantHandle, Member, str]:
    created = identity.client.post(
        "/api/v1/tenants",
        json={"slug": slug, "name": slug.title(), "plan": "free", "owner_email": f"owner@{slug}.test"},
        headers=identity.operator.headers,
    )
    assert created.status_code == 201, created.text
    one_time = created.json()["owner"]["one_time_password"]
    owner = identity.sign_in(f"owner@{slug}.test", one_time, slug)
    return TenantHandle(uuid.UUID(created.json()["id"]), slug, owner), owner, one_time


def allowed_answer(identity: Identity, member: Member) -> None:
    """/auth/me answers (and says why), /auth/password checks its body as usual."""
    me = identity.client.get("/api/v1/auth/me", headers=member.headers)
    assert me.status_code == 200, me.text
    assert me.json()["user"]["must_change_password"] is True
    empty = identity.client.post("/api/v1/auth/password", json={}, headers=member.headers)
    assert empty.status_code == 422, empty.text


def change(identity: Identity, member: Member, one_time: str) -> None:
    changed = identity.client.post(
        "/api/v1/auth/password",
        json={"current_password": one_time, "new_password": STRONG_PASSWORD},
        headers=member.headers,
    )
    assert changed.status_code == 204, changed.text


def test_every_route_but_the_password_change_refuses_a_flagged_operator(identity: Identity) -> None:
    operator, one_time = flagged_operator(identity)
    refused = identity.client.get("/api/v1/tenants", headers=operator.headers)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert "/api/v1/auth/password" in error["message"]
    assert error["details"] == {"change_at": "/api/v1/auth/password"}
    refused_everywhere(walk(identity, operator.headers))
    allowed_answer(identity, operator)

    change(identity, operator, one_time)
    # The same access token works from now on, in this process and the others (the account is asked).
    assert identity.client.get("/api/v1/tenants", headers=operator.headers).status_code == 200
    me = identity.client.get("/api/v1/auth/me", headers=operator.headers).json()
    assert me["user"]["must_change_password"] is False
    assert identity.client.post("/api/v1/auth/logout", headers=operator.headers).status_code == 204


def test_every_route_but_the_password_change_refuses_a_flagged_tenant_owner(identity: Identity) -> None:
    _, owner, one_time = flagged_owner(identity, "acme")
    refused_everywhere(walk(identity, owner.headers))
    allowed_answer(identity, owner)
    # Public routes still answer as they would to anyone.
    assert identity.client.get("/health/live", headers=owner.headers).status_code == 200
    assert identity.client.get("/metrics", headers=owner.headers).status_code == 200

    change(identity, owner, one_time)
    assert identity.client.get("/api/v1/projects", headers=owner.headers).status_code == 200
    made = identity.client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["projects:read"]}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    # A refreshed token is no longer flagged either.
    refreshed = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["must_change_password"] is False
    again = bearer(refreshed.json()["access_token"])
    assert identity.client.get("/api/v1/projects", headers=again).status_code == 200


def test_logout_is_allowed_to_a_flagged_account(identity: Identity) -> None:
    operator, _ = flagged_operator(identity)
    assert identity.client.post("/api/v1/auth/logout", headers=operator.headers).status_code == 204
    assert identity.client.get("/api/v1/auth/me", headers=operator.headers).status_code == 401


def test_the_keys_of_an_account_that_must_change_its_password_are_refused_until_it_has(
    identity: Identity,
) -> None:
    """An operator reset the owner's password (the flag is set again): the owner's keys stop until the owner
    has chosen a new password, and show no effective scopes meanwhile."""
    acme = identity.tenant("acme")
    key = identity.client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["projects:read"]}, headers=acme.owner.headers
    ).json()
    as_key = {"X-API-Key": key["key"]}
    assert identity.client.get("/api/v1/projects", headers=as_key).status_code == 200
    with identity.database.session_scope() as session:
        session.execute(update(User).where(User.id == acme.owner.user_id).values(must_change_password=True))

    refused = identity.client.get("/api/v1/projects", headers=as_key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert "creator" in refused.json()["error"]["message"]
    assert (
        identity.client.post("/api/v1/auth/password", json={}, headers=as_key).status_code == 422
    )  # NO_PASSWORD
    operator_view = identity.client.get(
        f"/api/v1/tenants/{acme.id}/api-keys", headers=identity.operator.headers
    )
    assert operator_view.status_code == 200, operator_view.text
    (shown,) = operator_view.json()["items"]
    assert shown["effective_scopes"] == []
    assert shown["revoked_at"] is None  # paused, not revoked

    flagged = identity.sign_in(acme.owner.email, acme.owner.password, "acme")
    assert identity.client.get("/api/v1/projects", headers=flagged.headers).status_code == 403
    change(identity, flagged, acme.owner.password)
    assert identity.client.get("/api/v1/projects", headers=as_key).status_code == 200


def test_the_openapi_document_tells_of_the_refusal(identity: Identity) -> None:
    assert STATUS[PasswordChangeRequired] == 403
    assert PasswordChangeRequired("x").code == "PASSWORD_CHANGE_REQUIRED"
    missing = []
    for method, path, operation in operations(identity.client):
        if not needs_credential(operation):
            continue
        forbidden = operation["responses"].get("403", {})
        says = "PASSWORD_CHANGE_REQUIRED" in forbidden.get("description", "")
        if says == ((method, path) in ALLOWED):
            missing.append(f"{method.upper()} {path}")
    assert missing == []
