"""Tenants full of data for the tenant export and import tests: an appliance on SQLite or on PostgreSQL as in
production (a plain schema owner, bound by the FORCEd row-level security, and an app role), tenants with
nested organizations, projects, members with two-factor and recovery codes, API keys, custom roles,
invitations, webhooks with deliveries and attempts, monitored apps with checks, roll-ups and incidents,
and audit records; and every row of the appliance, to compare."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.pool import NullPool

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.models import (
    ApiKey,
    App,
    AppCheck,
    AppCheckHourly,
    AppIncident,
    Invitation,
    Membership,
    MfaFactor,
    Organization,
    Project,
    RecoveryCode,
    Role,
    Tenant,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from appliance.services.access.actors import cli_operator
from appliance.services.audit import log as audit
from appliance.services.backups import keys, tenant_rows
from appliance.services.identity import passwords
from appliance.services.monitoring.apps import new_token
from appliance.services.tenancy import tenants
from tests.conftest import PgDatabase
from tests.support import make_settings

PASSWORD = "a-member-password-42"
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


@dataclass
class Appliance:
    """One appliance's settings, its owner's Database, and a URL that reads every row (no RLS)."""

    settings: Settings
    owner: Database
    admin_url: str


@contextmanager
def appliance(tmp_path: Path, pg: PgDatabase | None) -> Iterator[Appliance]:
    """An appliance in ``tmp_path``: on SQLite without ``pg``, else on ``pg`` with a plain owner role and an
    app role (as in production). Its backup key is made."""
    if pg is None:
        settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}")
        admin_url = settings.database_url
    else:
        owner_url = pg.plain_owner()
        role = pg.create_role(password="app-secret")
        settings = make_settings(
            tmp_path, None, database={"url": pg.url_as(role, "app-secret"), "migrations_url": owner_url}
        )
        admin_url = pg.url
    keys.create(settings.backup_key_file)
    owner = Database(settings, settings.migrations_url, bounded=False)
    try:
        yield Appliance(settings, owner, admin_url)
    finally:
        owner.dispose()


@contextmanager
def second_pg(request: pytest.FixtureRequest) -> Iterator[PgDatabase | None]:
    """Another database on the session's PostgreSQL server (None on SQLite), dropped afterwards."""
    if "postgresql" not in request.node.callspec.id:
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    other = PgDatabase(server, f"test_{uuid.uuid4().hex[:12]}")
    server.create_database(other.name)
    try:
        yield other
    finally:
        server.drop_database(other.name, force=True)
        for role in reversed(other.roles):
            server.drop_role(role)


def fill(
    database: Database, slug: str, *, outsider: uuid.UUID | None = None, domain: str | None = None
) -> uuid.UUID:
    """A tenant with something in every table it can own; its members are owner@ and member@ ``domain``
    (default ``<slug>.example``), and ``outsider`` (a user who is no member) created one of its projects.
    Returns its id."""
    domain = domain or f"{slug}.example"
    with database.session_scope() as session:
        made = tenants.create(session, cli_operator(), slug=slug, name=slug.title(), plan="business")
        tenant_id = made.tenant.id
        tenancy.set_tenant(session, tenant_id)
        hashed = passwords.hash_password(PASSWORD)
        owner = User(email=f"owner@{domain}", display_name="Owner", password_hash=hashed)
        member = User(email=f"member@{domain}", password_hash=hashed, last_login_at=T0)
        session.add_all([owner, member])
        session.flush()
        session.add_all(
            [
                Membership(tenant_id=tenant_id, user_id=owner.id, role="owner"),
                Membership(tenant_id=tenant_id, user_id=member.id, role="auditor"),
                MfaFactor(
                    user_id=member.id, totp_secret="JBSWY3DPEHPK3PXP", enabled_at=T0, last_used_step=2**40
                ),
                RecoveryCode(user_id=member.id, code_hash="h1"),
                RecoveryCode(user_id=member.id, code_hash="h2", used_at=T0),
                Role(tenant_id=tenant_id, name="auditor", inherits="viewer", permissions=["audit:read"]),
                ApiKey(
                    tenant_id=tenant_id,
                    name="ci",
                    prefix=f"fk_{uuid.uuid4().hex[:12]}",
                    key_hash="kh",
                    scopes=["projects:read"],
                    created_by=owner.id,
                    expires_at=T0 + dt.timedelta(days=90),
                ),
                Invitation(
                    tenant_id=tenant_id,
                    email=f"new@{slug}.example",
                    role="member",
                    token_hash="th",
                    invited_by=owner.id,
                    expires_at=T0 + dt.timedelta(days=7),
                ),
            ]
        )
        top = Organization(tenant_id=tenant_id, name="Engineering", slug="eng")
        session.add(top)
        session.flush()
        middle = Organization(tenant_id=tenant_id, name="Platform", slug="platform", parent_id=top.id)
        session.add(middle)
        session.flush()
        session.add(Organization(tenant_id=tenant_id, name="Storage", slug="storage", parent_id=middle.id))
        # Made last, then put above the first: rows come out children first, the import puts parents first.
        holding = Organization(tenant_id=tenant_id, name="Holding", slug="holding")
        session.add(holding)
        session.flush()
        top.parent_id = holding.id
        projects = [
            Project(tenant_id=tenant_id, organization_id=middle.id, name=f"p{n}", created_by=owner.id)
            for n in range(3)
        ]
        projects.append(Project(tenant_id=tenant_id, organization_id=top.id, name="old", created_by=outsider))
        session.add_all(projects)
        _webhooks_and_apps(session, tenant_id, owner.id)
        session.flush()
        audit.record(
            session,
            action="project.create",
            tenant_id=tenant_id,
            actor=cli_operator(owner.id),
            resource_type="project",
            resource_id=projects[0].id,
            summary={"name": "p0", "nested": {"list": [1, 2.5, None]}},
        )
    with database.session_scope() as session:
        tenancy.set_tenant(session, tenant_id)
        audit.record(
            session, action="member.login", tenant_id=tenant_id, resource_type="user", resource_id=member.id
        )
    return tenant_id


def _webhooks_and_apps(session: Any, tenant_id: uuid.UUID, creator: uuid.UUID) -> None:
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id, url="https://hooks.example/in", secret="whsec_x", event_types=["a"]
    )
    message = WebhookMessage(tenant_id=tenant_id, event_type="a", body='{"type":"a"}')
    app = App(
        tenant_id=tenant_id,
        name="site",
        kind="heartbeat",
        heartbeat_token=new_token(tenant_id),
        timeout=2.5,
        created_by=creator,
        status_changed_at=T0,
    )
    session.add_all([endpoint, message, app])
    session.flush()
    delivery = WebhookDelivery(
        tenant_id=tenant_id, message_id=message.id, endpoint_id=endpoint.id, attempts=1
    )
    session.add(delivery)
    session.flush()
    session.add_all(
        [
            WebhookAttempt(
                tenant_id=tenant_id, delivery_id=delivery.id, attempt=1, status_code=500, latency_ms=12.25
            ),
            AppIncident(tenant_id=tenant_id, app_id=app.id, started_at=T0, reason="timeout"),
            AppCheckHourly(
                tenant_id=tenant_id, app_id=app.id, hour=T0.replace(minute=0, second=0, microsecond=0)
            ),
            *(
                AppCheck(
                    tenant_id=tenant_id, app_id=app.id, checked_at=T0 + dt.timedelta(seconds=n), ok=n % 2 == 0
                )
                for n in range(5)
            ),
        ]
    )


def outsider(database: Database, email: str = "left@example.com") -> uuid.UUID:
    """A user who belongs to no tenant."""
    with database.session_scope() as session:
        user = User(email=email)
        session.add(user)
        session.flush()
        return user.id


def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a tenant can be in, read as a superuser (PostgreSQL) or from the file."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
                for table in tenant_rows.moved_tables()
            }
    finally:
        engine.dispose()


def purge(database: Database, tenant_id: uuid.UUID, *, deleted: bool = False) -> None:
    """Delete the tenant (unless it is ``deleted`` already) and purge it at once (its grace period moved
    into the past)."""
    now = dt.datetime.now(dt.UTC)
    if not deleted:
        with database.session_scope() as session:
            tenants.delete_tenant(session, cli_operator(), tenant_id, now)
    with database.session_scope() as session:
        session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(purge_after=now - dt.timedelta(days=1))
        )
    with database.session_scope() as session:
        tenants.purge_due(session, now, cli_operator())
