"""The API through PostgreSQL outages, on a private server the tests stop and start: an acknowledged write
keeps its answer, a restart costs no request, a wedged process says so, and no 503 shows how the database
is reached."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from appliance.api.app import create_app
from appliance.db import tenancy
from appliance.models import Project
from tests.identity import Identity, TenantHandle
from tests.servers import PostgresServer
from tests.support import LiveServer, make_settings, wait_for


@contextmanager
def _api(tmp_path: Path, server: PostgresServer, wrap: Any = None, **overrides: Any) -> Iterator[Identity]:
    """The API on a private PostgreSQL as an app role without BYPASSRLS; ``wrap(app)`` goes around it."""
    database = {**server.app_database(), "connect_timeout": 2, **overrides.pop("database", {})}
    settings = make_settings(tmp_path, database=database, rate_limits={"enabled": False}, **overrides)
    app = create_app(settings)
    with LiveServer(wrap(app) if wrap else app) as live, live.client() as client:
        yield Identity(client, app, settings)


def _organization(identity: Identity, tenant: TenantHandle) -> str:
    response = identity.client.post(
        "/api/v1/organizations", json={"slug": "eng", "name": "Engineering"}, headers=tenant.owner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _projects(identity: Identity, tenant: TenantHandle) -> int:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return int(session.scalar(select(func.count()).select_from(Project)) or 0)


class _StopBeforeAnswer:
    """Around the app: stops the database once the answer to a marked request has been produced, before
    its first byte reaches the client (between the commit and the response)."""

    def __init__(self, app: FastAPI, server: PostgresServer) -> None:
        self.app = app
        self.server = server
        self.armed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        marked = scope["type"] == "http" and any(name == b"x-stop-db" for name, _ in scope["headers"])

        async def forward(message: Message) -> None:
            if marked and self.armed and message["type"] == "http.response.start":
                self.armed = False
                await asyncio.to_thread(self.server.stop)
            await send(message)

        await self.app(scope, receive, forward)


def test_an_acknowledged_write_is_replayed_after_the_database_stopped_before_the_answer(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    server = own_postgres_server
    holder: list[_StopBeforeAnswer] = []

    def wrap(app: FastAPI) -> _StopBeforeAnswer:
        holder.append(_StopBeforeAnswer(app, server))
        return holder[0]

    with _api(tmp_path, server, wrap) as identity:
        tenant = identity.tenant("acme")
        body = {"organization_id": _organization(identity, tenant), "name": "Rocket"}
        headers = {**tenant.owner.headers, "Idempotency-Key": str(uuid.uuid4())}
        holder[0].armed = True
        first = identity.client.post("/api/v1/projects", json=body, headers={**headers, "X-Stop-DB": "1"})
        assert first.status_code == 201, first.text
        assert not server.running
        server.start()
        wait_for(lambda: identity.client.get("/health/ready").status_code == 200, what="readiness")
        again = identity.client.post("/api/v1/projects", json=body, headers=headers)
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert _projects(identity, tenant) == 1


def test_no_request_fails_after_the_database_restarts(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    """Every pooled connection (the sync pool and the event loop's) is dead after a restart; readiness
    says 200 and then the next reads, on either pool, all succeed."""
    server = own_postgres_server
    with _api(tmp_path, server, database={"pool_size": 4}) as identity:
        tenant = identity.tenant("acme")
        _organization(identity, tenant)
        paths = ["/api/v1/projects", "/api/v1/organizations", "/api/v1/members", "/api/v1/roles"]

        def round_of_reads() -> list[int]:
            async def run() -> list[int]:
                async with httpx.AsyncClient(base_url=str(identity.client.base_url), timeout=30) as client:
                    answers = await asyncio.gather(
                        *(client.get(path, headers=tenant.owner.headers) for path in paths * 4)
                    )
                return [a.status_code for a in answers]

            return asyncio.run(run())

        assert set(round_of_reads()) == {200}  # both pools hold several connections now
        server.stop()
        server.start()
        wait_for(lambda: identity.client.get("/health/ready").status_code == 200, what="readiness")
        assert set(round_of_reads()) == {200}
        assert set(round_of_reads()) == {200}


def test_a_503_names_no_host_port_or_role(tmp_path: Path, own_postgres_server: PostgresServer) -> None:
    server = own_postgres_server
    with _api(tmp_path, server) as identity:
        tenant = identity.tenant("acme")
        role = identity.settings.database.url.split("//", 1)[1].split(":", 1)[0]  # type: ignore[union-attr]
        server.stop()
        answers = [
            identity.client.get("/health/ready"),
            identity.client.get("/health"),
            identity.client.get("/api/v1/organizations", headers=tenant.owner.headers),
            identity.client.post(
                "/api/v1/organizations", json={"slug": "x", "name": "X"}, headers=tenant.owner.headers
            ),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"]
            for secret in (role, str(server.port), "127.0.0.1", "password", "authentication"):
                assert secret not in answer.text, (secret, answer.text)
        assert "the database is unavailable" in answers[0].json()["checks"]["database"]["error"]
        assert answers[2].json()["error"]["message"] == "the database is unavailable"


def test_liveness_reports_a_process_whose_threads_are_all_stuck(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    """A write that waits for ever (no lock timeout) on a lock someone else holds takes the only thread;
    requests pile up behind it; /health/live says 503 "stalled" (the supervisor's health check restarts
    such a process), and 200 again once the work moves."""
    server = own_postgres_server
    with _api(
        tmp_path,
        server,
        api={"threads": 1, "stall_seconds": 1, "queue_timeout": 60, "queue_target": 60},
        database={"lock_timeout": 0, "statement_timeout": 0},
    ) as identity:
        tenant = identity.tenant("acme")
        organization = _organization(identity, tenant)
        assert identity.client.get("/health/live").json() == {"status": "ok"}
        # Someone holds the tenant's audit chain (as a stuck transaction would).
        with psycopg.connect(server.dsn("forge"), autocommit=False) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"audit:{tenant.id}",))
            answers: list[int] = []

            def create(name: str) -> None:
                with httpx.Client(base_url=str(identity.client.base_url), timeout=60) as client:
                    answers.append(
                        client.post(
                            "/api/v1/projects",
                            json={"organization_id": organization, "name": name},
                            headers=tenant.owner.headers,
                        ).status_code
                    )

            writers = [threading.Thread(target=create, args=(f"p{i}",)) for i in range(3)]
            for writer in writers:
                writer.start()
            stalled = wait_for(
                lambda: (r := identity.client.get("/health/live")).status_code == 503 and r.json(),
                what="liveness to report the stall",
            )
            assert stalled["status"] == "stalled"
            assert "no request has finished" in stalled["error"]
            holder.rollback()
        for writer in writers:
            writer.join(30)
        assert answers == [201, 201, 201]
        wait_for(lambda: identity.client.get("/health/live").status_code == 200, what="liveness again")


def test_readiness_fails_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    """Below api.min_free_disk_mb (here: more than any disk has) every write would fail: not ready."""
    settings = make_settings(tmp_path, api={"min_free_disk_mb": 1 << 40})
    with LiveServer(create_app(settings)) as live, live.client() as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        disk = response.json()["checks"]["disk"]
        assert disk["status"] == "down"
        assert "free in the data directory" in disk["error"]
        assert "api.min_free_disk_mb" in disk["error"]
    settings = make_settings(tmp_path / "ok")
    with LiveServer(create_app(settings)) as live, live.client() as client:
        checks = client.get("/health/ready").json()["checks"]
        assert checks["disk"]["status"] == "ok"
        assert checks["disk"]["detail"]["free_mb"] > 0
