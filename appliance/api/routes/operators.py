"""/api/v1/operators: operators list, create, disable, enable and remove each other, make another one
read-only or full, and reset another operator's password or two-factor authentication. Nobody acts on their
own account here (403 OPERATOR_SELF), and the last active full operator stays (409 LAST_OPERATOR)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.operators import OperatorIn, OperatorOut, OperatorPatch, OperatorWithPassword
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.tenancy import operators
from appliance.services.tenancy.operators import Operator

router = routing.router(
    prefix="/operators", tags=["operators"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.OPERATORS_READ))]
Manage = Annotated[Actor, Depends(require_operator(platform_permissions.OPERATORS_MANAGE))]


@router.get("")
def list_operators(
    *, actor: Read, session: PlatformSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[OperatorOut]:
    """Every operator account (disabled ones included), in the order they were created."""
    rows, next_cursor = operators.list_page(session, limit=limit, cursor=cursor)
    return Page(items=[OperatorOut.of(row) for row in rows], next_cursor=next_cursor)


@router.post("", status_code=201, responses=error_responses(409))
def create_operator(
    body: OperatorIn, actor: Manage, session: PlatformSession, response: Response
) -> OperatorWithPassword:
    """Create an operator (read_only: the read permissions only); the one-time password is in this
    response only and must be changed at the first sign-in. An address already in use is 409 EMAIL_TAKEN."""
    new = operators.create(
        session, body.email, body.display_name or "", read_only=body.read_only, actor=actor
    )
    response.headers["Location"] = f"/api/v1/operators/{new.user.id}"
    return OperatorWithPassword(
        **OperatorOut.of(Operator(new.user, mfa=False)).model_dump(), one_time_password=new.one_time_password
    )


@router.get("/{operator_id}", responses=error_responses(404))
def get_operator(operator_id: uuid.UUID, actor: Read, session: PlatformSession) -> OperatorOut:
    """One operator account."""
    return OperatorOut.of(operators.get(session, operator_id))


@router.patch("/{operator_id}", responses=error_responses(404, 409))
def update_operator(
    operator_id: uuid.UUID, body: OperatorPatch, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> OperatorOut:
    """Make an operator read-only (the read platform permissions only) or full. Their sessions end at once,
    so that the change holds for every token; the value they have already changes nothing. Making the last
    active full operator read-only is 409 LAST_OPERATOR."""
    ended = operators.set_read_only(session, actor, operator_id, body.read_only, ctx.auth.clock())
    ctx.auth.sessions_ended(ended.sessions_ended)
    return OperatorOut.of(operators.get(session, operator_id))


@router.post("/{operator_id}/disable", responses=error_responses(404, 409))
def disable_operator(
    operator_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> OperatorOut:
    """Disable an operator: they sign in nowhere and their tokens stop working at once, until enabled.
    Already disabled is 409 OPERATOR_DISABLED; the last active full operator is 409 LAST_OPERATOR."""
    ended = operators.disable(session, actor, operator_id, ctx.auth.clock())
    ctx.auth.sessions_ended(ended.sessions_ended)
    return OperatorOut.of(operators.get(session, operator_id))


@router.post("/{operator_id}/enable", responses=error_responses(404, 409))
def enable_operator(operator_id: uuid.UUID, actor: Manage, session: PlatformSession) -> OperatorOut:
    """Let a disabled operator sign in again; one that is not disabled is 409 OPERATOR_NOT_DISABLED."""
    operators.enable(session, actor, operator_id)
    return OperatorOut.of(operators.get(session, operator_id))


@router.delete("/{operator_id}", status_code=204, responses=error_responses(404, 409))
def remove_operator(
    operator_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> Response:
    """Remove an operator: their tokens stop working at once and they are no operator any more. The
    account's record stays so that the audit trail still names them. The last active full operator is
    409 LAST_OPERATOR."""
    ctx.auth.sessions_ended(operators.remove(session, actor, operator_id, ctx.auth.clock()).sessions_ended)
    return Response(status_code=204)


@router.post("/{operator_id}/reset-password", responses=error_responses(404))
def reset_operator_password(
    operator_id: uuid.UUID, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> OperatorWithPassword:
    """Give an operator a new one-time password (in this response only; to be changed at the next
    sign-in). Their sessions end at once."""
    reset = operators.reset_password(session, actor, operator_id, ctx.auth.clock())
    ctx.auth.sessions_ended(reset.sessions_ended)
    return OperatorWithPassword(
        **OperatorOut.of(operators.get(session, operator_id)).model_dump(),
        one_time_password=reset.one_time_password,
    )


@router.post("/{operator_id}/reset-mfa", responses=error_responses(404, 409))
def reset_operator_mfa(operator_id: uuid.UUID, actor: Manage, session: PlatformSession) -> OperatorOut:
    """Turn an operator's two-factor authentication off (a lost device): they sign in with their password
    and may enrol again. Not on is 409 MFA_NOT_ENABLED."""
    operators.reset_mfa(session, actor, operator_id)
    return OperatorOut.of(operators.get(session, operator_id))
