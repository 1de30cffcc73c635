"""Events tenants subscribe to: the catalogue, the audit actions that become events, and publishing.

:func:`publish` writes, in the caller's transaction, the message (its body serialized once, exactly as every
endpoint receives it), one delivery per enabled endpoint of the tenant whose filter matches, and one durable
job per delivery; the jobs reach the queue after the commit (appliance.services.jobs.durable). A change rolled
back sends nothing.

The hot path: every audited change of a tenant calls :func:`from_audit`. When no enabled endpoint of the
tenant wants the event, publishing costs one SELECT on the endpoints' tenant index and writes nothing, not
even the message: a message is kept only when someone is to receive it (so the message log lists what was
sent, and an endpoint added later does not get earlier events replayed to it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models import AuditLog, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.audit import log as audit
from appliance.services.jobs import durable as jobs

#: Every event type an endpoint may subscribe to, with what it means (GET /webhooks/event-types).
EVENT_TYPES: dict[str, str] = {
    "tenant.updated": "The tenant's name or plan changed.",
    "tenant.suspended": "The tenant was suspended: its users and keys are refused until it is resumed.",
    "tenant.resumed": "A suspension of the tenant was lifted.",
    "tenant.deleted": "The tenant was deleted; it is purged after the grace period unless restored.",
    "tenant.restored": "A deleted tenant was restored before its purge.",
    "organization.created": "An organization was created.",
    "organization.updated": "An organization was renamed or moved.",
    "organization.deleted": "An organization was deleted.",
    "project.created": "A project was created.",
    "project.updated": "A project was renamed, described anew or moved to another organization.",
    "project.deleted": "A project was deleted.",
    "membership.created": "A user became a member of the tenant.",
    "membership.updated": "A member's role changed.",
    "membership.deleted": "A member was removed from the tenant.",
    "role.created": "A custom role was created.",
    "role.updated": "A custom role's permissions changed.",
    "role.deleted": "A custom role was deleted.",
    "api_key.created": "An API key was created.",
    "api_key.revoked": "An API key was revoked.",
    "user.password_changed": "A member changed their password.",
    "user.mfa_enabled": "A member turned two-factor authentication on.",
    "user.mfa_disabled": "A member turned two-factor authentication off.",
    "user.recovery_codes_regenerated": "A member made new two-factor recovery codes.",
    "webhook_endpoint.created": "A webhook endpoint was added.",
    "webhook_endpoint.updated": "A webhook endpoint's URL, filter, description or state changed.",
    "webhook_endpoint.deleted": "A webhook endpoint was removed.",
    "webhook_endpoint.secret_rotated": "A webhook endpoint's secret was replaced (the old one still signs "
    "for the overlap).",
    "webhook_endpoint.disabled": "A webhook endpoint was disabled because it kept failing or answered "
    "410 Gone; re-enable it with PATCH enabled=true.",
    "app.down": "A monitored application went down (an incident opened).",
    "app.up": "A monitored application is up again (its incident closed).",
}

#: Audit actions that become events, and the event each becomes. The rest do not: sign-ins and refused
#: sign-ins (personal, and too frequent to be a change), operators' own accounts and rate-limit settings
#: (platform matters), tenant.create (the tenant has no endpoint yet) and tenant.purge (it has none left).
AUDIT_EVENTS: dict[str, str] = {
    "tenant.update": "tenant.updated",
    "tenant.suspend": "tenant.suspended",
    "tenant.resume": "tenant.resumed",
    "tenant.delete": "tenant.deleted",
    "tenant.restore": "tenant.restored",
    "organization.create": "organization.created",
    "organization.update": "organization.updated",
    "organization.delete": "organization.deleted",
    "project.create": "project.created",
    "project.update": "project.updated",
    "project.delete": "project.deleted",
    "membership.create": "membership.created",
    "membership.update": "membership.updated",
    "membership.delete": "membership.deleted",
    "role.create": "role.created",
    "role.update": "role.updated",
    "role.delete": "role.deleted",
    "api_key.create": "api_key.created",
    "api_key.revoke": "api_key.revoked",
    "auth.password_changed": "user.password_changed",
    "mfa.enable": "user.mfa_enabled",
    "mfa.disable": "user.mfa_disabled",
    "mfa.recovery_codes": "user.recovery_codes_regenerated",
    "webhook_endpoint.create": "webhook_endpoint.created",
    "webhook_endpoint.update": "webhook_endpoint.updated",
    "webhook_endpoint.delete": "webhook_endpoint.deleted",
    "webhook_endpoint.rotate_secret": "webhook_endpoint.secret_rotated",
    "webhook_endpoint.disable": "webhook_endpoint.disabled",
}

#: The job that sends one delivery. Standard Webhooks' schedule: at once, then after 5 s, 5 min, 30 min,
#: 2 h, 5 h, 10 h and 10 h (8 attempts over about 28 hours), each moved by up to 10 % either way.
DELIVER = jobs.kind(
    "webhooks.deliver",
    max_attempts=8,
    delays=(5, 300, 1800, 7200, 18000, 36000, 36000),
    jitter=0.1,
)


def rfc3339(moment: dt.datetime) -> str:
    """An event's time: UTC, to the microsecond (``2026-11-22T01:27:39.123456Z``)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render(event_type: str, moment: dt.datetime, data: dict[str, Any]) -> bytes:
    """The body every endpoint receives, serialized once (UUIDs and times as strings)."""
    document = {"type": event_type, "timestamp": rfc3339(moment), "data": data}
    return orjson.dumps(document, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def publish(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    now: dt.datetime | None = None,
) -> WebhookMessage | None:
    """Send ``event_type`` to the tenant's endpoints that want it, once the caller's transaction commits;
    None (and nothing written) when none does. The session must be scoped to ``tenant_id``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not in appliance.services.webhooks.events.EVENT_TYPES")
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True))
        .execution_options(**{tenancy.EXPLICIT_TENANT: True})
    ).all()
    targets = [row.id for row in endpoints if not row.event_types or event_type in row.event_types]
    if not targets:
        return None
    moment = now or utcnow()
    message = WebhookMessage(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        event_type=event_type,
        body=render(event_type, moment, data).decode(),
        created_at=moment,
    )
    session.add(message)
    # Written first: with no relationship() between them, the unit of work does not order the
    # deliveries (their foreign key) after it.
    session.flush()
    for endpoint_id in targets:
        add_delivery(session, message, endpoint_id, now=moment)
    session.flush()  # now, under the tenant's scope (from_audit may leave it when this returns)
    return message


def add_delivery(
    session: Session, message: WebhookMessage, endpoint_id: uuid.UUID, *, now: dt.datetime
) -> WebhookDelivery:
    """A pending delivery of ``message`` to one endpoint, and the job that sends it."""
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=message.tenant_id,
        message_id=message.id,
        endpoint_id=endpoint_id,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    job = jobs.enqueue(
        session, DELIVER, {"delivery_id": str(delivery.id)}, tenant_id=message.tenant_id, now=now
    )
    delivery.job_id = job.id
    session.add(delivery)
    return delivery


def from_audit(session: Session, record: AuditLog) -> WebhookMessage | None:
    """The event of an audit record, if its action has one (:data:`AUDIT_EVENTS`).

    A tenant's record goes to that tenant; a tenant's record on the platform chain (an operator suspended
    it: tenant_id None, resource_type "tenant") goes to the tenant it names; other platform records to
    nobody."""
    event_type = AUDIT_EVENTS.get(record.action)
    if event_type is None:
        return None
    tenant_id = record.tenant_id
    if tenant_id is None:
        if record.resource_type != "tenant" or record.resource_id is None:
            return None
        tenant_id = uuid.UUID(record.resource_id)
    data = {
        "id": record.resource_id,
        "summary": record.summary,
        "actor": {"user_id": record.actor_user_id, "api_key_id": record.actor_api_key_id},
    }
    if tenancy.current_tenant(session) == tenant_id:
        return publish(session, tenant_id=tenant_id, event_type=event_type, data=data, now=record.created_at)
    with tenancy.inside(session, tenant_id):
        return publish(session, tenant_id=tenant_id, event_type=event_type, data=data, now=record.created_at)


# Every audit record whose action is an event is published, in the transaction that records it.
audit.on_record(AUDIT_EVENTS, from_audit)
