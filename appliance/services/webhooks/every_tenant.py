"""Every tenant's webhook endpoints, as operators see them: a page across tenants (or one tenant's), each
endpoint with its tenant's slug and how its last 24 hours of attempts went; one endpoint's delivery log;
and what an operator may do to one: turn it on or off (also one the appliance disabled after failures) and
replay its failed deliveries or one of its messages. Never an endpoint's secret.

``webhook_endpoints`` is under FORCEd row-level security and the app role sees one tenant's rows at a time.
On PostgreSQL a page's ids and tenants come from the owner's ``webhook_endpoints_ledger_page`` and an
endpoint's tenant from ``webhook_endpoints_tenant_of`` (migration 0014: ids, tenants and times only); the
rows are then read inside each tenant's scope (tenancy.inside). On SQLite (no row-level security) the
operator's platform scope reads the ids directly. An action runs inside the endpoint's tenant with the
tenant's own services, so it leaves the records in the tenant's audit trail (and the events) that the
tenant's own routes leave, naming the operator.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.access.actors import Actor
from appliance.services.common import every_tenant, pages, pagination
from appliance.services.outbound import guard as outbound
from appliance.services.tenancy import tenants
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import log as webhook_log
from appliance.services.webhooks import replay as webhook_replay

#: Operators' page of endpoints, newest first: (created_at, id). Its own list: a tenant's cursor is refused.
CURSORS = pagination.Keyset("platform_webhook_endpoints", dt.datetime, uuid.UUID)
#: An endpoint's attempts as operators read them, newest first: (created_at, id).
ATTEMPT_CURSORS = pagination.Keyset("platform_webhook_attempts", dt.datetime, uuid.UUID)
#: The window of :attr:`EndpointRow.attempts_24h` and :attr:`EndpointRow.success_rate`.
RECENT = dt.timedelta(hours=24)

_LEDGER_PAGE = every_tenant.ledger_statement(
    "webhook_endpoints_ledger_page", "enabled", WebhookEndpoint.__table__.c.created_at.type
)
_TENANT_OF = every_tenant.tenant_of_statement("webhook_endpoints_tenant_of")


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint with what operators see beside it."""

    endpoint: WebhookEndpoint
    tenant_slug: str
    attempts_24h: int
    """Its attempts over the last 24 hours."""
    success_rate: float | None
    """The share of those that succeeded (2xx), 0 to 1; None without any."""


@dataclass(frozen=True)
class AttemptRow:
    """One attempt, with the message it carried."""

    attempt: WebhookAttempt
    message_id: uuid.UUID
    event_type: str


# --------------------------------------------------------------------------- the page


def page(
    session: Session,
    *,
    tenant_id: uuid.UUID | None = None,
    enabled: bool | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[EndpointRow], str | None]:
    """Every tenant's endpoints (or ``tenant_id``'s: TENANT_NOT_FOUND for an unknown one), newest first;
    only the enabled or disabled ones if ``enabled`` is given."""
    pages.check_limit(limit)
    before: tuple[Any, ...] = (None, None) if cursor is None else CURSORS.decode(cursor)
    where = [] if enabled is None else [WebhookEndpoint.enabled.is_(enabled)]
    if tenant_id is not None:
        tenant = tenants.get(session, tenant_id)
        with tenancy.inside(session, tenant.id):
            keys = every_tenant.table_keys(session, WebhookEndpoint, where, before, limit + 1)
    elif every_tenant.postgres(session):
        params = {"enabled": enabled, "before_at": before[0], "before_id": before[1], "limit": limit + 1}
        keys = every_tenant.ledger_keys(session, _LEDGER_PAGE, params)
    else:  # platform scope: every tenant's rows
        keys = every_tenant.table_keys(session, WebhookEndpoint, where, before, limit + 1)
    shown, next_cursor = every_tenant.cut(keys, limit, CURSORS)
    return _rows(session, [(key[0], key[1]) for key in shown], now or utcnow()), next_cursor


def _rows(
    session: Session, keys: Sequence[tuple[uuid.UUID, uuid.UUID]], now: dt.datetime
) -> list[EndpointRow]:
    """The endpoints of ``keys`` (id, tenant) in that order, each read inside its tenant with its recent
    attempts counted; one removed in between is left out."""
    by_tenant = every_tenant.by_tenant(keys)
    found: dict[uuid.UUID, WebhookEndpoint] = {}
    counts: dict[uuid.UUID, tuple[int, int]] = {}
    for tenant_id, ids in by_tenant.items():
        with tenancy.inside(session, tenant_id):
            found.update(
                (e.id, e) for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
            )
            counts.update(_recent(session, ids, now - RECENT))
    slugs = every_tenant.slugs(session, by_tenant)
    rows = []
    for endpoint_id, tenant_id in keys:
        if endpoint_id not in found:
            continue
        attempts, succeeded = counts.get(endpoint_id, (0, 0))
        rate = succeeded / attempts if attempts else None
        rows.append(EndpointRow(found[endpoint_id], slugs.get(tenant_id, ""), attempts, rate))
    return rows


def _recent(
    session: Session, endpoint_ids: list[uuid.UUID], since: dt.datetime
) -> dict[uuid.UUID, tuple[int, int]]:
    """Attempts made since ``since`` and how many of them succeeded (2xx), by endpoint, inside its tenant."""
    status = WebhookAttempt.status_code
    succeeded = case((and_(status >= 200, status < 300), 1), else_=0)
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, func.count().label("n"), func.sum(succeeded).label("ok"))
        .select_from(WebhookAttempt)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookDelivery.endpoint_id.in_(endpoint_ids), WebhookAttempt.created_at >= since)
        .group_by(WebhookDelivery.endpoint_id)
    )
    return {row.endpoint_id: (int(row.n), int(row.ok or 0)) for row in rows}


# --------------------------------------------------------------------------- one endpoint


def tenant_of(session: Session, endpoint_id: uuid.UUID) -> uuid.UUID:
    """The tenant of an endpoint; WEBHOOK_ENDPOINT_NOT_FOUND (as the tenant's route answers) for an
    unknown id."""
    tenant_id = every_tenant.tenant_of(
        session, _TENANT_OF, WebhookEndpoint.tenant_id, WebhookEndpoint.id, endpoint_id
    )
    if tenant_id is None:
        raise webhook_endpoints.not_found(endpoint_id)
    return tenant_id


@contextmanager
def _inside_endpoint(session: Session, endpoint_id: uuid.UUID) -> Iterator[uuid.UUID]:
    """Act inside the endpoint's tenant for a block; what the block wrote is flushed there (row-level
    security takes a tenant's rows from that tenant's transaction only)."""
    tenant_id = tenant_of(session, endpoint_id)
    with tenancy.inside(session, tenant_id):
        yield tenant_id
        session.flush()


def get(session: Session, endpoint_id: uuid.UUID, now: dt.datetime | None = None) -> EndpointRow:
    """One endpoint of any tenant, as in :func:`page`."""
    rows = _rows(session, [(endpoint_id, tenant_of(session, endpoint_id))], now or utcnow())
    if not rows:
        raise webhook_endpoints.not_found(endpoint_id)
    return rows[0]


def attempts_page(
    session: Session,
    endpoint_id: uuid.UUID,
    *,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[AttemptRow], str | None]:
    """Every attempt to one endpoint, newest first, each with its message's id and event type."""
    pages.check_limit(limit)
    keyset = (WebhookAttempt.created_at, WebhookAttempt.id)
    query: Select[*tuple[Any, ...]] = (
        select(WebhookAttempt, WebhookDelivery.message_id, WebhookMessage.event_type)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if cursor is not None:
        query = pagination.after(query, keyset, ATTEMPT_CURSORS.decode(cursor), True)
    with _inside_endpoint(session, endpoint_id):
        found = session.execute(pagination.ordered(query, keyset, True).limit(limit + 1)).all()
    rows = [AttemptRow(row[0], row[1], row[2]) for row in found[:limit]]
    last = rows[-1].attempt if len(found) > limit else None
    next_cursor = ATTEMPT_CURSORS.encode([last.created_at, last.id]) if last is not None else None
    return rows, next_cursor


def set_enabled(
    session: Session,
    actor: Actor,
    endpoint_id: uuid.UUID,
    *,
    enabled: bool,
    policy: outbound.AddressPolicy,
    now: dt.datetime | None = None,
) -> EndpointRow:
    """Turn an endpoint on (also one the appliance disabled: its failures are forgotten) or off, as its
    tenant's PATCH does (``webhook_endpoint.update`` in the tenant's trail)."""
    with _inside_endpoint(session, endpoint_id):
        webhook_endpoints.change(session, actor, endpoint_id, policy=policy, enabled=enabled)
    return get(session, endpoint_id, now)


def replay_failed(
    session: Session, actor: Actor, endpoint_id: uuid.UUID, since: dt.datetime
) -> tuple[int, bool]:
    """Send again every delivery to the endpoint that failed since ``since``, as its tenant's replay does:
    how many (at most webhook_replay.MAX_REPLAY), and whether more are left."""
    with _inside_endpoint(session, endpoint_id):
        return webhook_replay.replay_failed(session, actor, endpoint_id, since)


def replay_message(
    session: Session, actor: Actor, endpoint_id: uuid.UUID, message_id: uuid.UUID
) -> list[WebhookDelivery]:
    """Send one message that went to the endpoint again, to that endpoint only (with the same webhook-id);
    WEBHOOK_MESSAGE_NOT_FOUND for a message that never went to it."""
    with _inside_endpoint(session, endpoint_id):
        webhook_endpoints.get(session, endpoint_id)
        sent = session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.message_id == message_id, WebhookDelivery.endpoint_id == endpoint_id
            )
        )
        if sent is None:
            raise webhook_log.message_not_found(message_id)
        return webhook_replay.replay_message(session, actor, message_id, endpoint_id)
