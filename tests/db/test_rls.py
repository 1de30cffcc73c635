"""Row-level security on PostgreSQL, as the role the API and workers connect as (no BYPASSRLS): raw SQL
inside one tenant's transaction sees and writes that tenant's rows only, and nothing with no tenant set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError

from appliance.db import migrate, tenancy
from appliance.db.base import Base
from appliance.db.engine import build_engine
from appliance.db.session import Database
from appliance.db.tenancy import TENANT_OWNED_TABLES
from appliance.db.tenant_counts import COUNTED_TABLES
from appliance.models import Project
from tests.conftest import PgDatabase
from tests.db.seed import Seeded, seed
from tests.support import make_settings

TENANT = "tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid"


@dataclass
class AppRole:
    """The migrated database, seeded by the owner, and an engine connected as the app role."""

    owner: Database
    app: Database
    seeded: Seeded

    @property
    def engine(self) -> Engine:
        return self.app.engine


@pytest.fixture
def app_role(tmp_path: Path, pg_database: PgDatabase) -> Iterator[AppRole]:
    settings = make_settings(tmp_path, pg_database.url)
    owner = Database(settings)
    role = pg_database.create_role()
    with owner.engine.begin() as conn:
        tenancy.grant_app_role(conn, role)
    with owner.session_scope() as session:
        seeded = seed(session)
    app = Database(settings, pg_database.url_as(role))
    try:
        yield AppRole(owner, app, seeded)
    finally:
        app.dispose()
        owner.dispose()


def _names(conn: Connection) -> list[str]:
    return sorted(conn.execute(text("SELECT name FROM projects")).scalars())


def test_every_tenant_owned_table_has_rls_enabled_forced_and_a_policy(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    engine = build_engine(make_settings(tmp_path, pg_database.url))
    try:
        with engine.connect() as conn:
            flags = {
                row.relname: (row.relrowsecurity, row.relforcerowsecurity)
                for row in conn.execute(
                    text(
                        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                        "WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace"
                    )
                )
            }
            policies = {
                (row.tablename, row.policyname): (row.cmd, row.qual, row.with_check)
                for row in conn.execute(
                    text(
                        "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies "
                        "WHERE schemaname = current_schema()"
                    )
                )
            }
            roles = {
                (row.tablename, row.policyname): set(row.roles)
                for row in conn.execute(
                    text(
                        "SELECT tablename, policyname, roles FROM pg_policies "
                        "WHERE schemaname = current_schema()"
                    )
                )
            }
            owner = conn.execute(text("SELECT current_user")).scalar()
    finally:
        engine.dispose()
    # Exactly the listed tables are under RLS: none forgotten, none unlisted.
    assert {name for name, (enabled, _) in flags.items() if enabled} == set(TENANT_OWNED_TABLES)
    for table in TENANT_OWNED_TABLES:
        assert flags[table] == (True, True), table
        assert policies[(table, "tenant_isolation")] == ("ALL", f"({TENANT})", f"({TENANT})")
    assert set(Base.metadata.tables) <= set(flags)
    assert policies[("audit_logs", "platform_events")][1] == "(tenant_id IS NULL)"
    assert policies[("memberships", "memberships_lookup")][0] == "SELECT"
    assert policies[("api_keys", "api_keys_lookup")][0] == "SELECT"
    # The counts of several tenants (appliance.db.tenant_counts): SELECT policies of the owner that the view
    # reads as, never the app role's, whose tenant-scoped queries must keep tenant_isolation alone.
    for table in COUNTED_TABLES:
        assert policies[(table, f"{table}_tenant_counts")][0] == "SELECT"
        assert roles[(table, f"{table}_tenant_counts")] == {owner}
    public = {key for key, names in roles.items() if names == {"public"}}
    assert {name for _, name in public} == {
        "tenant_isolation",
        "platform_events",
        "memberships_lookup",
        "api_keys_lookup",
    }
    assert len(policies) == len(TENANT_OWNED_TABLES) + 3 + len(COUNTED_TABLES)


def test_the_app_role_cannot_bypass_rls(app_role: AppRole) -> None:
    with app_role.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert tuple(row) == (False, False)


def test_raw_sql_sees_only_the_transactions_tenant(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        assert _names(conn) == ["Rocket", "Sled"]
        assert conn.execute(text("SELECT count(*) FROM organizations")).scalar() == 1
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _names(conn) == ["Secret"]
        # A tenant's UPDATE and DELETE cannot reach another tenant's rows.
        assert conn.execute(text("UPDATE projects SET description = 'x'")).rowcount == 1
        assert conn.execute(text("DELETE FROM memberships")).rowcount == 2


def test_with_no_tenant_set_the_app_role_sees_nothing(app_role: AppRole) -> None:
    with app_role.engine.begin() as conn:
        assert _names(conn) == []
        for table in TENANT_OWNED_TABLES:
            if table != "audit_logs":  # platform events are visible; there are none yet
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    # The setting is local to its transaction: a pooled connection never carries a tenant to the next one.
    with app_role.engine.connect() as conn:
        with conn.begin():
            tenancy.set_tenant(conn, app_role.seeded.tenant_a)
            assert len(_names(conn)) == 2
        with conn.begin():
            assert _names(conn) == []


def test_writing_a_row_for_another_tenant_is_refused(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with pytest.raises(DBAPIError, match="row-level security"), app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(
            text(
                "INSERT INTO projects (id, tenant_id, organization_id, name, description, created_at, "
                "updated_at) VALUES (gen_random_uuid(), :tenant, :org, 'Planted', '', now(), now())"
            ),
            {"tenant": seeded.tenant_b, "org": seeded.org_b},
        )
    with pytest.raises(DBAPIError, match="row-level security"), app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(text("UPDATE projects SET tenant_id = :b"), {"b": seeded.tenant_b})
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _names(conn) == ["Secret"]


def test_the_orm_session_is_scoped_in_every_transaction(app_role: AppRole) -> None:
    with app_role.app.session_scope() as session:
        tenancy.set_tenant(session, app_role.seeded.tenant_a)
        assert sorted(session.scalars(select(Project.name))) == ["Rocket", "Sled"]
        session.commit()  # the next transaction sets app.tenant_id again, in after_begin
        assert session.execute(text("SELECT current_setting('app.tenant_id')")).scalar() == str(
            app_role.seeded.tenant_a
        )
        assert sorted(session.execute(text("SELECT name FROM projects")).scalars()) == ["Rocket", "Sled"]


def test_lookups_reveal_only_the_identified_rows(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with app_role.engine.begin() as conn:
        tenancy.set_user(conn, seeded.user)
        tenants = set(conn.execute(text("SELECT tenant_id FROM memberships")).scalars())
        assert tenants == {seeded.tenant_a, seeded.tenant_b}
        assert conn.execute(text("UPDATE memberships SET role = 'owner'")).rowcount == 0
        assert _names(conn) == []


def test_audit_logs_are_append_only_for_the_app_role(app_role: AppRole) -> None:
    seeded = app_role.seeded
    insert = text(
        "INSERT INTO audit_logs (id, tenant_id, seq, action, summary, created_at, prev_hash, hash) "
        "VALUES (gen_random_uuid(), :tenant, 1, 'project.create', '{}', now(), '0', 'h')"
    )
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(insert, {"tenant": seeded.tenant_a})
        conn.execute(insert, {"tenant": None})  # a platform event
    for statement in ("UPDATE audit_logs SET action = 'forged'", "DELETE FROM audit_logs"):
        with pytest.raises(DBAPIError, match="permission denied"), app_role.engine.begin() as conn:
            tenancy.set_tenant(conn, seeded.tenant_a)
            conn.execute(text(statement))
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        # B sees the platform event but not A's record.
        assert conn.execute(text("SELECT tenant_id FROM audit_logs")).scalars().all() == [None]


def test_the_app_role_cannot_change_the_schema_version(app_role: AppRole) -> None:
    with pytest.raises(DBAPIError, match="permission denied"), app_role.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'x'"))
    assert app_role.app.ping() == migrate.head_revision()
