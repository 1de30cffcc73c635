"""Organizations: the nested units of a tenant that own projects, created, listed, read with their place in
the hierarchy, renamed, moved (never under themselves) and deleted once empty."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appliance.errors import Conflict, Forbidden, InvalidInput, NotFound
from appliance.models import Organization, Project
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.tenancy.tenants import SLUG

#: How many child ids a read of one organization names (the rest: list with ?parent_id=).
MAX_CHILDREN = pagination.MAX_LIMIT
CURSORS = pagination.Keyset("organizations", str)


class Keep(enum.Enum):
    """The value of an optional change that was not asked for (unlike None, which may mean "clear it")."""

    KEEP = "keep"


KEEP = Keep.KEEP


def tenant_of(actor: Actor) -> uuid.UUID:
    """The tenant the actor acts in; operators have none here."""
    if actor.tenant_id is None:
        raise Forbidden("platform operators act on platform routes", code="TENANT_ROUTE")
    return actor.tenant_id


@contextmanager
def checked_write(session: Session, recheck: Callable[[], None]) -> Iterator[None]:
    """Make a write in a savepoint; when the database refuses it (a concurrent request took the slug or
    name, or removed the parent, after the checks passed), run the checks again so that the caller gets the
    same error as it would have without the race, not a 500."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError:
        recheck()
        raise


def check_slug(slug: str) -> str:
    value = slug.strip()
    if not SLUG.match(value):
        raise InvalidInput(
            f"{slug!r} is not a valid organization slug: 1 to 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            code="SLUG_INVALID",
            details={"slug": slug},
        )
    return value


def _check_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise InvalidInput("an organization needs a name", code="NAME_REQUIRED", details={"name": name})
    return value


def not_found(org_id: uuid.UUID, field: str = "organization_id") -> NotFound:
    return NotFound(
        f"organization {str(org_id)!r} was not found",
        code="ORGANIZATION_NOT_FOUND",
        details={field: str(org_id)},
    )


def get(
    session: Session, org_id: uuid.UUID, *, field: str = "organization_id", lock: bool = False
) -> Organization:
    """One organization of the session's tenant (another tenant's is not found); ``lock`` reads its row
    afresh and holds it until the transaction ends (PostgreSQL), so that it is not moved or deleted
    meanwhile."""
    org = session.get(Organization, org_id, with_for_update=lock or None, populate_existing=lock)
    if org is None:
        raise not_found(org_id, field)
    return org


def _check_slug_free(session: Session, slug: str) -> None:
    if session.scalars(select(Organization.id).where(Organization.slug == slug)).first() is not None:
        raise Conflict(
            f"an organization with slug {slug!r} already exists", code="SLUG_TAKEN", details={"slug": slug}
        )


def create(
    session: Session, actor: Actor, *, name: str, slug: str, parent_id: uuid.UUID | None = None
) -> Organization:
    """A new organization, top-level or inside ``parent_id``."""
    value, title = check_slug(slug), _check_name(name)

    def check() -> None:
        if parent_id is not None:
            get(session, parent_id, field="parent_id")
        _check_slug_free(session, value)

    check()
    org = Organization(tenant_id=tenant_of(actor), parent_id=parent_id, name=title, slug=value)
    with checked_write(session, check):
        session.add(org)
    audit.record(
        session,
        action="organization.create",
        tenant_id=org.tenant_id,
        actor=actor,
        resource_type="organization",
        resource_id=org.id,
        summary={"name": title, "slug": value, "parent_id": parent_id},
    )
    return org


def list_page(
    session: Session,
    *,
    parent_id: uuid.UUID | None = None,
    root: bool | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[Organization], str | None]:
    """The tenant's organizations by slug, ``limit`` at a time: all of them, the children of
    ``parent_id``, or (``root``) the top-level ones (``root=False``: all but those)."""
    if not 1 <= limit <= pagination.MAX_LIMIT:
        raise InvalidInput(
            f"limit must be 1 to {pagination.MAX_LIMIT}, not {limit}", details={"limit": limit}
        )
    query: Select[Any] = select(Organization)
    if parent_id is not None:
        if root:
            raise InvalidInput(
                "root=true lists the top-level organizations: it cannot be combined with parent_id",
                code="FILTER_CONFLICT",
                details={"parent_id": str(parent_id), "root": True},
            )
        query = query.where(Organization.parent_id == parent_id)
    elif root is not None:
        query = query.where(Organization.parent_id.is_(None) if root else Organization.parent_id.is_not(None))
    if cursor is not None:
        (slug,) = CURSORS.decode(cursor, "slug")
        query = query.where(Organization.slug > slug)
    rows = list(session.scalars(query.order_by(Organization.slug).limit(limit + 1)))
    next_cursor = CURSORS.encode([rows[limit - 1].slug], "slug") if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class OrganizationView:
    """One organization with its place in the hierarchy."""

    organization: Organization
    path: list[Organization]
    """Its ancestors, the top-level one first."""
    children: list[uuid.UUID]
    """Its direct children by slug, the first :data:`MAX_CHILDREN`."""
    child_count: int


def ancestors(session: Session, org: Organization, *, lock: bool = False) -> list[Organization]:
    """The organizations above ``org``, the top-level one first (one lookup per level: hierarchies are
    shallow, and each lookup is by primary key)."""
    chain: list[Organization] = []
    seen = {org.id}
    parent_id = org.parent_id
    while parent_id is not None and parent_id not in seen:  # `seen`: never loop on a corrupted hierarchy
        parent = session.get(Organization, parent_id, with_for_update=lock or None, populate_existing=lock)
        if parent is None:
            break
        seen.add(parent.id)
        chain.append(parent)
        parent_id = parent.parent_id
    chain.reverse()
    return chain


def _count(session: Session, model: Any, condition: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(condition)) or 0)


def view(session: Session, org_id: uuid.UUID) -> OrganizationView:
    org = get(session, org_id)
    children = session.scalars(
        select(Organization.id)
        .where(Organization.parent_id == org.id)
        .order_by(Organization.slug)
        .limit(MAX_CHILDREN)
    )
    return OrganizationView(
        organization=org,
        path=ancestors(session, org),
        children=list(children),
        child_count=_count(session, Organization, Organization.parent_id == org.id),
    )


def change(
    session: Session,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    name: str | None = None,
    parent_id: uuid.UUID | Keep | None = KEEP,
) -> Organization:
    """Rename an organization or move it (``parent_id`` None: to the top level). A move under itself or one
    of its descendants is refused (ORG_CYCLE)."""
    moving = parent_id is not KEEP
    # A move locks the organization and the new parent's line up to the top, so that two crossing moves
    # (A under B, B under A) cannot both pass the check: the second waits, then sees the first.
    org = get(session, org_id, lock=moving)
    changes: dict[str, list[Any]] = {}
    if name is not None:
        title = _check_name(name)
        if title != org.name:
            changes["name"] = [org.name, title]
    if not isinstance(parent_id, Keep) and parent_id != org.parent_id:
        if parent_id is not None:
            parent = get(session, parent_id, field="parent_id", lock=True)
            line = {parent.id, *(a.id for a in ancestors(session, parent, lock=True))}
            if org.id in line:
                raise InvalidInput(
                    f"organization {org.slug!r} cannot move under {parent.slug!r}: "
                    + ("that is itself" if parent.id == org.id else f"{parent.slug!r} is inside it"),
                    code="ORG_CYCLE",
                    details={"organization_id": str(org.id), "parent_id": str(parent_id)},
                )
        changes["parent_id"] = [org.parent_id, parent_id]
        org.parent_id = parent_id
    if not changes:
        return org
    if "name" in changes:
        org.name = changes["name"][1]
    session.flush()
    audit.record(
        session,
        action="organization.update",
        tenant_id=org.tenant_id,
        actor=actor,
        resource_type="organization",
        resource_id=org.id,
        summary=changes,
    )
    return org


def delete(session: Session, actor: Actor, org_id: uuid.UUID) -> None:
    """Delete an empty organization; one with child organizations or projects is refused (ORG_NOT_EMPTY),
    since deleting it would take its projects with it."""
    # Locked: a child or project created meanwhile waits on this row and then finds it gone.
    org = get(session, org_id, lock=True)
    children = _count(session, Organization, Organization.parent_id == org.id)
    projects = _count(session, Project, Project.organization_id == org.id)
    if children or projects:
        raise Conflict(
            f"organization {org.slug!r} still holds {children} organization(s) and {projects} "
            "project(s): move or delete them first",
            code="ORG_NOT_EMPTY",
            details={"organization_id": str(org.id), "organizations": children, "projects": projects},
        )
    session.delete(org)
    session.flush()
    audit.record(
        session,
        action="organization.delete",
        tenant_id=org.tenant_id,
        actor=actor,
        resource_type="organization",
        resource_id=org.id,
        summary={"name": org.name, "slug": org.slug, "parent_id": org.parent_id},
    )
