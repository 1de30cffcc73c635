"""`appliance backup create|list|verify|restore` and `appliance backup key show|rotate`: encrypted archives of
the whole appliance, made while it serves, checked in a scratch database, and restored."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from appliance.cli.shared import JsonOption, render_table

if TYPE_CHECKING:
    from appliance.config import Settings

backup_app = typer.Typer(
    help="Encrypted backups of the whole appliance: create, list, verify, restore, and the backup key.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="Show or rotate the key archives are encrypted with.", no_args_is_help=True)
backup_app.add_typer(key_app, name="key")

ArchiveArg = Annotated[Path, typer.Argument(help="The archive (a forge-*.age file).")]
KeyFileOption = Annotated[
    Path | None,
    typer.Option("--key-file", help="The backup key to decrypt with (default: [backups] key_file)."),
]


class ProgressLine:
    """One line per step; on a terminal, the running step's percentage redrawn in place (at most 10 times
    a second)."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False):
        self.out = out or sys.stderr
        self.quiet = quiet
        self.tty = self.out.isatty()
        self.step: str | None = None
        self.drawn = 0.0

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if step != self.step:
            if self.step is not None and self.tty:
                self.out.write("\n")
            self.step = step
            if not self.tty:
                self.out.write(f"{step}...\n")
                self.out.flush()
        if self.tty and (time.monotonic() - self.drawn > 0.1 or done >= total):
            percent = 100 * done // total if total else 100
            self.out.write(f"\r{step}: {percent:3d}%")
            self.out.flush()
            self.drawn = time.monotonic()

    def close(self) -> None:
        if self.tty and self.step is not None and not self.quiet:
            self.out.write("\n")
            self.out.flush()


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj.settings
    return settings


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@backup_app.command("create")
def create(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only this tenant (slug or id): as `appliance tenant export`."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the archive's summary as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Back up the whole appliance (database, signing key, config file) into one archive encrypted with
    the backup key, in [backups] directory, or with --tenant one tenant's rows. The appliance keeps
    serving meanwhile."""
    from appliance.cli import tenant_moves
    from appliance.services.backups import catalog, operations

    progress = ProgressLine(quiet=quiet or as_json)
    try:
        if tenant is not None:
            summary = catalog.read_summary(tenant_moves.export_tenant(ctx, tenant, progress=progress).archive)
        else:
            summary = operations.create(_settings(ctx), config_file=ctx.obj.config_path, progress=progress)
    finally:
        progress.close()
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
        return
    rows = sum(summary.rows.values())
    typer.echo(
        f"backup written: {summary.path} ({_size(summary.size)}, {rows} rows in {len(summary.rows)} tables)"
    )
    typer.echo(f"sha256: {summary.sha256}")


@backup_app.command("list")
def list_archives(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The archives in [backups] directory, newest first (read from the plain summary beside each)."""
    from appliance.services.backups import catalog

    settings = _settings(ctx)
    found = catalog.listing(settings.backup_dir)
    if as_json:
        typer.echo(json.dumps([item.as_dict() for item in found]))
        return
    if not found:
        typer.echo(f"no backups in {settings.backup_dir}")
        return
    now = dt.datetime.now(dt.UTC)
    rows = [
        (
            item.name,
            item.kind
            + (f" {item.tenant}" if item.tenant else "")
            + (" (scheduled)" if item.scheduled else ""),
            _age(now - item.created_at),
            _size(item.size),
            item.appliance_version,
            item.schema_revision or "-",
        )
        for item in found
    ]
    typer.echo(render_table(("ARCHIVE", "KIND", "AGE", "SIZE", "VERSION", "SCHEMA"), rows))


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@backup_app.command("verify")
def verify(
    ctx: typer.Context,
    path: ArchiveArg,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decrypt the archive, check every part's checksum, restore it into a scratch database, compare
    every table's row count with the manifest, and verify the restored audit chains. Exit 1 on any
    problem. The appliance's own database is not touched."""
    from appliance.services.backups import operations

    progress = ProgressLine(quiet=as_json)
    try:
        result = operations.verify(_settings(ctx), path, key_file=key_file, progress=progress)
    finally:
        progress.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "archive": str(path),
                    "ok": result.ok,
                    "tables": result.tables,
                    "rows": result.rows,
                    "chains": result.chains,
                    "problems": result.chain_problems,
                }
            )
        )
    else:
        typer.echo(f"{path}: checksums ok, {result.rows} rows in {result.tables} tables match the manifest")
        if result.manifest.get("kind") == "tenant":
            typer.echo("one tenant's archive: its audit chain is verified when it is imported")
        elif result.ok:
            typer.echo(f"audit chains: {result.chains} verified, all intact")
        for problem in result.chain_problems:
            typer.echo(f"audit chain broken: {problem}")
    if not result.ok:
        raise typer.Exit(1)


@backup_app.command("restore")
def restore(
    ctx: typer.Context,
    path: ArchiveArg,
    key_file: KeyFileOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Bring the whole appliance back to the archive's state: its database (every change since is lost;
    the schema is migrated forward when the archive is older) and its signing key. A damaged archive, a
    wrong key or an archive of a newer version is refused before anything is changed."""
    from appliance.services.backups import operations

    settings = _settings(ctx)
    if not yes:
        typer.confirm(
            f"Replace every row of the appliance's database with the contents of {path.name}?", abort=True
        )
    progress = ProgressLine()
    try:
        result = operations.restore(settings, path, key_file=key_file, progress=progress)
    finally:
        progress.close()
    rows = sum(int(v) for v in result.manifest.get("rows", {}).values())
    typer.echo(f"restored {path} ({rows} rows, made {result.manifest.get('created_at')})")
    if result.migrated:
        typer.echo(f"migrated forward: {', '.join(result.migrated)}")
    if result.signing_key_replaced:
        typer.echo(
            "the signing key is the archive's: running processes need `appliance reload`; sign in again"
        )
    if result.config_copy is not None:
        typer.echo(
            f"the archive's config file is at {result.config_copy} (not applied: compare and merge by hand)"
        )


@key_app.command("show")
def key_show(ctx: typer.Context) -> None:
    """Print the backup key (the age identities, current first). Store it off this machine: without it no
    archive can be read."""
    from appliance.services.backups import keys

    path = _settings(ctx).backup_key_file
    key = keys.load(path)
    typer.echo(
        f"# {path}: anyone holding this can read every backup; keep it safe and off this machine", err=True
    )
    typer.echo(path.read_text().rstrip())
    typer.echo(f"# public key (encrypts new archives): {key.public}", err=True)


@key_app.command("rotate")
def key_rotate(ctx: typer.Context) -> None:
    """Make a new backup key for new archives; the previous ones stay in the file to read older archives."""
    from appliance.services.backups import keys

    path = _settings(ctx).backup_key_file
    key = keys.rotate(path)
    typer.echo(f"new backup key in {path}: public key {key.public}")
    typer.echo(f"{len(key.identities) - 1} older key(s) kept for reading older archives")
    typer.echo("store the new key off this machine now: `appliance backup key show`")


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
