"""/api/v1/tenants/{id}/export and /api/v1/tenant-imports: platform operators move one tenant out of the
appliance into an archive of the backup directory, and bring one in, each as a durable job (its progress
and its result, which names the archive or the imported tenant, at /api/v1/platform/jobs/{id})."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.jobs import JobOut
from appliance.api.schemas.tenant_moves import TenantImportIn
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.backups import tenant_jobs

exports = routing.router(prefix="/tenants", tags=["tenants"], responses=error_responses(401, 403, 422, 429))
imports = routing.router(
    prefix="/tenant-imports", tags=["tenants"], responses=error_responses(401, 403, 422, 429)
)

Manage = Annotated[Actor, Depends(require_operator(platform_permissions.TENANTS_MANAGE))]


@exports.post("/{tenant_id}/export", status_code=202, responses=error_responses(404))
def export_tenant(tenant_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep) -> JobOut:
    """Export the tenant to an encrypted archive in the backup directory, as a job: its rows, its audit
    chain and its members' accounts, read in one snapshot. The job's result names the archive."""
    return JobOut.of(tenant_jobs.request_export(session, actor, tenant_id, ctx.auth.clock()))


@imports.post("", status_code=202, responses=error_responses(404, 409))
def import_tenant(body: TenantImportIn, actor: Manage, session: PlatformSession, ctx: ContextDep) -> JobOut:
    """Import the tenant of an archive of the backup directory, as a job (409 SLUG_TAKEN when its slug, or
    ``slug``, is in use). With ``slug`` while the original is here, a copy with new ids. The job's result
    names the imported tenant."""
    return JobOut.of(tenant_jobs.request_import(session, actor, ctx.settings, body.archive, body.slug))
