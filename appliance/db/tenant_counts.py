"""How many rows several named tenants hold in a few tenant-owned tables, one grouped query per table: the
counts of a page of the operators' tenant list.

On PostgreSQL the app role sees one tenant per transaction, so the counts are read through the view
``tenant_row_counts`` of migration 0004 (a UNION ALL of one grouped query per table). A view reads its
tables as its owner, the schema owner, and the owner's SELECT-only ``<table>_tenant_counts`` policies show it
the rows of the tenants listed in the transaction's ``app.tenant_ids`` (nothing when the list is unset); the
view filters by the same list, for an owner that is a superuser. The policies are the owner's alone: given
to the app role, PostgreSQL would OR them with ``tenant_isolation`` in every tenant-scoped query of these
tables, and a page of a tenant's projects would read and sort all of that tenant's rows instead of walking
its index (measured: a bitmap scan and a sort where the index alone served the page). An API that connects
as the owner itself, with no separate app role, pays that price.

On SQLite, where the ORM filter is the isolation, one statement counts every table with an explicit
``tenant_id IN`` the listed ids (one JSON parameter).
Either way no flag shows every tenant: the caller names each one, as `tenancy.set_tenant` names one.

This module sits in the db layer and never imports appliance.models: it knows tables by name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

#: The tables counted, each by its table name.
COUNTED_TABLES: tuple[str, ...] = ("memberships", "organizations", "projects", "api_keys")
#: The rows of a table that count, where not all do (SQL over the table's own columns, a constant): a
#: revoked API key is kept, listed as revoked, but is no longer something the tenant holds. On PostgreSQL the
#: view says the same (migration 0011 replaced it); a test counts revoked keys on both databases.
LIVE_ROWS: dict[str, str] = {"api_keys": "revoked_at IS NULL"}
VIEW = "tenant_row_counts"
SETTING = "app.tenant_ids"
#: At most this many tenants at once: a page of the tenant list
#: (appliance.services.common.pagination.MAX_LIMIT).
MAX_TENANTS = 200


def _and(condition: str | None) -> str:
    return f" AND {condition}" if condition else ""


# Table names from the fixed list above, never from input.
_SQLITE_COUNTS = text(
    " UNION ALL ".join(
        f"SELECT '{t}', tenant_id, count(*) FROM {t} "  # noqa: S608
        f"WHERE tenant_id IN (SELECT value FROM json_each(:ids)){_and(LIVE_ROWS.get(t))} GROUP BY tenant_id"
        for t in COUNTED_TABLES
    )
)
_READ_VIEW = text(f"SELECT table_name, tenant_id, row_count FROM {VIEW}")  # noqa: S608  (a constant)
_LISTED = f"string_to_array(nullif(current_setting('{SETTING}', true), ''), ',')::uuid[]"


def policy_name(table: str) -> str:
    return f"{table}_tenant_counts"


def create_statements(tables: Sequence[str] = COUNTED_TABLES) -> list[str]:
    """The owner's policies and the view, every row counted (PostgreSQL; run by the owner, whom
    ``CURRENT_USER`` names). Migration 0004's; :func:`view_statement` replaces the view since."""
    policies = [
        f"CREATE POLICY {policy_name(t)} ON {t} FOR SELECT TO CURRENT_USER "
        f"USING (tenant_id = ANY ({_LISTED}))"
        for t in tables
    ]
    return [*policies, view_statement(tables, {}, replace=False)]


def view_statement(tables: Sequence[str], live_rows: Mapping[str, str], *, replace: bool = True) -> str:
    """The view counting ``tables``' rows (those of ``live_rows``' condition, where a table has one) of the
    listed tenants; ``replace`` keeps the grants of the view it replaces (the columns stay the same)."""
    # Table names and conditions from the fixed lists of this module and the migrations, never from input.
    grouped = " UNION ALL ".join(
        f"SELECT '{t}'::text AS table_name, tenant_id, count(*) AS row_count FROM {t} "  # noqa: S608
        f"WHERE tenant_id = ANY ({_LISTED}){_and(live_rows.get(t))} GROUP BY tenant_id"
        for t in tables
    )
    # security_barrier: no condition of the caller's runs on the rows before the view's own filter.
    verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
    return f"{verb} {VIEW} WITH (security_barrier) AS {grouped}"


def drop_statements(tables: Sequence[str] = COUNTED_TABLES) -> list[str]:
    return [
        f"DROP VIEW IF EXISTS {VIEW}",
        *(f"DROP POLICY IF EXISTS {policy_name(t)} ON {t}" for t in tables),
    ]


def count_rows(session: Session, tenant_ids: Iterable[uuid.UUID]) -> dict[str, dict[uuid.UUID, int]]:
    """Rows per tenant in each of COUNTED_TABLES, for the named tenants (a tenant with no rows in a table
    is absent from its mapping). Reads only; works in platform scope or inside a tenant alike."""
    ids = tuple(dict.fromkeys(tenant_ids))
    if len(ids) > MAX_TENANTS:
        raise ValueError(f"at most {MAX_TENANTS} tenants are counted together, not {len(ids)}")
    found: dict[str, dict[uuid.UUID, int]] = {table: {} for table in COUNTED_TABLES}
    if not ids:
        return found
    connection = session.connection()
    rows: list[Any] = []
    if connection.dialect.name == "postgresql":
        listed = {"name": SETTING, "value": ",".join(map(str, ids))}
        connection.execute(text("SELECT set_config(:name, :value, true)"), listed)
        try:
            rows = list(connection.execute(_READ_VIEW))
        finally:
            connection.execute(text("SELECT set_config(:name, '', true)"), {"name": SETTING})
    else:
        # One statement, the ids as one JSON parameter (200 bound UUIDs per table cost more than the
        # counting); SQLite keeps a UUID as its 32 hex digits.
        hex_ids = json.dumps([tenant.hex for tenant in ids])
        for name, tenant_hex, n in connection.execute(_SQLITE_COUNTS, {"ids": hex_ids}):
            found[name][uuid.UUID(hex=tenant_hex)] = int(n)
        return found
    for name, tenant, n in rows:
        found[name][tenant] = int(n)
    return found
