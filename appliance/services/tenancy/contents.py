"""What an operator sees inside one tenant: its members, organizations and API keys (never a key's secret).

Each is read inside that tenant's scope (`tenancy.inside`), with the same services and pages as the
tenant's own routes, so an operator sees exactly what the tenant's owner would; an unknown tenant is
TENANT_NOT_FOUND. Reads only: an operator changes a tenant's contents by signing in to it, not from here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.models import ApiKey, Organization
from appliance.services.identity import api_keys
from appliance.services.tenancy import members, organizations, tenants


@contextmanager
def _inside(session: Session, tenant_id: uuid.UUID) -> Iterator[None]:
    tenant = tenants.get(session, tenant_id)  # TENANT_NOT_FOUND before anything is read
    with tenancy.inside(session, tenant.id):
        yield


def members_of(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    role: str | None,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
    status: str | None = None,
) -> tuple[list[members.Entry], str | None]:
    """The tenant's members and pending invitations in the order they joined or were invited, as
    /api/v1/members lists them."""
    with _inside(session, tenant_id):
        return members.page(session, role=role, status=status, limit=limit, cursor=cursor, now=now)


def organizations_of(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    parent_id: uuid.UUID | None,
    root: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Organization], str | None]:
    """The tenant's organizations by slug, as /api/v1/organizations lists them."""
    with _inside(session, tenant_id):
        return organizations.list_page(session, parent_id=parent_id, root=root, limit=limit, cursor=cursor)


def api_keys_of(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    revoked: bool | None,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> tuple[list[tuple[ApiKey, list[str]]], str | None]:
    """The tenant's API keys, oldest first, each with what it may do now (`api_keys.effective_scopes`), as
    /api/v1/api-keys lists them (their hashes stay here)."""
    with _inside(session, tenant_id):
        rows, next_cursor = api_keys.list_page(session, revoked=revoked, limit=limit, cursor=cursor)
        effective = api_keys.effective_scopes(session, rows, now)
    return [(key, effective[key.id]) for key in rows], next_cursor
