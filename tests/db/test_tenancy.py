"""Tenant isolation in the ORM, on both databases: every query on a tenant-owned table is filtered by the
session's tenant, and one with no tenant set fails loudly."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from appliance.db import tenancy
from appliance.db.base import Base, TenantOwned
from appliance.db.rls import TENANT_OWNED_TABLES, UNFILTERED_TENANT_TABLES
from appliance.db.session import Database
from appliance.db.tenancy import TenantScopeError
from appliance.models import ApiKey, AuditLog, Membership, Organization, Project, RefreshToken
from tests.db.seed import Seeded


def test_every_table_with_a_tenant_id_is_classified() -> None:
    """A new table with a tenant_id column must be put under row-level security or explained."""
    with_tenant = {
        name for name, table in Base.metadata.tables.items() if "tenant_id" in table.c and name != "tenants"
    }
    assert with_tenant == set(TENANT_OWNED_TABLES) | set(UNFILTERED_TENANT_TABLES)
    assert not set(TENANT_OWNED_TABLES) & set(UNFILTERED_TENANT_TABLES)
    nullable = {name for name in TENANT_OWNED_TABLES if Base.metadata.tables[name].c.tenant_id.nullable}
    assert nullable == {"audit_logs"}  # platform events; they have a policy of their own


def test_the_tenant_owned_shape_is_one_mixin() -> None:
    """Every table of the tenant-owned shape (tenant_id NOT NULL, gone with its tenant) takes it from
    TenantOwned, and every TenantOwned table is under the tenant filter and row-level security."""
    mixed = {
        m.persist_selectable.description for m in Base.registry.mappers if issubclass(m.class_, TenantOwned)
    }
    shaped = set()
    for name, table in Base.metadata.tables.items():
        column = table.c.get("tenant_id")
        if column is None or column.nullable or column.primary_key:
            continue
        if any(
            key.target_fullname == "tenants.id" and key.ondelete == "CASCADE" for key in column.foreign_keys
        ):
            shaped.add(name)
    assert mixed == shaped
    assert mixed <= set(TENANT_OWNED_TABLES)


def test_composite_keys_lead_with_tenant_id() -> None:
    """So that the schema can be sharded by tenant: every multi-column key or index starts with tenant_id."""
    for name in (*TENANT_OWNED_TABLES, *UNFILTERED_TENANT_TABLES):
        table = Base.metadata.tables[name]
        constraints = [c for c in table.constraints if isinstance(c, ColumnCollectionConstraint)]
        keys = [list(c.columns.keys()) for c in constraints if len(c.columns) > 1]
        keys += [list(i.columns.keys()) for i in table.indexes if len(i.columns) > 1]
        for columns in keys:
            if (name, tuple(columns)) in CROSS_TENANT_KEYS:
                continue
            assert columns[0] == "tenant_id", f"{name}: key {columns} does not lead with tenant_id"


#: Keys that serve a scan across tenants on purpose, and why.
CROSS_TENANT_KEYS = {
    ("jobs", ("state", "run_at")): "the reaper looks for lost and expired jobs of every tenant at once",
    ("jobs", ("created_at", "id")): "operators list every tenant's jobs newest first (/platform/jobs)",
    ("idempotency_keys", ("principal", "key")): (
        "the principal is the caller's scope, which begins with its tenant's id (operators' keys have no "
        "tenant, and a NULL tenant_id would make the key unique nowhere)"
    ),
}


def test_queries_see_only_the_sessions_tenant(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        assert sorted(session.scalars(select(Project.name))) == ["Rocket", "Sled"]
        assert session.scalar(select(func.count()).select_from(Organization)) == 1
        assert session.get(Project, seeded.project_b) is None
        assert session.get(Project, seeded.project_a) is not None
        # Aliases and joins are filtered too.
        other = aliased(Project)
        pairs = session.execute(select(Project.name, other.name).join(other, other.id != Project.id)).all()
        assert sorted(pairs) == [("Rocket", "Sled"), ("Sled", "Rocket")]
        # The tenant survives the commit: the next transaction is scoped too.
        session.commit()
        assert session.scalars(select(Project.tenant_id)).unique().all() == [seeded.tenant_a]


def test_bulk_update_and_delete_touch_only_the_sessions_tenant(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_b)
        session.execute(update(Project).values(description="touched"))
    with db.session_scope() as session:
        tenancy.set_platform(session)
        touched = dict(session.execute(select(Project.name, Project.description)).all())
    assert touched == {"Rocket": "", "Sled": "", "Secret": "touched"}


def test_a_query_with_no_tenant_fails_loudly(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        with pytest.raises(TenantScopeError, match="'projects' ran with no tenant set"):
            session.scalars(select(Project)).all()
        with pytest.raises(TenantScopeError):
            session.get(Organization, seeded.org_a)
        with pytest.raises(TenantScopeError):
            session.execute(update(Project).values(description="x"))
        # Tables that are not tenant-owned need no scope.
        assert session.scalars(select(RefreshToken)).all() == []


def test_platform_scope_sees_every_tenant(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_platform(session)
        assert session.scalar(select(func.count()).select_from(Project)) == 3


def test_writing_another_tenants_row_is_refused(db: Database, seeded: Seeded) -> None:
    with pytest.raises(TenantScopeError, match="another tenant"), db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(Project(tenant_id=seeded.tenant_b, organization_id=seeded.org_b, name="Planted"))
        session.flush()
    with pytest.raises(TenantScopeError, match="no tenant set"), db.session_scope() as session:
        session.add(Project(tenant_id=seeded.tenant_b, organization_id=seeded.org_b, name="Planted"))
        session.flush()
    with db.session_scope() as session:
        tenancy.set_platform(session)
        assert session.scalar(select(func.count()).select_from(Project)) == 3


def test_lookups_read_only_what_the_caller_identifies(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_b)
        session.add(ApiKey(tenant_id=seeded.tenant_b, name="ci", prefix="fa_abc123", key_hash="h"))
    with db.session_scope() as session:
        tenancy.set_user(session, seeded.user)
        tenants = set(session.scalars(select(Membership.tenant_id)))
        assert tenants == {seeded.tenant_a, seeded.tenant_b}  # not the outsider's membership
        with pytest.raises(TenantScopeError):
            session.scalars(select(Project)).all()  # a lookup opens memberships only
        with pytest.raises(TenantScopeError):
            session.execute(update(Membership).values(role="owner"))  # and for reading only
    with db.session_scope() as session:
        tenancy.set_api_key_prefix(session, "fa_abc123")
        key = session.scalars(select(ApiKey)).one()
        assert key.tenant_id == seeded.tenant_b
        tenancy.set_api_key_prefix(session, "fa_nothing")
        assert session.scalars(select(ApiKey)).all() == []


def test_audit_logs_are_scoped_like_any_tenant_table(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(
            AuditLog(tenant_id=seeded.tenant_a, seq=1, action="project.create", prev_hash="0", hash="a")
        )
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_b)
        assert session.scalars(select(AuditLog)).all() == []
