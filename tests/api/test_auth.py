"""Signing in and out over HTTP: tokens, refresh rotation and reuse, suspension, MFA."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
import pyotp
from sqlalchemy import select

from appliance.db import tenancy
from appliance.keys import signing_key
from appliance.models import AuditLog
from appliance.services.identity import tokens
from tests.identity import Identity, bearer


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


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
    child = identity.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )
    assert child.status_code == 401
    assert identity.client.get("/api/v1/auth/me", headers=bearer(new_access)).json()["error"]["code"] == (
        "TOKEN_REVOKED"
    )
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        reuse = session.scalars(select(AuditLog).where(AuditLog.action == "auth.refresh_reused")).all()
    assert len(reuse) == 1
    assert reuse[0].resource_id == str(acme.owner.user_id)
    assert "session_id" not in reused.json()["error"]["details"]


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_wrong_password_is_401_audited_and_names_no_secret(identity: Identity) -> None:
    acme = identity.tenant("acme")
    response = identity.login(acme.owner.email, "not-the-password-123", "acme")
    assert response.status_code == 401
    assert _code(response) == "INVALID_CREDENTIALS"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not-the-password" not in response.text
    unknown = identity.login("nobody@acme.test", "whatever-password-1", "acme")
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == response.json()["error"]["message"]  # no account oracle
    with identity.database.session_scope() as session:
        tenancy.set_platform(session)  # failed sign-ins are platform events: the tenant is not known yet
        failed = list(session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")))
    reasons = sorted(r.summary["reason"] for r in failed)
    assert reasons == ["unknown_user", "wrong_password"]
    assert all("not-the-password" not in str(r.summary) for r in failed)


def test_tampered_expired_and_foreign_tokens_are_401(identity: Identity) -> None:
    acme = identity.tenant("acme")
    header, payload, signature = acme.owner.token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    tampered = identity.client.get("/api/v1/auth/me", headers=bearer(f"{header}.{payload}.{flipped}"))
    assert tampered.status_code == 401
    assert _code(tampered) == "TOKEN_INVALID"

    key = signing_key(identity.settings)
    sec = identity.settings.security
    past = tokens.new_access_claims(
        subject=acme.owner.user_id,
        tenant_id=acme.id,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
        ttl=dt.timedelta(minutes=15),
        scopes=["projects:read"],
    )
    expired = tokens.issue_access_token(key, past, issuer=sec.token_issuer, audience=sec.token_audience)
    response = identity.client.get("/api/v1/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert _code(response) == "TOKEN_EXPIRED"

    other_key = tokens.issue_access_token(
        "x" * 64, past, issuer=sec.token_issuer, audience=sec.token_audience
    )
    assert _code(identity.client.get("/api/v1/auth/me", headers=bearer(other_key))) == "TOKEN_INVALID"
    none_header = base64url(b'{"alg":"none","typ":"at+jwt"}')
    none_alg = f"{none_header}.{payload}."
    assert identity.client.get("/api/v1/auth/me", headers=bearer(none_alg)).status_code == 401
    assert identity.client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert _code(identity.client.get("/api/v1/auth/me")) == "UNAUTHENTICATED"


def test_logout_revokes_the_access_and_refresh_tokens(identity: Identity) -> None:
    acme = identity.tenant("acme")
    assert identity.client.post("/api/v1/auth/logout", headers=acme.owner.headers).status_code == 204
    assert _code(identity.client.get("/api/v1/auth/me", headers=acme.owner.headers)) == "TOKEN_REVOKED"
    again = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": acme.owner.refresh_token})
    assert again.status_code == 401
    assert _code(again) == "TOKEN_REVOKED"


def test_a_suspended_tenant_is_403_until_resumed(identity: Identity) -> None:
    acme = identity.tenant("acme")
    operator = identity.operator.headers
    assert identity.client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=operator).status_code == 200
    refused = identity.client.get("/api/v1/auth/me", headers=acme.owner.headers)
    assert refused.status_code == 403
    assert _code(refused) == "TENANT_SUSPENDED"
    login = identity.login(acme.owner.email, acme.owner.password, "acme")
    assert login.status_code == 403
    assert _code(login) == "TENANT_SUSPENDED"
    refresh = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": acme.owner.refresh_token})
    assert _code(refresh) == "TENANT_SUSPENDED"
    assert identity.client.post(f"/api/v1/tenants/{acme.id}/resume", headers=operator).status_code == 200
    assert identity.client.get("/api/v1/auth/me", headers=acme.owner.headers).status_code == 200


def test_weak_passwords_are_refused_with_the_reason(identity: Identity) -> None:
    acme = identity.tenant("acme")
    response = identity.client.post(
        "/api/v1/auth/password",
        json={"current_password": acme.owner.password, "new_password": "password123"},
        headers=acme.owner.headers,
    )
    assert response.status_code == 422
    assert "password123" not in response.text or "common" in response.text.lower()
    assert identity.login(acme.owner.email, acme.owner.password, "acme").status_code == 200


def test_operators_do_not_reach_tenant_routes_and_tenants_not_operator_routes(identity: Identity) -> None:
    acme = identity.tenant("acme")
    assert (
        _code(identity.client.get("/api/v1/audit-logs", headers=identity.operator.headers)) == "TENANT_ROUTE"
    )
    assert _code(identity.client.get("/api/v1/tenants", headers=acme.owner.headers)) == "OPERATOR_REQUIRED"


def test_several_tenants_need_the_slug_and_others_are_refused(identity: Identity) -> None:
    acme = identity.tenant("acme")
    identity.tenant("globex", owner_email=acme.owner.email)
    ambiguous = identity.login(acme.owner.email, acme.owner.password)
    assert ambiguous.status_code == 422
    assert ambiguous.json()["error"]["details"]["tenants"] == ["acme", "globex"]
    assert identity.login(acme.owner.email, acme.owner.password, "globex").status_code == 200
    identity.tenant("initech")
    stranger = identity.login(acme.owner.email, acme.owner.password, "initech")
    assert stranger.status_code == 403
    assert _code(stranger) == "NOT_A_MEMBER"
    missing = identity.login(acme.owner.email, acme.owner.password, "no-such-tenant")
    assert missing.json()["error"]["message"].replace("no-such-tenant", "X") == stranger.json()["error"][
        "message"
    ].replace("initech", "X")


def test_two_factor_enrollment_sign_in_and_recovery(identity: Identity) -> None:
    acme = identity.tenant("acme")
    enroll = identity.client.post("/api/v1/auth/mfa/enroll", headers=acme.owner.headers)
    assert enroll.status_code == 200
    secret = enroll.json()["secret"]
    assert enroll.json()["provisioning_uri"].startswith("otpauth://totp/")
    wrong = identity.client.post(
        "/api/v1/auth/mfa/activate", json={"code": "000000"}, headers=acme.owner.headers
    )
    assert wrong.status_code == 422
    now = dt.datetime.now(dt.UTC)
    code = pyotp.TOTP(secret).at(now - dt.timedelta(seconds=30))
    activated = identity.client.post(
        "/api/v1/auth/mfa/activate", json={"code": code}, headers=acme.owner.headers
    )
    assert activated.status_code == 200, activated.text
    recovery = activated.json()["recovery_codes"]
    assert len(recovery) == 10

    needs = identity.login(acme.owner.email, acme.owner.password, "acme")
    assert needs.status_code == 401
    assert _code(needs) == "MFA_REQUIRED"
    replay = identity.login(acme.owner.email, acme.owner.password, "acme", mfa_code=code)
    assert _code(replay) == "MFA_CODE_USED"  # the activation code's step was used: no replay, and it says so
    assert "already used" in replay.json()["error"]["message"]
    fresh = pyotp.TOTP(secret).now()
    signed = identity.login(acme.owner.email, acme.owner.password, "acme", mfa_code=fresh)
    if signed.status_code != 200:  # the activation used the current step: wait for a fresh one
        signed = identity.login(
            acme.owner.email,
            acme.owner.password,
            "acme",
            mfa_code=pyotp.TOTP(secret).at(now + dt.timedelta(seconds=30)),
        )
    assert signed.status_code == 200, signed.text
    with_recovery = identity.login(acme.owner.email, acme.owner.password, "acme", mfa_code=recovery[0])
    assert with_recovery.status_code == 200
    spent = identity.login(acme.owner.email, acme.owner.password, "acme", mfa_code=recovery[0])
    assert _code(spent) == "MFA_CODE_USED"
    assert "recovery code was already used" in spent.json()["error"]["message"]
    wrong_code = identity.login(acme.owner.email, acme.owner.password, "acme", mfa_code="000000")
    assert _code(wrong_code) == "MFA_INVALID"
    status = identity.client.get("/api/v1/auth/mfa", headers=acme.owner.headers).json()
    assert status == {"enabled": True, "recovery_codes_left": 9}
    off = identity.client.post(
        "/api/v1/auth/mfa/disable", json={"code": recovery[1]}, headers=acme.owner.headers
    )
    assert off.status_code == 204
    assert identity.login(acme.owner.email, acme.owner.password, "acme").status_code == 200
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"mfa.enable", "mfa.disable", "auth.login"} <= actions
