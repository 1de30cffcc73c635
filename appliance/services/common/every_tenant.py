"""The steps operators' every-tenant lists share (monitored apps, webhook endpoints): a page's keys (id,
tenant, time) from the owner's ledger function on PostgreSQL or straight from the table where the session
sees every row (SQLite, or inside one named tenant), the page cut and its cursor, the keys grouped by
tenant (each tenant's rows are then read inside its scope), the tenants' slugs, and one row's tenant.

Tables under FORCEd row-level security show the app role one tenant's rows at a time: their narrow paths
(appliance.db.rls.NARROW_PATHS, ``<table>_ledger_page`` and ``<table>_tenant_of``) return ids, tenants and
times only, never a row's contents."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, TextualSelect, Uuid, bindparam, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from appliance.db.rls import NARROW_PATHS
from appliance.models import Tenant
from appliance.services.common import pagination

#: A page's key: the row's id, its tenant and its creation time.
Key = tuple[uuid.UUID, uuid.UUID, dt.datetime]


def postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _narrow_path(function: str) -> str:
    """``function`` if it is one of the owner's narrow paths (the only names these statements are built
    with); ValueError otherwise."""
    if function not in NARROW_PATHS:
        raise ValueError(f"{function!r} is not a narrow path (appliance.db.rls.NARROW_PATHS)")
    return function


def ledger_statement(function: str, filter_name: str, time_type: Any) -> TextualSelect:
    """``SELECT id, tenant_id, created_at FROM function(:filter, :before_at, :before_id, :limit)``."""
    name = _narrow_path(function)
    # A narrow path's name, checked above; the values are bound.
    sql = f"SELECT id, tenant_id, created_at FROM {name}(:{filter_name}, :before_at, :before_id, :limit)"  # noqa: S608
    return (
        text(sql)
        .bindparams(bindparam("before_at", type_=time_type))
        .columns(id=Uuid(), tenant_id=Uuid(), created_at=time_type)
    )


def tenant_of_statement(function: str) -> TextualSelect:
    """``SELECT tenant_id FROM function(:id)``."""
    sql = f"SELECT tenant_id FROM {_narrow_path(function)}(:id)"  # noqa: S608 (a narrow path's name, checked)
    return text(sql).columns(tenant_id=Uuid())


def ledger_keys(session: Session, statement: TextualSelect, params: dict[str, Any]) -> list[Key]:
    """A page's keys from the owner's ledger function (PostgreSQL)."""
    return [(row.id, row.tenant_id, row.created_at) for row in session.execute(statement, params)]


def table_keys(
    session: Session,
    model: Any,
    where: Sequence[ColumnElement[bool]],
    before: tuple[Any, ...],
    limit: int,
) -> list[Key]:
    """A page's keys of ``model`` read straight from its table: the rows the session sees, newest first."""
    keyset = (model.created_at, model.id)
    query: Select[tuple[Any, ...]] = select(model.id, model.tenant_id, model.created_at).where(*where)
    if before[0] is not None:
        query = pagination.after(query, keyset, before, True)
    found = session.execute(pagination.ordered(query, keyset, True).limit(limit))
    return [(row.id, row.tenant_id, row.created_at) for row in found]


def cut(keys: list[Key], limit: int, cursors: pagination.Keyset) -> tuple[list[Key], str | None]:
    """The page (``keys`` holds one more than ``limit`` when there is a next one) and its next cursor."""
    shown, more = keys[:limit], len(keys) > limit
    return shown, cursors.encode([shown[-1][2], shown[-1][0]]) if more else None


def by_tenant(keys: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The ids of (id, tenant) pairs grouped by tenant, each group in order."""
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row_id, tenant_id in keys:
        grouped.setdefault(tenant_id, []).append(row_id)
    return grouped


def slugs(session: Session, tenant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The tenants' slugs (the tenants table is the platform's: no tenant scope needed)."""
    wanted = list(tenant_ids)
    if not wanted:
        return {}
    rows = session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(wanted)))
    return {row.id: row.slug for row in rows}


def tenant_of(
    session: Session,
    statement: TextualSelect,
    tenant_column: InstrumentedAttribute[Any],
    id_column: Any,
    row_id: uuid.UUID,
) -> uuid.UUID | None:
    """The tenant of one row (None when there is no such row): from the owner's ``<table>_tenant_of`` on
    PostgreSQL, from the table elsewhere."""
    if postgres(session):
        found: uuid.UUID | None = session.execute(statement, {"id": row_id}).scalar()
        return found
    return session.scalar(select(tenant_column).where(id_column == row_id))
