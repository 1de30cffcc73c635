"""Tenants of the console's appliance with their owners signed in, so that tests make real data (apps,
webhook endpoints, events) through the tenant's own API, as a customer would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.console.conftest import RunningAppliance, set_password
from tests.identity import bearer

POLL_S = 0.5  # between two looks at the tenant's API while waiting: 120 a minute, under its plan's limit


@dataclass(frozen=True)
class Owner:
    """A tenant, and its owner's session on the tenant's API."""

    tenant_id: str
    slug: str
    api_url: str
    token: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request as the owner (poll with wait_for(interval=POLL_S): the API limits the rate)."""
        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            return http.request(method, path, headers=bearer(self.token), **kwargs)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to `path` and return what was created."""
        response = self.call("POST", path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


def tenant_with_owner(appliance: RunningAppliance, prefix: str) -> Owner:
    """A new tenant (`prefix-xxxxxx`) whose owner has chosen a password and signed in. On the team plan:
    300 requests a minute, room for a test that polls the tenant's API (the free plan allows 60)."""
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    email = f"owner@{slug}.test"
    created = appliance.create_tenant(slug, plan="team", owner_email=email)
    token = set_password(appliance.api_url, email, created["owner"]["one_time_password"])
    return Owner(str(created["id"]), slug, appliance.api_url, token)
