"""`appliance admin list|disable|enable|remove|reset-password|mfa reset`: platform operators managed from the
command line, without the API (`appliance admin create` is in appliance.cli.main). Each verb calls one service
(appliance.services.tenancy.operators) as the command line's operator, so the platform's audit trail names the
OS user and host that ran it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance.cli.shared import (
    PAGE_SIZE,
    JsonOption,
    echo_lines,
    open_database,
    render_table,
    rfc3339_or_none,
    short_time,
    utc_now,
)

if TYPE_CHECKING:
    from appliance.services.tenancy.operators import Operator

OperatorEmail = Annotated[
    str, typer.Argument(metavar="EMAIL", help="The operator's email address (their login).")
]

mfa_app = typer.Typer(help="Two-factor authentication of operators.", no_args_is_help=True)


def list_operators(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print every operator: email, name, permissions (full or read-only), two-factor on or off, whether
    disabled, last sign-in and creation time (UTC)."""
    from appliance.services.tenancy import operators

    rows: list[dict[str, Any]] = []
    with open_database(ctx) as database, database.session_scope(write=False) as session:
        cursor: str | None = None
        while True:
            page, cursor = operators.list_page(session, limit=PAGE_SIZE, cursor=cursor)
            rows += [_operator_json(operator) for operator in page]
            if cursor is None:
                break
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("no operators: create one with `appliance admin create --email ...`")
    else:
        header = ("EMAIL", "NAME", "PERMISSIONS", "MFA", "STATUS", "LAST SIGN-IN", "CREATED")
        cells = [
            [
                r["email"],
                r["display_name"],
                "read-only" if r["read_only"] else "full",
                "on" if r["mfa_enabled"] else "off",
                "disabled" if r["disabled"] else "active",
                short_time(r["last_login_at"]),
                short_time(r["created_at"]),
            ]
            for r in rows
        ]
        typer.echo(render_table(header, cells))


def disable(ctx: typer.Context, email: OperatorEmail) -> None:
    """Disable an operator: they sign in nowhere, and their sessions end (running API processes refuse
    their tokens within seconds). The last active operator with full permissions cannot be disabled.
    Undo with `enable`."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        found = operators.find(session, email)
        ended = operators.disable(session, cli_operator(), found.user.id, utc_now())
        line = f"operator {found.user.email} disabled; {_sessions(len(ended.sessions_ended))} ended"
    typer.echo(line)


def enable(ctx: typer.Context, email: OperatorEmail) -> None:
    """Let a disabled operator sign in again, with the password they had."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        found = operators.find(session, email)
        operators.enable(session, cli_operator(), found.user.id)
        line = f"operator {found.user.email} enabled"
    typer.echo(line)


def remove(ctx: typer.Context, email: OperatorEmail) -> None:
    """Remove an operator: their sessions end and the account is no operator any more. Its record stays,
    so the audit trail still names them (an account that belongs to no tenant keeps no password); the
    last active operator with full permissions cannot be removed. `appliance admin create` with the same
    address makes them an operator again."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        found = operators.find(session, email)
        ended = operators.remove(session, cli_operator(), found.user.id, utc_now())
        line = f"operator {found.user.email} removed; {_sessions(len(ended.sessions_ended))} ended"
    typer.echo(line)


def reset_password(ctx: typer.Context, email: OperatorEmail) -> None:
    """Give an operator a new one-time password and print it (shown only this once; it must be changed at
    the next sign-in). Their sessions end."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        found = operators.find(session, email)
        reset = operators.reset_password(session, cli_operator(), found.user.id, utc_now())
        lines = [
            f"operator {found.user.email}: password reset; {_sessions(len(reset.sessions_ended))} ended",
            f"one-time password: {reset.one_time_password}",
            "it is shown only now; it must be changed at the next sign-in",
        ]
    echo_lines(lines)  # only once committed: a password printed for a rolled-back change is useless


@mfa_app.command("reset")
def mfa_reset(ctx: typer.Context, email: OperatorEmail) -> None:
    """Turn an operator's two-factor authentication off (a lost device): they sign in with their password
    alone and may enrol again."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import operators

    with open_database(ctx) as database, database.session_scope() as session:
        found = operators.find(session, email)
        operators.reset_mfa(session, cli_operator(), found.user.id)
        line = f"operator {found.user.email}: two-factor authentication is off; they may enrol again"
    typer.echo(line)


def _operator_json(operator: Operator) -> dict[str, Any]:
    user = operator.user
    return {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "read_only": user.operator_read_only,
        "permissions": sorted(operator.permissions),
        "mfa_enabled": operator.mfa,
        "disabled": operator.disabled,
        "must_change_password": user.must_change_password,
        "last_login_at": rfc3339_or_none(user.last_login_at),
        "created_at": rfc3339_or_none(user.created_at),
    }


def _sessions(count: int) -> str:
    return f"{count} session{'s' if count != 1 else ''}"


def register(admin_app: typer.Typer) -> None:
    """Add the verbs to `appliance admin` (made in appliance.cli.main, next to `admin create`)."""
    admin_app.command("list")(list_operators)
    admin_app.command("disable")(disable)
    admin_app.command("enable")(enable)
    admin_app.command("remove")(remove)
    admin_app.command("reset-password")(reset_password)
    admin_app.add_typer(mfa_app, name="mfa")
