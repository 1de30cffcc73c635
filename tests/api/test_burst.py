"""A burst of writes in one tenant: every request is answered, none waits on a resource held by a request
behind it, and load beyond what the process can start in time is shed at once with 503 + Retry-After."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from appliance.db import tenancy
from appliance.models import Project
from tests.conftest import PgDatabase
from tests.identity import Identity, TenantHandle, identity_api


def _burst(url: str, headers: dict[str, str], bodies: list[dict[str, object]]) -> list[httpx.Response]:
    """Send every body at once (one connection each), and collect every answer."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/api/v1/projects", json=body, headers=headers) for body in bodies)
                )
            )

    return asyncio.run(run())


def _projects(identity: Identity, tenant: TenantHandle) -> int:
    with identity.database.session_scope(write=False) as session:
        tenancy.set_tenant(session, tenant.id)
        return int(session.scalar(select(func.count()).select_from(Project)) or 0)


def _organization(identity: Identity, tenant: TenantHandle) -> str:
    response = identity.client.post(
        "/api/v1/organizations", json={"slug": "eng", "name": "Engineering"}, headers=tenant.owner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.postgres
def test_a_write_burst_in_one_tenant_is_answered_without_a_pool_timeout(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    """More concurrent writes than the pool has connections, all in one tenant (one audit chain): each is
    served in one hop, so a request holding a connection and the chain never waits for a thread, and none
    times out waiting for a connection. (Served in several thread-pool calls, a burst like this one froze
    the API until the pool timeouts broke it apart, answering most requests 503.)"""
    role = pg_database.create_role(password="app-secret")
    app_url = pg_database.url_as(role, "app-secret")
    # The queue may hold every request as long as it takes (no shedding): what is tested is that they all
    # get through three threads and four connections.
    with identity_api(
        tmp_path,
        pg_database.url,
        app_url,
        database={"pool_size": 4, "pool_timeout": 2},
        api={"queue_target": 120, "queue_timeout": 120},
    ) as identity:
        tenant = identity.tenant("acme")
        organization = _organization(identity, tenant)
        bodies: list[dict[str, object]] = [
            {"organization_id": organization, "name": f"p-{uuid.uuid4().hex[:10]}"} for _ in range(80)
        ]
        answers = _burst(identity.client.base_url.__str__(), tenant.owner.headers, bodies)
        statuses = sorted({a.status_code for a in answers})
        assert statuses == [201], [a.text for a in answers if a.status_code != 201][:3]
        assert _projects(identity, tenant) == len(bodies)
        # The chain took every record, in order.
        verified = identity.client.get(
            "/api/v1/audit-logs?action=project.create&limit=200", headers=tenant.owner.headers
        )
        assert verified.status_code == 200
        assert len(verified.json()["items"]) == len(bodies)


def test_load_beyond_the_queue_is_shed_at_once_with_retry_after(tmp_path: Path, database_url: str) -> None:
    """With one thread and no room to wait, a burst gets some answers and the rest 503 OVERLOADED with
    Retry-After, and nothing it was told failed was done."""
    with identity_api(
        tmp_path, database_url, api={"threads": 1, "queue_limit": 0}, database={"pool_size": 2}
    ) as identity:
        tenant = identity.tenant("acme")
        organization = _organization(identity, tenant)
        bodies: list[dict[str, object]] = [
            {"organization_id": organization, "name": f"p-{i}"} for i in range(40)
        ]
        answers = _burst(str(identity.client.base_url), tenant.owner.headers, bodies)
        created = [a for a in answers if a.status_code == 201]
        shed = [a for a in answers if a.status_code == 503]
        assert len(created) + len(shed) == len(bodies), {a.status_code for a in answers}
        assert created
        assert shed
        for answer in shed:
            assert answer.json()["error"]["code"] == "OVERLOADED"
            assert int(answer.headers["retry-after"]) >= 1
        assert _projects(identity, tenant) == len(created)


def test_requests_beyond_the_in_flight_bound_are_refused_before_any_work(tmp_path: Path) -> None:
    """Past api.max_in_flight a request is refused at the door (503 OVERLOADED, Retry-After), while the
    health checks are always answered."""
    with identity_api(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", api={"max_in_flight": 2}) as identity:
        tenant = identity.tenant("acme")
        organization = _organization(identity, tenant)
        bodies: list[dict[str, object]] = [
            {"organization_id": organization, "name": f"p-{i}"} for i in range(40)
        ]
        answers = _burst(str(identity.client.base_url), tenant.owner.headers, bodies)
        refused = [a for a in answers if a.status_code == 503]
        assert refused
        assert {a.status_code for a in answers} == {201, 503}
        for answer in refused:
            assert answer.json()["error"]["code"] == "OVERLOADED"
            assert "The appliance is busy" in answer.json()["error"]["message"]
            assert answer.headers["retry-after"] == "1"
        assert _projects(identity, tenant) == len(answers) - len(refused)
        assert identity.client.get("/health/live").status_code == 200
