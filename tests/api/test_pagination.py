"""Every cursor a client sends back is decoded and checked by one function
(appliance.services.common.pagination): every list of the OpenAPI document (each GET with a ``cursor``
parameter) answers a cursor it did not issue with 422 ``INVALID_CURSOR`` naming the parameter, never 500 (a
forged cursor once reached the database with keys of the wrong type, count or time zone). Runs on SQLite and
on PostgreSQL as the app role."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from tests.api.openapi_walk import Operation, error, operations, seed
from tests.api.test_isolation import _kind
from tests.identity import Identity


def forge(document: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


@dataclass(frozen=True)
class Issued:
    """A cursor a list issued itself."""

    operation: Operation
    cursor: str
    items: str
    """The list's item schema (two lists showing the same items may take each other's cursors)."""


def _items(operation: Operation) -> str:
    schema: dict[str, Any] = operation.spec["responses"]["200"]["content"]["application/json"]["schema"]
    return str(schema.get("$ref", schema))


def _forgeries(own: str | None) -> dict[str, str]:
    """Cursors no list issued: garbage, and the list's own cursor with its key broken in each way."""
    forged = {
        "empty": "",
        "not base64": "!!!~~~",
        "base64 of nothing known": "bm9wZQ",
        "a JSON list": forge([]),
        "null": forge(None),
        "the old shape, no keys": forge({"k": [], "s": "created_at"}),
        "the old shape, a naive time": forge({"k": [{"t": "2026-01-01T00:00:00"}, {"u": str(uuid.uuid4())}]}),
    }
    if own is None:
        return forged
    document = orjson.loads(base64.urlsafe_b64decode(own + "=" * (-len(own) % 4)))
    key: list[Any] = document["k"]

    def but(**change: Any) -> str:
        return forge({**document, **change})

    forged |= {
        "empty keys": but(k=[]),
        "one key too many": but(k=[*key, key[-1]]),
        "one key too few": but(k=key[:-1]) if len(key) > 1 else but(k=[*key, *key]),
        "keys not a list": but(k={"0": key[0]}),
        "another list": but(l="somewhere-else"),
        "another sort": but(s="-nothing"),
        "an extra field": but(extra=1),
        "a NUL in the key": but(k=["x\x00", *key[1:]]),
    }
    for i, part in enumerate(key):
        for what, wrong in {
            "a number": 7,
            "null": None,
            "a list": [part],
            "an unknown tag": {"x": "y"},
            "a string for a tagged value": "2026-01-01T00:00:00+00:00",
            "a naive time": {"t": "2026-01-01T00:00:00"},
            "a time that is not one": {"t": "yesterday"},
            "a time out of range in UTC": {"t": "0001-01-01T00:00:00+05:00"},
            "an id that is not one": {"u": "not-a-uuid"},
        }.items():
            if wrong == part or (isinstance(part, str) and isinstance(wrong, str)):
                continue  # a string key may be any string
            forged[f"part {i}: {what}"] = but(k=[*key[:i], wrong, *key[i + 1 :]])
    return forged


def test_every_list_refuses_every_cursor_it_did_not_issue(identity: Identity) -> None:
    acme = identity.tenant("acme")
    identity.tenant("globex")
    ids = seed(identity, acme)
    lists = [
        op
        for op in operations(identity.app)
        if op.method == "GET" and any(p["name"] == "cursor" for p in op.parameters("query"))
    ]
    assert len(lists) >= 20

    def url(op: Operation) -> str:
        values = {}
        for parameter in op.parameters("path"):
            kind = _kind(op.path)
            assert kind in ids, f"{op.label}: no {kind} to list (add one to openapi_walk.seed)"
            values[parameter["name"]] = ids[kind]
        return op.url(values)

    def call(op: Operation, **params: Any) -> Any:
        return identity.client.get(url(op), params=params, headers=op.headers(identity, acme.owner.headers))

    issued: list[Issued] = []
    for op in lists:
        first = call(op, limit=1)
        assert first.status_code == 200, f"{op.label}: {first.text}"
        cursor = first.json()["next_cursor"]
        if cursor is not None:
            assert call(op, limit=1, cursor=cursor).status_code == 200, op.label  # its own cursor works
            issued.append(Issued(op, cursor, _items(op)))
    # Most lists have a next page here, so the forgeries below break keys each list really issued.
    assert len(issued) >= len(lists) - 3, [
        op.label for op in lists if op not in {i.operation for i in issued}
    ]

    for op in lists:
        own = next((i.cursor for i in issued if i.operation == op), None)
        forged = _forgeries(own)
        for other in issued:
            if other.items != _items(op):
                forged[f"a cursor of {other.operation.label}"] = other.cursor
        for what, cursor in forged.items():
            refused = error(call(op, cursor=cursor), 422, f"{op.label} with {what}")
            assert refused["code"] == "INVALID_CURSOR", f"{op.label} with {what}: {refused}"
            assert refused["details"]["parameter"] == "cursor"
            assert "cursor" in refused["message"]
