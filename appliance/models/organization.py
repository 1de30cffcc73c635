"""Organizations: the nested units inside a tenant (a hierarchy) that own projects."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow


class Organization(TenantOwned, Base):
    __tablename__ = "organizations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        # Target of the composite foreign keys below and in projects: a child always shares its tenant.
        UniqueConstraint("tenant_id", "id"),
        # The parent is looked up within the same tenant, so a hierarchy can never cross tenants.
        ForeignKeyConstraint(["tenant_id", "parent_id"], ["organizations.tenant_id", "organizations.id"]),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    """The enclosing organization; None for a top-level one."""
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
