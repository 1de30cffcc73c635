"""Undoing a failed upgrade from its journal: the new version's processes replaced by the old version's
again, the stable venv path pointed back, the database put back when the migrations changed it, the new
venv removed. Each undo says what it did; one that fails is reported and the others still run.

The database is put back only when its schema changed. A failed migration run changes nothing (they all run
in one transaction, which the failure rolls back, on PostgreSQL and SQLite alike), and restoring the backup
then would only throw away what users wrote since it was made. After migrations that succeeded (a restart or
a health check failed later), the backup is restored and the schema taken back to the old version's.
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.errors import ApplianceError
from appliance.upgrade import backup, schema
from appliance.upgrade.journal import Context, Journal
from appliance.upgrade.layout import remove_venv
from appliance.upgrade.running import client_for, roll, wait_serving

SERVING_TIMEOUT_S = 60.0


def rollback(ctx: Context, journal: Journal) -> list[str]:
    """Undo what `journal` records, newest first; return the problems met (empty: all undone)."""
    problems: list[str] = []

    def undo(what: str, action: Callable[[], str]) -> None:
        try:
            ctx.echo(f"      {action()}")
        except (ApplianceError, OSError) as exc:
            problems.append(f"{what}: {exc}")
            ctx.echo(f"      FAILED to undo {what}: {exc}")

    if journal.started:
        undo("the start of the new version", lambda: _run(ctx, "down", "the new version stopped"))
    if journal.switched:
        undo("the venv switch", lambda: _switch_back(ctx, journal))
    if journal.rolled and not journal.started:
        undo("the restart", lambda: _roll_back(journal))
    if journal.fingerprint:
        undo("the migrations", lambda: _database(journal))
    if journal.stopped:
        undo("the stop", lambda: _run(ctx, "up", f"{journal.old_version} started again"))
    undo("the new venv", lambda: _removed(ctx))
    if journal.running is not None and not problems:
        undo("serving", lambda: _serving(journal))
    return problems


def _run(ctx: Context, command: str, line: str) -> str:
    ctx.run(command, what=f"appliance {command}")
    return line


def _roll_back(journal: Journal) -> str:
    running = journal.running.programs if journal.running else {}
    names = [name for name in journal.rolled if name in running] or journal.rolled
    roll(client_for(journal.settings.run_dir), names, reread=journal.reshaped)
    return f"{', '.join(names)}: processes of {journal.old_version} again, replaced one at a time"


def _serving(journal: Journal) -> str:
    wait_serving(journal.settings.api_url, journal.old_version, SERVING_TIMEOUT_S)
    return f"the API serves {journal.old_version} again"


def _switch_back(ctx: Context, journal: Journal) -> str:
    ctx.layout.switch(journal.previous)
    return f"{ctx.layout.venv} leads to {journal.previous} again"


def _removed(ctx: Context) -> str:
    remove_venv(ctx.staged)
    return f"the new venv {ctx.staged} removed"


def _database(journal: Journal) -> str:
    settings = journal.settings
    if schema.fingerprint(settings) == journal.fingerprint:
        return "database: left as it was (the failed migrations changed nothing); the backup was not needed"
    if journal.backup is None:
        raise ApplianceError("the schema changed and there is no backup to restore")
    undone = backup.put_back(settings, journal.backup, journal.revision)
    back = f", schema back at {journal.revision} (undone: {', '.join(undone)})" if undone else ""
    return f"database restored from {journal.backup} (what was written after it is not in it){back}"
