"""What the console is connected to: one target's API client and, on the same machine, its supervisor."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.client.api import ApiClient
from appliance.client.credentials import CredentialStore
from appliance.client.supervisor_async import AsyncSupervisorClient
from appliance.client.targets import Target

#: The permission that makes an operator a full one; without it the console opens read-only.
WRITE_PERMISSION = "tenants:manage"


@dataclass
class Connection:
    target: Target
    api: ApiClient
    supervisor: AsyncSupervisorClient | None

    @classmethod
    def open(cls, target: Target, store: CredentialStore | None = None, timeout: float = 5.0) -> Connection:
        api = ApiClient(target.api_url, target=target.name, store=store, timeout=timeout)
        supervisor = (
            AsyncSupervisorClient(target.control_socket, timeout=timeout) if target.control_socket else None
        )
        return cls(target, api, supervisor)
