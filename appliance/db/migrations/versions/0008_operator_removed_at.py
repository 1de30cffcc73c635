"""operators removed, their accounts kept

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-21 09:00:00.000000

Hand-written. ``users.operator_removed_at``: when an operator was removed. The account's row is kept (the
audit records that name it as their actor still resolve to its address); NULL for every existing user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import appliance.db.base

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('operator_removed_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('operator_removed_at')
