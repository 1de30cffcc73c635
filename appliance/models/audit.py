"""The audit log: append-only records of every change and sign-in, hash-chained per tenant."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow

#: ``prev_hash`` of the first record of a chain.
GENESIS_HASH = "0" * 64


class AuditLog(Base):
    """One record. ``hash`` covers the record's fields and ``prev_hash``, the previous record's hash in the
    same chain (the tenant's, or the platform's when tenant_id is None), so that an edit or a deletion
    breaks the chain. Writers serialize per chain (seq is unique) and the app role may not UPDATE or DELETE
    (appliance.db.rls.grant_app_role)."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        # NULLs are distinct in a unique constraint: the platform chain gets its own unique index.
        Index(
            "uq_audit_logs_platform_seq",
            "seq",
            unique=True,
            postgresql_where=text("tenant_id IS NULL"),
            sqlite_where=text("tenant_id IS NULL"),
        ),
        Index("ix_audit_logs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # No cascade: a tenant's records are removed on purpose by the purge (run as the owner), never as a
    # side effect.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), default=None)
    """None for platform events (operator actions, sign-ins before a tenant is chosen)."""
    seq: Mapped[int] = mapped_column(BigInteger)
    """1, 2, 3... within the chain."""
    # Actors are not foreign keys: the record outlives the user or key it names.
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_api_key_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_name: Mapped[str | None] = mapped_column(String(200), default=None)
    """Who acted, where no user or key id says it: ``cli:<OS user>@<host>`` for the command line."""
    action: Mapped[str] = mapped_column(String(100))
    """Dotted verb, e.g. ``project.create``, ``auth.login_failed``."""
    resource_type: Mapped[str | None] = mapped_column(String(50), default=None)
    resource_id: Mapped[str | None] = mapped_column(String(100), default=None)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What changed (field -> [before, after]) or what was attempted; never secrets."""
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
