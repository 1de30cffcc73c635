"""Signing in and out: password (and second factor) checks, sessions, token refresh, password changes.

Every attempt leaves an audit record, failed ones included (they are raised with ``keep_changes`` so the
record outlives the refusal), and repeated failures are throttled per account and per address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.errors import Forbidden, InvalidInput, RateLimited, Unauthenticated
from appliance.models import Membership, MfaFactor, Tenant, TenantStatus, User
from appliance.services.access import platform_permissions, role_permissions
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import log as audit
from appliance.services.identity import login_throttle, mfa, passwords, sessions
from appliance.services.identity.authenticator import Authenticator
from appliance.services.identity.emails import normalize_email
from appliance.services.limits import limiter as ratelimit


@dataclass(frozen=True)
class LoginGuard:
    """The limiter and limits that throttle failed sign-ins."""

    limiter: ratelimit.RateLimiter
    limits: ratelimit.LimitsHolder


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user: User
    tenant: Tenant | None
    role: str | None
    permissions: frozenset[str]
    session_id: uuid.UUID


def _failed(
    session: Session,
    guard: LoginGuard,
    *,
    email: str,
    request: RequestInfo,
    reason: str,
    user: User | None,
    tenant_id: uuid.UUID | None = None,
    error: Unauthenticated | Forbidden | None = None,
) -> Unauthenticated | Forbidden:
    login_throttle.login_failed(guard.limiter, guard.limits.current(), email=email, ip=request.ip or "")
    if tenant_id is not None:
        tenancy.set_tenant(session, tenant_id)
    audit.record(
        session,
        action="auth.login_failed",
        tenant_id=tenant_id,
        actor=None,
        resource_type="user",
        resource_id=user.id if user is not None else None,
        summary={"email": email, "reason": reason},
        request=request,
    )
    failure = error or Unauthenticated("the email or password is not correct", code="INVALID_CREDENTIALS")
    failure.keep_changes = True
    return failure


def _membership(session: Session, user: User, tenant: Tenant) -> Membership | None:
    tenancy.set_tenant(session, tenant.id)
    return session.scalars(select(Membership).where(Membership.user_id == user.id)).first()


def _tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.slug == slug.strip().lower())).first()


def _memberships_of(session: Session, user: User) -> list[tuple[Membership, Tenant]]:
    tenancy.set_user(session, user.id)
    rows = session.execute(
        select(Membership, Tenant)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user.id)
    ).all()
    return [(m, t) for m, t in rows if t.status != TenantStatus.DELETED]


def login(
    session: Session,
    authn: Authenticator,
    guard: LoginGuard,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
    mfa_code: str | None,
    request: RequestInfo,
    refresh_ttl: timedelta,
) -> SignedIn:
    """Check the credentials and open a session in one tenant (or, for an operator, on the platform)."""
    address = normalize_email(email)
    blocked = login_throttle.login_blocked(
        guard.limiter, guard.limits.current(), email=address, ip=request.ip or ""
    )
    if blocked is not None:
        raise RateLimited(
            "too many failed sign-ins for this account or from this address; try again later",
            code="LOGIN_THROTTLED",
            retry_after=int(blocked.retry_after) + 1,
        )
    user = session.scalars(select(User).where(User.email == address)).first()
    if user is None or user.password_hash is None:
        passwords.verify_dummy(password)  # the same time as a real check: no hint that the account exists
        raise _failed(session, guard, email=address, request=request, reason="unknown_user", user=None)
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok:
        raise _failed(session, guard, email=address, request=request, reason="wrong_password", user=user)
    if new_hash is not None:
        user.password_hash = new_hash  # parameters changed since it was stored: upgrade it now
    if not user.is_active:
        raise _failed(
            session,
            guard,
            email=address,
            request=request,
            reason="disabled",
            user=user,
            error=Unauthenticated("this account is disabled", code="ACCOUNT_DISABLED"),
        )

    tenant, membership = _choose_tenant(
        session, guard, user, email=address, slug=tenant_slug, request=request
    )
    factor = session.scalars(select(MfaFactor).where(MfaFactor.user_id == user.id)).first()
    now = authn.clock()
    if factor is not None and factor.enabled_at is not None:
        if not mfa_code:
            raise Unauthenticated(
                "this account has two-factor authentication: send mfa_code (a TOTP code or a recovery code)",
                code="MFA_REQUIRED",
            )
        if not mfa.check_code(session, factor, mfa_code, now):
            refused = mfa.refusal(session, factor, mfa_code, now)
            raise _failed(
                session,
                guard,
                email=address,
                request=request,
                reason="used_mfa_code" if refused.code == mfa.CODE_USED else "wrong_mfa_code",
                user=user,
                tenant_id=tenant.id if tenant else None,
                error=refused,
            )

    login_throttle.login_succeeded(guard.limiter, email=address)
    user.last_login_at = now
    permissions = _permissions(session, user, tenant, membership)
    signed = _open(
        session,
        authn,
        user,
        tenant=tenant,
        membership=membership,
        permissions=permissions,
        now=now,
        refresh_ttl=refresh_ttl,
        request=request,
    )
    audit.record(
        session,
        action="auth.login",
        tenant_id=tenant.id if tenant else None,
        actor=_actor(user, tenant, signed.session_id, request),
        resource_type="user",
        resource_id=user.id,
        summary={
            "session_id": str(signed.session_id),
            "mfa": factor is not None and factor.enabled_at is not None,
        },
        request=request,
    )
    return signed


def _choose_tenant(
    session: Session, guard: LoginGuard, user: User, *, email: str, slug: str | None, request: RequestInfo
) -> tuple[Tenant | None, Membership | None]:
    if slug:
        tenant = _tenant_by_slug(session, slug)
        membership = _membership(session, user, tenant) if tenant is not None else None
        if tenant is None or membership is None or tenant.status == TenantStatus.DELETED:
            # The same answer for a tenant that does not exist and one the user is not in.
            raise _failed(
                session,
                guard,
                email=email,
                request=request,
                reason="not_a_member",
                user=user,
                error=Forbidden(
                    f"you are not a member of a tenant {slug!r}",
                    code="NOT_A_MEMBER",
                    details={"tenant": slug},
                ),
            )
        if tenant.status == TenantStatus.SUSPENDED:
            raise _failed(
                session,
                guard,
                email=email,
                request=request,
                reason="tenant_suspended",
                user=user,
                error=Forbidden(
                    f"tenant {tenant.slug!r} is suspended",
                    code="TENANT_SUSPENDED",
                    details={"tenant": tenant.slug},
                ),
            )
        return tenant, membership
    if user.is_operator:
        return None, None
    choices = _memberships_of(session, user)
    if len(choices) == 1:
        return _choose_tenant(session, guard, user, email=email, slug=choices[0][1].slug, request=request)
    if not choices:
        raise _failed(
            session,
            guard,
            email=email,
            request=request,
            reason="no_tenant",
            user=user,
            error=Forbidden("this account is not a member of any tenant", code="NO_TENANT"),
        )
    slugs = sorted(t.slug for _, t in choices)
    raise InvalidInput(
        f"this account belongs to {len(slugs)} tenants: say which one with 'tenant'",
        code="TENANT_REQUIRED",
        details={"tenants": slugs},
    )


def _permissions(
    session: Session, user: User, tenant: Tenant | None, membership: Membership | None
) -> frozenset[str]:
    """The role's permissions in the tenant; on the platform, the operator's platform permissions."""
    if tenant is None:
        return platform_permissions.for_operator(user.operator_read_only)
    assert membership is not None
    tenancy.set_tenant(session, tenant.id)
    return role_permissions.permissions_for(session, membership.role)


def _actor(user: User, tenant: Tenant | None, session_id: uuid.UUID, request: RequestInfo) -> Actor:
    return Actor(
        user_id=user.id,
        tenant_id=tenant.id if tenant else None,
        operator=tenant is None,
        session_id=session_id,
        request=request,
    )


def _open(
    session: Session,
    authn: Authenticator,
    user: User,
    *,
    tenant: Tenant | None,
    membership: Membership | None,
    permissions: frozenset[str],
    now: datetime,
    refresh_ttl: timedelta,
    request: RequestInfo,
    rotated: sessions.Issued | None = None,
) -> SignedIn:
    issued = rotated or sessions.open_session(
        session,
        user_id=user.id,
        tenant_id=tenant.id if tenant else None,
        now=now,
        ttl=refresh_ttl,
        request=request,
    )
    token, claims = authn.issue(
        user_id=user.id,
        tenant_id=tenant.id if tenant else None,
        permissions=permissions,
        session_id=issued.family_id,
        operator=tenant is None,
        must_change_password=user.must_change_password,
    )
    return SignedIn(
        access_token=token,
        expires_at=claims.expires_at,
        refresh_token=issued.token,
        refresh_expires_at=issued.expires_at,
        user=user,
        tenant=tenant,
        role=membership.role if membership else None,
        permissions=permissions,
        session_id=issued.family_id,
    )


def refresh(
    session: Session, authn: Authenticator, *, token: str, request: RequestInfo, refresh_ttl: timedelta
) -> SignedIn:
    """Rotate a refresh token; the new access token carries the role's permissions as they are now."""
    now = authn.clock()
    try:
        rotation = sessions.rotate(session, token, now=now, ttl=refresh_ttl, request=request)
    except sessions.RefreshReused as reused:
        authn.sessions_ended([reused.family_id])
        if reused.tenant_id is not None:
            tenancy.set_tenant(session, reused.tenant_id)
        audit.record(
            session,
            action="auth.refresh_reused",
            tenant_id=reused.tenant_id,
            resource_type="user",
            resource_id=reused.user_id,
            summary={"session_id": str(reused.family_id), "session_ended": True},
            request=request,
        )
        raise
    user = session.get(User, rotation.user_id)
    ended = Unauthenticated("the session has ended: sign in again", code="SESSION_ENDED")
    if user is None or not user.is_active:
        raise ended
    tenant: Tenant | None = None
    membership: Membership | None = None
    if rotation.tenant_id is not None:
        tenant = session.get(Tenant, rotation.tenant_id)
        if tenant is None or tenant.status == TenantStatus.DELETED:
            raise ended
        if tenant.status == TenantStatus.SUSPENDED:
            raise Forbidden(
                f"tenant {tenant.slug!r} is suspended",
                code="TENANT_SUSPENDED",
                details={"tenant": tenant.slug},
            )
        membership = _membership(session, user, tenant)
        if membership is None:
            raise ended
    elif not user.is_operator:
        raise ended
    permissions = _permissions(session, user, tenant, membership)
    return _open(
        session,
        authn,
        user,
        tenant=tenant,
        membership=membership,
        permissions=permissions,
        now=now,
        refresh_ttl=refresh_ttl,
        request=request,
        rotated=rotation.issued,
    )


def logout(session: Session, authn: Authenticator, actor: Actor) -> None:
    """End the actor's session: its refresh token and every access token issued from it stop working."""
    if actor.session_id is None:
        raise InvalidInput("an API key has no session to end: revoke the key instead", code="NO_SESSION")
    assert actor.user_id is not None  # a session is a user's
    sessions.revoke_family(session, actor.session_id, authn.clock(), user_id=actor.user_id)
    authn.sessions_ended([actor.session_id])
    audit.record(
        session,
        action="auth.logout",
        tenant_id=actor.tenant_id,
        actor=actor,
        resource_type="user",
        resource_id=actor.user_id,
        summary={"session_id": str(actor.session_id)},
    )
