"""/api/v1/tenants: the platform operators' view of every tenant."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas import tenants as tenant_schemas
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.tenants import (
    OwnerOut,
    TenantCreated,
    TenantDetail,
    TenantIn,
    TenantOut,
    TenantPatch,
)
from appliance.models import Tenant
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.tenancy import tenants

router = routing.router(prefix="/tenants", tags=["tenants"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require_operator(platform_permissions.TENANTS_READ))]
Manage = Annotated[Actor, Depends(require_operator(platform_permissions.TENANTS_MANAGE))]


def _changed(ctx: ContextDep, tenant: Tenant) -> TenantOut:
    ctx.auth.tenants.invalidate(tenant.id)  # this process sees the new status at once, others within 5 s
    return TenantOut.of(tenant)


@router.post("", status_code=201, responses=error_responses(409))
def create_tenant(
    body: TenantIn, actor: Manage, session: PlatformSession, response: Response
) -> TenantCreated:
    """Create a tenant; with owner_email, that user becomes its owner (created when new)."""
    new = tenants.create(
        session, actor, slug=body.slug, name=body.name, plan=body.plan, owner_email=body.owner_email
    )
    response.headers["Location"] = f"/api/v1/tenants/{new.tenant.id}"
    owner = None
    if new.owner is not None:
        owner = OwnerOut(
            user_id=new.owner.user.id,
            email=new.owner.user.email,
            one_time_password=new.owner.one_time_password,
        )
    return TenantCreated(**TenantOut.of(new.tenant).model_dump(), owner=owner)


@router.get("", response_model=Page[TenantDetail])
def list_tenants(
    *,
    actor: Read,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(description="active, suspended or deleted")] = None,
    plan: Annotated[str | None, Query(description="free, team, business or enterprise")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the slug or name")] = None,
) -> Response:
    """Every tenant, by slug, with how many users, organizations, projects and API keys each holds."""
    rows, next_cursor = tenants.list_page(
        session, status=status, plan=plan, search=q, limit=limit, cursor=cursor
    )
    counts = tenants.counts_of(session, [t.id for t in rows])
    # Serialized here, once (the response_model is the contract, not validated per item).
    return Response(tenant_schemas.render_page(rows, counts, next_cursor), media_type="application/json")


@router.get("/{tenant_id}", responses=error_responses(404))
def get_tenant(tenant_id: uuid.UUID, actor: Read, session: PlatformSession) -> TenantDetail:
    """One tenant, with how many users, organizations, projects and API keys it holds."""
    tenant = tenants.get(session, tenant_id)
    return TenantDetail.counted(tenant, tenants.counts(session, tenant.id))


@router.patch("/{tenant_id}", responses=error_responses(404))
def update_tenant(
    tenant_id: uuid.UUID, body: TenantPatch, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> TenantOut:
    """Rename a tenant or change its plan (its rate limits follow the plan)."""
    return _changed(ctx, tenants.change(session, actor, tenant_id, name=body.name, plan=body.plan))


@router.post("/{tenant_id}/suspend", responses=error_responses(404, 409))
def suspend_tenant(
    tenant_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> TenantOut:
    """Stop all access to the tenant; its data is kept. Its tokens and keys answer 403 TENANT_SUSPENDED."""
    return _changed(ctx, tenants.suspend(session, actor, tenant_id, ctx.auth.clock()))


@router.post("/{tenant_id}/resume", responses=error_responses(404, 409))
def resume_tenant(
    tenant_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> TenantOut:
    """Lift a suspension, or restore a deleted tenant before it is purged."""
    return _changed(ctx, tenants.resume(session, actor, tenant_id, ctx.auth.clock()))


@router.delete("/{tenant_id}", status_code=204, responses=error_responses(404, 409))
def delete_tenant(tenant_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep) -> Response:
    """Delete a tenant: access stops at once; its data is purged after 30 days unless it is resumed."""
    _changed(ctx, tenants.delete_tenant(session, actor, tenant_id, ctx.auth.clock()))
    return Response(status_code=204)
