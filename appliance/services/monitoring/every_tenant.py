"""Every tenant's monitored apps, as operators see them: a page across tenants (or one tenant's), each app
with its tenant's slug and the start of its open incident; one app by id with its checks, incidents and
uptime. Reads only: an operator changes a tenant's apps by signing in to it.

``apps`` is under FORCEd row-level security and the app role sees one tenant's rows at a time. On
PostgreSQL a page's ids and tenants come from the owner's ``apps_ledger_page`` and an app's tenant from
``apps_tenant_of`` (migration 0014: ids, tenants and times only); the rows are then read inside each
tenant's scope (tenancy.inside) with the tenant's own services, as appliance.services.jobs.queries does for
jobs. On SQLite (no row-level security) the operator's platform scope reads the ids directly. With a tenant
named, the page is read inside that tenant (TENANT_NOT_FOUND for an unknown one).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.models import App, AppCheck, AppIncident
from appliance.services.common import every_tenant, pages, pagination
from appliance.services.monitoring import apps
from appliance.services.monitoring import checks as app_checks
from appliance.services.monitoring import status as app_status
from appliance.services.tenancy import tenants

#: Operators' page of apps, newest first: (created_at, id). Its own list: a tenant's cursor is refused.
CURSORS = pagination.Keyset("platform_apps", dt.datetime, uuid.UUID)

_LEDGER_PAGE = every_tenant.ledger_statement("apps_ledger_page", "status", App.__table__.c.created_at.type)
_TENANT_OF = every_tenant.tenant_of_statement("apps_tenant_of")


@dataclass(frozen=True)
class AppRow:
    """An app with what operators see beside it."""

    app: App
    tenant_slug: str
    open_incident_since: dt.datetime | None
    """The start of its open incident (None when it has none)."""


def page(
    session: Session,
    *,
    tenant_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[AppRow], str | None]:
    """Every tenant's apps (or ``tenant_id``'s), newest first; only those with ``status`` if given."""
    pages.check_limit(limit)
    before: tuple[Any, ...] = (None, None) if cursor is None else CURSORS.decode(cursor)
    where = [] if status is None else [App.status == status]
    if tenant_id is not None:
        tenant = tenants.get(session, tenant_id)  # TENANT_NOT_FOUND before anything is read
        with tenancy.inside(session, tenant.id):
            keys = every_tenant.table_keys(session, App, where, before, limit + 1)
    elif every_tenant.postgres(session):
        params = {"status": status, "before_at": before[0], "before_id": before[1], "limit": limit + 1}
        keys = every_tenant.ledger_keys(session, _LEDGER_PAGE, params)
    else:  # platform scope: every tenant's rows
        keys = every_tenant.table_keys(session, App, where, before, limit + 1)
    shown, next_cursor = every_tenant.cut(keys, limit, CURSORS)
    return _rows(session, [(app_id, tenant) for app_id, tenant, _ in shown]), next_cursor


def _rows(session: Session, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[AppRow]:
    """The apps of ``keys`` (id, tenant) in that order, each read inside its tenant; one removed in
    between is left out."""
    by_tenant = every_tenant.by_tenant(keys)
    found: dict[uuid.UUID, App] = {}
    since: dict[uuid.UUID, dt.datetime] = {}
    for tenant_id, ids in by_tenant.items():
        with tenancy.inside(session, tenant_id):
            found.update((app.id, app) for app in session.scalars(select(App).where(App.id.in_(ids))))
            since.update(_open_incidents(session, ids))
    slugs = every_tenant.slugs(session, by_tenant)
    return [
        AppRow(found[app_id], slugs.get(tenant_id, ""), since.get(app_id))
        for app_id, tenant_id in keys
        if app_id in found
    ]


def _open_incidents(session: Session, app_ids: list[uuid.UUID]) -> dict[uuid.UUID, dt.datetime]:
    """The start of each app's open incident (the newest, the one a recovery closes), inside its tenant."""
    rows = session.execute(
        select(AppIncident.app_id, func.max(AppIncident.started_at).label("started"))
        .where(AppIncident.app_id.in_(app_ids), AppIncident.ended_at.is_(None))
        .group_by(AppIncident.app_id)
    )
    return {row.app_id: row.started for row in rows}


# --------------------------------------------------------------------------- one app


def tenant_of(session: Session, app_id: uuid.UUID) -> uuid.UUID:
    """The tenant of an app; APP_NOT_FOUND (as the tenant's route answers) for an unknown id."""
    tenant_id = every_tenant.tenant_of(session, _TENANT_OF, App.tenant_id, App.id, app_id)
    if tenant_id is None:
        raise apps.not_found(app_id)
    return tenant_id


@contextmanager
def _inside_app(session: Session, app_id: uuid.UUID) -> Iterator[uuid.UUID]:
    tenant_id = tenant_of(session, app_id)
    with tenancy.inside(session, tenant_id):
        yield tenant_id


def get(session: Session, app_id: uuid.UUID) -> AppRow:
    """One app of any tenant, as in :func:`page`."""
    rows = _rows(session, [(app_id, tenant_of(session, app_id))])
    if not rows:
        raise apps.not_found(app_id)
    return rows[0]


def checks_page(
    session: Session,
    app_id: uuid.UUID,
    *,
    ok: bool | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[AppCheck], str | None]:
    """An app's checks, newest first, as its tenant reads them."""
    with _inside_app(session, app_id):
        return app_checks.checks_page(session, app_id, ok=ok, limit=limit, cursor=cursor)


def incidents_page(
    session: Session, app_id: uuid.UUID, *, limit: int = pagination.DEFAULT_LIMIT, cursor: str | None = None
) -> tuple[list[AppIncident], str | None]:
    """An app's incidents, newest first, as its tenant reads them."""
    with _inside_app(session, app_id):
        return app_status.incidents_page(session, app_id, limit=limit, cursor=cursor)


def uptime(session: Session, app_id: uuid.UUID, now: dt.datetime) -> list[app_checks.Uptime]:
    """An app's uptime over each window, as its tenant reads it."""
    with _inside_app(session, app_id):
        return app_checks.uptime(session, app_id, now)
