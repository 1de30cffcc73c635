"""`appliance audit verify` and `appliance audit list`: the audit log for platform operators, without the
API. Verification reads every hash chain (each tenant's and the platform's) and exits 1 when a record was
altered or removed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance.cli.shared import open_database

if TYPE_CHECKING:
    from appliance.models import AuditLog
    from appliance.services.audit.verify import ChainReport

#: verify reports its progress on stderr after this many chains (and at the end, past that many).
PROGRESS_EVERY = 100

audit_app = typer.Typer(help="Verify and read the audit log's hash chains.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only this tenant's chain (by slug); default: all."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check every record of every chain; exit 1 naming each record that was altered or removed."""
    from appliance.services.audit import verify as audit_verify

    with open_database(ctx) as database:
        reports = audit_verify.verify_all(database, slug=tenant, progress=_progress)
    for report in reports:
        if as_json:
            typer.echo(json.dumps(_report_json(report)))
        else:
            for line in _report_lines(report):
                typer.echo(line)
    failed = sum(not report.ok for report in reports)
    if not as_json and len(reports) > 1:
        typer.echo(f"{len(reports)} chains, " + (f"{failed} with problems" if failed else "all ok"))
    if failed:
        raise typer.Exit(1)


@audit_app.command("list")
def list_records(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="This tenant's records (by slug); default: platform."),
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="An action, or a prefix ending in .* (project.*).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many records, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Print a chain's newest records: a tenant's, or the platform's (sign-ins, operator actions)."""
    from appliance.db import tenancy
    from appliance.services.audit import log as audit
    from appliance.services.audit import verify as audit_verify

    with open_database(ctx) as database, database.session_scope(write=False) as session:
        (chain,) = (
            audit_verify.chains(session, tenant) if tenant is not None else [audit_verify.Chain(None, None)]
        )
        if chain.tenant_id is not None:
            tenancy.set_tenant(session, chain.tenant_id)
        records = audit.query(session, tenant_id=chain.tenant_id, action=action, limit=limit)
        rows = [_record_json(record, chain.slug) for record in records]
    for row in rows:
        typer.echo(json.dumps(row) if as_json else _record_line(row))


def _progress(done: int, total: int) -> None:
    if done % PROGRESS_EVERY == 0 or (done == total and total >= PROGRESS_EVERY):
        typer.echo(f"verified {done}/{total} chains", err=True)


def _report_lines(report: ChainReport) -> list[str]:
    found = len(report.problems) + report.problems_omitted
    status = "ok" if report.ok else f"{found} problem{'s' if found != 1 else ''}"
    records = f"{report.records} record{'s' if report.records != 1 else ''}"
    lines = [f"{report.label}: {records}, {status}"]
    for problem in report.problems:
        lines.append(
            f"  {report.label} seq {problem.seq}: {problem.kind}, "
            f"record {problem.record_id}: {problem.message}"
        )
    if report.problems_omitted:
        lines.append(f"  {report.label}: {report.problems_omitted} more problems not shown")
    return lines


def _report_json(report: ChainReport) -> dict[str, Any]:
    return {
        "tenant": report.slug,
        "tenant_id": None if report.tenant_id is None else str(report.tenant_id),
        "records": report.records,
        "ok": report.ok,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problems": [
            {"seq": p.seq, "kind": p.kind, "record_id": str(p.record_id), "message": p.message}
            for p in report.problems
        ],
        "problems_omitted": report.problems_omitted,
    }


def _record_json(record: AuditLog, slug: str | None) -> dict[str, Any]:
    from appliance.services.audit import log as audit

    row = audit.as_dict(record)
    return {"id": row.pop("id"), "tenant": slug, **row, "hash": record.hash}


def _record_line(row: dict[str, Any]) -> str:
    if row["actor_api_key_id"]:
        actor = f"key:{row['actor_api_key_id']}"
    elif row["actor_user_id"]:
        actor = f"user:{row['actor_user_id']}"
    else:
        actor = row["actor_name"] or "-"
    resource = "/".join(part for part in (row["resource_type"], row["resource_id"]) if part) or "-"
    summary = json.dumps(row["summary"], sort_keys=True, separators=(",", ":"))
    fields = (row["created_at"], f"#{row['seq']}", row["action"], resource, actor, row["ip"] or "-", summary)
    return "  ".join(fields)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
