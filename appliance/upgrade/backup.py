"""The upgrade's backup: made by the new version before it migrates (it reads the old schema), and put back
by it when a rollback must undo migrations that were applied."""

from __future__ import annotations

from pathlib import Path

from appliance.config import Settings
from appliance.db import migrate


def take(settings: Settings, config_path: Path | None) -> Path:
    """Back up the whole appliance (database, signing key, settings file); the archive's path."""
    from appliance.services.backups import operations

    return operations.create(settings, config_file=config_path).path


def put_back(settings: Settings, archive: Path, revision: str | None) -> list[str]:
    """Restore `archive` and leave the schema at `revision`, the one the old version runs on.

    A restore made by this version migrates an older archive forward to this version's schema; the old
    version needs its own, so those migrations are undone again (they only ran on the archive's rows).
    Returns the revisions undone."""
    from appliance.services.backups import operations

    restored = operations.restore(settings, archive)
    if not restored.migrated or revision is None:
        return []
    return migrate.downgrade(settings, revision)
