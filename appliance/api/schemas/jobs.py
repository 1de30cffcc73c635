"""Request and response bodies of /api/v1/jobs and /api/v1/platform/jobs.

The operators' every-tenant list skips pydantic and serializes plain rows with orjson (:func:`render_page`),
rendering their times as :data:`Timestamp` does and their JSON fields as stored, so that a job reads the same
in that list and on its own (tests/api/test_jobs.py compares them)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel

from appliance.api.schemas.times import Timestamp, rfc3339
from appliance.models.job import Job
from appliance.services.jobs.queries import JSON_FIELDS


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


#: What a job's list row has: JobOut's fields, in its order.
FIELDS = tuple(JobOut.model_fields)
_TIMES = tuple(name for name in FIELDS if name.endswith("_at") or name == "lease_until")


def render_page(rows: list[dict[str, Any]], next_cursor: str | None) -> bytes:
    """A ``Page[JobOut]`` body from appliance.services.jobs.queries.wire_page's rows (FIELDS, the JSON
    ones as JSON text), serialized once."""
    for row in rows:
        for name in _TIMES:
            if row[name] is not None:
                row[name] = rfc3339(row[name])
        for name in JSON_FIELDS:
            text = row[name]
            row[name] = orjson.Fragment(text) if text is not None else None
    return orjson.dumps({"items": rows, "next_cursor": next_cursor})
