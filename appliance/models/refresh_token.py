"""Refresh tokens: opaque, stored hashed, rotated on every use; a reused one revokes its whole family."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class RefreshToken(Base):
    """One link of a rotation chain. Under row-level security on PostgreSQL: a tenant's transaction sees the
    tenant's sessions; a token is found by the hash of a secret only its holder knows, before its tenant is
    known (``refresh_tokens_lookup``), and then acted on as its user's (``refresh_tokens_user``: a user's own
    sessions in every tenant, operators' included, which have no tenant). appliance.services.identity.sessions
    sets both (appliance.db.tenancy.refresh_token_lookup, as_user)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_user_id", "user_id"),
        # Each API process loads the sessions revoked since its last look, every few seconds.
        Index("ix_refresh_tokens_revoked_at", "revoked_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), default=None
    )
    """The tenant the session was opened in; None for a platform operator's session."""
    family_id: Mapped[uuid.UUID]
    """Shared by every token rotated from the same sign-in; revoking a family ends that session."""
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refresh_tokens.id", ondelete="SET NULL"), default=None
    )
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    rotated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """Set when this token was exchanged for its child: presenting it again is a reuse."""
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
