"""Who is acting: the authenticated caller of a request (or an operator at the command line), as services
see it. Built by the API's authentication (appliance.api.auth) or by the CLI; never by services themselves."""

from __future__ import annotations

import os
import pwd
import socket
import uuid
from dataclasses import dataclass, field

from appliance.services.access import platform_permissions


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
    scopes as far as its creator still holds them: appliance.services.identity.api_keys); an operator acts on
    platform routes only, and its ``permissions`` are platform permissions
    (appliance.services.access.platform_permissions), never a tenant's."""

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
    name: str | None = None
    """Who acted, by name, where no user or key id says it: ``cli:<OS user>@<host>`` at the command line
    (:func:`cli_name`). The audit log records it."""
    must_change_password: bool = False
    """The account must change its password before anything else (for a key: its creator's account);
    the API refuses every route but /auth/password, /auth/me and /auth/logout (appliance.api.auth)."""
    key_creator_id: uuid.UUID | None = None
    """For an API key: the member whose current permissions bound it
    (appliance.services.identity.api_keys)."""
    key_scopes: frozenset[str] = frozenset()
    """For an API key: the scopes it was given, of which ``permissions`` is what its creator still holds."""

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


def cli_name() -> str:
    """``cli:<OS user>@<host>``: who runs this command, as the audit log names them. The user is the
    process's effective one, from the password database (not from $USER, which anyone can set); under sudo
    the invoking user follows: ``cli:root@host (sudo by alice)``."""
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a bare container)
        user = f"uid {uid}"
    name = f"cli:{user}@{socket.gethostname()}"
    invoker = os.environ.get("SUDO_USER")
    if invoker and invoker != user:
        name += f" (sudo by {invoker})"
    return name


def cli_operator(user_id: uuid.UUID | None = None) -> Actor:
    """The operator at the command line, a full one: the audit log names the OS user and host
    (:func:`cli_name`) and the command line as the source. Every CLI command that changes something acts
    as this actor."""
    return Actor(
        user_id=user_id,
        tenant_id=None,
        permissions=platform_permissions.ALL,
        operator=True,
        request=RequestInfo(user_agent="appliance-cli"),
        name=cli_name(),
    )
