"""`appliance admin list|disable|enable|remove|reset-password|mfa reset` as an operator runs them, on both
databases (PostgreSQL as an app role without BYPASSRLS): each change lands and is audited with the OS user
and host, the last full operator stays, every mistake names the bad value and changes nothing, and an
operator disabled here is refused by the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from appliance.keys import signing_key
from appliance.models import AuditLog, User
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor, RequestInfo, cli_name
from appliance.services.audit import log as audit
from appliance.services.identity import mfa, passwords
from appliance.services.identity.authenticator import Authenticator
from tests.cli.test_tenants import Cli, app_role_settings, assert_one_line_error, child_env
from tests.conftest import PgDatabase
from tests.identity import Identity, identity_api


@pytest.fixture
def cli(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Cli]:
    settings = app_role_settings(tmp_path, database_url, request)
    owner = Database(settings, settings.migrations_url)
    try:
        yield Cli(settings, owner, child_env(settings))
    finally:
        owner.dispose()


@pytest.fixture
def served(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Identity, Cli]]:
    """The API and the command line on one database (PostgreSQL: both as the app role)."""
    app_url = None
    if database_url.startswith("postgresql"):
        pg: PgDatabase = request.getfixturevalue("pg_database")
        role = pg.create_role(password="app-secret")
        app_url = pg.url_as(role, "app-secret")
    with identity_api(tmp_path, database_url, app_url) as identity:
        owner = Database(identity.settings, identity.settings.migrations_url)
        try:
            yield identity, Cli(identity.settings, owner, child_env(identity.settings))
        finally:
            owner.dispose()


def one_time_password(output: str) -> str:
    return output.split("one-time password: ")[1].split(maxsplit=1)[0]


def account(cli: Cli, email: str) -> User:
    with cli.owner.session_scope(write=False) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def platform_trail(cli: Cli) -> list[AuditLog]:
    """The platform chain's operator.* records, oldest first."""
    with cli.owner.session_scope(write=False) as session:
        records = audit.query(session, tenant_id=None, action="operator.*", limit=100)
        session.expunge_all()
    return list(reversed(records))


def test_operators_are_listed_disabled_enabled_and_reset_and_each_step_is_audited(cli: Cli) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com", "--name", "Ops")
    cli.ok("admin", "create", "--email", "watch@example.com", "--read-only")

    table = cli.ok("admin", "list").splitlines()
    assert table[0].split() == ["EMAIL", "NAME", "PERMISSIONS", "MFA", "STATUS", "LAST", "SIGN-IN", "CREATED"]
    assert table[1].split()[:6] == ["ops@example.com", "Ops", "full", "off", "active", "-"]
    assert table[2].split()[:6] == ["watch@example.com", "watch", "read-only", "off", "active", "-"]
    listed = cli.json("admin", "list")
    assert [o["email"] for o in listed] == ["ops@example.com", "watch@example.com"]
    watcher = listed[1]
    assert set(watcher) == {
        "id",
        "email",
        "display_name",
        "read_only",
        "permissions",
        "mfa_enabled",
        "disabled",
        "must_change_password",
        "last_login_at",
        "created_at",
    }
    assert watcher["permissions"] == sorted(platform_permissions.READ)
    assert (watcher["mfa_enabled"], watcher["disabled"], watcher["last_login_at"]) == (False, False, None)
    assert "tenants:manage" in listed[0]["permissions"]

    assert (
        cli.ok("admin", "disable", "Watch@Example.com")
        == "operator watch@example.com disabled; 0 sessions ended\n"
    )
    assert cli.json("admin", "list")[1]["disabled"] is True
    assert "disabled" in cli.ok("admin", "list").splitlines()[2].split()
    assert "already disabled" in cli.fails(Conflict, "admin", "disable", "watch@example.com")
    assert cli.ok("admin", "enable", "watch@example.com") == "operator watch@example.com enabled\n"
    assert cli.json("admin", "list")[1]["disabled"] is False
    assert "not disabled" in cli.fails(Conflict, "admin", "enable", "watch@example.com")

    reset = cli.ok("admin", "reset-password", "watch@example.com")
    assert reset.startswith("operator watch@example.com: password reset; 0 sessions ended\n")
    password = one_time_password(reset)
    user = account(cli, "watch@example.com")
    assert user.password_hash is not None
    assert passwords.verify(password, user.password_hash)[0]
    assert user.must_change_password is True

    trail = platform_trail(cli)
    assert [(r.action, r.actor_name, r.actor_user_id, r.user_agent) for r in trail] == [
        (action, cli_name(), None, "appliance-cli")
        for action in (
            "operator.create",
            "operator.create",
            "operator.disable",
            "operator.enable",
            "operator.password_reset",
        )
    ]
    assert cli_name().startswith("cli:")
    assert {r.resource_id for r in trail[2:]} == {str(user.id)}
    assert password not in str([r.summary for r in trail])


def test_the_last_active_full_operator_is_neither_disabled_nor_removed(cli: Cli) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com")
    cli.ok("admin", "create", "--email", "watch@example.com", "--read-only")  # read-only: does not count
    before = cli.json("admin", "list")
    for verb in ("disable", "remove"):
        message = cli.fails(Conflict, "admin", verb, "ops@example.com")
        assert "'ops@example.com' is the last active operator" in message
    run = cli.process("admin", "remove", "ops@example.com")
    assert_one_line_error(run, "'ops@example.com'", "last active operator")
    assert cli.json("admin", "list") == before

    cli.ok("admin", "create", "--email", "second@example.com")
    cli.ok("admin", "disable", "second@example.com")
    assert "last active operator" in cli.fails(
        Conflict, "admin", "disable", "ops@example.com"
    )  # a disabled one does not count
    cli.ok("admin", "enable", "second@example.com")
    assert cli.ok("admin", "disable", "ops@example.com").startswith("operator ops@example.com disabled")
    assert "last active operator" in cli.fails(Conflict, "admin", "remove", "second@example.com")
    assert cli.ok("admin", "remove", "watch@example.com").startswith("operator watch@example.com removed")


VERBS = [("disable",), ("enable",), ("remove",), ("reset-password",), ("mfa", "reset")]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_an_unknown_or_malformed_email_fails_naming_it_and_changes_nothing(
    cli: Cli, verb: tuple[str, ...]
) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com")
    cli.ok("admin", "create", "--email", "other@example.com")
    cli.ok("tenant", "create", "acme", "--name", "Acme", "--owner", "ada@example.com")
    before = cli.json("admin", "list")
    trail = len(platform_trail(cli))
    assert "no operator has the email 'nobody@example.com'" in cli.fails(
        NotFound, "admin", *verb, "Nobody@Example.com"
    )
    # A tenant's user is no operator either.
    assert "'ada@example.com'" in cli.fails(NotFound, "admin", *verb, "ada@example.com")
    assert "'not-an-email'" in cli.fails(InvalidInput, "admin", *verb, "not-an-email")
    assert cli.json("admin", "list") == before
    assert len(platform_trail(cli)) == trail


def test_an_unknown_email_is_one_line_in_a_real_process(cli: Cli) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com")
    run = cli.process("admin", "disable", "nobody@example.com")
    assert_one_line_error(run, "no operator has the email 'nobody@example.com'")
    assert run.stdout == ""


def test_every_verb_explains_itself(cli: Cli) -> None:
    for verb, words in [
        (("list",), "two-factor"),
        (("disable",), "sign in nowhere"),
        (("enable",), "sign in again"),
        (("remove",), "audit trail"),
        (("reset-password",), "one-time password"),
        (("mfa", "reset"), "enrol again"),
        (("mfa",), "reset"),
    ]:
        shown = cli.ok("admin", *verb, "--help")
        assert "Usage: " in shown
        assert words in " ".join(shown.split()), (verb, shown)
    listed = " ".join(cli.ok("admin", "--help").split())
    for name in ("create", "list", "disable", "enable", "remove", "reset-password", "mfa"):
        assert f" {name} " in listed


def test_a_removed_operator_keeps_its_record_and_can_be_added_again(cli: Cli) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com")
    cli.ok("admin", "create", "--email", "gone@example.com")
    gone = account(cli, "gone@example.com")
    assert (
        cli.ok("admin", "remove", "gone@example.com")
        == "operator gone@example.com removed; 0 sessions ended\n"
    )
    assert [o["email"] for o in cli.json("admin", "list")] == ["ops@example.com"]
    kept = account(cli, "gone@example.com")
    assert kept.id == gone.id  # the audit records that name this id still say who it was
    assert (kept.is_operator, kept.password_hash, kept.is_active) == (False, None, False)
    assert kept.operator_removed_at is not None
    assert "no operator has the email 'gone@example.com'" in cli.fails(
        NotFound, "admin", "remove", "gone@example.com"
    )
    (removal,) = [r for r in platform_trail(cli) if r.action == "operator.remove"]
    assert removal.summary["email"] == "gone@example.com"
    assert removal.resource_id == str(gone.id)

    again = cli.ok("admin", "create", "--email", "gone@example.com")
    assert "operator gone@example.com created" in again
    back = account(cli, "gone@example.com")
    assert back.id == gone.id
    assert back.password_hash is not None
    assert passwords.verify(one_time_password(again), back.password_hash)[0]
    assert [o["email"] for o in cli.json("admin", "list")] == ["ops@example.com", "gone@example.com"]


def test_an_mfa_reset_turns_two_factor_off(cli: Cli) -> None:
    cli.ok("admin", "create", "--email", "ops@example.com")
    user = account(cli, "ops@example.com")
    with cli.owner.session_scope() as session:
        found = session.get(User, user.id)
        assert found is not None
        secret = mfa.enroll(session, found, "test").secret
        code = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) - timedelta(seconds=30))
        actor = Actor(user_id=user.id, tenant_id=None, operator=True)
        mfa.activate(session, actor, found, code, dt.datetime.now(dt.UTC))
    assert cli.json("admin", "list")[0]["mfa_enabled"] is True
    assert cli.ok("admin", "list").splitlines()[1].split()[3] == "on"

    out = cli.ok("admin", "mfa", "reset", "ops@example.com")
    assert out == "operator ops@example.com: two-factor authentication is off; they may enrol again\n"
    assert cli.json("admin", "list")[0]["mfa_enabled"] is False
    assert "two-factor authentication is not on for operator 'ops@example.com'" in cli.fails(
        Conflict, "admin", "mfa", "reset", "ops@example.com"
    )
    assert platform_trail(cli)[-1].action == "operator.mfa_reset"


def test_an_operator_disabled_here_is_refused_by_the_api(served: tuple[Identity, Cli]) -> None:
    identity, cli = served
    admin, other = identity.operator, identity.new_operator()
    client = identity.client
    assert client.get("/api/v1/auth/me", headers=other.headers).status_code == 200

    disabled = cli.ok("admin", "disable", other.email)
    assert disabled.startswith(f"operator {other.email} disabled; ")
    assert not disabled.startswith(f"operator {other.email} disabled; 0 ")

    def code(response: Any) -> str:
        return str(response.json()["error"]["code"])

    signed = identity.login(other.email, other.password)
    assert (signed.status_code, code(signed)) == (401, "ACCOUNT_DISABLED")
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})
    assert refreshed.status_code == 401
    # Any API process refuses the access token once it has loaded the revocations (the one serving these
    # requests within 5 s; a process that starts now, at once).
    sec = identity.settings.security
    fresh = Authenticator(
        identity.database,
        signing_key=signing_key(identity.settings),
        issuer=sec.token_issuer,
        audience=sec.token_audience,
        access_ttl=timedelta(seconds=sec.access_token_ttl),
    )
    with pytest.raises(Unauthenticated) as refused:
        fresh.bearer(other.token, RequestInfo())
    assert refused.value.code == "TOKEN_REVOKED"
    assert fresh.bearer(admin.token, RequestInfo()).user_id == admin.user_id

    cli.ok("admin", "enable", other.email)
    assert identity.login(other.email, other.password).status_code == 200
