"""The operations of the API's own OpenAPI document, with who may call each: what the walks over every route
(cursors, text, documented statuses, the fuzzer) iterate, so that a new route is walked without a line of
its own."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from tests.api.test_routes import _effective, _route_requirements
from tests.identity import Identity


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
