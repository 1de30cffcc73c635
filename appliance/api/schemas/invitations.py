"""Request and response bodies of /api/v1/invitations (the invitee's side)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.auth import TenantRef
from appliance.api.schemas.times import Timestamp
from appliance.models import Invitation, Tenant
from appliance.services.tenancy.invitees import Joined


def _tenant(tenant: Tenant) -> TenantRef:
    return TenantRef(id=tenant.id, slug=tenant.slug, name=tenant.name, plan=tenant.plan.value)


class InvitationOut(BaseModel):
    """An open invitation to the caller's address."""

    id: uuid.UUID
    tenant: TenantRef
    role: str
    """The role the membership gets on acceptance."""
    created_at: Timestamp
    expires_at: Timestamp

    @classmethod
    def of(cls, invitation: Invitation, tenant: Tenant) -> InvitationOut:
        return cls(
            id=invitation.id,
            tenant=_tenant(tenant),
            role=invitation.role,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    """The invited address."""
    token: str = Field(max_length=200)
    """The invitation token the tenant's admins handed over."""
    password: str = Field(max_length=1024)
    """The password of the address's account; when it has none, the password of the account made now
    (checked against the password policy)."""
    display_name: str | None = Field(default=None, max_length=200)
    """For an account made now; defaults to the part of the address before '@'."""
    mfa_code: str | None = Field(default=None, max_length=32)
    """A TOTP code or a recovery code, when the account has two-factor authentication on."""


class JoinedOut(BaseModel):
    """An accepted invitation: sign in to the tenant with POST /api/v1/auth/login and its slug."""

    invitation_id: uuid.UUID
    membership_id: uuid.UUID
    email: str
    tenant: TenantRef
    role: str

    @classmethod
    def of(cls, joined: Joined) -> JoinedOut:
        return cls(
            invitation_id=joined.invitation.id,
            membership_id=joined.membership.id,
            email=joined.user.email,
            tenant=_tenant(joined.tenant),
            role=joined.membership.role,
        )
