"""Migrations on SQLite and PostgreSQL: pending, applied once, idempotent, and matching the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from appliance.db import migrate
from appliance.db.base import Base
from appliance.db.engine import build_engine
from appliance.errors import OperationFailed, Unavailable
from tests.conftest import PgDatabase
from tests.servers import free_port
from tests.support import make_settings


def test_upgrade_applies_everything_once(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, migrated=False)
    every = [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
        "0006",
        "0007",
        "0008",
        "0009",
        "0010",
        "0011",
        "0012",
        "0013",
        "0014",
        "0015",
    ]
    assert migrate.pending(settings) == every  # oldest first
    assert migrate.current_revision(settings) is None

    assert migrate.upgrade(settings) == every
    assert migrate.pending(settings) == []
    assert migrate.upgrade(settings) == []  # idempotent
    assert migrate.current_revision(settings) == migrate.head_revision()

    engine = build_engine(settings)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


def test_models_and_migrations_agree(tmp_path: Path, database_url: str) -> None:
    """A model changed without a migration is caught here, on both databases."""
    settings = make_settings(tmp_path, database_url)
    engine = build_engine(settings)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert diff == []


def test_schema_problem_explains_what_to_run() -> None:
    assert migrate.schema_problem(None) == "the database has no schema yet: run `appliance migrate`"
    assert migrate.schema_problem(migrate.head_revision()) is None
    assert migrate.schema_problem("a-revision-from-a-newer-version") is None


@pytest.mark.postgres
def test_a_statement_the_database_refuses_is_a_failed_migration_not_an_unreachable_database(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    # A role that can log in but may not create tables: the first migration's CREATE is refused.
    role = pg_database.create_role(password="pw")
    settings = make_settings(tmp_path, pg_database.url_as(role, "pw"), migrated=False)
    with pytest.raises(OperationFailed) as failed:
        migrate.upgrade(settings)
    assert str(failed.value).startswith("the database refused the migration: ")
    assert "permission denied for schema public" in str(failed.value)
    assert migrate.current_revision(settings) is None  # nothing applied


def test_a_database_that_does_not_answer_is_unavailable(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    settings = make_settings(tmp_path, url, migrated=False)
    with pytest.raises(Unavailable, match=r"^cannot reach the database to migrate it: "):
        migrate.upgrade(settings)
