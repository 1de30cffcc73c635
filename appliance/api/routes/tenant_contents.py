"""/api/v1/tenants/{tenant_id}/members, /organizations and /api-keys: an operator's read-only view inside
one tenant, with the items and pages of the tenant's own routes (tenants:read)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.api_keys import ApiKeyOut
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.members import MemberOut
from appliance.api.schemas.organizations import OrganizationOut
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.tenancy import contents as tenant_contents

router = routing.router(
    prefix="/tenants/{tenant_id}", tags=["tenants"], responses=error_responses(401, 403, 404, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.TENANTS_READ))]


@router.get("/members")
def list_tenant_members(
    *,
    tenant_id: uuid.UUID,
    actor: Read,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    role: Annotated[str | None, Query(max_length=64, description="Only members holding this role")] = None,
    status: Annotated[
        str | None, Query(max_length=16, description="Only entries in this status: active, invited, expired")
    ] = None,
    ctx: ContextDep,
) -> Page[MemberOut]:
    """The tenant's members and pending invitations, in the order they joined or were invited (as its GET
    /api/v1/members shows them); 404 TENANT_NOT_FOUND for an unknown tenant."""
    now = ctx.auth.clock()
    rows, next_cursor = tenant_contents.members_of(
        session, tenant_id, role=role, status=status, limit=limit, cursor=cursor, now=now
    )
    return Page(items=[MemberOut.entry(row, now) for row in rows], next_cursor=next_cursor)


@router.get("/organizations")
def list_tenant_organizations(
    *,
    tenant_id: uuid.UUID,
    actor: Read,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    parent_id: Annotated[uuid.UUID | None, Query(description="Only the children of this one")] = None,
    root: Annotated[
        bool | None, Query(description="true: only top-level organizations; false: only nested ones")
    ] = None,
) -> Page[OrganizationOut]:
    """The tenant's organizations, by slug (as its GET /api/v1/organizations shows them); 404
    TENANT_NOT_FOUND for an unknown tenant."""
    rows, next_cursor = tenant_contents.organizations_of(
        session, tenant_id, parent_id=parent_id, root=root, limit=limit, cursor=cursor
    )
    return Page(items=[OrganizationOut.of(org) for org in rows], next_cursor=next_cursor)


@router.get("/api-keys")
def list_tenant_api_keys(
    *,
    tenant_id: uuid.UUID,
    actor: Read,
    session: PlatformSession,
    ctx: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    revoked: Annotated[bool | None, Query(description="Only revoked (true) or usable (false) keys")] = None,
) -> Page[ApiKeyOut]:
    """The tenant's API keys, oldest first, never their secrets (as its GET /api/v1/api-keys shows them);
    404 TENANT_NOT_FOUND for an unknown tenant."""
    rows, next_cursor = tenant_contents.api_keys_of(
        session, tenant_id, revoked=revoked, limit=limit, cursor=cursor, now=ctx.auth.clock()
    )
    return Page(items=[ApiKeyOut.of(key, effective) for key, effective in rows], next_cursor=next_cursor)
