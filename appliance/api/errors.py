"""Every error the API returns, in the one envelope of API.md, mapped from the appliance's error tree once."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from appliance import errors
from appliance.logs import request_id_var

log = logging.getLogger(__name__)

#: Error class → HTTP status. The most specific class wins (the table is searched along the MRO).
STATUS: dict[type[errors.ApplianceError], int] = {
    errors.MalformedRequest: 400,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    # PASSWORD_CHANGE_REQUIRED: on every route but /auth/password, /auth/me and /auth/logout.
    errors.PasswordChangeRequired: 403,
    errors.RateLimited: 429,
    errors.PayloadTooLarge: 413,
    errors.Unavailable: 503,
    errors.ConfigError: 500,
    errors.OperationFailed: 500,
    errors.ApplianceError: 500,
}

#: Codes for errors raised by the framework itself (routing, body parsing).
HTTP_CODES: dict[int, str] = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": request_id_var.get(),
        }
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = orjson.dumps(envelope(code, message, details))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def status_for(exc: errors.ApplianceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def appliance_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApplianceError)
    return rendered(exc)


def rendered(exc: errors.ApplianceError) -> Response:
    """The response of an appliance error: the envelope, its status and headers (5xx details are logged,
    never sent)."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.Unavailable | errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        # Configuration and unexpected failures are logged in full but never shown to the client.
        log.error("request failed: %s", exc, extra={"code": exc.code})
        if not isinstance(exc, errors.Unavailable):
            return error_response(status, "INTERNAL_ERROR", "The appliance could not complete the request.")
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = HTTP_CODES.get(
        status, HTTPStatus(status).name if status in HTTPStatus._value2member_map_ else "ERROR"
    )
    if status == 404:
        message = f"No route matches {request.method} {request.url.path}."
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    elif status == 413:
        message = str(exc.detail)
    else:
        message = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return error_response(status, code, message, headers=dict(exc.headers or {}))


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        detail = next(p for p in problems if p.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return error_response(
            400, "MALFORMED_JSON", f"The request body is not valid JSON: {detail}.".replace(": .", ".")
        )
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type and any(p["loc"][:1] == ("body",) for p in problems):
        return error_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content type {content_type!r} is not accepted; send application/json.",
        )
    fields = [{"loc": [str(part) for part in p["loc"]], "msg": p["msg"], "type": p["type"]} for p in problems]
    first = fields[0]
    where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
    return error_response(
        422, "VALIDATION_FAILED", f"Invalid value for {where}: {first['msg']}.", {"fields": fields}
    )


def install(app: FastAPI) -> None:
    """Register the handlers; unhandled exceptions are answered by the request middleware."""
    app.add_exception_handler(errors.ApplianceError, appliance_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
