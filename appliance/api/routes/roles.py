"""/api/v1/roles: the built-in roles and the tenant's custom roles, which inherit from another role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.roles import RoleIn, RoleOut, RolePatch
from appliance.services.access.actors import Actor
from appliance.services.tenancy import roles

router = routing.router(prefix="/roles", tags=["roles"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("roles:read"))]
Write = Annotated[Actor, Depends(require("roles:write"))]


@router.get("")
def list_roles(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    builtin: Annotated[bool | None, Query(description="Only built-in (true) or custom (false) roles")] = None,
) -> Page[RoleOut]:
    """Every role a member of the tenant can hold, by name, with the permissions it grants."""
    views, next_cursor = roles.list_page(session, builtin=builtin, limit=limit, cursor=cursor)
    return Page(items=[RoleOut.of(v) for v in views], next_cursor=next_cursor)


@router.post("", status_code=201, responses=error_responses(409))
def create_role(body: RoleIn, actor: Write, session: TenantSession, response: Response) -> RoleOut:
    """Create a custom role. It cannot grant more than its creator holds (403 ROLE_TOO_STRONG); a taken
    name is 409 ROLE_EXISTS; an unknown permission 422 PERMISSION_UNKNOWN."""
    assert actor.tenant_id is not None
    role = roles.create(
        session, actor, actor.tenant_id, name=body.name, permissions=body.permissions, inherits=body.inherits
    )
    response.headers["Location"] = f"/api/v1/roles/{role.id}"
    return RoleOut.of(roles.view(session, role))


@router.get("/{role_id}", responses=error_responses(404))
def get_role(role_id: uuid.UUID, actor: Read, session: TenantSession) -> RoleOut:
    """One custom role, with the permissions it grants."""
    return RoleOut.of(roles.view(session, roles.get(session, role_id)))


@router.patch("/{role_id}", responses=error_responses(404))
def update_role(
    role_id: uuid.UUID, body: RolePatch, actor: Write, session: TenantSession, ctx: ContextDep
) -> RoleOut:
    """Change a custom role's permissions or what it inherits. When anything changes, every holder's
    sessions in this tenant end at once (directly or through a role inheriting from this one)."""
    inherits = body.inherits if "inherits" in body.model_fields_set else False
    updated = roles.update(
        session, actor, role_id, permissions=body.permissions, inherits=inherits, now=ctx.auth.clock()
    )
    ctx.auth.sessions_ended(updated.sessions_ended)
    return RoleOut.of(roles.view(session, updated.role))


@router.delete("/{role_id}", status_code=204, responses=error_responses(404, 409))
def delete_role(role_id: uuid.UUID, actor: Write, session: TenantSession) -> Response:
    """Delete a custom role; 409 ROLE_IN_USE while a member holds it or another role inherits from it."""
    roles.delete(session, actor, role_id)
    return Response(status_code=204)
