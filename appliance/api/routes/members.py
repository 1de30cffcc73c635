"""/api/v1/members: the users of the caller's tenant and the invitations not answered yet, their roles,
invitations and removals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.members import InvitationCreated, MemberIn, MemberOut, MemberPatch
from appliance.services.access.actors import Actor
from appliance.services.tenancy import invitations, members, memberships

router = routing.router(prefix="/members", tags=["members"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("users:read"))]
Write = Annotated[Actor, Depends(require("users:write"))]


@router.post("", status_code=201, responses=error_responses(409))
def invite_member(
    body: MemberIn, actor: Write, session: TenantSession, ctx: ContextDep, response: Response
) -> InvitationCreated:
    """Invite an address into the tenant with a role. The answer is the same whether the address has an
    account or not: the invited entry (status invited, the address only) and its acceptance token, shown
    only here. The person accepts at POST /api/v1/invitations/accept (or, signed in, from GET
    /api/v1/invitations); until then the invitation grants nothing. Nobody offers a role holding
    permissions they lack (403 ROLE_TOO_STRONG); a member's address is 409 ALREADY_MEMBER, an address
    with an open invitation 409 ALREADY_INVITED; an unknown role 422 ROLE_UNKNOWN."""
    assert actor.tenant_id is not None
    now = ctx.auth.clock()
    issued = invitations.create(
        session,
        actor,
        actor.tenant_id,
        email=body.email,
        role=body.role,
        now=now,
        ttl=timedelta(seconds=ctx.settings.security.invitation_ttl),
    )
    response.headers["Location"] = f"/api/v1/members/{issued.invitation.id}"
    return InvitationCreated(
        **MemberOut.invited(issued.invitation, now).model_dump(), invitation_token=issued.token
    )


@router.get("")
def list_members(
    *,
    actor: Read,
    session: TenantSession,
    ctx: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    role: Annotated[str | None, Query(max_length=64, description="Only members holding this role")] = None,
    status: Annotated[
        str | None, Query(max_length=16, description="Only entries in this status: active, invited, expired")
    ] = None,
) -> Page[MemberOut]:
    """The tenant's members and pending invitations, in the order they joined or were invited."""
    now = ctx.auth.clock()
    rows, next_cursor = members.page(session, role=role, status=status, limit=limit, cursor=cursor, now=now)
    return Page(items=[MemberOut.entry(row, now) for row in rows], next_cursor=next_cursor)


@router.get("/{membership_id}", responses=error_responses(404))
def get_member(membership_id: uuid.UUID, actor: Read, session: TenantSession, ctx: ContextDep) -> MemberOut:
    """One member by membership id, or a pending invitation by its id."""
    return MemberOut.entry(members.find(session, membership_id), ctx.auth.clock())


@router.patch("/{membership_id}", responses=error_responses(404, 409))
def change_member_role(
    membership_id: uuid.UUID, body: MemberPatch, actor: Write, session: TenantSession, ctx: ContextDep
) -> MemberOut:
    """Give a member another role. Their sessions in this tenant end at once (tokens carry the old
    role's permissions): they sign in again. The last owner cannot be demoted (409 LAST_OWNER); an
    invited entry has no role to change yet (409 MEMBER_INVITED)."""
    membership, ended = members.change_role(session, actor, membership_id, body.role, ctx.auth.clock())
    ctx.auth.sessions_ended(ended)
    return MemberOut.of(membership, memberships.user_of(session, membership))


@router.delete("/{membership_id}", status_code=204, responses=error_responses(404, 409))
def remove_member(
    membership_id: uuid.UUID, actor: Write, session: TenantSession, ctx: ContextDep
) -> Response:
    """Remove a member from the tenant (their account stays) and end their sessions in it at once, or
    revoke an invitation (its token stops working). The last owner cannot be removed (409 LAST_OWNER)."""
    ctx.auth.sessions_ended(members.remove(session, actor, membership_id, ctx.auth.clock()))
    return Response(status_code=204)
