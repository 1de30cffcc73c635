"""Request and response bodies of /api/v1/operators (platform operators managing each other)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.services.tenancy.operators import Operator


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    """The operator's address: their login."""
    display_name: str | None = Field(default=None, max_length=200)
    """Defaults to the part of the address before '@'."""
    read_only: bool = False
    """A read-only operator holds the read platform permissions only."""


class OperatorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read_only: bool
    """true: the read platform permissions only; false: every platform permission."""


class OperatorOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    read_only: bool
    permissions: list[str]
    """The platform permissions the operator holds, sorted."""
    mfa_enabled: bool
    """Whether two-factor authentication is on."""
    disabled: bool
    """A disabled operator signs in nowhere until enabled again."""
    must_change_password: bool
    """The operator still has a one-time password, to be changed at the next sign-in."""
    last_login_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, operator: Operator) -> OperatorOut:
        user = operator.user
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            read_only=user.operator_read_only,
            permissions=sorted(operator.permissions),
            mfa_enabled=operator.mfa,
            disabled=operator.disabled,
            must_change_password=user.must_change_password,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


class OperatorWithPassword(OperatorOut):
    """An operator just created, or whose password was just reset."""

    one_time_password: str
    """Shown in this response only; it must be changed at the next sign-in."""
