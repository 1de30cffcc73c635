"""/api/v1/projects: a tenant's projects, each owned by one of its organizations."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from appliance.api.auth import TenantSession, require
from appliance.api.pagination import Cursor, Limit, Page
from appliance.api.schemas.errors import error_responses
from appliance.api.schemas.projects import ProjectIn, ProjectOut, ProjectPatch, render_page
from appliance.services import projects
from appliance.services.actors import Actor

router = APIRouter(prefix="/projects", tags=["projects"], responses=error_responses(401, 403, 422, 429))

Read = Annotated[Actor, Depends(require("projects:read"))]
Write = Annotated[Actor, Depends(require("projects:write"))]
Sort = Annotated[
    Literal["created_at", "-created_at", "name", "-name"],
    Query(description="Order of the list; '-' for descending. A cursor only works with its own sort."),
]


@router.post("", status_code=201, responses=error_responses(404, 409))
def create_project(body: ProjectIn, actor: Write, session: TenantSession, response: Response) -> ProjectOut:
    """Create a project in one of the tenant's organizations (404 ORGANIZATION_NOT_FOUND for any other);
    its name must be free in that organization (409 PROJECT_EXISTS)."""
    project = projects.create(
        session, actor, organization_id=body.organization_id, name=body.name, description=body.description
    )
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return ProjectOut.of(project)


@router.get("", response_model=Page[ProjectOut])
def list_projects(
    *,
    actor: Read,
    session: TenantSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    sort: Sort = "-created_at",
    organization_id: Annotated[uuid.UUID | None, Query(description="Only this organization's")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name")] = None,
) -> Response:
    """The tenant's projects, newest first unless ?sort= says otherwise, a page at a time."""
    page = projects.list_page(
        session, sort=sort, organization_id=organization_id, search=q, limit=limit, cursor=cursor
    )
    # Rows the database has typed already, serialized once (no per-row validation); the documented model
    # is Page[ProjectOut], which renders the same bytes (tests/api/test_projects.py checks it).
    return Response(render_page(page.items, page.next_cursor), media_type="application/json")


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
