"""`appliance user ...`: a tenant's users from the command line, without the API (see
appliance.cli.tenants)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance.cli.shared import (
    PAGE_SIZE,
    EmailArg,
    JsonOption,
    TenantOption,
    echo_lines,
    enter_tenant,
    open_database,
    render_table,
    rfc3339_or_none,
    short_time,
    utc_now,
)

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.orm import Session

    from appliance.models import Invitation, Membership, Tenant, User

user_app = typer.Typer(
    help="List a tenant's users, invite them, change their role, remove them (no API needed).",
    no_args_is_help=True,
)


# --------------------------------------------------------------------------- users


@user_app.command("list")
def list_users(ctx: typer.Context, tenant: TenantOption, as_json: JsonOption = False) -> None:
    """Print every user of a tenant and every invitation not answered yet: email, name, role, status
    (active, invited, expired), and when they joined or were invited (UTC)."""
    from appliance.services.tenancy import members

    rows: list[dict[str, Any]] = []
    now = utc_now()
    with open_database(ctx) as database, database.session_scope(write=False) as session:
        found = enter_tenant(session, tenant)
        cursor: str | None = None
        while True:
            page, cursor = members.page(
                session, role=None, status=None, limit=PAGE_SIZE, cursor=cursor, now=now
            )
            rows += [_entry_json(entry, now) for entry in page]
            if cursor is None:
                break
        slug = found.slug
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"tenant {slug} has no users")
    else:
        typer.echo(
            render_table(
                ("EMAIL", "NAME", "ROLE", "STATUS", "SINCE"),
                [
                    [
                        r["email"],
                        r.get("display_name") or "-",
                        r["role"],
                        r["status"],
                        short_time(r.get("joined_at") or r.get("invited_at")),
                    ]
                    for r in rows
                ],
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
    """Invite an address into a tenant with a role. Prints the invitation token (shown only this once):
    hand it to the person, who accepts it with POST /api/v1/invitations/accept (their address, the token,
    and their password, or the one they choose when they have no account yet). Nothing is granted until
    then; `appliance user remove` revokes it."""
    from datetime import timedelta

    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import invitations

    settings = ctx.obj.settings
    with open_database(ctx) as database, database.session_scope() as session:
        found = enter_tenant(session, tenant)
        issued = invitations.create(
            session,
            cli_operator(),
            found.id,
            email=email,
            role=role,
            now=utc_now(),
            ttl=timedelta(seconds=settings.security.invitation_ttl),
        )
        invitation = issued.invitation
        lines = [
            f"{invitation.email} invited to {found.slug} as {invitation.role} "
            f"(until {short_time(rfc3339_or_none(invitation.expires_at))} UTC)",
            f"invitation token: {issued.token}",
            "it is shown only now: hand it to the person, who accepts with POST /api/v1/invitations/accept",
            "(their address, the token, and their password, or the one they choose for a new account)",
        ]
    echo_lines(lines)


@user_app.command("role")
def change_role(
    ctx: typer.Context,
    email: EmailArg,
    role: Annotated[str, typer.Argument(help="The new role (built-in or one of the tenant's custom roles).")],
    tenant: TenantOption,
) -> None:
    """Give a member of a tenant another role. Their sessions in that tenant end (their tokens carry the
    old role's permissions); they sign in again."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import memberships

    with open_database(ctx) as database, database.session_scope() as session:
        found = enter_tenant(session, tenant)
        membership, user = _membership_by_email(session, found, email)
        before = membership.role
        _, ended = memberships.change_role(session, cli_operator(), membership.id, role, utc_now())
        line = f"{user.email} in {found.slug}: role {before} -> {role}; {_sessions(ended)} ended"
        if before == role:
            line = f"{user.email} in {found.slug}: role {role} already"
    typer.echo(line)


@user_app.command("remove")
def remove(ctx: typer.Context, email: EmailArg, tenant: TenantOption) -> None:
    """Remove a user from a tenant (their account and other tenants are kept); their sessions in that
    tenant end. A tenant's last owner cannot be removed. An address only invited has its invitation
    revoked."""
    from appliance.models import Invitation
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import members

    with open_database(ctx) as database, database.session_scope() as session:
        found = enter_tenant(session, tenant)
        entry = members.by_email(session, email, tenant_slug=found.slug)
        entry_id = entry.id if isinstance(entry, Invitation) else entry[0].id
        ended = members.remove(session, cli_operator(), entry_id, utc_now())
        if isinstance(entry, Invitation):
            line = f"invitation of {entry.email} to {found.slug} revoked"
        else:
            line = f"{entry[1].email} removed from {found.slug}; {_sessions(ended)} ended"
    typer.echo(line)


def _membership_by_email(session: Session, tenant: Tenant, email: str) -> tuple[Membership, User]:
    """The membership of the user with this email in the session's tenant."""
    # memberships has lookups by id only; this one query belongs there (memberships.by_email).
    from sqlalchemy import select

    from appliance.errors import NotFound
    from appliance.models import Membership, User
    from appliance.services.identity.emails import normalize_email

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


def _entry_json(entry: tuple[Membership, User] | Invitation, now: dt.datetime) -> dict[str, Any]:
    from appliance.models import Invitation
    from appliance.services.tenancy.members import status_of

    if isinstance(entry, Invitation):
        return {
            "invitation_id": str(entry.id),
            "status": status_of(entry, now),
            "email": entry.email,
            "role": entry.role,
            "invited_at": rfc3339_or_none(entry.created_at),
            "expires_at": rfc3339_or_none(entry.expires_at),
        }
    return _member_json(*entry)


def _member_json(membership: Membership, user: User) -> dict[str, Any]:
    return {
        "membership_id": str(membership.id),
        "status": "active",
        "user_id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "role": membership.role,
        "joined_at": rfc3339_or_none(membership.created_at),
    }


def _sessions(ended: Sequence[object]) -> str:
    return f"{len(ended)} session{'s' if len(ended) != 1 else ''}"


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
