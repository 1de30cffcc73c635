"""`appliance reconfigure`: converge this host from its settings file by running the bundled playbooks
through Ansible (ansible-runner), each task shown as it runs, a summary of what changed at the end.

Safe to run again: a second run changes nothing. Ansible is imported only inside the command (the
production extra), so every other command stays fast and works without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.reconfigure.converge import (
    DEFAULT_CONFIG,
    PLAYBOOK,
    Run,
    bundled_playbooks,
    converge,
    parse_extra_vars,
)
from appliance.cli.reconfigure.progress import Display, Progress


def reconfigure(
    ctx: typer.Context,
    *,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Change nothing: show what would change (Ansible's check mode and diff)."
        ),
    ] = False,
    playbooks: Annotated[
        Path | None,
        typer.Option(
            help="The playbooks directory, with site.yml (default: the ones this package came with)."
        ),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(help="An Ansible inventory (default: this host, reached without SSH)."),
    ] = None,
    limit: Annotated[str | None, typer.Option(help="Only these hosts (an Ansible host pattern).")] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra-var", "-e", help="KEY=VALUE, a variable for the playbooks (repeatable)."),
    ] = None,
) -> None:
    """Converge this host from its settings file by running the bundled playbooks (safe to run again)."""
    from appliance.configfile import locate

    run = Run(
        playbooks=(playbooks or bundled_playbooks()).absolute(),
        config_file=(locate(ctx.obj.config) or DEFAULT_CONFIG).resolve(),
        inventory=inventory,
        limit=limit,
        check=check,
        extra_vars=parse_extra_vars(extra or []),
    )
    tty = sys.stdout.isatty()
    with Display(sys.stdout, tty=tty, color=not os.environ.get("NO_COLOR")) as display:
        progress = Progress(display, check=check)
        where = run.inventory or "this host"
        display.line(f"converging {where} with {run.playbooks / PLAYBOOK} (settings file {run.config_file})")
        if check:
            display.line("check mode: nothing will be changed")
        rc = converge(run, progress)
    typer.echo("\n".join(progress.summary()))
    problems = [failure.line() for failure in progress.failures]
    if rc != 0 and not problems:
        problems = progress.errors or [f"ansible-playbook exited with status {rc}"]
    if problems:
        for problem in problems:
            typer.echo(f"appliance: error: {problem}", err=True)
        raise typer.Exit(1)
    if check:
        typer.echo("check mode: nothing was changed")


def register(app: typer.Typer) -> None:
    app.command()(reconfigure)
