"""/api/v1/organizations: the nested units of a tenant that own its projects."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.organizations import (
    OrganizationDetail,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
)
from appliance.services.access.actors import Actor
from appliance.services.tenancy import organizations

router = routing.router(
    prefix="/organizations", tags=["organizations"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require("organizations:read"))]
Write = Annotated[Actor, Depends(require("organizations:write"))]


@router.post("", status_code=201, responses=error_responses(404, 409))
def create_organization(
    body: OrganizationIn, actor: Write, session: TenantSession, response: Response
) -> OrganizationOut:
    """Create an organization, top-level or inside parent_id (404 ORGANIZATION_NOT_FOUND when the tenant
    has no such organization); its slug must be free in the tenant (409 SLUG_TAKEN)."""
    org = organizations.create(session, actor, name=body.name, slug=body.slug, parent_id=body.parent_id)
    response.headers["Location"] = f"/api/v1/organizations/{org.id}"
    return OrganizationOut.of(org)


@router.get("")
def list_organizations(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    parent_id: Annotated[uuid.UUID | None, Query(description="Only the children of this one")] = None,
    root: Annotated[
        bool | None, Query(description="true: only top-level organizations; false: only nested ones")
    ] = None,
) -> Page[OrganizationOut]:
    """The tenant's organizations, by slug."""
    rows, next_cursor = organizations.list_page(
        session, parent_id=parent_id, root=root, limit=limit, cursor=cursor
    )
    return Page(items=[OrganizationOut.of(org) for org in rows], next_cursor=next_cursor)


@router.get("/{organization_id}", responses=error_responses(404))
def get_organization(organization_id: uuid.UUID, actor: Read, session: TenantSession) -> OrganizationDetail:
    """One organization, with the path of its ancestors and its children."""
    return OrganizationDetail.of_view(organizations.view(session, organization_id))


@router.patch("/{organization_id}", responses=error_responses(404))
def update_organization(
    organization_id: uuid.UUID, body: OrganizationPatch, actor: Write, session: TenantSession
) -> OrganizationOut:
    """Rename an organization, or move it: under another one (parent_id), or to the top level
    (parent_id null). A move under itself or one of its descendants is refused (422 ORG_CYCLE)."""
    parent = body.parent_id if "parent_id" in body.model_fields_set else organizations.KEEP
    org = organizations.change(session, actor, organization_id, name=body.name, parent_id=parent)
    return OrganizationOut.of(org)


@router.delete("/{organization_id}", status_code=204, responses=error_responses(404, 409))
def delete_organization(organization_id: uuid.UUID, actor: Write, session: TenantSession) -> Response:
    """Delete an empty organization; one that still holds organizations or projects is refused
    (409 ORG_NOT_EMPTY, with their counts)."""
    organizations.delete(session, actor, organization_id)
    return Response(status_code=204)
