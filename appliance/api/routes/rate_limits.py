"""/api/v1/rate-limits: the limits in force, changed by operators at run time (no restart)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.schemas.errors import error_responses
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.limits import settings as rate_limit_settings
from appliance.services.limits.limiter import RateLimits

router = routing.router(
    prefix="/rate-limits", tags=["rate-limits"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.RATE_LIMITS_READ))]
Manage = Annotated[Actor, Depends(require_operator(platform_permissions.RATE_LIMITS_MANAGE))]


class RateLimitsOut(BaseModel):
    tiers: dict[str, int]
    """Requests per minute per tenant, by plan."""
    per_principal: int | None
    """Requests per minute per user or API key (null: the tenant's tier limit)."""
    per_ip: int
    login_failures_per_account: int
    """Failed sign-ins per 15 minutes before an account's sign-ins are refused for a while."""
    login_failures_per_ip: int
    period: float
    overrides: dict[str, Any]
    """What operators changed from the configured values."""
    enabled: bool


class RateLimitsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: dict[str, int] | None = None
    per_principal: int | None = Field(default=None, ge=1)
    per_ip: int | None = Field(default=None, ge=1)
    login_failures_per_account: int | None = Field(default=None, ge=1)
    login_failures_per_ip: int | None = Field(default=None, ge=1)


def _out(ctx: ContextDep, limits: RateLimits, overrides: dict[str, Any]) -> RateLimitsOut:
    data = limits.to_mapping()
    return RateLimitsOut(**data, overrides=overrides, enabled=ctx.limiter is not None)


@router.get("")
def get_rate_limits(actor: Read, session: PlatformSession, ctx: ContextDep) -> RateLimitsOut:
    """The limits in force: the configured ones with the operators' overrides."""
    return _out(
        ctx, rate_limit_settings.effective(session, ctx.base_limits), rate_limit_settings.overrides(session)
    )


@router.patch("")
def update_rate_limits(
    body: RateLimitsPatch, actor: Manage, session: PlatformSession, ctx: ContextDep
) -> RateLimitsOut:
    """Change some limits; every API process applies them within a few seconds, this one at once."""
    changes = body.model_dump(exclude_unset=True)
    limits = rate_limit_settings.update(session, ctx.base_limits, changes, actor)
    ctx.limits.replace(limits)
    return _out(ctx, limits, rate_limit_settings.overrides(session))


@router.delete("", status_code=204)
def reset_rate_limits(actor: Manage, session: PlatformSession, ctx: ContextDep) -> Response:
    """Drop every override: the configured limits apply again."""
    ctx.limits.replace(rate_limit_settings.reset(session, ctx.base_limits, actor))
    return Response(status_code=204)
