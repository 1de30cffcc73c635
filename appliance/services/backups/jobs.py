"""Backups as durable jobs (the API's and the schedule's way in), and what the platform's audit chain
records of them: ``backup.requested``, ``backup.completed``, ``backup.failed``, ``backup.verified``,
``backup.restored``. The newest ``backup.completed`` record is the age every host's metrics report."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.config import Settings
from appliance.db import tenancy
from appliance.errors import InvalidInput, NotFound
from appliance.models import AuditLog, Job
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.backups import catalog
from appliance.services.jobs import durable

CREATE = durable.kind("backups.create", max_attempts=2, delays=(300,))
VERIFY = durable.kind("backups.verify", max_attempts=1)
RESTORE = durable.kind("backups.restore", max_attempts=1)


def archive_in_directory(settings: Settings, name: str) -> Path:
    """The archive ``name`` of the backup directory (a bare file name with a summary); NotFound otherwise."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or not name.endswith(catalog.SUFFIX):
        raise InvalidInput(
            f"{name!r} is not the name of an archive (forge-...{catalog.SUFFIX})", details={"name": name}
        )
    path = settings.backup_dir / name
    if not path.is_file() or not catalog.summary_path(path).is_file():
        raise NotFound(f"no archive named {name!r} in {settings.backup_dir}", details={"name": name})
    return path


def request(
    session: Session,
    actor: Actor | None,
    job_kind: durable.Kind,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a platform backup job and record who asked for it."""
    job = durable.enqueue(session, job_kind, payload, tenant_id=None, idempotency_key=idempotency_key)
    audit.record(
        session,
        action="backup.requested",
        tenant_id=None,
        actor=actor,
        resource_type="job",
        resource_id=job.id,
        summary={
            "kind": job_kind.name,
            **{k: v for k, v in payload.items() if k in ("archive", "scheduled")},
        },
    )
    return job


def record(session: Session, action: str, summary: dict[str, Any], job_id: uuid.UUID | None = None) -> None:
    """A platform audit record of a backup's outcome (the worker's: no actor)."""
    audit.record(
        session,
        action=action,
        tenant_id=None,
        resource_type="job" if job_id else None,
        resource_id=job_id,
        summary=summary,
    )


def newest_completed(session: Session) -> dt.datetime | None:
    """When the newest backup that completed was made, from the platform's audit chain (any host's). Puts
    the session in platform scope (the platform chain is no tenant's)."""
    tenancy.set_platform(session)
    newest: dt.datetime | None = session.scalar(
        select(func.max(AuditLog.created_at)).where(
            AuditLog.tenant_id.is_(None), AuditLog.action == "backup.completed"
        )
    )
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return newest
