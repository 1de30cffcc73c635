"""Request and response bodies of /api/v1/jobs and /api/v1/platform/jobs."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from appliance.api.schemas.times import Timestamp
from appliance.models.job import Job


class JobOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    """None for the platform's own jobs."""
    kind: str
    state: str
    """queued, running, succeeded, dead or cancelled."""
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    result: Any
    progress: dict[str, Any] | None = None
    """While a long job runs: ``{"step": "...", "done": n, "total": m}`` (how far it got)."""
    last_error: str | None
    run_at: Timestamp
    """When it runs (queued: next attempt) or last started (running)."""
    lease_until: Timestamp | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            tenant_id=job.tenant_id,
            kind=job.kind,
            state=job.state,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            payload=job.payload,
            result=job.result,
            progress=job.progress,
            last_error=job.last_error,
            run_at=job.run_at,
            lease_until=job.lease_until,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
