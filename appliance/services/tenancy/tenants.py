"""Tenants: created, listed, suspended, resumed, deleted (with a grace period) and purged by operators."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from appliance.db import tenancy, tenant_counts
from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.models import (
    DEFAULT_PURGE_GRACE,
    TENANT_TRANSITIONS,
    ApiKey,
    AuditLog,
    Membership,
    Organization,
    Project,
    Tenant,
    TenantPlan,
    TenantStatus,
)
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.tenancy import memberships

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: Slugs that would read as part of the platform itself.
RESERVED_SLUGS = frozenset({"admin", "api", "platform", "system", "root", "operator", "www", "health"})
CURSORS = pagination.Keyset("tenants", str)


def check_slug(slug: str) -> str:
    value = slug.strip()
    if not SLUG.match(value):
        raise InvalidInput(
            f"{slug!r} is not a valid tenant slug: 1 to 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            code="SLUG_INVALID",
            details={"slug": slug},
        )
    if value in RESERVED_SLUGS:
        raise InvalidInput(f"the slug {value!r} is reserved", code="SLUG_RESERVED", details={"slug": value})
    return value


def check_plan(plan: str) -> TenantPlan:
    try:
        return TenantPlan(plan)
    except ValueError:
        raise InvalidInput(
            f"{plan!r} is not a plan (plans: {', '.join(p.value for p in TenantPlan)})",
            code="PLAN_UNKNOWN",
            details={"plan": plan},
        ) from None


def _not_found(ref: object) -> NotFound:
    return NotFound(
        f"tenant {str(ref)!r} was not found", code="TENANT_NOT_FOUND", details={"tenant": str(ref)}
    )


def get(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise _not_found(tenant_id)
    return tenant


def by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalars(select(Tenant).where(Tenant.slug == slug.strip().lower())).first()
    if tenant is None:
        raise _not_found(slug)
    return tenant


def resolve(session: Session, ref: str) -> Tenant:
    """A tenant by id or slug (the CLI accepts either)."""
    try:
        tenant_id = uuid.UUID(ref)
    except ValueError:
        return by_slug(session, ref)
    tenant = session.get(Tenant, tenant_id)
    return tenant if tenant is not None else by_slug(session, ref)  # a slug may look like an id


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    owner: memberships.Added | None


def create(
    session: Session,
    actor: Actor,
    *,
    slug: str,
    name: str,
    plan: str = "free",
    owner_email: str | None = None,
) -> NewTenant:
    """A new active tenant; with ``owner_email``, that user (created when new) becomes its owner."""
    value = check_slug(slug)
    tier = check_plan(plan)
    if not name.strip():
        raise InvalidInput("a tenant needs a name", code="NAME_REQUIRED", details={"name": name})
    if session.scalars(select(Tenant.id).where(Tenant.slug == value)).first() is not None:
        raise Conflict(
            f"a tenant with slug {value!r} already exists", code="SLUG_TAKEN", details={"slug": value}
        )
    tenant = Tenant(slug=value, name=name.strip(), plan=tier)
    session.add(tenant)
    session.flush()
    audit.record(
        session,
        action="tenant.create",
        tenant_id=None,
        actor=actor,
        resource_type="tenant",
        resource_id=tenant.id,
        summary={"slug": value, "name": tenant.name, "plan": tier.value},
    )
    owner = None
    if owner_email:
        with tenancy.inside(session, tenant.id):
            owner = memberships.add(session, actor, tenant.id, email=owner_email, role="owner")
    return NewTenant(tenant=tenant, owner=owner)


def list_page(
    session: Session,
    *,
    status: str | None = None,
    plan: str | None = None,
    search: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[Tenant], str | None]:
    """Tenants by slug, ``limit`` at a time."""
    query: Select[Any] = select(Tenant)
    if status is not None:
        try:
            query = query.where(Tenant.status == TenantStatus(status))
        except ValueError:
            raise InvalidInput(
                f"{status!r} is not a tenant status (active, suspended, deleted)", details={"status": status}
            ) from None
    if plan is not None:
        query = query.where(Tenant.plan == check_plan(plan))
    if search:
        term = search.strip().lower()
        query = query.where(
            func.lower(Tenant.slug).contains(term, autoescape=True)
            | func.lower(Tenant.name).contains(term, autoescape=True)
        )
    if cursor is not None:
        (last,) = CURSORS.decode(cursor, "slug")
        query = query.where(Tenant.slug > last)
    rows = list(session.scalars(query.order_by(Tenant.slug).limit(limit + 1)))
    next_cursor = CURSORS.encode([rows[limit - 1].slug], "slug") if len(rows) > limit else None
    return rows[:limit], next_cursor


def _move(
    session: Session, actor: Actor, tenant: Tenant, target: TenantStatus, *, action: str, now: dt.datetime
) -> Tenant:
    if target not in TENANT_TRANSITIONS[tenant.status]:
        raise Conflict(
            f"tenant {tenant.slug!r} is {tenant.status.value}: it cannot become {target.value}",
            code="TENANT_STATE",
            details={"tenant": tenant.slug, "status": tenant.status.value, "wanted": target.value},
        )
    before = tenant.status
    tenant.status = target
    if target is TenantStatus.DELETED:
        tenant.deleted_at = now
        tenant.purge_after = now + DEFAULT_PURGE_GRACE
    elif before is TenantStatus.DELETED:
        tenant.deleted_at = None
        tenant.purge_after = None
    session.flush()
    audit.record(
        session,
        action=action,
        tenant_id=None,
        actor=actor,
        resource_type="tenant",
        resource_id=tenant.id,
        summary={"slug": tenant.slug, "status": [before.value, target.value]},
    )
    return tenant


def suspend(session: Session, actor: Actor, tenant_id: uuid.UUID, now: dt.datetime) -> Tenant:
    """Stop all access: its tokens and keys answer 403 TENANT_SUSPENDED; nothing is removed."""
    return _move(
        session, actor, get(session, tenant_id), TenantStatus.SUSPENDED, action="tenant.suspend", now=now
    )


def resume(session: Session, actor: Actor, tenant_id: uuid.UUID, now: dt.datetime) -> Tenant:
    """Lift a suspension, or restore a deleted tenant before its purge."""
    tenant = get(session, tenant_id)
    action = "tenant.restore" if tenant.status is TenantStatus.DELETED else "tenant.resume"
    return _move(session, actor, tenant, TenantStatus.ACTIVE, action=action, now=now)


def delete_tenant(session: Session, actor: Actor, tenant_id: uuid.UUID, now: dt.datetime) -> Tenant:
    """Mark deleted: access stops at once, the rows are purged after the grace period."""
    return _move(
        session, actor, get(session, tenant_id), TenantStatus.DELETED, action="tenant.delete", now=now
    )


def change(
    session: Session, actor: Actor, tenant_id: uuid.UUID, *, name: str | None, plan: str | None
) -> Tenant:
    tenant = get(session, tenant_id)
    changes: dict[str, list[str]] = {}
    if plan is not None:
        tier = check_plan(plan)
        if tier != tenant.plan:
            changes["plan"] = [tenant.plan.value, tier.value]
            tenant.plan = tier
    if name is not None:
        if not name.strip():
            raise InvalidInput("a tenant needs a name", code="NAME_REQUIRED", details={"name": name})
        if name.strip() != tenant.name:
            changes["name"] = [tenant.name, name.strip()]
            tenant.name = name.strip()
    session.flush()
    if changes:
        audit.record(
            session,
            action="tenant.update",
            tenant_id=None,
            actor=actor,
            resource_type="tenant",
            resource_id=tenant.id,
            summary=changes,
        )
    return tenant


@dataclass(frozen=True)
class Counts:
    users: int
    organizations: int
    projects: int
    api_keys: int
    """Keys not revoked."""


#: What `Counts` counts, by field: members (users), organizations, projects and API keys (not revoked ones:
#: appliance.db.tenant_counts.LIVE_ROWS).
_COUNTED: dict[str, Any] = {
    "users": Membership,
    "organizations": Organization,
    "projects": Project,
    "api_keys": ApiKey,
}
_LIVE: dict[str, Any] = {"api_keys": ApiKey.revoked_at.is_(None)}


def counts(session: Session, tenant_id: uuid.UUID) -> Counts:
    """How much a tenant holds (read inside its own scope: row-level security allows nothing else)."""
    with tenancy.inside(session, tenant_id):

        def n(field: str, model: Any) -> int:
            query = select(func.count()).select_from(model)
            if field in _LIVE:
                query = query.where(_LIVE[field])
            return int(session.scalar(query) or 0)

        return Counts(**{field: n(field, model) for field, model in _COUNTED.items()})


def counts_of(session: Session, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, Counts]:
    """`counts` for many tenants (a page of the tenant list) at once: one grouped query per table, over
    the named tenants only (see appliance.db.tenant_counts for how row-level security allows it)."""
    found = tenant_counts.count_rows(session, tenant_ids)
    tables = {field: model.__tablename__ for field, model in _COUNTED.items()}
    return {
        tenant: Counts(**{field: found[table].get(tenant, 0) for field, table in tables.items()})
        for tenant in tenant_ids
    }


def purge_due(session: Session, now: dt.datetime, actor: Actor | None = None) -> list[str]:
    """Remove, for good, every deleted tenant whose grace period has passed; returns their slugs.

    Runs as the schema owner (`appliance tenant purge`, whose operator is ``actor``, or the worker's daily
    task, with none): the audit trail is append-only for the app role, and a purge is the one time a
    tenant's records are removed."""
    due = list(
        session.scalars(
            select(Tenant)
            .where(Tenant.status == TenantStatus.DELETED, Tenant.purge_after <= now)
            .order_by(Tenant.slug)
        )
    )
    purged = []
    for tenant in due:
        with tenancy.inside(session, tenant.id):
            session.execute(delete(AuditLog).where(AuditLog.tenant_id == tenant.id))
        session.execute(delete(Tenant).where(Tenant.id == tenant.id))
        purged.append(tenant.slug)
        audit.record(
            session,
            action="tenant.purge",
            tenant_id=None,
            actor=actor,
            resource_type="tenant",
            resource_id=tenant.id,
            summary={"slug": tenant.slug},
        )
    return purged
