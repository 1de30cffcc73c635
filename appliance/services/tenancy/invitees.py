"""The invitee's side of an invitation: the open invitations to their address, and accepting or declining one.

An invitation (appliance.services.tenancy.invitations) grants nothing until the person behind its address
accepts it. The person answers in one of two ways:

* signed in (to any tenant, or an operator): :func:`mine` lists the open invitations
  to their address; :func:`accept` or :func:`decline` answers one;
* with the token (:func:`accept_with_token`), their address and a password: the password of their account
  when the address has one (and a two-factor code when it is on), or the password they choose for the
  account that acceptance creates. Every password given there passes the password policy first, so a
  weak guess is refused the same way whether an account exists or not; wrong passwords count against
  the sign-in throttle, as at sign-in.

Whoever holds a token can of course try to accept it; for an address with an account that takes the
account's password, and for one without, it creates the account (as handing out a one-time password did
before). That is what an appliance with no mail server can offer; the admins hand the token only to the
person, and may revoke it (appliance.services.tenancy.invitations.revoke).
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.errors import Conflict, Forbidden, RateLimited, Unauthenticated
from appliance.models import Invitation, InvitationState, Membership, MfaFactor, Tenant, TenantStatus, User
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.identity import login_throttle, mfa, password_policy, passwords
from appliance.services.identity.auth import LoginGuard
from appliance.services.identity.emails import normalize_email
from appliance.services.tenancy import invitations, roles

#: The cursors of the invitee's list (GET /api/v1/invitations).
CURSORS = pagination.Keyset("invitations", dt.datetime, uuid.UUID)


@dataclass(frozen=True)
class Joined:
    """An accepted invitation: the membership it made, in which tenant, for which account."""

    invitation: Invitation
    membership: Membership
    tenant: Tenant
    user: User


def mine(
    session: Session, actor: Actor, now: dt.datetime, *, limit: int, cursor: str | None
) -> tuple[list[tuple[Invitation, Tenant]], str | None]:
    """The open invitations to the signed-in person's address, in every tenant that is not deleted, oldest
    first, ``limit`` at a time.

    ``session`` has no tenant: the invitee lookup (tenancy.set_invitee) shows this address's rows only."""
    user = _invitee(session, actor)
    tenancy.set_invitee(session, user.email)
    query: Select[Any] = (
        select(Invitation, Tenant)  # type: ignore[assignment]
        .join(Tenant, Tenant.id == Invitation.tenant_id)
        .where(
            Invitation.email == user.email,
            Invitation.state == InvitationState.PENDING,
            Invitation.expires_at > now,
            Tenant.status != TenantStatus.DELETED,
        )
    )
    columns = [Invitation.created_at, Invitation.id]
    if cursor is not None:
        query = pagination.after(query, columns, CURSORS.decode(cursor, "created_at"), descending=False)
    rows = [(i, t) for i, t in session.execute(pagination.ordered(query, columns, False).limit(limit + 1))]
    last = rows[limit - 1][0] if len(rows) > limit else None
    next_cursor = CURSORS.encode([last.created_at, last.id], "created_at") if last else None
    return rows[:limit], next_cursor


def _addressed(
    session: Session, email: str, invitation_id: uuid.UUID, now: dt.datetime
) -> tuple[Invitation, Tenant]:
    """The pending invitation ``invitation_id`` to ``email``, open now, and its tenant; another address's is
    not found."""
    tenancy.set_invitee(session, email)
    invitation = session.scalars(
        select(Invitation).where(
            Invitation.id == invitation_id,
            Invitation.email == email,
            Invitation.state == InvitationState.PENDING,
        )
    ).first()
    if invitation is None:
        raise invitations.not_found(invitation_id)
    return invitation, _open_in(session, invitation, now)


def _open_in(session: Session, invitation: Invitation, now: dt.datetime) -> Tenant:
    """The tenant of an invitation that may be answered now (its tenant not deleted, its time not past)."""
    tenant = session.get(Tenant, invitation.tenant_id)
    if tenant is None or tenant.status == TenantStatus.DELETED:
        raise invitations.not_found(invitation.id)
    if not invitation.open_at(now):
        raise invitations.expired(invitation)
    return tenant


def _invitee(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or actor.api_key_id is not None:
        raise Forbidden(
            "invitations are answered by the person they are addressed to: sign in as yourself "
            "(an API key answers none)",
            code="USER_REQUIRED",
        )
    return user


def accept(session: Session, actor: Actor, invitation_id: uuid.UUID, now: dt.datetime) -> Joined:
    """The signed-in person accepts an invitation to their own address: they become a member with its role."""
    user = _invitee(session, actor)
    invitation, tenant = _addressed(session, user.email, invitation_id, now)
    return _join(session, invitation, tenant, user, now=now, request=actor.request)


def decline(session: Session, actor: Actor, invitation_id: uuid.UUID, now: dt.datetime) -> Invitation:
    """The signed-in person declines an invitation to their own address; the tenant's trail records it."""
    user = _invitee(session, actor)
    invitation, _ = _addressed(session, user.email, invitation_id, now)
    tenancy.set_tenant(session, invitation.tenant_id)
    invitations.move(invitation, InvitationState.DECLINED, now)
    session.flush()
    invitations.record(session, "invitation.decline", invitation, _as_member(user, invitation, actor.request))
    return invitation


def accept_with_token(
    session: Session,
    guard: LoginGuard,
    *,
    email: str,
    token: str,
    password: str,
    display_name: str | None,
    mfa_code: str | None,
    now: dt.datetime,
    request: RequestInfo,
    min_length: int = password_policy.DEFAULT_MIN_LENGTH,
) -> Joined:
    """Accept with the token handed over by the tenant's admins, without being signed in: ``password`` is
    the account's when the address has one (with ``mfa_code`` when two-factor is on), else the password of
    the account created now (with ``display_name``)."""
    address = normalize_email(email)
    ip = request.ip or ""
    blocked = login_throttle.login_blocked(guard.limiter, guard.limits.current(), email=address, ip=ip)
    if blocked is not None:
        raise RateLimited(
            "too many failed sign-ins for this account or from this address; try again later",
            code="LOGIN_THROTTLED",
            retry_after=int(blocked.retry_after) + 1,
        )
    tenancy.set_invitee(session, address)
    digest = invitations.hash_token(token)
    candidates = session.scalars(
        select(Invitation).where(Invitation.email == address, Invitation.state == InvitationState.PENDING)
    ).all()
    invitation = next((i for i in candidates if hmac.compare_digest(i.token_hash, digest)), None)
    if invitation is None:
        raise invitations.not_found()
    tenant = _open_in(session, invitation, now)
    # The policy first, for everyone: a weak password is refused before anything depends on the account.
    password_policy.check_password(password, address, min_length=min_length)
    user = session.scalars(select(User).where(User.email == address)).first()
    if user is None:
        user = User(
            email=address,
            display_name=(display_name or "").strip() or address.split("@", 1)[0],
            password_hash=passwords.hash_password(password),
        )
        session.add(user)
        session.flush()
    else:
        _prove_owner(session, guard, user, password=password, mfa_code=mfa_code, now=now, ip=ip)
    return _join(session, invitation, tenant, user, now=now, request=request)


def _prove_owner(
    session: Session,
    guard: LoginGuard,
    user: User,
    *,
    password: str,
    mfa_code: str | None,
    now: dt.datetime,
    ip: str,
) -> None:
    """The checks of a sign-in (appliance.services.identity.auth.login): the password, the account being
    active, the second factor; failures count against the sign-in throttle."""

    def failed(error: Unauthenticated) -> Unauthenticated:
        login_throttle.login_failed(guard.limiter, guard.limits.current(), email=user.email, ip=ip)
        return error

    if user.password_hash is None:  # an account that signs in otherwise: no password of its own
        passwords.verify_dummy(password)
        raise failed(Unauthenticated("the email or password is not correct", code="INVALID_CREDENTIALS"))
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok:
        raise failed(Unauthenticated("the email or password is not correct", code="INVALID_CREDENTIALS"))
    if new_hash is not None:
        user.password_hash = new_hash
    if not user.is_active:
        raise failed(Unauthenticated("this account is disabled", code="ACCOUNT_DISABLED"))
    factor = session.scalars(select(MfaFactor).where(MfaFactor.user_id == user.id)).first()
    if factor is not None and factor.enabled_at is not None:
        if not mfa_code:
            raise Unauthenticated(
                "this account has two-factor authentication: send mfa_code (a TOTP code or a recovery code)",
                code="MFA_REQUIRED",
            )
        if not mfa.check_code(session, factor, mfa_code, now):
            raise failed(Unauthenticated("the two-factor code is not correct", code="MFA_INVALID"))
    login_throttle.login_succeeded(guard.limiter, email=user.email)


def _as_member(user: User, invitation: Invitation, request: RequestInfo) -> Actor:
    """The invitee as the actor of the tenant's audit records about their answer."""
    return Actor(user_id=user.id, tenant_id=invitation.tenant_id, request=request)


def _join(
    session: Session,
    invitation: Invitation,
    tenant: Tenant,
    user: User,
    *,
    now: dt.datetime,
    request: RequestInfo,
) -> Joined:
    """Make the membership an accepted invitation offers, in the invitation's tenant."""
    tenancy.set_tenant(session, invitation.tenant_id)
    if session.scalars(select(Membership.id).where(Membership.user_id == user.id)).first() is not None:
        raise Conflict(
            f"{user.email!r} is already a member of tenant {tenant.slug!r}: decline this invitation",
            code="ALREADY_MEMBER",
            details={"email": user.email, "tenant": tenant.slug},
        )
    if not roles.role_exists(session, invitation.role):
        raise Conflict(
            f"the role {invitation.role!r} this invitation offers no longer exists: ask the tenant's "
            "admins for a new invitation",
            code="ROLE_GONE",
            details={"role": invitation.role},
        )
    membership = Membership(tenant_id=invitation.tenant_id, user_id=user.id, role=invitation.role)
    session.add(membership)
    invitations.move(invitation, InvitationState.ACCEPTED, now)
    session.flush()
    actor = _as_member(user, invitation, request)
    invitations.record(session, "invitation.accept", invitation, actor, membership_id=str(membership.id))
    audit.record(
        session,
        action="membership.create",
        tenant_id=invitation.tenant_id,
        actor=actor,
        resource_type="membership",
        resource_id=membership.id,
        summary={"email": user.email, "role": invitation.role, "invitation_id": str(invitation.id)},
    )
    return Joined(invitation=invitation, membership=membership, tenant=tenant, user=user)
