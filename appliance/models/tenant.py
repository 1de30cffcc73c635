"""Tenants: the customers that share the appliance, each isolated from the others."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class TenantPlan(enum.StrEnum):
    FREE = "free"
    TEAM = "team"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


#: The tenant lifecycle: every allowed edge, and why it exists. A deleted tenant is purged (its rows
#: removed) once ``purge_after`` has passed; until then an operator may restore it.
TENANT_TRANSITIONS: dict[TenantStatus, frozenset[TenantStatus]] = {
    TenantStatus.ACTIVE: frozenset(
        {
            TenantStatus.SUSPENDED,  # ACTIVE -> SUSPENDED: an operator stops access (billing, abuse)
            TenantStatus.DELETED,  # ACTIVE -> DELETED: the grace period before the purge starts
        }
    ),
    TenantStatus.SUSPENDED: frozenset(
        {
            TenantStatus.ACTIVE,  # SUSPENDED -> ACTIVE: the operator lifts the suspension
            TenantStatus.DELETED,  # SUSPENDED -> DELETED: the grace period before the purge starts
        }
    ),
    TenantStatus.DELETED: frozenset(
        {
            TenantStatus.ACTIVE,  # DELETED -> ACTIVE: restored within the grace period
        }
    ),
}

#: How long a deleted tenant is kept before it is purged, unless the operator says otherwise.
DEFAULT_PURGE_GRACE = dt.timedelta(days=30)


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable, and readable in psql.
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[TenantPlan] = mapped_column(_enum(TenantPlan, "tenant_plan"), default=TenantPlan.FREE)
    status: Mapped[TenantStatus] = mapped_column(
        _enum(TenantStatus, "tenant_status"), default=TenantStatus.ACTIVE
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    purge_after: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When a deleted tenant's rows are removed for good (set on deletion, cleared on restore)."""
