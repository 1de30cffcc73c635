"""`appliance jobs list|show|retry|cancel`: the durable jobs, for platform operators, without the API."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from appliance.cli.shared import JsonOption, open_database

if TYPE_CHECKING:
    from appliance.models import Job

jobs_app = typer.Typer(help="List, inspect, retry and cancel the durable jobs.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="The job's id (as `appliance jobs list` shows it).")]


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    *,
    state: Annotated[
        str | None, typer.Option("--state", help="queued, running, succeeded, dead or cancelled.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="e.g. webhooks.deliver.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's (by slug).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest jobs of every tenant (or of one), by state and kind."""
    from appliance.services.jobs import queries as job_queries
    from appliance.services.tenancy import tenants

    with open_database(ctx) as database, database.session_scope(write=False) as session:
        tenant_id = tenants.by_slug(session, tenant).id if tenant else None
        rows, _ = job_queries.list_page(
            session, tenant_id=tenant_id, every_tenant=tenant is None, state=state, kind=kind, limit=limit
        )
    if as_json:
        typer.echo(json.dumps([_fields(job) for job in rows]))
        return
    if not rows:
        typer.echo("no jobs")
        return
    typer.echo(f"{'ID':36}  {'KIND':20}  {'STATE':9}  {'TRIES':>5}  {'CREATED':20}  LAST ERROR")
    for job in rows:
        tries = f"{job.attempts}/{job.max_attempts}"
        created = job.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        error = (job.last_error or "").splitlines()[0][:60] if job.last_error else ""
        typer.echo(f"{job.id!s:36}  {job.kind:20}  {job.state:9}  {tries:>5}  {created:20}  {error}")


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: JobId) -> None:
    """Everything about one job, as JSON."""
    from appliance.services.jobs import manage

    with open_database(ctx) as database, database.session_scope(write=False) as session:
        job = manage.get(session, _uuid(job_id), None, every_tenant=True)
        typer.echo(json.dumps(_fields(job), indent=2))


@jobs_app.command("retry")
def retry(ctx: typer.Context, job_id: JobId) -> None:
    """Run a dead or cancelled job again, with a fresh set of attempts."""
    _change(ctx, job_id, "retry")


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a queued job."""
    _change(ctx, job_id, "cancel")


def _change(ctx: typer.Context, job_id: str, action: str) -> None:
    from appliance.services.jobs import durable as jobs
    from appliance.services.jobs import manage
    from appliance.workers import jobs as job_runner
    from appliance.workers import queue

    queue.configure(ctx.obj.settings)
    jobs.install_pusher(job_runner.push)  # a retried job goes to the queue at once (or the reaper hands it)
    with open_database(ctx) as database, database.session_scope() as session:
        job = manage.get(session, _uuid(job_id), None, every_tenant=True)
        (manage.retry if action == "retry" else manage.cancel)(session, job)
        state = job.state
    typer.echo(f"job {job_id} is {state}")


def _uuid(value: str) -> uuid.UUID:
    from appliance.errors import InvalidInput

    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a job id (a UUID, as `appliance jobs list` shows)") from None


def _fields(job: Job) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None

    return {
        "id": str(job.id),
        "tenant_id": str(job.tenant_id) if job.tenant_id else None,
        "kind": job.kind,
        "state": job.state,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "payload": job.payload,
        "result": job.result,
        "last_error": job.last_error,
        "run_at": when(job.run_at),
        "lease_until": when(job.lease_until),
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
    }


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
