"""`appliance reconfigure`: converge this host from the admin's variables file
(/etc/forge-appliance/reconfigure.yml) by running the bundled playbooks through Ansible (ansible-runner),
each task shown as it runs, a summary of what changed at the end. The settings file (appliance.toml) is
rendered by the playbooks from those variables, at the path --config or APPLIANCE_CONFIG names. The package
installed is the one the variables name, else the checkout `install.sh --production` recorded beside the
settings file (source.yml), so that a plain `appliance reconfigure` converges that host again.

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
)
from appliance.cli.reconfigure.progress import Display, Progress
from appliance.cli.reconfigure.variables import (
    DEFAULT_VARS,
    converge_variables,
    load_vars_file,
    parse_extra_vars,
    recorded_source,
    refuse_config_var,
)


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
    vars_file: Annotated[
        Path | None,
        typer.Option(
            "--vars",
            help=f"The admin's variables file (YAML; default: {DEFAULT_VARS}, when it exists).",
        ),
    ] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra-var", "-e", help="KEY=VALUE, a variable for the playbooks (repeatable)."),
    ] = None,
) -> None:
    """Converge this host from its variables file by running the bundled playbooks (safe to run again)."""
    from appliance.configfile import CONFIG_ENV

    # Where the appliance role writes the settings file; it need not exist yet.
    named = ctx.obj.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    config_file = (named or DEFAULT_CONFIG).absolute()
    if vars_file is None and DEFAULT_VARS.is_file():
        vars_file = DEFAULT_VARS
    chosen = load_vars_file(vars_file.absolute()) if vars_file is not None else {}
    refuse_config_var(str(vars_file), chosen)
    pairs = parse_extra_vars(extra or [])
    refuse_config_var("-e", pairs)
    # This host's package: where install.sh installed it from, unless the admin names one.
    source = recorded_source(config_file, chosen, pairs) if inventory is None else None
    run = Run(
        playbooks=(playbooks or bundled_playbooks()).absolute(),
        config_file=config_file,
        inventory=inventory,
        limit=limit,
        check=check,
        variables=converge_variables(
            config_file, chosen, pairs, local=inventory is None, source=source[1] if source else None
        ),
    )
    tty = sys.stdout.isatty()
    with Display(sys.stdout, tty=tty, color=not os.environ.get("NO_COLOR")) as display:
        progress = Progress(display, check=check)
        where = run.inventory or "this host"
        display.line(f"converging {where} with {run.playbooks / PLAYBOOK} (settings file {run.config_file})")
        chosen_from = vars_file.absolute() if vars_file else f"none ({DEFAULT_VARS} does not exist)"
        display.line(f"variables file: {chosen_from}")
        if source is not None:
            for name, value in source[1].items():
                display.line(f"package: {name} {value} (recorded by install.sh in {source[0]})")
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
