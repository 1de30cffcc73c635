"""Reading jobs: a tenant's (or, for operators, every tenant's) jobs page by page, and counts by state.

``jobs`` is not under row-level security (appliance.models.job says why), so the tenant filter here is
the rule, written once: every tenant read goes through :func:`list_page` or appliance.services.jobs.get."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.errors import InvalidInput
from appliance.models.job import Job, JobState
from appliance.services import webhook_pages

STATES = tuple(state.value for state in JobState)


def list_page(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    every_tenant: bool = False,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """Jobs newest first: a tenant's (None: the platform's own), or all with ``every_tenant``."""
    query = select(Job)
    if not every_tenant:
        query = query.where(Job.tenant_id == tenant_id if tenant_id is not None else Job.tenant_id.is_(None))
    if state is not None:
        if state not in STATES:
            raise InvalidInput(
                f"{state!r} is not a job state (one of: {', '.join(STATES)}).",
                code="VALIDATION_FAILED",
                details={"fields": [{"loc": ["query", "state"], "msg": f"one of {', '.join(STATES)}"}]},
            )
        query = query.where(Job.state == state)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return webhook_pages.newest_first(session, query, Job.created_at, Job.id, limit=limit, cursor=cursor)


def counts(session: Session) -> dict[str, int]:
    """Jobs by state, over the whole appliance (the metrics' gauge)."""
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    found = {str(state): int(count) for state, count in rows}
    return {state: found.get(state, 0) for state in STATES}
