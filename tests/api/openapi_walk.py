"""The operations of the API's own OpenAPI document, with who may call each: what the walks over every route
(cursors, text, documented statuses, the fuzzer) iterate, so that a new route is walked without a line of
its own."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.models import AppIncident, WebhookAttempt, WebhookDelivery
from appliance.services.monitoring import checks as app_checks
from appliance.services.monitoring.checks import CheckRow
from tests.api.test_isolation import _create
from tests.api.test_routes import _effective, _route_requirements
from tests.identity import Identity, TenantHandle


@dataclass(frozen=True)
class Operation:
    method: str
    """In upper case."""
    path: str
    """The template, /api/v1/projects/{project_id}."""
    spec: dict[str, Any]
    requirement: str
    """What the route declares: a permission, ``operator:<permission>``, ``signed-in`` or ``public``."""
    document: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def operator(self) -> bool:
        return self.requirement.startswith("operator:")

    @property
    def public(self) -> bool:
        return self.requirement == "public"

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return resolve(self.document, media["schema"]) if media else None

    def url(self, values: dict[str, str] | None = None) -> str:
        """The path with each parameter replaced by ``values[name]`` (a random UUID where none is given)."""
        given = values or {}
        return re.sub(r"\{([^}]+)\}", lambda m: given.get(m.group(1), str(uuid.uuid4())), self.path)

    def headers(self, identity: Identity, owner_headers: dict[str, str]) -> dict[str, str]:
        """The credentials of a caller the route admits: none, an operator's, or the tenant owner's."""
        if self.public:
            return {}
        return identity.operator.headers if self.operator else owner_headers


def seed(identity: Identity, acme: TenantHandle) -> dict[str, str]:
    """Two or more of everything a list shows (so that a page of one has a next cursor), and the ids of one
    of each, by the path segment that names its kind."""
    ids: dict[str, str] = {"tenants": str(acme.id)}
    for n in (1, 2):
        org = _create(identity, acme, "/api/v1/organizations", {"name": f"Org {n}", "slug": f"org-{n}"})
        project = _create(identity, acme, "/api/v1/projects", {"organization_id": org["id"], "name": f"p{n}"})
        key = _create(identity, acme, "/api/v1/api-keys", {"name": f"k{n}", "scopes": ["projects:read"]})
        hook = _create(identity, acme, "/api/v1/webhooks/endpoints", {"url": f"https://example.com/h{n}"})
        app = _create(identity, acme, "/api/v1/apps", {"name": f"a{n}", "url": f"https://example.com/a{n}"})
    role = _create(identity, acme, "/api/v1/roles", {"name": "auditor", "permissions": ["audit:read"]})
    ids |= {
        "organizations": org["id"],
        "projects": project["id"],
        "api-keys": key["id"],
        "roles": role["id"],
        "webhooks/endpoints": hook["id"],
        "apps": app["id"],
    }
    beating = _create(identity, acme, "/api/v1/apps", {"name": "beats", "kind": "heartbeat"})
    ids["heartbeats"] = beating["heartbeat_url"].rsplit("/", 1)[1]
    member = identity.member(acme, "dev@acme.test", "member")
    if member.membership_id is not None:
        ids["members"] = str(member.membership_id)
    ids["operators"] = str(identity.new_operator().user_id)
    messages = identity.client.get("/api/v1/webhooks/messages", headers=acme.owner.headers).json()
    ids["webhooks/messages"] = messages["items"][0]["id"]
    jobs = identity.client.get("/api/v1/jobs", headers=acme.owner.headers).json()
    ids["jobs"] = jobs["items"][0]["id"]
    now = utcnow().replace(microsecond=0)
    app_id = uuid.UUID(app["id"])
    with identity.database.session_scope() as session:
        tenancy.set_tenant(session, acme.id)
        app_checks.record(
            session,
            acme.id,
            [CheckRow(app_id, now - dt.timedelta(minutes=i), True, 200, 1.0) for i in range(3)],
        )
        for days in (2, 1):
            session.add(
                AppIncident(
                    tenant_id=acme.id, app_id=app_id, started_at=now - dt.timedelta(days=days), reason="down"
                )
            )
        # Two attempts of the newest message to the endpoint, so that the delivery logs have a next page.
        delivery_id = session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.message_id == uuid.UUID(ids["webhooks/messages"]),
                WebhookDelivery.endpoint_id == uuid.UUID(hook["id"]),
            )
        ).one()
        for n in (1, 2):
            session.add(
                WebhookAttempt(
                    tenant_id=acme.id,
                    delivery_id=delivery_id,
                    attempt=n,
                    status_code=500,
                    created_at=now - dt.timedelta(minutes=3 - n),
                )
            )
    return ids


def operations(app: FastAPI, prefix: str = "/api/v1") -> list[Operation]:
    """Every operation of ``app``'s OpenAPI document under ``prefix``."""
    requirements: dict[tuple[str, str], str] = {}
    for route in _effective(app.routes):
        found = _route_requirements(route)
        for method in route.methods:
            requirements[(method, route.path)] = found[0] if found else ""
    document = app.openapi()
    found_operations = []
    for path, entries in document["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, spec in entries.items():
            key = (method.upper(), path)
            found_operations.append(
                Operation(method.upper(), path, spec, requirements.get(key, ""), document)
            )
    assert len(found_operations) > 40
    return found_operations


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a top-level ``$ref`` followed."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def string_fields(
    document: dict[str, Any], schema: dict[str, Any], loc: tuple[str | int, ...] = (), depth: int = 0
) -> Iterator[tuple[str | int, ...]]:
    """Every place in a body of ``schema`` where a string can go (a list's first item stands for all)."""
    schema = resolve(document, schema)
    if depth > 6:
        return
    if _admits(schema, "string"):
        yield loc
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        resolved = resolve(document, option)
        if resolved.get("type") != "string":  # the string itself was yielded above
            yield from string_fields(document, resolved, loc, depth + 1)
    for name, sub in schema.get("properties", {}).items():
        yield from string_fields(document, sub, (*loc, name), depth + 1)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from string_fields(document, items, (*loc, 0), depth + 1)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from string_fields(document, extra, (*loc, "key"), depth + 1)


def _admits(schema: dict[str, Any], kind: str) -> bool:
    if schema.get("type") == kind or (isinstance(schema.get("type"), list) and kind in schema["type"]):
        return True
    return any(option.get("type") == kind for option in schema.get("anyOf", []) + schema.get("oneOf", []))


def admits_string(op: Operation, parameter: dict[str, Any]) -> bool:
    """Whether ``parameter`` of ``op`` takes a string (alone or as one of its options)."""
    schema = resolve(op.document, parameter.get("schema", {}))
    options = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(resolve(op.document, o).get("type") == "string" for o in options)


def body_at(loc: tuple[str | int, ...], value: Any) -> Any:
    """The smallest JSON document with ``value`` at ``loc``."""
    if not loc:
        return value
    head, *rest = loc
    inner = body_at(tuple(rest), value)
    return [inner] if isinstance(head, int) else {head: inner}


def error(response: Any, status: int, what: str = "") -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    body: dict[str, Any] = response.json()["error"]
    return body
