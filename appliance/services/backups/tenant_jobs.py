"""One tenant's export and import as durable jobs: the operators' API asks for them, a worker runs them.

A job may run again after its worker died (appliance.services.jobs), so each finds its work done first: an
export's archive is named when the job is asked for, and is complete once its summary is there; an import
is recorded in the tenant's audit chain with the job's id (``operation`` of ``tenant.imported``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput
from appliance.models import Job, Tenant
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import log as audit
from appliance.services.backups import catalog, keys, tenant_archive
from appliance.services.backups import jobs as backup_jobs
from appliance.services.jobs import durable
from appliance.services.tenancy import tenants

EXPORT = durable.kind("tenants.export", max_attempts=3, delays=(60, 300))
IMPORT = durable.kind("tenants.import", max_attempts=3, delays=(60, 300))


def request_export(session: Session, actor: Actor, tenant_id: uuid.UUID, now: dt.datetime) -> Job:
    """Queue the export of a tenant (TENANT_NOT_FOUND when there is none); the job's result names the
    archive, which is named now."""
    tenant = tenants.get(session, tenant_id)
    payload = {
        "tenant_id": str(tenant.id),
        "archive": catalog.archive_name("tenant", now, tenant.slug),
        **_requested_by(actor),
    }
    return backup_jobs.request(session, actor, EXPORT, payload)


def request_import(
    session: Session, actor: Actor, settings: Settings, name: str, new_slug: str | None
) -> Job:
    """Queue the import of the tenant archive ``name`` of the backup directory, under ``new_slug`` if
    given. What can be refused from the summary alone is refused now (the job checks all of it again)."""
    path = backup_jobs.archive_in_directory(settings, name)
    summary = catalog.read_summary(path)
    if summary.kind != "tenant" or summary.tenant is None:
        raise InvalidInput(
            f"{name} is a {summary.kind!r} archive, not one tenant's",
            code="ARCHIVE_KIND",
            details={"name": name},
        )
    slug = tenants.check_slug(new_slug) if new_slug is not None else summary.tenant
    source_id = json.loads(catalog.summary_path(path).read_text()).get("tenant_id")
    if new_slug is None and source_id and session.get(Tenant, uuid.UUID(source_id)) is not None:
        raise Conflict(
            f"the tenant of {name} is already here: delete it, or import a copy under another slug",
            code="TENANT_PRESENT",
            details={"tenant": source_id},
        )
    if session.scalars(select(Tenant.id).where(Tenant.slug == slug)).first() is not None:
        raise Conflict(
            f"a tenant with the slug {slug!r} is already here", code="SLUG_TAKEN", details={"slug": slug}
        )
    payload = {"archive": path.name, "slug": new_slug, **_requested_by(actor)}
    return backup_jobs.request(session, actor, IMPORT, payload)


def _requested_by(actor: Actor) -> dict[str, Any]:
    return {"operator": str(actor.user_id) if actor.user_id else None, "request_id": actor.request.request_id}


def _actor(payload: dict[str, Any]) -> Actor:
    """The operator who asked, as the audit records of the job's work name them."""
    operator = payload.get("operator")
    return Actor(
        user_id=uuid.UUID(operator) if operator else None,
        tenant_id=None,
        operator=True,
        request=RequestInfo(user_agent="appliance-worker", request_id=payload.get("request_id")),
    )


def run_export(
    settings: Settings,
    owner: Database,
    payload: dict[str, Any],
    progress: tenant_archive.Progress | None = None,
) -> dict[str, Any]:
    """The export job's work; ``owner`` connects as the schema owner."""
    target = settings.backup_dir / str(payload["archive"])
    if catalog.summary_path(target).is_file():  # an earlier attempt made it, then its worker died
        summary = catalog.read_summary(target)
        return _exported(target, str(payload["tenant_id"]), summary.tenant or "", summary.rows, summary.size)
    done = tenant_archive.export(
        owner,
        str(payload["tenant_id"]),
        directory=settings.backup_dir,
        recipient=keys.load(settings.backup_key_file).recipient,
        actor=_actor(payload),
        now=utcnow(),
        target=target,
        progress=progress,
    )
    return _exported(done.archive, str(done.tenant_id), done.slug, done.rows, done.size)


def _exported(path: Path, tenant_id: str, slug: str, rows: dict[str, int], size: int) -> dict[str, Any]:
    return {"archive": path.name, "tenant_id": tenant_id, "slug": slug, "rows": rows, "size": size}


def run_import(
    settings: Settings,
    owner: Database,
    job_id: uuid.UUID,
    payload: dict[str, Any],
    progress: tenant_archive.Progress | None = None,
) -> dict[str, Any]:
    """The import job's work; ``owner`` connects as the schema owner."""
    path = backup_jobs.archive_in_directory(settings, str(payload["archive"]))
    slug = payload.get("slug") or catalog.read_summary(path).tenant or ""
    earlier = _imported_by(owner, slug, str(job_id))
    if earlier is not None:
        return earlier
    done = tenant_archive.import_archive(
        owner,
        path,
        list(keys.load(settings.backup_key_file).identities),
        scratch=settings.backup_dir,
        actor=_actor(payload),
        new_slug=payload.get("slug"),
        progress=progress,
        operation=str(job_id),
    )
    return {
        "archive": path.name,
        "tenant_id": str(done.tenant_id),
        "slug": done.slug,
        "copy": done.copy,
        "rows": done.rows,
        "left_out": done.left_out,
    }


def _imported_by(owner: Database, slug: str, operation: str) -> dict[str, Any] | None:
    """What this job imported, when an earlier attempt of it committed (None: it has not)."""
    with owner.session_scope(write=False) as session:
        tenant_id = session.scalars(select(Tenant.id).where(Tenant.slug == slug)).first()
        if tenant_id is None:
            return None
        tenancy.set_tenant(session, tenant_id)
        for record in audit.query(
            session, tenant_id=tenant_id, action="tenant.imported", limit=audit.MAX_PAGE
        ):
            if record.summary.get("operation") == operation:
                return {
                    "archive": record.summary.get("archive"),
                    "tenant_id": str(tenant_id),
                    "slug": slug,
                    "copy": record.summary.get("copy"),
                }
    return None
