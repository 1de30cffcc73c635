"""jobs carry their progress

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:00:00.000000

A long job (a backup, a restore, a tenant's export or import) says how far it got: ``progress`` holds
``{"step": ..., "done": n, "total": m}``, written by the job's worker while it runs. Expand: a new nullable
column that the previous version neither reads nor writes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
phase = "expand"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "progress")
