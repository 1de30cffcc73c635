"""Schema migrations with Alembic, run by `appliance migrate` as the schema owner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from appliance.config import Settings
from appliance.db.engine import build_engine
from appliance.db.rls import grant_app_role
from appliance.db.session import driver_reason
from appliance.errors import OperationFailed, Unavailable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed number: serializes concurrent `appliance migrate` runs from several hosts on PostgreSQL.
ADVISORY_LOCK_ID = 0x46524745


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def head_revision() -> str:
    """The newest revision this version of the appliance knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


@cache
def known_revisions() -> frozenset[str]:
    return frozenset(r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions())


def schema_problem(revision: str | None) -> str | None:
    """Why a database at ``revision`` cannot be served by this version, or None when it can.

    A revision newer than this version knows (another host upgraded first) is served: migrations only add.
    """
    if revision is None:
        return "the database has no schema yet: run `appliance migrate`"
    if revision in known_revisions() and revision != head_revision():
        head = head_revision()
        return f"the database schema is at {revision}, this version needs {head}: run `appliance migrate`"
    return None


@contextmanager
def _owner_connection(settings: Settings) -> Iterator[Connection]:
    """A connection as the schema owner. Not connecting is `Unavailable`; a database error once connected
    (a migration's statement, a lost connection) is `OperationFailed` with the driver's words."""
    engine = build_engine(settings, settings.migrations_url, bounded=False)
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise Unavailable(f"cannot reach the database to migrate it: {driver_reason(exc)}") from exc
        with conn:
            try:
                yield conn
            except DBAPIError as exc:
                raise OperationFailed(f"the database refused the migration: {driver_reason(exc)}") from exc
    finally:
        engine.dispose()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    with _owner_connection(settings) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def pending(settings: Settings) -> list[str]:
    """Revisions not yet applied, oldest first."""
    script = ScriptDirectory.from_config(_config())
    current = current_revision(settings)
    revs = [r.revision for r in script.iterate_revisions(head_revision(), current)]
    return list(reversed(revs))


def app_role(settings: Settings) -> str | None:
    """The role the API and workers connect as, when it is not the one that migrates (PostgreSQL only):
    `appliance migrate` grants it what it needs on every table, and no more."""
    app, owner = make_url(settings.database_url), make_url(settings.migrations_url)
    if app.get_backend_name() != "postgresql" or not app.username or app.username == owner.username:
        return None
    return app.username


@contextmanager
def _locked(settings: Settings) -> Iterator[Connection]:
    """The owner's connection, holding the migrations' advisory lock on PostgreSQL (so that hosts migrating
    at once take turns: the second finds nothing to do)."""
    with _owner_connection(settings) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            conn.commit()
        try:
            yield conn
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()  # a failed statement aborted the transaction: the unlock would fail too
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                conn.commit()


def upgrade(settings: Settings, revision: str = "head") -> list[str]:
    """Apply every pending migration (as the owner: ``database.migrations_url``), then grant the app role
    (``database.url``'s user) its privileges. Running it again changes nothing. Returns what was applied."""
    with _locked(settings) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), revision)
        conn.commit()
        role = app_role(settings)
        if role is not None:
            # Tables created by this run are not covered by earlier grants.
            grant_app_role(conn, role)
            conn.commit()
    script = ScriptDirectory.from_config(_config())
    return list(reversed([r.revision for r in script.iterate_revisions(revision, before)]))


def downgrade(settings: Settings, revision: str) -> list[str]:
    """Take the schema back to ``revision`` with the migrations' own downgrades (as the owner, under the
    same lock as `upgrade`): a failed upgrade's rollback does it after restoring a backup of the older
    version, which the restore migrated forward. Returns what was undone, newest first."""
    with _locked(settings) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.downgrade(_config(conn), revision)
        conn.commit()
    script = ScriptDirectory.from_config(_config())
    return [r.revision for r in script.iterate_revisions(before, revision)]
