"""Operators' run-time overrides of the rate limits, kept in the database so every process and host
picks them up within a few seconds (no restart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from appliance.models import PlatformSetting
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.limits.limiter import RateLimits

NAME = "rate_limits"


def overrides(session: Session) -> dict[str, Any]:
    row = session.get(PlatformSetting, NAME)
    return dict(row.value) if row is not None else {}


def effective(session: Session, base: RateLimits) -> RateLimits:
    """The configured limits with the operators' overrides applied."""
    return base.merge(overrides(session))


def update(session: Session, base: RateLimits, changes: Mapping[str, Any], actor: Actor) -> RateLimits:
    """Merge ``changes`` into the stored overrides; invalid values are refused and nothing is stored."""
    current = overrides(session)
    merged: dict[str, Any] = {**current}
    for key, value in changes.items():
        if key == "tiers" and isinstance(value, Mapping):
            merged["tiers"] = {**current.get("tiers", {}), **value}
        else:
            merged[key] = value
    limits = base.merge(merged)  # raises InvalidInput naming the bad key before anything is written
    row = session.get(PlatformSetting, NAME)
    if row is None:
        session.add(PlatformSetting(name=NAME, value=merged, updated_by=actor.principal))
    else:
        row.value = merged
        row.updated_by = actor.principal
    session.flush()
    audit.record(
        session,
        action="rate_limits.update",
        tenant_id=None,
        actor=actor,
        resource_type="rate_limits",
        resource_id=NAME,
        summary={"changes": dict(changes)},
    )
    return limits


def reset(session: Session, base: RateLimits, actor: Actor) -> RateLimits:
    """Drop every override: the configured limits apply again."""
    row = session.get(PlatformSetting, NAME)
    if row is not None:
        session.delete(row)
        session.flush()
    audit.record(
        session,
        action="rate_limits.reset",
        tenant_id=None,
        actor=actor,
        resource_type="rate_limits",
        resource_id=NAME,
    )
    return base
