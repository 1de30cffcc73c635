"""/api/v1/jobs (a tenant's durable jobs) and /api/v1/platform/jobs (every job, for operators)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import PlatformSession, TenantSession, require, require_operator
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas import jobs as jobs_schema
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.jobs import JobOut
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.jobs import manage
from appliance.services.jobs import queries as job_queries
from appliance.services.tenancy.organizations import tenant_of

router = routing.router(prefix="/jobs", tags=["jobs"], responses=error_responses(401, 403, 422, 429))
platform = routing.router(
    prefix="/platform/jobs", tags=["jobs"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require("jobs:read"))]
Write = Annotated[Actor, Depends(require("jobs:write"))]
OperatorRead = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_JOBS_READ))]
OperatorManage = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_JOBS_MANAGE))]
State = Annotated[str | None, Query(description="queued, running, succeeded, dead or cancelled")]
Kind = Annotated[str | None, Query(max_length=64, description="e.g. webhooks.deliver")]


@router.get("")
def list_jobs(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: State = None,
    kind: Kind = None,
) -> Page[JobOut]:
    """The tenant's jobs, newest first, by state and kind."""
    rows, next_cursor = job_queries.list_page(
        session, tenant_id=tenant_of(actor), state=state, kind=kind, limit=limit, cursor=cursor
    )
    return Page(items=[JobOut.of(job) for job in rows], next_cursor=next_cursor)


@router.get("/{job_id}", responses=error_responses(404))
def get_job(job_id: uuid.UUID, actor: Read, session: TenantSession) -> JobOut:
    """One of the tenant's jobs (404 JOB_NOT_FOUND for any other)."""
    return JobOut.of(manage.get(session, job_id, tenant_of(actor)))


@router.post("/{job_id}/retry", responses=error_responses(404, 409))
def retry_job(job_id: uuid.UUID, actor: Write, session: TenantSession) -> JobOut:
    """Run a dead or cancelled job again, with a fresh set of attempts (409 JOB_NOT_RETRYABLE otherwise)."""
    return JobOut.of(manage.retry(session, manage.get(session, job_id, tenant_of(actor))))


@router.post("/{job_id}/cancel", responses=error_responses(404, 409))
def cancel_job(job_id: uuid.UUID, actor: Write, session: TenantSession) -> JobOut:
    """Cancel a queued job (409 JOB_NOT_CANCELLABLE once it runs or has finished)."""
    return JobOut.of(manage.cancel(session, manage.get(session, job_id, tenant_of(actor))))


@platform.get("", response_model=Page[JobOut])
def list_all_jobs(
    *,
    actor: OperatorRead,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: State = None,
    kind: Kind = None,
    tenant_id: uuid.UUID | None = None,
) -> Response:
    """Every job (or one tenant's, with ?tenant_id=), newest first."""
    rows, next_cursor = job_queries.wire_page(
        session,
        jobs_schema.FIELDS,
        tenant_id=tenant_id,
        every_tenant=tenant_id is None,
        state=state,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )
    # Plain rows serialized once (the response_model is the contract, not validated per item).
    return Response(jobs_schema.render_page(rows, next_cursor), media_type="application/json")


@platform.get("/{job_id}", responses=error_responses(404))
def get_any_job(job_id: uuid.UUID, actor: OperatorRead, session: PlatformSession) -> JobOut:
    """Any job."""
    return JobOut.of(manage.get(session, job_id, None, every_tenant=True))


@platform.post("/{job_id}/retry", responses=error_responses(404, 409))
def retry_any_job(job_id: uuid.UUID, actor: OperatorManage, session: PlatformSession) -> JobOut:
    """Run any dead or cancelled job again."""
    return JobOut.of(manage.retry(session, manage.get(session, job_id, None, every_tenant=True)))


@platform.post("/{job_id}/cancel", responses=error_responses(404, 409))
def cancel_any_job(job_id: uuid.UUID, actor: OperatorManage, session: PlatformSession) -> JobOut:
    """Cancel any queued job."""
    return JobOut.of(manage.cancel(session, manage.get(session, job_id, None, every_tenant=True)))
