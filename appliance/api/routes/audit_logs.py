"""/api/v1/audit-logs: the tenant's audit trail, and the platform's for operators."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from appliance.api import routing
from appliance.api.auth import PlatformSession, TenantSession, require, require_operator
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.models import AuditLog
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor
from appliance.services.audit import actors as audit_actors
from appliance.services.audit import log as audit
from appliance.services.common import pagination

router = routing.router(
    prefix="/audit-logs", tags=["audit-logs"], responses=error_responses(401, 403, 422, 429)
)

Read = Annotated[Actor, Depends(require("audit:read"))]
PlatformRead = Annotated[Actor, Depends(require_operator(platform_permissions.PLATFORM_AUDIT))]
#: The trail's cursors: (created_at, id) under the ?sort= order.
CURSORS = pagination.Keyset("audit_logs", dt.datetime, uuid.UUID)


class AuditLogOut(BaseModel):
    id: uuid.UUID
    seq: int
    """Position in the tenant's hash chain (1, 2, 3...)."""
    action: str
    actor_user_id: uuid.UUID | None
    actor_api_key_id: uuid.UUID | None
    actor_name: str | None = None
    """Who acted, where no user or key id says it: ``cli:<OS user>@<host>`` for the command line."""
    actor_email: str | None = None
    """The e-mail of the user who acted (null for an API key, the command line, or nobody)."""
    actor_label: str | None = None
    """Who acted, for people: the user's e-mail, ``key <name> (<prefix>)`` for an API key, or
    ``actor_name``; null when nobody known acted (a failed sign-in: the address tried is in ``summary``)."""
    resource_type: str | None
    resource_id: str | None
    summary: dict[str, Any]
    """What changed (field: [before, after]) or what was attempted; secrets are never recorded."""
    ip: str | None
    user_agent: str | None
    request_id: str | None
    created_at: dt.datetime
    hash: str

    @classmethod
    def of(cls, row: AuditLog, names: audit_actors.ActorNames) -> AuditLogOut:
        return cls(
            id=row.id,
            seq=row.seq,
            action=row.action,
            actor_user_id=row.actor_user_id,
            actor_api_key_id=row.actor_api_key_id,
            actor_name=row.actor_name,
            actor_email=names.email(row),
            actor_label=names.label(row),
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            summary=row.summary,
            ip=row.ip,
            user_agent=row.user_agent,
            request_id=row.request_id,
            created_at=row.created_at,
            hash=row.hash,
        )


class Filters(BaseModel):
    actor: uuid.UUID | None = None
    api_key: uuid.UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    sort: Literal["-created_at", "created_at"] = "-created_at"


async def filters(
    *,
    actor: Annotated[uuid.UUID | None, Query(description="Records of this user")] = None,
    api_key: Annotated[uuid.UUID | None, Query(description="Records of this API key")] = None,
    action: Annotated[
        str | None, Query(max_length=100, description="An action (project.create) or a prefix (project.*)")
    ] = None,
    resource_type: Annotated[str | None, Query(max_length=50)] = None,
    resource_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[dt.datetime | None, Query(description="From this time (inclusive, RFC 3339)")] = None,
    until: Annotated[dt.datetime | None, Query(description="Before this time (RFC 3339)")] = None,
    sort: Annotated[Literal["-created_at", "created_at"], Query(description="Newest first by default")] = (
        "-created_at"
    ),
) -> Filters:
    return Filters(
        actor=actor,
        api_key=api_key,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
        sort=sort,
    )


FiltersDep = Annotated[Filters, Depends(filters)]


def _page(
    session: Session, tenant_id: uuid.UUID | None, f: Filters, limit: int, cursor: str | None
) -> Page[AuditLogOut]:
    after = None
    if cursor is not None:
        created, record_id = CURSORS.decode(cursor, f.sort)
        after = (created, record_id)
    rows = audit.query(
        session,
        tenant_id=tenant_id,
        actor_user_id=f.actor,
        actor_api_key_id=f.api_key,
        action=f.action,
        resource_type=f.resource_type,
        resource_id=f.resource_id,
        since=f.since,
        until=f.until,
        limit=limit + 1,
        after=after,
        descending=f.sort == "-created_at",
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = CURSORS.encode([last.created_at, last.id], f.sort)
    page = rows[:limit]
    names = audit_actors.look_up(session, page)
    return Page(items=[AuditLogOut.of(r, names) for r in page], next_cursor=next_cursor)


@router.get("")
def list_audit_logs(
    actor: Read, session: TenantSession, f: FiltersDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AuditLogOut]:
    """The tenant's audit trail: every change and sign-in, filtered by actor, action, resource and time."""
    return _page(session, actor.tenant_id, f, limit, cursor)


@router.get("/platform")
def list_platform_audit_logs(
    actor: PlatformRead, session: PlatformSession, f: FiltersDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AuditLogOut]:
    """The platform's audit trail (operators): tenant lifecycle, operator sign-ins, failed sign-ins."""
    return _page(session, None, f, limit, cursor)
