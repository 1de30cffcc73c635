"""What `appliance tenant export|import` and `appliance backup create --tenant` share: one tenant written to
an archive of the backup directory, the progress line while rows move, and the lines that say what moved."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from appliance.cli.shared import open_database, render_table, utc_now

if TYPE_CHECKING:
    from appliance.services.backups.tenant_archive import Exported

Progress = Callable[[str, int, int], None]


def export_tenant(
    ctx: typer.Context, ref: str, *, progress: Progress | None, output: Path | None = None
) -> Exported:
    """Write the tenant `ref` (slug or id) to an archive encrypted to the backup key, as the command-line
    operator, connected as the schema owner: `output`, or a new archive in the backup directory."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.backups import keys, tenant_archive

    settings = ctx.obj.settings
    key = keys.load(settings.backup_key_file)
    with open_database(ctx, owner=True) as database:
        return tenant_archive.export(
            database,
            ref,
            directory=settings.backup_dir,
            recipient=key.recipient,
            actor=cli_operator(),
            now=utc_now(),
            target=output,
            progress=progress,
        )


@contextmanager
def progress_line(verb: str) -> Iterator[Progress | None]:
    """A progress line on a terminal (stderr), redrawn at most ten times a second; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    shown = [0.0]
    units = {"rows": "rows", "archive": "bytes of the archive"}

    def show(step: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] < 0.1 and done < total:
            return
        shown[0] = now
        share = f" ({100 * done // total}%)" if total else ""
        line = f"{verb}: {done:,} of {total:,} {units.get(step, step)}{share}"
        sys.stderr.write(f"\r{line:<72}")
        sys.stderr.flush()

    try:
        yield show
    finally:
        sys.stderr.write("\n")


def rows_lines(rows: dict[str, int], left_out: dict[str, int]) -> list[str]:
    """The rows moved per table, with those left out or already here."""

    def note(table: str) -> str:
        if not left_out.get(table):
            return ""
        # Accounts (and their factors and codes) that are here already are kept as they are.
        why = "already here" if table in ("users", "mfa_factors", "recovery_codes") else "left out"
        return f"{left_out[table]:,} {why}"

    cells = [
        [table, f"{count:,}", note(table)] for table, count in rows.items() if count or left_out.get(table)
    ]
    return [f"{sum(rows.values()):,} rows:", render_table(("TABLE", "ROWS", ""), cells)]


def not_moved_lines() -> list[str]:
    """What a tenant archive never carries, and why."""
    from appliance.services.backups.tenant_rows import NOT_MOVED

    return ["not moved:", *(f"  {table}: {why}" for table, why in NOT_MOVED.items())]
