"""Typed errors of the web API client: the API's error envelope mapped back to exceptions.

ApiError                      any answer the API refused, or could not give
├── ApiUnavailable            nothing answered, a timeout, a 502/503/504, or an answer that is not ours
├── Unauthorized              401: no credential, a wrong password, an expired or revoked session
├── Forbidden                 403: signed in, but the role may not do this (or the tenant is suspended)
├── NotFound                  404: the thing is gone (or was never there)
├── Conflict                  409: a duplicate slug or email, a stale state
├── InvalidRequest            400/413/415/422: the request was wrong; `details` names the fields
└── RateLimited               429: `retry_after` seconds to wait
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The API refused a request (the envelope's code and message), or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "ERROR",
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class ApiUnavailable(ApiError):
    """Nothing answered at the API's address, it timed out, or a proxy said the API is down."""


class Unauthorized(ApiError):
    """No valid credential: a wrong password, or a session that expired or was ended."""


class Forbidden(ApiError):
    """Signed in, but not allowed (the permission is in `details`, when the API names it)."""


class NotFound(ApiError):
    """The resource does not exist (any more)."""


class Conflict(ApiError):
    """A duplicate, or a change that no longer fits the resource's state."""


class InvalidRequest(ApiError):
    """The request was malformed or failed validation."""


class RateLimited(ApiError):
    """Too many requests: wait `retry_after` seconds."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    502: ApiUnavailable,
    503: ApiUnavailable,
    504: ApiUnavailable,
}


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def from_response(status: int, body: object, retry_after: str | None = None) -> ApiError:
    """The exception for an error answer; `body` is the decoded JSON (the envelope) or None."""
    kind = _BY_STATUS.get(status, ApiUnavailable if status >= 500 else ApiError)
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        return kind(f"the API answered HTTP {status}", status=status, retry_after=_retry_after(retry_after))
    message = str(envelope.get("message") or f"HTTP {status}")
    details = envelope.get("details")
    return kind(
        message,
        status=status,
        code=str(envelope.get("code") or "ERROR"),
        details=details if isinstance(details, dict) else {},
        request_id=envelope.get("request_id"),
        retry_after=_retry_after(retry_after),
    )
