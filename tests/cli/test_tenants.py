"""`appliance tenant ...` and `appliance user ...` as an operator runs them, on both databases (PostgreSQL as
an app role without BYPASSRLS, the owner only for migrations and purges): every change lands and is
audited, every mistake is one line naming the bad value, and a purge removes only what is due."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import pwd
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner, Result

from appliance.cli.main import app
from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import AuditLog, Membership, Organization, Project, Tenant, User
from appliance.services.audit import log as audit
from tests.conftest import PgDatabase
from tests.db.seed import Seeded, seed
from tests.support import make_settings, settings_env


def app_role_settings(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Migrated settings; on PostgreSQL the appliance connects as an app role (no BYPASSRLS) and
    ``database.migrations_url`` is the owner, as in production."""
    if not database_url.startswith("postgresql"):
        return make_settings(tmp_path, database_url)
    pg: PgDatabase = request.getfixturevalue("pg_database")
    role = pg.create_role(password="app-secret")
    database = {"url": pg.url_as(role, "app-secret"), "migrations_url": database_url}
    return make_settings(tmp_path, None, database=database)


def child_env(settings: Settings) -> dict[str, str]:
    """settings_env plus the owner's URL, which `appliance tenant purge` connects with."""
    return settings_env(settings) | {"APPLIANCE_DATABASE__MIGRATIONS_URL": settings.migrations_url}


def make_due(owner: Database, tenant_id: uuid.UUID, *, days_ago: int = 1) -> None:
    """Move a deleted tenant's purge date into the past (as if its grace period were over)."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with owner.session_scope() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(purge_after=past))


def rows_of(owner: Database, tenant_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each kind the tenant still has (read as the owner, in the tenant's scope)."""
    with owner.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant_id)

        def n(model: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return {
            "tenants": int(
                session.scalar(select(func.count()).select_from(Tenant).where(Tenant.id == tenant_id)) or 0
            ),
            "memberships": n(Membership),
            "organizations": n(Organization),
            "projects": n(Project),
            "audit": n(AuditLog),
        }


@dataclass
class Cli:
    settings: Settings
    owner: Database
    env: dict[str, str]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, error: type[Exception], *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, error), repr(result.exception)
        return str(result.exception)

    def process(self, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            env=self.env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def status(self, slug: str) -> str:
        with self.owner.session_scope(write=False) as session:
            return session.scalars(select(Tenant.status).where(Tenant.slug == slug)).one().value


@pytest.fixture
def cli(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Cli]:
    settings = app_role_settings(tmp_path, database_url, request)
    owner = Database(settings, settings.migrations_url)
    try:
        yield Cli(settings, owner, child_env(settings))
    finally:
        owner.dispose()


def assert_one_line_error(run: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("appliance: error: ")
    for fragment in fragments:
        assert fragment in line, line


# --------------------------------------------------------------------------- tenants


def test_a_tenant_goes_through_its_lifecycle_and_each_step_is_audited(cli: Cli) -> None:
    created = cli.ok("tenant", "create", "acme", "--name", "Acme Inc", "--plan", "team")
    tenant_id = created.split("id: ")[1].split()[0]
    assert "one-time password" not in created

    assert cli.ok("tenant", "list").splitlines()[1].split()[:5] == ["acme", "Acme", "Inc", "team", "active"]
    assert [t["id"] for t in cli.json("tenant", "list")] == [tenant_id]

    assert cli.ok("tenant", "suspend", "acme") == "tenant acme suspended\n"
    assert "status:      suspended" in cli.ok("tenant", "show", "acme")
    assert cli.ok("tenant", "resume", tenant_id) == "tenant acme resumed\n"  # by id works too
    assert cli.ok("tenant", "plan", "acme", "business") == "tenant acme: plan team -> business\n"
    shown = cli.json("tenant", "show", "acme")
    assert (shown["status"], shown["plan"], shown["purge_after"]) == ("active", "business", None)

    assert "tenant acme deleted" in cli.ok("tenant", "delete", "acme", "--yes")
    shown = cli.json("tenant", "show", "acme")
    assert shown["status"] == "deleted"
    purge_after = dt.datetime.fromisoformat(shown["purge_after"])
    assert dt.timedelta(days=29) < purge_after - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    assert cli.ok("tenant", "resume", "acme") == "tenant acme restored\n"
    assert cli.json("tenant", "show", "acme")["purge_after"] is None

    with cli.owner.session_scope(write=False) as session:
        records = audit.query(session, tenant_id=None, action="tenant.*", limit=50)
        trail = [(r.action, r.user_agent, r.resource_id, r.actor_name) for r in reversed(records)]
    actions = ["create", "suspend", "resume", "update", "delete", "restore"]
    # The OS user and host who ran each command (the effective user, from the password database).
    who = f"cli:{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    assert trail == [(f"tenant.{a}", "appliance-cli", tenant_id, who) for a in actions]
    listed = cli.ok("audit", "list", "--action", "tenant.*", "--limit", "1")
    assert f"  tenant.restore  tenant/{tenant_id}  {who}  -  " in listed
    assert cli.ok("audit", "verify").endswith("all ok\n")


def test_an_owner_gets_a_one_time_password_only_when_the_account_is_new(cli: Cli) -> None:
    first = cli.ok("tenant", "create", "acme", "--name", "Acme", "--owner", "Ada@Example.com")
    assert "owner: ada@example.com (new account)" in first
    password = first.split("one-time password: ")[1].split()[0]
    assert len(password) >= 16
    second = cli.ok("tenant", "create", "globex", "--name", "Globex", "--owner", "ada@example.com")
    assert "owner: ada@example.com (existing account)" in second
    assert "one-time password" not in second
    assert [(u["email"], u["role"]) for u in cli.json("user", "list", "--tenant", "globex")] == [
        ("ada@example.com", "owner")
    ]
    assert cli.json("tenant", "show", "acme")["counts"]["users"] == 1


def test_a_duplicate_slug_is_one_line_naming_it(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme", "--name", "Acme")
    run = cli.process("tenant", "create", "acme", "--name", "Other")
    assert_one_line_error(run, "'acme'", "already exists")
    assert run.stdout == ""
    assert [t["name"] for t in cli.json("tenant", "list")] == ["Acme"]


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "show", "nosuch"),
        ("tenant", "suspend", "nosuch"),
        ("tenant", "delete", "nosuch", "--yes"),
        ("tenant", "plan", "nosuch", "team"),
        ("user", "list", "--tenant", "nosuch"),
        ("user", "invite", "a@example.com", "--tenant", "nosuch", "--role", "member"),
    ],
)
def test_an_unknown_tenant_fails_naming_it(cli: Cli, args: tuple[str, ...]) -> None:
    assert "'nosuch'" in cli.fails(NotFound, *args)


def test_an_unknown_tenant_is_one_line_in_a_real_process(cli: Cli) -> None:
    assert_one_line_error(cli.process("tenant", "show", "nosuch"), "tenant 'nosuch' was not found")


def test_bad_values_fail_naming_them(cli: Cli) -> None:
    assert "'gold'" in cli.fails(InvalidInput, "tenant", "create", "acme", "--name", "A", "--plan", "gold")
    assert "'Bad_Slug'" in cli.fails(InvalidInput, "tenant", "create", "Bad_Slug", "--name", "A")
    cli.ok("tenant", "create", "acme", "--name", "Acme")
    assert "'gold'" in cli.fails(InvalidInput, "tenant", "plan", "acme", "gold")
    assert "'gone'" in cli.fails(InvalidInput, "tenant", "list", "--status", "gone")
    cli.ok("tenant", "suspend", "acme")
    assert "suspended" in cli.fails(Conflict, "tenant", "suspend", "acme")


def test_delete_without_yes_on_a_non_terminal_refuses_and_changes_nothing(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme", "--name", "Acme")
    run = cli.process("tenant", "delete", "acme")
    assert_one_line_error(run, "--yes", "'acme'")
    assert cli.status("acme") == "active"
    assert "--yes" in cli.fails(InvalidInput, "tenant", "delete", "acme")  # CliRunner's stdin is no tty
    assert cli.status("acme") == "active"


def test_delete_on_a_terminal_asks_for_the_slug(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme", "--name", "Acme")

    def typed(answer: str) -> subprocess.CompletedProcess[str]:
        controller, terminal = pty.openpty()
        try:
            os.write(controller, answer.encode() + b"\n")
            return cli.process("tenant", "delete", "acme", stdin=terminal)
        finally:
            os.close(terminal)
            os.close(controller)

    wrong = typed("acme-typo")
    assert_one_line_error(wrong, "does not match 'acme'", "not deleted")
    assert cli.status("acme") == "active"
    right = typed("acme")
    assert right.returncode == 0, right.stderr
    assert "Type the tenant's slug to confirm" in right.stdout
    assert "tenant acme deleted" in right.stdout
    assert cli.status("acme") == "deleted"


def test_list_pages_through_ten_thousand_tenants(cli: Cli) -> None:
    with cli.owner.session_scope() as session:
        session.execute(
            insert(Tenant),
            [{"id": uuid.uuid4(), "slug": f"t{i:05d}", "name": f"Tenant {i}"} for i in range(10_000)],
        )
    listed = cli.json("tenant", "list")
    assert [t["slug"] for t in listed] == [f"t{i:05d}" for i in range(10_000)]
    table = cli.ok("tenant", "list").splitlines()
    assert len(table) == 10_001
    assert table[-1].split()[:4] == ["t09999", "Tenant", "9999", "free"]


def test_list_filters_by_status_plan_and_search(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme", "--name", "Acme Rockets", "--plan", "team")
    cli.ok("tenant", "create", "globex", "--name", "Globex")
    cli.ok("tenant", "create", "initech", "--name", "Initech", "--plan", "team")
    cli.ok("tenant", "suspend", "initech")

    def slugs(*args: str) -> list[str]:
        return [t["slug"] for t in cli.json("tenant", "list", *args)]

    assert slugs("--plan", "team") == ["acme", "initech"]
    assert slugs("--status", "suspended") == ["initech"]
    assert slugs("--plan", "team", "--status", "active") == ["acme"]
    assert slugs("--search", "ROCK") == ["acme"]
    assert cli.ok("tenant", "list", "--plan", "enterprise") == "no tenants\n"


# --------------------------------------------------------------------------- users


def _accept(cli: Cli, email: str, printed: str, password: str = "correct-horse-battery-staple-42") -> None:
    """Accept an invitation with the token the CLI printed, as POST /api/v1/invitations/accept does."""
    from appliance.services.access.actors import RequestInfo
    from appliance.services.identity.auth import LoginGuard
    from appliance.services.limits import limiter as ratelimit
    from appliance.services.tenancy import invitees

    (token,) = re.findall(r"invitation token: (inv_\S+)", printed)
    guard = LoginGuard(ratelimit.MemoryRateLimiter(), ratelimit.LimitsHolder(ratelimit.RateLimits()))
    with cli.owner.session_scope() as session:
        invitees.accept_with_token(
            session,
            guard,
            email=email,
            token=token,
            password=password,
            display_name=None,
            mfa_code=None,
            now=dt.datetime.now(dt.UTC),
            request=RequestInfo(),
        )


def test_users_are_invited_listed_given_roles_and_removed(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme", "--name", "Acme", "--owner", "ada@example.com")
    cli.ok("tenant", "create", "globex", "--name", "Globex", "--owner", "eve@example.com")

    invited = cli.ok("user", "invite", "Bob@Example.com", "--tenant", "acme", "--role", "member")
    assert "bob@example.com invited to acme as member" in invited
    assert "invitation token: inv_" in invited
    assert "one-time password" not in invited
    # An address with an account is invited the same way: the same lines, nothing of the account.
    eve = cli.ok("user", "invite", "eve@example.com", "--tenant", "acme", "--role", "viewer")
    assert re.sub(r"inv_\S+|\S+@example.com", "X", eve) == re.sub(
        r"inv_\S+|\S+@example.com|member", "X", invited
    ).replace("as X", "as viewer")

    members = cli.json("user", "list", "--tenant", "acme")
    assert [(m["email"], m["role"], m["status"]) for m in members] == [
        ("ada@example.com", "owner", "active"),
        ("bob@example.com", "member", "invited"),
        ("eve@example.com", "viewer", "invited"),
    ]
    assert not {"user_id", "display_name"} & members[1].keys()
    assert "bob@example.com  -     member  invited" in cli.ok("user", "list", "--tenant", "acme")
    assert "'bob@example.com' is already invited" in cli.fails(
        Conflict, "user", "invite", "bob@example.com", "--tenant", "acme", "--role", "viewer"
    )
    # Revoking an invitation: `user remove` of an address only invited.
    assert cli.ok("user", "remove", "eve@example.com", "--tenant", "acme").startswith(
        "invitation of eve@example.com to acme revoked"
    )

    _accept(cli, "bob@example.com", invited)
    assert "bob@example.com  bob   member  active" in cli.ok("user", "list", "--tenant", "acme")
    again = cli.ok("user", "invite", "bob@example.com", "--tenant", "globex", "--role", "viewer")
    _accept(cli, "bob@example.com", again)

    assert cli.ok("user", "role", "bob@example.com", "admin", "--tenant", "acme").startswith(
        "bob@example.com in acme: role member -> admin"
    )
    assert "'root'" in cli.fails(InvalidInput, "user", "role", "bob@example.com", "root", "--tenant", "acme")
    assert "'nobody@example.com'" in cli.fails(
        NotFound, "user", "role", "nobody@example.com", "viewer", "--tenant", "acme"
    )
    # Eve is a member of globex only: acme's scope does not find her.
    assert "'eve@example.com'" in cli.fails(NotFound, "user", "remove", "eve@example.com", "--tenant", "acme")
    assert "'root'" in cli.fails(
        InvalidInput, "user", "invite", "carol@example.com", "--tenant", "acme", "--role", "root"
    )
    assert "'bob@example.com' is already a member" in cli.fails(
        Conflict, "user", "invite", "bob@example.com", "--tenant", "acme", "--role", "viewer"
    )

    assert cli.ok("user", "remove", "bob@example.com", "--tenant", "acme").startswith(
        "bob@example.com removed from acme"
    )
    assert [m["email"] for m in cli.json("user", "list", "--tenant", "acme")] == ["ada@example.com"]
    assert [(m["email"], m["role"]) for m in cli.json("user", "list", "--tenant", "globex")] == [
        ("eve@example.com", "owner"),
        ("bob@example.com", "viewer"),
    ]
    assert "owner" in cli.fails(Conflict, "user", "remove", "ada@example.com", "--tenant", "acme")

    with cli.owner.session_scope(write=False) as session:
        acme = session.scalars(select(Tenant.id).where(Tenant.slug == "acme")).one()
        tenancy.set_tenant(session, acme)
        actions = [r.action for r in reversed(audit.query(session, tenant_id=acme, limit=50))]
    assert actions == [
        "membership.create",  # the owner, named when the tenant was created
        "invitation.create",
        "invitation.create",
        "invitation.revoke",
        "invitation.accept",
        "membership.create",
        "membership.update",
        "membership.delete",
    ]


# --------------------------------------------------------------------------- purge


@dataclass(frozen=True)
class Purgeable:
    seeded: Seeded
    in_grace: uuid.UUID


def seed_purgeable(cli: Cli) -> Purgeable:
    """acme (members, projects, audit records) deleted and past its grace; initech deleted within it;
    globex active."""
    with cli.owner.session_scope() as session:
        seeded = seed(session)
        for tenant_id in (seeded.tenant_a, seeded.tenant_b):
            tenancy.set_tenant(session, tenant_id)
            audit.record(session, action="project.create", tenant_id=tenant_id)
    cli.ok("tenant", "create", "initech", "--name", "Initech")
    cli.ok("tenant", "delete", "acme", "--yes")
    cli.ok("tenant", "delete", "initech", "--yes")
    make_due(cli.owner, seeded.tenant_a)
    with cli.owner.session_scope(write=False) as session:
        initech = session.scalars(select(Tenant.id).where(Tenant.slug == "initech")).one()
    return Purgeable(seeded, initech)


def test_purge_removes_only_the_tenants_past_their_grace_period(cli: Cli) -> None:
    made = seed_purgeable(cli)
    before = {
        "globex": rows_of(cli.owner, made.seeded.tenant_b),
        "initech": rows_of(cli.owner, made.in_grace),
    }
    assert rows_of(cli.owner, made.seeded.tenant_a) == {
        "tenants": 1,
        "memberships": 1,
        "organizations": 1,
        "projects": 2,
        "audit": 1,
    }

    refused = cli.process("tenant", "purge")
    assert_one_line_error(refused, "--yes")
    assert rows_of(cli.owner, made.seeded.tenant_a)["tenants"] == 1

    run = cli.process("tenant", "purge", "--yes")  # a real process, connecting as the owner
    assert run.returncode == 0, run.stderr
    assert run.stdout == "purged 1 tenant(s): acme\n"
    assert rows_of(cli.owner, made.seeded.tenant_a) == dict.fromkeys(before["globex"], 0)
    assert rows_of(cli.owner, made.seeded.tenant_b) == before["globex"]
    assert rows_of(cli.owner, made.in_grace) == before["initech"]
    with cli.owner.session_scope(write=False) as session:
        users = set(session.scalars(select(User.email)))
        (record,) = audit.query(session, tenant_id=None, action="tenant.purge", limit=5)
    assert {"ada@example.com", "eve@example.com"} <= users  # accounts outlive a tenant
    assert (record.resource_id, record.summary) == (str(made.seeded.tenant_a), {"slug": "acme"})
    assert record.actor_name == f"cli:{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    assert [t["slug"] for t in cli.json("tenant", "list")] == ["globex", "initech"]

    assert cli.ok("tenant", "purge") == "no deleted tenant is past its grace period; nothing purged\n"
