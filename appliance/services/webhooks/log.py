"""The webhook log a tenant reads: messages (the events sent), each with its deliveries, and every attempt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.errors import InvalidInput, NotFound
from appliance.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from appliance.services.common import pages as webhook_pages
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events


@dataclass(frozen=True)
class MessageView:
    message: WebhookMessage
    deliveries: list[WebhookDelivery]


def message_not_found(message_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"webhook message {str(message_id)!r} was not found",
        code="WEBHOOK_MESSAGE_NOT_FOUND",
        details={"message_id": str(message_id)},
    )


def get_message(session: Session, message_id: uuid.UUID) -> WebhookMessage:
    message = session.get(WebhookMessage, message_id)
    if message is None:
        raise message_not_found(message_id)
    return message


def view(session: Session, message_id: uuid.UUID) -> MessageView:
    """A message with its deliveries (one per endpoint it went to: at most the tenant's endpoints)."""
    message = get_message(session, message_id)
    deliveries = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.message_id == message_id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return MessageView(message, list(deliveries))


def messages(
    session: Session, *, event_type: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[WebhookMessage], str | None]:
    """The tenant's messages, newest first; only those of ``event_type`` when given."""
    query = select(WebhookMessage)
    if event_type is not None:
        if event_type not in events.EVENT_TYPES:
            raise InvalidInput(
                f"{event_type!r} is not an event type",
                code="UNKNOWN_EVENT_TYPE",
                details={"event_type": event_type},
            )
        query = query.where(WebhookMessage.event_type == event_type)
    return webhook_pages.newest_first(
        session, query, WebhookMessage.created_at, WebhookMessage.id, limit=limit, cursor=cursor
    )


def endpoint_attempts(
    session: Session, endpoint_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[WebhookAttempt], str | None]:
    """Every attempt to one endpoint, newest first (WEBHOOK_ENDPOINT_NOT_FOUND for another's)."""
    webhook_endpoints.get(session, endpoint_id)
    query = (
        select(WebhookAttempt)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    return webhook_pages.newest_first(
        session, query, WebhookAttempt.created_at, WebhookAttempt.id, limit=limit, cursor=cursor
    )


def message_attempts(
    session: Session, message_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[WebhookAttempt], str | None]:
    """Every attempt of one message, to all its endpoints, newest first."""
    get_message(session, message_id)
    query = (
        select(WebhookAttempt)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookDelivery.message_id == message_id)
    )
    return webhook_pages.newest_first(
        session, query, WebhookAttempt.created_at, WebhookAttempt.id, limit=limit, cursor=cursor
    )
