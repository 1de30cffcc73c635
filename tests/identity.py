"""The real API with identities in it: an operator, tenants with owners, members and keys, all created
through the API itself (the operator account through the service, as `appliance admin create` does)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from appliance.api.app import create_app
from appliance.config import Settings
from appliance.db.session import Database
from appliance.services.tenancy import operators
from tests.support import LiveServer, make_settings, wait_for

STRONG_PASSWORD = "correct-horse-battery-staple-42"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Member:
    email: str
    password: str
    token: str
    refresh_token: str
    user_id: uuid.UUID
    membership_id: uuid.UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class TenantHandle:
    id: uuid.UUID
    slug: str
    owner: Member
    members: dict[str, Member] = field(default_factory=dict)


class Identity:
    """Drives the API over HTTP as operators and tenants' users."""

    def __init__(self, client: httpx.Client, app: FastAPI, settings: Settings):
        self.client = client
        self.app = app
        self.settings = settings
        self._operator: Member | None = None

    @property
    def database(self) -> Database:
        db: Database = self.app.state.ctx.database
        return db

    def finished_job(self, headers: dict[str, str], job_id: str, timeout: float = 120) -> dict[str, Any]:
        """The platform job ``job_id`` once it succeeded or died, as an operator reads it."""

        def done() -> dict[str, Any] | None:
            body: dict[str, Any] = self.client.get(f"/api/v1/platform/jobs/{job_id}", headers=headers).json()
            return body if body["state"] in ("succeeded", "dead") else None

        job: dict[str, Any] = wait_for(done, timeout=timeout, what=f"job {job_id} to finish")
        return job

    def login(self, email: str, password: str, tenant: str | None = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"email": email, "password": password, **extra}
        if tenant is not None:
            body["tenant"] = tenant
        return self.client.post("/api/v1/auth/login", json=body)

    def sign_in(self, email: str, password: str, tenant: str | None = None) -> Member:
        response = self.login(email, password, tenant)
        assert response.status_code == 200, response.text
        data = response.json()
        return Member(email, password, data["access_token"], data["refresh_token"], self._me(data))

    def _me(self, tokens: dict[str, Any]) -> uuid.UUID:
        me = self.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        return uuid.UUID(me.json()["user"]["id"])

    def set_password(self, email: str, one_time: str, tenant: str | None = None) -> Member:
        """Sign in with a one-time password and replace it with STRONG_PASSWORD."""
        first = self.sign_in(email, one_time, tenant)
        changed = self.client.post(
            "/api/v1/auth/password",
            json={"current_password": one_time, "new_password": STRONG_PASSWORD},
            headers=first.headers,
        )
        assert changed.status_code == 204, changed.text
        return self.sign_in(email, STRONG_PASSWORD, tenant)

    @property
    def operator(self) -> Member:
        if self._operator is None:
            self._operator = self.new_operator()
        return self._operator

    def new_operator(self, *, read_only: bool = False) -> Member:
        """Another operator account (as `appliance admin create [--read-only]` makes one), signed in."""
        email = f"operator-{uuid.uuid4().hex[:6]}@appliance.test"
        with self.database.session_scope() as session:
            new = operators.create(session, email, read_only=read_only)
        return self.set_password(email, new.one_time_password)

    def tenant(self, slug: str, plan: str = "free", owner_email: str | None = None) -> TenantHandle:
        email = owner_email or f"owner@{slug}.test"
        response = self.client.post(
            "/api/v1/tenants",
            json={"slug": slug, "name": slug.title(), "plan": plan, "owner_email": email},
            headers=self.operator.headers,
        )
        assert response.status_code == 201, response.text
        data = response.json()
        one_time = data["owner"]["one_time_password"]
        owner = (
            self.set_password(email, one_time, slug)
            if one_time
            else self.sign_in(email, STRONG_PASSWORD, slug)
        )
        return TenantHandle(uuid.UUID(data["id"]), slug, owner)

    def invite(self, tenant: TenantHandle, email: str, role: str) -> dict[str, Any]:
        """Invite ``email`` into ``tenant`` with ``role`` (as its owner): the invited entry and its token."""
        response = self.client.post(
            "/api/v1/members", json={"email": email, "role": role}, headers=tenant.owner.headers
        )
        assert response.status_code == 201, response.text
        invited: dict[str, Any] = response.json()
        return invited

    def accept(self, email: str, token: str, password: str = STRONG_PASSWORD, **extra: Any) -> httpx.Response:
        """Accept an invitation with its token (the account's password, or the one chosen for a new one)."""
        body = {"email": email, "token": token, "password": password, **extra}
        return self.client.post("/api/v1/invitations/accept", json=body)

    def member(self, tenant: TenantHandle, email: str, role: str) -> Member:
        """Invite ``email`` into ``tenant`` with ``role`` (as its owner), accept with the token (a new
        account gets STRONG_PASSWORD; an existing one is expected to have it) and sign in."""
        invited = self.invite(tenant, email, role)
        accepted = self.accept(email, invited["invitation_token"])
        assert accepted.status_code == 200, accepted.text
        member = self.sign_in(email, STRONG_PASSWORD, tenant.slug)
        member.membership_id = uuid.UUID(accepted.json()["membership_id"])
        tenant.members[email] = member
        return member


@contextmanager
def identity_api(
    tmp_path: Path, database_url: str, app_url: str | None = None, **overrides: Any
) -> Iterator[Identity]:
    """The API on ``database_url`` (migrated as its owner); with ``app_url`` the API connects as that
    role (on PostgreSQL: one without BYPASSRLS, so that row-level security is what it meets)."""
    overrides.setdefault("rate_limits", {"enabled": False})
    database: dict[str, Any] = {**overrides.pop("database", {}), "url": app_url or database_url}
    if app_url:
        database["migrations_url"] = database_url
    settings = make_settings(tmp_path, None, database=database, **overrides)
    app = create_app(settings)
    with LiveServer(app) as live, live.client() as client:
        yield Identity(client, app, settings)
