"""The `appliance` command: the composition root that builds Settings once and hands them down.

Heavy imports (FastAPI, SQLAlchemy, Huey) happen inside the commands that need them, so that
`appliance --help` answers at once. A user error prints one line and exits 1; it never shows a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance import __version__
from appliance.cli import admins as admin_cli
from appliance.cli import audit as audit_cli
from appliance.cli import backups as backup_cli
from appliance.cli import console as console_cli
from appliance.cli import doctor as doctor_cli
from appliance.cli import jobs as jobs_cli
from appliance.cli import programs as programs_cli
from appliance.cli import reconfigure as reconfigure_cli
from appliance.cli import tenants as tenant_cli
from appliance.cli import upgrade as upgrade_cli
from appliance.cli import users as user_cli
from appliance.cli.shared import open_database
from appliance.errors import ApplianceError

TRACEBACK_VAR = "APPLIANCE_TRACEBACK"

if TYPE_CHECKING:
    from appliance.config import Settings

app = typer.Typer(
    name="appliance",
    help="Forge Appliance: a self-hosted, multi-tenant platform core.\n\n"
    "Quick start: `appliance init`, `appliance migrate`, `appliance admin create --email you@example.com`, "
    "`appliance up`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Show or check the effective settings.", no_args_is_help=True)
admin_app = typer.Typer(help="Manage platform operator accounts.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(admin_app, name="admin")


class State:
    """Per-invocation state: the --config option and the Settings built from it on first use."""

    def __init__(self, config: Path | None):
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from appliance.configfile import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def config_path(self) -> Path | None:
        from appliance.configfile import locate

        return locate(self.config)


def _state(ctx: typer.Context) -> State:
    state: State = ctx.ensure_object(State) if ctx.obj is None else ctx.obj
    return state


def _echo(message: str) -> None:
    typer.echo(message)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file (default: $APPLIANCE_CONFIG, ./appliance.toml, "
            "~/.config/forge-appliance/appliance.toml, /etc/forge-appliance/appliance.toml).",
        ),
    ] = None,
) -> None:
    ctx.obj = State(config)


@app.command()
def version() -> None:
    """Print the appliance's version."""
    _echo(f"forge-appliance {__version__}")


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data directory, the token signing key and the backup key (owner-only). Safe to run
    again."""
    from appliance.keys import create_signing_key
    from appliance.services.backups import keys as backup_keys

    settings = _state(ctx).settings
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    for path in (settings.run_dir, settings.log_dir):
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
    created = create_signing_key(settings.secret_key_file)
    _echo(f"data directory: {settings.data_dir}")
    _echo(f"signing key: {settings.secret_key_file} ({'created' if created else 'kept'})")
    if backup_keys.create(settings.backup_key_file):
        key = backup_keys.load(settings.backup_key_file)
        _echo(f"backup key: {settings.backup_key_file} (created)")
        if sys.stdout.isatty():  # shown once to the admin at a terminal, never into a log or a pipe
            _echo(f"  {key.lines[0].splitlines()[-1]}")
            _echo("  store this key off this machine now: without it no backup can be read")
        else:
            _echo(
                "  store it off this machine: without it no backup can be read (`appliance backup key show`)"
            )
    else:
        _echo(f"backup key: {settings.backup_key_file} (kept)")


@app.command()
def migrate(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 when migrations are pending.")
    ] = False,
) -> None:
    """Bring the database schema up to date (idempotent)."""
    from appliance.db import migrate as migrations

    settings = _state(ctx).settings
    if check:
        waiting = migrations.pending(settings)
        if waiting:
            _echo(f"{len(waiting)} migration(s) pending: {', '.join(waiting)}")
            raise typer.Exit(1)
        _echo(f"the database is up to date (revision {migrations.head_revision()})")
        return
    applied = migrations.upgrade(settings)
    if applied:
        _echo(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        _echo(f"the database was already up to date (revision {migrations.head_revision()})")


@app.command()
def api(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: api.port).")] = None,
    fd: Annotated[int | None, typer.Option(help="Serve on this inherited listening socket instead.")] = None,
) -> None:
    """Run one API process in the foreground (the supervisor runs these for you)."""
    from appliance.cli.processes.serve import serve_api

    serve_api(_state(ctx).settings, host=host, port=port, fd=fd)


@app.command()
def worker(
    ctx: typer.Context,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Threads (default: queue.workers).")
    ] = None,
    periodic: Annotated[
        bool | None, typer.Option("--periodic/--no-periodic", help="Run the periodic scheduler here.")
    ] = None,
) -> None:
    """Run a Huey consumer in the foreground. SIGINT stops it gracefully (running tasks finish)."""
    from appliance.cli.processes.serve import serve_worker

    serve_worker(_state(ctx).settings, workers=workers, periodic=periodic)


@admin_app.command("create")
def admin_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="The operator's email address (their login).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    if_none: Annotated[
        bool,
        typer.Option("--if-none", help="Create it only if no operator exists yet (for install scripts)."),
    ] = False,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only", help="Read-only: it may read tenants, limits and audit logs, not change them."
        ),
    ] = False,
) -> None:
    """Create a platform operator account and print its one-time password."""
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        if if_none and operators.count(session) > 0:
            _echo("an operator account exists already; none created")
            return
        created = operators.create(session, email, name, read_only=read_only)
    _echo(f"{'read-only ' if read_only else ''}operator {created.user.email} created")
    _echo(f"one-time password: {created.one_time_password}")
    _echo("it is shown only now; it must be changed at the first login")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML-like text.")] = False,
) -> None:
    """Print the effective settings, secrets redacted."""
    from appliance.configfile import redacted, sources

    state = _state(ctx)
    data = redacted(state.settings)
    if as_json:
        _echo(json.dumps(data, indent=2))
        return
    for line in sources(state.config_path):
        _echo(f"# {line}")
    _echo(_as_toml(data))


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the settings (file and APPLIANCE_* variables) and the signing key; exit 1 with the reason
    when something is wrong. Says which sources are in force: the file and every variable (secrets masked),
    which wins over the file."""
    from appliance.configfile import sources
    from appliance.keys import signing_key

    state = _state(ctx)
    settings = state.settings
    signing_key(settings)
    _echo(f"ok: mode {settings.mode}")
    for line in sources(state.config_path):
        _echo(f"  {line}")


@app.command()
def supervise(
    ctx: typer.Context,
    *,
    services: Annotated[
        Path | None,
        typer.Option(help="Services file (default: supervisor.services_file, else the built-in one)."),
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="control.sock, supervisor.pid, state.json (default: the settings').")
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="supervisor.log and one <program>.log each (default: the settings').")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Only check the services file, then exit.")] = False,
    reload_config: Annotated[
        bool,
        typer.Option("--reload-config", help="Ask the running supervisor to re-read its services file."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not echo events to stderr.")] = False,
) -> None:
    """Run the supervisor in the foreground (what the systemd unit runs), with the API address, instance
    count, directories and services file from the settings."""
    from appliance.cli.processes.supervise import exec_supervisor

    state = _state(ctx)
    chosen = (("--check", check), ("--reload-config", reload_config), ("--quiet", quiet))
    flags = tuple(flag for flag, on in chosen if on)
    exec_supervisor(
        state.settings, state.config_path, services=services, run_dir=run_dir, log_dir=log_dir, flags=flags
    )


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the appliance in the background and return once it is ready."""
    from appliance.cli.processes.lifecycle import start

    url = start(_state(ctx).settings, _state(ctx).config_path, progress=_echo)
    _echo(f"the appliance is ready at {url}")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop every appliance process gracefully."""
    from appliance.cli.processes.lifecycle import stop

    _echo(stop(_state(ctx).settings))


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the supervised programs and whether the API is ready; exit 3 when not running."""
    from appliance.cli.processes.lifecycle import describe, status_table

    report = describe(_state(ctx).settings)
    if as_json:
        _echo(json.dumps(report, indent=2, default=str))
    else:
        _echo(status_table(report))
    if not report["running"]:
        raise typer.Exit(3)


programs_cli.register(app)
tenant_cli.register(app)
user_cli.register(app)
audit_cli.register(app)
backup_cli.register(app)
jobs_cli.register(app)
console_cli.register(app)
doctor_cli.register(app)
reconfigure_cli.register(app)
upgrade_cli.register(app)
admin_cli.register(admin_app)  # list, disable, enable, remove, reset-password, mfa reset


def _as_toml(data: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict) and v is not None]
    lines = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", _as_toml(value, f"{prefix}.{key}" if prefix else key)]
    return "\n".join(lines)


def run() -> None:
    """Entry point: run the Typer app, turning appliance errors into one line on stderr."""
    try:
        app()
    except ApplianceError as exc:
        typer.echo(f"appliance: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: one line, the traceback only on request
        if os.environ.get(TRACEBACK_VAR):
            raise
        hint = f"set {TRACEBACK_VAR}=1 for the traceback"
        typer.echo(f"appliance: internal error: {type(exc).__name__}: {exc} ({hint})", err=True)
        sys.exit(70)
