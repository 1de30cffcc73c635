"""Monitored applications: registered, listed, read, changed and deleted by tenants; beaten by heartbeat
apps; read by the monitor.

A URL is checked when it is set (scheme, length, refused addresses: appliance.services.outbound.guard) and
again at every probe. A heartbeat app's token names its tenant (``hb_<tenant id hex><secret>``), so the public
heartbeat route scopes its session to that tenant before it looks for the token: row-level security needs
no policy that would let a request see another tenant's apps.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.errors import InvalidInput, NotFound
from appliance.models import App, AppKind, Tenant, TenantStatus
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.outbound import guard as outbound
from appliance.services.tenancy.organizations import tenant_of

TOKEN_PREFIX = "hb_"  # noqa: S105  (a prefix, not a secret)
#: The tenant's apps, newest first: (created_at, id).
CURSORS = pagination.Keyset("apps", dt.datetime, uuid.UUID)
#: The fields a tenant sets, in the order of the audit summary.
FIELDS = (
    "name",
    "kind",
    "url",
    "interval",
    "timeout",
    "expected_status",
    "keyword",
    "grace",
    "fail_threshold",
    "recover_threshold",
    "enabled",
)

#: What a new app has unless told otherwise.
DEFAULTS: dict[str, Any] = {
    "name": "",
    "kind": AppKind.HTTP.value,
    "url": None,
    "interval": 60,
    "timeout": 10.0,
    "expected_status": 200,
    "keyword": None,
    "grace": 0,
    "fail_threshold": 3,
    "recover_threshold": 2,
    "enabled": True,
}


@dataclass(frozen=True)
class AppRules:
    """What the operator allows: the shortest interval, and the addresses probes may reach."""

    min_interval: int
    policy: outbound.AddressPolicy

    @classmethod
    def of(cls, settings: Settings) -> AppRules:
        return cls(
            settings.monitoring.min_interval, outbound.AddressPolicy.of(settings.outbound.allow_networks)
        )


def not_found(app_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"app {str(app_id)!r} was not found", code="APP_NOT_FOUND", details={"app_id": str(app_id)}
    )


def _invalid(field: str, value: Any, message: str, code: str) -> InvalidInput:
    return InvalidInput(
        f"{message} (got {value!r}).",
        code=code,
        details={"fields": [{"loc": ["body", field], "msg": message}], field: value},
    )


def _check(values: dict[str, Any], rules: AppRules) -> None:
    """Refuse a combination of fields that cannot be monitored (each field's own range is the schema's)."""
    if not str(values["name"]).strip():
        raise _invalid("name", values["name"], "an app needs a name", "NAME_REQUIRED")
    if values["kind"] == AppKind.HTTP:
        if not values["url"]:
            raise _invalid("url", values["url"], "an http app needs a url", "URL_REQUIRED")
        outbound.check_url(values["url"], rules.policy, field_name="url")
    elif values["url"]:
        raise _invalid(
            "url", values["url"], "a heartbeat app has no url: it calls its own", "URL_NOT_ALLOWED"
        )
    if values["interval"] < rules.min_interval:
        raise _invalid(
            "interval",
            values["interval"],
            f"the interval must be at least {rules.min_interval} seconds",
            "INTERVAL_TOO_SHORT",
        )
    if values["kind"] == AppKind.HTTP and values["timeout"] > values["interval"]:
        raise _invalid(
            "timeout",
            values["timeout"],
            "the timeout must not be longer than the interval",
            "TIMEOUT_TOO_LONG",
        )


def new_token(tenant_id: uuid.UUID) -> str:
    return f"{TOKEN_PREFIX}{tenant_id.hex}{secrets.token_urlsafe(24)}"


def get(session: Session, app_id: uuid.UUID) -> App:
    app = session.get(App, app_id)
    if app is None:
        raise not_found(app_id)
    return app


def create(session: Session, actor: Actor, rules: AppRules, **fields: Any) -> App:
    """A new app of the actor's tenant; ``fields`` are those of :data:`FIELDS` (kind, url, interval, ...)."""
    values = DEFAULTS | fields
    values["name"] = str(values["name"]).strip()
    _check(values, rules)
    tenant_id = tenant_of(actor)
    app = App(id=uuid.uuid4(), tenant_id=tenant_id, created_by=actor.user_id, **values)
    if app.kind == AppKind.HEARTBEAT:
        app.heartbeat_token = new_token(tenant_id)
    session.add(app)
    session.flush()
    audit.record(
        session,
        action="app.create",
        tenant_id=tenant_id,
        actor=actor,
        resource_type="app",
        resource_id=app.id,
        summary={name: values[name] for name in FIELDS},
    )
    return app


def change(session: Session, actor: Actor, rules: AppRules, app_id: uuid.UUID, **fields: Any) -> App:
    """Change the given fields of an app (the kind too: a heartbeat app gets a token when it becomes one)."""
    app = get(session, app_id)
    if "name" in fields and fields["name"] is not None:
        fields["name"] = str(fields["name"]).strip()
    current = {name: getattr(app, name) for name in FIELDS}
    wanted = current | fields
    if wanted["kind"] == AppKind.HEARTBEAT and "url" not in fields:
        wanted["url"] = None
    changes = {name: [current[name], wanted[name]] for name in FIELDS if wanted[name] != current[name]}
    if not changes:
        return app
    _check(wanted, rules)
    for name in changes:
        setattr(app, name, wanted[name])
    if app.kind == AppKind.HEARTBEAT and app.heartbeat_token is None:
        app.heartbeat_token = new_token(app.tenant_id)
    elif app.kind == AppKind.HTTP:
        app.heartbeat_token = None
    session.flush()
    audit.record(
        session,
        action="app.update",
        tenant_id=app.tenant_id,
        actor=actor,
        resource_type="app",
        resource_id=app.id,
        summary=changes,
    )
    return app


def delete(session: Session, actor: Actor, app_id: uuid.UUID) -> None:
    """Delete an app with its checks, rollups and incidents."""
    app = get(session, app_id)
    session.delete(app)
    session.flush()
    audit.record(
        session,
        action="app.delete",
        tenant_id=app.tenant_id,
        actor=actor,
        resource_type="app",
        resource_id=app.id,
        summary={"name": app.name, "kind": app.kind, "url": app.url},
    )


def list_page(
    session: Session,
    *,
    status: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[App], str | None]:
    """The tenant's apps, newest first; only those with ``status`` if given."""
    keyset = (App.created_at, App.id)
    query = select(App)
    if status is not None:
        query = query.where(App.status == status)
    if cursor is not None:
        query = pagination.after(query, keyset, CURSORS.decode(cursor), True)
    rows = list(session.scalars(pagination.ordered(query, keyset, True).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = CURSORS.encode([rows[-1].created_at, rows[-1].id])
    return rows, next_cursor


def beat(session: Session, token: str, now: dt.datetime | None = None) -> None:
    """Record a heartbeat of the app whose token this is (HEARTBEAT_NOT_FOUND for any other string)."""
    tenant_id = _token_tenant(token)
    tenancy.set_tenant(session, tenant_id)
    app_id = session.scalars(
        select(App.id).where(App.heartbeat_token == token, App.kind == AppKind.HEARTBEAT.value)
    ).first()
    if app_id is None:
        raise _unknown_token()
    # updated_at names the last change of the app's settings, not the last beat: kept as it is.
    session.execute(
        update(App).where(App.id == app_id).values(last_beat_at=now or utcnow(), updated_at=App.updated_at)
    )


def _token_tenant(token: str) -> uuid.UUID:
    head = token.removeprefix(TOKEN_PREFIX)[:32]
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise _unknown_token()
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        raise _unknown_token() from None


def _unknown_token() -> NotFound:
    # The token is never echoed: it is a credential.
    return NotFound("no app has this heartbeat URL", code="HEARTBEAT_NOT_FOUND")


# --------------------------------------------------------------------------- the monitor's reads


def tenant_ids(session: Session, *, active_only: bool = True) -> list[uuid.UUID]:
    """Tenants whose apps are monitored: the active ones (a suspended or deleted tenant's are not); or
    every tenant (the cleanup of old results)."""
    query = select(Tenant.id)
    if active_only:
        query = query.where(Tenant.status == TenantStatus.ACTIVE)
    return list(session.scalars(query))


#: The columns the monitor reads of each enabled app.
MONITORED_COLUMNS = (
    App.id,
    App.tenant_id,
    App.kind,
    App.url,
    App.interval,
    App.timeout,
    App.expected_status,
    App.keyword,
    App.grace,
    App.fail_threshold,
    App.recover_threshold,
    App.status,
    App.last_beat_at,
    App.created_at,
)


def monitored(session: Session) -> list[dict[str, Any]]:
    """The enabled apps of the session's tenant, as dicts keyed by column name."""
    rows = session.execute(select(*MONITORED_COLUMNS).where(App.enabled.is_(True))).all()
    names = [column.key for column in MONITORED_COLUMNS]
    return [dict(zip(names, row, strict=True)) for row in rows]


def last_beats(session: Session, app_ids: list[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
    """When each of these apps of the session's tenant last beat."""
    rows = session.execute(select(App.id, App.last_beat_at).where(App.id.in_(app_ids))).all()
    return {row.id: row.last_beat_at for row in rows}
