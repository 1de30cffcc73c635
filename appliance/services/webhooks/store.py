"""Where a webhook attempt reads what to send and writes what happened, its plainest kind: a session per
step, an appliance.services.webhooks.delivery.Store (the protocol lives with delivery, which uses it; this
module implements it, so the import runs one way).

The session steps (appliance.services.webhooks.delivery.prepare and .record) run on a thread of the loop's
default executor, each in a short transaction of its own under the delivery's tenant: SQLite's way (its
writers queue for one lock anyway), and PostgreSQL's for what appliance.services.webhooks.batches does not
batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import sender as webhook_sender
from appliance.services.webhooks.delivery import DeliveryConfig, JobAttempt, Prepared, Skip

T = TypeVar("T")


class SessionStore:
    """A delivery Store with each step in a session of its own, on a thread of the loop's default
    executor: SQLite's way, and PostgreSQL's for what is not batched."""

    def __init__(self, database: Database):
        self.database = database

    def close(self) -> None:
        """Nothing to release (see BatchedStore)."""

    def _scoped(self, tenant_id: uuid.UUID, step: Callable[[Session], T]) -> Callable[[], T]:
        def run() -> T:
            with self.database.session_scope() as session:
                tenancy.set_tenant(session, tenant_id)
                return step(session)

        return run

    async def prepare(
        self, tenant_id: uuid.UUID, delivery_id: uuid.UUID, job_id: uuid.UUID, now: dt.datetime
    ) -> Prepared | Skip:
        return await asyncio.to_thread(
            self._scoped(tenant_id, lambda s: webhook_delivery.prepare(s, delivery_id, job_id, now))
        )

    async def record(
        self,
        prepared: Prepared,
        *,
        answer: webhook_sender.Answer,
        attempt: JobAttempt,
        config: DeliveryConfig,
        now: dt.datetime,
    ) -> webhook_delivery.Decision:
        def step(session: Session) -> webhook_delivery.Decision:
            return webhook_delivery.record(
                session, prepared, answer=answer, attempt=attempt, config=config, now=now
            )

        return await asyncio.to_thread(self._scoped(prepared.tenant_id, step))
