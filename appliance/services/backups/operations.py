"""Whole-appliance backups: create an archive, verify one in a scratch database, restore one.

Each step reports progress as (step, done, total) so that a terminal, a job or the console can show it.
A restore refuses, with one line and before anything is changed, an archive of a newer version or of
another database engine, a wrong key and a damaged or altered file.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import Settings
from appliance.db import migrate
from appliance.errors import InvalidInput
from appliance.services.backups import archive, catalog, dumps, keys

#: Called with (what is being done, done, total) as a backup, verify or restore goes on.
Progress = Callable[[str, int, int], None]

SIGNING_KEY_PART = "secrets/signing.key"
CONFIG_PART = "config/appliance.toml"


def _quiet(_step: str, _done: int, _total: int) -> None:
    return None


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump_url(settings: Settings) -> str:
    """The URL `pg_dump` reads the database as."""
    return settings.backups.database_url or settings.migrations_url


def create(
    settings: Settings,
    *,
    config_file: Path | None = None,
    scheduled: bool = False,
    progress: Progress = _quiet,
    now: dt.datetime | None = None,
) -> catalog.Summary:
    """Back up the whole appliance (database, signing key, config file) into one encrypted archive in the
    backup directory, while it stays online; returns the archive's summary."""
    moment = now or dt.datetime.now(dt.UTC)
    key = keys.load(settings.backup_key_file)
    directory = settings.backup_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = dumps.engine_of(settings.database_url)
    with archive.private_directory(directory, ".create-") as work:
        progress("dumping the database", 0, 1)
        if engine == "sqlite":
            dump = dumps.dump_sqlite(settings.database_url, work)
        else:
            dump = dumps.dump_postgresql(dump_url(settings), work)
        progress("dumping the database", 1, 1)
        parts = [archive.Part(dumps.PART_NAMES[engine], dump.path)]
        if settings.security.secret_key is None and settings.secret_key_file.exists():
            parts.append(archive.Part(SIGNING_KEY_PART, settings.secret_key_file))
        if config_file is not None and config_file.is_file():
            parts.append(archive.Part(CONFIG_PART, config_file))
        manifest: dict[str, Any] = {
            "format": catalog.FORMAT,
            "kind": "full",
            "created_at": _stamp(moment),
            "appliance_version": __version__,
            "schema_revision": dump.revision,
            "database": engine,
            "tenant": None,
            "scheduled": scheduled,
            "rows": dump.rows,
            "recipient": key.public,
        }
        target = directory / catalog.archive_name("full", moment)
        size, digest = archive.write(
            target, manifest, parts, key.recipient, lambda done, total: progress("encrypting", done, total)
        )
    catalog.write_summary(target, {**manifest, "size": size, "sha256": digest})
    return catalog.read_summary(target)


@dataclass(frozen=True)
class Verified:
    """What `backup verify` checked."""

    archive: Path
    manifest: dict[str, Any]
    tables: int
    rows: int
    chains: int
    chain_problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.chain_problems


def _identities(settings: Settings, key_file: Path | None) -> keys.BackupKey:
    return keys.load(key_file or settings.backup_key_file)


def _open(
    settings: Settings, path: Path, key_file: Path | None, work: Path, progress: Progress
) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", details={"file": str(path)})
    key = _identities(settings, key_file)
    manifest = archive.read(
        path, key.identities, work, lambda done, total: progress("decrypting", done, total)
    )
    if int(manifest.get("format", 0)) > catalog.FORMAT:
        raise InvalidInput(f"{path} is of a newer archive format: upgrade the appliance to read it")
    return manifest


def _check_restorable(settings: Settings, path: Path, manifest: dict[str, Any]) -> str:
    if manifest.get("kind") != "full":
        raise InvalidInput(
            f"{path} is one tenant's export: use `appliance tenant import {path}`",
            details={"file": str(path)},
        )
    version = str(manifest.get("appliance_version", "0"))
    if _version_key(version) > _version_key(__version__):
        raise InvalidInput(
            f"{path} was made by version {version}, newer than this appliance ({__version__}): upgrade first",
            details={"file": str(path), "version": version},
        )
    revision = manifest.get("schema_revision")
    if revision is not None and revision not in migrate.known_revisions():
        raise InvalidInput(
            f"{path} holds schema revision {revision}, unknown to this version: it is from a newer release",
            details={"file": str(path), "revision": revision},
        )
    engine = dumps.engine_of(settings.database_url)
    if manifest.get("database") != engine:
        raise InvalidInput(
            f"{path} is a backup of a {manifest.get('database')} database; this appliance runs on {engine}",
            details={"file": str(path)},
        )
    return engine


def _with_database(settings: Settings, url: str) -> Settings:
    database = settings.database.model_copy(update={"url": url, "migrations_url": url})
    return settings.model_copy(update={"database": database})


def verify(
    settings: Settings, path: Path, *, key_file: Path | None = None, progress: Progress = _quiet
) -> Verified:
    """Decrypt and check every part of the archive, restore it into a scratch database, compare every
    table's count with the manifest, and verify the restored audit chains. Changes nothing in the
    appliance's own database."""
    from appliance.db.session import Database
    from appliance.services.audit import verify as audit_verify

    with archive.private_directory(settings.backup_dir, ".verify-") as work:
        manifest = _open(settings, path, key_file, work, progress)
        if manifest.get("kind") == "tenant":
            return _verify_tenant(path, manifest, work)
        engine = _check_restorable(settings, path, manifest)
        expected = {str(k): int(v) for k, v in manifest.get("rows", {}).items()}
        scratch_name = f"forge_verify_{uuid.uuid4().hex[:12]}"
        if engine == "sqlite":
            copy = work / dumps.PART_NAMES["sqlite"]
            found, _revision = dumps.sqlite_counts(copy)
            dumps.check_counts(found, expected, str(path))
            scratch_url = f"sqlite:///{copy}"
        else:
            progress("restoring into a scratch database", 0, 1)
            scratch_url = dumps.create_scratch_database(dump_url(settings), scratch_name)
        try:
            if engine == "postgresql":
                dumps.restore_postgresql(scratch_url, work / dumps.PART_NAMES["postgresql"], expected, work)
                progress("restoring into a scratch database", 1, 1)
            database = Database(_with_database(settings, scratch_url), bounded=False)
            try:
                reports = audit_verify.verify_all(
                    database, progress=lambda done, total: progress("verifying audit chains", done, total)
                )
            finally:
                database.dispose()
        finally:
            if engine == "postgresql":
                dumps.drop_scratch_database(dump_url(settings), scratch_name)
    problems = [
        f"{report.label}: {problem.message} (seq {problem.seq})"
        for report in reports
        for problem in report.problems
    ]
    return Verified(path, manifest, len(expected), sum(expected.values()), len(reports), problems)


def _verify_tenant(path: Path, manifest: dict[str, Any], work: Path) -> Verified:
    """A tenant's archive: every part's checksum (checked while it was unpacked) and every table's row
    count against the manifest. Its audit chain is verified when it is imported."""
    import gzip

    from appliance.services.backups import tenant_rows

    tables = {str(name): int(entry["rows"]) for name, entry in manifest.get("tables", {}).items()}
    for table, expected in tables.items():
        part = work / tenant_rows.part_name(table)
        with gzip.open(part, "rb") as lines:
            found = sum(1 for line in lines if line.strip())
        if found != expected:
            raise InvalidInput(f"{path}: table {table} has {found} rows, the manifest says {expected}")
    return Verified(path, manifest, len(tables), sum(tables.values()), 0, [])


@dataclass(frozen=True)
class Restored:
    """What `backup restore` did."""

    archive: Path
    manifest: dict[str, Any]
    migrated: list[str]
    signing_key_replaced: bool
    config_copy: Path | None


def restore(
    settings: Settings,
    path: Path,
    *,
    key_file: Path | None = None,
    progress: Progress = _quiet,
    keep: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> Restored:
    """Bring the whole appliance back to the archive's state: its database (then migrated forward when the
    archive is older) and its signing key. The archive's config file is put beside the data directory for
    comparison, never over the one in force. The rows of ``keep`` (table, values: the restore's own job)
    are added in the same step as the archive's rows, so that no reader sees the database without them."""
    with archive.private_directory(settings.backup_dir, ".restore-") as work:
        manifest = _open(settings, path, key_file, work, progress)
        engine = _check_restorable(settings, path, manifest)
        expected = {str(k): int(v) for k, v in manifest.get("rows", {}).items()}
        progress("restoring the database", 0, 1)
        if engine == "sqlite":
            copy = work / dumps.PART_NAMES["sqlite"]
            found, _revision = dumps.sqlite_counts(copy)
            dumps.check_counts(found, expected, str(path))
            migrated = _forward(_with_database(settings, f"sqlite:///{copy}"), manifest)
            _insert_rows(f"sqlite:///{copy}", keep)
            dumps.replace_sqlite(settings.database_url, copy)
        else:
            role = migrate.app_role(settings)
            dumps.restore_postgresql(
                settings.migrations_url,
                work / dumps.PART_NAMES["postgresql"],
                expected,
                work,
                keep,
                grant_to=role,
            )
            migrated = _forward(settings, manifest)
        progress("restoring the database", 1, 1)
        replaced = _restore_signing_key(settings, work / SIGNING_KEY_PART)
        config_copy = _keep_config(settings, work / CONFIG_PART, manifest)
    return Restored(path, manifest, migrated, replaced, config_copy)


def _forward(settings: Settings, manifest: dict[str, Any]) -> list[str]:
    """Migrate a restored database forward when the archive is older than this version (the app role's
    privileges were granted in the restore's own transaction)."""
    if manifest.get("schema_revision") == migrate.head_revision():
        return []
    return migrate.upgrade(settings)


def _insert_rows(url: str, keep: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    if not keep:
        return
    from sqlalchemy import create_engine, insert

    from appliance.db.base import Base

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, values in keep:
                conn.execute(insert(Base.metadata.tables[table]).values(**values))
    finally:
        engine.dispose()


def _restore_signing_key(settings: Settings, restored: Path) -> bool:
    if not restored.exists() or settings.security.secret_key is not None:
        return False
    current = settings.secret_key_file
    new = restored.read_bytes()
    if current.exists() and current.read_bytes() == new:
        return False
    current.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if current.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        shutil.copy2(current, current.with_name(f"{current.name}.before-restore-{stamp}"))
    temporary = current.with_name(current.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(new)
    os.replace(temporary, current)
    return True


def _keep_config(settings: Settings, restored: Path, manifest: dict[str, Any]) -> Path | None:
    if not restored.exists():
        return None
    stamp = str(manifest.get("created_at", "")).replace(":", "")
    target = settings.data_dir / f"appliance.toml.from-backup-{stamp}"
    shutil.copyfile(restored, target)
    os.chmod(target, 0o600)
    return target


def _version_key(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
