"""/api/v1/invitations over HTTP on both databases: accepting with the token (a new account, an existing one),
listing, accepting and declining signed in, expiry, revocation, and sign-in to the person's other tenants."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pyotp
from sqlalchemy import select, update

from appliance.db import tenancy
from appliance.models import AuditLog, Invitation
from tests.identity import STRONG_PASSWORD, Identity, Member, TenantHandle, bearer

MINE = "/api/v1/invitations"


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def actions(identity: Identity, tenant: TenantHandle) -> list[tuple[str, dict[str, Any]]]:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        records = session.scalars(
            select(AuditLog).where(AuditLog.action.like("invitation.%")).order_by(AuditLog.seq)
        )
        return [(r.action, r.summary) for r in records]


def members(identity: Identity, tenant: TenantHandle) -> list[tuple[str, str, str]]:
    items = identity.client.get("/api/v1/members", headers=tenant.owner.headers).json()["items"]
    return [(m["email"], m["role"], m["status"]) for m in items]


def age(identity: Identity, tenant: TenantHandle, invitation_id: str, by: dt.timedelta) -> None:
    """Move an invitation ``by`` into the past, as if that much time had gone by since it was made."""
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, tenant.id)
        row = session.get(Invitation, uuid.UUID(invitation_id))
        assert row is not None
        session.execute(
            update(Invitation)
            .where(Invitation.id == row.id)
            .values(created_at=row.created_at - by, expires_at=row.expires_at - by)
        )


def test_a_new_address_accepts_with_the_token_and_a_password_it_chooses(identity: Identity) -> None:
    acme = identity.tenant("acme")
    invited = identity.invite(acme, "Ada@Example.test", "viewer")
    assert identity.login("ada@example.test", STRONG_PASSWORD).status_code == 401  # no account yet

    weak = identity.accept("ada@example.test", invited["invitation_token"], "password1")
    assert error(weak, 422)["code"] == "WEAK_PASSWORD"
    accepted = identity.accept(
        "ADA@example.test", invited["invitation_token"], STRONG_PASSWORD, display_name="Ada L."
    )
    assert accepted.status_code == 200, accepted.text
    joined = accepted.json()
    assert joined["tenant"]["slug"] == "acme"
    assert joined["role"] == "viewer"
    assert joined["email"] == "ada@example.test"
    assert joined["invitation_id"] == invited["id"]

    ada = identity.sign_in("ada@example.test", STRONG_PASSWORD)  # her one tenant: no slug needed
    me = identity.client.get("/api/v1/auth/me", headers=ada.headers).json()
    assert me["tenant"]["slug"] == "acme"
    assert me["user"]["display_name"] == "Ada L."
    assert me["user"]["must_change_password"] is False  # she chose it
    listed = identity.client.get("/api/v1/members", headers=acme.owner.headers).json()["items"]
    assert listed[1]["id"] == joined["membership_id"]
    assert (listed[1]["status"], listed[1]["display_name"], listed[1]["user_id"]) == (
        "active",
        "Ada L.",
        str(ada.user_id),
    )

    # The token worked once.
    assert error(identity.accept("ada@example.test", invited["invitation_token"]), 404)["code"] == (
        "INVITATION_NOT_FOUND"
    )
    assert [a for a, _ in actions(identity, acme)] == ["invitation.create", "invitation.accept"]
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, acme.id)
        created = session.scalars(select(AuditLog).where(AuditLog.action == "membership.create")).all()
    assert created[-1].resource_id == joined["membership_id"]
    assert created[-1].actor_user_id == ada.user_id
    assert created[-1].summary == {
        "email": "ada@example.test",
        "role": "viewer",
        "invitation_id": invited["id"],
    }


def test_an_existing_account_accepts_with_its_own_password_and_keeps_its_other_tenants(
    identity: Identity,
) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    eve = globex.owner
    invited = identity.invite(acme, eve.email, "member")

    # Until she answers, her sign-in is what it was: one tenant, no "which tenant?".
    alone = identity.login(eve.email, eve.password)
    assert alone.status_code == 200, alone.text
    assert alone.json()["tenant"]["slug"] == "globex"

    # The token alone is not enough: it takes her password (a wrong one counts as a failed sign-in).
    wrong = identity.accept(eve.email, invited["invitation_token"], "another-long-Passphrase-7")
    assert error(wrong, 401)["code"] == "INVALID_CREDENTIALS"
    other_address = identity.accept("someone@else.test", invited["invitation_token"])
    assert error(other_address, 404)["code"] == "INVITATION_NOT_FOUND"
    assert members(identity, acme)[1] == (eve.email, "member", "invited")

    accepted = identity.accept(eve.email, invited["invitation_token"], eve.password)
    assert accepted.status_code == 200, accepted.text
    assert members(identity, acme)[1] == (eve.email, "member", "active")
    # Now she belongs to two tenants: sign-in asks which, and both work.
    ambiguous = identity.login(eve.email, eve.password)
    assert error(ambiguous, 422)["details"]["tenants"] == ["acme", "globex"]
    for slug in ("acme", "globex"):
        assert identity.login(eve.email, eve.password, slug).status_code == 200
    # Her password and name are her own still.
    me = identity.client.get(
        "/api/v1/auth/me", headers=identity.sign_in(eve.email, eve.password, "acme").headers
    )
    assert me.json()["user"]["id"] == str(eve.user_id)


def test_signed_in_the_person_lists_accepts_and_declines(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    initech = identity.tenant("initech")
    eve = globex.owner
    to_acme = identity.invite(acme, eve.email, "admin")
    to_initech = identity.invite(initech, eve.email, "viewer")
    identity.invite(initech, "someone@else.test", "viewer")

    mine = identity.client.get(MINE, headers=eve.headers)
    assert mine.status_code == 200, mine.text
    listed = mine.json()
    assert [(i["id"], i["tenant"]["slug"], i["role"]) for i in listed["items"]] == [
        (to_acme["id"], "acme", "admin"),
        (to_initech["id"], "initech", "viewer"),
    ]
    assert listed["next_cursor"] is None
    first = identity.client.get(MINE, params={"limit": 1}, headers=eve.headers).json()
    rest = identity.client.get(
        MINE, params={"limit": 1, "cursor": first["next_cursor"]}, headers=eve.headers
    ).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [to_acme["id"], to_initech["id"]]
    # Nobody else sees them, nor answers them.
    assert identity.client.get(MINE, headers=acme.owner.headers).json()["items"] == []
    for verb in ("accept", "decline"):
        stolen = identity.client.post(f"{MINE}/{to_acme['id']}/{verb}", headers=initech.owner.headers)
        assert error(stolen, 404)["code"] == "INVITATION_NOT_FOUND"

    accepted = identity.client.post(f"{MINE}/{to_acme['id']}/accept", headers=eve.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tenant"]["slug"] == "acme"
    assert accepted.json()["role"] == "admin"
    declined = identity.client.post(f"{MINE}/{to_initech['id']}/decline", headers=eve.headers)
    assert declined.status_code == 204, declined.text
    assert identity.client.get(MINE, headers=eve.headers).json()["items"] == []
    again = identity.client.post(f"{MINE}/{to_initech['id']}/accept", headers=eve.headers)
    assert error(again, 404)["code"] == "INVITATION_NOT_FOUND"
    assert error(identity.accept(eve.email, to_initech["invitation_token"], eve.password), 404)["code"] == (
        "INVITATION_NOT_FOUND"
    )

    assert members(identity, acme)[1] == (eve.email, "admin", "active")
    assert members(identity, initech) == [
        ("owner@initech.test", "owner", "active"),
        ("someone@else.test", "viewer", "invited"),
    ]
    assert error(identity.login(eve.email, eve.password, "initech"), 403)["code"] == "NOT_A_MEMBER"
    assert [a for a, _ in actions(identity, initech)] == [
        "invitation.create",
        "invitation.create",
        "invitation.decline",
    ]
    assert [a for a, _ in actions(identity, acme)] == ["invitation.create", "invitation.accept"]
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, initech.id)
        record = session.scalars(select(AuditLog).where(AuditLog.action == "invitation.decline")).one()
    assert record.actor_user_id == eve.user_id
    assert record.resource_id == to_initech["id"]


def test_an_api_key_answers_no_invitation(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    invited = identity.invite(acme, globex.owner.email, "viewer")
    key = identity.client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["projects:read"]}, headers=globex.owner.headers
    )
    assert key.status_code == 201, key.text
    headers = {"X-API-Key": key.json()["key"]}
    assert error(identity.client.get(MINE, headers=headers), 403)["code"] == "USER_REQUIRED"
    accept = identity.client.post(f"{MINE}/{invited['id']}/accept", headers=headers)
    assert error(accept, 403)["code"] == "USER_REQUIRED"
    assert error(identity.client.get(MINE), 401)["code"] == "UNAUTHENTICATED"


def test_an_expired_invitation_is_refused_shown_expired_and_can_be_replaced(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    eve = globex.owner
    old = identity.invite(acme, eve.email, "member")
    new_address = identity.invite(acme, "ada@example.test", "viewer")
    ttl = dt.timedelta(seconds=identity.settings.security.invitation_ttl)
    assert ttl == dt.timedelta(days=7)
    expires = dt.datetime.fromisoformat(old["expires_at"]) - dt.datetime.fromisoformat(old["created_at"])
    assert expires == ttl
    for invited in (old, new_address):
        age(identity, acme, invited["id"], ttl + dt.timedelta(seconds=1))

    late = identity.accept(eve.email, old["invitation_token"], eve.password)
    assert error(late, 409)["code"] == "INVITATION_EXPIRED"
    assert error(identity.accept("ada@example.test", new_address["invitation_token"]), 409)["code"] == (
        "INVITATION_EXPIRED"
    )
    assert identity.client.get(MINE, headers=eve.headers).json()["items"] == []
    signed_in = identity.client.post(f"{MINE}/{old['id']}/accept", headers=eve.headers)
    assert error(signed_in, 409)["code"] == "INVITATION_EXPIRED"
    assert identity.login("ada@example.test", STRONG_PASSWORD).status_code == 401  # no account was made
    assert members(identity, acme) == [  # made (as if) eight days ago: before the owner joined
        (eve.email, "member", "expired"),
        ("ada@example.test", "viewer", "expired"),
        ("owner@acme.test", "owner", "active"),
    ]

    # Inviting the address again replaces the expired invitation; the new token works, the old does not.
    renewed = identity.invite(acme, eve.email, "member")
    assert members(identity, acme) == [
        ("ada@example.test", "viewer", "expired"),
        ("owner@acme.test", "owner", "active"),
        (eve.email, "member", "invited"),
    ]
    assert error(identity.accept(eve.email, old["invitation_token"], eve.password), 404)["code"] == (
        "INVITATION_NOT_FOUND"
    )
    assert identity.accept(eve.email, renewed["invitation_token"], eve.password).status_code == 200
    assert actions(identity, acme)[2][1]["replaces"] == old["id"]


def test_admins_revoke_an_invitation_and_its_token_stops_working(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    admin = identity.member(acme, "admin@acme.test", "admin")
    eve = globex.owner
    invited = identity.invite(acme, eve.email, "member")
    to_owner = identity.invite(acme, "boss@example.test", "owner")
    url = f"/api/v1/members/{invited['id']}"

    # Another tenant does not find it; an admin may not withdraw an offer stronger than their own.
    assert error(identity.client.delete(url, headers=globex.owner.headers), 404)["code"] == "MEMBER_NOT_FOUND"
    stronger = identity.client.delete(f"/api/v1/members/{to_owner['id']}", headers=admin.headers)
    assert error(stronger, 403)["code"] == "ROLE_TOO_STRONG"

    revoked = identity.client.delete(url, headers=admin.headers)
    assert revoked.status_code == 204, revoked.text
    assert error(identity.client.get(url, headers=acme.owner.headers), 404)["code"] == "MEMBER_NOT_FOUND"
    assert error(identity.client.delete(url, headers=admin.headers), 404)["code"] == "MEMBER_NOT_FOUND"
    assert identity.client.get(MINE, headers=eve.headers).json()["items"] == []
    assert error(identity.accept(eve.email, invited["invitation_token"], eve.password), 404)["code"] == (
        "INVITATION_NOT_FOUND"
    )
    assert error(identity.client.post(f"{MINE}/{invited['id']}/accept", headers=eve.headers), 404)[
        "code"
    ] == ("INVITATION_NOT_FOUND")
    assert [e for e, _, _ in members(identity, acme)] == [
        "owner@acme.test",
        "admin@acme.test",
        "boss@example.test",
    ]
    assert identity.login(eve.email, eve.password).status_code == 200  # untouched throughout
    revocations = [s for a, s in actions(identity, acme) if a == "invitation.revoke"]
    assert revocations == [{"email": eve.email, "role": "member"}]


def test_accepting_with_the_token_asks_for_the_second_factor_and_counts_failures(identity: Identity) -> None:
    acme = identity.tenant("acme")
    globex = identity.tenant("globex")
    eve: Member = globex.owner
    secret = identity.client.post("/api/v1/auth/mfa/enroll", headers=eve.headers).json()["secret"]
    code = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30))
    activated = identity.client.post("/api/v1/auth/mfa/activate", json={"code": code}, headers=eve.headers)
    assert activated.status_code == 200, activated.text
    recovery = activated.json()["recovery_codes"]
    invited = identity.invite(acme, eve.email, "member")

    needs = identity.accept(eve.email, invited["invitation_token"], eve.password)
    assert error(needs, 401)["code"] == "MFA_REQUIRED"
    bad = identity.accept(eve.email, invited["invitation_token"], eve.password, mfa_code="000000")
    assert error(bad, 401)["code"] == "MFA_INVALID"
    ok = identity.accept(eve.email, invited["invitation_token"], eve.password, mfa_code=recovery[0])
    assert ok.status_code == 200, ok.text

    # Wrong passwords there are failed sign-ins: enough of them and the account is throttled everywhere.
    second = identity.invite(globex, acme.owner.email, "viewer")
    limit = identity.settings.rate_limits.login_failures_per_account
    for _ in range(limit):
        wrong = identity.accept(acme.owner.email, second["invitation_token"], "not-her-Passphrase-99")
        assert wrong.status_code == 401
    throttled = identity.login(acme.owner.email, acme.owner.password, "acme")
    assert error(throttled, 429)["code"] == "LOGIN_THROTTLED"
    blocked = identity.accept(acme.owner.email, second["invitation_token"], acme.owner.password)
    assert error(blocked, 429)["code"] == "LOGIN_THROTTLED"


def test_the_invited_persons_tokens_and_other_tenants_are_untouched(identity: Identity) -> None:
    """Being invited changes nothing for the person until they answer: their tokens keep working, a token
    refresh keeps its tenant, and pending invitations never make sign-in ask which tenant."""
    acme = identity.tenant("acme")
    initech = identity.tenant("initech")
    globex = identity.tenant("globex")
    eve = globex.owner
    identity.invite(acme, eve.email, "owner")
    identity.invite(initech, eve.email, "viewer")
    assert identity.client.get("/api/v1/auth/me", headers=eve.headers).status_code == 200
    refreshed = identity.client.post("/api/v1/auth/refresh", json={"refresh_token": eve.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["tenant"]["slug"] == "globex"
    me = identity.client.get("/api/v1/auth/me", headers=bearer(refreshed.json()["access_token"])).json()
    assert "tenant:manage" in me["permissions"]
    signed = identity.login(eve.email, eve.password)
    assert signed.status_code == 200, signed.text
    assert signed.json()["tenant"]["slug"] == "globex"
    for slug in ("acme", "initech"):
        assert error(identity.login(eve.email, eve.password, slug), 403)["code"] == "NOT_A_MEMBER"
