"""The reaper: finds the jobs a dead worker or a lost push left behind, and hands them to the queue again.

Run every ``jobs.reap_interval`` seconds by the periodic worker. Three passes, each bounded:
- RUNNING jobs whose lease ran out: their worker stopped renewing it (killed, host lost). RUNNING -> QUEUED
  to run again at once, or RUNNING -> DEAD when that was their last attempt (a job that kills its worker
  every time must not loop for ever).
- QUEUED jobs that are due and were handed to the queue more than ``jobs.requeue_after`` seconds ago and
  still have not started: the hand-over after their commit was lost (the queue was down, the process died
  between commit and push), or the queue lost them. A backlog is not a loss: a job waiting behind others
  still has its message in the queue, so only as many as the stale jobs outnumber the queue's messages
  (``pending``) are handed again, the longest waiting first. A job that was only slow to come up gets a
  second message, which its claim turns into a no-op.
- Finished jobs older than ``jobs.keep_days`` are removed.

The passes read every tenant's jobs. On PostgreSQL, where row-level security shows a transaction one
tenant's jobs (or the platform's), they are run by the owner's function ``jobs_reap`` (migration 0009), the
same statements as below, which returns the ids to hand to the queue and the counts, nothing else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ARRAY, Integer, Uuid, bindparam, delete, func, select, text, update
from sqlalchemy.engine import Connection

from appliance.db.base import utcnow
from appliance.models.job import Job, JobState

BATCH = 500

FINISHED = (JobState.SUCCEEDED.value, JobState.DEAD.value, JobState.CANCELLED.value)


@dataclass(frozen=True)
class Reaped:
    """What one pass did: the jobs to hand to the queue now, and counts for the log and metrics."""

    requeue: list[uuid.UUID]
    expired: int
    lost_pushes: int
    dead: int
    removed: int


def reap(
    conn: Connection,
    *,
    requeue_after: float,
    keep_days: int,
    pending: int = 0,
    now: dt.datetime | None = None,
) -> Reaped:
    """One pass; the caller commits, then pushes ``requeue``. ``pending``: the messages waiting in the
    queue now (appliance.workers.queue.depth)."""
    moment = now or utcnow()
    stale = moment - dt.timedelta(seconds=requeue_after)
    old = moment - dt.timedelta(days=keep_days)
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            _REAP, {"now": moment, "stale": stale, "old": old, "pending": pending, "batch": BATCH}
        ).one()
        return Reaped(list(row.requeue), row.expired, row.lost_pushes, row.dead, row.removed)
    expired = conn.execute(
        select(Job.id, Job.attempts, Job.max_attempts)
        .where(Job.state == JobState.RUNNING.value, Job.lease_until < moment)
        .limit(BATCH)
    ).all()
    again = [row.id for row in expired if row.attempts < row.max_attempts]
    dead = [row.id for row in expired if row.attempts >= row.max_attempts]
    if again:
        # RUNNING -> QUEUED: the lease ran out; the attempt it spent counts.
        conn.execute(
            update(Job)
            .where(Job.id.in_(again), Job.state == JobState.RUNNING.value)
            .values(
                state=JobState.QUEUED.value,
                run_at=moment,
                pushed_at=moment,
                lease_until=None,
                last_error="the worker running it stopped (its lease ran out); run again",
            )
        )
    if dead:
        # RUNNING -> DEAD: the lease ran out on its last attempt.
        conn.execute(
            update(Job)
            .where(Job.id.in_(dead), Job.state == JobState.RUNNING.value)
            .values(
                state=JobState.DEAD.value,
                finished_at=moment,
                lease_until=None,
                last_error="the worker running its last attempt stopped (its lease ran out)",
            )
        )
    waiting = (Job.state == JobState.QUEUED.value) & (Job.run_at <= stale) & (Job.pushed_at <= stale)
    lost: list[uuid.UUID] = []
    if pending > 0:
        stale_count = conn.execute(select(func.count()).where(waiting)).scalar_one()
        unaccounted = min(BATCH, stale_count - pending)
    else:
        unaccounted = BATCH
    if unaccounted > 0:
        lost = list(
            conn.execute(
                select(Job.id).where(waiting).order_by(Job.pushed_at, Job.id).limit(unaccounted)
            ).scalars()
        )
    if lost:
        conn.execute(update(Job).where(Job.id.in_(lost)).values(pushed_at=moment))
    removed = conn.execute(
        delete(Job).where(
            Job.id.in_(
                select(Job.id)
                .where(Job.state.in_(FINISHED), Job.finished_at < old)
                .limit(BATCH)
                .scalar_subquery()
            )
        )
    ).rowcount
    return Reaped(again + lost, len(again), len(lost), len(dead), removed or 0)


_TIME = Job.__table__.c.run_at.type
_REAP = (
    text(
        "SELECT requeue, expired, lost_pushes, dead, removed "
        "FROM jobs_reap(:now, :stale, :old, :pending, :batch)"
    )
    .bindparams(bindparam("now", type_=_TIME), bindparam("stale", type_=_TIME), bindparam("old", type_=_TIME))
    .columns(
        requeue=ARRAY(Uuid()),
        expired=Integer(),
        lost_pushes=Integer(),
        dead=Integer(),
        removed=Integer(),
    )
)
