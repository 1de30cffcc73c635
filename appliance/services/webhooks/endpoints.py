"""Webhook endpoints: a tenant's receivers, each with a URL, an event filter, a secret and an on/off switch.

A URL is checked when it is given (appliance.services.outbound.guard.check_url: http(s) only, at most 2,048
characters, never an address the appliance may not reach) and again at every call. The secret is shown
twice only: when the endpoint is made and when it is rotated. A rotation keeps the old secret signing
alongside the new one for :data:`ROTATION_OVERLAP`, so that receivers can be moved to the new one without
dropping a delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.db.base import utcnow
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import WebhookEndpoint
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pages as webhook_pages
from appliance.services.outbound import guard as outbound
from appliance.services.tenancy.organizations import tenant_of
from appliance.services.webhooks import events
from appliance.services.webhooks import signing as webhook_signing

#: How long the previous secret still signs after a rotation (Svix and Stripe give 24 hours too).
ROTATION_OVERLAP = dt.timedelta(hours=24)

#: Endpoints one tenant may have: every event is one delivery (and one job) per endpoint.
MAX_ENDPOINTS = 50

DISABLED_BY_TENANT = "disabled by the tenant"
DISABLED_BY_OPERATOR = "disabled by a platform operator"


def not_found(endpoint_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"webhook endpoint {str(endpoint_id)!r} was not found",
        code="WEBHOOK_ENDPOINT_NOT_FOUND",
        details={"endpoint_id": str(endpoint_id)},
    )


def get(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """One endpoint of the session's tenant (another tenant's is not found)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise not_found(endpoint_id)
    return endpoint


def check_event_types(names: Sequence[str]) -> list[str]:
    """The filter as stored: known event types, each once, in the order given (empty: every type)."""
    unknown = [name for name in names if name not in events.EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"{unknown[0]!r} is not an event type (GET /api/v1/webhooks/event-types lists them)",
            code="UNKNOWN_EVENT_TYPE",
            details={
                "fields": [{"loc": ["body", "event_types"], "msg": "unknown event type"}],
                "unknown": unknown,
            },
        )
    return list(dict.fromkeys(names))


def live_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a request sent at ``now``: the current one, and the previous one during the
    overlap after a rotation."""
    return signing_secrets(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
    )


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: dt.datetime | None, now: dt.datetime
) -> list[str]:
    """:func:`live_secrets` from an endpoint's columns."""
    if previous and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]


def create(
    session: Session,
    actor: Actor,
    *,
    url: str,
    policy: outbound.AddressPolicy,
    event_types: Sequence[str] = (),
    description: str = "",
    enabled: bool = True,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (INVALID_URL, UNKNOWN_EVENT_TYPE, WEBHOOK_ENDPOINT_LIMIT)."""
    target = outbound.check_url(url, policy)
    types = check_event_types(event_types)
    tenant_id = tenant_of(actor)
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0
    if count >= MAX_ENDPOINTS:
        raise Conflict(
            f"the tenant has {count} webhook endpoints, the most it may have",
            code="WEBHOOK_ENDPOINT_LIMIT",
            details={"limit": MAX_ENDPOINTS},
        )
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        url=target.url,
        description=description,
        event_types=types,
        secret=webhook_signing.new_secret(),
        enabled=enabled,
        disabled_reason=None if enabled else DISABLED_BY_TENANT,
    )
    session.add(endpoint)
    session.flush()
    _audit(session, actor, endpoint, "webhook_endpoint.create", {"url": target.url, "event_types": types})
    return endpoint


def list_page(
    session: Session, *, limit: int = 50, cursor: str | None = None, enabled: bool | None = None
) -> tuple[list[WebhookEndpoint], str | None]:
    """The tenant's endpoints, newest first."""
    query = select(WebhookEndpoint)
    if enabled is not None:
        query = query.where(WebhookEndpoint.enabled.is_(enabled))
    return webhook_pages.newest_first(
        session, query, WebhookEndpoint.created_at, WebhookEndpoint.id, limit=limit, cursor=cursor
    )


def change(
    session: Session,
    actor: Actor,
    endpoint_id: uuid.UUID,
    *,
    policy: outbound.AddressPolicy,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint; ``enabled=True`` re-enables one that was disabled (and forgets its failures)."""
    endpoint = get(session, endpoint_id)
    changes: dict[str, list[Any]] = {}
    if url is not None and url != endpoint.url:
        changes["url"] = [endpoint.url, outbound.check_url(url, policy).url]
    if event_types is not None:
        types = check_event_types(event_types)
        if types != endpoint.event_types:
            changes["event_types"] = [endpoint.event_types, types]
    if description is not None and description != endpoint.description:
        changes["description"] = [endpoint.description, description]
    if enabled is not None and enabled != endpoint.enabled:
        changes["enabled"] = [endpoint.enabled, enabled]
    if not changes:
        return endpoint
    for name, (_, new) in changes.items():
        setattr(endpoint, name, new)
    if "enabled" in changes:
        # Re-enabled: a fresh start (five days of failures count from the next failure). Disabled by hand:
        # pending deliveries fail when their turn comes.
        endpoint.disabled_reason = None if endpoint.enabled else _disabled_by(actor)
        endpoint.failing_since = None
    session.flush()
    _audit(session, actor, endpoint, "webhook_endpoint.update", changes)
    return endpoint


def _disabled_by(actor: Actor) -> str:
    """Why an endpoint turned off by hand is off: by its tenant, or by an operator (the platform's routes)."""
    return DISABLED_BY_OPERATOR if actor.operator else DISABLED_BY_TENANT


def rotate_secret(
    session: Session, actor: Actor, endpoint_id: uuid.UUID, now: dt.datetime | None = None
) -> WebhookEndpoint:
    """A new secret; the one it replaces still signs for :data:`ROTATION_OVERLAP` (a secret older than
    that stops at once)."""
    endpoint = get(session, endpoint_id)
    moment = now or utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = moment + ROTATION_OVERLAP
    endpoint.secret = webhook_signing.new_secret()
    session.flush()
    summary = {"previous_secret_expires_at": endpoint.previous_secret_expires_at}
    _audit(session, actor, endpoint, "webhook_endpoint.rotate_secret", summary)
    return endpoint


def delete(session: Session, actor: Actor, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint with its deliveries and their attempts (their messages stay)."""
    endpoint = get(session, endpoint_id)
    session.delete(endpoint)
    session.flush()
    _audit(session, actor, endpoint, "webhook_endpoint.delete", {"url": endpoint.url})


def _audit(
    session: Session, actor: Actor | None, endpoint: WebhookEndpoint, action: str, summary: dict[str, Any]
) -> None:
    audit.record(
        session,
        action=action,
        tenant_id=endpoint.tenant_id,
        actor=actor,
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        summary=summary,
    )


def disable(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    """Turn an endpoint off on the appliance's own decision (it kept failing, or answered 410); the audit
    record becomes the ``webhook_endpoint.disabled`` event, sent to the tenant's other endpoints."""
    if not endpoint.enabled:
        return
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:200]
    session.flush()
    _audit(session, None, endpoint, "webhook_endpoint.disable", {"url": endpoint.url, "reason": reason})
