"""Full and read-only platform operators over HTTP: what each may read and change, and how a client tells
them apart (the permissions at sign-in and in /auth/me); operators managing each other (/api/v1/operators):
listed, created, disabled, enabled, removed, their password and two-factor reset, each change audited."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyotp
from sqlalchemy import select, update

from appliance.models import User
from appliance.services.access import platform_permissions
from tests.identity import Identity, Member

READS = [
    "backups:read",
    "operators:read",
    "platform:audit",
    "platform:health",
    "platform_apps:read",
    "platform_jobs:read",
    "platform_webhooks:read",
    "rate_limits:read",
    "tenants:read",
]
EVERYTHING = [
    "backups:manage",
    "backups:read",
    "operators:manage",
    "operators:read",
    "platform:audit",
    "platform:health",
    "platform_apps:read",
    "platform_jobs:manage",
    "platform_jobs:read",
    "platform_webhooks:manage",
    "platform_webhooks:read",
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


# --------------------------------------------------------------------------- managing operators


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _operators(identity: Identity) -> dict[str, dict[str, Any]]:
    listed = identity.client.get("/api/v1/operators", headers=identity.operator.headers)
    assert listed.status_code == 200, listed.text
    return {o["email"]: o for o in listed.json()["items"]}


def _trail(identity: Identity, action: str) -> list[dict[str, Any]]:
    """The platform's audit records of ``action``, oldest first."""
    records = identity.client.get(
        "/api/v1/audit-logs/platform",
        params={"action": action, "sort": "created_at", "limit": 200},
        headers=identity.operator.headers,
    )
    assert records.status_code == 200, records.text
    items: list[dict[str, Any]] = records.json()["items"]
    return items


def _enable_mfa(identity: Identity, member: Member) -> str:
    """Turn two-factor on for ``member`` through /auth/mfa; returns the secret."""
    enroll = identity.client.post("/api/v1/auth/mfa/enroll", headers=member.headers)
    assert enroll.status_code == 200, enroll.text
    secret: str = enroll.json()["secret"]
    code = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30))
    activated = identity.client.post("/api/v1/auth/mfa/activate", json={"code": code}, headers=member.headers)
    assert activated.status_code == 200, activated.text
    return secret


def test_operators_are_listed_with_permissions_mfa_state_and_sign_ins(identity: Identity) -> None:
    admin = identity.operator
    watcher = identity.new_operator(read_only=True)
    listed = identity.client.get("/api/v1/operators", headers=watcher.headers)  # reading is a read right
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [o["email"] for o in items] == [admin.email, watcher.email]  # oldest first
    first, second = items
    assert first["id"] == str(admin.user_id)
    assert (first["read_only"], first["permissions"], first["mfa_enabled"], first["disabled"]) == (
        False,
        EVERYTHING,
        False,
        False,
    )
    assert (second["read_only"], second["permissions"]) == (True, READS)
    assert first["must_change_password"] is False
    assert first["last_login_at"] is not None
    assert dt.datetime.fromisoformat(first["created_at"]) <= dt.datetime.fromisoformat(first["last_login_at"])

    page = identity.client.get("/api/v1/operators", params={"limit": 1}, headers=admin.headers).json()
    assert [o["email"] for o in page["items"]] == [admin.email]
    rest = identity.client.get(
        "/api/v1/operators", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin.headers
    ).json()
    assert [o["email"] for o in rest["items"]] == [watcher.email]
    assert rest["next_cursor"] is None
    one = identity.client.get(f"/api/v1/operators/{watcher.user_id}", headers=admin.headers)
    assert one.json() == second


def test_an_operator_creates_another_who_signs_in_with_the_one_time_password(identity: Identity) -> None:
    admin = identity.operator
    created = identity.client.post(
        "/api/v1/operators",
        json={"email": "New.Ops@Example.com", "display_name": "New Ops", "read_only": True},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/api/v1/operators/{body['id']}"
    assert (body["email"], body["display_name"], body["read_only"]) == (
        "new.ops@example.com",
        "New Ops",
        True,
    )
    assert body["must_change_password"] is True
    signed = identity.login("new.ops@example.com", body["one_time_password"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["permissions"] == READS

    taken = identity.client.post(
        "/api/v1/operators", json={"email": "new.ops@example.com"}, headers=admin.headers
    )
    assert "new.ops@example.com" in _error(taken, 409, "EMAIL_TAKEN")["message"]
    bad = identity.client.post("/api/v1/operators", json={"email": "not-an-email"}, headers=admin.headers)
    assert "'not-an-email'" in bad.json()["error"]["message"]
    assert bad.status_code == 422
    assert sorted(_operators(identity)) == sorted([admin.email, "new.ops@example.com"])
    (record,) = _trail(identity, "operator.create")[-1:]
    assert record["actor_user_id"] == str(admin.user_id)
    assert record["resource_id"] == body["id"]
    assert record["summary"] == {"email": "new.ops@example.com", "read_only": True}


def test_a_read_only_operator_manages_no_operator(identity: Identity) -> None:
    watcher = identity.new_operator(read_only=True)
    other = identity.new_operator()
    before = _operators(identity)
    client = identity.client
    for response in (
        client.post("/api/v1/operators", json={"email": "x@example.com"}, headers=watcher.headers),
        client.post(f"/api/v1/operators/{other.user_id}/disable", headers=watcher.headers),
        client.post(f"/api/v1/operators/{other.user_id}/enable", headers=watcher.headers),
        client.post(f"/api/v1/operators/{other.user_id}/reset-password", headers=watcher.headers),
        client.post(f"/api/v1/operators/{other.user_id}/reset-mfa", headers=watcher.headers),
        client.delete(f"/api/v1/operators/{other.user_id}", headers=watcher.headers),
    ):
        _refused(response, "operators:manage")
    assert _operators(identity) == before
    # A tenant's user is no operator at all.
    acme = identity.tenant("acme")
    refused = client.get("/api/v1/operators", headers=acme.owner.headers)
    assert _error(refused, 403, "OPERATOR_REQUIRED")["details"] == {"permission": "operators:read"}


def test_a_disabled_operator_is_refused_at_once_until_enabled(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    client = identity.client
    assert client.get("/api/v1/auth/me", headers=other.headers).status_code == 200

    disabled = client.post(f"/api/v1/operators/{other.user_id}/disable", headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    _error(client.get("/api/v1/auth/me", headers=other.headers), 401, "TOKEN_REVOKED")
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})
    assert refreshed.status_code == 401, refreshed.text
    _error(identity.login(other.email, other.password), 401, "ACCOUNT_DISABLED")
    again = client.post(f"/api/v1/operators/{other.user_id}/disable", headers=admin.headers)
    assert other.email in _error(again, 409, "OPERATOR_DISABLED")["message"]
    assert _operators(identity)[other.email]["disabled"] is True

    enabled = client.post(f"/api/v1/operators/{other.user_id}/enable", headers=admin.headers)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled"] is False
    assert identity.login(other.email, other.password).status_code == 200
    _error(
        client.post(f"/api/v1/operators/{other.user_id}/enable", headers=admin.headers),
        409,
        "OPERATOR_NOT_DISABLED",
    )
    trail = _trail(identity, "operator.*")
    assert [(r["action"], r["actor_user_id"], r["resource_id"]) for r in trail[-2:]] == [
        ("operator.disable", str(admin.user_id), str(other.user_id)),
        ("operator.enable", str(admin.user_id), str(other.user_id)),
    ]
    assert trail[-2]["summary"]["email"] == other.email
    assert trail[-2]["summary"]["sessions_ended"] >= 1


def test_the_last_active_full_operator_is_neither_disabled_nor_removed(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    watcher = identity.new_operator(read_only=True)
    # The admin was disabled a moment ago from the command line, and this API process has not yet seen
    # its sessions end: `other` is now the only active operator holding every platform permission (the
    # read-only one does not count).
    with identity.database.session_scope() as session:
        session.execute(update(User).where(User.id == admin.user_id).values(is_active=False))
    client = identity.client
    for response in (
        client.post(f"/api/v1/operators/{other.user_id}/disable", headers=admin.headers),
        client.delete(f"/api/v1/operators/{other.user_id}", headers=admin.headers),
        client.patch(f"/api/v1/operators/{other.user_id}", json={"read_only": True}, headers=admin.headers),
    ):
        error = _error(response, 409, "LAST_OPERATOR")
        assert other.email in error["message"]
        assert error["details"] == {"email": other.email}
    assert _operators(identity)[other.email]["read_only"] is False
    # A read-only operator may be made full, and may go.
    full = client.patch(
        f"/api/v1/operators/{watcher.user_id}", json={"read_only": False}, headers=admin.headers
    )
    assert full.status_code == 200, full.text
    assert full.json()["read_only"] is False
    gone = client.delete(f"/api/v1/operators/{watcher.user_id}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    me = client.get("/api/v1/auth/me", headers=other.headers)
    assert me.status_code == 200, me.text


def test_two_operators_disabling_each_other_at_once_leave_one_active(identity: Identity) -> None:
    first, second = identity.operator, identity.new_operator()

    def disable(actor: Member, target: Member) -> httpx.Response:
        return identity.client.post(f"/api/v1/operators/{target.user_id}/disable", headers=actor.headers)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(disable, [first, second], [second, first]))
    assert sorted(a.status_code for a in answers)[0] == 200
    loser = max(answers, key=lambda a: a.status_code)
    # Served one after the other, the loser's token was revoked; at the same time, it met the rule.
    assert (loser.status_code, loser.json()["error"]["code"]) in {
        (401, "TOKEN_REVOKED"),
        (409, "LAST_OPERATOR"),
    }
    with identity.database.session_scope(write=False) as session:
        active = session.scalars(select(User.email).where(User.is_operator, User.is_active)).all()
    assert len(active) == 1


def test_an_operator_does_not_act_on_their_own_account_here(identity: Identity) -> None:
    admin = identity.operator
    identity.new_operator()  # so that the admin is not the last one
    client = identity.client
    base = f"/api/v1/operators/{admin.user_id}"
    for response in (
        client.post(f"{base}/disable", headers=admin.headers),
        client.delete(base, headers=admin.headers),
        client.post(f"{base}/reset-password", headers=admin.headers),
        client.post(f"{base}/reset-mfa", headers=admin.headers),
        client.patch(base, json={"read_only": True}, headers=admin.headers),
        client.patch(base, json={"read_only": False}, headers=admin.headers),
    ):
        error = _error(response, 403, "OPERATOR_SELF")
        assert "your own operator account" in error["message"]
    assert client.get("/api/v1/auth/me", headers=admin.headers).status_code == 200
    assert identity.login(admin.email, admin.password).status_code == 200
    assert _operators(identity)[admin.email]["disabled"] is False
    assert _operators(identity)[admin.email]["read_only"] is False


def test_a_removed_operator_is_gone_and_the_audit_trail_still_names_them(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    client = identity.client
    made = client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=other.headers)
    assert made.status_code == 201, made.text

    removed = client.delete(f"/api/v1/operators/{other.user_id}", headers=admin.headers)
    assert removed.status_code == 204, removed.text
    _error(client.get("/api/v1/auth/me", headers=other.headers), 401, "TOKEN_REVOKED")
    # The same answer as for an address that has no account.
    _error(identity.login(other.email, other.password), 401, "INVALID_CREDENTIALS")
    assert other.email not in _operators(identity)
    _error(client.get(f"/api/v1/operators/{other.user_id}", headers=admin.headers), 404, "OPERATOR_NOT_FOUND")
    _error(
        client.delete(f"/api/v1/operators/{other.user_id}", headers=admin.headers), 404, "OPERATOR_NOT_FOUND"
    )

    (creation,) = _trail(identity, "tenant.create")
    assert creation["actor_user_id"] == str(other.user_id)
    with identity.database.session_scope(write=False) as session:
        actor = session.get(User, other.user_id)
        assert actor is not None
        assert actor.email == other.email  # the record still names someone
    (removal,) = _trail(identity, "operator.remove")
    assert removal["actor_user_id"] == str(admin.user_id)
    assert removal["summary"]["email"] == other.email

    # Added again, it is the same account (one identity per address), with a new one-time password.
    back = client.post("/api/v1/operators", json={"email": other.email}, headers=admin.headers)
    assert back.status_code == 201, back.text
    assert back.json()["id"] == str(other.user_id)
    assert identity.login(other.email, back.json()["one_time_password"]).status_code == 200


def test_an_operator_made_read_only_or_full_is_signed_out_at_once(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    client = identity.client
    url = f"/api/v1/operators/{other.user_id}"
    acme = identity.tenant("acme")

    made = client.patch(url, json={"read_only": True}, headers=admin.headers)
    assert made.status_code == 200, made.text
    assert (made.json()["read_only"], made.json()["permissions"]) == (True, READS)
    # The token that said "full" ends with the change, and so does its session.
    _error(client.get("/api/v1/auth/me", headers=other.headers), 401, "TOKEN_REVOKED")
    _error(client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=other.headers), 401, "TOKEN_REVOKED")
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})
    assert refreshed.status_code == 401, refreshed.text
    watcher = identity.sign_in(other.email, other.password)
    assert client.get("/api/v1/auth/me", headers=watcher.headers).json()["permissions"] == READS
    _refused(client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=watcher.headers), "tenants:manage")
    _refused(
        client.patch(f"/api/v1/operators/{admin.user_id}", json={"read_only": True}, headers=watcher.headers),
        "operators:manage",
    )
    # The value they have already: nothing changes, nothing ends.
    same = client.patch(url, json={"read_only": True}, headers=admin.headers)
    assert same.status_code == 200, same.text
    assert same.json()["read_only"] is True
    assert client.get("/api/v1/auth/me", headers=watcher.headers).status_code == 200

    full = client.patch(url, json={"read_only": False}, headers=admin.headers)
    assert (full.json()["read_only"], full.json()["permissions"]) == (False, EVERYTHING)
    _error(client.get("/api/v1/auth/me", headers=watcher.headers), 401, "TOKEN_REVOKED")
    again = identity.sign_in(other.email, other.password)
    suspended = client.post(f"/api/v1/tenants/{acme.id}/suspend", headers=again.headers)
    assert suspended.status_code == 200, suspended.text
    assert _operators(identity)[other.email]["read_only"] is False

    extra = client.patch(url, json={"read_only": True, "email": "x@example.com"}, headers=admin.headers)
    _error(extra, 422, "VALIDATION_FAILED")
    _error(client.patch(url, json={}, headers=admin.headers), 422, "VALIDATION_FAILED")
    trail = _trail(identity, "operator.update")
    assert [(r["actor_user_id"], r["resource_id"], r["summary"]["read_only"]) for r in trail] == [
        (str(admin.user_id), str(other.user_id), [False, True]),
        (str(admin.user_id), str(other.user_id), [True, False]),
    ]
    assert all(r["summary"]["sessions_ended"] >= 1 for r in trail)


def test_a_password_reset_ends_the_sessions_and_gives_a_one_time_password(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    reset = identity.client.post(f"/api/v1/operators/{other.user_id}/reset-password", headers=admin.headers)
    assert reset.status_code == 200, reset.text
    body = reset.json()
    assert body["must_change_password"] is True
    _error(identity.client.get("/api/v1/auth/me", headers=other.headers), 401, "TOKEN_REVOKED")
    _error(identity.login(other.email, other.password), 401, "INVALID_CREDENTIALS")
    signed = identity.login(other.email, body["one_time_password"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["must_change_password"] is True
    (record,) = _trail(identity, "operator.password_reset")
    assert record["actor_user_id"] == str(admin.user_id)
    assert body["one_time_password"] not in str(record)


def test_an_mfa_reset_lets_an_operator_who_lost_the_device_in_to_enrol_again(identity: Identity) -> None:
    admin, other = identity.operator, identity.new_operator()
    _enable_mfa(identity, other)
    _error(identity.login(other.email, other.password), 401, "MFA_REQUIRED")
    assert _operators(identity)[other.email]["mfa_enabled"] is True

    reset = identity.client.post(f"/api/v1/operators/{other.user_id}/reset-mfa", headers=admin.headers)
    assert reset.status_code == 200, reset.text
    assert reset.json()["mfa_enabled"] is False
    signed = identity.login(other.email, other.password)
    assert signed.status_code == 200, signed.text
    again = identity.client.post(f"/api/v1/operators/{other.user_id}/reset-mfa", headers=admin.headers)
    assert other.email in _error(again, 409, "MFA_NOT_ENABLED")["message"]
    fresh = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert identity.client.post("/api/v1/auth/mfa/enroll", headers=fresh).status_code == 200
    (record,) = _trail(identity, "operator.mfa_reset")
    assert (record["actor_user_id"], record["resource_id"]) == (str(admin.user_id), str(other.user_id))


def test_an_unknown_operator_is_404_and_a_tenant_user_is_no_operator(identity: Identity) -> None:
    admin = identity.operator
    owner = identity.tenant("acme").owner
    for target in (uuid.uuid4(), owner.user_id):
        base = f"/api/v1/operators/{target}"
        for response in (
            identity.client.get(base, headers=admin.headers),
            identity.client.post(f"{base}/disable", headers=admin.headers),
            identity.client.post(f"{base}/enable", headers=admin.headers),
            identity.client.post(f"{base}/reset-password", headers=admin.headers),
            identity.client.post(f"{base}/reset-mfa", headers=admin.headers),
            identity.client.patch(base, json={"read_only": True}, headers=admin.headers),
            identity.client.delete(base, headers=admin.headers),
        ):
            error = _error(response, 404, "OPERATOR_NOT_FOUND")
            assert str(target) in error["message"]
    assert identity.login(owner.email, owner.password, "acme").status_code == 200
