"""Request and response bodies of /api/v1/tenants (platform operators).

The list route skips pydantic and serializes its rows with orjson (:func:`render_page`), rendering their
times as :data:`Timestamp` does, so that a tenant reads the same in the list and on its own
(tests/api/test_tenants.py compares them)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from appliance.api.schemas.times import Timestamp, rfc3339
from appliance.models import Tenant
from appliance.services.tenancy.tenants import Counts


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(max_length=63)
    """Lower-case letters, digits and '-'; unique; used to sign in."""
    name: str = Field(min_length=1, max_length=200)
    plan: str = "free"
    """free, team, business or enterprise."""
    owner_email: str | None = Field(default=None, max_length=320)
    """This user (created when new) becomes the tenant's owner."""


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = None


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    status: str
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None
    purge_after: Timestamp | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(**fields_of(tenant))


def fields_of(tenant: Tenant) -> dict[str, Any]:
    """A tenant's output fields, for TenantOut and the models built on it."""
    return {
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan.value,
        "status": tenant.status.value,
        "created_at": tenant.created_at,
        "updated_at": tenant.updated_at,
        "deleted_at": tenant.deleted_at,
        "purge_after": tenant.purge_after,
    }


class OwnerOut(BaseModel):
    user_id: uuid.UUID
    email: str
    one_time_password: str | None
    """Set when the owner's account was created now: shown once, to be changed at first sign-in."""


class TenantCreated(TenantOut):
    owner: OwnerOut | None


class TenantCounts(BaseModel):
    users: int
    organizations: int
    projects: int
    api_keys: int
    """API keys that work: revoked ones are not counted."""


class TenantDetail(TenantOut):
    """A tenant with how much it holds: GET /tenants/{id}, and each item of GET /tenants."""

    counts: TenantCounts

    @classmethod
    def counted(cls, tenant: Tenant, counts: Counts) -> TenantDetail:
        # Built in one step (not TenantOut.of(...).model_dump()): a page of the list builds 200 of them.
        return cls(
            **fields_of(tenant),
            counts=TenantCounts(
                users=counts.users,
                organizations=counts.organizations,
                projects=counts.projects,
                api_keys=counts.api_keys,
            ),
        )


_TIMES = ("created_at", "updated_at", "deleted_at", "purge_after")


def render_page(rows: list[Tenant], counts: dict[uuid.UUID, Counts], next_cursor: str | None) -> bytes:
    """A ``Page[TenantDetail]`` body, serialized once (a page of 200 in a fifth of pydantic's time)."""
    items = []
    for tenant in rows:
        item = fields_of(tenant)
        for name in _TIMES:
            if item[name] is not None:
                item[name] = rfc3339(item[name])
        held = counts[tenant.id]
        item["counts"] = {
            "users": held.users,
            "organizations": held.organizations,
            "projects": held.projects,
            "api_keys": held.api_keys,
        }
        items.append(item)
    return orjson.dumps({"items": items, "next_cursor": next_cursor})
