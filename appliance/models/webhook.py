"""Webhooks: tenants' endpoints, the messages (events) sent to them, one delivery per message and endpoint,
and a record of every attempt."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import JSON, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow


class WebhookEndpoint(TenantOwned, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        Index("ix_webhook_endpoints_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Event types delivered to it; empty means every type."""
    secret: Mapped[str] = mapped_column(String(100))
    """``whsec_`` + base64 key, used to sign (Standard Webhooks)."""
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    """The secret before the last rotation: deliveries carry both signatures until it expires."""
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    failing_since: Mapped[dt.datetime | None] = mapped_column(default=None)
    """The first failed attempt since the last success; five days of failure disable the endpoint."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookMessage(TenantOwned, Base):
    """An event of a tenant, with the exact body every endpoint receives (so that a re-send is identical)."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        Index("ix_webhook_messages_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    """The JSON payload ``{"type", "timestamp", "data"}`` exactly as sent."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its next attempt (the first, or a retry on the schedule), or being sent."""
    SUCCEEDED = "succeeded"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """No attempt left, the receiver answered 410, or the endpoint was disabled."""


#: Allowed transitions, each with why (appliance.services.webhooks.delivery and webhook_replay apply them).
DELIVERY_TRANSITIONS: dict[tuple[DeliveryState, DeliveryState], str] = {
    (DeliveryState.PENDING, DeliveryState.SUCCEEDED): "the receiver answered 2xx",
    (DeliveryState.PENDING, DeliveryState.PENDING): "an attempt failed and attempts remain (next_attempt_at)",
    (DeliveryState.PENDING, DeliveryState.FAILED): "the last attempt failed, a 410, or the endpoint is off",
    (DeliveryState.FAILED, DeliveryState.PENDING): "replayed by the tenant",
    (DeliveryState.SUCCEEDED, DeliveryState.PENDING): "replayed by the tenant (the receiver gets it again)",
}


class WebhookDelivery(TenantOwned, Base):
    """One message to one endpoint: its state across attempts (the attempts themselves are its job's)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "message_id", "endpoint_id"),
        ForeignKeyConstraint(
            ["tenant_id", "message_id"],
            ["webhook_messages.tenant_id", "webhook_messages.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_webhook_deliveries_tenant_id_endpoint_id_created_at", "tenant_id", "endpoint_id", "created_at"
        ),
        Index("ix_webhook_deliveries_tenant_id_state_created_at", "tenant_id", "state", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    message_id: Mapped[uuid.UUID]
    endpoint_id: Mapped[uuid.UUID]
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    """A :class:`DeliveryState`."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[int | None] = mapped_column(default=None)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    """The job that sends it now; an older job of a replayed delivery finds itself superseded and stops."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookAttempt(TenantOwned, Base):
    """One HTTP request of a delivery and what came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_webhook_attempts_tenant_id_delivery_id_created_at", "tenant_id", "delivery_id", "created_at"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    delivery_id: Mapped[uuid.UUID]
    attempt: Mapped[int]
    status_code: Mapped[int | None] = mapped_column(default=None)
    latency_ms: Mapped[float | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
