"""A tenant's or an operator's hand on one job: find it, run it again, or cancel it.

These are the moves of appliance.models.job.JOB_TRANSITIONS that people take; each function names its edge.
On PostgreSQL, ``jobs`` is under row-level security: a transaction sees the jobs of the tenant it is set to,
or with no tenant set the platform's own. An operator's job is found through the owner's function
``jobs_tenant_of`` (migration 0009) and then read and changed inside its tenant (:func:`get`, :func:`retry`,
:func:`cancel`).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Uuid, select, text
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.errors import Conflict, NotFound
from appliance.models.job import Job, JobState
from appliance.services.jobs.durable import push_after_commit


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
