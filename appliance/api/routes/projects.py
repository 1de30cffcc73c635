"""/api/v1/projects: a tenant's projects, each owned by one of its organizations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field

from appliance.api import query, routing
from appliance.api.auth import (
    SECURITY,
    TenantSession,
    declares,
    enforce_limits,
    enforce_limits_async,
    permitted,
    require,
)
from appliance.api.context import AppContext
from appliance.api.pagination import Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.projects import ProjectIn, ProjectOut, ProjectPatch, render_page
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.services.access.actors import Actor
from appliance.services.tenancy import projects
from appliance.services.tenancy.organizations import tenant_of

router = routing.router(prefix="/projects", tags=["projects"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("projects:read"))]
Write = Annotated[Actor, Depends(require("projects:write"))]


@router.post("", status_code=201, responses=error_responses(404, 409))
def create_project(body: ProjectIn, actor: Write, session: TenantSession, response: Response) -> ProjectOut:
    """Create a project in one of the tenant's organizations (404 ORGANIZATION_NOT_FOUND for any other);
    its name must be free in that organization (409 PROJECT_EXISTS)."""
    project = projects.create(
        session, actor, organization_id=body.organization_id, name=body.name, description=body.description
    )
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return ProjectOut.of(project)


def _page_body(request: Request, actor: Actor, **query: Any) -> bytes:
    """One page as JSON bytes from a tenant-scoped session (SQLite), rate limits first."""
    enforce_limits(request, actor)
    database: Database = request.app.state.ctx.database
    with database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant_of(actor))
        page = projects.list_page(session, **query)
    return render_page(page.items, page.next_cursor)


class ListQuery(BaseModel):
    """The parameters of the project list."""

    limit: int = Field(default=50, ge=1, le=200)
    """Items per page (1 to 200)."""
    cursor: str | None = Field(default=None, max_length=1000)
    """The next_cursor of the previous page."""
    sort: Literal["created_at", "-created_at", "name", "-name"] = "-created_at"
    """Order of the list; '-' for descending. A cursor only works with its own sort."""
    organization_id: uuid.UUID | None = None
    """Only this organization's."""
    q: str | None = Field(default=None, max_length=100)
    """Part of the name."""


@router.get(
    "",
    response_model=Page[ProjectOut],
    openapi_extra={**query.openapi_parameters(ListQuery), "security": SECURITY},
)
@declares("projects:read")
async def list_projects(request: Request) -> Response:
    """The tenant's projects, newest first unless ?sort= says otherwise, a page at a time."""
    # The hot path (tests/bench/bench_projects.py). No FastAPI dependencies or parameters: solving them
    # cost more than the query; `permitted` does what require("projects:read") does, ListQuery validates
    # and documents the parameters. The query and the serialization run in ONE worker thread; the rows are
    # serialized once with orjson, without per-row validation (Page[ProjectOut] documents them and renders
    # the same bytes: tests/api/test_projects.py compares a listed project with GET /{id}).
    actor = await permitted(request, "projects:read")
    params = query.parse(request, ListQuery)
    options: dict[str, Any] = {
        "sort": params.sort,
        "organization_id": params.organization_id,
        "search": params.q,
        "limit": params.limit,
        "cursor": params.cursor,
    }
    ctx: AppContext = request.app.state.ctx
    if ctx.async_database is None:  # SQLite: the session path, in one worker thread
        body = await ctx.offload.run(_page_body, request, actor, **options)
    else:  # PostgreSQL: on the event loop, no thread at all unless the limiter needs Redis
        await enforce_limits_async(request, actor)
        tenant = tenant_of(actor)
        page = await ctx.async_database.read(
            lambda connection: projects.list_page_postgresql(connection, tenant, **options)
        )
        body = render_page(page.items, page.next_cursor)
    return Response(body, media_type="application/json")


@router.get("/{project_id}", responses=error_responses(404))
def get_project(project_id: uuid.UUID, actor: Read, session: TenantSession) -> ProjectOut:
    """One project."""
    return ProjectOut.of(projects.get(session, project_id))


@router.patch("/{project_id}", responses=error_responses(404, 409))
def update_project(
    project_id: uuid.UUID, body: ProjectPatch, actor: Write, session: TenantSession
) -> ProjectOut:
    """Rename a project, change its description, or move it to another of the tenant's organizations."""
    project = projects.change(
        session,
        actor,
        project_id,
        name=body.name,
        description=body.description,
        organization_id=body.organization_id,
    )
    return ProjectOut.of(project)


@router.delete("/{project_id}", status_code=204, responses=error_responses(404))
def delete_project(project_id: uuid.UUID, actor: Write, session: TenantSession) -> Response:
    """Delete a project."""
    projects.delete(session, actor, project_id)
    return Response(status_code=204)
