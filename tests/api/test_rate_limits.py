"""Rate limits over HTTP: X-RateLimit-* headers, 429 with Retry-After per tenant tier, per IP on public
routes, operators changing limits at run time; on the in-process limiter and on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.identity import Identity, identity_api
from tests.servers import RedisServer


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Identity]:
    section: dict[str, object] = {"enabled": True, "free": 5, "team": 8, "per_ip": 1000}
    if request.param == "redis":
        section["url"] = request.getfixturevalue("redis_url")
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", rate_limits=section) as ident:
        yield ident


def test_headers_count_down_and_429_names_the_limit(limited: Identity) -> None:
    acme = limited.tenant("acme")  # free: 5 per minute for the tenant
    seen = []
    for _ in range(7):
        response = limited.client.get("/api/v1/auth/me", headers=acme.owner.headers)
        seen.append(response)
    # The owner's own sign-in (set_password's two logins and the /me of sign_in) spent some already.
    allowed = [r for r in seen if r.status_code == 200]
    refused = [r for r in seen if r.status_code == 429]
    assert allowed
    assert refused
    assert allowed[0].headers["x-ratelimit-limit"] == "5"
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in allowed]
    assert remaining == sorted(remaining, reverse=True)
    denied = refused[0]
    assert denied.json()["error"]["code"] == "RATE_LIMITED"
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.headers["x-ratelimit-remaining"] == "0"


def test_operators_change_limits_without_a_restart(limited: Identity) -> None:
    acme = limited.tenant("acme")
    operator = limited.operator.headers
    current = limited.client.get("/api/v1/rate-limits", headers=operator)
    assert current.status_code == 200
    assert current.json()["tiers"]["free"] == 5
    raised = limited.client.patch("/api/v1/rate-limits", json={"tiers": {"free": 1000}}, headers=operator)
    assert raised.status_code == 200, raised.text
    assert raised.json()["overrides"] == {"tiers": {"free": 1000}}
    for _ in range(10):
        response = limited.client.get("/api/v1/auth/me", headers=acme.owner.headers)
        assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "1000"

    bad = limited.client.patch("/api/v1/rate-limits", json={"tiers": {"gold": 5}}, headers=operator)
    assert bad.status_code == 422
    assert "gold" in bad.json()["error"]["message"]
    assert limited.client.get("/api/v1/rate-limits", headers=operator).json()["tiers"]["free"] == 1000

    assert limited.client.delete("/api/v1/rate-limits", headers=operator).status_code == 204
    assert limited.client.get("/api/v1/rate-limits", headers=operator).json()["tiers"]["free"] == 5


def test_tenant_users_cannot_change_limits(limited: Identity) -> None:
    acme = limited.tenant("acme", plan="team")
    response = limited.client.patch("/api/v1/rate-limits", json={"per_ip": 1}, headers=acme.owner.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "OPERATOR_REQUIRED"


def test_failed_logins_are_throttled_per_account(tmp_path: Path) -> None:
    section = {"enabled": True, "login_failures_per_account": 3, "per_ip": 1000}
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", rate_limits=section) as ident:
        acme = ident.tenant("acme")
        codes = [ident.login(acme.owner.email, "wrong-password-xx", "acme").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        # Even the right password is refused while throttled, and says when to come back.
        blocked = ident.login(acme.owner.email, acme.owner.password, "acme")
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "LOGIN_THROTTLED"
        assert int(blocked.headers["retry-after"]) >= 1
        # Another account from the same address is not affected.
        assert ident.login(ident.operator.email, ident.operator.password).status_code == 200


def test_the_project_list_is_limited_like_every_route(limited: Identity) -> None:
    """The list checks its limits in its own worker thread (appliance.api.auth.enforce_limits)."""
    acme = limited.tenant("acme")
    responses = [limited.client.get("/api/v1/projects", headers=acme.owner.headers) for _ in range(6)]
    assert {r.status_code for r in responses} == {200, 429}
    assert all("x-ratelimit-limit" in r.headers for r in responses)
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1


def test_a_limiter_redis_that_is_down_lets_requests_through(
    tmp_path: Path, own_redis_server: RedisServer
) -> None:
    section = {"enabled": True, "url": own_redis_server.url, "free": 1000}
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", rate_limits=section) as ident:
        acme = ident.tenant("acme")
        own_redis_server.stop()
        for path in ("/api/v1/auth/me", "/api/v1/projects"):
            response = ident.client.get(path, headers=acme.owner.headers)
            assert response.status_code == 200, response.text  # fail open, with a warning in the log
            assert "x-ratelimit-limit" not in response.headers
