"""Cursor (keyset) pagination: opaque cursors that carry the sort key of the last row of a page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from appliance.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.astimezone(dt.UTC).isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "t" in value:
            return dt.datetime.fromisoformat(value["t"])
        if "u" in value:
            return uuid.UUID(value["u"])
    return value


def encode(values: Sequence[Any], sort: str = "") -> str:
    """An opaque cursor for the row whose sort key is ``values`` (under the sort order ``sort``)."""
    raw = orjson.dumps({"k": [_plain(v) for v in values], "s": sort})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, sort: str = "") -> list[Any]:
    """The sort key inside ``cursor``; InvalidInput (CURSOR_INVALID) for anything we did not issue."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or not isinstance(data.get("k"), list):
            raise ValueError("not a cursor")
        keys = [_typed(v) for v in data["k"]]
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidInput(
            "the cursor is not valid: pass the next_cursor of a previous page unchanged",
            code="CURSOR_INVALID",
            details={"cursor": cursor[:100]},
        ) from None
    if data.get("s", "") != sort:
        raise InvalidInput(
            "the cursor belongs to another sort order: start again without a cursor",
            code="CURSOR_INVALID",
            details={"cursor": cursor[:100]},
        )
    return keys


def after(
    query: Select[Any], columns: Sequence[InstrumentedAttribute[Any]], key: Sequence[Any], descending: bool
) -> Select[Any]:
    """``query`` restricted to the rows after ``key`` in the order of ``columns`` (a row-value comparison
    written out, so that it works on SQLite and PostgreSQL alike and uses the composite index)."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        beyond = column < key[i] if descending else column > key[i]
        clauses.append(and_(*equal, beyond))
    return query.where(or_(*clauses))


def ordered(
    query: Select[Any], columns: Sequence[InstrumentedAttribute[Any]], descending: bool
) -> Select[Any]:
    return query.order_by(*(c.desc() if descending else c.asc() for c in columns))
