"""Every route of /api/v1 declares what it needs (a permission, an operator permission, a signed-in caller,
or public), and the OpenAPI document describes its security and errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from appliance.api.app import create_app
from appliance.api.auth import REQUIREMENT
from tests.support import make_settings


def _route_requirements(route: Any) -> list[str]:
    """What a route declares: through its dependencies, or on its endpoint (a hot route that checks the
    permission itself with appliance.api.auth.permitted)."""
    found = list(_requirements(route.dependant))
    on_endpoint = getattr(route.endpoint, REQUIREMENT, None)
    return [*found, on_endpoint] if on_endpoint else found


def _requirements(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        requirement = getattr(sub.call, REQUIREMENT, None)
        if requirement is not None:
            yield requirement
        yield from _requirements(sub)


def _effective(routes: list[Any]) -> Iterator[Any]:
    """Routes as served: FastAPI 0.165 keeps included routers lazily (private API; this test fails, rather
    than passes vacuously, if an upgrade changes it: see the count below)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "effective_candidates"):
            for candidate in route.effective_candidates():
                if hasattr(candidate, "effective_candidates"):
                    yield from _effective([candidate])
                elif candidate.dependant is not None:
                    yield candidate


def _api_routes(tmp_path: Path) -> list[Any]:
    app = create_app(make_settings(tmp_path))
    return [r for r in _effective(app.routes) if r.path.startswith("/api/v1")]


def test_every_route_declares_exactly_one_requirement(tmp_path: Path) -> None:
    routes = _api_routes(tmp_path)
    assert len(routes) > 40
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in routes if not _route_requirements(r)]
    assert undeclared == [], f"routes without a declared permission: {undeclared}"
    several = {
        f"{sorted(r.methods)} {r.path}": sorted(set(_route_requirements(r)))
        for r in routes
        if len(set(_route_requirements(r))) > 1
    }
    assert several == {}, f"routes declaring more than one requirement: {several}"


def test_tenant_routes_name_known_permissions(tmp_path: Path) -> None:
    from appliance.models import ALL_PERMISSIONS

    named = {req for r in _api_routes(tmp_path) for req in _route_requirements(r)}
    tenant = {n for n in named if ":" in n and not n.startswith("operator:")}
    assert tenant <= ALL_PERMISSIONS, tenant - ALL_PERMISSIONS


def test_operator_routes_read_with_read_permissions_and_change_with_write_ones(tmp_path: Path) -> None:
    """So that a read-only operator reads every platform page and changes nothing."""
    from appliance.services import platform_permissions

    wrong = {}
    for route in _api_routes(tmp_path):
        for requirement in _route_requirements(route):
            if not requirement.startswith("operator:"):
                continue
            permission = requirement.removeprefix("operator:")
            reads = route.methods <= {"GET", "HEAD"}
            if permission not in (platform_permissions.READ if reads else platform_permissions.WRITE):
                wrong[f"{sorted(route.methods)} {route.path}"] = permission
    assert wrong == {}, wrong


def test_the_openapi_document_describes_security_and_errors(tmp_path: Path) -> None:
    """Every route but the public ones (sign-in, refresh, a heartbeat whose token is the credential) names
    a security scheme and documents 401; every route has a description."""
    app = create_app(make_settings(tmp_path))
    public = {
        (method.lower(), route.path)
        for route in _effective(app.routes)
        if "public" in _route_requirements(route)
        for method in route.methods
    }
    assert ("post", "/api/v1/auth/login") in public
    doc: dict[str, Any] = app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)
    checked = 0
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no description"
            if (method, path) in public:
                assert not operation.get("security"), f"{method.upper()} {path} is public"
                continue
            checked += 1
            assert operation.get("security"), f"{method.upper()} {path} documents no security scheme"
            assert "401" in operation["responses"], f"{method.upper()} {path} does not document 401"
    assert checked > 40
