"""/api/v1/api-keys: the tenant's API keys, for applications calling the API with X-API-Key."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.api_keys import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from appliance.api.schemas.errors import error_responses
from appliance.services.access.actors import Actor
from appliance.services.identity import api_keys

router = routing.router(prefix="/api-keys", tags=["api-keys"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("api_keys:read"))]
Write = Annotated[Actor, Depends(require("api_keys:write"))]


@router.post("", status_code=201)
def create_api_key(
    body: ApiKeyIn, actor: Write, session: TenantSession, response: Response, ctx: ContextDep
) -> ApiKeyCreated:
    """Create a key. The whole key is in this response only: it is stored hashed. Its scopes must be
    known permissions (422 SCOPE_UNKNOWN) that the creator holds (403 SCOPE_TOO_BROAD); expires_at must
    be in the future (422 EXPIRES_IN_PAST). The key never does more than its creator can do now (a key
    made with a key: that key's creator): a demotion narrows it, leaving the tenant revokes it."""
    new = api_keys.create(
        session,
        actor,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        now=ctx.auth.clock(),
    )
    response.headers["Location"] = f"/api/v1/api-keys/{new.key.id}"
    effective = api_keys.effective_scopes(session, [new.key], ctx.auth.clock())
    return ApiKeyCreated(**ApiKeyOut.of(new.key, effective[new.key.id]).model_dump(), key=new.secret)


@router.get("")
def list_api_keys(
    *,
    actor: Read,
    session: TenantSession,
    ctx: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    revoked: Annotated[bool | None, Query(description="Only revoked (true) or usable (false) keys")] = None,
) -> Page[ApiKeyOut]:
    """The tenant's keys, oldest first; never their secrets. ``effective_scopes`` is what each may do now:
    its scopes as far as its creator still holds them."""
    rows, next_cursor = api_keys.list_page(session, revoked=revoked, limit=limit, cursor=cursor)
    effective = api_keys.effective_scopes(session, rows, ctx.auth.clock())
    return Page(items=[ApiKeyOut.of(k, effective[k.id]) for k in rows], next_cursor=next_cursor)


@router.get("/{key_id}", responses=error_responses(404))
def get_api_key(key_id: uuid.UUID, actor: Read, session: TenantSession, ctx: ContextDep) -> ApiKeyOut:
    """One key, without its secret, with what it may do now (``effective_scopes``)."""
    key = api_keys.get(session, key_id)
    return ApiKeyOut.of(key, api_keys.effective_scopes(session, [key], ctx.auth.clock())[key.id])


@router.delete("/{key_id}", status_code=204, responses=error_responses(404))
def revoke_api_key(key_id: uuid.UUID, actor: Write, session: TenantSession, ctx: ContextDep) -> Response:
    """Revoke a key: it stops working at once (401 API_KEY_REVOKED) and stays listed with revoked_at."""
    api_keys.revoke(session, actor, key_id, ctx.auth.clock())
    return Response(status_code=204)
