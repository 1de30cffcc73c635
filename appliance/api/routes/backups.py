"""/api/v1/platform/backups: the backup archives, and taking, verifying and restoring them as durable jobs
(the console's Backups view). A job's progress is read at /api/v1/platform/jobs/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.schemas.backups import BackupList, BackupOut, RestoreIn
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.jobs import JobOut
from appliance.errors import InvalidInput
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.backups import catalog
from appliance.services.backups import jobs as backup_jobs

router = routing.router(
    prefix="/platform/backups", tags=["backups"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.BACKUPS_READ))]
Manage = Annotated[Actor, Depends(require_operator(platform_permissions.BACKUPS_MANAGE))]


@router.get("")
def list_backups(actor: Read, session: PlatformSession, ctx: ContextDep) -> BackupList:
    """The archives in this API host's backup directory (newest first) and when the newest backup that
    completed anywhere was made."""
    settings = ctx.settings
    return BackupList(
        items=[BackupOut.of(item) for item in catalog.listing(settings.backup_dir)],
        directory=str(settings.backup_dir),
        newest_completed_at=backup_jobs.newest_completed(session),
        max_age_hours=settings.backups.max_age_hours,
    )


@router.post("", status_code=202)
def create_backup(actor: Manage, session: PlatformSession) -> JobOut:
    """Back up the whole appliance now, as a job (its progress and result at /platform/jobs/{id}); the
    appliance keeps serving meanwhile."""
    return JobOut.of(backup_jobs.request(session, actor, backup_jobs.CREATE, {"scheduled": False}))


@router.post("/{name}/verify", status_code=202, responses=error_responses(404))
def verify_backup(name: str, actor: Manage, session: PlatformSession, ctx: ContextDep) -> JobOut:
    """Check an archive as a job: every part's checksum, a restore into a scratch database, the row
    counts and the audit chains. The appliance's own database is not touched."""
    path = backup_jobs.archive_in_directory(ctx.settings, name)
    return JobOut.of(backup_jobs.request(session, actor, backup_jobs.VERIFY, {"archive": path.name}))


@router.post("/{name}/restore", status_code=202, responses=error_responses(404))
def restore_backup(
    name: str, body: RestoreIn, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> JobOut:
    """Bring the whole appliance back to the archive's state, as a job: every change since is lost.
    ``confirm`` must repeat the archive's name (422 otherwise)."""
    path = backup_jobs.archive_in_directory(ctx.settings, name)
    if body.confirm != path.name:
        raise InvalidInput(
            f"confirm must repeat the archive's name {path.name!r} to restore it",
            details={"field": "confirm"},
        )
    return JobOut.of(backup_jobs.request(session, actor, backup_jobs.RESTORE, {"archive": path.name}))
