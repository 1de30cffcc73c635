"""API keys made with another key name the member behind that key

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-21 12:00:00.000000

Hand-written, data only. A key acts for its creator and never does more than that member can do now
(appliance.services.identity.api_keys); a key made with another key acts for the member behind that key. Keys made
that way before this version have ``created_by`` NULL, which now means "no member answers for it" (the key
is revoked at its next use). This fills each one in from the audit trail: its ``api_key.create`` record
names the key that made it, whose creator (followed back through a chain of keys) becomes its own. A key
whose trail is gone keeps NULL. On PostgreSQL the owner may be under row-level security (FORCE), so the
work is done one tenant at a time with ``app.tenant_id`` set.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"

_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("created_by", sa.Uuid()),
)
_records = sa.table(
    "audit_logs",
    sa.column("action", sa.String()),
    sa.column("resource_id", sa.String()),
    sa.column("actor_api_key_id", sa.Uuid()),
)


def backfill(connection: Connection) -> int:
    """Fill in ``created_by`` of the keys made with keys; returns how many were filled in."""
    postgres = connection.dialect.name == "postgresql"
    tenants: list[uuid.UUID | None] = [None]
    if postgres:
        tenants = list(connection.execute(sa.text("SELECT id FROM tenants")).scalars())
    filled = 0
    for tenant in tenants:
        if postgres:
            connection.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": str(tenant)}
            )
        filled += _backfill_visible(connection)
    if postgres:
        connection.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))
    return filled


def _backfill_visible(connection: Connection) -> int:
    creators: dict[uuid.UUID, uuid.UUID | None] = {
        row[0]: row[1] for row in connection.execute(sa.select(_keys.c.id, _keys.c.created_by))
    }
    orphans = [key for key, creator in creators.items() if creator is None]
    if not orphans:
        return 0
    made_by: dict[uuid.UUID, uuid.UUID] = {}
    rows = connection.execute(
        sa.select(_records.c.resource_id, _records.c.actor_api_key_id).where(
            _records.c.action == "api_key.create", _records.c.actor_api_key_id.is_not(None)
        )
    )
    for resource_id, maker in rows:
        try:
            made_by[uuid.UUID(str(resource_id))] = maker
        except ValueError:
            continue
    filled = 0
    for key in orphans:
        current, seen = key, {key}
        while creators.get(current) is None and made_by.get(current) not in (None, *seen):
            current = made_by[current]
            seen.add(current)
        creator = creators.get(current)
        if creator is not None:
            connection.execute(sa.update(_keys).where(_keys.c.id == key).values(created_by=creator))
            filled += 1
    return filled


def upgrade() -> None:
    backfill(op.get_bind())


def downgrade() -> None:
    pass  # the creators filled in are true; nothing to undo
