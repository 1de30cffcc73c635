"""/api/v1/platform/apps: every tenant's monitored apps for operators (platform_apps:read), with their
checks, incidents and uptime as the tenant's own /api/v1/apps shows them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from appliance.api import routing
from appliance.api.auth import PlatformSession, require_operator
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.apps import CheckOut, IncidentOut, PlatformAppOut, UptimeOut
from appliance.api.schemas.errors import error_responses
from appliance.db.base import utcnow
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.monitoring import every_tenant

router = routing.router(
    prefix="/platform/apps", tags=["apps"], responses=error_responses(401, 403, 404, 422, 429)
)

Read = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_APPS_READ))]


@router.get("")
def list_all_apps(
    *,
    actor: Read,
    session: PlatformSession,
    ctx: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Only this tenant's apps")] = None,
    status: Annotated[
        str | None, Query(pattern="^(unknown|up|down)$", description="Only the apps with this status")
    ] = None,
) -> Page[PlatformAppOut]:
    """Every tenant's apps (or one tenant's, with ?tenant_id=: 404 TENANT_NOT_FOUND for an unknown one),
    newest first, each with its tenant and the start of its open incident."""
    rows, next_cursor = every_tenant.page(
        session, tenant_id=tenant_id, status=status, limit=limit, cursor=cursor
    )
    public_url = ctx.settings.api.public_url
    return Page(items=[PlatformAppOut.of_row(row, public_url) for row in rows], next_cursor=next_cursor)


@router.get("/{app_id}")
def get_any_app(app_id: uuid.UUID, actor: Read, session: PlatformSession, ctx: ContextDep) -> PlatformAppOut:
    """Any tenant's app (404 APP_NOT_FOUND for an unknown id)."""
    return PlatformAppOut.of_row(every_tenant.get(session, app_id), ctx.settings.api.public_url)


@router.get("/{app_id}/checks")
def list_any_app_checks(
    *,
    app_id: uuid.UUID,
    actor: Read,
    session: PlatformSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    ok: Annotated[bool | None, Query(description="false: only failed checks; true: only successful")] = None,
) -> Page[CheckOut]:
    """An app's checks, newest first."""
    rows, next_cursor = every_tenant.checks_page(session, app_id, ok=ok, limit=limit, cursor=cursor)
    return Page(items=[CheckOut.of(check) for check in rows], next_cursor=next_cursor)


@router.get("/{app_id}/incidents")
def list_any_app_incidents(
    *, app_id: uuid.UUID, actor: Read, session: PlatformSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[IncidentOut]:
    """An app's down periods, newest first; an open one has no ended_at."""
    rows, next_cursor = every_tenant.incidents_page(session, app_id, limit=limit, cursor=cursor)
    return Page(items=[IncidentOut.of(incident) for incident in rows], next_cursor=next_cursor)


@router.get("/{app_id}/uptime")
def get_any_app_uptime(app_id: uuid.UUID, actor: Read, session: PlatformSession) -> UptimeOut:
    """An app's share of successful checks over the last 24 hours, 7 days and 30 days."""
    return UptimeOut.of(app_id, every_tenant.uptime(session, app_id, utcnow()))
