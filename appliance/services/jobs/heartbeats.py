"""Worker heartbeats: each worker process records that it is alive and taking tasks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.base import utcnow
from appliance.models import WorkerHeartbeat


def record(session: Session, worker: str, now: dt.datetime | None = None) -> WorkerHeartbeat:
    """Note that ``worker`` ran a task at ``now``; returns the updated row."""
    seen = now or utcnow()
    row = session.get(WorkerHeartbeat, worker)
    if row is None:
        row = WorkerHeartbeat(worker=worker, last_seen=seen, beats=1)
        session.add(row)
    else:
        row.last_seen = seen
        row.beats += 1
    session.flush()
    return row


def latest(session: Session) -> WorkerHeartbeat | None:
    """The most recent heartbeat of any worker, or None when no worker ever ran."""
    stmt = select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen.desc()).limit(1)
    return session.scalars(stmt).first()
