"""/api/v1/apps: the applications a tenant monitors, their checks, incidents and uptime."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from appliance.api import routing
from appliance.api.auth import TenantSession, require
from appliance.api.deps import ContextDep
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.apps import AppIn, AppOut, AppPatch, CheckOut, IncidentOut, UptimeOut
from appliance.api.schemas.errors import error_responses
from appliance.db.base import utcnow
from appliance.services.access.actors import Actor
from appliance.services.monitoring import apps
from appliance.services.monitoring import checks as app_checks
from appliance.services.monitoring import status as app_status

router = routing.router(prefix="/apps", tags=["apps"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("apps:read"))]
Write = Annotated[Actor, Depends(require("apps:write"))]


@router.post("", status_code=201)
def create_app(
    body: AppIn, actor: Write, session: TenantSession, ctx: ContextDep, response: Response
) -> AppOut:
    """Register an app to monitor: an http(s) URL probed every interval, or a heartbeat app that calls its
    own heartbeat URL. A URL that is not http(s), is too long or points at a refused address is 422
    INVALID_URL; an interval under the operator's minimum is 422 INTERVAL_TOO_SHORT."""
    app = apps.create(session, actor, apps.AppRules.of(ctx.settings), **body.model_dump())
    response.headers["Location"] = f"/api/v1/apps/{app.id}"
    return AppOut.of(app, ctx.settings.api.public_url)


@router.get("")
def list_apps(
    *,
    actor: Read,
    session: TenantSession,
    ctx: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[
        str | None, Query(pattern="^(unknown|up|down)$", description="Only the apps with this status")
    ] = None,
) -> Page[AppOut]:
    """The tenant's apps, newest first."""
    rows, next_cursor = apps.list_page(session, status=status, limit=limit, cursor=cursor)
    public_url = ctx.settings.api.public_url
    return Page(items=[AppOut.of(app, public_url) for app in rows], next_cursor=next_cursor)


@router.get("/{app_id}", responses=error_responses(404))
def get_app(app_id: uuid.UUID, actor: Read, session: TenantSession, ctx: ContextDep) -> AppOut:
    """One app, with its status."""
    return AppOut.of(apps.get(session, app_id), ctx.settings.api.public_url)


@router.patch("/{app_id}", responses=error_responses(404))
def update_app(
    app_id: uuid.UUID, body: AppPatch, actor: Write, session: TenantSession, ctx: ContextDep
) -> AppOut:
    """Change an app's settings (checked as on creation); the monitor picks the change up within its
    refresh period."""
    app = apps.change(session, actor, apps.AppRules.of(ctx.settings), app_id, **body.changes())
    return AppOut.of(app, ctx.settings.api.public_url)


@router.delete("/{app_id}", status_code=204, responses=error_responses(404))
def delete_app(app_id: uuid.UUID, actor: Write, session: TenantSession) -> Response:
    """Stop monitoring an app and delete its checks, rollups and incidents."""
    apps.delete(session, actor, app_id)
    return Response(status_code=204)


@router.get("/{app_id}/checks", responses=error_responses(404))
def list_checks(
    *,
    app_id: uuid.UUID,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    ok: Annotated[bool | None, Query(description="false: only failed checks; true: only successful")] = None,
) -> Page[CheckOut]:
    """An app's checks, newest first (kept for monitoring.raw_days days)."""
    rows, next_cursor = app_checks.checks_page(session, app_id, ok=ok, limit=limit, cursor=cursor)
    return Page(items=[CheckOut.of(check) for check in rows], next_cursor=next_cursor)


@router.get("/{app_id}/incidents", responses=error_responses(404))
def list_incidents(
    *, app_id: uuid.UUID, actor: Read, session: TenantSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[IncidentOut]:
    """An app's down periods, newest first; an open one has no ended_at."""
    rows, next_cursor = app_status.incidents_page(session, app_id, limit=limit, cursor=cursor)
    return Page(items=[IncidentOut.of(incident) for incident in rows], next_cursor=next_cursor)


@router.get("/{app_id}/uptime", responses=error_responses(404))
def get_uptime(app_id: uuid.UUID, actor: Read, session: TenantSession) -> UptimeOut:
    """The share of successful checks over the last 24 hours, 7 days and 30 days."""
    return UptimeOut.of(app_id, app_checks.uptime(session, app_id, utcnow()))
