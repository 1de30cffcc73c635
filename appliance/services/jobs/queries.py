"""Reading jobs: a tenant's (or, for operators, every tenant's) jobs page by page, and counts by state.

``jobs`` is under row-level security on PostgreSQL but not under the ORM filter (appliance.models.job says
why), so the tenant filter here is the rule on SQLite, written once: every tenant read goes through
:func:`list_page` or appliance.services.jobs.manage.get, each read inside its tenant's scope. What crosses
tenants (every tenant's page, the counts by state) reads the ledger through the owner's functions of migration
0009 on PostgreSQL: ``jobs_ledger_page`` gives a page's ids and tenants, whose rows are then read inside each
tenant's scope, and ``jobs_state_counts`` the counts."""

from __future__ import annotations

import datetime as dt
import uuid
from functools import cache
from typing import Any

from sqlalchemy import Select, Text, Uuid, bindparam, cast, func, select, text
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.errors import InvalidInput
from appliance.models.job import Job, JobState
from appliance.services.common import pages as webhook_pages
from appliance.services.common import pagination

STATES = tuple(state.value for state in JobState)

#: The cursors of the every-tenant page on PostgreSQL: the same as webhook_pages.newest_first's for jobs.
_CURSORS = pagination.Keyset(Job.__tablename__, dt.datetime, uuid.UUID)
_TIME = Job.__table__.c.created_at.type
_LEDGER_PAGE = (
    text(
        "SELECT id, tenant_id, created_at "
        "FROM jobs_ledger_page(:state, :kind, :before_at, :before_id, :limit)"
    )
    .bindparams(bindparam("before_at", type_=_TIME))
    .columns(id=Uuid(), tenant_id=Uuid(), created_at=_TIME)
)
_STATE_COUNTS = text("SELECT state, n FROM jobs_state_counts()")

#: The JSON fields of a job, read as their JSON text by :func:`wire_page` (sent on as they are).
JSON_FIELDS = frozenset({"payload", "result", "progress"})


@cache
def _wire(fields: tuple[str, ...]) -> Select[Any]:
    """The columns named ``fields``, in that order, the JSON ones as text."""
    table = Job.__table__.c
    unknown = [name for name in fields if name not in table]
    if unknown:
        raise ValueError(f"jobs has no column {', '.join(unknown)}")
    return select(*(cast(table[n], Text).label(n) if n in JSON_FIELDS else table[n] for n in fields))


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
    return _page(
        session, select(Job), tenant_id, every_tenant, state=state, kind=kind, limit=limit, cursor=cursor
    )


def wire_page(
    session: Session,
    fields: tuple[str, ...],
    *,
    tenant_id: uuid.UUID | None,
    every_tenant: bool = False,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """:func:`list_page` as plain values, for a page sent as it is read: the same jobs, each a dict of the
    columns named ``fields`` (``created_at`` and ``id`` among them), its JSON fields (``JSON_FIELDS``) as
    their JSON text (None for SQL NULL), and none of the ORM's work (the operators' every-tenant list reads
    10,000 jobs at a time)."""
    found, next_cursor = _page(
        session, _wire(fields), tenant_id, every_tenant, state=state, kind=kind, limit=limit, cursor=cursor
    )
    return [dict(zip(fields, row, strict=True)) for row in found], next_cursor


def _page(
    session: Session,
    what: Select[Any],
    tenant_id: uuid.UUID | None,
    every_tenant: bool,
    *,
    state: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of ``what``: Job objects (``select(Job)``), or rows of plain columns of ``jobs`` (read
    past the ORM)."""
    if state is not None and state not in STATES:
        raise InvalidInput(
            f"{state!r} is not a job state (one of: {', '.join(STATES)}).",
            code="VALIDATION_FAILED",
            details={"fields": [{"loc": ["query", "state"], "msg": f"one of {', '.join(STATES)}"}]},
        )
    if every_tenant and session.get_bind().dialect.name == "postgresql":
        return _every_tenant_page(session, what, state=state, kind=kind, limit=limit, cursor=cursor)
    query = what
    if not every_tenant:
        query = query.where(Job.tenant_id == tenant_id if tenant_id is not None else Job.tenant_id.is_(None))
    if state is not None:
        query = query.where(Job.state == state)
    if kind is not None:
        query = query.where(Job.kind == kind)
    read = webhook_pages.newest_first if _entity(what) else webhook_pages.newest_rows
    if every_tenant:
        return read(session, query, Job.created_at, Job.id, limit=limit, cursor=cursor)
    with tenancy.inside(session, tenant_id):
        return read(session, query, Job.created_at, Job.id, limit=limit, cursor=cursor)


def _every_tenant_page(
    session: Session,
    what: Select[Any],
    *,
    state: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Every tenant's jobs on PostgreSQL: the page's ids and tenants from the ledger, then each tenant's
    rows read inside its scope (a job removed in between is left out of the page)."""
    webhook_pages.check_limit(limit)
    before: tuple[Any, ...] = (None, None)
    if cursor is not None:
        before = _CURSORS.decode(cursor, webhook_pages.SORT)
    ledger = session.execute(
        _LEDGER_PAGE,
        {"state": state, "kind": kind, "before_at": before[0], "before_id": before[1], "limit": limit + 1},
    ).all()
    page, more = ledger[:limit], len(ledger) > limit
    by_tenant: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for row in page:
        by_tenant.setdefault(row.tenant_id, []).append(row.id)
    run = session.scalars if _entity(what) else session.connection().execute
    found: dict[uuid.UUID, Any] = {}
    for tenant_id, ids in by_tenant.items():
        with tenancy.inside(session, tenant_id):
            found.update((row.id, row) for row in run(what.where(Job.id.in_(ids))))
    next_cursor = _CURSORS.encode([page[-1].created_at, page[-1].id], webhook_pages.SORT) if more else None
    return [found[row.id] for row in page if row.id in found], next_cursor


def _entity(what: Select[Any]) -> bool:
    """``what`` selects Job objects (not plain columns)."""
    return "entity" in what.column_descriptions[0]


def counts(session: Session) -> dict[str, int]:
    """Jobs by state, over the whole appliance (the metrics' gauge)."""
    if session.get_bind().dialect.name == "postgresql":
        rows: list[Any] = list(session.execute(_STATE_COUNTS))
    else:
        rows = list(session.execute(select(Job.state, func.count()).group_by(Job.state)))
    found = {str(state): int(count) for state, count in rows}
    return {state: found.get(state, 0) for state in STATES}
