"""A worker's hold on a job: claim it, renew its lease while it runs, and record its success or failure.

These are the moves of appliance.models.job.JOB_TRANSITIONS that a worker takes; each function names its
edge. They are the worker's hot path: one statement each on a connection, so a no-op job costs two short
transactions (appliance.services.jobs.claims runs the same claim and successes on a kept driver connection).

On PostgreSQL, ``jobs`` is under row-level security: a transaction sees the jobs of the tenant it is set to,
or with no tenant set the platform's own. A claim finds its job by id before its tenant is known, so it goes
through the owner's function ``jobs_claim`` (migration 0009), which runs the same statement and returns
what the worker needs; the other moves of a claimed job name its tenant first (:func:`succeed`,
:func:`fail`, :func:`renew`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
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
    text,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models.job import Job, JobState

#: The longest text of an error kept on a job.
ERROR_MAX = 2000


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


def report_progress(conn: Connection, job: Claimed, step: str, done: int, total: int) -> bool:
    """Record how far a running job got (``{"step", "done", "total"}``), if this attempt still holds it."""
    tenancy.set_connection_tenant(conn, job.tenant_id)
    changed = conn.execute(
        update(Job)
        .where(by_key(Job.id == job.id, Job.state == JobState.RUNNING.value, Job.attempts == job.attempt))
        .values(progress={"step": step[:200], "done": int(done), "total": int(total)})
    )
    return bool(changed.rowcount)


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
