"""`appliance console`: compose the target (this machine's appliance from the settings, or a named one from
the targets file) and run the Textual console on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.client.credentials import CredentialsError
from appliance.client.targets import LOCAL, Target, TargetError, choose, default_targets_file
from appliance.errors import InvalidInput

VIEWS = ("dashboard", "tenants", "services", "logs", "health", "audit", "backups")


def console(
    ctx: typer.Context,
    *,
    target: Annotated[
        str,
        typer.Option(
            "--target", "-t", help="A target of the targets file; 'local' is this machine's appliance."
        ),
    ] = LOCAL,
    targets_file: Annotated[
        Path | None,
        typer.Option(
            "--targets-file",
            help="Where the targets are named (default ~/.config/forge-appliance/targets.toml).",
        ),
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Show everything, change nothing.")] = False,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh", min=0.5, max=60.0, help="Seconds between polls of the API and the supervisor."
        ),
    ] = 2.0,
    view: Annotated[str, typer.Option("--view", help=f"The first view: {', '.join(VIEWS)}.")] = "dashboard",
) -> None:
    """The operations console: tenants, services, health, logs, the audit trail and backups, in the terminal.

    Keys: 1-7 switch views, / filters, ctrl+p lists every action, ? shows every key, q quits. The sign-in
    is kept in ~/.config/forge-appliance/credentials.json (readable by you only).
    """
    if view not in VIEWS:
        raise InvalidInput(f"unknown view {view!r} (views: {', '.join(VIEWS)})")
    local: Target | None = None
    if target == LOCAL:
        settings = ctx.obj.settings
        local = Target(LOCAL, settings.api_url, settings.run_dir / "control.sock")
    try:
        chosen = choose(
            target, local or Target(LOCAL, "http://127.0.0.1"), targets_file or default_targets_file()
        )
    except TargetError as exc:
        raise InvalidInput(str(exc)) from exc
    from console.main import run

    try:
        run(chosen, read_only=read_only, refresh=refresh, view=view)
    except CredentialsError as exc:
        raise InvalidInput(str(exc)) from exc


def register(app: typer.Typer) -> None:
    app.command()(console)
