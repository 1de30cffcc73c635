"""The database side of an upgrade: which migrations are pending and whether old code can run beside them
(their `phase`), and a fingerprint that tells whether a failed attempt changed the schema at all.

Every migration module declares `phase = "expand"` (it only adds: tables, nullable or defaulted columns,
indexes, data the old code ignores; the old version keeps working on the migrated schema) or
`phase = "contract"` (it drops, renames or restricts something the old version still uses). Expanding
migrations run while the old processes serve; a contracting one only once none runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from appliance.config import Settings
from appliance.db.engine import build_engine
from appliance.db.migrate import MIGRATIONS_DIR
from appliance.db.session import driver_reason
from appliance.errors import OperationFailed, Unavailable

PHASES = ("expand", "contract")


@dataclass(frozen=True)
class Migration:
    """A pending migration: its revision, its declared phase (None: none or an unknown word), its title."""

    revision: str
    phase: str | None
    title: str

    def __str__(self) -> str:
        return f"{self.revision} ({self.phase or 'no phase declared'})"


def scripts(location: Path = MIGRATIONS_DIR) -> ScriptDirectory:
    """The migrations of this version (or of another directory laid out the same way)."""
    return ScriptDirectory(str(location))


def declared_phase(script: ScriptDirectory, revision: str) -> str | None:
    """The `phase` a migration module declares, None when it declares none it may (expand, contract)."""
    found = script.get_revision(revision)
    value = getattr(found.module, "phase", None) if found is not None else None
    return value if value in PHASES else None


def pending(script: ScriptDirectory, current: str | None) -> list[Migration]:
    """The migrations from `current` to the head, oldest first; OperationFailed when the database's revision
    is not in this version's history or the history has more than one head."""
    heads = script.get_heads()
    if len(heads) != 1:
        raise OperationFailed(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}): not in one order"
        )
    known = {r.revision for r in script.walk_revisions()}
    if current is not None and current not in known:
        raise OperationFailed(
            f"the database is at revision {current}, which this version does not know "
            "(a newer version's, or another branch's): it cannot be migrated from here"
        )
    try:
        found = list(reversed(list(script.iterate_revisions(heads[0], current))))
    except CommandError as exc:
        raise OperationFailed(f"the migrations are not in one order: {exc}") from exc
    return [
        Migration(r.revision, declared_phase(script, r.revision), (r.doc or "").split("\n")[0]) for r in found
    ]


def revision(settings: Settings) -> str | None:
    """The revision the database is at; Unavailable when it cannot be reached."""
    return _read(settings)[0]


def fingerprint(settings: Settings) -> str:
    """A digest of the schema as the database has it (revision, tables, columns, indexes): equal before and
    after a failed migration when the failure left nothing behind."""
    return _read(settings)[1]


def _read(settings: Settings) -> tuple[str | None, str]:
    engine = build_engine(settings, settings.migrations_url, bounded=False)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            found = inspect(conn)
            digest = hashlib.sha256(f"revision {current}\n".encode())
            for table in sorted(found.get_table_names()):
                columns = [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)]
                indexes = sorted(str(i["name"]) for i in found.get_indexes(table))
                digest.update(f"{table} {columns} {indexes}\n".encode())
            return current, digest.hexdigest()
    except DBAPIError as exc:
        raise Unavailable(f"cannot reach the database: {driver_reason(exc)}") from exc
    finally:
        engine.dispose()
