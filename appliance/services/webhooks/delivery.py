"""Sending one delivery: read what to send, make one attempt, record it and decide what comes next.

Run by the ``webhooks.deliver`` job (appliance.services.webhooks.events.DELIVER) on the worker's event loop:
the database steps run off the loop, through a :class:`Store` (under the tenant's scope: a short transaction
per step on SQLite; on PostgreSQL, reads and successful attempts are batched across deliveries by
appliance.services.webhooks.batches), and the HTTP attempt waits on the loop
(appliance.services.webhooks.sender), so a receiver that hangs holds one slot of the concurrency limit until
its timeout, never a worker.

What an attempt's outcome does (appliance.models.webhook.DELIVERY_TRANSITIONS):
- 2xx: PENDING -> SUCCEEDED; the endpoint's run of failures ends.
- 410 Gone: PENDING -> FAILED, and the endpoint is disabled (the receiver says it is gone for good).
- anything else (an error status, a 3xx, a timeout, a refused address, a name that does not resolve):
  PENDING -> PENDING with the next attempt on the schedule, or after Retry-After on a 429/503 (clamped to
  :data:`RETRY_AFTER_RANGE`); PENDING -> FAILED after the last attempt. An endpoint whose failures have
  lasted ``webhooks.disable_after_days`` is disabled, which tells the tenant's other endpoints.

Every step is idempotent under at-least-once jobs: a delivery that is no longer pending, or whose job is
not this one (it was replayed since), is left alone; a worker killed between the send and the record sends
again, with the same ``webhook-id``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appliance.config import Settings
from appliance.db.base import utcnow
from appliance.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import clients as http_clients
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.services.webhooks import sender as webhook_sender
from appliance.services.webhooks import signing as webhook_signing

#: The wait a Retry-After may ask for, in seconds: at least a second, at most the schedule's longest wait.
RETRY_AFTER_RANGE = (1.0, 36_000.0)


@dataclass(frozen=True)
class DeliveryConfig:
    limits: webhook_sender.Limits
    disable_after: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> DeliveryConfig:
        limits = webhook_sender.Limits(
            timeout=settings.webhooks.timeout,
            max_response_bytes=settings.webhooks.max_response_bytes,
            policy=outbound.AddressPolicy.of(settings.outbound.allow_networks),
        )
        return cls(limits, dt.timedelta(days=settings.webhooks.disable_after_days))


@dataclass(frozen=True)
class JobAttempt:
    """The job running the delivery: its id, and which of its attempts this is."""

    job_id: uuid.UUID
    number: int
    max_attempts: int

    @property
    def last(self) -> bool:
        return self.number >= self.max_attempts


@dataclass(frozen=True)
class Prepared:
    tenant_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    msg_id: str
    body: bytes
    secrets: list[str]
    number: int
    """The delivery's attempt number (attempts go on counting across replays)."""
    failing: bool
    """The endpoint has failed since its last success."""


@dataclass(frozen=True)
class Skip:
    reason: str
    permanent: bool = False
    """The job fails for good (the endpoint is disabled), rather than finishing with nothing to do."""


@dataclass(frozen=True)
class Decision:
    retry_in: float | None = None
    failed: str | None = None
    """Why the delivery failed for good (the job goes dead)."""


@dataclass(frozen=True)
class Found:
    """What an attempt reads of its delivery, message and endpoint (appliance.services.webhooks.store reads
    it in batches on PostgreSQL)."""

    state: str
    job_id: uuid.UUID | None
    attempts: int
    message_id: uuid.UUID
    body: str
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secrets: list[str]
    """The endpoint's secrets that sign an attempt made now."""
    enabled: bool
    disabled_reason: str | None
    failing: bool


class Store(Protocol):
    """Where attempts read what to send and write what happened: :func:`prepare` and :func:`record` run
    under the delivery's tenant (appliance.services.webhooks.store.SessionStore, a session per step, or
    appliance.services.webhooks.batches.BatchedStore, batched across deliveries on PostgreSQL)."""

    async def prepare(
        self, tenant_id: uuid.UUID, delivery_id: uuid.UUID, job_id: uuid.UUID, now: dt.datetime
    ) -> Prepared | Skip: ...

    async def record(
        self,
        prepared: Prepared,
        *,
        answer: webhook_sender.Answer,
        attempt: JobAttempt,
        config: DeliveryConfig,
        now: dt.datetime,
    ) -> Decision: ...


def judge(found: Found | None, delivery_id: uuid.UUID, job_id: uuid.UUID) -> Prepared | Skip:
    """What to send; or why there is nothing to send. A permanent Skip (the endpoint is off) is to be
    written as PENDING -> FAILED by the caller."""
    if found is None:
        return Skip("the delivery is gone (its endpoint was deleted)")
    if found.job_id != job_id:
        return Skip("a replay superseded this job")
    if found.state != DeliveryState.PENDING.value:
        return Skip(f"the delivery is {found.state} already")
    if not found.enabled:
        return Skip(
            f"the endpoint is disabled ({found.disabled_reason or 'no reason given'})", permanent=True
        )
    return Prepared(
        tenant_id=found.tenant_id,
        delivery_id=delivery_id,
        endpoint_id=found.endpoint_id,
        url=found.url,
        msg_id=webhook_signing.webhook_id(found.message_id),
        body=found.body.encode(),
        secrets=found.secrets,
        number=found.attempts + 1,
        failing=found.failing,
    )


def prepare(session: Session, delivery_id: uuid.UUID, job_id: uuid.UUID, now: dt.datetime) -> Prepared | Skip:
    """What to send, in one query; or why there is nothing to send."""
    row = session.execute(
        select(
            WebhookDelivery.state,
            WebhookDelivery.job_id,
            WebhookDelivery.attempts,
            WebhookMessage.id.label("message_id"),
            WebhookMessage.body,
            WebhookEndpoint,
        )
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    ).one_or_none()
    found = None
    if row is not None:
        endpoint: WebhookEndpoint = row.WebhookEndpoint
        found = Found(
            state=row.state,
            job_id=row.job_id,
            attempts=row.attempts,
            message_id=row.message_id,
            body=row.body,
            tenant_id=endpoint.tenant_id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            secrets=webhook_endpoints.live_secrets(endpoint, now),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            failing=endpoint.failing_since is not None,
        )
    verdict = judge(found, delivery_id, job_id)
    if isinstance(verdict, Skip) and verdict.permanent:
        # PENDING -> FAILED: the endpoint is off.
        _finish(session, delivery_id, job_id, state=DeliveryState.FAILED)
    return verdict


def record(
    session: Session,
    prepared: Prepared,
    *,
    answer: webhook_sender.Answer,
    attempt: JobAttempt,
    config: DeliveryConfig,
    now: dt.datetime,
) -> Decision:
    """Write the attempt to the log, move the delivery, and say what the job does next."""
    session.add(
        WebhookAttempt(
            id=uuid.uuid4(),
            tenant_id=prepared.tenant_id,
            delivery_id=prepared.delivery_id,
            attempt=prepared.number,
            status_code=answer.status_code,
            latency_ms=answer.latency_ms,
            error=answer.error[:500] if answer.error else None,
            response_excerpt=answer.excerpt,
            created_at=now,
        )
    )
    endpoint_id, delivery_id, job_id = prepared.endpoint_id, prepared.delivery_id, attempt.job_id
    number = prepared.number
    if answer.ok:
        # PENDING -> SUCCEEDED
        _finish(
            session,
            delivery_id,
            job_id,
            state=DeliveryState.SUCCEEDED,
            status=answer.status_code,
            attempts=number,
        )
        if prepared.failing:
            session.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(failing_since=None)
            )
        return Decision()
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None  # the delivery's foreign key holds it
    gone = answer.status_code == 410
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    worn_out = now - endpoint.failing_since >= config.disable_after
    if gone or worn_out or attempt.last:
        # PENDING -> FAILED: gone, failing for too long, or no attempt left.
        _finish(
            session,
            delivery_id,
            job_id,
            state=DeliveryState.FAILED,
            status=answer.status_code,
            attempts=number,
        )
        if gone:
            webhook_endpoints.disable(session, endpoint, "the receiver answered 410 Gone")
        elif worn_out:
            days = config.disable_after.total_seconds() / 86400
            webhook_endpoints.disable(session, endpoint, f"every delivery failed for {days:g} days")
        return Decision(failed=answer.error or "failed")
    if answer.retry_after is not None:
        low, high = RETRY_AFTER_RANGE
        delay = min(max(answer.retry_after, low), high)
    else:
        delay = events.DELIVER.delay_after(attempt.number)
    # PENDING -> PENDING: the next attempt after ``delay``.
    again = now + dt.timedelta(seconds=delay)
    _finish(
        session,
        delivery_id,
        job_id,
        state=DeliveryState.PENDING,
        status=answer.status_code,
        next_attempt_at=again,
        attempts=number,
    )
    return Decision(retry_in=delay)


def _finish(
    session: Session,
    delivery_id: uuid.UUID,
    job_id: uuid.UUID,
    *,
    state: DeliveryState,
    status: int | None = None,
    next_attempt_at: dt.datetime | None = None,
    attempts: int | None = None,
) -> None:
    values: dict[str, Any] = {
        "state": state.value,
        "next_attempt_at": next_attempt_at,
        "updated_at": utcnow(),
    }
    if attempts is not None:
        values |= {"attempts": attempts, "last_status": status}
    # Only while this job is the delivery's: a replay in the meantime owns it now.
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.job_id == job_id)
        .values(**values)
    )


async def deliver(
    store: Store,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    attempt: JobAttempt,
    config: DeliveryConfig,
    clients: http_clients.Clients,
    now: Callable[[], dt.datetime] = utcnow,
    sending: AbstractAsyncContextManager[Any] | None = None,
) -> dict[str, Any]:
    """One attempt of a delivery; raises jobs.RetryLater or jobs.PermanentFailure for the job runner.

    ``store``: where it reads and writes, built by the caller (the worker's comes from
    appliance.services.webhooks.batches.for_database: batched on PostgreSQL, a session per step on SQLite).
    ``sending``: held while the request is signed and sent, and only then (the limit of requests in flight):
    a delivery that reads or records holds no slot, so the connections to receivers are not left idle
    meanwhile."""
    prepared = await store.prepare(tenant_id, delivery_id, attempt.job_id, now())
    if isinstance(prepared, Skip):
        if prepared.permanent:
            raise jobs.PermanentFailure(prepared.reason)
        return {"skipped": prepared.reason}
    async with sending or contextlib.nullcontext():
        headers = webhook_signing.headers(prepared.secrets, prepared.msg_id, prepared.body, now())
        answer = await webhook_sender.send(
            clients, prepared.url, headers, prepared.body, config.limits, now=now
        )
    decision = await store.record(prepared, answer=answer, attempt=attempt, config=config, now=now())
    if decision.retry_in is not None:
        raise jobs.RetryLater(answer.error or "failed", delay=decision.retry_in)
    if decision.failed is not None:
        raise jobs.PermanentFailure(decision.failed)
    return {"status": answer.status_code, "attempt": prepared.number}
