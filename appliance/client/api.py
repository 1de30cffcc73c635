"""Asynchronous client of the appliance's web API (`/api/v1`, see API.md), for the console and for users.

Errors come back as the typed exceptions of `appliance.client.errors`. With a `CredentialStore`, a session
survives restarts: the access token is refreshed when it is about to end (or is refused), and the store
is updated; a refused refresh is `Unauthorized` (sign in again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from appliance.client.credentials import Credential, CredentialsError, CredentialStore
from appliance.client.errors import ApiError, ApiUnavailable, Unauthorized, from_response
from appliance.client.workloads import API, JSON, PAGE, WorkloadCalls

REFRESH_MARGIN_S = 30.0
#: The doctor waits up to 15 s for a check, in two waves: the API answers within about 30 s at worst.
DOCTOR_TIMEOUT_S = 45.0


class ApiClient(WorkloadCalls):
    """One appliance's API. `target` names the saved session in `store` (if any)."""

    def __init__(
        self,
        base_url: str,
        *,
        target: str = "local",
        store: CredentialStore | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "appliance-console",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.target, self.store = target, store
        self.credential: Credential | None = store.get(target) if store is not None else None
        self.store_problem = ""
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
        )
        self._refreshing = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- transport ------------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(f"the API at {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"cannot reach the API at {self.base_url}: {exc}") from exc

    @staticmethod
    def _decoded(response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)  # 10,000 jobs are 5 MB: about 3x as fast as json's
        except ValueError:
            return None

    def _check(self, response: httpx.Response) -> Any:
        body = self._decoded(response)
        if response.is_success:
            return body
        if response.is_redirect:
            raise ApiUnavailable(
                f"the API at {self.base_url} redirected to {response.headers.get('location', '?')}: "
                "use that address in the target"
            )
        raise from_response(response.status_code, body, response.headers.get("retry-after"))

    async def request(
        self, method: str, path: str, *, json: Any = None, params: Any = None, timeout: float | None = None
    ) -> Any:
        """One authenticated call; a token that has ended is refreshed once and the call repeated.
        ``timeout`` replaces the client's for this call (a route known to take longer)."""
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        await self._fresh_token()
        response = await self._send(method, path, json=json, params=params, headers=self._auth(), **extra)
        if response.status_code == 401 and self.credential is not None:
            await self._refresh(self.credential.access_token)
            response = await self._send(method, path, json=json, params=params, headers=self._auth(), **extra)
        return self._check(response)

    def _auth(self) -> dict[str, str]:
        if self.credential is None:
            return {}
        return {"Authorization": f"Bearer {self.credential.access_token}"}

    # --- sessions -------------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.credential is not None

    @property
    def credential_email(self) -> str | None:
        return self.credential.email if self.credential is not None else None

    def _remember(self, tokens: JSON, email: str) -> None:
        self.credential = Credential(
            email=email,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            expires_at=time.time() + float(tokens["expires_in"]),
        )
        self._save(self.credential)

    def forget(self) -> None:
        self.credential = None
        self._save(None)

    def _save(self, credential: Credential | None) -> None:
        """Keep the session in the store; a store that cannot be written leaves it in memory only, and
        `store_problem` says why (the caller shows it)."""
        if self.store is None:
            return
        try:
            self.store.put(self.target, credential)
            self.store_problem = ""
        except (CredentialsError, OSError) as exc:
            self.store_problem = f"the session is not saved: {exc}"

    async def login(self, email: str, password: str, mfa_code: str | None = None) -> JSON:
        """Sign in (an operator's account: no tenant); the answer lists the permissions held."""
        body: JSON = {"email": email, "password": password}
        if mfa_code:
            body["mfa_code"] = mfa_code
        tokens = self._check(await self._send("POST", f"{API}/auth/login", json=body))
        self._remember(tokens, email)
        return dict(tokens)

    async def logout(self) -> None:
        if self.credential is not None:
            with contextlib.suppress(ApiError):  # the session is forgotten here either way
                await self.request("POST", f"{API}/auth/logout")
        self.forget()

    async def _fresh_token(self) -> None:
        credential = self.credential
        if credential is not None and credential.expires_at - time.time() < REFRESH_MARGIN_S:
            await self._refresh(credential.access_token)

    async def _refresh(self, stale: str) -> None:
        async with self._refreshing:
            credential = self.credential
            if credential is None or credential.access_token != stale:
                return  # another call refreshed it meanwhile
            response = await self._send(
                "POST", f"{API}/auth/refresh", json={"refresh_token": credential.refresh_token}
            )
            if response.status_code in (401, 403):
                self.forget()
                error = from_response(response.status_code, self._decoded(response))
                raise Unauthorized(f"the session ended ({error.message}): sign in again", status=401)
            self._remember(self._check(response), credential.email)

    async def change_password(self, current: str, new: str) -> None:
        """Replace the signed-in user's password (the API ends the user's other sessions)."""
        await self.request(
            "POST", f"{API}/auth/password", json={"current_password": current, "new_password": new}
        )

    async def me(self) -> JSON:
        return dict(await self.request("GET", f"{API}/auth/me"))

    # --- platform -------------------------------------------------------------------------------------

    async def health(self) -> tuple[JSON, float]:
        """The full health report (also when it says down) and the round trip in milliseconds."""
        started = time.perf_counter()
        response = await self._send("GET", "/health")
        latency = (time.perf_counter() - started) * 1000
        body = self._decoded(response)
        if isinstance(body, dict) and "checks" in body:
            return body, latency
        raise from_response(response.status_code, body, response.headers.get("retry-after"))

    async def doctor(self) -> JSON:
        """The doctor's report, run by the API process: ``{"status", "checked_at", "findings": [{"check",
        "status", "finding", "hint"}, ...]}`` (status ok, warn, fail or skip; needs platform:health)."""
        return dict(await self.request("GET", f"{API}/platform/doctor", timeout=DOCTOR_TIMEOUT_S))

    async def metrics(self) -> str:
        """The Prometheus text of the API (loopback, or an operator's token)."""
        await self._fresh_token()
        response = await self._send("GET", "/metrics", headers=self._auth())
        if not response.is_success:
            raise from_response(response.status_code, self._decoded(response))
        return response.text

    async def pages(self, path: str, params: JSON | None = None) -> AsyncIterator[list[JSON]]:
        """Every page of a list route, largest pages first to last."""
        query: JSON = {**(params or {}), "limit": PAGE}
        while True:
            page = await self.request("GET", path, params=query)
            yield list(page["items"])
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    async def first_page(
        self, path: str, params: JSON | None = None, limit: int = PAGE
    ) -> tuple[list[JSON], str | None]:
        page = await self.request("GET", path, params={**(params or {}), "limit": limit})
        return list(page["items"]), page.get("next_cursor")

    # --- tenants (operators) --------------------------------------------------------------------------

    def tenant_pages(self, status: str | None = None) -> AsyncIterator[list[JSON]]:
        return self.pages(f"{API}/tenants", {"status": status} if status else None)

    async def tenant(self, tenant_id: str) -> JSON:
        return dict(await self.request("GET", f"{API}/tenants/{tenant_id}"))

    async def tenant_part(self, tenant_id: str, part: str) -> list[JSON]:
        """The first page of one tenant's members, organizations or api-keys."""
        items, _ = await self.first_page(f"{API}/tenants/{tenant_id}/{part}")
        return items

    async def create_tenant(self, slug: str, name: str, plan: str, owner_email: str | None) -> JSON:
        body: JSON = {"slug": slug, "name": name, "plan": plan}
        if owner_email:
            body["owner_email"] = owner_email
        return dict(await self.request("POST", f"{API}/tenants", json=body))

    async def change_tenant(
        self, tenant_id: str, *, name: str | None = None, plan: str | None = None
    ) -> JSON:
        body = {k: v for k, v in (("name", name), ("plan", plan)) if v is not None}
        return dict(await self.request("PATCH", f"{API}/tenants/{tenant_id}", json=body))

    async def suspend_tenant(self, tenant_id: str) -> JSON:
        return dict(await self.request("POST", f"{API}/tenants/{tenant_id}/suspend"))

    async def resume_tenant(self, tenant_id: str) -> JSON:
        return dict(await self.request("POST", f"{API}/tenants/{tenant_id}/resume"))

    async def delete_tenant(self, tenant_id: str) -> None:
        await self.request("DELETE", f"{API}/tenants/{tenant_id}")

    async def export_tenant(self, tenant_id: str) -> JSON:
        """Start exporting a tenant to an archive of the backup directory: the job (its ``progress`` while
        it runs; once it succeeded, ``result["archive"]`` names the archive). Needs tenants:manage."""
        return dict(await self.request("POST", f"{API}/tenants/{tenant_id}/export"))

    async def import_tenant(self, archive: str, slug: str | None = None) -> JSON:
        """Start importing the tenant of the archive ``archive`` (a name in the backup directory), under
        ``slug`` if given: the job (``result["tenant_id"]`` and ``["slug"]`` once it succeeded)."""
        body: JSON = {"archive": archive}
        if slug:
            body["slug"] = slug
        return dict(await self.request("POST", f"{API}/tenant-imports", json=body))

    async def platform_job(self, job_id: str) -> JSON:
        """Any job, as operators see it: its state, progress and result."""
        return dict(await self.request("GET", f"{API}/platform/jobs/{job_id}"))

    # --- operators ------------------------------------------------------------------------------------

    def operator_pages(self) -> AsyncIterator[list[JSON]]:
        """Every operator account, disabled ones included, in the order they were created."""
        return self.pages(f"{API}/operators")

    async def create_operator(self, email: str, display_name: str | None, read_only: bool) -> JSON:
        """A new operator, with its ``one_time_password`` (in this answer only)."""
        body: JSON = {"email": email, "read_only": read_only}
        if display_name:
            body["display_name"] = display_name
        return dict(await self.request("POST", f"{API}/operators", json=body))

    async def disable_operator(self, operator_id: str) -> JSON:
        return dict(await self.request("POST", f"{API}/operators/{operator_id}/disable"))

    async def enable_operator(self, operator_id: str) -> JSON:
        return dict(await self.request("POST", f"{API}/operators/{operator_id}/enable"))

    async def remove_operator(self, operator_id: str) -> None:
        await self.request("DELETE", f"{API}/operators/{operator_id}")

    async def reset_operator_password(self, operator_id: str) -> JSON:
        """The operator with a new ``one_time_password`` (their sessions end)."""
        return dict(await self.request("POST", f"{API}/operators/{operator_id}/reset-password"))

    async def set_operator_read_only(self, operator_id: str, read_only: bool) -> JSON:
        """Make an operator read-only or full (their sessions end, so the change holds at once)."""
        return dict(
            await self.request("PATCH", f"{API}/operators/{operator_id}", json={"read_only": read_only})
        )

    # --- backups (operators) --------------------------------------------------------------------------

    async def backups(self) -> JSON:
        """The archives of the backup directory, newest first: ``{"items": [{"name", "kind", "tenant",
        "created_at", "appliance_version", "size", "scheduled", ...}], "directory", "newest_completed_at"
        (None when no backup ever completed), "max_age_hours"}`` (needs backups:read)."""
        return dict(await self.request("GET", f"{API}/platform/backups"))

    async def create_backup(self) -> JSON:
        """Start backing up the whole appliance: the job (``result["archive"]`` once it succeeded)."""
        return dict(await self.request("POST", f"{API}/platform/backups"))

    async def verify_backup(self, name: str) -> JSON:
        """Start checking the archive ``name`` in a scratch database: the job (``result["ok"]`` and
        ``["problems"]`` once it succeeded)."""
        return dict(await self.request("POST", f"{API}/platform/backups/{quote(name, safe='')}/verify"))

    async def restore_backup(self, name: str, confirm: str) -> JSON:
        """Start bringing the whole appliance back to the archive ``name``: the job. Every change since the
        archive was made is lost; ``confirm`` must repeat ``name`` (InvalidRequest otherwise)."""
        return dict(
            await self.request(
                "POST", f"{API}/platform/backups/{quote(name, safe='')}/restore", json={"confirm": confirm}
            )
        )

    # --- audit ----------------------------------------------------------------------------------------

    async def platform_audit(self, filters: JSON | None = None, limit: int = PAGE) -> list[JSON]:
        """The newest records of the platform's audit trail matching `filters` (action, actor, since...)."""
        items, _ = await self.platform_audit_page(filters, limit=limit)
        return items

    async def platform_audit_page(
        self, filters: JSON | None = None, cursor: str | None = None, limit: int = PAGE
    ) -> tuple[list[JSON], str | None]:
        """One page of the platform's audit trail (newest first) and the cursor of the next, if any."""
        params = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
        if cursor:
            params["cursor"] = cursor
        return await self.first_page(f"{API}/audit-logs/platform", params, limit)
