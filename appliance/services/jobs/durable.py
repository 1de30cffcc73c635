"""Durable jobs: the row written with the change that caused it, and every move of its state machine.

Huey is at-most-once: a consumer killed mid-task loses the task. So every unit of work the appliance accepts
is a row of ``jobs`` first (appliance.models.job), written in the caller's transaction, and only then a Huey
message that names it (pushed after the commit by the process's pusher, :func:`install_pusher`). A worker
claims the row before running it and holds a lease it renews while it runs; the reaper (:func:`reap`) hands
again the jobs whose lease ran out (their worker died) and the queued ones whose push was lost. Task bodies
are idempotent, so at-least-once is safe.

The state machine is appliance.models.job.JOB_TRANSITIONS; each function below names the edge it takes.
The worker's hot path (:func:`claim`, :func:`succeed`, :func:`fail`) is one statement each on a connection,
so a no-op job costs two short transactions.

On PostgreSQL, ``jobs`` is under row-level security: a transaction sees the jobs of the tenant it is set to,
or with no tenant set the platform's own. A claim finds its job by id before its tenant is known, so it goes
through the owner's function ``jobs_claim`` (migration 0009), which runs the same statement and returns
what the worker needs; the other moves of a claimed job name its tenant first (:func:`succeed`,
:func:`fail`, :func:`renew`), and an operator's job is found through ``jobs_tenant_of`` and then read and
changed inside its tenant (:func:`get`, :func:`retry`, :func:`cancel`). Enqueue a tenant's job inside that
tenant's scope, the platform's own outside every tenant: it is written with the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    event,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.errors import Conflict, NotFound
from appliance.models.job import Job, JobState

log = logging.getLogger(__name__)

#: The longest text of an error kept on a job.
ERROR_MAX = 2000

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


# --------------------------------------------------------------------------- the worker's hot path


@dataclass(frozen=True)
class Claimed:
    """A job a worker now holds: what its body needs."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


# The hot path's statements, built once: a Core UPDATE on the table (not the ORM's bulk path) whose values
# are bound at execution, so that a job costs a cached statement's execution and no expression building.
_JOBS = cast(Table, Job.__table__)


def by_key(key: ColumnElement[bool], *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """``key AND (conditions) IS TRUE``: the row found by its primary key, then checked.

    Written plainly (``id = :id AND state = 'queued' AND run_at <= :due``), the state condition matches
    ix_jobs_state_run_at too, and the planner may take that index whenever its statistics say few jobs
    are queued: on a table never analyzed (a fresh install), or analyzed while the queue was empty (its
    usual state). Each claim then walks every queued job to find its own, so a backlog of 50,000 costs
    7-11 ms a claim instead of 0.05 (tests/bench/RESULTS.md, issue 15). Under ``IS TRUE`` the conditions
    match no index, and the primary key is the only path left."""
    return key & and_(*conditions).is_(true())


_HELD = by_key(
    _JOBS.c.id == bindparam("job_id"),
    _JOBS.c.state == JobState.RUNNING.value,
    _JOBS.c.attempts == bindparam("attempt"),
)
_CLAIM = (
    update(_JOBS)
    .where(
        by_key(
            _JOBS.c.id == bindparam("job_id"),
            _JOBS.c.state == JobState.QUEUED.value,
            _JOBS.c.run_at <= bindparam("due", type_=_JOBS.c.run_at.type),
        )
    )
    .values(
        state=JobState.RUNNING.value,
        attempts=_JOBS.c.attempts + 1,
        lease_until=bindparam("lease_until", type_=_JOBS.c.lease_until.type),
        worker=bindparam("worker"),
        started_at=bindparam("now", type_=_JOBS.c.started_at.type),
    )
    .returning(_JOBS.c.tenant_id, _JOBS.c.kind, _JOBS.c.payload, _JOBS.c.attempts, _JOBS.c.max_attempts)
)
_SUCCEED = (
    update(_JOBS)
    .where(_HELD)
    .values(
        state=JobState.SUCCEEDED.value,
        result=bindparam("result", type_=_JOBS.c.result.type),
        finished_at=bindparam("now", type_=_JOBS.c.finished_at.type),
        lease_until=None,
    )
)
_RENEW = (
    update(_JOBS).where(_HELD).values(lease_until=bindparam("lease_until", type_=_JOBS.c.lease_until.type))
)
#: `_CLAIM` on PostgreSQL, where a worker may not see the job before it knows its tenant: the owner's
#: function runs the same UPDATE (migration 0009) and returns the same columns.
_CLAIM_BY_FUNCTION = (
    text(
        "SELECT tenant_id, kind, payload, attempts, max_attempts "
        "FROM jobs_claim(:job_id, :due, :lease_until, CAST(:worker AS text), :now)"
    )
    .bindparams(
        bindparam("due", type_=_JOBS.c.run_at.type),
        bindparam("lease_until", type_=_JOBS.c.lease_until.type),
        bindparam("now", type_=_JOBS.c.started_at.type),
    )
    .columns(tenant_id=Uuid(), kind=String(), payload=JSON(), attempts=Integer(), max_attempts=Integer())
)


def claim(
    conn: Connection, job_id: uuid.UUID, worker: str, lease: float, now: dt.datetime | None = None
) -> Claimed | None:
    """QUEUED -> RUNNING, if the job is still queued and due; None otherwise (another worker has it, it
    finished, was cancelled, or this push came early). One statement; the caller commits."""
    moment = now or utcnow()
    row = conn.execute(
        _CLAIM_BY_FUNCTION if conn.dialect.name == "postgresql" else _CLAIM,
        {
            "job_id": job_id,
            "due": moment + dt.timedelta(seconds=1),
            "lease_until": moment + dt.timedelta(seconds=lease),
            "worker": worker,
            "now": moment,
        },
    ).one_or_none()
    if row is None:
        return None
    return Claimed(job_id, row.tenant_id, row.kind, row.payload, row.attempts, row.max_attempts)


def succeed(
    conn: Connection | Session, job: Claimed, result: Any = None, now: dt.datetime | None = None
) -> bool:
    """RUNNING -> SUCCEEDED, if this attempt still holds the job (False: the reaper gave it to another).
    In a Session, it is the body's own transaction, scoped to the job's tenant already."""
    target = conn.connection() if isinstance(conn, Session) else conn
    tenancy.set_connection_tenant(target, job.tenant_id)
    done = target.execute(
        _SUCCEED,
        {"job_id": job.id, "attempt": job.attempt, "result": result, "now": now or utcnow()},
    )
    return bool(done.rowcount)


def fail(
    conn: Connection,
    job: Claimed,
    error: str,
    *,
    retry_in: float | None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """RUNNING -> QUEUED (``retry_in`` seconds from now) or RUNNING -> DEAD (``retry_in`` None, or no
    attempt left). Returns when the job runs again, or None when it is dead (or no longer this attempt's)."""
    moment = now or utcnow()
    again = retry_in is not None and job.attempt < job.max_attempts
    run_at = moment + dt.timedelta(seconds=retry_in or 0.0) if again else None
    values: dict[str, Any] = {"last_error": error[:ERROR_MAX], "lease_until": None}
    if again:
        values |= {"state": JobState.QUEUED.value, "run_at": run_at, "pushed_at": moment}
    else:
        values |= {"state": JobState.DEAD.value, "finished_at": moment}
    tenancy.set_connection_tenant(conn, job.tenant_id)
    changed = conn.execute(
        update(Job)
        .where(by_key(Job.id == job.id, Job.state == JobState.RUNNING.value, Job.attempts == job.attempt))
        .values(**values)
    )
    if not changed.rowcount:
        return None
    return run_at


def renew(conn: Connection, jobs: Sequence[Claimed], lease: float, now: dt.datetime | None = None) -> int:
    """Extend the leases of the jobs this worker runs (its heartbeat); returns how many it still holds."""
    if not jobs:
        return 0
    lease_until = (now or utcnow()) + dt.timedelta(seconds=lease)
    by_tenant: dict[uuid.UUID | None, list[Claimed]] = {}
    for job in jobs:
        by_tenant.setdefault(job.tenant_id, []).append(job)
    renewed = 0
    for tenant_id, held in by_tenant.items():
        tenancy.set_connection_tenant(conn, tenant_id)
        for job in held:
            result = conn.execute(
                _RENEW, {"job_id": job.id, "attempt": job.attempt, "lease_until": lease_until}
            )
            renewed += result.rowcount
    return renewed


# --------------------------------------------------------------------------- operators and tenants


def get(
    session: Session, job_id: uuid.UUID, tenant_id: uuid.UUID | None, *, every_tenant: bool = False
) -> Job:
    """One job of ``tenant_id`` (None: the platform's own), or any job for an operator (``every_tenant``);
    JOB_NOT_FOUND otherwise. It is read inside its tenant's scope (see the module), whatever the session's."""
    if every_tenant:
        owner = _tenant_of(session, job_id)
        if owner is None:
            raise _not_found(job_id)
        tenant_id = owner[0]
    with tenancy.inside(session, tenant_id):
        job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise _not_found(job_id)
    return job


def _tenant_of(session: Session, job_id: uuid.UUID) -> tuple[uuid.UUID | None] | None:
    """(the job's tenant,), or None when there is no such job: on PostgreSQL through the owner's function,
    which tells the tenant of any job by its id and nothing else."""
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(_TENANT_OF, {"job_id": job_id}).first()
    else:
        row = session.execute(select(Job.tenant_id).where(Job.id == job_id)).first()
    return None if row is None else (row[0],)


_TENANT_OF = text("SELECT tenant_id FROM jobs_tenant_of(:job_id)").columns(tenant_id=Uuid())


def _not_found(job_id: uuid.UUID) -> NotFound:
    return NotFound(f"Job '{job_id}' was not found.", code="JOB_NOT_FOUND", details={"job": str(job_id)})


def _write(session: Session, job: Job) -> None:
    """Write a change of ``job`` now, inside its tenant's scope (an operator's session is in none)."""
    with tenancy.inside(session, job.tenant_id):
        session.flush()


def retry(session: Session, job: Job, now: dt.datetime | None = None) -> Job:
    """DEAD -> QUEUED or CANCELLED -> QUEUED: run it again now, with a fresh set of attempts."""
    if job.state not in (JobState.DEAD.value, JobState.CANCELLED.value):
        raise Conflict(
            f"Job '{job.id}' is {job.state}: only dead or cancelled jobs can be retried.",
            code="JOB_NOT_RETRYABLE",
            details={"job": str(job.id), "state": job.state},
        )
    moment = now or utcnow()
    job.state, job.attempts, job.run_at, job.pushed_at = JobState.QUEUED.value, 0, moment, moment
    job.finished_at = None
    _write(session, job)
    push_after_commit(session, job.id)
    return job


def cancel(session: Session, job: Job, now: dt.datetime | None = None) -> Job:
    """QUEUED -> CANCELLED (a job that is running finishes its attempt; it cannot be cancelled midway)."""
    if job.state != JobState.QUEUED.value:
        raise Conflict(
            f"Job '{job.id}' is {job.state}: only queued jobs can be cancelled.",
            code="JOB_NOT_CANCELLABLE",
            details={"job": str(job.id), "state": job.state},
        )
    job.state, job.finished_at = JobState.CANCELLED.value, now or utcnow()
    _write(session, job)
    return job
