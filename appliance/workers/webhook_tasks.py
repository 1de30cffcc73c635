"""The webhook delivery job's body: parse the payload, send one attempt
(appliance.services.webhooks.delivery).

It runs on the worker process's event loop (an async handler), where the HTTP clients and the limit of
``webhooks.concurrency`` deliveries in flight live, one set per loop."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from appliance.config import Settings
from appliance.db.session import Database
from appliance.services.outbound import clients as http_clients
from appliance.services.webhooks import batches as webhook_batches
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import events
from appliance.workers.jobs import JobContext, async_handler

#: The runner's own cap per process; the configured ``webhooks.concurrency`` (at most this) applies below.
RUNNER_CONCURRENCY = 1000


class _LoopState:
    """What deliveries on one event loop share: its HTTP clients (their connections kept alive), the limit
    of requests in flight (``webhooks.concurrency``), and the store that batches their reads and writes (it
    lives as long as the process)."""

    def __init__(self, settings: Settings, database: Database):
        # About four requests in flight per lane, so that each lane holds a few connections
        # (appliance.services.outbound.clients).
        self.clients = http_clients.Clients(lanes=max(1, settings.webhooks.concurrency // 4))
        self.slots = asyncio.Semaphore(settings.webhooks.concurrency)
        self.config = webhook_delivery.DeliveryConfig.of(settings)
        self.store = webhook_batches.for_database(database)


_states: dict[asyncio.AbstractEventLoop, _LoopState] = {}


def _state(ctx: JobContext) -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState(ctx.settings, ctx.database)
    return state


@async_handler(events.DELIVER, concurrency=RUNNER_CONCURRENCY)
async def deliver(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one attempt of the delivery ``payload["delivery_id"]``."""
    if ctx.tenant_id is None:
        raise ValueError("a webhook delivery job belongs to a tenant")
    state = _state(ctx)
    attempt = webhook_delivery.JobAttempt(ctx.job_id, ctx.attempt, ctx.max_attempts)
    return await webhook_delivery.deliver(
        state.store,
        ctx.tenant_id,
        uuid.UUID(payload["delivery_id"]),
        attempt=attempt,
        config=state.config,
        clients=state.clients,
        sending=state.slots,
    )
