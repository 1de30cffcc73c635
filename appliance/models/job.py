"""Durable jobs: one row per unit of work the workers run, the ledger under Huey's at-most-once queue."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class JobState(enum.StrEnum):
    QUEUED = "queued"
    """Waiting to run (first time, or again after a failed attempt once ``run_at`` comes)."""
    RUNNING = "running"
    """Claimed by a worker until ``lease_until``; a lease that runs out means the worker died."""
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    """Failed its last attempt (or failed in a way a retry cannot mend); kept for inspection and retry."""
    CANCELLED = "cancelled"


#: Allowed transitions, each with why (appliance.services.jobs.leases, .manage and .reaper apply them).
JOB_TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (JobState.QUEUED, JobState.RUNNING): "a worker claimed it (one claim wins: the UPDATE checks the state)",
    (JobState.RUNNING, JobState.SUCCEEDED): "its task body returned",
    (JobState.RUNNING, JobState.QUEUED): "an attempt failed and attempts remain (run_at = now + backoff)",
    (JobState.RUNNING, JobState.DEAD): "the last attempt failed, or the failure is permanent",
    (JobState.RUNNING, JobState.RUNNING): "the reaper found its lease run out and another worker claimed it",
    (JobState.QUEUED, JobState.CANCELLED): "cancelled before it ran",
    (JobState.DEAD, JobState.QUEUED): "retried by hand",
    (JobState.CANCELLED, JobState.QUEUED): "retried by hand",
}


class Job(Base):
    """A unit of work, written in the transaction of the change that caused it.

    Under row-level security on PostgreSQL like every tenant's row: a tenant's transaction sees its own
    jobs, one with no tenant set the platform's own. The queue's ledger is also read across tenants, by the
    workers (a claim by id), the reaper and the operators' lists: those go through the owner's functions of
    migration 0009, which return the ledger's columns only (appliance.db.rls.NARROW_PATHS). It is not
    under the ORM filter (appliance.db.rls.UNFILTERED_TENANT_TABLES): the services name the tenant."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "idempotency_key"),
        # The reaper: queued jobs whose push may have been lost, running jobs whose lease ran out.
        Index("ix_jobs_state_run_at", "state", "run_at"),
        # Lists: a tenant's jobs newest first, by cursor.
        Index("ix_jobs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        # Operators' lists: every tenant's jobs newest first, by cursor.
        Index("ix_jobs_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), default=None
    )
    """None for the platform's own jobs."""
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    """Attempts started so far."""
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    """When it may run (queued), or when it was last claimed (running)."""
    pushed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    """When it was last handed to the queue; the reaper hands a queued job again when this is old."""
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None, nullable=True)
    """How far a long job got while it runs: ``{"step": str, "done": int, "total": int}``."""
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
