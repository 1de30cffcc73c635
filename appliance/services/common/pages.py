"""Newest-first pages of the webhook tables (endpoints, messages, attempts) and of jobs, by keyset on
(created_at, id).

Each table has an index that leads with tenant_id and then created_at, so a page is an index range however
deep it is; the tenant comes from the session (the ORM filter and row-level security). A page's cursor
belongs to its table's list: another table's is refused."""

from __future__ import annotations

import datetime as dt
import uuid
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from appliance.errors import InvalidInput
from appliance.services.common import pagination
from appliance.services.common.pagination import Keyset

T = TypeVar("T")

SORT = "-created_at"


def check_limit(limit: int) -> None:
    if not 1 <= limit <= pagination.MAX_LIMIT:
        raise InvalidInput(
            f"limit must be 1 to {pagination.MAX_LIMIT}, not {limit}", details={"limit": limit}
        )


def newest_first(
    session: Session,
    query: Select[T],
    created_at: InstrumentedAttribute[dt.datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """One page of ``query``'s rows (ORM objects with ``created_at`` and ``id``), newest first."""
    rows, next_cursor = newest_rows(session, query, created_at, id_column, limit=limit, cursor=cursor)
    return [row[0] for row in rows], next_cursor


def newest_rows(
    session: Session,
    query: Select[Any],
    created_at: InstrumentedAttribute[dt.datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """:func:`newest_first` as result rows: of one ORM entity, or of plain columns among which are
    ``created_at`` and ``id``."""
    check_limit(limit)
    columns = (created_at, id_column)
    cursors = _keyset(created_at.class_.__tablename__)
    if cursor is not None:
        query = pagination.after(query, columns, cursors.decode(cursor, SORT), descending=True)
    rows = list(session.execute(pagination.ordered(query, columns, True).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1] if "created_at" in rows[-1]._fields else rows[-1][0]
        next_cursor = cursors.encode([last.created_at, last.id], SORT)
    return rows, next_cursor


@cache
def _keyset(table: str) -> Keyset:
    return Keyset(table, dt.datetime, uuid.UUID)
