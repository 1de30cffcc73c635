"""/api/v1/invitations: the invitee's side of invitations, listed and answered signed in, or accepted with
the token the tenant's admins handed over (see appliance.services.tenancy.invitees)."""

from __future__ import annotations

import uuid

from fastapi import Response

from appliance.api import routing
from appliance.api.auth import Public, SignedIn
from appliance.api.deps import ContextDep, SessionDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.invitations import AcceptIn, InvitationOut, JoinedOut
from appliance.services.tenancy import invitees

router = routing.router(prefix="/invitations", tags=["invitations"], responses=error_responses(401, 422, 429))


@router.get("", responses=error_responses(403))
def my_invitations(
    actor: SignedIn, session: SessionDep, ctx: ContextDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[InvitationOut]:
    """The open invitations to your address, in every tenant, oldest first."""
    rows, next_cursor = invitees.mine(session, actor, ctx.auth.clock(), limit=limit, cursor=cursor)
    return Page(items=[InvitationOut.of(i, t) for i, t in rows], next_cursor=next_cursor)


@router.post("/accept", responses=error_responses(404, 409))
def accept_with_token(body: AcceptIn, info: Public, session: SessionDep, ctx: ContextDep) -> JoinedOut:
    """Accept an invitation with its token, without signing in: with the password of your account when
    the address has one (and mfa_code when two-factor is on: 401 MFA_REQUIRED), or the password you choose
    for the account made now (422 WEAK_PASSWORD names what it lacks). 404 INVITATION_NOT_FOUND for a token
    that is not an open invitation to the address, 409 INVITATION_EXPIRED past its time. Then sign in to
    the tenant with its slug."""
    joined = invitees.accept_with_token(
        session,
        ctx.login_guard,
        email=body.email,
        token=body.token,
        password=body.password,
        display_name=body.display_name,
        mfa_code=body.mfa_code,
        now=ctx.auth.clock(),
        request=info,
        min_length=ctx.settings.security.password_min_length,
    )
    return JoinedOut.of(joined)


@router.post("/{invitation_id}/accept", responses=error_responses(403, 404, 409))
def accept(invitation_id: uuid.UUID, actor: SignedIn, session: SessionDep, ctx: ContextDep) -> JoinedOut:
    """Accept an invitation to your address: you become a member of its tenant with its role (sign in to
    it with its slug). 404 for another address's invitation or an answered one, 409 INVITATION_EXPIRED."""
    return JoinedOut.of(invitees.accept(session, actor, invitation_id, ctx.auth.clock()))


@router.post("/{invitation_id}/decline", status_code=204, responses=error_responses(403, 404, 409))
def decline(invitation_id: uuid.UUID, actor: SignedIn, session: SessionDep, ctx: ContextDep) -> Response:
    """Decline an invitation to your address; the tenant sees it declined in its audit trail."""
    invitees.decline(session, actor, invitation_id, ctx.auth.clock())
    return Response(status_code=204)
