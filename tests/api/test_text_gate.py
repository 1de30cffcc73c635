"""Text no database can store (a NUL character, a lone surrogate) is refused at the edge with 422 naming the
field, in every string query parameter, path parameter and body field of every operation of the OpenAPI
document, on SQLite and on PostgreSQL alike (PostgreSQL answered 500 for a NUL in ``/projects?q=``, in a
login e-mail, in names and descriptions; SQLite stored it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.openapi_walk import admits_string, body_at, error, operations, string_fields
from tests.identity import Identity

NUL = "a\x00b"
LONE = "a\ud800b"


def _refused(response: Any, loc: list[Any], what: str) -> None:
    body = error(response, 422, what)
    assert body["code"] == "VALIDATION_FAILED", what
    assert body["details"]["fields"][0]["loc"] == [str(part) for part in loc], f"{what}: {body}"
    assert loc[-1] == "key" or str(loc[-1]) in body["message"], f"{what}: {body['message']}"


def test_every_text_field_refuses_what_no_database_stores(identity: Identity) -> None:
    acme = identity.tenant("acme")
    walked = {"query": 0, "path": 0, "body": 0}
    for op in operations(identity.app):
        headers = op.headers(identity, acme.owner.headers)
        for parameter in op.parameters("query"):
            if not admits_string(op, parameter):
                continue
            name = parameter["name"]
            for value in (NUL, "\x00"):
                response = identity.client.request(op.method, op.url(), params={name: value}, headers=headers)
                _refused(response, ["query", name], f"{op.label}?{name}={value!r}")
            walked["query"] += 1
        for parameter in op.parameters("path"):
            if not admits_string(op, parameter):
                continue
            name = parameter["name"]
            response = identity.client.request(op.method, op.url({name: "a%00b"}), headers=headers)
            _refused(response, ["path", name], f"{op.label} with a NUL in {name}")
            walked["path"] += 1
        schema = op.body_schema()
        if schema is None:
            continue
        for i, loc in enumerate(string_fields(op.document, schema)):
            for value in (NUL, LONE) if i == 0 else (NUL,):
                # json.dumps writes the NUL and the surrogate as \\u escapes, as any client would.
                content = json.dumps(body_at(loc, value))
                response = identity.client.request(
                    op.method,
                    op.url(),
                    content=content,
                    headers={**headers, "Content-Type": "application/json"},
                )
                _refused(response, ["body", *loc], f"{op.label} with {value!r} at {loc}")
            walked["body"] += 1
    # The walk reached each kind of input on many routes (it would pass vacuously on an empty document).
    assert walked["query"] >= 20, walked
    assert walked["path"] >= 1, walked
    assert walked["body"] >= 40, walked


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"name": "ok", "slug": "ok", "\\u0000": 1}', ["body", "\\u0000"]),
        ('{"name": "ok", "slug": "o\\u0000k"}', ["body", "slug"]),
        ('{"name": "\\udc00", "slug": "ok"}', ["body", "name"]),
        ('{"name": "\\ud83d", "slug": "ok"}', ["body", "name"]),
    ],
)
def test_field_names_and_lone_surrogates_are_named(
    identity: Identity, content: str, where: list[str]
) -> None:
    acme = identity.tenant("acme")
    response = identity.client.post(
        "/api/v1/organizations",
        content=content,
        headers={**acme.owner.headers, "Content-Type": "application/json"},
    )
    _refused(response, where, content)
    listed = identity.client.get("/api/v1/organizations", headers=acme.owner.headers).json()
    assert listed["items"] == []  # nothing was kept


def test_text_a_database_stores_passes_the_gate(identity: Identity) -> None:
    """Accents, emoji (sent as a surrogate pair, as JSON encoders do), tabs and new lines are text."""
    acme = identity.tenant("acme")
    name = "Équipe 😀\tß"
    content = json.dumps({"name": name, "slug": "equipe"})  # ensure_ascii: 😀 is sent as \\ud83d\\ude00
    assert "\\ud83d\\ude00" in content
    made = identity.client.post(
        "/api/v1/organizations",
        content=content,
        headers={**acme.owner.headers, "Content-Type": "application/json"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == name
    project = identity.client.post(
        "/api/v1/projects",
        json={"organization_id": made.json()["id"], "name": "p", "description": "line one\nline two"},
        headers=acme.owner.headers,
    )
    assert project.status_code == 201, project.text
    found = identity.client.get("/api/v1/projects", params={"q": "P"}, headers=acme.owner.headers)
    assert [p["description"] for p in found.json()["items"]] == ["line one\nline two"]
