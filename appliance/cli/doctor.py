"""`appliance doctor` and `appliance support-bundle`: every check an admin would make by hand, and a
bundle of what support asks for, secrets taken out (the work is done in appliance.doctor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.shared import JsonOption
from appliance.errors import ConfigError

TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1, help="Seconds each check may take before it counts as failed."),
]


def doctor(ctx: typer.Context, as_json: JsonOption = False, timeout: TimeoutOption = 15.0) -> None:
    """Check the appliance: settings, secret files, disk, database, migrations, row-level security, the app
    role, the clock, Redis, the queue, the supervisor's programs, the TLS certificate and the backups.

    Each check says ok, warn, fail or skip, with the value it found and, for warn and fail, how to fix it.
    Exits 1 when a check fails, 0 otherwise."""
    from appliance.doctor import report
    from appliance.doctor.finding import Context

    try:
        settings = ctx.obj.settings
        config_path = ctx.obj.config_path
    except ConfigError as exc:  # no settings, nothing else to check: still a report, in the same shape
        findings = report.config_failure(str(exc))
    else:
        findings = report.run(Context(settings, config_path, timeout=timeout))
    typer.echo(json.dumps(report.as_json(findings), indent=2) if as_json else report.table(findings))
    if report.overall(findings) == "fail":
        raise typer.Exit(1)


def support_bundle(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write, or a directory to write it in "
            "(default: forge-support-<host>-<time>.tar.gz in the current directory).",
        ),
    ] = None,
) -> None:
    """Write a .tar.gz (mode 0600) for a support ticket: the settings and versions, `appliance status`,
    the doctor's report, the last 2,000 lines of each log, the supervisor's events and the platform's
    last 200 audit records. Secret values (passwords, keys) are replaced by [redacted] everywhere."""
    from appliance.cli.processes.lifecycle import describe
    from appliance.doctor import bundle

    settings = ctx.obj.settings
    written = bundle.build(
        settings, output=output, config_path=ctx.obj.config_path, status=lambda: describe(settings)
    )
    typer.echo(f"support bundle written to {written.path} ({_size(written.size)})")
    for line in written.missing:
        typer.echo(f"  not collected: {line}", err=True)


def _size(count: int) -> str:
    return (
        f"{count} bytes"
        if count < 1024
        else f"{count / 1024:.1f} KiB"
        if count < 1 << 20
        else f"{count / (1 << 20):.1f} MiB"
    )


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.command("support-bundle")(support_bundle)
