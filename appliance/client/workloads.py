"""The operators' calls on the platform's workloads (every tenant's jobs, monitored apps and webhook
endpoints), mixed into appliance.client.api.ApiClient, whose transport they go through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

API = "/api/v1"
PAGE = 200  # the API's largest page

JSON = dict[str, Any]


class Transport(Protocol):
    """What these calls need of the client: one call, and a list route's pages."""

    async def request(
        self, method: str, path: str, *, json: Any = None, params: Any = None, timeout: float | None = None
    ) -> Any: ...

    def pages(self, path: str, params: JSON | None = None) -> AsyncIterator[list[JSON]]: ...

    async def first_page(
        self, path: str, params: JSON | None = None, limit: int = PAGE
    ) -> tuple[list[JSON], str | None]: ...


class WorkloadCalls:
    # --- jobs (operators) -----------------------------------------------------------------------------

    def platform_job_pages(
        self: Transport, *, state: str | None = None, kind: str | None = None, tenant_id: str | None = None
    ) -> AsyncIterator[list[JSON]]:
        """Every tenant's jobs and the platform's own (or one tenant's), newest first, page by page."""
        params = {k: v for k, v in (("state", state), ("kind", kind), ("tenant_id", tenant_id)) if v}
        return self.pages(f"{API}/platform/jobs", params)

    async def retry_job(self: Transport, job_id: str) -> JSON:
        """Run a dead or cancelled job again (Conflict JOB_NOT_RETRYABLE otherwise)."""
        return dict(await self.request("POST", f"{API}/platform/jobs/{job_id}/retry"))

    async def cancel_job(self: Transport, job_id: str) -> JSON:
        """Cancel a queued job (Conflict JOB_NOT_CANCELLABLE once it runs or has finished)."""
        return dict(await self.request("POST", f"{API}/platform/jobs/{job_id}/cancel"))

    # --- monitored apps (operators) --------------------------------------------------------------------

    def platform_app_pages(
        self: Transport, *, tenant_id: str | None = None, status: str | None = None
    ) -> AsyncIterator[list[JSON]]:
        """Every tenant's monitored apps (or one tenant's), each with its ``tenant_id`` and
        ``tenant_slug`` and ``open_incident_since`` (None when it has no open incident)."""
        params = {k: v for k, v in (("tenant_id", tenant_id), ("status", status)) if v}
        return self.pages(f"{API}/platform/apps", params)

    async def platform_app_checks(self: Transport, app_id: str, limit: int = 60) -> list[JSON]:
        """An app's newest checks, newest first."""
        items, _ = await self.first_page(f"{API}/platform/apps/{app_id}/checks", limit=limit)
        return items

    async def platform_app_incidents(self: Transport, app_id: str, limit: int = 20) -> list[JSON]:
        """An app's newest incidents (an open one has no ``ended_at``), newest first."""
        items, _ = await self.first_page(f"{API}/platform/apps/{app_id}/incidents", limit=limit)
        return items

    async def platform_app_uptime(self: Transport, app_id: str) -> JSON:
        """An app's uptime: ``{"app_id", "windows": {name: {"checks", "failures", "percent"}}}``."""
        return dict(await self.request("GET", f"{API}/platform/apps/{app_id}/uptime"))

    # --- webhooks (operators) --------------------------------------------------------------------------

    def platform_endpoint_pages(
        self: Transport, *, tenant_id: str | None = None, enabled: bool | None = None
    ) -> AsyncIterator[list[JSON]]:
        """Every tenant's webhook endpoints (or one tenant's), each with ``tenant_id``, ``tenant_slug``,
        ``attempts_24h`` and ``success_rate`` (share of the last 24 hours' attempts that succeeded, None
        without any)."""
        params: JSON = {"tenant_id": tenant_id} if tenant_id else {}
        if enabled is not None:
            params["enabled"] = "true" if enabled else "false"
        return self.pages(f"{API}/platform/webhooks/endpoints", params)

    async def platform_endpoint_attempts(self: Transport, endpoint_id: str, limit: int = 100) -> list[JSON]:
        """An endpoint's delivery log, newest first: each attempt's ``message_id``, ``event_type``,
        ``status_code``, ``latency_ms``, ``error`` and ``response_excerpt``."""
        items, _ = await self.first_page(
            f"{API}/platform/webhooks/endpoints/{endpoint_id}/attempts", limit=limit
        )
        return items

    async def set_endpoint_enabled(self: Transport, endpoint_id: str, enabled: bool) -> JSON:
        """Turn an endpoint on (also one the appliance disabled after days of failures) or off."""
        return dict(
            await self.request(
                "PATCH", f"{API}/platform/webhooks/endpoints/{endpoint_id}", json={"enabled": enabled}
            )
        )

    async def replay_endpoint_failed(self: Transport, endpoint_id: str, since: str) -> JSON:
        """Send again every delivery to the endpoint that failed since ``since`` (ISO 8601):
        ``{"replayed": n, "more": bool}``."""
        return dict(
            await self.request(
                "POST", f"{API}/platform/webhooks/endpoints/{endpoint_id}/replay", json={"since": since}
            )
        )

    async def replay_endpoint_message(self: Transport, endpoint_id: str, message_id: str) -> JSON:
        """Send one message to the endpoint again, with the same webhook-id: ``{"replayed": 1, ...}``."""
        path = f"{API}/platform/webhooks/endpoints/{endpoint_id}/messages/{message_id}/replay"
        return dict(await self.request("POST", path))
