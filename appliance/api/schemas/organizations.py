"""Request and response bodies of /api/v1/organizations."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp
from appliance.models import Organization
from appliance.services.tenancy.organizations import OrganizationView


class OrganizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(max_length=63)
    """Lower-case letters, digits and '-'; unique within the tenant."""
    parent_id: uuid.UUID | None = None
    """The enclosing organization; omitted or null for a top-level one."""


class OrganizationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent_id: uuid.UUID | None = None
    """Move it under this organization; null moves it to the top level, omitted leaves it where it is."""


class OrganizationOut(BaseModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    slug: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, org: Organization) -> OrganizationOut:
        return cls(
            id=org.id,
            parent_id=org.parent_id,
            name=org.name,
            slug=org.slug,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )


class OrganizationRef(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class OrganizationDetail(OrganizationOut):
    path: list[OrganizationRef]
    """Its ancestors, the top-level organization first (empty for a top-level one)."""
    children: list[uuid.UUID]
    """Its direct children by slug, the first 200 (all of them: GET /organizations?parent_id=)."""
    child_count: int
    """How many direct children it has."""

    @classmethod
    def of_view(cls, view: OrganizationView) -> OrganizationDetail:
        return cls(
            **OrganizationOut.of(view.organization).model_dump(),
            path=[OrganizationRef(id=a.id, slug=a.slug, name=a.name) for a in view.path],
            children=list(view.children),
            child_count=view.child_count,
        )
