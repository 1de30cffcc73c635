"""Projects: created in an organization of the tenant, listed (the hot path), read, changed, moved, deleted.

The list selects only the columns of a project's public fields and returns plain dicts (no ORM objects, no
per-row validation: the database already guarantees their types), pages by keyset on an index."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from appliance.db import tenancy
from appliance.db.tenancy import TenantScopeError
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import Project
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.tenancy import organizations

#: The columns a list returns, in the order of their keys in each item.
LIST_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Project.id,
    Project.organization_id,
    Project.name,
    Project.description,
    Project.created_by,
    Project.created_at,
    Project.updated_at,
)
LIST_FIELDS: tuple[str, ...] = tuple(column.key for column in LIST_COLUMNS)

#: ?sort= → (the keyset, in order; descending). The id breaks ties, so every key is unique. Both created_at
#: orders are served by the index (tenant_id, created_at, id), forwards or backwards.
SORTS: dict[str, tuple[tuple[InstrumentedAttribute[Any], ...], bool]] = {
    "created_at": ((Project.created_at, Project.id), False),
    "-created_at": ((Project.created_at, Project.id), True),
    "name": ((Project.name, Project.id), False),
    "-name": ((Project.name, Project.id), True),
}
DEFAULT_SORT = "-created_at"

#: The list's statement for each sort, built once; a request adds its tenant, filters and limit. It names
#: its tenant itself, so the ORM filter is told not to add its own criteria (one per tenant-owned table,
#: rebuilt on every execution: about a sixth of the list's Python work); row-level security still applies.
_LISTS = {
    sort: select(*LIST_COLUMNS)
    .order_by(*(c.desc() if descending else c.asc() for c in keyset))
    .execution_options(**{tenancy.EXPLICIT_TENANT: True})
    for sort, (keyset, descending) in SORTS.items()
}
#: The cursors of each sort (a forged one must not reach the database: pagination.Keyset checks its key).
_CURSORS: dict[str, pagination.Keyset] = {
    "created_at": pagination.Keyset("projects", dt.datetime, uuid.UUID),
    "name": pagination.Keyset("projects", str, uuid.UUID),
}


@dataclass(frozen=True)
class ProjectPage:
    items: list[dict[str, Any]]
    """One dict per project, keyed by :data:`LIST_FIELDS`."""
    next_cursor: str | None


def _not_found(project_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"project {str(project_id)!r} was not found",
        code="PROJECT_NOT_FOUND",
        details={"project_id": str(project_id)},
    )


def _check_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise InvalidInput("a project needs a name", code="NAME_REQUIRED", details={"name": name})
    return value


def _check_name_free(session: Session, organization_id: uuid.UUID, name: str) -> None:
    taken = session.scalars(
        select(Project.id).where(Project.organization_id == organization_id, Project.name == name)
    ).first()
    if taken is not None:
        raise Conflict(
            f"the organization already has a project named {name!r}",
            code="PROJECT_EXISTS",
            details={"organization_id": str(organization_id), "name": name},
        )


def get(session: Session, project_id: uuid.UUID) -> Project:
    """One project of the session's tenant (another tenant's is not found)."""
    project = session.get(Project, project_id)
    if project is None:
        raise _not_found(project_id)
    return project


def create(
    session: Session, actor: Actor, *, organization_id: uuid.UUID, name: str, description: str = ""
) -> Project:
    """A new project in ``organization_id`` (ORGANIZATION_NOT_FOUND for one the tenant does not have)."""
    title = _check_name(name)

    def check() -> None:
        organizations.get(session, organization_id)
        _check_name_free(session, organization_id, title)

    check()
    project = Project(
        tenant_id=organizations.tenant_of(actor),
        organization_id=organization_id,
        name=title,
        description=description,
        created_by=actor.user_id,
    )
    with organizations.checked_write(session, check):
        session.add(project)
    audit.record(
        session,
        action="project.create",
        tenant_id=project.tenant_id,
        actor=actor,
        resource_type="project",
        resource_id=project.id,
        summary={"name": title, "organization_id": organization_id},
    )
    return project


def list_page(
    session: Session,
    *,
    sort: str = DEFAULT_SORT,
    organization_id: uuid.UUID | None = None,
    search: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> ProjectPage:
    """The tenant's projects, ``limit`` at a time, in ``sort`` order (``created_at``, ``name``, or either
    with '-' for descending); only those of ``organization_id``, or whose name contains ``search``."""
    _check_list(sort, limit)
    tenant_id = tenancy.current_tenant(session)
    if tenant_id is None:
        raise TenantScopeError("listing projects needs a session scoped to a tenant (tenancy.set_tenant)")
    keyset, descending = SORTS[sort]
    query = _LISTS[sort].where(Project.tenant_id == tenant_id)
    if organization_id is not None:
        query = query.where(Project.organization_id == organization_id)
    if search and search.strip():
        query = query.where(func.lower(Project.name).contains(search.strip().lower(), autoescape=True))
    if cursor is not None:
        last = tuple_(*keyset)
        key = _cursor_key(cursor, sort)
        # A row-value comparison: an index range on both databases (SQLite 3.15+), however deep the page.
        query = query.where(last < key if descending else last > key)
    rows = session.execute(query.limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        tail = dict(zip(LIST_FIELDS, rows[-1], strict=True))
        next_cursor = _cursors(sort).encode([tail[c.key] for c in keyset], sort)
    return ProjectPage([dict(zip(LIST_FIELDS, row, strict=True)) for row in rows], next_cursor)


# --------------------------------------------------------------------------- the list on PostgreSQL
#
# The same query as list_page, sent straight through psycopg on the event loop: the ORM session and
# SQLAlchemy's statement and row machinery cost about 2 ms of Python per page here, the query itself a
# quarter of that, and a worker thread per request as much again under load. The SQL is written once per
# shape (sort, cursor, filters); psycopg prepares it on the server after a few uses. Row-level security
# still applies (the tenant is set for the transaction) and the query names its tenant.

_PG_COLUMNS = (
    "id, organization_id, name, description, created_by, "
    "created_at AT TIME ZONE 'UTC', updated_at AT TIME ZONE 'UTC'"
)


@cache
def _pg_sql(sort: str, after: bool, organization: bool, search: bool) -> str:
    keyset, descending = SORTS[sort]
    names = [column.key for column in keyset]
    where = ["tenant_id = %(tenant)s"]
    if organization:
        where.append("organization_id = %(organization)s")
    if search:
        where.append("strpos(lower(name), %(search)s) > 0")
    if after:
        where.append(f"({', '.join(names)}) {'<' if descending else '>'} (%(k0)s, %(k1)s)")
    order = ", ".join(f"{name} {'DESC' if descending else 'ASC'}" for name in names)
    # Built from this module's constants only: every value travels as a parameter.
    return f"SELECT {_PG_COLUMNS} FROM projects WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %(limit)s"  # noqa: S608


async def list_page_postgresql(
    connection: Any,
    tenant_id: uuid.UUID,
    *,
    sort: str = DEFAULT_SORT,
    organization_id: uuid.UUID | None = None,
    search: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> ProjectPage:
    """list_page on a psycopg AsyncConnection in a transaction (appliance.db.async_pool)."""
    _check_list(sort, limit)
    term = search.strip().lower() if search and search.strip() else None
    params: dict[str, Any] = {"tenant": tenant_id, "organization": organization_id, "search": term}
    params["limit"] = limit + 1
    if cursor is not None:
        params["k0"], params["k1"] = _cursor_key(cursor, sort)
    sql = _pg_sql(sort, cursor is not None, organization_id is not None, term is not None)
    async with connection.cursor() as cur:
        await cur.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        await cur.execute(sql, params)
        rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        tail = dict(zip(LIST_FIELDS, rows[-1], strict=True))
        key = [tail[c.key] for c in SORTS[sort][0]]
        if isinstance(key[0], dt.datetime):
            key[0] = key[0].replace(tzinfo=dt.UTC)  # selected AT TIME ZONE 'UTC': naive UTC
        next_cursor = _cursors(sort).encode(key, sort)
    return ProjectPage([dict(zip(LIST_FIELDS, row, strict=True)) for row in rows], next_cursor)


def _check_list(sort: str, limit: int) -> None:
    if sort not in SORTS:
        raise InvalidInput(
            f"{sort!r} is not a sort order (sorts: {', '.join(SORTS)})",
            code="SORT_INVALID",
            details={"sort": sort},
        )
    if not 1 <= limit <= pagination.MAX_LIMIT:
        raise InvalidInput(
            f"limit must be 1 to {pagination.MAX_LIMIT}, not {limit}", details={"limit": limit}
        )


def _cursors(sort: str) -> pagination.Keyset:
    return _CURSORS[sort.lstrip("-")]


def _cursor_key(cursor: str, sort: str) -> tuple[Any, ...]:
    return _cursors(sort).decode(cursor, sort)


def change(
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    *,
    name: str | None = None,
    description: str | None = None,
    organization_id: uuid.UUID | None = None,
) -> Project:
    """Rename a project, change its description, or move it to another organization of the tenant."""
    project = get(session, project_id)
    changes: dict[str, list[Any]] = {}
    target = project.organization_id if organization_id is None else organization_id
    title = project.name if name is None else _check_name(name)
    if target != project.organization_id:
        changes["organization_id"] = [project.organization_id, target]
    if title != project.name:
        changes["name"] = [project.name, title]
    if description is not None and description != project.description:
        changes["description"] = [project.description, description]
    if not changes:
        return project

    def check() -> None:
        if target != project.organization_id:
            organizations.get(session, target)
        if "organization_id" in changes or "name" in changes:
            _check_name_free(session, target, title)

    check()
    with organizations.checked_write(session, check):
        project.organization_id, project.name = target, title
        if description is not None:
            project.description = description
    audit.record(
        session,
        action="project.update",
        tenant_id=project.tenant_id,
        actor=actor,
        resource_type="project",
        resource_id=project.id,
        summary=changes,
    )
    return project


def delete(session: Session, actor: Actor, project_id: uuid.UUID) -> None:
    project = get(session, project_id)
    session.delete(project)
    session.flush()
    audit.record(
        session,
        action="project.delete",
        tenant_id=project.tenant_id,
        actor=actor,
        resource_type="project",
        resource_id=project.id,
        summary={"name": project.name, "organization_id": project.organization_id},
    )
