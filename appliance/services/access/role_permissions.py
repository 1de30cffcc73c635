"""What a tenant role lets its holders do: a built-in role's permissions, or a custom role's with those of
every role it inherits from. Tenancy manages the roles (appliance.services.tenancy.roles); signing in and
API keys read them here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.models import ALL_PERMISSIONS, BUILTIN_ROLES, Role

#: Deepest inheritance chain accepted; a longer one is almost certainly a mistake.
MAX_DEPTH = 8


def custom_roles(session: Session) -> dict[str, Role]:
    """The session's tenant's custom roles, by name."""
    return {role.name: role for role in session.scalars(select(Role))}


def permissions_for(session: Session, role_name: str) -> frozenset[str]:
    """What ``role_name`` may do in the session's tenant: a built-in role, or a custom one with the
    permissions of every role it inherits from. An unknown role grants nothing."""
    builtin = BUILTIN_ROLES.get(role_name)
    if builtin is not None:
        return builtin.permissions
    return resolve(custom_roles(session), role_name)


def resolve(custom: dict[str, Role], name: str) -> frozenset[str]:
    """The permissions of role ``name`` given the tenant's ``custom`` roles (which may hold one not yet
    stored, to judge a change before it is made)."""
    granted: set[str] = set()
    seen: set[str] = set()
    current: str | None = name
    while current is not None:
        if current in seen or len(seen) > MAX_DEPTH:
            break  # a cycle cannot be stored (validate refuses it), but never loop on one
        seen.add(current)
        if current in BUILTIN_ROLES:
            granted |= BUILTIN_ROLES[current].permissions
            break
        role = custom.get(current)
        if role is None:
            break
        granted |= set(role.permissions) & ALL_PERMISSIONS
        current = role.inherits
    return frozenset(granted)
