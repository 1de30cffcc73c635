"""`appliance tenant ...`: platform operators manage tenants from the command line, without the API
(their users: appliance.cli.users). Each verb calls one service as the
command-line operator (``cli_operator()``), so the audit log records what was done here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
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
    from appliance.models import Tenant


tenant_app = typer.Typer(
    help="Create, list, suspend, resume, delete, purge, export and import tenants (talks to the database; "
    "no API needed).",
    no_args_is_help=True,
)

TenantArg = Annotated[str, typer.Argument(metavar="SLUG_OR_ID", help="The tenant, by slug or id.")]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when stdin is not a terminal)."),
]
PLANS = "free, team, business or enterprise"


# --------------------------------------------------------------------------- tenants


@tenant_app.command("create")
def create(
    ctx: typer.Context,
    slug: Annotated[
        str, typer.Argument(help="Short name used in URLs: lower-case letters, digits and '-' (1 to 63).")
    ],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    plan: Annotated[str, typer.Option("--plan", help=f"Plan tier: {PLANS}; rate limits follow it.")] = "free",
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Email of the tenant's owner; the account is created when it is new."),
    ] = None,
) -> None:
    """Create an active tenant and print its id.

    With --owner, that user becomes the tenant's owner; when the account is created now, its one-time
    password is printed (shown only this once; it must be changed at the first sign-in)."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope() as session:
        new = tenants.create(session, cli_operator(), slug=slug, name=name, plan=plan, owner_email=owner)
        lines = [f"tenant {new.tenant.slug} created", f"id: {new.tenant.id}"]
        if new.owner is not None:
            account = "new account" if new.owner.one_time_password else "existing account"
            lines.append(f"owner: {new.owner.user.email} ({account})")
            if new.owner.one_time_password:
                lines.append(f"one-time password: {new.owner.one_time_password}")
                lines.append("it is shown only now; it must be changed at the first sign-in")
    echo_lines(lines)  # only once committed: a password printed for a rolled-back account is useless


@tenant_app.command("list")
def list_tenants(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only tenants in this state: active, suspended or deleted.")
    ] = None,
    plan: Annotated[str | None, typer.Option("--plan", help=f"Only tenants on this plan: {PLANS}.")] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Only tenants whose slug or name contains this (any case)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print every tenant (all of them, by slug): slug, name, plan, status and creation time (UTC)."""
    from appliance.services.tenancy import tenants

    rows: list[dict[str, Any]] = []
    with open_database(ctx) as database, database.session_scope(write=False) as session:
        cursor: str | None = None
        while True:
            page, cursor = tenants.list_page(
                session, status=status, plan=plan, search=search, limit=PAGE_SIZE, cursor=cursor
            )
            rows += [_tenant_json(tenant) for tenant in page]
            session.expunge_all()  # 10,000 tenants: keep one page of objects, not all of them
            if cursor is None:
                break
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("no tenants")
    else:
        cells = [[r["slug"], r["name"], r["plan"], r["status"], short_time(r["created_at"])] for r in rows]
        typer.echo(render_table(("SLUG", "NAME", "PLAN", "STATUS", "CREATED"), cells))


@tenant_app.command("show")
def show(ctx: typer.Context, tenant: TenantArg, as_json: JsonOption = False) -> None:
    """Print one tenant: its state, dates, and how many users, organizations, projects and API keys it
    holds."""
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope(write=False) as session:
        found = tenants.resolve(session, tenant)
        data = _tenant_json(found) | {"counts": tenants.counts(session, found.id).__dict__}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    labels = {
        "id": "id",
        "slug": "slug",
        "name": "name",
        "plan": "plan",
        "status": "status",
        "created_at": "created",
        "updated_at": "updated",
        "deleted_at": "deleted",
        "purge_after": "purge after",
    }
    lines = [f"{label + ':':<13}{data[key]}" for key, label in labels.items() if data[key] is not None]
    counts = data["counts"]
    lines.append(
        f"{'holds:':<13}{counts['users']} users, {counts['organizations']} organizations, "
        f"{counts['projects']} projects, {counts['api_keys']} API keys"
    )
    echo_lines(lines)


@tenant_app.command("suspend")
def suspend(ctx: typer.Context, tenant: TenantArg) -> None:
    """Stop all access to a tenant (billing, abuse); nothing is removed. Its tokens and API keys are
    refused with TENANT_SUSPENDED (running API processes notice within seconds). Undo with `resume`."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope() as session:
        found = tenants.resolve(session, tenant)
        tenants.suspend(session, cli_operator(), found.id, utc_now())
        slug = found.slug
    typer.echo(f"tenant {slug} suspended")


@tenant_app.command("resume")
def resume(ctx: typer.Context, tenant: TenantArg) -> None:
    """Lift a suspension, or restore a deleted tenant before it is purged."""
    from appliance.models import TenantStatus
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope() as session:
        found = tenants.resolve(session, tenant)
        verb = "restored" if found.status is TenantStatus.DELETED else "resumed"
        tenants.resume(session, cli_operator(), found.id, utc_now())
        slug = found.slug
    typer.echo(f"tenant {slug} {verb}")


@tenant_app.command("delete")
def delete(ctx: typer.Context, tenant: TenantArg, yes: YesOption = False) -> None:
    """Delete a tenant: access stops at once, its data is purged for good after the grace period (30 days)
    unless it is restored with `appliance tenant resume` before that.

    Without --yes, asks for the tenant's slug to be typed to confirm; when stdin is not a terminal
    (a script), --yes is required."""
    from appliance.models import DEFAULT_PURGE_GRACE
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database:
        if not yes:
            with database.session_scope(write=False) as session:
                slug = tenants.resolve(session, tenant).slug
            # Asked outside any transaction: no lock is held while the operator types.
            _confirm_by_typing(
                slug,
                f"Deleting tenant {slug!r} stops all access to it now and removes its data for good after "
                f"{DEFAULT_PURGE_GRACE.days} days.",
            )
        with database.session_scope() as session:
            found = tenants.resolve(session, tenant)
            deleted = tenants.delete_tenant(session, cli_operator(), found.id, utc_now())
            slug, purge_after = deleted.slug, deleted.purge_after
    assert purge_after is not None  # set by every move to DELETED
    typer.echo(
        f"tenant {slug} deleted; its data will be purged after "
        f"{short_time(rfc3339_or_none(purge_after))} UTC "
        f"(`appliance tenant resume {slug}` restores it until then)"
    )


@tenant_app.command("plan")
def change_plan(
    ctx: typer.Context,
    tenant: TenantArg,
    plan: Annotated[str, typer.Argument(help=f"The new plan: {PLANS}.")],
) -> None:
    """Move a tenant to another plan; its rate limits follow the plan."""
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope() as session:
        found = tenants.resolve(session, tenant)
        before = found.plan.value
        after = tenants.change(session, cli_operator(), found.id, name=None, plan=plan).plan.value
        slug = found.slug
    typer.echo(
        f"tenant {slug}: plan {before} -> {after}" if after != before else f"tenant {slug}: plan {after}"
    )


@tenant_app.command("purge")
def purge(ctx: typer.Context, yes: YesOption = False) -> None:
    """Remove for good the deleted tenants whose grace period has passed, with their memberships,
    organizations, projects, API keys and audit records (the platform's own audit chain keeps its
    record of the purge). The worker does this every day as well.

    Connects as the schema owner (database.migrations_url), not as the app role: the app role may only
    read and append to the audit log, and a purge is the one time a tenant's audit records are removed.

    Without --yes, lists the tenants due and asks before removing them; when stdin is not a terminal,
    --yes is required."""
    from appliance.models import TenantStatus
    from appliance.services.access.actors import cli_operator
    from appliance.services.tenancy import tenants

    now = utc_now()
    with open_database(ctx, owner=True) as database:
        due: list[str] = []
        with database.session_scope(write=False) as session:
            cursor: str | None = None
            while True:
                page, cursor = tenants.list_page(
                    session, status=TenantStatus.DELETED.value, limit=PAGE_SIZE, cursor=cursor
                )
                due += [t.slug for t in page if t.purge_after is not None and t.purge_after <= now]
                if cursor is None:
                    break
        if not due:
            typer.echo("no deleted tenant is past its grace period; nothing purged")
            return
        if not yes:
            _confirm(f"Remove these {len(due)} tenant(s) and all their data for good: {', '.join(due)}?")
        with database.session_scope() as session:
            purged = tenants.purge_due(session, now, cli_operator())
    typer.echo(f"purged {len(purged)} tenant(s): {', '.join(purged)}" if purged else "nothing purged")


@tenant_app.command("export")
def export(
    ctx: typer.Context,
    tenant: TenantArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the archive here (default: a new one in the backup directory)."
        ),
    ] = None,
) -> None:
    """Write one tenant to an encrypted archive: its tenant row, every row it owns (its audit chain
    included) and its members' accounts, read in one consistent snapshot. Prints the archive's path, the
    rows of each table, and what is not moved (sessions, idempotency keys, the jobs ledger).

    The archive is encrypted to the backup key (backups.key_file); `appliance tenant import` on this or
    another appliance brings it back. Connects as the schema owner (database.migrations_url)."""
    from appliance.cli import tenant_moves
    from appliance.errors import InvalidInput

    if output is not None and (output.exists() or not output.parent.is_dir()):
        why = "exists already" if output.exists() else "is in no directory that exists"
        raise InvalidInput(f"--output {output} {why}: name a new file", details={"output": str(output)})
    with tenant_moves.progress_line("exporting") as progress:
        done = tenant_moves.export_tenant(ctx, tenant, progress=progress, output=output)
    lines = [f"tenant {done.slug} ({done.tenant_id}) exported to {done.archive}", f"sha256: {done.sha256}"]
    lines += tenant_moves.rows_lines(done.rows, {})
    echo_lines(lines + tenant_moves.not_moved_lines())


@tenant_app.command("import")
def import_tenant(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="An archive made by `appliance tenant export`.")
    ],
    as_slug: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="NEW_SLUG",
            help="Import under this slug; a copy beside the original (new ids) when the original is here.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The backup key that opens the archive (another appliance's key)."),
    ] = None,
) -> None:
    """Bring back a tenant from an archive, in one transaction, without touching other tenants.

    Refused, with nothing changed, when the slug is in use or the tenant is already here (delete it, or
    use --as NEW_SLUG for a copy with new ids), or when the archive was made at another schema revision.
    Members whose account is here (same id, or same e-mail) keep it; others' accounts come with their
    passwords. The tenant's audit chain is verified before the import is committed, and records it."""
    from appliance.cli import tenant_moves
    from appliance.services.access.actors import cli_operator
    from appliance.services.backups import keys, tenant_archive

    settings = ctx.obj.settings
    key = keys.load(key_file or settings.backup_key_file)
    with open_database(ctx, owner=True) as database, tenant_moves.progress_line("importing") as progress:
        done = tenant_archive.import_archive(
            database,
            file,
            list(key.identities),
            scratch=settings.backup_dir,
            actor=cli_operator(),
            new_slug=as_slug,
            progress=progress,
        )
    how = f"a copy of {done.source_slug} with new ids" if done.copy else "as it was exported"
    lines = [f"tenant {done.slug} ({done.tenant_id}) imported from {file}, {how}"]
    lines += tenant_moves.rows_lines(done.rows, done.left_out)
    lines.append(
        f"accounts: {done.new_accounts} new, {done.accounts_matched_by_email} already here under the same "
        "e-mail (their memberships use them)"
    )
    if done.left_out.get("api_keys"):
        lines.append("API keys were not copied: a key authenticates one tenant; make new ones in the copy")
    if done.left_out.get("invitations"):
        lines.append("open invitations were not copied: their tokens answer for the original; invite again")
    if done.copy:
        lines.append("heartbeat apps have new heartbeat URLs (the old ones name the original tenant)")
    echo_lines(lines + tenant_moves.not_moved_lines())


# --------------------------------------------------------------------------- confirmation and output


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _require_terminal(what: str) -> None:
    from appliance.errors import InvalidInput

    if not _interactive():
        raise InvalidInput(
            f"{what} needs confirmation and stdin is not a terminal: pass --yes",
            code="CONFIRMATION_REQUIRED",
        )


def _confirm_by_typing(slug: str, warning: str) -> None:
    from appliance.errors import OperationFailed

    _require_terminal(f"deleting tenant {slug!r}")
    typer.echo(warning)
    typed = typer.prompt("Type the tenant's slug to confirm", default="", show_default=False)
    if typed.strip() != slug:
        raise OperationFailed(f"the slug typed does not match {slug!r}; tenant not deleted")


def _confirm(question: str) -> None:
    from appliance.errors import OperationFailed

    _require_terminal("purging tenants")
    if not typer.confirm(question, default=False):
        raise OperationFailed("not confirmed; nothing purged")


def _tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan.value,
        "status": tenant.status.value,
        "created_at": rfc3339_or_none(tenant.created_at),
        "updated_at": rfc3339_or_none(tenant.updated_at),
        "deleted_at": rfc3339_or_none(tenant.deleted_at),
        "purge_after": rfc3339_or_none(tenant.purge_after),
    }


def register(app: typer.Typer) -> None:
    app.add_typer(tenant_app, name="tenant")
