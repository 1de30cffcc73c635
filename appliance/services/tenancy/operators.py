"""Platform operators: the on-prem admins who manage tenants (or, read-only, watch them). Created, listed,
disabled and enabled, removed, their password or two-factor authentication reset: from the command line
(`appliance admin ...`, as ``actors.cli_operator()``) or by another operator through the API
(``operators:read`` / ``operators:manage``). Every change is a record on the platform's audit chain that
names who made it.

Two rules keep the platform manageable: the last active operator holding every platform permission can be
neither disabled, removed nor made read-only (409 ``LAST_OPERATOR``), and an operator does none of this to
their own account through the API (403 ``OPERATOR_SELF``: their own password and two-factor go through
/auth, and another operator, or the command line, acts on them). Disabling, removing, resetting the password
of an operator or making it read-only or full ends every session of the account; the caller tells its
revocation cache (the sessions returned), other API processes notice within their revocation sync.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.errors import Conflict, Forbidden, NotFound
from appliance.models import Membership, MfaFactor, User
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor, cli_operator
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.identity import api_keys, mfa, passwords, sessions
from appliance.services.identity.emails import normalize_email


@dataclass(frozen=True)
class NewOperator:
    user: User
    one_time_password: str


@dataclass(frozen=True)
class Operator:
    """An operator account as operators see it: the account and whether its two-factor is on."""

    user: User
    mfa: bool

    @property
    def permissions(self) -> frozenset[str]:
        return platform_permissions.for_operator(self.user.operator_read_only)

    @property
    def disabled(self) -> bool:
        return not self.user.is_active


@dataclass(frozen=True)
class Ended:
    """An operator after a change that ended their sessions (the caller tells its revocation cache)."""

    user: User
    sessions_ended: list[uuid.UUID]


@dataclass(frozen=True)
class PasswordReset:
    user: User
    one_time_password: str
    """Shown once; it must be changed at the next sign-in."""
    sessions_ended: list[uuid.UUID]


# --------------------------------------------------------------------------- reading


def _operators() -> Select[User]:
    return select(User).where(User.is_operator.is_(True))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.is_operator.is_(True))) or 0


def list_page(session: Session, *, limit: int, cursor: str | None) -> tuple[list[Operator], str | None]:
    """Operators in the order they were created (disabled ones included; removed ones are not)."""
    query: Select[Any] = _operators()
    columns = [User.created_at, User.id]
    if cursor is not None:
        query = pagination.after(query, columns, pagination.decode(cursor, "created_at"), descending=False)
    users = list(session.scalars(pagination.ordered(query, columns, False).limit(limit + 1)))
    last = users[limit - 1] if len(users) > limit else None
    next_cursor = pagination.encode([last.created_at, last.id], "created_at") if last else None
    users = users[:limit]
    with_mfa = set(
        session.scalars(
            select(MfaFactor.user_id).where(
                MfaFactor.user_id.in_([u.id for u in users]), MfaFactor.enabled_at.is_not(None)
            )
        )
    )
    return [Operator(user, user.id in with_mfa) for user in users], next_cursor


def get(session: Session, operator_id: uuid.UUID) -> Operator:
    """One operator by id; NotFound (OPERATOR_NOT_FOUND) for any other id, a tenant user's included."""
    return _view(session, _user(session, operator_id))


def find(session: Session, email: str) -> Operator:
    """The operator with this address; NotFound naming it (OPERATOR_NOT_FOUND) when there is none."""
    address = normalize_email(email)
    user = session.scalars(_operators().where(User.email == address)).first()
    if user is None:
        raise NotFound(
            f"no operator has the email {address!r}", code="OPERATOR_NOT_FOUND", details={"email": address}
        )
    return _view(session, user)


def _user(session: Session, operator_id: uuid.UUID, *, fresh: bool = False) -> User:
    user = session.get(User, operator_id, populate_existing=fresh)
    if user is None or not user.is_operator:
        raise NotFound(
            f"operator {operator_id} was not found",
            code="OPERATOR_NOT_FOUND",
            details={"id": str(operator_id)},
        )
    return user


def _view(session: Session, user: User) -> Operator:
    enabled = session.scalars(
        select(MfaFactor.id).where(MfaFactor.user_id == user.id, MfaFactor.enabled_at.is_not(None))
    ).first()
    return Operator(user, enabled is not None)


# --------------------------------------------------------------------------- changing


def create(
    session: Session,
    email: str,
    display_name: str = "",
    *,
    read_only: bool = False,
    actor: Actor | None = None,
) -> NewOperator:
    """A new operator account with a one-time password that must be changed at first login; a read-only
    one holds only the read platform permissions (appliance.services.access.platform_permissions). ``actor``
    is who creates it (None: the command line). The address of a removed operator makes that account an
    operator again (the audit trail keeps one identity per address)."""
    actor = actor or cli_operator()
    address = normalize_email(email)
    password = passwords.one_time_password()
    existing = session.scalars(select(User).where(User.email == address)).first()
    if existing is not None and (existing.is_operator or existing.operator_removed_at is None):
        raise Conflict(
            f"a user with email {address!r} already exists", code="EMAIL_TAKEN", details={"email": address}
        )
    if existing is None:
        user = User(
            email=address,
            display_name=display_name or address.split("@", 1)[0],
            password_hash=passwords.hash_password(password),
            is_operator=True,
            operator_read_only=read_only,
            must_change_password=True,
        )
        session.add(user)
        session.flush()
    else:
        user = existing
        user.display_name = display_name or user.display_name
        user.password_hash = passwords.hash_password(password)
        user.is_operator = True
        user.operator_read_only = read_only
        user.operator_removed_at = None
        user.is_active = True
        user.must_change_password = True
    summary: dict[str, Any] = {"email": address, "read_only": read_only}
    if existing is not None:
        summary["restored"] = True
    _record(session, actor, "operator.create", user, summary)
    return NewOperator(user=user, one_time_password=password)


def disable(session: Session, actor: Actor, operator_id: uuid.UUID, now: dt.datetime) -> Ended:
    """Disable an operator: the account signs in nowhere and its sessions end, until `enable`."""
    holders = _lock_full_operators(session)
    user = _user(session, operator_id, fresh=True)
    _not_self(actor, user, "disable")
    if not user.is_active:
        raise Conflict(
            f"operator {user.email!r} is already disabled",
            code="OPERATOR_DISABLED",
            details={"email": user.email},
        )
    _keep_one(user, holders, "disabled")
    user.is_active = False
    ended = sessions.revoke_user(session, user.id, now)
    _record(session, actor, "operator.disable", user, {"email": user.email, "sessions_ended": len(ended)})
    # An operator may also be a tenant's member: the keys they made there stop with the account.
    api_keys.revoke_all_of(session, actor, user.id, api_keys.CREATOR_DISABLED, now)
    return Ended(user, ended)


def enable(session: Session, actor: Actor, operator_id: uuid.UUID) -> User:
    """Let a disabled operator sign in again (with the password they had)."""
    user = _user(session, operator_id)
    if user.is_active:
        raise Conflict(
            f"operator {user.email!r} is not disabled",
            code="OPERATOR_NOT_DISABLED",
            details={"email": user.email},
        )
    user.is_active = True
    _record(session, actor, "operator.enable", user, {"email": user.email})
    return user


def remove(session: Session, actor: Actor, operator_id: uuid.UUID, now: dt.datetime) -> Ended:
    """Remove an operator: the account is no operator any more and its sessions end. Its row stays, so
    that the audit records naming it still say who acted: with no tenant membership it keeps no password
    and no second factor (it signs in nowhere); a member of tenants keeps signing in to them."""
    holders = _lock_full_operators(session)
    user = _user(session, operator_id, fresh=True)
    _not_self(actor, user, "remove")
    _keep_one(user, holders, "removed")
    read_only = user.operator_read_only
    ended = sessions.revoke_user(session, user.id, now)
    user.is_operator = False
    user.operator_read_only = False
    user.operator_removed_at = now
    member = _is_member_anywhere(session, user.id)
    if not member:
        user.password_hash = None
        user.is_active = False
        user.must_change_password = False
        mfa.reset(session, user.id)
    _record(
        session,
        actor,
        "operator.remove",
        user,
        {"email": user.email, "read_only": read_only, "sessions_ended": len(ended), "account_kept": member},
    )
    return Ended(user, ended)


def set_read_only(
    session: Session, actor: Actor, operator_id: uuid.UUID, read_only: bool, now: dt.datetime
) -> Ended:
    """Make an operator read-only (the read platform permissions only) or full. Their sessions end, so that
    no access token keeps what it said (its ``ro`` claim); the same value as now changes nothing. The last
    active full operator is not made read-only (LAST_OPERATOR)."""
    holders = _lock_full_operators(session)
    user = _user(session, operator_id, fresh=True)
    _not_self(actor, user, "change the permissions of")
    if user.operator_read_only == read_only:
        return Ended(user, [])
    if read_only:
        _keep_one(user, holders, "made read-only")
    user.operator_read_only = read_only
    ended = sessions.revoke_user(session, user.id, now)
    summary = {"email": user.email, "read_only": [not read_only, read_only], "sessions_ended": len(ended)}
    _record(session, actor, "operator.update", user, summary)
    return Ended(user, ended)


def reset_password(session: Session, actor: Actor, operator_id: uuid.UUID, now: dt.datetime) -> PasswordReset:
    """Give an operator a new one-time password (to be changed at the next sign-in); their sessions end."""
    user = _user(session, operator_id)
    _not_self(actor, user, "reset the password of")
    password = passwords.one_time_password()
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = True
    ended = sessions.revoke_user(session, user.id, now)
    _record(
        session, actor, "operator.password_reset", user, {"email": user.email, "sessions_ended": len(ended)}
    )
    return PasswordReset(user, password, ended)


def reset_mfa(session: Session, actor: Actor, operator_id: uuid.UUID) -> User:
    """Turn an operator's two-factor authentication off (a lost device): they sign in with their password
    and may enrol again. Conflict (MFA_NOT_ENABLED) when it is not on."""
    user = _user(session, operator_id)
    _not_self(actor, user, "reset the two-factor authentication of")
    if not mfa.reset(session, user.id):
        raise Conflict(
            f"two-factor authentication is not on for operator {user.email!r}",
            code="MFA_NOT_ENABLED",
            details={"email": user.email},
        )
    _record(session, actor, "operator.mfa_reset", user, {"email": user.email})
    return user


# --------------------------------------------------------------------------- rules and records


def _lock_full_operators(session: Session) -> list[uuid.UUID]:
    """The active operators holding every platform permission, locked (PostgreSQL: FOR UPDATE, in id
    order) until the transaction ends, so that two operators disabling each other at once cannot both
    pass `_keep_one`. On SQLite a writer holds the database's write lock from its start already."""
    query = (
        select(User.id)
        .where(User.is_operator.is_(True), User.operator_read_only.is_(False), User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def _keep_one(user: User, holders: list[uuid.UUID], verb: str) -> None:
    if user.id in holders and len(holders) == 1:
        raise Conflict(
            f"operator {user.email!r} is the last active operator with every platform permission and cannot "
            f"be {verb}: create or enable another full operator first",
            code="LAST_OPERATOR",
            details={"email": user.email},
        )


def _not_self(actor: Actor, user: User, verb: str) -> None:
    if actor.user_id is not None and actor.user_id == user.id:
        raise Forbidden(
            f"you cannot {verb} your own operator account: another operator (or `appliance admin` on the "
            "server) can",
            code="OPERATOR_SELF",
            details={"email": user.email},
        )


def _is_member_anywhere(session: Session, user_id: uuid.UUID) -> bool:
    # The memberships lookup policy shows a user's own memberships across tenants (as at sign-in).
    tenancy.set_user(session, user_id)
    return (
        session.scalars(select(Membership.id).where(Membership.user_id == user_id).limit(1)).first()
        is not None
    )


def _record(session: Session, actor: Actor, action: str, user: User, summary: dict[str, Any]) -> None:
    audit.record(
        session,
        action=action,
        tenant_id=None,
        actor=actor,
        resource_type="user",
        resource_id=user.id,
        summary=summary,
    )
