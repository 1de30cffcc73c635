"""Durable jobs: the kinds of job, and the row written with the change that caused it.

Huey is at-most-once: a consumer killed mid-task loses the task. So every unit of work the appliance accepts
is a row of ``jobs`` first (appliance.models.job), written in the caller's transaction, and only then a Huey
message that names it (pushed after the commit by the process's pusher, :func:`install_pusher`). A worker
claims the row before running it and holds a lease it renews while it runs (appliance.services.jobs.leases);
the reaper (appliance.services.jobs.reaper) hands again the jobs whose lease ran out (their worker died) and
the queued ones whose push was lost. Task bodies are idempotent, so at-least-once is safe.

The state machine is appliance.models.job.JOB_TRANSITIONS. A job enters it here (:func:`enqueue`, as
QUEUED); a worker moves it through appliance.services.jobs.leases, tenants and operators through
appliance.services.jobs.manage, and the reaper through appliance.services.jobs.reaper.

On PostgreSQL, ``jobs`` is under row-level security: a transaction sees the jobs of the tenant it is set to,
or with no tenant set the platform's own. Enqueue a tenant's job inside that tenant's scope, the platform's
own outside every tenant: it is written with the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from appliance.db.base import utcnow
from appliance.models.job import Job, JobState

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    """A kind of job and its retry policy."""

    name: str
    max_attempts: int = 5
    delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)
    """``delays[k - 1]`` seconds after attempt ``k`` failed comes attempt ``k + 1``; the last one repeats."""
    jitter: float = 0.1
    """Each delay is moved by up to this fraction either way, so that retries of a burst spread out."""

    def delay_after(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        base = self.delays[min(attempt, len(self.delays)) - 1] if self.delays else 0.0
        return max(0.0, base * (1 + self.jitter * (2 * rng() - 1)))


KINDS: dict[str, Kind] = {}


def kind(
    name: str, *, max_attempts: int = 5, delays: Sequence[float] = (5, 30, 120, 600), jitter: float = 0.1
) -> Kind:
    """Define (and register) a kind of job; defining the same name twice is a mistake."""
    if name in KINDS:
        raise ValueError(f"job kind {name!r} is defined twice")
    if max_attempts < 1:
        raise ValueError("a job kind needs at least one attempt")
    defined = Kind(name, max_attempts, tuple(float(d) for d in delays), jitter)
    KINDS[name] = defined
    return defined


class RetryLater(Exception):
    """Raised by a task body: this attempt failed; try again after ``delay`` seconds (None: the kind's
    schedule), if attempts remain."""

    def __init__(self, reason: str, *, delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class PermanentFailure(Exception):
    """Raised by a task body: retrying cannot help (the job goes straight to dead)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- enqueue and push after commit

#: Pushes (job id, when it may run) to the queue; installed once per process by whoever built the queue.
Pusher = Callable[[Sequence[tuple[uuid.UUID, dt.datetime | None]]], None]
_pusher: Pusher | None = None
_PENDING = "jobs.pending"


def install_pusher(pusher: Pusher | None) -> None:
    """Make ``pusher`` hand this process's committed jobs to the queue (None: nobody; the reaper will)."""
    global _pusher  # noqa: PLW0603  (one per process, like the Huey instance it wraps)
    _pusher = pusher
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def enqueue(
    session: Session,
    job_kind: Kind,
    payload: dict[str, Any],
    *,
    tenant_id: uuid.UUID | None,
    idempotency_key: str | None = None,
    delay: float = 0.0,
    now: dt.datetime | None = None,
) -> Job:
    """A new queued job in the caller's transaction, handed to the queue once that transaction commits.

    With an ``idempotency_key`` the same (tenant, kind, key) gives back the job already there."""
    if idempotency_key is not None:
        existing = session.scalars(
            select(Job).where(
                Job.tenant_id == tenant_id if tenant_id is not None else Job.tenant_id.is_(None),
                Job.kind == job_kind.name,
                Job.idempotency_key == idempotency_key,
            )
        ).one_or_none()
        if existing is not None:
            return existing
    moment = now or utcnow()
    run_at = moment + dt.timedelta(seconds=delay)
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        kind=job_kind.name,
        payload=payload,
        state=JobState.QUEUED.value,
        attempts=0,
        max_attempts=job_kind.max_attempts,
        run_at=run_at,
        pushed_at=moment,
        idempotency_key=idempotency_key,
        created_at=moment,
    )
    session.add(job)
    session.info.setdefault(_PENDING, []).append((job.id, run_at if delay > 0 else None))
    return job


def push_after_commit(session: Session, job_id: uuid.UUID, run_at: dt.datetime | None = None) -> None:
    """Hand an existing job to the queue when the session's transaction commits (retry, replay)."""
    session.info.setdefault(_PENDING, []).append((job_id, run_at))


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if _pusher is None:
        return  # no queue in this process: the reaper hands them over after jobs.requeue_after
    try:
        _pusher(pending)
    except Exception as exc:  # a down queue must not fail a change that is already committed
        log.warning(
            "could not hand jobs to the queue; the reaper will",
            extra={"jobs": len(pending), "error": str(exc)},
        )


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
