"""Multi-factor authentication of a user: a TOTP factor and single-use recovery codes."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class MfaFactor(Base):
    """A user's TOTP factor: enrolled (secret set), then enabled once a first code is verified."""

    __tablename__ = "mfa_factors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    totp_secret: Mapped[str] = mapped_column(String(255))
    """Base32 secret. Stored plain for now; to be encrypted with a key from the data directory (the column
    is wide enough for the ciphertext) before MFA leaves preview."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The last accepted TOTP time step: a code of that step or an earlier one is refused (no replay)."""


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
