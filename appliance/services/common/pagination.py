"""Cursor (keyset) pagination: opaque cursors that carry the sort key of the last row of a page.

Every list names its keyset once (a `Keyset`: which list, and the type of each part of the key), and every
cursor is made and read by it, so one function checks every cursor a client sends back: that it is one of
ours (base64 of a JSON object of exactly the expected fields), that it belongs to this list and this sort
order, and that its key has the right number of parts of the right types (times with a time zone, ids that
are UUIDs, text that a database can store). Anything else is `InvalidInput` ``INVALID_CURSOR`` naming the
``cursor`` parameter, before the database sees a value from it.

Cursors are not signed: they carry only a position in a list the caller may read anyway (a forged one can
start a page anywhere, which ``?sort=`` and the filters already allow), and the tenant comes from the
session, never from a cursor. What must hold is that no cursor reaches the database with a value of the
wrong shape, and that is what the checks above guarantee.
"""

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
from appliance.services.common.text import unstorable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

#: The types a key part may have, each with how it is written inside a cursor.
KeyType = type[dt.datetime] | type[uuid.UUID] | type[str]

_FIELDS = frozenset({"l", "s", "k"})


class Keyset:
    """The cursors of one list: ``kind`` names the list (a cursor of another list is refused), ``types``
    the type of each part of its sort key, in order (``dt.datetime, uuid.UUID`` for (created_at, id))."""

    def __init__(self, kind: str, *types: KeyType):
        if not types:
            raise ValueError("a keyset has at least one part")
        self.kind = kind
        self.types: tuple[KeyType, ...] = types

    def __repr__(self) -> str:
        return f"Keyset({self.kind!r}, {', '.join(t.__name__ for t in self.types)})"

    def encode(self, values: Sequence[Any], sort: str = "") -> str:
        """The cursor of the row whose sort key is ``values`` (under the sort order ``sort``)."""
        if len(values) != len(self.types) or not all(map(isinstance, values, self.types)):
            raise TypeError(f"{self!r} cannot encode {values!r}")
        raw = orjson.dumps({"l": self.kind, "s": sort, "k": [_written(v) for v in values]})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str, sort: str = "") -> tuple[Any, ...]:
        """The sort key inside ``cursor``, each part of its type; `InvalidInput` ``INVALID_CURSOR`` for
        anything this list did not issue under ``sort``."""
        data = _load(cursor)
        if data.get("l") != self.kind:
            raise invalid_cursor(cursor, "it belongs to another list")
        if data.get("s") != sort:
            raise invalid_cursor(cursor, "it belongs to another sort order")
        written = data.get("k")
        if not isinstance(written, list) or len(written) != len(self.types):
            raise invalid_cursor(cursor, "its key does not have the parts of this list's")
        key = tuple(_read(value, kind) for value, kind in zip(written, self.types, strict=True))
        if any(part is None for part in key):
            raise invalid_cursor(cursor, "its key does not have the parts of this list's")
        return key


def invalid_cursor(cursor: str, why: str) -> InvalidInput:
    """The refusal of a cursor a list did not issue (``why`` says how it was told apart)."""
    return InvalidInput(
        f"Invalid value for cursor: {why}. Pass the next_cursor of a previous page of this list unchanged, "
        "or start again without a cursor.",
        code="INVALID_CURSOR",
        details={"parameter": "cursor", "cursor": cursor[:100]},
    )


def _load(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise invalid_cursor(cursor, "it is not a cursor") from None
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise invalid_cursor(cursor, "it is not a cursor")
    return data


def _written(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a cursor's time must have a time zone")
        return {"t": value.astimezone(dt.UTC).isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, str):
        return value
    raise TypeError(f"a cursor cannot hold {type(value).__name__}")


def _read(value: Any, kind: KeyType) -> Any:
    """``value`` as written by `_written` for ``kind``; None if it is anything else."""
    if kind is str:
        return value if isinstance(value, str) and unstorable(value) is None else None
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if kind is dt.datetime:
        text = value.get("t")
        try:
            moment = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
            return moment.astimezone(dt.UTC) if moment is not None and moment.tzinfo is not None else None
        except (ValueError, OverflowError):  # not a time, or one that leaves the calendar in UTC
            return None
    text = value.get("u")
    try:
        return uuid.UUID(text) if isinstance(text, str) else None
    except ValueError:
        return None


#: A list ordered by (created_at, id) that has not named a keyset of its own; `encode` and `decode` use it.
CREATED = Keyset("", dt.datetime, uuid.UUID)


def encode(values: Sequence[Any], sort: str = "") -> str:
    """`CREATED`'s cursor: prefer a `Keyset` of the list's own, so that another list's cursor is refused."""
    return CREATED.encode(values, sort)


def decode(cursor: str, sort: str = "") -> tuple[Any, ...]:
    """`CREATED`'s key in ``cursor`` (see `encode`)."""
    return CREATED.decode(cursor, sort)


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
