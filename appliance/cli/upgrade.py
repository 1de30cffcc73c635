"""`appliance upgrade WHEEL|CHECKOUT`: the new version into a venv beside the one in use, checked, backed up,
migrated, switched to with a rolling restart and checked again; rolled back on any failure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from appliance.errors import ApplianceError, InvalidInput
from appliance.upgrade.layout import Layout

HELP = """Upgrade the appliance in place to the version in SOURCE (a forge-appliance wheel or checkout).

Installs SOURCE into a new venv beside the one in use (pip; --wheelhouse for a host without PyPI), then
that version checks before it changes anything (its settings, no required version skipped, the database and
Redis reachable, its migrations in order and safe to run beside the old processes, disk space for a
backup), backs the appliance up, migrates, points the venv path at the new venv and replaces the API and
worker processes one at a time (no request dropped), and checks that the new version serves. On any failure
it goes back: the old processes, the old venv, and the backup when the migrations changed the database;
it says why and what it undid, and exits 1. The previous venv is kept (the next rollback's target); older
ones are removed."""


def upgrade(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(
            metavar="WHEEL|CHECKOUT", help="A forge-appliance wheel (.whl) or a checkout (directory)."
        ),
    ],
    *,
    check: Annotated[
        bool, typer.Option("--check", help="Run the checks only (the new venv they need is removed after).")
    ] = False,
    allow_downtime: Annotated[
        bool,
        typer.Option(
            "--allow-downtime",
            help="When a pending migration contracts the schema (drops or renames what the running version "
            "uses), stop the appliance for the migrations and start the new version after: the API is DOWN "
            "meanwhile. Without it such an upgrade is refused while the appliance runs.",
        ),
    ] = False,
    wheelhouse: Annotated[
        Path | None,
        typer.Option("--wheelhouse", help="Install from this directory of wheels only (pip --no-index)."),
    ] = None,
    venv: Annotated[
        Path | None,
        typer.Option(
            "--venv",
            help="The venv path the appliance runs from (default: the one its running programs start from, "
            "else this command's).",
        ),
    ] = None,
    staged: Annotated[Path | None, typer.Option("--staged", hidden=True)] = None,
) -> None:
    if staged is None:
        layout = Layout(venv.absolute() if venv else _venv_in_use(ctx))
        flags = [flag for flag, on in (("--check", check), ("--allow-downtime", allow_downtime)) if on]
        _stage_and_hand_over(ctx, source, layout, wheelhouse, flags)
    if venv is None:
        raise InvalidInput("--staged needs --venv")
    from appliance.upgrade.steps import Request
    from appliance.upgrade.steps import upgrade as run_upgrade

    run_upgrade(
        Request(
            Layout(venv.absolute()),
            staged.absolute(),
            ctx.obj.config_path,
            lambda: ctx.obj.settings,
            typer.echo,
            check_only=check,
            allow_downtime=allow_downtime,
        )
    )


def _stage_and_hand_over(
    ctx: typer.Context, source: Path, layout: Layout, wheelhouse: Path | None, flags: list[str]
) -> NoReturn:
    """Install SOURCE beside the venv in use, then become that version's `appliance upgrade`."""
    from appliance.upgrade.stage import continuation, hand_over, inspect_source, stage

    found = inspect_source(source)
    typer.echo(f"==> upgrade to {found.version} from {found.path} (the venv in use: {layout.venv})")
    staged = stage(layout, found, wheelhouse, lambda line: typer.echo(f"  {line}"))
    hand_over(continuation(staged, found, layout, ctx.obj.config, flags))


def _venv_in_use(ctx: typer.Context) -> Path:
    """The venv the running programs start from; this command's own when nothing runs."""
    from appliance.upgrade.running import client_for, programs_venv

    try:
        run_dir: Path = ctx.obj.settings.run_dir
    except ApplianceError:  # settings this version rejects: the new one will say so in its preflight
        return Path(sys.prefix)
    return programs_venv(client_for(run_dir)) or Path(sys.prefix)


def register(app: typer.Typer) -> None:
    """Add `appliance upgrade`."""
    app.command("upgrade", help=HELP)(upgrade)
