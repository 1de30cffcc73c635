"""tenants, users and worker heartbeats

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 05:08:35.972671
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import appliance.db.base

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"


def upgrade() -> None:
    op.create_table('tenants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('plan', sa.Enum('free', 'team', 'business', 'enterprise', name='tenant_plan', native_enum=False, length=16), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', 'deleted', name='tenant_status', native_enum=False, length=16), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_operator', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('worker_heartbeats',
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('last_seen', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('beats', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('worker', name=op.f('pk_worker_heartbeats'))
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeats')
    op.drop_table('users')
    op.drop_table('tenants')
