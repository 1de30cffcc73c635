"""Replays: send a message again (to every endpoint it went to, or to one), or everything that failed to
an endpoint since a time. The same body and ``webhook-id`` go out again, freshly signed.

A replayed delivery (FAILED or SUCCEEDED -> PENDING) gets a new job; the job it had, if it is still
queued or running, finds itself superseded (the delivery names its job) and stops."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.base import utcnow
from appliance.errors import Conflict, InvalidInput
from appliance.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.jobs import durable as jobs
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.services.webhooks import log as webhook_log

#: Deliveries one replay-since request starts; ask again for the rest (the answer says there are more).
MAX_REPLAY = 1000


def _enabled(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = webhook_endpoints.get(session, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            f"webhook endpoint {str(endpoint_id)!r} is disabled: enable it first (PATCH enabled=true)",
            code="WEBHOOK_ENDPOINT_DISABLED",
            details={"endpoint_id": str(endpoint_id), "disabled_reason": endpoint.disabled_reason},
        )
    return endpoint


def restart(session: Session, delivery: WebhookDelivery, now: dt.datetime) -> None:
    """FAILED/SUCCEEDED/PENDING -> PENDING under a new job, due now."""
    job = jobs.enqueue(
        session, events.DELIVER, {"delivery_id": str(delivery.id)}, tenant_id=delivery.tenant_id, now=now
    )
    delivery.state = DeliveryState.PENDING.value
    delivery.next_attempt_at = now
    delivery.job_id = job.id


def replay_message(
    session: Session,
    actor: Actor,
    message_id: uuid.UUID,
    endpoint_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> list[WebhookDelivery]:
    """Send a message again to the enabled endpoints it went to, or to ``endpoint_id`` only (which may be
    one it never went to, such as an endpoint added since)."""
    moment = now or utcnow()
    view = webhook_log.view(session, message_id)
    if endpoint_id is not None:
        _enabled(session, endpoint_id)
        chosen = [d for d in view.deliveries if d.endpoint_id == endpoint_id]
        if not chosen:
            chosen = [events.add_delivery(session, view.message, endpoint_id, now=moment)]
            session.flush()
        else:
            restart(session, chosen[0], moment)
    else:
        enabled = set(session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))))
        chosen = [d for d in view.deliveries if d.endpoint_id in enabled]
        for delivery in chosen:
            restart(session, delivery, moment)
    audit.record(
        session,
        action="webhook_message.replay",
        tenant_id=view.message.tenant_id,
        actor=actor,
        resource_type="webhook_message",
        resource_id=message_id,
        summary={"endpoints": [d.endpoint_id for d in chosen]},
    )
    return chosen


def replay_failed(
    session: Session, actor: Actor, endpoint_id: uuid.UUID, since: dt.datetime, now: dt.datetime | None = None
) -> tuple[int, bool]:
    """Send again every failed delivery to the endpoint made at or after ``since`` (oldest first, at most
    :data:`MAX_REPLAY`); returns how many, and whether more are left."""
    if since.tzinfo is None:
        raise InvalidInput("since needs a time zone (use UTC: ...Z)", details={"since": since.isoformat()})
    endpoint = _enabled(session, endpoint_id)
    moment = now or utcnow()
    failed = list(
        session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.state == DeliveryState.FAILED.value,
                WebhookDelivery.created_at >= since,
            )
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            .limit(MAX_REPLAY + 1)
        )
    )
    more = len(failed) > MAX_REPLAY
    for delivery in failed[:MAX_REPLAY]:
        restart(session, delivery, moment)
    count = min(len(failed), MAX_REPLAY)
    audit.record(
        session,
        action="webhook_endpoint.replay",
        tenant_id=endpoint.tenant_id,
        actor=actor,
        resource_type="webhook_endpoint",
        resource_id=endpoint_id,
        summary={"since": since, "replayed": count},
    )
    return count, more
