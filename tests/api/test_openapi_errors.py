"""Every status the API answers is in its OpenAPI document: a walk over every operation provokes what every
request can meet on its way to a route (a body that is not JSON, another content type, a body over the limit,
no credential, the other kind of caller, an unknown id, a bad parameter) and checks that each answer's status
is documented for that operation, with the error envelope. The shared statuses that a walk cannot provoke
at will (503 from the door, 429, 500) are checked in the document itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends
from pydantic import BaseModel

from appliance.api import routing
from appliance.api.app import create_app
from appliance.api.auth import require
from appliance.api.openapi_errors import statuses
from tests.api.openapi_walk import Operation, operations
from tests.identity import Identity, identity_api
from tests.support import make_settings

LIMIT = 4096


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Identity]:
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", api={"max_body_bytes": LIMIT}) as ident:
        yield ident


def _provocations(
    op: Operation, identity: Identity, owner: dict[str, str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """What to send to ``op`` (a description and the request's arguments) to meet each shared refusal."""
    headers = op.headers(identity, owner)
    if op.spec.get("requestBody"):
        json_type = {**headers, "Content-Type": "application/json"}
        yield "a body that is not JSON", {"content": b"{not json", "headers": json_type}
        yield "a body that is not UTF-8", {"content": b'{"a": "\xff"}', "headers": json_type}
        yield (
            "another content type",
            {"content": b"name=x", "headers": {**headers, "Content-Type": "text/plain"}},
        )
        yield "a body over the limit", {"content": b" " * (LIMIT + 1), "headers": json_type}
        yield "an empty JSON body", {"json": {}, "headers": headers}
    if not op.public:
        yield "no credential", {"headers": {}}
        yield "a malformed credential", {"headers": {"Authorization": "Basic eA=="}}
        if op.requirement != "signed-in":  # the other kind of caller: a tenant's owner or an operator
            other = owner if op.operator else identity.operator.headers
            yield "the other kind of caller", {"headers": other}
    if op.parameters("path"):
        yield "an unknown id", {"headers": headers}
        yield "a malformed id", {"headers": headers, "url": op.url(dict.fromkeys(_path_names(op), "x"))}
    for parameter in op.parameters("query"):
        yield f"a bad {parameter['name']}", {"headers": headers, "params": {parameter["name"]: "\x00"}}
        yield f"a wrong {parameter['name']}", {"headers": headers, "params": {parameter["name"]: "-1" * 600}}


def _path_names(op: Operation) -> list[str]:
    return [p["name"] for p in op.parameters("path")]


def test_every_status_answered_is_documented(api: Identity) -> None:
    acme = api.tenant("acme")
    undocumented: list[str] = []
    provoked: set[int] = set()
    for op in operations(api.app):
        documented = {int(status) for status in op.spec["responses"]}
        for what, request in _provocations(op, api, acme.owner.headers):
            url = request.pop("url", op.url())
            response = api.client.request(op.method, url, **request)
            status = response.status_code
            provoked.add(status)
            if status not in documented:
                undocumented.append(f"{op.label} with {what}: {status} {response.text[:200]}")
            if status >= 400:
                error = response.json()["error"]
                assert set(error) == {"code", "message", "details", "request_id"}, f"{op.label}: {error}"
    assert undocumented == []
    # The walk met every shared refusal it provokes (it would pass vacuously if the refusals changed).
    assert {400, 401, 403, 404, 413, 415, 422} <= provoked, provoked


def test_every_operation_documents_the_shared_statuses_with_the_envelope(api: Identity) -> None:
    document = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 body is never sent
    checked = 0
    for path, entries in document["paths"].items():
        for method, spec in entries.items():
            expected = statuses(path, method, spec)
            assert 500 in expected
            if path.startswith("/api/"):
                assert {429, 503} <= expected, path  # rate limited, and refused at the door when busy
            documented = spec["responses"]
            missing = {str(s) for s in expected} - set(documented)
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"
            for status, response in documented.items():
                if int(status) < 400 or path.startswith("/health"):
                    continue  # a probe's 503 is its report, documented by the probe
                checked += 1
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, f"{method} {path} {status}"
                assert response["description"], f"{method} {path} {status}"
                if status in ("429", "503"):
                    assert "Retry-After" in response.get("headers", {}), f"{method} {path} {status}"
    assert checked > 400


class Thing(BaseModel):
    name: str


later = routing.router(prefix="/api/v1/things")


@later.post("/{thing_id}", status_code=201)
async def make_thing(
    thing_id: uuid.UUID, body: Thing, _: Annotated[Any, Depends(require("projects:write"))]
) -> Thing:
    """Make a thing."""
    return body


def test_an_operation_added_later_is_documented_too(tmp_path: Path) -> None:
    """The statuses come from each operation's shape, not from a list of routes: a new route is complete."""
    app = create_app(make_settings(tmp_path))
    app.include_router(later)
    responses = app.openapi()["paths"]["/api/v1/things/{thing_id}"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "503"} <= set(responses)
