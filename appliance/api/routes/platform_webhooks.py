"""/api/v1/platform/webhooks/endpoints: every tenant's webhook endpoints for operators
(platform_webhooks:read), and what an operator does to one (platform_webhooks:manage): turn it on or off
and replay its failed deliveries or one message. Each action lands in the tenant's audit trail, as the
tenant's own route's does."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.webhooks import (
    DeliveryOut,
    EndpointEnabledIn,
    PlatformAttemptOut,
    PlatformEndpointOut,
    ReplayOut,
    ReplaySinceIn,
)
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import every_tenant

router = routing.router(
    prefix="/platform/webhooks/endpoints",
    tags=["webhooks"],
    responses=error_responses(401, 403, 404, 422, 429),
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_WEBHOOKS_READ))]
Manage = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_WEBHOOKS_MANAGE))]


@router.get("")
def list_all_endpoints(
    *,
    actor: Read,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Only this tenant's endpoints")] = None,
    enabled: Annotated[bool | None, Query(description="false: only the disabled ones")] = None,
) -> Page[PlatformEndpointOut]:
    """Every tenant's endpoints (or one tenant's, with ?tenant_id=: 404 TENANT_NOT_FOUND for an unknown
    one), newest first, each with its tenant, its attempts over the last 24 hours and the share of them
    that succeeded."""
    rows, next_cursor = every_tenant.page(
        session, tenant_id=tenant_id, enabled=enabled, limit=limit, cursor=cursor
    )
    return Page(items=[PlatformEndpointOut.of_row(row) for row in rows], next_cursor=next_cursor)


@router.get("/{endpoint_id}")
def get_any_endpoint(endpoint_id: uuid.UUID, actor: Read, session: PlatformSession) -> PlatformEndpointOut:
    """Any tenant's endpoint (404 WEBHOOK_ENDPOINT_NOT_FOUND for an unknown id)."""
    return PlatformEndpointOut.of_row(every_tenant.get(session, endpoint_id))


@router.patch("/{endpoint_id}")
def set_endpoint_enabled(
    endpoint_id: uuid.UUID, body: EndpointEnabledIn, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> PlatformEndpointOut:
    """Turn an endpoint on (also one the appliance disabled after days of failures or a 410: its failures
    are forgotten) or off. Recorded in the tenant's audit trail as webhook_endpoint.update."""
    policy = outbound.AddressPolicy.of(ctx.settings.outbound.allow_networks)
    row = every_tenant.set_enabled(session, actor, endpoint_id, enabled=body.enabled, policy=policy)
    return PlatformEndpointOut.of_row(row)


@router.get("/{endpoint_id}/attempts")
def list_any_endpoint_attempts(
    *, endpoint_id: uuid.UUID, actor: Read, session: PlatformSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[PlatformAttemptOut]:
    """The endpoint's delivery log: every attempt, newest first, with the message it carried."""
    rows, next_cursor = every_tenant.attempts_page(session, endpoint_id, limit=limit, cursor=cursor)
    return Page(items=[PlatformAttemptOut.of_row(row) for row in rows], next_cursor=next_cursor)


@router.post("/{endpoint_id}/replay", status_code=202, responses=error_responses(409))
def replay_endpoint_failed(
    endpoint_id: uuid.UUID, body: ReplaySinceIn, actor: Manage, session: PlatformSession
) -> ReplayOut:
    """Send again every delivery to the endpoint that failed since ``since`` (up to 1,000 a call; ``more``
    says when to call again). A disabled endpoint is refused (409 WEBHOOK_ENDPOINT_DISABLED)."""
    count, more = every_tenant.replay_failed(session, actor, endpoint_id, body.since)
    return ReplayOut(replayed=count, more=more)


@router.post("/{endpoint_id}/messages/{message_id}/replay", status_code=202, responses=error_responses(409))
def replay_endpoint_message(
    endpoint_id: uuid.UUID, message_id: uuid.UUID, actor: Manage, session: PlatformSession
) -> ReplayOut:
    """Send one message the endpoint was sent again, to it only, with the same webhook-id (404
    WEBHOOK_MESSAGE_NOT_FOUND for a message that never went to it; 409 WEBHOOK_ENDPOINT_DISABLED for a
    disabled endpoint)."""
    deliveries = every_tenant.replay_message(session, actor, endpoint_id, message_id)
    return ReplayOut(replayed=len(deliveries), deliveries=[DeliveryOut.of(d) for d in deliveries])
