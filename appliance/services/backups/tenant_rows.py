"""One tenant's rows, table by table: what a tenant is, read as JSON lines and inserted back.

A tenant is its ``tenants`` row, every tenant-owned table's rows (appliance.db.rls.TENANT_OWNED_TABLES; of
audit_logs, its own chain), and its members' accounts (``users`` with their ``mfa_factors`` and
``recovery_codes``). What is left behind, and why, is :data:`NOT_MOVED`.

Each table is one gzip file of JSON lines. A line holds up to :data:`BATCH` rows, each an array of values in
the order of the table's columns (named in the manifest): one orjson call per batch instead of one per row
is ten times faster, and a line is also the import's unit of insertion. Values are written as orjson
writes them (UUIDs and enums as strings, times in ISO 8601 with their UTC offset, JSON columns as JSON) and
read back by the column's type, so that they come back exactly: bytes are base64 text, and a float that
JSON cannot hold (NaN, infinities) is its name as a string.

Reading is done on a Connection (the ORM's tenant filter refuses Core statements on tenant-owned tables
through a Session), each query naming its tenant; inserting in foreign-key order
(``metadata.sorted_tables``), in batches, through the import's session.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import gzip
import math
import uuid
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Select,
    Table,
    Text,
    cast,
    func,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from appliance.db.base import Base
from appliance.db.rls import TENANT_OWNED_TABLES
from appliance.errors import InvalidInput

#: Rows per line of a table's file, and per INSERT on import.
BATCH = 1000
#: The users who belong to the tenant (its members), and what belongs to their accounts.
MEMBER_TABLES: tuple[str, ...] = ("users", "mfa_factors", "recovery_codes")
#: Tables with a tenant_id that are not moved, and why (the export's output says so).
NOT_MOVED: dict[str, str] = {
    "refresh_tokens": "sessions: the members sign in again",
    "idempotency_keys": "the answers kept for a day to replay requests",
    "jobs": "the ledger of background work (webhook deliveries still pending are not sent by themselves: "
    "replay them)",
}
#: The platform's own tables: no tenant's.
PLATFORM_TABLES: tuple[str, ...] = ("platform_settings", "worker_heartbeats")

#: Called with (rows done, rows in all).
Progress = Callable[[int, int], None]


def moved_tables() -> list[Table]:
    """The tables a tenant's rows are in, parents before children."""
    names = {"tenants", *MEMBER_TABLES, *TENANT_OWNED_TABLES}
    return [table for table in Base.metadata.sorted_tables if table.name in names]


def part_name(table: str) -> str:
    """The table's file inside the archive."""
    return f"rows/{table}.jsonl.gz"


def _members(tenant_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    memberships = Base.metadata.tables["memberships"]
    return select(memberships.c.user_id).where(memberships.c.tenant_id == tenant_id)


def _owned_by(table: Table, tenant_id: uuid.UUID) -> ColumnElement[bool]:
    """The condition that picks the tenant's rows of ``table``."""
    if table.name == "tenants":
        return table.c.id == tenant_id
    if table.name == "users":
        return table.c.id.in_(_members(tenant_id))
    if table.name in MEMBER_TABLES:
        return table.c.user_id.in_(_members(tenant_id))
    return table.c.tenant_id == tenant_id


def count(conn: Connection, tenant_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each table the tenant has."""
    return {
        table.name: int(
            conn.execute(
                select(func.count()).select_from(table).where(_owned_by(table, tenant_id))
            ).scalar_one()
        )
        for table in moved_tables()
    }


# --------------------------------------------------------------------------- export


def dump(
    conn: Connection,
    tenant_id: uuid.UUID,
    directory: Path,
    *,
    total: int,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Write each table's rows of the tenant to ``directory`` (a file per table, :func:`part_name`) and
    return, per table, its columns and row count. The caller holds the snapshot (one transaction) and, on
    PostgreSQL, has set the tenant for row-level security."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))  # times come as UTC (see _selected)
    done = 0
    written: dict[str, dict[str, Any]] = {}
    for table in moved_tables():
        statement = select(*_selected(table, conn.dialect.name)).where(_owned_by(table, tenant_id))
        if table.name == "audit_logs":
            statement = statement.order_by(table.c.seq)  # the chain in its order: a copy is re-chained
        floats = [i for i, column in enumerate(table.columns) if _python_type(column) is float]
        rows = 0
        target = directory / part_name(table.name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        result = conn.execute(statement.execution_options(yield_per=_FETCH))
        with gzip.open(target, "wb", compresslevel=1) as out:
            for partition in result.partitions(BATCH):
                batch = list(map(tuple, partition))
                if floats and not _finite(batch, floats):
                    batch = [_spelled(row, floats) for row in batch]
                out.write(orjson.dumps(batch, default=_default, option=orjson.OPT_APPEND_NEWLINE))
                rows += len(batch)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
        written[table.name] = {"columns": [column.name for column in table.columns], "rows": rows}
    return written


#: Rows per round trip of the server-side cursor (a few lines' worth).
_FETCH = 5 * BATCH


def _selected(table: Table, dialect: str) -> list[ColumnElement[Any]]:
    """The table's columns as the export reads them. On PostgreSQL, UUIDs as text and times as the server
    gives them (in UTC: the transaction's time zone), past the Python types: making a uuid.UUID and
    converting a time for every value was most of the export's CPU (tests/bench/RESULTS.md). On SQLite
    both are stored as text already, and read through their types."""
    if dialect != "postgresql":
        return list(table.columns)
    selected: list[ColumnElement[Any]] = []
    for column in table.columns:
        kind = _python_type(column)
        if kind is uuid.UUID:
            selected.append(cast(column, Text).label(column.name))
        elif kind is dt.datetime:
            selected.append(type_coerce(column, DateTime(timezone=True)).label(column.name))
        else:
            selected.append(column)
    return selected


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"a {type(value).__name__} cannot be exported")


def _finite(batch: list[tuple[Any, ...]], floats: list[int]) -> bool:
    """Whether every float of the batch is finite (orjson would write NaN and the infinities as null): the
    sum of a column is finite when its values are, and summing runs in C, unlike a test of each value."""
    for i in floats:
        try:
            if not math.isfinite(math.fsum(filter(None, map(itemgetter(i), batch)))):
                return False
        except (OverflowError, ValueError):  # inf - inf, or finite values too large to add up: look closer
            return False
    return True


def _spelled(row: tuple[Any, ...], floats: list[int]) -> tuple[Any, ...]:
    """The row with NaN and the infinities written as 'nan', 'inf', '-inf' (float() reads them back)."""
    listed = list(row)
    for i in floats:
        if listed[i] is not None and not math.isfinite(listed[i]):
            listed[i] = str(listed[i])
    return tuple(listed)


# --------------------------------------------------------------------------- import


def _python_type(column: Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, TypeDecorator):  # UTCDateTime: the type it stores is its impl's
        kind = kind.impl_instance
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, str) else value


#: How a JSON value becomes a Python value of each type again (a type not named: as it is).
_DECODERS: dict[Any, Callable[[Any], Any]] = {
    uuid.UUID: uuid.UUID,
    dt.datetime: dt.datetime.fromisoformat,
    dt.date: dt.date.fromisoformat,
    bytes: base64.b64decode,
    float: _float,
    decimal.Decimal: decimal.Decimal,
}


def _decoder(column: Column[Any]) -> Callable[[Any], Any] | None:
    """How a JSON value of ``column`` becomes its Python value again (None: as it is)."""
    kind = _python_type(column)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    return _DECODERS.get(kind)


def read(directory: Path, table: Table, columns: list[str]) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``table``'s file, a batch at a time, as dicts of Python values by column name.

    ``columns`` are the manifest's; a column this schema does not have is refused (the schema revisions
    are checked to be equal first, so this is a damaged archive)."""
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise InvalidInput(f"the archive's table {table.name} has unknown columns: {', '.join(unknown)}")
    decoders = [(i, name, _decoder(table.c[name])) for i, name in enumerate(columns)]
    with gzip.open(directory / part_name(table.name), "rb") as source:
        for line in source:
            batch = []
            for values in orjson.loads(line):
                row = {}
                for i, name, decode in decoders:
                    value = values[i]
                    row[name] = value if value is None or decode is None else decode(value)
                batch.append(row)
            yield batch


#: What the import does with one row before it is inserted: the row to insert, or None to leave it out.
Transform = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def load(
    session: Session,
    directory: Path,
    tables: dict[str, dict[str, Any]],
    transform: Transform,
    *,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Insert the rows of every table of ``tables`` (the manifest's: columns and counts) in foreign-key
    order, each through ``transform``, and return how many rows of each were inserted. The caller's
    transaction holds them all (and, on PostgreSQL, the tenant set for row-level security)."""
    total = sum(int(entry["rows"]) for entry in tables.values())
    done = 0
    inserted: dict[str, int] = {}
    for table in moved_tables():
        entry = tables.get(table.name)
        if entry is None:
            raise InvalidInput(f"the archive has no rows file for the table {table.name}")
        batches = read(directory, table, list(entry["columns"]))
        if _self_referencing(table):
            batches = iter([_parents_first(table, [row for batch in batches for row in batch])])
        inserted[table.name] = 0
        for batch in batches:
            rows = [kept for row in batch if (kept := transform(table.name, row)) is not None]
            for start in range(0, len(rows), BATCH):
                session.execute(insert(table), rows[start : start + BATCH])
            inserted[table.name] += len(rows)
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return inserted


def _self_referencing(table: Table) -> bool:
    return any(fk.column.table is table for fk in table.foreign_keys)


def _parents_first(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table that refers to itself (organizations' parent): each row after the row it names."""
    (fk,) = [fk for fk in table.foreign_keys if fk.column.table is table and fk.column.name != "tenant_id"]
    child, parent = fk.parent.name, fk.column.name
    by_key = {row[parent]: row for row in rows}
    ordered: list[dict[str, Any]] = []
    placed: set[Any] = set()

    def place(row: dict[str, Any], depth: int = 0) -> None:
        key = row[parent]
        if key in placed:
            return
        above = by_key.get(row[child])
        if above is not None and depth < len(rows):
            place(above, depth + 1)
        placed.add(key)
        ordered.append(row)

    for row in rows:
        place(row)
    return ordered
