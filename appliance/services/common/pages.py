"""Newest-first pages of the webhook tables (endpoints, messages, attempts) and of jobs, by keyset on
(created_at, id).

Each table has an index that leads with tenant_id and then created_at, so a page is an index range however
deep it is; the tenant comes from the session (the ORM filter and row-level security). A page's cursor
belongs to its table's list: another table's is refused."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
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
    return _newest(session.scalars, query, created_at, id_column, limit=limit, cursor=cursor)


def newest_rows(
    session: Session,
    query: Select[Any],
    created_at: InstrumentedAttribute[dt.datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """:func:`newest_first` of plain columns (``created_at`` and ``id`` among them), read on the session's
    connection past the ORM's loading (a quarter of a 200-row page's time)."""
    return _newest(session.connection().execute, query, created_at, id_column, limit=limit, cursor=cursor)


def _newest(
    run: Callable[[Select[Any]], Iterable[Any]],
    query: Select[Any],
    created_at: InstrumentedAttribute[dt.datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    check_limit(limit)
    columns = (created_at, id_column)
    cursors = _keyset(created_at.class_.__tablename__)
    if cursor is not None:
        query = pagination.after(query, columns, cursors.decode(cursor, SORT), descending=True)
    rows = list(run(pagination.ordered(query, columns, True).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursors.encode([rows[-1].created_at, rows[-1].id], SORT)
    return rows, next_cursor


@cache
def _keyset(table: str) -> Keyset:
    return Keyset(table, dt.datetime, uuid.UUID)
