"""Request and response bodies of /api/v1/auth."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    tenant: str | None = Field(default=None, max_length=63)
    """The slug of the tenant to sign in to; needed when the user belongs to several."""
    mfa_code: str | None = Field(default=None, max_length=32)
    """A TOTP code or a recovery code, when two-factor authentication is on."""


class RefreshIn(Body):
    refresh_token: str = Field(max_length=200)


class PasswordIn(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class MfaCodeIn(Body):
    code: str = Field(max_length=32)


class TenantRef(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    plan: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the OAuth token type, not a secret)
    expires_in: int
    """Seconds the access token is valid."""
    refresh_token: str
    """Exchange it at /auth/refresh for a new pair; each one works once."""
    refresh_expires_at: Timestamp
    session_id: uuid.UUID
    tenant: TenantRef | None
    """None for a platform operator's session."""
    role: str | None
    permissions: list[str]
    """In a tenant, the role's permissions; for an operator, the platform permissions it holds."""
    must_change_password: bool


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    is_operator: bool
    operator_read_only: bool
    """A read-only operator: the read platform permissions only (see ``permissions``)."""
    must_change_password: bool
    mfa_enabled: bool
    created_at: Timestamp
    last_login_at: Timestamp | None


class MeOut(BaseModel):
    user: UserOut | None
    """None when the caller is an API key."""
    api_key_id: uuid.UUID | None
    tenant: TenantRef | None
    permissions: list[str]
    """A tenant's credential: its permissions there; an operator's: the platform permissions it holds
    (a read-only operator lacks tenants:manage and rate_limits:manage)."""
    operator: bool


class MfaEnrollOut(BaseModel):
    secret: str
    provisioning_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]
    """Shown once: each works one time in place of a TOTP code."""


class MfaStatusOut(BaseModel):
    enabled: bool
    recovery_codes_left: int
