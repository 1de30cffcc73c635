"""/api/v1/auth: sign in and out, refresh, who am I, password and two-factor authentication."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from appliance.api import routing
from appliance.api.auth import CallerSession, Public, SignedIn, SignedInPending
from appliance.api.deps import ContextDep, SessionDep
from appliance.api.schemas.auth import (
    LoginIn,
    MeOut,
    MfaCodeIn,
    MfaEnrollOut,
    MfaStatusOut,
    PasswordIn,
    RecoveryCodesOut,
    RefreshIn,
    TenantRef,
    TokenOut,
    UserOut,
)
from appliance.api.schemas.errors import ErrorEnvelope, error_responses
from appliance.errors import InvalidInput
from appliance.models import Tenant, User
from appliance.services.access.actors import Actor
from appliance.services.identity import accounts, auth, mfa

router = routing.router(prefix="/auth", tags=["auth"], responses=error_responses(401, 403, 422, 429))

#: What /auth/password, /auth/me and /auth/logout can still answer 403 for: they answer an account that
#: must change its password (appliance.api.auth.signed_in_pending).
PENDING_OK: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorEnvelope, "description": "Forbidden: the tenant is suspended (TENANT_SUSPENDED)."}
}
SIGN_IN_403: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorEnvelope,
        "description": "Forbidden: not a member of that tenant (NOT_A_MEMBER), of none (NO_TENANT), or "
        "the tenant is suspended (TENANT_SUSPENDED).",
    }
}


def _tenant_ref(tenant: Tenant | None) -> TenantRef | None:
    if tenant is None:
        return None
    return TenantRef(id=tenant.id, slug=tenant.slug, name=tenant.name, plan=tenant.plan.value)


def _tokens(signed: auth.SignedIn, ctx: ContextDep) -> TokenOut:
    return TokenOut(
        access_token=signed.access_token,
        expires_in=int((signed.expires_at - ctx.auth.clock()).total_seconds()),
        refresh_token=signed.refresh_token,
        refresh_expires_at=signed.refresh_expires_at,
        session_id=signed.session_id,
        tenant=_tenant_ref(signed.tenant),
        role=signed.role,
        permissions=sorted(signed.permissions),
        must_change_password=signed.user.must_change_password,
    )


@router.post("/login", responses=SIGN_IN_403)
def login(body: LoginIn, info: Public, session: SessionDep, ctx: ContextDep) -> TokenOut:
    """Sign in with email and password (and a two-factor code when it is on). Returns a short-lived access
    token and a refresh token. Failed attempts are throttled per account and per address."""
    signed = auth.login(
        session,
        ctx.auth,
        ctx.login_guard,
        email=body.email,
        password=body.password,
        tenant_slug=body.tenant,
        mfa_code=body.mfa_code,
        request=info,
        refresh_ttl=ctx.refresh_ttl,
    )
    return _tokens(signed, ctx)


@router.post("/refresh", responses=SIGN_IN_403)
def refresh(body: RefreshIn, info: Public, session: SessionDep, ctx: ContextDep) -> TokenOut:
    """Exchange a refresh token for a new pair. Each refresh token works once: presenting a used one again
    ends the whole session (someone holds a copy)."""
    signed = auth.refresh(
        session, ctx.auth, token=body.refresh_token, request=info, refresh_ttl=ctx.refresh_ttl
    )
    return _tokens(signed, ctx)


@router.post("/logout", status_code=204, responses=PENDING_OK)
def logout(actor: SignedInPending, session: CallerSession, ctx: ContextDep) -> Response:
    """End this session: its refresh token and access tokens stop working at once."""
    auth.logout(session, ctx.auth, actor)
    return Response(status_code=204)


def _user(session: Session, actor: Actor) -> User:
    if actor.user_id is None:
        raise InvalidInput("an API key has no user account", code="NO_USER")
    user = session.get(User, actor.user_id)
    assert user is not None
    return user


@router.get("/me", responses=PENDING_OK)
def me(actor: SignedInPending, session: CallerSession) -> MeOut:
    """Who the credential belongs to, the tenant it acts in and what it may do."""
    user_out = None
    if actor.user_id is not None:
        user = _user(session, actor)
        enabled, _ = mfa.status(session, user.id)
        user_out = UserOut(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            is_operator=user.is_operator,
            operator_read_only=user.is_operator and user.operator_read_only,
            must_change_password=user.must_change_password,
            mfa_enabled=enabled,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )
    tenant = session.get(Tenant, actor.tenant_id) if actor.tenant_id else None
    return MeOut(
        user=user_out,
        api_key_id=actor.api_key_id,
        tenant=_tenant_ref(tenant),
        permissions=sorted(actor.permissions),
        operator=actor.operator,
    )


@router.post("/password", status_code=204, responses=PENDING_OK)
def change_password(
    body: PasswordIn, actor: SignedInPending, session: CallerSession, ctx: ContextDep
) -> Response:
    """Change your password (checked against the password policy); your other sessions end. An account
    that must change its password (403 PASSWORD_CHANGE_REQUIRED everywhere else) is free from then on, with
    the same access token."""
    accounts.change_password(
        session,
        ctx.auth,
        actor,
        current=body.current_password,
        new=body.new_password,
        min_length=ctx.settings.security.password_min_length,
    )
    return Response(status_code=204)


@router.get("/mfa")
def mfa_status(actor: SignedIn, session: CallerSession) -> MfaStatusOut:
    """Whether two-factor authentication is on, and how many recovery codes are left."""
    enabled, left = mfa.status(session, _user(session, actor).id)
    return MfaStatusOut(enabled=enabled, recovery_codes_left=left)


@router.post("/mfa/enroll", responses=error_responses(409))
def mfa_enroll(actor: SignedIn, session: CallerSession, ctx: ContextDep) -> MfaEnrollOut:
    """Start enrollment: a TOTP secret for an authenticator app. Not in force until activated."""
    enrollment = mfa.enroll(session, _user(session, actor), ctx.settings.security.token_issuer)
    return MfaEnrollOut(secret=enrollment.secret, provisioning_uri=enrollment.provisioning_uri)


@router.post("/mfa/activate", responses=error_responses(404, 409))
def mfa_activate(
    body: MfaCodeIn, actor: SignedIn, session: CallerSession, ctx: ContextDep
) -> RecoveryCodesOut:
    """Turn two-factor on with a first code from the app; returns recovery codes, shown once."""
    codes = mfa.activate(session, actor, _user(session, actor), body.code, ctx.auth.clock())
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/mfa/recovery-codes", responses=error_responses(404))
def mfa_recovery_codes(
    body: MfaCodeIn, actor: SignedIn, session: CallerSession, ctx: ContextDep
) -> RecoveryCodesOut:
    """A new set of recovery codes (a current code proves the device is in hand); the old set stops
    working."""
    codes = mfa.new_codes(session, actor, _user(session, actor), body.code, ctx.auth.clock())
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/mfa/disable", status_code=204, responses=error_responses(404))
def mfa_disable(body: MfaCodeIn, actor: SignedIn, session: CallerSession, ctx: ContextDep) -> Response:
    """Turn two-factor off with a current code or a recovery code."""
    mfa.disable(session, actor, _user(session, actor), body.code, ctx.auth.clock())
    return Response(status_code=204)
