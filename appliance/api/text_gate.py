"""The gate every request's text passes before its route sees it: no value a database cannot store.

PostgreSQL's text cannot hold the NUL character and no database can be given a lone surrogate
(appliance.services.common.text); a request carrying one in a path segment, a query parameter or anywhere in
its JSON body is refused here with 422 ``VALIDATION_FAILED`` naming the field, the way a value of the wrong
type is, on SQLite as on PostgreSQL. The route class (appliance.api.routing) puts the gate in front of every
route, so a new route is covered without a line of its own.

The common request pays almost nothing: the path and the query string are searched for a NUL (``%00``) as
they arrive, and the body for a ``\\u`` escape of one of those characters; only a request that has one is
decoded and walked to name the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request

from appliance.services.common.text import unstorable

#: A JSON escape of NUL or of a surrogate (paired or not: the walk tells them apart).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|d[89a-f][0-9a-f]{2})", re.IGNORECASE)
#: At most this many problems are named in one answer.
MAX_NAMED = 20

Problem = dict[str, Any]


async def problems(request: Request, *, has_body: bool) -> list[Problem]:
    """The request's values that no database can store, as validation errors (``loc``, ``msg``, ``type``);
    empty for nearly every request."""
    found: list[Problem] = []
    scope = request.scope
    path: str = scope["path"]
    if "\x00" in path or not path.isascii():
        for name, value in scope.get("path_params", {}).items():
            if isinstance(value, str) and (why := unstorable(value)):
                found.append(_problem(("path", name), why))
    if b"%00" in scope["query_string"]:
        for name, value in request.query_params.multi_items():
            if why := unstorable(name):
                found.append(_problem(("query", _printable(name)), f"the parameter's name: {why}"))
            elif why := unstorable(value):
                found.append(_problem(("query", name), why))
    if has_body and "json" in request.headers.get("content-type", ""):
        body = await request.body()
        if b"\\u" in body and _SUSPECT_ESCAPE.search(body):
            try:
                document = await request.json()  # kept on the request: the route does not parse it again
            except ValueError:
                document = None  # the route answers 400 for a body that is not JSON
            found.extend(_problem(("body", *loc), why) for loc, why in _walk(document, ()))
    return found[:MAX_NAMED]


def _problem(loc: tuple[str | int, ...], why: str) -> Problem:
    return {"type": "string_unstorable", "loc": loc, "msg": why, "input": None}


def _walk(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a decoded JSON document that cannot be stored, with where it is."""
    if isinstance(value, str):
        if why := unstorable(value):
            yield loc, why
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            if why := unstorable(key):
                yield (*loc, _printable(key)), f"the field's name: {why}"
            else:
                yield from _walk(item, (*loc, key))


def _printable(name: str) -> str:
    """``name`` with each character that cannot be stored written as its JSON escape (the answer must be
    storable and encodable itself)."""
    return "".join(f"\\u{ord(c):04x}" if unstorable(c) else c for c in name)
