"""idempotency keys of POST requests, run-time platform settings (rate limits), revoked-session index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:45:00.000000

Hand-written. Neither new table has tenant rows: idempotency keys belong to a principal (a user or an API key).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import appliance.db.base

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('principal', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('response_headers', sa.String(length=2000), nullable=True),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('principal', 'key', name=op.f('uq_idempotency_keys_principal_key'))
    )
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)

    op.create_table('platform_settings',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_platform_settings'))
    )

    op.create_index('ix_refresh_tokens_revoked_at', 'refresh_tokens', ['revoked_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_refresh_tokens_revoked_at', table_name='refresh_tokens')
    op.drop_table('platform_settings')
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
