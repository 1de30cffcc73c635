"""Request and response bodies of /api/v1/webhooks: endpoints, event types, messages, deliveries, attempts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.webhooks import signing as webhook_signing
from appliance.services.webhooks.every_tenant import AttemptRow, EndpointRow
from appliance.services.webhooks.log import MessageView

# Longer than any URL the appliance accepts, so that a long one reaches the service's check and is refused
# there with the reason (422 INVALID_URL), not as a bare length error.
_URL_FIELD_MAX = 10_000


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=_URL_FIELD_MAX)
    """http(s) URL of the receiver, at most 2,048 characters; private, loopback and link-local addresses
    are refused unless the operator allowed them."""
    event_types: list[str] = Field(default_factory=list, max_length=100)
    """The event types it receives (GET /webhooks/event-types); empty: every type."""
    description: str = Field(default="", max_length=500)
    enabled: bool = True


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=_URL_FIELD_MAX)
    event_types: list[str] | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    """false turns it off; true turns it on again (also after the appliance disabled it)."""


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    """Why it is off: by the tenant, a 410 from the receiver, or days of failures."""
    failing_since: Timestamp | None
    """The first failure since its last success; after webhooks.disable_after_days it is disabled."""
    previous_secret_expires_at: Timestamp | None
    """Until then, requests carry a signature with the previous secret too (after a rotation)."""
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointOut:
        return cls(**_endpoint_fields(endpoint))


class EndpointCreated(EndpointOut):
    secret: str
    """``whsec_...``: verify requests with it (Standard Webhooks). Shown now and at rotation only."""

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointCreated:
        return cls(**_endpoint_fields(endpoint), secret=endpoint.secret)


def _endpoint_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at
        if endpoint.previous_secret
        else None,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


class SecretOut(BaseModel):
    secret: str
    """The new ``whsec_`` secret (shown once)."""
    previous_secret_expires_at: Timestamp
    """The previous secret still signs until then."""


class EventTypeOut(BaseModel):
    name: str
    description: str


class EventTypes(BaseModel):
    items: list[EventTypeOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    message_id: uuid.UUID
    endpoint_id: uuid.UUID
    state: str
    """pending, succeeded or failed."""
    attempts: int
    last_status: int | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.id,
            message_id=d.message_id,
            endpoint_id=d.endpoint_id,
            state=d.state,
            attempts=d.attempts,
            last_status=d.last_status,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class MessageOut(BaseModel):
    id: uuid.UUID
    webhook_id: str
    """The ``webhook-id`` header of every request of this message (the same on retries and replays)."""
    event_type: str
    payload: dict[str, Any]
    """The body sent: ``{"type", "timestamp", "data"}``."""
    created_at: Timestamp

    @classmethod
    def of(cls, m: WebhookMessage) -> MessageOut:
        return cls(**_message_fields(m))


class MessageDetail(MessageOut):
    deliveries: list[DeliveryOut]

    @classmethod
    def of_view(cls, view: MessageView) -> MessageDetail:
        deliveries = [DeliveryOut.of(d) for d in view.deliveries]
        return cls(**_message_fields(view.message), deliveries=deliveries)


def _message_fields(m: WebhookMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "webhook_id": webhook_signing.webhook_id(m.id),
        "event_type": m.event_type,
        "payload": orjson.loads(m.body),
        "created_at": m.created_at,
    }


class AttemptOut(BaseModel):
    id: uuid.UUID
    delivery_id: uuid.UUID
    attempt: int
    """The delivery's attempt number (counting on across replays)."""
    status_code: int | None
    """The receiver's status; null when no answer came (see error)."""
    latency_ms: float | None
    error: str | None
    response_excerpt: str
    """The start of the receiver's answer."""
    created_at: Timestamp

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(
            id=a.id,
            delivery_id=a.delivery_id,
            attempt=a.attempt,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            response_excerpt=a.response_excerpt,
            created_at=a.created_at,
        )


class ReplayMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: uuid.UUID | None = None
    """Only to this endpoint (also one the message never went to); otherwise to every enabled endpoint
    it went to."""


class ReplaySinceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: dt.datetime
    """Every delivery to the endpoint that failed and was made at or after this time (RFC 3339)."""


class ReplayOut(BaseModel):
    replayed: int
    """Deliveries sent again."""
    more: bool = False
    """More failed deliveries are left: ask again."""
    deliveries: list[DeliveryOut] = Field(default_factory=list)


class PlatformEndpointOut(EndpointOut):
    """An endpoint as operators see it, across tenants: whose it is and how its last day went (never its
    secret)."""

    tenant_id: uuid.UUID
    tenant_slug: str
    attempts_24h: int
    """Its delivery attempts over the last 24 hours."""
    success_rate: float | None
    """The share of those attempts that succeeded (2xx), 0 to 1; null when there were none."""

    @classmethod
    def of_row(cls, row: EndpointRow) -> PlatformEndpointOut:
        return cls(
            **_endpoint_fields(row.endpoint),
            tenant_id=row.endpoint.tenant_id,
            tenant_slug=row.tenant_slug,
            attempts_24h=row.attempts_24h,
            success_rate=row.success_rate,
        )


class EndpointEnabledIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    """true turns the endpoint on (also one the appliance disabled after failures: they are forgotten);
    false turns it off."""


class PlatformAttemptOut(AttemptOut):
    """An attempt in an endpoint's delivery log, with the message it carried."""

    message_id: uuid.UUID
    event_type: str

    @classmethod
    def of_row(cls, row: AttemptRow) -> PlatformAttemptOut:
        return cls(
            **AttemptOut.of(row.attempt).model_dump(), message_id=row.message_id, event_type=row.event_type
        )
