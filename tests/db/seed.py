"""Two tenants with an organization and projects each, and a user who belongs to both: the fixture data
of the isolation tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.models import Membership, Organization, Project, Tenant, User


@dataclass(frozen=True)
class Seeded:
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    org_a: uuid.UUID
    org_b: uuid.UUID
    project_a: uuid.UUID
    project_b: uuid.UUID
    user: uuid.UUID
    outsider: uuid.UUID


def seed(session: Session) -> Seeded:
    """Write the data through ``session`` in platform scope (the caller commits)."""
    tenancy.set_platform(session)
    user, outsider = User(email="ada@example.com"), User(email="eve@example.com")
    tenant_a, tenant_b = Tenant(slug="acme", name="Acme"), Tenant(slug="globex", name="Globex")
    session.add_all([user, outsider, tenant_a, tenant_b])
    session.flush()
    org_a = Organization(tenant_id=tenant_a.id, name="Engineering", slug="eng")
    org_b = Organization(tenant_id=tenant_b.id, name="Engineering", slug="eng")
    session.add_all([org_a, org_b])
    session.flush()
    project_a = Project(tenant_id=tenant_a.id, organization_id=org_a.id, name="Rocket", created_by=user.id)
    project_b = Project(tenant_id=tenant_b.id, organization_id=org_b.id, name="Secret")
    session.add_all(
        [
            project_a,
            project_b,
            Project(tenant_id=tenant_a.id, organization_id=org_a.id, name="Sled"),
            Membership(tenant_id=tenant_a.id, user_id=user.id, role="owner"),
            Membership(tenant_id=tenant_b.id, user_id=user.id, role="viewer"),
            Membership(tenant_id=tenant_b.id, user_id=outsider.id, role="admin"),
        ]
    )
    session.flush()
    session.info.pop("platform")
    return Seeded(
        tenant_a.id, tenant_b.id, org_a.id, org_b.id, project_a.id, project_b.id, user.id, outsider.id
    )
