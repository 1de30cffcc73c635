"""read-only platform operators; a view that counts a page of tenants' rows (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:30:00.000000

Hand-written. ``users.operator_read_only`` (NOT NULL, default false: every existing operator stays a full
one). On PostgreSQL, the view ``tenant_row_counts`` and the owner's SELECT-only ``<table>_tenant_counts``
policies of appliance.db.tenant_counts, so that the tenant list counts a whole page's members,
organizations, projects and API keys in one grouped query per table; `appliance migrate` then grants the
app role SELECT on the view (appliance.db.rls.grant_app_role).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from appliance.db.tenant_counts import create_statements, drop_statements

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"

# Frozen here: counting another table is a migration of its own (it replaces the view).
COUNTED_TABLES = ('memberships', 'organizations', 'projects', 'api_keys')


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('operator_read_only', sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    if op.get_bind().dialect.name == 'postgresql':
        for statement in create_statements(COUNTED_TABLES):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for statement in drop_statements(COUNTED_TABLES):
            op.execute(statement)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('operator_read_only')
