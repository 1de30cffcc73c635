"""Thin task wrappers: parse the arguments, call one service inside a session scope, return the result."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from typing import Any

from huey import crontab

from appliance.db.session import Database
from appliance.services.common import idempotency
from appliance.services.jobs import durable as jobs
from appliance.services.jobs import heartbeats
from appliance.services.tenancy import tenants
from appliance.workers import runtime
from appliance.workers.jobs import JobContext, plain_handler
from appliance.workers.queue import periodic_task, task

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@task(retries=3, retry_delay=5, name="system.heartbeat")
def heartbeat() -> dict[str, object]:
    """Record that this worker is alive; returns the worker's name and its count of beats."""
    name = worker_name()
    with runtime.current().database.session_scope() as session:
        row = heartbeats.record(session, name)
        return {"worker": name, "beats": row.beats}


@periodic_task(crontab(minute="*"), name="system.heartbeat_periodic")
def heartbeat_periodic() -> None:
    """Every minute, so that /health can say when a worker was last seen."""
    heartbeat.call_local()


@periodic_task(crontab(minute="17", hour="3"), name="tenants.purge_periodic")
def purge_tenants_periodic() -> list[str]:
    """Daily at 03:17 UTC: remove for good the deleted tenants whose grace period has passed.

    Runs as the schema owner (database.migrations_url): the app role may only append to the audit log, and
    a purge removes a tenant's records. The owner's engine is built for this run and disposed after it, so
    no owner connection stays open between runs."""
    settings = runtime.current().settings
    owner = Database(settings, settings.migrations_url, bounded=False)
    try:
        with owner.session_scope() as session:
            purged = tenants.purge_due(session, dt.datetime.now(dt.UTC))
    finally:
        owner.dispose()
    log.info("purged deleted tenants", extra={"purged": len(purged), "tenants": purged})
    return purged


@periodic_task(crontab(minute="41"), name="idempotency.purge_periodic")
def purge_idempotency_keys_periodic() -> int:
    """Hourly: remove every tenant's idempotency keys past their 24 hours, with the answers they kept
    (which may hold a credential, and are never replayed any more)."""
    removed = idempotency.purge_expired(runtime.current().database, dt.datetime.now(dt.UTC))
    log.info("removed expired idempotency keys", extra={"removed": removed})
    return removed


NOOP = jobs.kind("system.noop", max_attempts=3, delays=(1, 5))


@plain_handler(NOOP)
def noop(_ctx: JobContext, payload: dict[str, Any]) -> Any:
    """A job that does nothing (after ``wait_ms``, at most a second) and returns ``payload["echo"]``: checks
    the durable queue end to end (`appliance jobs check`, the benchmarks)."""
    wait = min(float(payload.get("wait_ms", 0)), 1000.0) / 1000
    if wait > 0:  # (a sleep of 0 is still a system call, and hands the GIL to another thread)
        time.sleep(wait)
    return payload.get("echo")
