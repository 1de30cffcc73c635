"""One error tree for the whole appliance.

Every edge (API, CLI, task wrapper, client) translates these once; services raise them and never build an
HTTP error themselves. Each error carries the fields that explain it, a stable ``code`` and a message that
names the bad value.

    ApplianceError
     ├── ConfigError            a settings file or variable is wrong
     ├── InvalidInput           a value given to the appliance is malformed (API: 422 or 400)
     │    └── MalformedRequest   the request itself cannot be read (bad JSON: 400)
     ├── NotFound               the thing named does not exist (or belongs to another tenant)
     ├── Conflict               a duplicate key or a stale state
     ├── Unauthenticated        no identity, or a tampered, expired or revoked one
     ├── Forbidden              an identity that may not do this
     │    └── PasswordChangeRequired  an account that must change its one-time password first
     ├── RateLimited            too many requests or failed logins (API: 429 with Retry-After)
     ├── PayloadTooLarge        a request body over the configured limit
     ├── Unavailable            a dependency (database, queue) is down
     └── OperationFailed        a command could not complete (a CLI step, a process)
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    """The root of every error the appliance raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        keep_changes: bool = False,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}
        #: The refusal recorded something that must outlive it (a failed login's audit record, the
        #: revocation of a reused refresh token's family): the session scope commits before re-raising.
        self.keep_changes = keep_changes

    def __str__(self) -> str:
        return self.message


class ConfigError(ApplianceError):
    """A settings file, key or environment variable is wrong."""

    code = "CONFIG_INVALID"


class InvalidInput(ApplianceError):
    """A value given to the appliance does not pass validation."""

    code = "VALIDATION_FAILED"


class MalformedRequest(InvalidInput):
    """The request cannot be read at all, such as a body that is not JSON."""

    code = "MALFORMED_REQUEST"


class NotFound(ApplianceError):
    """The named thing does not exist, or is not visible to the caller."""

    code = "NOT_FOUND"


class Conflict(ApplianceError):
    """A duplicate key or a change against a stale state."""

    code = "CONFLICT"


class Unauthenticated(ApplianceError):
    """The caller has no valid identity."""

    code = "UNAUTHENTICATED"


class Forbidden(ApplianceError):
    """The caller's identity may not do this."""

    code = "FORBIDDEN"


class PasswordChangeRequired(Forbidden):
    """The caller's account must change its password (a one-time password, or one reset by an operator)
    before it does anything else; an API key whose creator must is refused the same way."""

    code = "PASSWORD_CHANGE_REQUIRED"


class RateLimited(ApplianceError):
    """Too many requests (or failed logins) in the window; ``retry_after`` says when to try again."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, retry_after)


class PayloadTooLarge(ApplianceError):
    """A request body is larger than the configured limit."""

    code = "PAYLOAD_TOO_LARGE"


class Unavailable(ApplianceError):
    """A dependency such as the database or the queue does not answer, or the appliance is too busy to take
    the request now; ``retry_after`` says when to try again.

    ``message`` is fit for any client; ``reason`` is what the dependency said (the driver's message, which
    names hosts, ports and roles): it goes to the log and to the admin's commands, never to an API client."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 5, reason: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.message} ({self.reason})" if self.reason else self.message


class OperationFailed(ApplianceError):
    """An operator command could not complete."""

    code = "OPERATION_FAILED"
