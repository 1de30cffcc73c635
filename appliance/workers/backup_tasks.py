"""The backup jobs' bodies and the schedule: parse the payload, call the backups service, record the
outcome in the platform's audit chain."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from huey import crontab
from sqlalchemy import select

from appliance.configfile import locate
from appliance.models import Job
from appliance.services.backups import catalog, operations, retention
from appliance.services.backups import jobs as backup_jobs
from appliance.workers import runtime
from appliance.workers.jobs import JobContext, plain_handler
from appliance.workers.queue import periodic_task

log = logging.getLogger(__name__)


@periodic_task(crontab(minute="*"), name="backups.schedule_periodic")
def schedule_periodic() -> str | None:
    """Every minute: queue a scheduled backup when `[backups] schedule` matches this minute (once per
    minute, whichever periodic worker sees it: the job's idempotency key is the minute)."""
    settings = runtime.current().settings
    fields = settings.backups.schedule.split()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    if len(fields) != 5 or not crontab(*fields)(now):
        return None
    with runtime.current().database.session_scope() as session:
        job = backup_jobs.request(
            session,
            None,
            backup_jobs.CREATE,
            {"scheduled": True},
            idempotency_key=now.strftime("%Y%m%dT%H%MZ"),
        )
        return str(job.id)


@plain_handler(backup_jobs.CREATE)
def create(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Back up the whole appliance; a scheduled backup then prunes the scheduled archives the retention
    policy no longer keeps."""
    scheduled = bool(payload.get("scheduled", False))
    try:
        summary = operations.create(
            ctx.settings, config_file=locate(None), scheduled=scheduled, progress=ctx.progress
        )
    except Exception as exc:
        with ctx.database.session_scope() as session:
            backup_jobs.record(
                session, "backup.failed", {"error": str(exc)[:500], "scheduled": scheduled}, ctx.job_id
            )
        raise
    removed: list[str] = []
    if scheduled:
        removed = retention.prune(
            catalog.listing(ctx.settings.backup_dir), ctx.settings.backups, summary.created_at
        )
    outcome = {
        "archive": summary.name,
        "size": summary.size,
        "sha256": summary.sha256,
        "rows": sum(summary.rows.values()),
        "scheduled": scheduled,
        "pruned": removed,
    }
    with ctx.database.session_scope() as session:
        backup_jobs.record(session, "backup.completed", outcome, ctx.job_id)
    log.info("backup completed", extra=outcome)
    return outcome


@plain_handler(backup_jobs.VERIFY)
def verify(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Check one archive of the backup directory in a scratch database."""
    path = backup_jobs.archive_in_directory(ctx.settings, str(payload.get("archive", "")))
    result = operations.verify(ctx.settings, path, progress=ctx.progress)
    outcome = {
        "archive": path.name,
        "ok": result.ok,
        "tables": result.tables,
        "rows": result.rows,
        "chains": result.chains,
        "problems": result.chain_problems[:50],
    }
    with ctx.database.session_scope() as session:
        backup_jobs.record(session, "backup.verified", outcome, ctx.job_id)
    return outcome


@plain_handler(backup_jobs.RESTORE)
def restore(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring the whole appliance back to one archive of the backup directory. The jobs ledger is part of
    what is restored: this job's own row goes in with the archive's rows, so that its outcome is
    recorded and nobody sees it vanish."""
    path = backup_jobs.archive_in_directory(ctx.settings, str(payload.get("archive", "")))
    with ctx.database.session_scope(write=False) as session:
        own = session.execute(select(Job.__table__).where(Job.id == ctx.job_id)).mappings().one()
        row = dict(own)
    result = operations.restore(ctx.settings, path, progress=ctx.progress, keep=[("jobs", row)])
    with ctx.database.session_scope() as session:
        outcome = {
            "archive": path.name,
            "made_at": result.manifest.get("created_at"),
            "migrated": result.migrated,
            "signing_key_replaced": result.signing_key_replaced,
        }
        backup_jobs.record(session, "backup.restored", outcome, ctx.job_id)
    return outcome
