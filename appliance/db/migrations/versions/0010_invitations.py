"""invitations

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-21 12:00:00.000000

Hand-written. ``invitations``: a tenant's offer of a role to an email address, which makes a membership only
when the person accepts. Tenant-owned, so under row-level security on PostgreSQL (tenant_isolation, and the
invitee lookup by address: appliance.db.rls.rls_statements). Memberships are not touched: every
existing member stays a member.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import appliance.db.base
from appliance.db.rls import rls_statements

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"


def upgrade() -> None:
    op.create_table('invitations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('invited_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_invitations_invited_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_email', ['email'], unique=False)
        batch_op.create_index('ix_invitations_tenant_id_created_at_id', ['tenant_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(
            'uq_invitations_tenant_id_email_pending',
            ['tenant_id', 'email'],
            unique=True,
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    if op.get_bind().dialect.name == 'postgresql':
        for statement in rls_statements('invitations'):
            op.execute(statement)


def downgrade() -> None:
    # Dropping the table drops its policies with it.
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('uq_invitations_tenant_id_email_pending')
        batch_op.drop_index('ix_invitations_tenant_id_created_at_id')
        batch_op.drop_index('ix_invitations_email')

    op.drop_table('invitations')
