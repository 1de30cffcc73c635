"""Request and response bodies of /api/v1/members."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.models import Membership, User


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    """The user's address; the account is created when there is none yet."""
    role: str = Field(max_length=64)
    """A built-in role (viewer, member, admin, owner) or one of the tenant's custom roles."""
    display_name: str | None = Field(default=None, max_length=200)
    """Used only when the account is created now; defaults to the part of the address before '@'."""


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=64)


class MemberOut(BaseModel):
    id: uuid.UUID
    """The membership's id (what /members/{id} takes)."""
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    created_at: dt.datetime
    """When the user joined the tenant."""
    last_login_at: dt.datetime | None

    @classmethod
    def of(cls, membership: Membership, user: User) -> MemberOut:
        return cls(
            id=membership.id,
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=membership.role,
            created_at=membership.created_at,
            last_login_at=user.last_login_at,
        )


class MemberCreated(MemberOut):
    one_time_password: str | None
    """Set when the account was created by this invitation: shown once, to be changed at first sign-in."""
