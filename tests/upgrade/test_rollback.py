"""A rollback after migrations that were applied (a restart or a health check failed later): the backup
made before them is restored and the schema is the old version's again, exactly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from appliance import __version__
from appliance.config import Settings
from appliance.db import migrate
from appliance.db.session import Database
from appliance.models import Tenant
from appliance.services.access.actors import cli_operator
from appliance.services.backups import keys
from appliance.services.tenancy import tenants
from appliance.upgrade import backup, schema
from appliance.upgrade.journal import Context, Journal
from appliance.upgrade.layout import MARKER, Layout
from appliance.upgrade.rollback import rollback
from tests.support import REPOSITORY, make_settings
from tests.upgrade.release import make_venv

OLD_HEAD = "0012"  # the previous release's newest migration


def add_tenant(settings: Settings, slug: str) -> None:
    database = Database(settings)
    try:
        with database.session_scope() as session:
            tenants.create(
                session, cli_operator(), slug=slug, name=slug.title(), plan="free", owner_email=None
            )
    finally:
        database.dispose()


def tenant_slugs(settings: Settings) -> list[str]:
    database = Database(settings)
    try:
        with database.session_scope(write=False) as session:
            return sorted(session.scalars(select(Tenant.slug)))
    finally:
        database.dispose()


def test_a_rollback_restores_the_backup_at_the_old_versions_schema(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, migrated=False)
    migrate.upgrade(settings, OLD_HEAD)  # the database as the previous release left it
    keys.create(settings.backup_key_file)
    add_tenant(settings, "before")
    archive = backup.take(settings, None)
    fingerprint = schema.fingerprint(settings)
    add_tenant(settings, "after")  # written while the upgrade went on: not in the backup
    applied = migrate.upgrade(settings)  # this version's migrations
    assert applied

    layout = Layout(make_venv(tmp_path / "srv" / ".venv", REPOSITORY))
    staged = make_venv(layout.new_release(__version__), REPOSITORY)
    (staged / MARKER).write_text("{}")
    journal = Journal(
        settings,
        "0.1.0",
        __version__,
        None,
        layout.venv,
        archive,
        OLD_HEAD,
        fingerprint,
        [migrate.head_revision()],
    )
    said: list[str] = []
    assert rollback(Context(layout, staged, None, said.append), journal) == []

    assert schema.revision(settings) == OLD_HEAD
    assert schema.fingerprint(settings) == fingerprint  # the old version's schema, exactly
    assert tenant_slugs(settings) == ["before"]
    restored = [line for line in said if "database restored from" in line]
    assert restored == [
        f"      database restored from {archive} (what was written after it is not in it), schema back at "
        f"{OLD_HEAD} (undone: {', '.join(reversed(applied))})"
    ]
    assert not staged.exists()
