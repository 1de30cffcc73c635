"""Memberships: a user's place in a tenant, with the name of the role it holds there."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow


class Membership(TenantOwned, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id"),
        # "Which tenants am I in?" at sign-in, before any tenant is chosen.
        Index("ix_memberships_user_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(64))
    """A built-in role (see appliance.models.role.BUILTIN_ROLES) or a custom role of the tenant."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
