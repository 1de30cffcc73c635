"""Authentication and authorization of requests: who is calling (an access token or an API key), whether
they may do what the route needs, and the rate limits that apply to them.

Every route declares what it needs with exactly one of these dependencies, and tests/api/test_routes.py
fails for a route that declares none:

* ``require(permission)`` -- a tenant's user or API key holding ``permission`` (``projects:read``, ...);
* ``require_operator(permission)`` -- a platform operator holding ``permission`` (``tenants:read``,
  ``tenants:manage``, ...; see appliance.services.access.platform_permissions);
* ``signed_in`` -- any valid credential (two-factor settings);
* ``signed_in_pending`` -- any valid credential, also one whose account must change its password first:
  ``/auth/password``, ``/auth/me`` and ``/auth/logout`` only;
* ``public`` -- no credential (sign-in, token refresh), limited per client address.

Every requirement but ``signed_in_pending`` and ``public`` refuses a caller whose account must change its
password (a one-time password from an invitation or `appliance admin create`, or one reset by an operator)
with 403 PASSWORD_CHANGE_REQUIRED, and an API key whose creator must; since every route declares exactly
one requirement, that is every other route (tests/api/test_password_change.py walks them all).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from appliance.api.client_address import client_address
from appliance.api.context import AppContext
from appliance.api.deps import ContextDep, unused_after
from appliance.api.idempotency import ACTOR_KEY
from appliance.db import tenancy
from appliance.errors import Forbidden, PasswordChangeRequired, RateLimited, Unauthenticated
from appliance.logs import request_id_var
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.limits import limiter as ratelimit
from appliance.services.limits.gcra import Decision

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/login.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A tenant's API key (fak_...).")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Attribute naming what a dependency requires; the route test reads it.
REQUIREMENT = "__requirement__"


def request_info(request: Request, ctx: AppContext) -> RequestInfo:
    state = request.scope.setdefault("state", {})
    info: RequestInfo | None = state.get("request_info")
    if info is None:
        agent = request.headers.get("user-agent")
        info = RequestInfo(
            ip=client_address(request.scope, ctx.trusted_proxies) or None,
            user_agent=agent[:400] if agent else None,
            request_id=request_id_var.get(),
        )
        state["request_info"] = info
    return info


def _buckets(limits: ratelimit.RateLimits, actor: Actor | None, ip: str) -> list[tuple[str, int]]:
    return ratelimit.request_buckets(
        limits,
        ip=ip,
        # Operators are limited per address only: the tier limits are the tenants'.
        principal=actor.principal if actor and not actor.operator else None,
        tenant_id=str(actor.tenant_id) if actor and actor.tenant_id else None,
        plan=actor.plan if actor else None,
    )


def _limit(request: Request, ctx: AppContext, actor: Actor | None, ip: str) -> None:
    """Apply the rate limits (blocking); the middleware copies the headers onto the response, refusals
    included. A limiter that is down lets the request through (fail open, with a warning)."""
    if ctx.limiter is None:
        return
    limits = ctx.current_limits()
    try:
        decisions = ctx.limiter.hit_many(_buckets(limits, actor, ip), limits.period)
    except Exception as exc:
        ctx.limiter_failed(exc)
        return
    _apply(request, ratelimit.most_constraining(decisions))


def _apply(request: Request, decision: Decision) -> None:
    request.scope.setdefault("state", {})["ratelimit_headers"] = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(int(decision.reset_after + 0.999)).encode()),
    ]
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per minute exceeded; retry in "
            f"{int(decision.retry_after + 0.999)} s",
            retry_after=int(decision.retry_after + 0.999),
            details={"limit": decision.limit},
        )


async def authenticate(
    request: Request,
    ctx: ContextDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Actor:
    """The caller, from ``Authorization: Bearer`` or ``X-API-Key``; 401 without a valid one.

    The hot path (a known access token, current caches, the in-process limiter) runs on the event loop
    with no I/O; whatever needs the database or Redis runs in the thread pool."""
    return await _caller(request, ctx, bearer.credentials if bearer else None, api_key)


async def _caller(
    request: Request, ctx: AppContext, token: str | None, api_key: str | None, *, limit: bool = True
) -> Actor:
    info = request_info(request, ctx)
    try:
        actor = await _identify(request, ctx, token, api_key, info)
    except Unauthenticated:
        await _limited(request, ctx, None, info)  # failed attempts count against the address
        raise
    if limit:
        await _limited(request, ctx, actor, info)
    request.scope.setdefault("state", {})[ACTOR_KEY] = actor
    return actor


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """The bearer token and the API key of a request, read as HTTPBearer and APIKeyHeader read them."""
    token = None
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            token = credentials
    return token, request.headers.get("x-api-key")


async def permitted(request: Request, permission: str) -> Actor:
    """What ``require(permission)`` does, as a plain call, except the rate limits: for the hot routes that
    skip FastAPI's dependency solving (each dependency costs it tens of microseconds). Such a route
    declares the permission with `declares` and its security in OpenAPI with `SECURITY`, and calls
    `enforce_limits` first thing in the worker thread that serves it (one thread hop, not two, when the
    limiter is Redis)."""
    ctx: AppContext = request.app.state.ctx
    token, api_key = _credentials(request)
    return _check_permission(await _caller(request, ctx, token, api_key, limit=False), permission)


async def operator_credential(request: Request) -> Actor | None:
    """The operator whose bearer token the request carries, for a route that also lets operators in
    besides its own rule (/metrics: from the allowed networks, or with an operator's token); None when the
    request carries no credential. A bad credential is 401, anyone else's 403 OPERATOR_REQUIRED."""
    ctx: AppContext = request.app.state.ctx
    token, api_key = _credentials(request)
    if token is None and api_key is None and not request.headers.get("authorization"):
        return None
    actor = password_changed(await _caller(request, ctx, token, api_key))
    if not actor.operator:
        raise Forbidden("only a platform operator's credential opens this route", code="OPERATOR_REQUIRED")
    return actor


async def enforce_limits_async(request: Request, actor: Actor) -> None:
    """`enforce_limits` from the event loop: inline for the in-process limiter, else in a worker."""
    ctx: AppContext = request.app.state.ctx
    await _limited(request, ctx, actor, request_info(request, ctx))


def enforce_limits(request: Request, actor: Actor) -> None:
    """The rate limits of a request admitted by `permitted` (blocking: call it in a worker thread)."""
    ctx: AppContext = request.app.state.ctx
    if ctx.limiter is not None:
        _limit(request, ctx, actor, request_info(request, ctx).ip or "")


#: The OpenAPI security requirement of a route that authenticates with `permitted`.
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


def declares(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a route endpoint that checks ``permission`` itself with `permitted`."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        return _mark(endpoint, permission)

    return mark


async def _identify(
    request: Request, ctx: AppContext, token: str | None, api_key: str | None, info: RequestInfo
) -> Actor:
    if token is not None and api_key is not None:
        raise Unauthenticated(
            "send either a bearer token or an API key, not both", code="CREDENTIALS_AMBIGUOUS"
        )
    if token is not None:
        actor = ctx.auth.bearer_cached(token, info)
        if actor is None:
            actor = await ctx.offload.run(ctx.auth.bearer, token, info)
        return actor
    if api_key is not None:
        return await ctx.offload.run(ctx.auth.api_key, api_key, info)
    if request.headers.get("authorization"):
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <access token>'", code="TOKEN_INVALID"
        )
    raise Unauthenticated("this route needs an access token or an API key", code="UNAUTHENTICATED")


async def _limited(request: Request, ctx: AppContext, actor: Actor | None, info: RequestInfo) -> None:
    """`_limit` from the event loop: no thread for the in-process limiter or the asyncio Redis client."""
    if ctx.limiter is None:
        return
    if ctx.limits.stale(time.monotonic()):
        ctx.refresher.submit("rate-limits", ctx.current_limits)  # re-reads the operators' overrides
    limits = ctx.limits.current()
    buckets = _buckets(limits, actor, info.ip or "")
    try:
        if ctx.async_limiter is not None:
            decisions = await ctx.async_limiter.hit_many(buckets, limits.period)
        elif ctx.limiter_in_process:
            decisions = ctx.limiter.hit_many(buckets, limits.period)
        else:
            decisions = await ctx.offload.run(ctx.limiter.hit_many, buckets, limits.period)
    except Exception as exc:
        ctx.limiter_failed(exc)
        return
    _apply(request, ratelimit.most_constraining(decisions))


AuthDep = Annotated[Actor, Depends(authenticate)]


def _mark(dependency: Callable[..., Any], requirement: str) -> Callable[..., Any]:
    setattr(dependency, REQUIREMENT, requirement)
    return dependency


@cache
def require(permission: str) -> Callable[..., Actor]:
    """A tenant's user or key holding ``permission``."""

    async def dependency(actor: AuthDep) -> Actor:
        return _check_permission(actor, permission)

    return _mark(dependency, permission)


def password_changed(actor: Actor) -> Actor:
    """``actor`` unless its account (a key's: its creator's) must change its password first."""
    if not actor.must_change_password:
        return actor
    if actor.api_key_id is not None:
        raise PasswordChangeRequired(
            "the creator of this API key must change their password before the key can be used again",
            details={"change_at": "/api/v1/auth/password"},
        )
    raise PasswordChangeRequired(
        "this account must change its password first: POST /api/v1/auth/password with current_password "
        "and new_password (only /auth/password, /auth/me and /auth/logout answer until then)",
        details={"change_at": "/api/v1/auth/password"},
    )


def _check_permission(actor: Actor, permission: str) -> Actor:
    password_changed(actor)
    if actor.operator:
        raise Forbidden(
            "platform operators act on platform routes; sign in to a tenant for its data",
            code="TENANT_ROUTE",
        )
    if permission not in actor.permissions:
        if permission in actor.key_scopes:
            raise Forbidden(
                f"this needs the permission {permission!r}: the API key holds it, but its creator no "
                "longer does (a key never does more than its creator can do now)",
                code="PERMISSION_DENIED",
                details={"permission": permission},
            )
        raise Forbidden(
            f"this needs the permission {permission!r}",
            code="PERMISSION_DENIED",
            details={"permission": permission},
        )
    return actor


@cache
def require_operator(permission: str) -> Callable[..., Actor]:
    """A platform operator holding the platform permission ``permission`` (a full operator holds every
    one, a read-only operator the read ones: appliance.services.access.platform_permissions)."""
    platform_permissions.check(permission)

    async def dependency(actor: AuthDep) -> Actor:
        return check_operator(actor, permission)

    return _mark(dependency, f"operator:{permission}")


def check_operator(actor: Actor, permission: str) -> Actor:
    """``actor`` if it is an operator holding ``permission``; Forbidden otherwise."""
    password_changed(actor)
    if not actor.operator:
        raise Forbidden(
            "this is a platform operator route",
            code="OPERATOR_REQUIRED",
            details={"permission": permission},
        )
    if permission not in actor.permissions:
        raise Forbidden(
            f"this needs the platform permission {permission!r} (a read-only operator holds the read ones)",
            code="PERMISSION_DENIED",
            details={"permission": permission},
        )
    return actor


async def _signed_in(actor: AuthDep) -> Actor:
    return password_changed(actor)


signed_in = _mark(_signed_in, "signed-in")


async def _signed_in_pending(actor: AuthDep) -> Actor:
    return actor


signed_in_pending = _mark(_signed_in_pending, "signed-in-pending")


async def _public(request: Request, ctx: ContextDep) -> RequestInfo:
    info = request_info(request, ctx)
    await _limited(request, ctx, None, info)
    return info


public = _mark(_public, "public")

SignedIn = Annotated[Actor, Depends(signed_in)]
#: Only for /auth/password, /auth/me and /auth/logout: what an account that must change its password may do.
SignedInPending = Annotated[Actor, Depends(signed_in_pending)]
Public = Annotated[RequestInfo, Depends(public)]


# The sessions below are made on the event loop and touch no connection there: the route that takes one is
# served in one hop (appliance.api.routing), which runs it, commits and closes it on one thread.


async def tenant_session(request: Request, ctx: ContextDep, actor: AuthDep) -> AsyncIterator[Session]:
    """The request's session, scoped to the actor's tenant (row-level security and the ORM filter)."""
    if actor.tenant_id is None:
        raise Forbidden("platform operators act on platform routes", code="TENANT_ROUTE")
    session = ctx.database.new_session(write=request.method not in SAFE_METHODS)
    tenancy.set_tenant(session, actor.tenant_id)
    async with unused_after(ctx, session):
        yield session


async def platform_session(request: Request, ctx: ContextDep) -> AsyncIterator[Session]:
    """The session of an operator route or a public one: no tenant (the ORM filter is lifted; on
    PostgreSQL row-level security still shows no tenant's rows without one being set)."""
    session = ctx.database.new_session(write=request.method not in SAFE_METHODS)
    tenancy.set_platform(session)
    async with unused_after(ctx, session):
        yield session


async def caller_session(request: Request, ctx: ContextDep, actor: AuthDep) -> AsyncIterator[Session]:
    """The session of a route about the caller itself (/auth/me, password, MFA): scoped to the caller's
    tenant when it has one, so its audit records land in that tenant's trail."""
    session = ctx.database.new_session(write=request.method not in SAFE_METHODS)
    if actor.tenant_id is not None:
        tenancy.set_tenant(session, actor.tenant_id)
    async with unused_after(ctx, session):
        yield session


# Committed by the route's one hop, before the response is sent (see appliance.api.deps.SessionDep).
CallerSession = Annotated[Session, Depends(caller_session, scope="function")]
TenantSession = Annotated[Session, Depends(tenant_session, scope="function")]
PlatformSession = Annotated[Session, Depends(platform_session, scope="function")]
