"""A real appliance for the console to drive: `appliance up` (supervisor, API and worker on SQLite) in a
throwaway data directory, an operator with a known password, and a console app factory."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.client.api import ApiClient
from appliance.client.credentials import CredentialStore
from appliance.client.targets import Target
from console.app import ConsoleApp
from console.connection import Connection
from tests.identity import STRONG_PASSWORD, bearer
from tests.support import appliance_env


def run_appliance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=180
    )


@dataclass
class RunningAppliance:
    """An appliance started as a user starts it, and an operator signed in to its API."""

    env: dict[str, str]
    data: Path
    api_url: str
    control_socket: Path
    operator_email: str
    operator_token: str

    def target(self, **changes: Any) -> Target:
        values: dict[str, Any] = {
            "name": "local",
            "api_url": self.api_url,
            "control_socket": self.control_socket,
        }
        return Target(**(values | changes))

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            return http.request(method, path, headers=bearer(self.operator_token), **kwargs)

    def create_tenant(self, slug: str, plan: str = "free", owner_email: str | None = None) -> dict[str, Any]:
        body = {"slug": slug, "name": slug.replace("-", " ").title(), "plan": plan}
        if owner_email:
            body["owner_email"] = owner_email
        response = self.api("POST", "/api/v1/tenants", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_operator(self, email: str, *extra: str) -> str:
        """A further operator account (e.g. `--read-only`); returns its password (set to STRONG_PASSWORD)."""
        done = run_appliance("admin", "create", "--email", email, *extra, env=self.env)
        assert done.returncode == 0, done.stderr
        one_time = re.search(r"one-time password: (\S+)", done.stdout + done.stderr)
        assert one_time, done.stdout
        set_password(self.api_url, email, one_time.group(1))
        return STRONG_PASSWORD


def set_password(api_url: str, email: str, one_time: str) -> str:
    with httpx.Client(base_url=api_url, timeout=30) as http:
        first = http.post("/api/v1/auth/login", json={"email": email, "password": one_time})
        assert first.status_code == 200, first.text
        changed = http.post(
            "/api/v1/auth/password",
            json={"current_password": one_time, "new_password": STRONG_PASSWORD},
            headers=bearer(first.json()["access_token"]),
        )
        assert changed.status_code == 204, changed.text
        again = http.post("/api/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
        assert again.status_code == 200, again.text
        return str(again.json()["access_token"])


@pytest.fixture(scope="session")
def appliance() -> Iterator[RunningAppliance]:
    env, data = appliance_env("console")  # the access log on, as installed: the logs view shows its lines
    env["APPLIANCE_OUTBOUND__ALLOW_NETWORKS"] = "127.0.0.0/8"  # the apps' and webhooks' receivers are local
    for step in (("init",), ("migrate",)):
        done = run_appliance(*step, env=env)
        assert done.returncode == 0, done.stderr
    email = "ops@console.test"
    created = run_appliance("admin", "create", "--email", email, env=env)
    assert created.returncode == 0, created.stderr
    one_time = re.search(r"one-time password: (\S+)", created.stdout + created.stderr)
    assert one_time, created.stdout
    started = run_appliance("up", env=env)
    assert started.returncode == 0, started.stderr
    api_url = f"http://127.0.0.1:{env['APPLIANCE_API__PORT']}"
    try:
        token = set_password(api_url, email, one_time.group(1))
        yield RunningAppliance(env, data, api_url, data / "run" / "control.sock", email, token)
    finally:
        run_appliance("down", env=env)
        shutil.rmtree(data, ignore_errors=True)


def signed_in_store(path: Path, appliance: RunningAppliance, email: str | None = None) -> CredentialStore:
    """A credentials file holding a fresh session of the operator (as a previous console run leaves it)."""
    store = CredentialStore(path)

    async def sign_in() -> None:
        client = ApiClient(appliance.api_url, store=store)
        await client.login(email or appliance.operator_email, STRONG_PASSWORD)
        await client.aclose()

    asyncio.run(sign_in())
    return store


def console_app(
    appliance: RunningAppliance,
    tmp_path: Path,
    *,
    signed_in: bool = True,
    target: Target | None = None,
    **kwargs: Any,
) -> ConsoleApp:
    """The real console app, connected to the running appliance."""
    path = tmp_path / "credentials.json"
    store = signed_in_store(path, appliance) if signed_in else CredentialStore(path)
    return ConsoleApp(Connection.open(target or appliance.target(), store), **kwargs)
