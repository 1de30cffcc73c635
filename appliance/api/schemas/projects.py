"""Request and response bodies of /api/v1/projects, and the one rule for rendering times in them.

The list route skips pydantic and serializes plain rows with orjson (:func:`render_page`); :data:`Timestamp`
and :data:`ORJSON_OPTIONS` render a time the same way (``2026-11-22T01:27:39Z``), so that a project reads
the same in a list and on its own (tests/api/test_projects.py compares them)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from appliance.models import Project


def rfc3339(moment: dt.datetime) -> str:
    """``2026-11-22T01:27:39Z``: UTC, whole seconds (API.md)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: A time in a response body, rendered as :func:`rfc3339` does.
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-22T01:27:39Z"]}),
]

#: orjson's rendering of the same times: UTC as 'Z', no fraction of a second (naive ones taken as UTC).
ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS | orjson.OPT_NAIVE_UTC


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
    """A ``Page[ProjectOut]`` body from plain rows (the fields of ProjectOut), serialized once."""
    return orjson.dumps({"items": items, "next_cursor": next_cursor}, option=ORJSON_OPTIONS)
