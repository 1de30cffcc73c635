"""identity: organizations, memberships, roles, projects, API keys, refresh tokens, MFA, audit log;
row-level security on every tenant-owned table (PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:51:49.122879

Hand-written. The RLS statements come from appliance.db.rls.rls_statements, applied to the
tenant-owned tables this revision creates; a later revision that adds a tenant-owned table adds it to
TENANT_OWNED_TABLES and runs rls_statements for it (tests/db/test_tenancy.py fails until it does).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import appliance.db.base
from appliance.db.rls import TENANT_OWNED_TABLES, rls_statements

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "expand" only adds (the previous version keeps working on the migrated schema), "contract" drops
# or changes what it still uses (appliance/upgrade/schema.py).
phase = "expand"

CREATED_HERE = frozenset({
    'organizations', 'memberships', 'roles', 'projects', 'api_keys', 'audit_logs',
    'refresh_tokens', 'mfa_factors', 'recovery_codes',
})


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=255), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('expires_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_api_keys_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_api_keys_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    op.create_index('ix_api_keys_tenant_id_created_at', 'api_keys', ['tenant_id', 'created_at'], unique=False)

    op.create_table('audit_logs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('actor_api_key_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('resource_type', sa.String(length=50), nullable=True),
    sa.Column('resource_id', sa.String(length=100), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=400), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_logs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_logs')),
    sa.UniqueConstraint('tenant_id', 'seq', name=op.f('uq_audit_logs_tenant_id_seq'))
    )
    op.create_index('ix_audit_logs_tenant_id_created_at_id', 'audit_logs', ['tenant_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_audit_logs_platform_seq', 'audit_logs', ['seq'], unique=True, postgresql_where=sa.text('tenant_id IS NULL'), sqlite_where=sa.text('tenant_id IS NULL'))

    op.create_table('memberships',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memberships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('tenant_id', 'user_id', name=op.f('uq_memberships_tenant_id_user_id'))
    )
    op.create_index('ix_memberships_user_id', 'memberships', ['user_id'], unique=False)

    op.create_table('mfa_factors',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('totp_secret', sa.String(length=255), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('enabled_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_factors_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_factors')),
    sa.UniqueConstraint('user_id', name=op.f('uq_mfa_factors_user_id'))
    )
    op.create_table('organizations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'parent_id'], ['organizations.tenant_id', 'organizations.id'], name=op.f('fk_organizations_tenant_id_organizations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_organizations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_organizations_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'slug', name=op.f('uq_organizations_tenant_id_slug'))
    )
    op.create_table('recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    op.create_index('ix_recovery_codes_user_id', 'recovery_codes', ['user_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=True),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('issued_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', appliance.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('user_agent', sa.String(length=400), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['refresh_tokens.id'], name=op.f('fk_refresh_tokens_parent_id_refresh_tokens'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_refresh_tokens_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_refresh_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    op.create_index('ix_refresh_tokens_family_id', 'refresh_tokens', ['family_id'], unique=False)
    op.create_index('ix_refresh_tokens_user_id', 'refresh_tokens', ['user_id'], unique=False)

    op.create_table('roles',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('inherits', sa.String(length=64), nullable=True),
    sa.Column('permissions', sa.JSON(), nullable=False),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_roles_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_roles_tenant_id_name'))
    )
    op.create_table('projects',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', appliance.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_projects_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'organization_id'], ['organizations.tenant_id', 'organizations.id'], name=op.f('fk_projects_tenant_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_projects_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('tenant_id', 'organization_id', 'name', name=op.f('uq_projects_tenant_id_organization_id_name'))
    )
    op.create_index('ix_projects_tenant_id_created_at_id', 'projects', ['tenant_id', 'created_at', 'id'], unique=False)

    op.add_column('tenants', sa.Column('purge_after', appliance.db.base.UTCDateTime(timezone=True), nullable=True))

    if op.get_bind().dialect.name == 'postgresql':
        # Row-level security, as the owner running the migration. No policy lets the app role see every
        # tenant: platform (operator) work that must cross tenants will connect as a separate role.
        for table in TENANT_OWNED_TABLES:
            if table in CREATED_HERE:
                for statement in rls_statements(table):
                    op.execute(statement)



def downgrade() -> None:
    # Dropping a table drops its policies with it.
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('purge_after')

    op.drop_index('ix_projects_tenant_id_created_at_id', table_name='projects')

    op.drop_table('projects')
    op.drop_table('roles')
    op.drop_index('ix_refresh_tokens_user_id', table_name='refresh_tokens')
    op.drop_index('ix_refresh_tokens_family_id', table_name='refresh_tokens')

    op.drop_table('refresh_tokens')
    op.drop_index('ix_recovery_codes_user_id', table_name='recovery_codes')

    op.drop_table('recovery_codes')
    op.drop_table('organizations')
    op.drop_table('mfa_factors')
    op.drop_index('ix_memberships_user_id', table_name='memberships')

    op.drop_table('memberships')
    op.drop_index('uq_audit_logs_platform_seq', table_name='audit_logs', postgresql_where=sa.text('tenant_id IS NULL'), sqlite_where=sa.text('tenant_id IS NULL'))
    op.drop_index('ix_audit_logs_tenant_id_created_at_id', table_name='audit_logs')

    op.drop_table('audit_logs')
    op.drop_index('ix_api_keys_tenant_id_created_at', table_name='api_keys')

    op.drop_table('api_keys')
