"""The API under an OpenAPI-driven fuzzer (schemathesis): every operation of the API's own OpenAPI document,
called over a real socket with generated valid and invalid input, as the tenant owner (tenant routes), an
operator (platform routes) or nobody (public routes), on SQLite and on PostgreSQL connected as the app role.

Every answer must be no server error (no 5xx), have a status the document lists for that operation, and a
body that conforms to the document's schema for that status (the error envelope included).

So that the cases reach past "not found", path parameters and a body's organization are often the ids of
real resources (seeded first; operators' changes go to another tenant than the owner's), and string values
are often taken from a list of known troublemakers (NUL, escapes, right-to-left marks, long text). The run
is deterministic (derandomized generation, no example database) so that CI sees the same cases every time;
the example count keeps each database's run near a minute on a 2-core machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.openapi_walk import Operation, admits_string, operations, seed, string_fields
from tests.api.test_isolation import _kind
from tests.identity import Identity, Member, TenantHandle

#: Generated cases per operation and mode (valid, invalid); the coverage phase adds its boundary cases.
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
#: Strings that broke or could break something once: text no database stores, escapes, injections.
TROUBLE = [
    "\x00",
    "a\x00b",
    "%00",
    "\\u0000",
    "' OR '1'='1' --",
    "../../etc/passwd",
    "\u202etxt.exe",
    "😀 Équipe ß",
    "x" * 5000,
    " ",
    "",
    "null",
    "-1",
]


@dataclass
class Callers:
    """The credentials each operation is called with, signed in again if a case ended their session (the
    fuzzer calls /auth/logout too)."""

    identity: Identity
    tenant: TenantHandle
    by_label: dict[str, Operation] = field(default_factory=dict)

    def headers(self, case: Case[Any]) -> dict[str, str]:
        op = self._operation(case)
        if op.public or not op.requirement:
            return {}
        return self._current(op).headers

    def _operation(self, case: Case[Any]) -> Operation:
        # The operation the case was made for (a case may use another method: the fuzzer tries those too).
        return self.by_label[f"{case.operation.method.upper()} {case.operation.path}"]

    def _current(self, op: Operation) -> Member:
        return self.identity.operator if op.operator else self.tenant.owner

    def after(self, case: Case[Any], status: int) -> None:
        op = self._operation(case)
        if status != 401 or op.public or not op.requirement:
            return
        member = self._current(op)
        if self.identity.client.get("/api/v1/auth/me", headers=member.headers).status_code == 401:
            tenant = None if op.operator else self.tenant.slug
            member.token = self.identity.sign_in(member.email, member.password, tenant).token


@dataclass
class World:
    callers: Callers
    ids: dict[str, str]
    """A real resource's id by path parameter name."""
    text_fields: set[tuple[str, str]]
    """Every string query parameter and top-level string body field, as (location, name)."""


@pytest.fixture
def world(identity: Identity) -> World:
    acme = identity.tenant("acme")
    by_kind = seed(identity, acme)
    # Operators suspend, change and delete tenants: let them do it to another one than the owner's.
    by_kind["tenants"] = str(identity.tenant("globex").id)
    every = operations(identity.app, prefix="/")
    ids = {}
    for op in every:
        for parameter in op.parameters("path"):
            if _kind(op.path) in by_kind:
                ids[parameter["name"]] = by_kind[_kind(op.path)]
    ids["organization_id"] = by_kind["organizations"]
    text: set[tuple[str, str]] = set()
    for op in every:
        text |= {("query", p["name"]) for p in op.parameters("query") if admits_string(op, p)}
        body = op.body_schema()
        if body is not None:
            text |= {("body", str(loc[0])) for loc in string_fields(op.document, body) if len(loc) == 1}
    return World(Callers(identity, acme, {op.label: op for op in every}), ids, text)


@pytest.fixture
def fuzz_schema(identity: Identity, world: World) -> Any:
    dictionaries: dict[str, Any] = {"trouble": {"values": TROUBLE}}
    parameters: dict[str, Any] = {}
    for name, value in world.ids.items():
        dictionaries[name] = {"values": [value]}
        parameters[f"path.{name}"] = {"dictionary": name, "probability": 0.75}
    for location, name in world.text_fields:
        parameters[f"{location}.{name}"] = {"dictionary": "trouble", "probability": 0.2}
    for name in ("organization_id", "parent_id"):
        parameters[f"body.{name}"] = {"dictionary": "organization_id", "probability": 0.75}
        parameters[f"query.{name}"] = {"dictionary": "organization_id", "probability": 0.5}
    config = SchemathesisConfig.from_dict(
        {
            "seed": 16,
            "dictionaries": dictionaries,
            "parameters": parameters,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
                "dictionaries": {"string": {"dictionary": "trouble", "probability": 0.2}},
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    url = str(identity.client.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    schema.config.update(base_url=url)
    return schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
def test_the_api_holds_under_the_fuzzer(case: Case[Any], world: World) -> None:
    response = case.call(headers=world.callers.headers(case))
    world.callers.after(case, response.status_code)
    case.validate_response(response, checks=CHECKS)
