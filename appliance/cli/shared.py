"""What the command groups share: the options they spell the same way, the database of one command, the
tenant a command acts in, and how they print (tables, times, lines)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from appliance.db.session import Database
    from appliance.models import Tenant

#: Rows read per query when a verb pages through every tenant or member.
PAGE_SIZE = 500
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="The tenant, by slug or id.")]
EmailArg = Annotated[str, typer.Argument(help="The user's email address (their login).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextmanager
def open_database(ctx: typer.Context, *, owner: bool = False) -> Iterator[Database]:
    """The database for one command; ``owner`` connects as the schema owner (database.migrations_url).

    Every command that reaches the services opens its database here, so this is where the settings the
    services read are applied (the password hash's cost, for a command that sets a password)."""
    from appliance.db.session import Database
    from appliance.services.identity import passwords

    settings = ctx.obj.settings
    security = settings.security
    passwords.configure(security.password_hash_memory_kib, security.password_hash_passes)
    database = Database(settings, settings.migrations_url, bounded=False) if owner else Database(settings)
    try:
        yield database
    finally:
        database.dispose()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enter_tenant(session: Session, ref: str) -> Tenant:
    """The tenant named by ``ref``, with the session scoped to it (row-level security, the ORM filter)."""
    from appliance.db import tenancy
    from appliance.services.tenancy import tenants

    found = tenants.resolve(session, ref)
    tenancy.set_tenant(session, found.id)
    return found


def rfc3339_or_none(moment: dt.datetime | None) -> str | None:
    from appliance.services.audit.format import rfc3339

    return None if moment is None else rfc3339(moment)


def short_time(stamp: str | None) -> str:
    """``2024-05-01 12:00`` from an RFC 3339 stamp, for tables."""
    return "-" if stamp is None else stamp[:16].replace("T", " ")


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def echo_lines(lines: Sequence[str]) -> None:
    typer.echo("\n".join(lines))
