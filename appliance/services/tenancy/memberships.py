"""Users of a tenant: their memberships, given a role, removed.

A tenant's admins bring people in by invitation (appliance.services.tenancy.invitations): the membership is
made when the person accepts. Only a platform operator creating a tenant names its first owner directly
(`add`). A change of role or a removal ends the user's sessions in that tenant, because access tokens carry
the permissions they were issued with."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from appliance.errors import Conflict, Forbidden, NotFound
from appliance.models import Membership, User
from appliance.services.access import role_permissions
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.identity import api_keys, passwords, sessions
from appliance.services.identity.emails import normalize_email
from appliance.services.tenancy import roles


@dataclass(frozen=True)
class Added:
    user: User
    membership: Membership
    one_time_password: str | None
    """Set when the user was created now: shown once, to be changed at first sign-in."""


def add(
    session: Session, actor: Actor, tenant_id: uuid.UUID, *, email: str, role: str, display_name: str = ""
) -> Added:
    """Make ``email`` a member at once (its account created when new): a platform operator naming a new
    tenant's owner. Everyone else invites (appliance.services.tenancy.invitations), and the person accepts."""
    if not actor.operator:
        raise Forbidden("members join a tenant by accepting an invitation", code="INVITATION_REQUIRED")
    address = normalize_email(email)
    roles.require_role(session, role)
    user = session.scalars(select(User).where(User.email == address)).first()
    password = None
    if user is None:
        password = passwords.one_time_password()
        user = User(
            email=address,
            display_name=display_name.strip() or address.split("@", 1)[0],
            password_hash=passwords.hash_password(password),
            must_change_password=True,
        )
        session.add(user)
        session.flush()
    elif session.scalars(select(Membership.id).where(Membership.user_id == user.id)).first() is not None:
        raise Conflict(
            f"{address!r} is already a member of this tenant",
            code="ALREADY_MEMBER",
            details={"email": address},
        )
    membership = Membership(tenant_id=tenant_id, user_id=user.id, role=role)
    session.add(membership)
    session.flush()
    audit.record(
        session,
        action="membership.create",
        tenant_id=tenant_id,
        actor=actor,
        resource_type="membership",
        resource_id=membership.id,
        summary={"email": address, "role": role, "new_user": password is not None},
    )
    return Added(user=user, membership=membership, one_time_password=password)


def check_grant(session: Session, actor: Actor, role: str) -> None:
    """Nobody grants more than they hold (an admin cannot make an owner); operators may grant anything."""
    if actor.operator:
        return
    missing = role_permissions.permissions_for(session, role) - actor.permissions
    if missing:
        raise Forbidden(
            f"you cannot grant the role {role!r}: it holds permissions you do not "
            f"({', '.join(sorted(missing))})",
            code="ROLE_TOO_STRONG",
            details={"role": role, "missing": sorted(missing)},
        )


def get(session: Session, membership_id: uuid.UUID) -> Membership:
    membership = session.get(Membership, membership_id)
    if membership is None:
        raise NotFound(
            f"member {membership_id} was not found",
            code="MEMBER_NOT_FOUND",
            details={"id": str(membership_id)},
        )
    return membership


def user_of(session: Session, membership: Membership) -> User:
    """The account behind a membership (users belong to no tenant; the foreign key keeps one there)."""
    user = session.get(User, membership.user_id)
    assert user is not None
    return user


CURSORS = pagination.Keyset("members", dt.datetime, uuid.UUID)


def list_page(
    session: Session, *, role: str | None, limit: int, cursor: str | None
) -> tuple[list[tuple[Membership, User]], str | None]:
    query: Select[Any] = select(Membership, User).join(User, User.id == Membership.user_id)  # type: ignore[assignment]
    if role is not None:
        query = query.where(Membership.role == role)
    columns = [Membership.created_at, Membership.id]
    if cursor is not None:
        query = pagination.after(query, columns, CURSORS.decode(cursor, "created_at"), descending=False)
    rows = [(m, u) for m, u in session.execute(pagination.ordered(query, columns, False).limit(limit + 1))]
    last = rows[limit - 1][0] if len(rows) > limit else None
    next_cursor = CURSORS.encode([last.created_at, last.id], "created_at") if last else None
    return rows[:limit], next_cursor


def _owners(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Membership).where(Membership.role == "owner")) or 0
    )


def change_role(
    session: Session, actor: Actor, membership_id: uuid.UUID, role: str, now: dt.datetime
) -> tuple[Membership, list[uuid.UUID]]:
    """Returns the membership and the sessions ended (the caller tells its revocation cache)."""
    membership = get(session, membership_id)
    roles.require_role(session, role)
    check_grant(session, actor, role)
    check_grant(session, actor, membership.role)  # nor demote someone stronger than oneself
    if membership.role == role:
        return membership, []
    if membership.role == "owner" and _owners(session) == 1:
        raise Conflict("a tenant keeps at least one owner", code="LAST_OWNER")
    before = membership.role
    membership.role = role
    session.flush()
    ended = sessions.revoke_user(session, membership.user_id, now, tenant_id=membership.tenant_id)
    audit.record(
        session,
        action="membership.update",
        tenant_id=membership.tenant_id,
        actor=actor,
        resource_type="membership",
        resource_id=membership.id,
        summary={"role": [before, role]},
    )
    return membership, ended


def remove(session: Session, actor: Actor, membership_id: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
    membership = get(session, membership_id)
    check_grant(session, actor, membership.role)
    if membership.role == "owner" and _owners(session) == 1:
        raise Conflict("a tenant keeps at least one owner", code="LAST_OWNER")
    ended = sessions.revoke_user(session, membership.user_id, now, tenant_id=membership.tenant_id)
    session.delete(membership)
    session.flush()
    audit.record(
        session,
        action="membership.delete",
        tenant_id=membership.tenant_id,
        actor=actor,
        resource_type="membership",
        resource_id=membership.id,
        summary={"user_id": str(membership.user_id)},
    )
    # Their keys here go with them (one record each): a key never does more than its creator can do now.
    api_keys.revoke_for_creator(
        session,
        tenant_id=membership.tenant_id,
        creator=membership.user_id,
        reason=api_keys.CREATOR_REMOVED,
        now=now,
        actor=actor,
    )
    return ended
