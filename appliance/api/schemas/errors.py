"""The error envelope, so that the OpenAPI document describes every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    """Stable UPPER_SNAKE identifier of the error."""
    message: str
    """For a person; names the bad value."""
    details: dict[str, Any]
    """Machine-readable context (for 422: {"fields": [{"loc": [...], "msg": "..."}]})."""
    request_id: str | None
    """The X-Request-ID of the request, for support and logs."""


class ErrorEnvelope(BaseModel):
    error: ErrorBody


#: What an error status means where the route says no more.
DESCRIPTIONS: dict[int, str] = {
    403: (
        "Forbidden: the credential may not do this (PERMISSION_DENIED, TENANT_SUSPENDED, ...), or its "
        "account must change its password first (PASSWORD_CHANGE_REQUIRED; for an API key, its creator's "
        "account): until then only POST /api/v1/auth/password, GET /api/v1/auth/me and "
        "POST /api/v1/auth/logout answer."
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting these error statuses with the envelope."""
    return {
        status: {
            "model": ErrorEnvelope,
            **({"description": DESCRIPTIONS[status]} if status in DESCRIPTIONS else {}),
        }
        for status in statuses
    }
