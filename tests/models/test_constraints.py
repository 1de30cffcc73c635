"""What the schema itself guarantees, on both databases: uniqueness per tenant, references that cannot
cross tenants, and values that come back as they were stored."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.errors import Conflict
from appliance.models import AuditLog, Organization, Project, RefreshToken, Role, Tenant
from tests.db.seed import Seeded


@contextmanager
def refused_by_the_database() -> Iterator[None]:
    """The database's own constraint refused the write (the session scope reports it as a Conflict)."""
    with pytest.raises(Conflict) as caught:
        yield
    assert isinstance(caught.value.__cause__, IntegrityError)


def test_names_are_unique_per_tenant_only(db: Database, seeded: Seeded) -> None:
    # Both tenants have an organization with the slug "eng" (seeded); a second one in the same tenant fails.
    with refused_by_the_database(), db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(Organization(tenant_id=seeded.tenant_a, name="Again", slug="eng"))
        session.flush()
    with refused_by_the_database(), db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(Project(tenant_id=seeded.tenant_a, organization_id=seeded.org_a, name="Rocket"))
        session.flush()


def test_a_project_cannot_belong_to_another_tenants_organization(db: Database, seeded: Seeded) -> None:
    with refused_by_the_database(), db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(Project(tenant_id=seeded.tenant_a, organization_id=seeded.org_b, name="Stolen"))
        session.flush()
    with refused_by_the_database(), db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(Organization(tenant_id=seeded.tenant_a, parent_id=seeded.org_b, name="Sub", slug="sub"))
        session.flush()


def test_organizations_nest_within_a_tenant(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        child = Organization(tenant_id=seeded.tenant_a, parent_id=seeded.org_a, name="Platform", slug="plat")
        session.add(child)
        session.flush()
        session.add(Organization(tenant_id=seeded.tenant_a, parent_id=child.id, name="DB", slug="db"))
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        parents = dict(session.execute(select(Organization.slug, Organization.parent_id)).all())
    assert parents == {"eng": None, "plat": seeded.org_a, "db": child.id}


def test_roles_and_audit_records_round_trip(db: Database, seeded: Seeded) -> None:
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        session.add(
            Role(tenant_id=seeded.tenant_a, name="auditor", inherits="viewer", permissions=["audit:read"])
        )
        session.add(
            AuditLog(
                tenant_id=seeded.tenant_a,
                seq=1,
                action="role.create",
                summary={"name": [None, "auditor"]},
                prev_hash="0" * 64,
                hash="1" * 64,
            )
        )
    with db.session_scope() as session:
        tenancy.set_tenant(session, seeded.tenant_a)
        role = session.scalars(select(Role)).one()
        record = session.scalars(select(AuditLog)).one()
    assert (role.inherits, role.permissions) == ("viewer", ["audit:read"])
    assert record.summary == {"name": [None, "auditor"]}
    assert record.created_at.tzinfo is dt.UTC


def test_audit_sequence_numbers_are_unique_per_chain(db: Database, seeded: Seeded) -> None:
    def record(tenant: uuid.UUID | None, seq: int) -> AuditLog:
        return AuditLog(tenant_id=tenant, seq=seq, action="x", prev_hash="0", hash="1")

    with db.session_scope() as session:
        tenancy.set_platform(session)
        session.add_all([record(seeded.tenant_a, 1), record(seeded.tenant_b, 1), record(None, 1)])
    for tenant in (seeded.tenant_a, None):  # the platform chain (NULL tenant) is unique too
        with refused_by_the_database(), db.session_scope() as session:
            tenancy.set_platform(session)
            session.add(record(tenant, 1))
            session.flush()


def test_refresh_tokens_need_no_tenant(db: Database, seeded: Seeded) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    with db.session_scope() as session:
        session.add(
            RefreshToken(user_id=seeded.user, family_id=uuid.uuid4(), token_hash="h", expires_at=expires)
        )
    with db.session_scope() as session:
        token = session.scalars(select(RefreshToken)).one()
        assert token.tenant_id is None
        assert token.expires_at == expires


def test_purge_after_is_stored_utc(db: Database) -> None:
    when = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with db.session_scope() as session:
        session.add(Tenant(slug="gone", name="Gone", purge_after=when))
    with db.session_scope() as session:
        tenant = session.scalars(select(Tenant)).one()
    assert tenant.purge_after == when
    assert tenant.purge_after is not None
    assert tenant.purge_after.tzinfo is dt.UTC
