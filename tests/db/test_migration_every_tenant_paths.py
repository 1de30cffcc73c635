"""Migration 0014: the owner's narrow paths over every tenant's apps and webhook endpoints, and their
``<table>_definer`` policies, come with the upgrade and go with the downgrade (PostgreSQL; on SQLite it
does nothing)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from appliance.db import migrate
from appliance.db.rls import LATER_DEFINERS, NARROW_PATHS
from tests.conftest import PgDatabase
from tests.support import make_settings

NEW = {name for name, table in NARROW_PATHS.items() if table in LATER_DEFINERS}
OLDER = {"jobs", "refresh_tokens", "idempotency_keys"}


def _paths(url: str) -> tuple[set[str], set[str]]:
    """The narrow paths' functions and the definer policies of the database at ``url``."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            functions = set(
                conn.execute(
                    text("SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")
                ).scalars()
            )
            policies = set(
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() "
                        "AND policyname = tablename || '_definer'"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    return functions, policies


def test_the_every_tenant_paths_come_and_go_with_0014(tmp_path: Path, pg_database: PgDatabase) -> None:
    assert sorted(NEW) == [
        "apps_ledger_page",
        "apps_tenant_of",
        "webhook_endpoints_ledger_page",
        "webhook_endpoints_tenant_of",
    ]
    settings = make_settings(tmp_path, pg_database.url, migrated=False)
    migrate.upgrade(settings, "0013")
    functions, policies = _paths(pg_database.url)
    # The tables made before their paths (0005, 0006) got no definer policy then.
    assert not functions & NEW
    assert policies == OLDER
    assert migrate.upgrade(settings, "0014") == ["0014"]
    functions, policies = _paths(pg_database.url)
    assert functions == set(NARROW_PATHS)
    assert policies == set(NARROW_PATHS.values())
    assert migrate.downgrade(settings, "0013") == ["0014"]
    functions, policies = _paths(pg_database.url)
    assert not functions & NEW
    assert policies == OLDER
    assert migrate.upgrade(settings, "0014") == ["0014"]  # and again
    assert _paths(pg_database.url) == (set(NARROW_PATHS), set(NARROW_PATHS.values()))
