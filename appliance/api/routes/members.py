"""/api/v1/members: the users of the caller's tenant, their roles, invitations and removals."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.members import MemberCreated, MemberIn, MemberOut, MemberPatch
from appliance.services import memberships
from appliance.services.actors import Actor

router = routing.router(prefix="/members", tags=["members"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("users:read"))]
Write = Annotated[Actor, Depends(require("users:write"))]


@router.post("", status_code=201, responses=error_responses(409))
def invite_member(body: MemberIn, actor: Write, session: TenantSession, response: Response) -> MemberCreated:
    """Add a user to the tenant with a role; the account is created when the address has none (its
    one-time password is in this response only). Nobody grants a role holding permissions they lack
    (403 ROLE_TOO_STRONG); an existing member is 409 ALREADY_MEMBER; an unknown role 422 ROLE_UNKNOWN."""
    assert actor.tenant_id is not None
    invited = memberships.invite(
        session,
        actor,
        actor.tenant_id,
        email=body.email,
        role=body.role,
        display_name=body.display_name or "",
    )
    response.headers["Location"] = f"/api/v1/members/{invited.membership.id}"
    return MemberCreated(
        **MemberOut.of(invited.membership, invited.user).model_dump(),
        one_time_password=invited.one_time_password,
    )


@router.get("")
def list_members(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    role: Annotated[str | None, Query(max_length=64, description="Only members holding this role")] = None,
) -> Page[MemberOut]:
    """The tenant's members, in the order they joined."""
    rows, next_cursor = memberships.list_page(session, role=role, limit=limit, cursor=cursor)
    return Page(items=[MemberOut.of(m, u) for m, u in rows], next_cursor=next_cursor)


@router.get("/{membership_id}", responses=error_responses(404))
def get_member(membership_id: uuid.UUID, actor: Read, session: TenantSession) -> MemberOut:
    """One member, by membership id."""
    membership = memberships.get(session, membership_id)
    return MemberOut.of(membership, memberships.user_of(session, membership))


@router.patch("/{membership_id}", responses=error_responses(404, 409))
def change_member_role(
    membership_id: uuid.UUID, body: MemberPatch, actor: Write, session: TenantSession, ctx: ContextDep
) -> MemberOut:
    """Give a member another role. Their sessions in this tenant end at once (tokens carry the old
    role's permissions): they sign in again. The last owner cannot be demoted (409 LAST_OWNER)."""
    membership, ended = memberships.change_role(session, actor, membership_id, body.role, ctx.auth.clock())
    ctx.auth.sessions_ended(ended)
    return MemberOut.of(membership, memberships.user_of(session, membership))


@router.delete("/{membership_id}", status_code=204, responses=error_responses(404, 409))
def remove_member(
    membership_id: uuid.UUID, actor: Write, session: TenantSession, ctx: ContextDep
) -> Response:
    """Remove a member from the tenant (their account stays) and end their sessions in it at once. The
    last owner cannot be removed (409 LAST_OWNER)."""
    ctx.auth.sessions_ended(memberships.remove(session, actor, membership_id, ctx.auth.clock()))
    return Response(status_code=204)
