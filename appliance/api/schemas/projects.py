"""Request and response bodies of /api/v1/projects.

The list route skips pydantic and serializes plain rows with orjson (:func:`render_page`), rendering their
times with appliance.api.schemas.times.rfc3339 as :data:`Timestamp` does, so that a project reads the same
in a list and on its own (tests/api/test_projects.py compares them)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp, rfc3339
from appliance.models import Project


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: uuid.UUID
    """The organization that owns the project."""
    name: str = Field(min_length=1, max_length=200)
    """Unique within the organization."""
    description: str = Field(default="", max_length=5000)


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    organization_id: uuid.UUID | None = None
    """Move the project to this organization (its name must be free there)."""


class ProjectOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    created_by: uuid.UUID | None
    """The user who created it (null when an API key did, or the user is gone)."""
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            id=project.id,
            organization_id=project.organization_id,
            name=project.name,
            description=project.description,
            created_by=project.created_by,
            created_at=project.created_at,
            updated_at=project.updated_at,
        )


def render_page(items: list[dict[str, Any]], next_cursor: str | None) -> bytes:
    """A ``Page[ProjectOut]`` body from plain rows (the fields of ProjectOut), serialized once.

    orjson has no fixed-width fraction (it drops a zero one), so the two times are rendered here."""
    rows = [
        {**row, "created_at": rfc3339(row["created_at"]), "updated_at": rfc3339(row["updated_at"])}
        for row in items
    ]
    return orjson.dumps({"items": rows, "next_cursor": next_cursor})
