"""tenant counts leave revoked API keys out (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20 12:00:00.000000

Hand-written. The view ``tenant_row_counts`` (appliance.db.tenant_counts) is replaced by one that counts an
API key only while it is not revoked, as the SQLite count does (tenant_counts.LIVE_ROWS). The columns are
the same, so CREATE OR REPLACE keeps the app role's grant. Nothing changes on SQLite.
"""

from collections.abc import Sequence

from alembic import op

from appliance.db.tenant_counts import view_statement

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"

# Frozen here, as in 0004: counting another table, or other rows, is a migration of its own.
COUNTED_TABLES = ("memberships", "organizations", "projects", "api_keys")
LIVE_ROWS = {"api_keys": "revoked_at IS NULL"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(view_statement(COUNTED_TABLES, LIVE_ROWS))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(view_statement(COUNTED_TABLES, {}))
