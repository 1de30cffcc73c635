"""Every status an operation can answer, in the OpenAPI document, from the mechanisms every request passes.

A route documents the errors of its own domain (``404`` for an id in its body, ``409`` for a duplicate
name). What every request meets on its way to a route is documented here, once, from the shape of each
operation in the generated document, so that a new route is complete without a line of its own:

* every operation: ``500``; ``503`` (the door refuses what the threads cannot take, ``OVERLOADED``, and a
  dependency that is down is ``SERVICE_UNAVAILABLE``), but the health probes, which are never refused;
* with a body: ``400`` (not JSON), ``413`` (over ``api.max_body_bytes``), ``415`` (not
  ``application/json``), ``422``;
* with parameters: ``422`` (a value of the wrong type, or text no database can store:
  appliance.api.text_gate; a cursor that is not one of the list's: ``INVALID_CURSOR``);
* with a path parameter: ``404`` (nothing by that id, or another tenant's);
* with a security requirement: ``401`` and ``403`` (a permission, the kind of caller, a one-time password
  still to change), and for ``POST`` ``409`` and ``422`` (an ``Idempotency-Key`` reused with another body,
  or still in progress; a malformed key);
* every operation of ``/api/v1``: ``429`` (every route there is rate limited: appliance.api.auth).

Each status is documented with the error envelope (appliance.api.schemas.errors) and, for ``429`` and
``503``, the ``Retry-After`` header. tests/api/test_openapi_errors.py provokes each of these on every
operation and checks that the answer is documented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI

from appliance.api.schemas.errors import ErrorEnvelope

ENVELOPE = "#/components/schemas/ErrorEnvelope"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"

#: What each status means wherever it is documented here (the codes are the stable ones of API.md).
DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: the body is not JSON (MALFORMED_JSON) or cannot be read (MALFORMED_REQUEST).",
    401: "Not authenticated: no credential, or an expired, revoked or tampered one "
    "(WWW-Authenticate: Bearer).",
    403: "Authenticated but not allowed: a permission the caller does not hold (PERMISSION_DENIED), the "
    "other kind of caller (OPERATOR_REQUIRED, TENANT_ROUTE), or a one-time password still to change "
    "(PASSWORD_CHANGE_REQUIRED).",
    404: "Not found: nothing by that id in the caller's tenant (another tenant's resource is not found too).",
    409: "Conflict: a duplicate, a stale state, or an Idempotency-Key used with another body "
    "(IDEMPOTENCY_KEY_REUSED) or still in progress (IDEMPOTENCY_IN_PROGRESS).",
    413: "The body is larger than the appliance accepts (PAYLOAD_TOO_LARGE).",
    415: "The body is not application/json (UNSUPPORTED_MEDIA_TYPE).",
    422: "Validation failed (VALIDATION_FAILED, naming each field in details.fields; text with a NUL "
    "character or a lone surrogate is refused too), or a cursor this list did not issue (INVALID_CURSOR).",
    429: "Rate limited (RATE_LIMITED): retry after Retry-After seconds.",
    500: "Internal error (INTERNAL_ERROR): no detail is given; the request id leads to the logs.",
    503: "Unavailable: the appliance is busy (OVERLOADED) or a dependency is down; retry after Retry-After "
    "seconds.",
}

_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
}
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The statuses the shared mechanisms can answer for ``operation`` (``method`` in lower case)."""
    found = {500}
    if not path.startswith("/health"):
        found.add(503)
    if path.startswith("/api/"):
        found.add(429)
    parameters = operation.get("parameters", [])
    if "requestBody" in operation:
        found |= {400, 413, 415, 422}
    if parameters:
        found.add(422)
    if any(p.get("in") == "path" for p in parameters):
        found.add(404)
    if operation.get("security"):
        found |= {401, 403}
        if method == "post":
            found |= {409, 422}
    return found


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every operation's shared statuses documented (in place; idempotent)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorEnvelope" not in schemas:
        envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(envelope.pop("$defs", {}))
        schemas["ErrorEnvelope"] = envelope
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(path, method, operation)):
                _document(responses, status)
    if _FASTAPI_422 not in orjson.dumps(document.get("paths", {})).decode():
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
    return document


def _document(responses: dict[str, Any], status: int) -> None:
    entry = responses.setdefault(str(status), {})
    if not entry.get("description") or entry["description"] in _PHRASES:
        entry["description"] = DESCRIPTIONS[status]
    content = entry.setdefault("content", {}).setdefault("application/json", {})
    if content.get("schema", {}).get("$ref") in (None, _FASTAPI_422):
        # FastAPI's own 422 body ({"detail": [...]}) is never sent: every error is the envelope.
        content["schema"] = {"$ref": ENVELOPE}
    if status in (429, 503):
        entry.setdefault("headers", {}).update(_RETRY_AFTER)


#: FastAPI's default descriptions (the status's phrase), replaced by ours.
_PHRASES = frozenset(
    {
        "Bad Request",
        "Unauthorized",
        "Forbidden",
        "Not Found",
        "Conflict",
        "Request Entity Too Large",
        "Content Too Large",
        "Unsupported Media Type",
        "Unprocessable Entity",
        "Unprocessable Content",
        "Validation Error",
        "Too Many Requests",
        "Internal Server Error",
        "Service Unavailable",
    }
)


def install(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document complete its operations' statuses (once, when first asked)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
