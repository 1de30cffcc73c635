"""A tenant's webhooks driven through the services, one delivery attempt at a time (as the job runs it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.db.session import Database
from appliance.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from appliance.services.access.actors import Actor
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import clients as http_clients
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import batches as webhook_batches
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.services.webhooks import sender as webhook_sender

LOOPBACK = outbound.AddressPolicy.of(["127.0.0.0/8"])
T0 = dt.datetime(2026, 11, 22, 1, 27, 39, tzinfo=dt.UTC)


def config(
    policy: outbound.AddressPolicy = LOOPBACK, timeout: float = 5.0, max_bytes: int = 65536
) -> webhook_delivery.DeliveryConfig:
    return webhook_delivery.DeliveryConfig(
        webhook_sender.Limits(timeout, max_bytes, policy), dt.timedelta(days=5)
    )


@dataclass
class Harness:
    db: Database
    tenant_id: uuid.UUID

    @property
    def actor(self) -> Actor:
        return Actor(user_id=None, tenant_id=self.tenant_id, permissions=frozenset({"webhooks:write"}))

    def session(self) -> _Scoped:
        return _Scoped(self.db, self.tenant_id)

    def endpoint(self, url: str, **extra: Any) -> WebhookEndpoint:
        with self.session() as session:
            endpoint = webhook_endpoints.create(session, self.actor, url=url, policy=LOOPBACK, **extra)
            session.expunge(endpoint)
            return endpoint

    def publish(self, event_type: str = "project.created", **data: Any) -> list[WebhookDelivery]:
        with self.session() as session:
            message = events.publish(session, tenant_id=self.tenant_id, event_type=event_type, data=data)
            assert message is not None
            found = list(
                session.scalars(select(WebhookDelivery).where(WebhookDelivery.message_id == message.id))
            )
            for row in found:
                session.expunge(row)
            return found

    def run(
        self,
        delivery: WebhookDelivery,
        number: int = 1,
        *,
        cfg: webhook_delivery.DeliveryConfig | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> Any:
        """One attempt; the result, or the RetryLater/PermanentFailure it raised."""
        return asyncio.run(self.attempt(delivery, number, cfg=cfg, now=now))

    async def attempt(
        self,
        delivery: WebhookDelivery,
        number: int = 1,
        *,
        cfg: webhook_delivery.DeliveryConfig | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> Any:
        assert delivery.job_id is not None
        clients = http_clients.Clients()
        store = webhook_batches.for_database(self.db)  # as the worker's: batched on PostgreSQL
        try:
            return await webhook_delivery.deliver(
                store,
                self.tenant_id,
                delivery.id,
                attempt=webhook_delivery.JobAttempt(delivery.job_id, number, events.DELIVER.max_attempts),
                config=cfg or config(),
                clients=clients,
                now=now or utcnow,
            )
        except (jobs.RetryLater, jobs.PermanentFailure) as exc:
            return exc
        finally:
            await clients.aclose()
            store.close()

    def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery:
        with self.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            session.expunge(row)
            return row

    def attempts(self, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
        with self.session() as session:
            rows = list(
                session.scalars(
                    select(WebhookAttempt)
                    .where(WebhookAttempt.delivery_id == delivery_id)
                    .order_by(WebhookAttempt.attempt)
                )
            )
            session.expunge_all()
            return rows

    def get_endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        with self.session() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            session.expunge(row)
            return row

    def messages(self, event_type: str) -> list[WebhookMessage]:
        with self.session() as session:
            rows = list(
                session.scalars(select(WebhookMessage).where(WebhookMessage.event_type == event_type))
            )
            session.expunge_all()
            return rows


class _Scoped:
    def __init__(self, db: Database, tenant_id: uuid.UUID):
        self.scope = db.session_scope()
        self.tenant_id = tenant_id

    def __enter__(self) -> Session:
        session = self.scope.__enter__()
        tenancy.set_tenant(session, self.tenant_id)
        return session

    def __exit__(self, *exc: Any) -> Any:
        return self.scope.__exit__(*exc)
