"""/api/v1/webhooks/endpoints: a tenant's webhook receivers, their secrets, attempts and replays."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.webhooks import (
    AttemptOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    ReplayOut,
    ReplaySinceIn,
    SecretOut,
)
from appliance.services.access.actors import Actor
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import log as webhook_log
from appliance.services.webhooks import replay as webhook_replay

router = routing.router(
    prefix="/webhooks/endpoints", tags=["webhooks"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require("webhooks:read"))]
Write = Annotated[Actor, Depends(require("webhooks:write"))]


async def _policy(ctx: ContextDep) -> outbound.AddressPolicy:
    return outbound.AddressPolicy.of(ctx.settings.outbound.allow_networks)


Policy = Annotated[outbound.AddressPolicy, Depends(_policy)]


@router.post("", status_code=201, responses=error_responses(409))
def create_endpoint(
    body: EndpointIn, actor: Write, session: TenantSession, policy: Policy, response: Response
) -> EndpointCreated:
    """Add a receiver. Its secret is in this answer and the rotation's only. A URL that is not http(s), is
    longer than 2,048 characters or points at an address the appliance may not reach is refused (422
    INVALID_URL, naming the reason); so is an unknown event type (422 UNKNOWN_EVENT_TYPE)."""
    endpoint = webhook_endpoints.create(
        session,
        actor,
        url=body.url,
        policy=policy,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    response.headers["Location"] = f"/api/v1/webhooks/endpoints/{endpoint.id}"
    return EndpointCreated.of(endpoint)


@router.get("")
def list_endpoints(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    enabled: bool | None = None,
) -> Page[EndpointOut]:
    """The tenant's endpoints, newest first (?enabled=false: the disabled ones)."""
    rows, next_cursor = webhook_endpoints.list_page(session, limit=limit, cursor=cursor, enabled=enabled)
    return Page(items=[EndpointOut.of(e) for e in rows], next_cursor=next_cursor)


@router.get("/{endpoint_id}", responses=error_responses(404))
def get_endpoint(endpoint_id: uuid.UUID, actor: Read, session: TenantSession) -> EndpointOut:
    """One endpoint (without its secret)."""
    return EndpointOut.of(webhook_endpoints.get(session, endpoint_id))


@router.patch("/{endpoint_id}", responses=error_responses(404))
def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointPatch, actor: Write, session: TenantSession, policy: Policy
) -> EndpointOut:
    """Change the URL, the event filter, the description, or turn it off and on (enabled: true re-enables
    an endpoint the appliance disabled)."""
    endpoint = webhook_endpoints.change(
        session,
        actor,
        endpoint_id,
        policy=policy,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointOut.of(endpoint)


@router.delete("/{endpoint_id}", status_code=204, responses=error_responses(404))
def delete_endpoint(endpoint_id: uuid.UUID, actor: Write, session: TenantSession) -> Response:
    """Remove an endpoint with its deliveries and attempts."""
    webhook_endpoints.delete(session, actor, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", responses=error_responses(404))
def rotate_secret(endpoint_id: uuid.UUID, actor: Write, session: TenantSession) -> SecretOut:
    """Replace the secret. For 24 hours requests carry two signatures, with the new secret and the old."""
    endpoint = webhook_endpoints.rotate_secret(session, actor, endpoint_id)
    assert endpoint.previous_secret_expires_at is not None
    return SecretOut(secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at)


@router.get("/{endpoint_id}/attempts", responses=error_responses(404))
def list_endpoint_attempts(
    *, endpoint_id: uuid.UUID, actor: Read, session: TenantSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[AttemptOut]:
    """The delivery log of an endpoint: every attempt, newest first."""
    rows, next_cursor = webhook_log.endpoint_attempts(session, endpoint_id, limit=limit, cursor=cursor)
    return Page(items=[AttemptOut.of(a) for a in rows], next_cursor=next_cursor)


@router.post("/{endpoint_id}/replay", status_code=202, responses=error_responses(404, 409))
def replay_failed(
    endpoint_id: uuid.UUID, body: ReplaySinceIn, actor: Write, session: TenantSession
) -> ReplayOut:
    """Send again every delivery to this endpoint that failed since ``since`` (up to 1,000 a call; ``more``
    says when to call again). A disabled endpoint is refused (409 WEBHOOK_ENDPOINT_DISABLED)."""
    count, more = webhook_replay.replay_failed(session, actor, endpoint_id, body.since)
    return ReplayOut(replayed=count, more=more)
