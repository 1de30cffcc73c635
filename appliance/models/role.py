"""Roles: the built-in ones as code, and custom roles per tenant that inherit from another role."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, TenantOwned, utcnow

PROJECTS_READ = "projects:read"
PROJECTS_WRITE = "projects:write"
ORGANIZATIONS_READ = "organizations:read"
ORGANIZATIONS_WRITE = "organizations:write"
USERS_READ = "users:read"
USERS_WRITE = "users:write"
ROLES_READ = "roles:read"
ROLES_WRITE = "roles:write"
API_KEYS_READ = "api_keys:read"
API_KEYS_WRITE = "api_keys:write"
AUDIT_READ = "audit:read"
TENANT_MANAGE = "tenant:manage"
JOBS_READ = "jobs:read"
JOBS_WRITE = "jobs:write"
WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
APPS_READ = "apps:read"
APPS_WRITE = "apps:write"

#: Every permission a role (or an API key's scopes) may name.
ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        PROJECTS_READ,
        PROJECTS_WRITE,
        ORGANIZATIONS_READ,
        ORGANIZATIONS_WRITE,
        USERS_READ,
        USERS_WRITE,
        ROLES_READ,
        ROLES_WRITE,
        API_KEYS_READ,
        API_KEYS_WRITE,
        AUDIT_READ,
        TENANT_MANAGE,
        JOBS_READ,
        JOBS_WRITE,
        WEBHOOKS_READ,
        WEBHOOKS_WRITE,
        APPS_READ,
        APPS_WRITE,
    }
)


@dataclass(frozen=True)
class BuiltinRole:
    """A role every tenant has; not stored, so that it cannot be edited or deleted."""

    name: str
    permissions: frozenset[str]


_VIEWER = frozenset({PROJECTS_READ, ORGANIZATIONS_READ, USERS_READ, APPS_READ})
_MEMBER = _VIEWER | {PROJECTS_WRITE, ROLES_READ, APPS_WRITE, JOBS_READ}
_ADMIN = _MEMBER | {
    ORGANIZATIONS_WRITE,
    USERS_WRITE,
    ROLES_WRITE,
    API_KEYS_READ,
    API_KEYS_WRITE,
    AUDIT_READ,
    JOBS_WRITE,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
}
_OWNER = _ADMIN | {TENANT_MANAGE}

#: Built-in roles by name, weakest first. Custom roles may inherit from these or from each other.
BUILTIN_ROLES: dict[str, BuiltinRole] = {
    role.name: role
    for role in (
        BuiltinRole("viewer", _VIEWER),
        BuiltinRole("member", _MEMBER),
        BuiltinRole("admin", _ADMIN),
        BuiltinRole("owner", _OWNER),
    )
}
assert _OWNER == ALL_PERMISSIONS, "the owner holds every permission"


class Role(TenantOwned, Base):
    """A tenant's custom role: its own permissions plus those of the role it inherits from."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    inherits: Mapped[str | None] = mapped_column(String(64), default=None)
    """Name of a built-in role or of another custom role of the same tenant (no cycles: services check)."""
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
