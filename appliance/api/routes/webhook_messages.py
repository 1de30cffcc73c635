"""/api/v1/webhooks/event-types and /webhooks/messages: what can be sent, what was, and replays."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Depends, Query

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.webhooks import (
    AttemptOut,
    DeliveryOut,
    EventTypeOut,
    EventTypes,
    MessageDetail,
    MessageOut,
    ReplayMessageIn,
    ReplayOut,
)
from appliance.services.access.actors import Actor
from appliance.services.webhooks import events
from appliance.services.webhooks import log as webhook_log
from appliance.services.webhooks import replay as webhook_replay

router = routing.router(prefix="/webhooks", tags=["webhooks"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("webhooks:read"))]
Write = Annotated[Actor, Depends(require("webhooks:write"))]


@router.get("/event-types")
def list_event_types(actor: Read) -> EventTypes:
    """Every event type an endpoint can subscribe to."""
    return EventTypes(items=[EventTypeOut(name=n, description=d) for n, d in events.EVENT_TYPES.items()])


@router.get("/messages")
def list_messages(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    event_type: Annotated[str | None, Query(max_length=100, description="Only this event type")] = None,
) -> Page[MessageOut]:
    """The events sent to the tenant's endpoints, newest first (an event no endpoint wanted is not kept)."""
    rows, next_cursor = webhook_log.messages(session, event_type=event_type, limit=limit, cursor=cursor)
    return Page(items=[MessageOut.of(m) for m in rows], next_cursor=next_cursor)


@router.get("/messages/{message_id}", responses=error_responses(404))
def get_message(message_id: uuid.UUID, actor: Read, session: TenantSession) -> MessageDetail:
    """One message, its body, and its delivery to each endpoint."""
    return MessageDetail.of_view(webhook_log.view(session, message_id))


@router.get("/messages/{message_id}/attempts", responses=error_responses(404))
def list_message_attempts(
    *, message_id: uuid.UUID, actor: Read, session: TenantSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[AttemptOut]:
    """Every attempt of one message, to all its endpoints, newest first."""
    rows, next_cursor = webhook_log.message_attempts(session, message_id, limit=limit, cursor=cursor)
    return Page(items=[AttemptOut.of(a) for a in rows], next_cursor=next_cursor)


@router.post("/messages/{message_id}/replay", status_code=202, responses=error_responses(404, 409))
def replay_message(
    message_id: uuid.UUID,
    actor: Write,
    session: TenantSession,
    body: Annotated[ReplayMessageIn | None, Body()] = None,
) -> ReplayOut:
    """Send a message again, with the same webhook-id: to every enabled endpoint it went to, or to
    ``endpoint_id`` only (409 WEBHOOK_ENDPOINT_DISABLED for a disabled one)."""
    endpoint_id = body.endpoint_id if body is not None else None
    deliveries = webhook_replay.replay_message(session, actor, message_id, endpoint_id)
    return ReplayOut(replayed=len(deliveries), deliveries=[DeliveryOut.of(d) for d in deliveries])
