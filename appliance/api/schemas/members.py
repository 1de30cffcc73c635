"""Request and response bodies of /api/v1/members."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.models import Invitation, Membership, User
from appliance.services.tenancy.members import Entry, Status, status_of


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    """The address to invite; the person behind it accepts (with an account of theirs or a new one)."""
    role: str = Field(max_length=64)
    """A built-in role (viewer, member, admin, owner) or one of the tenant's custom roles: what the
    membership gets when the invitation is accepted."""


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=64)


class MemberOut(BaseModel):
    id: uuid.UUID
    """The membership's id, or the invitation's while it is not answered (what /members/{id} takes)."""
    status: Status
    """active: a member; invited: invited and not answered yet; expired: invited, and the invitation's time
    ran out (revoke it, or invite the address again)."""
    user_id: uuid.UUID | None
    """None while invited: nothing of an account is shown before the person accepts."""
    email: str
    display_name: str | None
    """None while invited."""
    role: str
    """The member's role, or the role the invitation offers."""
    created_at: Timestamp
    """When the user joined the tenant, or when they were invited."""
    last_login_at: Timestamp | None
    expires_at: Timestamp | None
    """Until when an invitation may be accepted; None for a member."""

    @classmethod
    def of(cls, membership: Membership, user: User) -> MemberOut:
        return cls(
            id=membership.id,
            status="active",
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=membership.role,
            created_at=membership.created_at,
            last_login_at=user.last_login_at,
            expires_at=None,
        )

    @classmethod
    def invited(cls, invitation: Invitation, now: dt.datetime) -> MemberOut:
        return cls(
            id=invitation.id,
            status=status_of(invitation, now),
            user_id=None,
            email=invitation.email,
            display_name=None,
            role=invitation.role,
            created_at=invitation.created_at,
            last_login_at=None,
            expires_at=invitation.expires_at,
        )

    @classmethod
    def entry(cls, entry: Entry, now: dt.datetime) -> MemberOut:
        if isinstance(entry, Invitation):
            return cls.invited(entry, now)
        return cls.of(*entry)


class InvitationCreated(MemberOut):
    """The answer to an invitation: the same fields whether the address has an account or not."""

    invitation_token: str
    """Shown only now: hand it to the person (out of band: the appliance sends no mail). They accept with
    POST /api/v1/invitations/accept (their address, this token, and their password, or the one they choose
    when the address has no account yet), or, signed in, from GET /api/v1/invitations."""
