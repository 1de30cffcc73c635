"""Who is acting: the authenticated caller of a request (or an operator at the command line), as services
see it. Built by the API's authentication (appliance.api.auth) or by the CLI; never by services themselves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from appliance.services import platform_permissions


@dataclass(frozen=True)
class RequestInfo:
    """Where a change came from, for the audit log."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Actor:
    """A user (by access token) or an API key, acting inside one tenant; or a platform operator.

    ``permissions`` are what the actor may do in ``tenant_id`` (the role's permissions, or the key's
    scopes); an operator acts on platform routes only, and its ``permissions`` are platform permissions
    (appliance.services.platform_permissions), never a tenant's."""

    user_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    permissions: frozenset[str] = frozenset()
    operator: bool = False
    api_key_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    """The refresh-token family behind the access token (None for API keys and the CLI)."""
    plan: str | None = None
    """The tenant's plan tier (free, team, business, enterprise): its rate limits."""
    request: RequestInfo = field(default_factory=RequestInfo)

    def __post_init__(self) -> None:
        if self.operator == (self.tenant_id is not None):
            raise ValueError("an actor acts inside exactly one tenant, or is a platform operator")

    @property
    def principal(self) -> str:
        """A stable name of the caller for rate limits and idempotency keys: ``user:<id>`` or ``key:<id>``."""
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"user:{self.user_id}"

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def cli_operator(user_id: uuid.UUID | None = None) -> Actor:
    """The operator at the command line, a full one (the audit log names the local console as the
    source)."""
    return Actor(
        user_id=user_id,
        tenant_id=None,
        permissions=platform_permissions.ALL,
        operator=True,
        request=RequestInfo(user_agent="appliance-cli"),
    )
