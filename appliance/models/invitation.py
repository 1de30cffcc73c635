"""Invitations: a tenant's offer of a role to an email address, which grants nothing until the person
behind the address accepts it."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow


class InvitationState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for the person's answer (until ``expires_at``: past it, an open invitation is expired)."""
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


#: Allowed transitions, each with why (appliance.services.tenancy.invitations and .invitees apply them). An
#: expired invitation is a pending one past its time: it can only be revoked, or replaced by inviting the
#: address again.
INVITATION_TRANSITIONS: dict[tuple[InvitationState, InvitationState], str] = {
    (InvitationState.PENDING, InvitationState.ACCEPTED): "the person accepted in time: a membership is made",
    (InvitationState.PENDING, InvitationState.DECLINED): "the person, signed in, declined it",
    (InvitationState.PENDING, InvitationState.REVOKED): "one of the tenant's admins withdrew it, or invited "
    "the address again after it expired",
}


class Invitation(TenantOwned, Base):
    """One invitation. The tenant sees the address, the role and the state, never whether the address has an
    account (nor, until acceptance, anything of that account)."""

    __tablename__ = "invitations"
    __table_args__ = (
        # One open invitation per address and tenant (answered ones stay, as the history).
        Index(
            "uq_invitations_tenant_id_email_pending",
            "tenant_id",
            "email",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # The members list, in the order the invitations were made.
        Index("ix_invitations_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        # "Which invitations are addressed to me?" before any tenant is chosen (tenancy.set_invitee).
        Index("ix_invitations_email", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    """Lower-cased, as users' addresses are stored."""
    role: Mapped[str] = mapped_column(String(64))
    """The role the membership gets on acceptance (checked again then: it may have been deleted since)."""
    token_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the acceptance token, which is shown once, to the inviting admin."""
    state: Mapped[str] = mapped_column(String(16), default=InvitationState.PENDING.value)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When it left the pending state (accepted, declined or revoked)."""

    def open_at(self, now: dt.datetime) -> bool:
        """Whether it may still be accepted or declined."""
        return self.state == InvitationState.PENDING and now < self.expires_at
