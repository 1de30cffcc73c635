"""Every route of /api/v1 declares what it needs (a permission, an operator permission, a signed-in caller,
or public), and the OpenAPI document describes its security and errors."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from appliance.api.app import create_app
from appliance.api.auth import REQUIREMENT
from appliance.api.routing import ONE_HOP
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
    from appliance.services.access import platform_permissions

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


def _session_dependencies(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", "")
        if name.endswith("_session"):
            yield name
        yield from _session_dependencies(sub)


def test_every_route_with_a_session_is_served_in_one_hop(tmp_path: Path) -> None:
    """A route that takes a database session must run, commit and answer in one call on one thread
    (appliance.api.routing): served in several thread-pool calls, a request held its connection and its
    locks while it queued for the next thread, and a burst froze the process."""
    routes = _api_routes(tmp_path)
    with_session = [r for r in routes if any(_session_dependencies(r.dependant))]
    assert len(with_session) > 40
    not_one_hop = [
        f"{sorted(r.methods)} {r.path}" for r in with_session if not getattr(r.endpoint, ONE_HOP, False)
    ]
    assert not_one_hop == []
    # And no route runs blocking work on FastAPI's own thread pool: a plain `def` endpoint is one-hop.
    plain = [f"{sorted(r.methods)} {r.path}" for r in routes if not inspect.iscoroutinefunction(r.endpoint)]
    assert plain == []


def _blocking_dependencies(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        call = sub.call
        if inspect.isfunction(call) and not (
            inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
        ):
            yield call.__qualname__
        yield from _blocking_dependencies(sub)


def test_no_dependency_runs_on_fastapis_thread_pool(tmp_path: Path) -> None:
    """FastAPI runs a plain ``def`` dependency in its own thread pool, outside the API's bounded one: every
    dependency is ``async`` (blocking work belongs in the one-hop route)."""
    blocking = {name for r in _api_routes(tmp_path) for name in _blocking_dependencies(r.dependant)}
    assert blocking == set()
