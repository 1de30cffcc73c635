"""`appliance user ...`: a tenant's users from the command line, without the API (see tenant_cli)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance.tenant_cli import (
    PAGE_SIZE,
    EmailArg,
    JsonOption,
    TenantOption,
    _database,
    _echo_lines,
    _enter,
    _now,
    _rfc3339,
    _short_time,
    _table,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from appliance.models import Membership, Tenant, User

user_app = typer.Typer(
    help="List a tenant's users, invite them, change their role, remove them (no API needed).",
    no_args_is_help=True,
)


# --------------------------------------------------------------------------- users


@user_app.command("list")
def list_users(ctx: typer.Context, tenant: TenantOption, as_json: JsonOption = False) -> None:
    """Print every user of a tenant: email, name, role, and when they joined (UTC)."""
    from appliance.services import memberships

    rows: list[dict[str, Any]] = []
    with _database(ctx) as database, database.session_scope(write=False) as session:
        found = _enter(session, tenant)
        cursor: str | None = None
        while True:
            page, cursor = memberships.list_page(session, role=None, limit=PAGE_SIZE, cursor=cursor)
            rows += [_member_json(membership, user) for membership, user in page]
            if cursor is None:
                break
        slug = found.slug
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"tenant {slug} has no users")
    else:
        typer.echo(
            _table(
                ("EMAIL", "NAME", "ROLE", "JOINED"),
                [[r["email"], r["display_name"], r["role"], _short_time(r["joined_at"])] for r in rows],
            )
        )


@user_app.command("invite")
def invite(
    ctx: typer.Context,
    email: EmailArg,
    tenant: TenantOption,
    role: Annotated[
        str, typer.Option("--role", help="viewer, member, admin, owner, or one of the tenant's custom roles.")
    ],
) -> None:
    """Make a user a member of a tenant with a role. An account is created when the email is new: its
    one-time password is printed (shown only this once; it must be changed at the first sign-in)."""
    from appliance.services import memberships
    from appliance.services.actors import cli_operator

    with _database(ctx) as database, database.session_scope() as session:
        found = _enter(session, tenant)
        invited = memberships.invite(session, cli_operator(), found.id, email=email, role=role)
        lines = [f"{invited.user.email} invited to {found.slug} as {invited.membership.role}"]
        if invited.one_time_password:
            lines.append(f"one-time password: {invited.one_time_password}")
            lines.append("it is shown only now; it must be changed at the first sign-in")
        else:
            lines.append("an existing account: they sign in with their own password")
    _echo_lines(lines)


@user_app.command("role")
def change_role(
    ctx: typer.Context,
    email: EmailArg,
    role: Annotated[str, typer.Argument(help="The new role (built-in or one of the tenant's custom roles).")],
    tenant: TenantOption,
) -> None:
    """Give a member of a tenant another role. Their sessions in that tenant end (their tokens carry the
    old role's permissions); they sign in again."""
    from appliance.services import memberships
    from appliance.services.actors import cli_operator

    with _database(ctx) as database, database.session_scope() as session:
        found = _enter(session, tenant)
        membership, user = _membership_by_email(session, found, email)
        before = membership.role
        _, ended = memberships.change_role(session, cli_operator(), membership.id, role, _now())
        line = f"{user.email} in {found.slug}: role {before} -> {role}; {_sessions(ended)} ended"
        if before == role:
            line = f"{user.email} in {found.slug}: role {role} already"
    typer.echo(line)


@user_app.command("remove")
def remove(ctx: typer.Context, email: EmailArg, tenant: TenantOption) -> None:
    """Remove a user from a tenant (their account and other tenants are kept); their sessions in that
    tenant end. A tenant's last owner cannot be removed."""
    from appliance.services import memberships
    from appliance.services.actors import cli_operator

    with _database(ctx) as database, database.session_scope() as session:
        found = _enter(session, tenant)
        membership, user = _membership_by_email(session, found, email)
        ended = memberships.remove(session, cli_operator(), membership.id, _now())
        line = f"{user.email} removed from {found.slug}; {_sessions(ended)} ended"
    typer.echo(line)


def _membership_by_email(session: Session, tenant: Tenant, email: str) -> tuple[Membership, User]:
    """The membership of the user with this email in the session's tenant."""
    # memberships has lookups by id only; this one query belongs there (memberships.by_email).
    from sqlalchemy import select

    from appliance.errors import NotFound
    from appliance.models import Membership, User
    from appliance.services.operators import normalize_email

    address = normalize_email(email)
    row = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).where(User.email == address)
    ).first()
    if row is None:
        raise NotFound(
            f"{address!r} is not a member of tenant {tenant.slug!r}",
            code="MEMBER_NOT_FOUND",
            details={"email": address, "tenant": tenant.slug},
        )
    return row[0], row[1]


def _member_json(membership: Membership, user: User) -> dict[str, Any]:
    return {
        "membership_id": str(membership.id),
        "user_id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "role": membership.role,
        "joined_at": _rfc3339(membership.created_at),
    }


def _sessions(ended: Sequence[object]) -> str:
    return f"{len(ended)} session{'s' if len(ended) != 1 else ''}"
