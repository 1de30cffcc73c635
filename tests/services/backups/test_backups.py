"""Whole-appliance backups on real SQLite and PostgreSQL: data in several tenants, back up, wipe, restore,
compare every table; the refusals that change nothing; verify in a scratch database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.base import Base
from appliance.db.session import Database
from appliance.errors import ConfigError, InvalidInput
from appliance.models import Organization, Project
from appliance.services.access.actors import cli_operator
from appliance.services.backups import catalog, keys, operations
from appliance.services.tenancy import tenants
from tests.support import make_settings


def _settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    settings = make_settings(tmp_path, url, **overrides)
    keys.create(settings.backup_key_file)
    return settings


def _fill(settings: Settings, slugs: tuple[str, ...] = ("acme", "globex", "initech")) -> None:
    database = Database(settings)
    try:
        for slug in slugs:
            with database.session_scope() as session:
                made = tenants.create(
                    session, cli_operator(), slug=slug, name=slug.title(), owner_email=f"owner@{slug}.example"
                )
                tenancy.set_tenant(session, made.tenant.id)
                org = Organization(tenant_id=made.tenant.id, name="Engineering", slug="eng")
                session.add(org)
                session.flush()
                session.add_all(
                    Project(tenant_id=made.tenant.id, organization_id=org.id, name=f"{slug}-{n}")
                    for n in range(5)
                )
    finally:
        database.dispose()


def _tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the schema owner sees it with row-level security off (PostgreSQL)."""
    database = Database(settings, settings.migrations_url, bounded=False)
    found: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with database.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    finally:
        database.dispose()
    return found


def _wipe(settings: Settings) -> None:
    database = Database(settings, settings.migrations_url, bounded=False)
    try:
        with database.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        database.dispose()


def test_backup_wipe_restore_gives_every_table_back(tmp_path: Path, database_url: str) -> None:
    settings = _settings(tmp_path, database_url)
    _fill(settings)
    before = _tables(settings)
    assert len(before["projects"]) == 15
    assert len(before["audit_logs"]) > 3

    summary = operations.create(settings)
    assert summary.rows["projects"] == 15
    assert summary.path.stat().st_mode & 0o077 == 0
    assert catalog.newest_good(settings.backup_dir) == summary

    _wipe(settings)
    assert _tables(settings)["projects"] == []
    restored = operations.restore(settings, summary.path)

    assert restored.migrated == []
    assert _tables(settings) == before


def test_verify_restores_into_a_scratch_database_and_checks_the_audit_chains(
    tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url)
    _fill(settings, ("acme", "globex"))
    good = operations.verify(settings, operations.create(settings).path)
    assert good.ok
    assert good.chains == 3  # the platform's and each tenant's
    assert good.rows == sum(len(rows) for rows in _tables(settings).values()) + 1  # alembic_version

    # An audit record edited behind the appliance's back is found in the archive made after it.
    database = Database(settings, settings.migrations_url, bounded=False)
    try:
        with database.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL row_security = off"))
            conn.execute(text("UPDATE audit_logs SET action = 'tenant.forged' WHERE seq = 1"))
    finally:
        database.dispose()
    tampered = operations.verify(settings, operations.create(settings).path)
    assert not tampered.ok
    assert any("edited" in problem for problem in tampered.chain_problems)


def _damaged_copy(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_refused_archives_change_nothing(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, database_url)
    _fill(settings, ("acme",))
    archive = operations.create(settings).path
    other_key = tmp_path / "other.key"
    keys.create(other_key)
    monkeypatch.setattr(operations, "__version__", "99.0.0")
    newer = operations.create(settings).path
    monkeypatch.undo()
    _fill(settings, ("globex",))  # a change the refused restores must keep
    before = _tables(settings)

    refusals = {
        "a wrong key": (archive, other_key, "wrong key"),
        "a damaged file": (_damaged_copy(archive, tmp_path / "damaged.age"), None, "damaged"),
        "a truncated file": (tmp_path / "cut.age", None, "damaged or truncated"),
        "a newer version": (newer, None, "made by version 99.0.0, newer than this appliance"),
        "not an archive": (Path(settings.secret_key_file), None, "damaged or truncated"),
    }
    (tmp_path / "cut.age").write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    for why, (path, key_file, message) in refusals.items():
        with pytest.raises(InvalidInput, match=message):
            operations.restore(settings, path, key_file=key_file)
        assert _tables(settings) == before, why


def test_a_rotated_key_still_reads_older_archives(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}")
    _fill(settings, ("acme",))
    older = operations.create(settings)
    rotated = keys.rotate(settings.backup_key_file)
    newer = operations.create(settings)
    assert json.loads(catalog.summary_path(newer.path).read_text())["recipient"] == rotated.public
    assert operations.verify(settings, older.path).ok
    assert operations.verify(settings, newer.path).ok
    assert [item.path for item in catalog.listing(settings.backup_dir)] == [newer.path, older.path]


def test_an_archive_without_its_summary_is_not_counted_as_good(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}")
    made = operations.create(settings, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    catalog.summary_path(made.path).unlink()
    assert catalog.newest_good(settings.backup_dir) is None


@pytest.mark.postgres
def test_a_dump_role_bound_by_row_level_security_is_refused_with_the_fix(
    tmp_path: Path, pg_database: Any
) -> None:
    owner_url = pg_database.plain_owner()
    settings = _settings(tmp_path, owner_url)
    _fill(settings, ("acme",))
    with pytest.raises(ConfigError, match=r"no BYPASSRLS\): set \[backups\] database_url"):
        operations.create(settings)

    # With a role that sees every tenant (here the superuser) it works, and the owner restores.
    settings = _settings(tmp_path, owner_url, backups={"database_url": pg_database.url})
    before = _tables(_settings(tmp_path, pg_database.url))
    archive = operations.create(settings).path
    _wipe(_settings(tmp_path, pg_database.url))
    operations.restore(settings, archive)
    assert _tables(_settings(tmp_path, pg_database.url)) == before


def test_a_backup_taken_while_writers_write_is_consistent(tmp_path: Path, database_url: str) -> None:
    """The database stays online: projects are added throughout the backup, and the archive's counts are
    its own snapshot's (verify restores it and finds every count the manifest says)."""
    import threading

    settings = _settings(tmp_path, database_url)
    _fill(settings, ("acme",))
    database = Database(settings)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        with database.session_scope(write=False) as session:
            tenancy.set_platform(session)
            org = session.scalars(select(Organization)).one()
        n = 0
        while not stop.is_set():
            with database.session_scope() as session:
                tenancy.set_tenant(session, org.tenant_id)
                session.add(Project(tenant_id=org.tenant_id, organization_id=org.id, name=f"live-{n}"))
            n += 1
        written.append(n)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        summary = operations.create(settings)
    finally:
        stop.set()
        writer.join()
        database.dispose()
    assert written[0] > 0
    assert operations.verify(settings, summary.path).ok
    assert 5 <= summary.rows["projects"] <= 5 + written[0]
