"""Request and response bodies of /api/v1/roles."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.services.tenancy.roles import RoleView


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63)
    """Lower-case letters, digits, '-' and '_'; unique in the tenant, built-in names included."""
    permissions: list[str] = Field(default_factory=list, max_length=100)
    """The role's own permissions (such as projects:read), on top of what it inherits."""
    inherits: str | None = Field(default=None, max_length=64)
    """A built-in role or another custom role whose permissions this one also grants."""


class RolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] | None = Field(default=None, max_length=100)
    """Replaces the role's own permissions; omitted: unchanged."""
    inherits: str | None = Field(default=None, max_length=64)
    """Omitted: unchanged; null: inherit from nothing."""


class RoleOut(BaseModel):
    id: uuid.UUID | None
    """None for a built-in role (those are not stored and cannot be changed)."""
    name: str
    builtin: bool
    permissions: list[str]
    """Everything the role grants: its own permissions and those it inherits."""
    own_permissions: list[str]
    """The permissions given to the role itself (a built-in role's are all its own)."""
    inherits: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None

    @classmethod
    def of(cls, view: RoleView) -> RoleOut:
        role = view.role
        return cls(
            id=role.id if role else None,
            name=view.name,
            builtin=role is None,
            permissions=sorted(view.permissions),
            own_permissions=sorted(role.permissions) if role else sorted(view.permissions),
            inherits=role.inherits if role else None,
            created_at=role.created_at if role else None,
            updated_at=role.updated_at if role else None,
        )
