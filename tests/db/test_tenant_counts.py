"""Counting several named tenants' rows at once (appliance.db.tenant_counts): right on SQLite, and on
PostgreSQL as the app role under row-level security, whether the schema owner is a superuser or not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from sqlalchemy import text

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.db.tenant_counts import COUNTED_TABLES, count_rows
from tests.conftest import PgDatabase
from tests.db.seed import Seeded, seed
from tests.support import make_settings


def _expected(seeded: Seeded, *tenants: uuid.UUID) -> dict[str, dict[uuid.UUID, int]]:
    everything = {
        "memberships": {seeded.tenant_a: 1, seeded.tenant_b: 2},
        "organizations": {seeded.tenant_a: 1, seeded.tenant_b: 1},
        "projects": {seeded.tenant_a: 2, seeded.tenant_b: 1},
        "api_keys": {},
    }
    return {table: {t: n for t, n in rows.items() if t in tenants} for table, rows in everything.items()}


def test_counts_the_named_tenants_and_no_others(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_platform(session)
        both = count_rows(session, [seeded.tenant_a, seeded.tenant_b])
        assert both == _expected(seeded, seeded.tenant_a, seeded.tenant_b)
        assert count_rows(session, [seeded.tenant_b]) == _expected(seeded, seeded.tenant_b)
        assert count_rows(session, [uuid.uuid4()]) == {table: {} for table in COUNTED_TABLES}
        assert count_rows(session, []) == {table: {} for table in COUNTED_TABLES}
        with pytest.raises(ValueError, match="at most 200"):
            count_rows(session, [uuid.uuid4() for _ in range(201)])


@pytest.fixture(params=["superuser-owner", "plain-owner"])
def app_database(
    request: pytest.FixtureRequest, tmp_path: Path, pg_database: PgDatabase
) -> Iterator[tuple[Database, Seeded]]:
    """The API's Database, connected as an app role without BYPASSRLS, on a schema migrated by a superuser
    or by a plain owner role (subject to the FORCEd row-level security, as in production); seeded."""
    owner_url = pg_database.url
    if request.param == "plain-owner":
        owner = pg_database.create_role(password="owner-secret")
        pg_database.server.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(pg_database.name), sql.Identifier(owner)
            )
        )
        owner_url = pg_database.url_as(owner, "owner-secret")
    role = pg_database.create_role(password="app-secret")
    app_url = pg_database.url_as(role, "app-secret")
    settings = make_settings(tmp_path, database={"url": app_url, "migrations_url": owner_url})
    superuser = Database(settings, pg_database.url)  # seeds past row-level security
    app = Database(settings)
    try:
        with superuser.session_scope() as session:
            seeded = seed(session)
        yield app, seeded
    finally:
        app.dispose()
        superuser.dispose()


def test_the_app_role_counts_through_the_owners_view(app_database: tuple[Database, Seeded]) -> None:
    app, seeded = app_database
    with app.session_scope(write=False) as session:
        tenancy.set_platform(session)
        assert count_rows(session, [seeded.tenant_a, seeded.tenant_b]) == _expected(
            seeded, seeded.tenant_a, seeded.tenant_b
        )
        assert count_rows(session, [seeded.tenant_a]) == _expected(seeded, seeded.tenant_a)
        # The list is the transaction's for the call only; without one the view shows nothing.
        assert session.execute(text("SELECT count(*) FROM tenant_row_counts")).scalar() == 0
        # And the app role's own reads are as before: no tenant set, no rows.
        assert session.execute(text("SELECT count(*) FROM projects")).scalar() == 0
    with app.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        # Inside one tenant the view still counts only the listed tenants (here none).
        assert conn.execute(text("SELECT count(*) FROM tenant_row_counts")).scalar() == 0
        conn.execute(text("SELECT set_config('app.tenant_ids', :ids, true)"), {"ids": str(seeded.tenant_a)})
        # Listing a tenant shows its counts, not its rows: the tables stay one tenant's.
        assert conn.execute(text("SELECT count(*) FROM projects")).scalar() == 1
        privileges = conn.execute(
            text(
                "SELECT has_table_privilege('tenant_row_counts', 'SELECT'), "
                "has_table_privilege('tenant_row_counts', 'INSERT'), "
                "has_table_privilege('tenant_row_counts', 'DELETE')"
            )
        ).one()
        assert tuple(privileges) == (True, False, False)  # appliance migrate grants SELECT on views only
