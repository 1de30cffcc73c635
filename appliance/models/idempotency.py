"""Idempotency keys of POST requests: the first response, replayed when the same key comes back."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class IdempotencyKey(Base):
    """One ``Idempotency-Key`` of one caller, found by the caller's scope (its tenant and principal) and the
    key. Its stored answer is the tenant's data (a created app's heartbeat URL, a new member's one-time
    password), so the row carries its tenant and is under row-level security on PostgreSQL like every
    tenant's row; operators' keys have no tenant and are seen only outside every tenant
    (appliance.db.rls.UNFILTERED_TENANT_TABLES, PLATFORM_ROWS_TABLES)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("principal", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), default=None
    )
    """The tenant the caller acted in; None for an operator's key."""
    principal: Mapped[str] = mapped_column(String(80))
    """The caller's scope: ``<tenant id or platform>/<user:id or key:id>``
    (appliance.services.common.idempotency .scope), so that a key is unique per tenant and caller."""
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of method, path and body: the same key with another request is a conflict."""
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    """None while the first request is still being served."""
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    response_headers: Mapped[str | None] = mapped_column(String(2000), default=None)
    """JSON list of the headers worth replaying (Location, Content-Type)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
