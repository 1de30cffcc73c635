"""Roles of a tenant: the built-in ones and custom roles that inherit, resolved to permission sets.

Nobody puts into a role more than they hold themselves (as nobody grants a stronger role than their own,
see memberships), and a change to a custom role ends the sessions of everyone who holds it, because access
tokens carry the permissions they were issued with."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.errors import Conflict, Forbidden, InvalidInput, NotFound
from appliance.models import ALL_PERMISSIONS, BUILTIN_ROLES, Membership, Role
from appliance.services.access.actors import Actor
from appliance.services.access.role_permissions import MAX_DEPTH, custom_roles, resolve
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.identity import sessions

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
CURSORS = pagination.Keyset("roles", str)


def role_exists(session: Session, name: str) -> bool:
    return (
        name in BUILTIN_ROLES or session.scalars(select(Role.id).where(Role.name == name)).first() is not None
    )


def require_role(session: Session, name: str) -> None:
    if not role_exists(session, name):
        raise InvalidInput(
            f"there is no role {name!r} in this tenant (built-in: {', '.join(BUILTIN_ROLES)})",
            code="ROLE_UNKNOWN",
            details={"role": name},
        )


def _check_permissions(permissions: Iterable[str]) -> list[str]:
    values = sorted(set(permissions))
    unknown = [p for p in values if p not in ALL_PERMISSIONS]
    if unknown:
        raise InvalidInput(
            f"unknown permission {unknown[0]!r} (known: {', '.join(sorted(ALL_PERMISSIONS))})",
            code="PERMISSION_UNKNOWN",
            details={"permissions": unknown},
        )
    return values


def _check_inherits(custom: dict[str, Role], name: str, inherits: str | None) -> None:
    if inherits is None:
        return
    if inherits not in BUILTIN_ROLES and inherits not in custom:
        raise InvalidInput(
            f"role {name!r} cannot inherit from {inherits!r}: there is no such role",
            code="ROLE_UNKNOWN",
            details={"inherits": inherits},
        )
    chain = [name]
    current: str | None = inherits
    while current is not None and current not in BUILTIN_ROLES:
        if current in chain:
            raise InvalidInput(
                f"role {name!r} cannot inherit from {inherits!r}: that makes a cycle "
                f"({' -> '.join([*chain, current])})",
                code="ROLE_CYCLE",
                details={"inherits": inherits},
            )
        chain.append(current)
        if len(chain) > MAX_DEPTH:
            raise InvalidInput(
                f"role {name!r} inherits through more than {MAX_DEPTH} roles", code="ROLE_DEPTH"
            )
        current = custom[current].inherits if current in custom else None


@dataclass(frozen=True)
class RoleView:
    """A role as callers see it: a built-in one (``role`` None) or a custom one, with what it grants."""

    name: str
    permissions: frozenset[str]
    """Everything the role grants: its own permissions and those of every role it inherits from."""
    role: Role | None = None

    @property
    def builtin(self) -> bool:
        return self.role is None


def view(session: Session, role: Role) -> RoleView:
    return RoleView(role.name, resolve(custom_roles(session), role.name), role)


def list_page(
    session: Session, *, builtin: bool | None, limit: int, cursor: str | None
) -> tuple[list[RoleView], str | None]:
    """Built-in and custom roles by name (names are unique across both within a tenant).

    Every custom role is read anyway to resolve inheritance, so the page is cut in Python: a tenant holds
    a handful of roles, not thousands."""
    after = CURSORS.decode(cursor, "name")[0] if cursor is not None else None
    custom = custom_roles(session)
    views: list[RoleView] = []
    if builtin is not False:
        views += [RoleView(r.name, r.permissions) for r in BUILTIN_ROLES.values()]
    if builtin is not True:
        views += [RoleView(name, resolve(custom, name), role) for name, role in custom.items()]
    views.sort(key=lambda v: v.name)
    if after is not None:
        views = [v for v in views if v.name > after]
    next_cursor = CURSORS.encode([views[limit - 1].name], "name") if len(views) > limit else None
    return views[:limit], next_cursor


def _check_strength(actor: Actor, name: str, permissions: frozenset[str]) -> None:
    """A role cannot be made (or, through a change, left) stronger than its editor: that would be a way
    to grant oneself more through the roles one holds."""
    if actor.operator:
        return
    missing = permissions - actor.permissions
    if missing:
        raise Forbidden(
            f"role {name!r} would hold permissions you do not ({', '.join(sorted(missing))})",
            code="ROLE_TOO_STRONG",
            details={"role": name, "missing": sorted(missing)},
        )


def create(
    session: Session,
    actor: Actor,
    tenant_id: uuid.UUID,
    *,
    name: str,
    permissions: Iterable[str],
    inherits: str | None,
) -> Role:
    if not ROLE_NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid role name "
            "(lower-case letters, digits, '-' and '_', 2 to 63 characters)",
            code="ROLE_NAME_INVALID",
            details={"name": name},
        )
    custom = custom_roles(session)
    if name in BUILTIN_ROLES or name in custom:
        raise Conflict(f"a role named {name!r} already exists", code="ROLE_EXISTS", details={"name": name})
    _check_inherits(custom, name, inherits)
    role = Role(
        tenant_id=tenant_id, name=name, permissions=_check_permissions(permissions), inherits=inherits
    )
    _check_strength(actor, name, resolve({**custom, name: role}, name))
    session.add(role)
    session.flush()
    audit.record(
        session,
        action="role.create",
        tenant_id=tenant_id,
        actor=actor,
        resource_type="role",
        resource_id=role.id,
        summary={"name": name, "permissions": role.permissions, "inherits": inherits},
    )
    return role


def get(session: Session, role_id: uuid.UUID) -> Role:
    role = session.get(Role, role_id)
    if role is None:
        raise NotFound(
            f"role {role_id} was not found", code="ROLE_NOT_FOUND", details={"role_id": str(role_id)}
        )
    return role


@dataclass(frozen=True)
class Updated:
    role: Role
    changes: dict[str, list[object]]
    """Each changed field: [before, after]."""
    sessions_ended: list[uuid.UUID]
    """The sessions of the role's holders that were ended (the caller tells its revocation cache)."""


def update(
    session: Session,
    actor: Actor,
    role_id: uuid.UUID,
    *,
    permissions: Iterable[str] | None,
    inherits: str | bool | None,
    now: dt.datetime,
) -> Updated:
    """Change a custom role; ``inherits=False`` leaves it as it is. When something changed, the sessions
    of every holder (directly or through inheritance) in this tenant are ended."""
    role = get(session, role_id)
    custom = custom_roles(session)
    _check_strength(actor, role.name, resolve(custom, role.name))
    changes: dict[str, list[object]] = {}
    if permissions is not None:
        values = _check_permissions(permissions)
        if values != sorted(role.permissions):
            changes["permissions"] = [sorted(role.permissions), values]
    if inherits is not False:
        assert inherits is None or isinstance(inherits, str)
        _check_inherits(custom, role.name, inherits)
        if inherits != role.inherits:
            changes["inherits"] = [role.inherits, inherits]
    if not changes:
        return Updated(role, changes, [])
    after = Role(
        name=role.name,
        permissions=changes.get("permissions", [None, role.permissions])[1],
        inherits=changes.get("inherits", [None, role.inherits])[1],
    )
    _check_strength(actor, role.name, resolve({**custom, role.name: after}, role.name))
    role.permissions, role.inherits = after.permissions, after.inherits
    session.flush()
    ended: list[uuid.UUID] = []
    for user_id in holders(session, role.name):
        ended += sessions.revoke_user(session, user_id, now, tenant_id=role.tenant_id)
    audit.record(
        session,
        action="role.update",
        tenant_id=role.tenant_id,
        actor=actor,
        resource_type="role",
        resource_id=role.id,
        summary={"name": role.name, **changes, "sessions_ended": len(ended)},
    )
    return Updated(role, changes, ended)


def holders(session: Session, name: str) -> list[uuid.UUID]:
    """Users whose membership grants ``name`` directly or through inheritance (their sessions carry the
    role's old permissions and are ended when it changes)."""
    custom = custom_roles(session)
    affected = {name}
    grew = True
    while grew:
        grew = False
        for role in custom.values():
            if role.inherits in affected and role.name not in affected:
                affected.add(role.name)
                grew = True
    return list(session.scalars(select(Membership.user_id).where(Membership.role.in_(affected))))


def delete(session: Session, actor: Actor, role_id: uuid.UUID) -> Role:
    role = get(session, role_id)
    in_use = session.scalars(select(Membership.id).where(Membership.role == role.name)).first()
    heirs = session.scalars(select(Role.name).where(Role.inherits == role.name)).first()
    if in_use is not None or heirs is not None:
        what = "members hold it" if in_use is not None else f"role {heirs!r} inherits from it"
        raise Conflict(
            f"role {role.name!r} cannot be deleted while {what}",
            code="ROLE_IN_USE",
            details={"role": role.name},
        )
    session.delete(role)
    session.flush()
    audit.record(
        session,
        action="role.delete",
        tenant_id=role.tenant_id,
        actor=actor,
        resource_type="role",
        resource_id=role.id,
        summary={"name": role.name, "permissions": role.permissions, "inherits": role.inherits},
    )
    return role
