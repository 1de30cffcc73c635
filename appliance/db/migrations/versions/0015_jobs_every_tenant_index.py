"""every tenant's jobs, newest first, by an index

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:40:00.000000

Operators list every tenant's jobs newest first (GET /api/v1/platform/jobs, the console's Jobs view): without
an index on (created_at, id) each page sorted the whole table (on SQLite 10 ms a page at 10,000 jobs, and
growing with the table). Expand: an index the previous version does not need and does not mind.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
phase = "expand"


def upgrade() -> None:
    op.create_index("ix_jobs_created_at_id", "jobs", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_created_at_id", table_name="jobs")
