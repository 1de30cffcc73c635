"""Webhook attempts on PostgreSQL, in batches: what many deliveries send is read in one transaction, and
their successful attempts are written in another (group commit, appliance.services.common.batcher).

A delivery used to cost two transactions of its own around its HTTP request (read what to send; write the
attempt to the log and settle the delivery), several round trips each through the ORM. Here the deliveries
in flight on a worker's event loop share them: a batch reads or writes every waiting delivery, each tenant's
after ``set_config`` of that tenant in the same transaction (row-level security applies, as everywhere), in
one pipeline of statements over a driver connection the batch's thread keeps (appliance.services.
driver_connection). The outcome is what the session steps write (appliance.services.webhooks.store); those
steps still serve what is not batched: a failed attempt (its decision depends on the endpoint's run of
failures, and may disable it), and a delivery whose endpoint was disabled.

What a batch of successes guarantees:
- It is one transaction: every attempt in it is in the log and its delivery settled, or none is. A worker
  killed mid-batch wrote none of it; those deliveries' jobs run again after their lease (jobs run at least
  once), send again with the same ``webhook-id``, and are written then.
- Each attempt's id is chosen before the batch runs and written with ON CONFLICT DO NOTHING, so a batch run
  twice (its connection broke while it committed) logs no attempt twice.
- A delivery removed meanwhile (its endpoint was deleted) is left out, not a failure of the others; a batch
  that fails for anything but the connection is run again one delivery at a time, so that a delivery the
  database refuses fails its own job only.
- A delivery's job succeeds only after its batch committed (the job's success is written after this
  returns), so a job never ends while its attempt is unwritten.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

from appliance.db import rls
from appliance.db.session import Database
from appliance.services.common.batcher import Batcher
from appliance.services.common.driver_connection import Cursor, KeptConnections
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import sender as webhook_sender
from appliance.services.webhooks.delivery import (
    Decision,
    DeliveryConfig,
    Found,
    JobAttempt,
    Prepared,
    Skip,
    judge,
)
from appliance.services.webhooks.store import SessionStore

#: These connections (two per worker process: reads, writes) in pg_stat_activity.
APPLICATION_NAME = "forge-appliance webhooks"

_SET_TENANT = f"SELECT set_config('{rls.TENANT_SETTING}', %(tenant)s, true)"
# Each delivery is looked up by its own key (one lookup a key, whose plan is a single-row one): joined
# plainly, the read started from the tenant's endpoint and walked every delivery of it to keep the few
# asked for; and with the keys as one list, row-level security's tenant condition still let the planner
# walk the tenant's rows whenever its statistics said they were few (a tenant new since the last ANALYZE).
_READ = """
SELECT d.id, d.state, d.job_id, d.attempts, d.message_id, m.body, e.id, e.url, e.secret, e.previous_secret,
    e.previous_secret_expires_at, e.enabled, e.disabled_reason, e.failing_since IS NOT NULL
FROM unnest(%(ids)s::uuid[]) AS k(id)
CROSS JOIN LATERAL (
    SELECT id, state, job_id, attempts, message_id, endpoint_id, tenant_id FROM webhook_deliveries
    WHERE id = k.id AND (tenant_id = %(tenant)s) IS TRUE LIMIT 1
) AS d
JOIN webhook_messages AS m ON m.tenant_id = d.tenant_id AND m.id = d.message_id
JOIN webhook_endpoints AS e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
"""
# The writes find the deliveries by key too (d.id = ANY beside the tenant: uq_webhook_deliveries_tenant_id_id
# serves both), and log only the attempts of deliveries that are still there.
_LOG = """
INSERT INTO webhook_attempts
    (id, tenant_id, delivery_id, attempt, status_code, latency_ms, error, response_excerpt, created_at)
SELECT a.id, d.tenant_id, d.id, a.attempt, a.status_code, a.latency_ms, a.error, a.excerpt, a.created_at
FROM unnest(%(ids)s::uuid[], %(deliveries)s::uuid[], %(attempts)s::integer[], %(statuses)s::integer[],
    %(latencies)s::double precision[], %(errors)s::text[], %(excerpts)s::text[], %(created)s::timestamptz[])
    AS a(id, delivery_id, attempt, status_code, latency_ms, error, excerpt, created_at)
JOIN webhook_deliveries AS d
    ON d.tenant_id = %(tenant)s AND d.id = ANY(%(deliveries)s::uuid[]) AND d.id = a.delivery_id
ON CONFLICT (id) DO NOTHING
"""
# PENDING -> SUCCEEDED, only while the attempt's job is the delivery's (a replay owns it otherwise).
_SETTLE = """
UPDATE webhook_deliveries AS d
SET state = 'succeeded', next_attempt_at = NULL, updated_at = %(now)s, attempts = s.attempt,
    last_status = s.status_code
FROM unnest(%(deliveries)s::uuid[], %(jobs)s::uuid[], %(attempts)s::integer[], %(statuses)s::integer[])
    AS s(id, job_id, attempt, status_code)
WHERE d.tenant_id = %(tenant)s AND d.id = ANY(%(deliveries)s::uuid[]) AND d.id = s.id AND d.job_id = s.job_id
"""
# The endpoint's run of failures ends.
_RECOVERED = """
UPDATE webhook_endpoints SET failing_since = NULL, updated_at = %(now)s
WHERE tenant_id = %(tenant)s AND id = ANY(%(endpoints)s::uuid[]) AND failing_since IS NOT NULL
"""

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Read:
    """A delivery to read what to send for."""

    tenant_id: uuid.UUID
    delivery_id: uuid.UUID
    job_id: uuid.UUID
    now: dt.datetime


@dataclass(frozen=True)
class Success:
    """A 2xx attempt to log, and its delivery to settle."""

    prepared: Prepared
    answer: webhook_sender.Answer
    job_id: uuid.UUID
    now: dt.datetime
    attempt_id: uuid.UUID


class BatchedStore(SessionStore):
    """The store of a worker's event loop on PostgreSQL; ``close()`` when the loop is done with it."""

    def __init__(self, database: Database):
        super().__init__(database)
        self._connections = KeptConnections(database.engine, APPLICATION_NAME)
        self._reads: Batcher[Read, Prepared | Skip] = Batcher(self.read_batch, name="webhook-reads")
        self._writes: Batcher[Success, None] = Batcher(self.write_batch, name="webhook-writes")

    async def prepare(
        self, tenant_id: uuid.UUID, delivery_id: uuid.UUID, job_id: uuid.UUID, now: dt.datetime
    ) -> Prepared | Skip:
        verdict = await self._reads.submit(Read(tenant_id, delivery_id, job_id, now))
        if isinstance(verdict, Skip) and verdict.permanent:
            # The endpoint is off: the session step writes PENDING -> FAILED (and says the same).
            return await super().prepare(tenant_id, delivery_id, job_id, now)
        return verdict

    async def record(
        self,
        prepared: Prepared,
        *,
        answer: webhook_sender.Answer,
        attempt: JobAttempt,
        config: DeliveryConfig,
        now: dt.datetime,
    ) -> Decision:
        if not answer.ok:
            return await super().record(prepared, answer=answer, attempt=attempt, config=config, now=now)
        await self._writes.submit(Success(prepared, answer, attempt.job_id, now, uuid.uuid4()))
        return Decision()

    def close(self) -> None:
        self._reads.close()
        self._writes.close()
        self._connections.close()

    # ----------------------------------------------------------------- on the batches' threads

    def read_batch(self, reads: Sequence[Read]) -> list[Prepared | Skip]:
        """What each delivery sends, or why nothing (appliance.services.webhooks.delivery.judge)."""
        by_tenant = _grouped(reads, lambda r: r.tenant_id)

        def work(cursor: Cursor) -> dict[uuid.UUID, tuple[Any, ...]]:
            rows: dict[uuid.UUID, tuple[Any, ...]] = {}
            for tenant_id, group in by_tenant.items():
                cursor.execute(_SET_TENANT, {"tenant": str(tenant_id)}, prepare=True)
                cursor.execute(
                    _READ, {"tenant": tenant_id, "ids": [r.delivery_id for r in group]}, prepare=True
                )
                rows.update((row[0], row) for row in cursor.fetchall())
            return rows

        rows = self._connections.run(work, transaction=True)
        return [judge(_found(rows.get(r.delivery_id), r), r.delivery_id, r.job_id) for r in reads]

    def write_batch(self, successes: Sequence[Success]) -> list[BaseException | None]:
        """Log the attempts and settle their deliveries, in one transaction; per success, None or the
        error that kept it out (then it was tried alone, and its job fails)."""
        try:
            self._connections.run(lambda cursor: self._log(cursor, successes), transaction=True)
        except OperationalError:
            raise  # the connection or the server: every delivery of the batch shares the failure
        except Exception:
            if len(successes) == 1:
                raise
            return [self._alone(success) for success in successes]
        return [None] * len(successes)

    def _alone(self, success: Success) -> BaseException | None:
        try:
            self._connections.run(lambda cursor: self._log(cursor, [success]), transaction=True)
        except Exception as exc:  # this delivery's own: its job fails, the others' do not
            return exc
        return None

    def _log(self, cursor: Cursor, successes: Sequence[Success]) -> None:
        for tenant_id, group in _grouped(successes, lambda s: s.prepared.tenant_id).items():
            now = max(s.now for s in group)
            deliveries = [s.prepared.delivery_id for s in group]
            numbers = [s.prepared.number for s in group]
            statuses = [s.answer.status_code for s in group]
            cursor.execute(_SET_TENANT, {"tenant": str(tenant_id)}, prepare=True)
            log = {
                "tenant": tenant_id,
                "ids": [s.attempt_id for s in group],
                "deliveries": deliveries,
                "attempts": numbers,
                "statuses": statuses,
                "latencies": [s.answer.latency_ms for s in group],
                "errors": [s.answer.error[:500] if s.answer.error else None for s in group],
                "excerpts": [s.answer.excerpt for s in group],
                "created": [s.now for s in group],
            }
            cursor.execute(_LOG, log, prepare=True)
            jobs = [s.job_id for s in group]
            settle = {"tenant": tenant_id, "now": now, "deliveries": deliveries, "jobs": jobs}
            cursor.execute(_SETTLE, settle | {"attempts": numbers, "statuses": statuses}, prepare=True)
            recovered = list({s.prepared.endpoint_id for s in group if s.prepared.failing})
            if recovered:
                cursor.execute(_RECOVERED, {"tenant": tenant_id, "now": now, "endpoints": recovered})


def for_database(database: Database) -> SessionStore:
    """The store for attempts on ``database``: batched on PostgreSQL, a session per step on SQLite (whose
    writers queue for one lock anyway)."""
    return BatchedStore(database) if database.backend == "postgresql" else SessionStore(database)


def _found(row: tuple[Any, ...] | None, read: Read) -> Found | None:
    if row is None:
        return None
    (_, state, job_id, attempts, message_id, body, endpoint_id, url, secret, previous, previous_until) = row[
        :11
    ]
    enabled, disabled_reason, failing = row[11:]
    return Found(
        state=state,
        job_id=job_id,
        attempts=attempts,
        message_id=message_id,
        body=body,
        tenant_id=read.tenant_id,
        endpoint_id=endpoint_id,
        url=url,
        secrets=webhook_endpoints.signing_secrets(secret, previous, previous_until, read.now),
        enabled=enabled,
        disabled_reason=disabled_reason,
        failing=failing,
    )


def _grouped(items: Sequence[V], key: Callable[[V], K]) -> dict[K, list[V]]:
    groups: dict[K, list[V]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
