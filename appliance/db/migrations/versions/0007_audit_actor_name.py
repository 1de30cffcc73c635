"""audit actor name

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20 10:00:00.000000

Audit records name who acted where no user or key id says it: ``cli:<OS user>@<host>`` for the command line.
Records written before it keep their hashes: the field is hashed only when set
(appliance.services.audit.format.compute_hash).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"


def upgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch_op:
        batch_op.add_column(sa.Column("actor_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch_op:
        batch_op.drop_column("actor_name")
