"""The jobs that move one tenant: export it to an archive, import it from one
(appliance.services.backups.tenant_jobs). They work as the schema owner, through an engine of their own
made for the job and disposed after it, so no owner connection stays open between jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.db.session import Database
from appliance.errors import ApplianceError, Unavailable
from appliance.services.backups import tenant_jobs
from appliance.services.jobs.durable import PermanentFailure
from appliance.workers.jobs import JobContext, plain_handler


@plain_handler(tenant_jobs.EXPORT)
def export_tenant(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Write the tenant ``payload["tenant_id"]`` to the archive ``payload["archive"]``."""
    return _as_owner(ctx, lambda owner: tenant_jobs.run_export(ctx.settings, owner, payload, ctx.progress))


@plain_handler(tenant_jobs.IMPORT)
def import_tenant(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring in the tenant of the archive ``payload["archive"]``, under ``payload["slug"]`` if set."""
    progress = ctx.progress
    if ctx.database.backend == "sqlite":
        # SQLite has one writer: the import's transaction holds the lock while it inserts the rows, so the
        # job's row could not take their progress (each try would wait out the busy timeout, then fail).
        def progress(step: str, done: int, total: int) -> None:
            if step != "rows":
                ctx.progress(step, done, total)

    return _as_owner(
        ctx, lambda owner: tenant_jobs.run_import(ctx.settings, owner, ctx.job_id, payload, progress)
    )


def _as_owner(ctx: JobContext, work: Callable[[Database], dict[str, Any]]) -> dict[str, Any]:
    owner = Database(ctx.settings, ctx.settings.migrations_url, bounded=False)
    try:
        return work(owner)
    except Unavailable:
        raise  # the database is down: another attempt may find it up
    except ApplianceError as exc:
        # Refused (slug in use, a wrong key, another schema revision): another attempt would be refused too.
        raise PermanentFailure(str(exc)) from exc
    finally:
        owner.dispose()
