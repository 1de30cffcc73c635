"""/api/v1/jobs and /api/v1/platform/jobs over real HTTP on SQLite and PostgreSQL: a tenant sees, cancels and
retries its own jobs; operators see every tenant's; bad input is named."""

from __future__ import annotations

from typing import Any

from tests.identity import Identity, TenantHandle


def _jobs_of(identity: Identity, tenant: TenantHandle, **params: Any) -> list[dict[str, Any]]:
    response = identity.client.get("/api/v1/jobs", params=params, headers=tenant.owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _make_a_delivery(identity: Identity, tenant: TenantHandle) -> None:
    """An endpoint, then a change it subscribes to: one delivery job (no worker runs here, so it waits)."""
    created = identity.client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "https://example.com/hook", "event_types": ["organization.created"]},
        headers=tenant.owner.headers,
    )
    assert created.status_code == 201, created.text
    org = identity.client.post(
        "/api/v1/organizations", json={"name": "R&D", "slug": "rnd"}, headers=tenant.owner.headers
    )
    assert org.status_code == 201, org.text


def test_a_tenant_cancels_and_retries_its_own_job(identity: Identity) -> None:
    acme = identity.tenant("acme")
    _make_a_delivery(identity, acme)
    [job] = _jobs_of(identity, acme)
    assert (job["kind"], job["state"], job["attempts"]) == ("webhooks.deliver", "queued", 0)
    assert job["tenant_id"] == str(acme.id)
    assert _jobs_of(identity, acme, state="queued", kind="webhooks.deliver") == [job]
    assert _jobs_of(identity, acme, state="dead") == []

    url = f"/api/v1/jobs/{job['id']}"
    assert identity.client.get(url, headers=acme.owner.headers).json()["id"] == job["id"]
    cancelled = identity.client.post(f"{url}/cancel", headers=acme.owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = identity.client.post(f"{url}/cancel", headers=acme.owner.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "JOB_NOT_CANCELLABLE"
    retried = identity.client.post(f"{url}/retry", headers=acme.owner.headers)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("queued", 0)
    refused = identity.client.post(f"{url}/retry", headers=acme.owner.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "JOB_NOT_RETRYABLE"


def test_operators_see_every_tenants_jobs_and_tenants_only_theirs(identity: Identity) -> None:
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    _make_a_delivery(identity, acme)
    _make_a_delivery(identity, globex)
    assert {job["tenant_id"] for job in _jobs_of(identity, globex)} == {str(globex.id)}

    operator = identity.operator.headers
    every = identity.client.get("/api/v1/platform/jobs", headers=operator)
    assert every.status_code == 200, every.text
    assert {job["tenant_id"] for job in every.json()["items"]} >= {str(acme.id), str(globex.id)}
    one = identity.client.get("/api/v1/platform/jobs", params={"tenant_id": str(acme.id)}, headers=operator)
    assert {job["tenant_id"] for job in one.json()["items"]} == {str(acme.id)}

    reader = identity.new_operator(read_only=True).headers
    job_id = one.json()["items"][0]["id"]
    assert identity.client.get(f"/api/v1/platform/jobs/{job_id}", headers=reader).status_code == 200
    denied = identity.client.post(f"/api/v1/platform/jobs/{job_id}/cancel", headers=reader)
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["permission"] == "platform_jobs:manage"
    assert identity.client.post(f"/api/v1/platform/jobs/{job_id}/cancel", headers=operator).status_code == 200


def test_an_unknown_state_is_named(identity: Identity) -> None:
    acme = identity.tenant("acme")
    response = identity.client.get("/api/v1/jobs", params={"state": "exploded"}, headers=acme.owner.headers)
    assert response.status_code == 422
    assert "'exploded' is not a job state" in response.json()["error"]["message"]


def test_a_job_reads_the_same_in_every_tenants_list_as_on_its_own(identity: Identity) -> None:
    """The every-tenant list is serialized from plain rows: each job in it, page by page, is the job that
    GET /platform/jobs/{id} and the tenant's own list give (times, JSON fields, nulls and all)."""
    acme, globex = identity.tenant("acme"), identity.tenant("globex")
    _make_a_delivery(identity, acme)
    _make_a_delivery(identity, globex)
    [cancelled] = _jobs_of(identity, acme)
    cancel = identity.client.post(f"/api/v1/jobs/{cancelled['id']}/cancel", headers=acme.owner.headers)
    assert cancel.status_code == 200, cancel.text

    operator = identity.operator.headers
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = identity.client.get("/api/v1/platform/jobs", params=params, headers=operator)
        assert page.status_code == 200, page.text
        listed += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(listed) == len({job["id"] for job in listed}) >= 2
    assert [job["created_at"] for job in listed] == sorted((j["created_at"] for j in listed), reverse=True)
    for job in listed:
        alone = identity.client.get(f"/api/v1/platform/jobs/{job['id']}", headers=operator)
        assert alone.json() == job
    mine = {job["id"]: job for job in _jobs_of(identity, acme)}
    assert mine[cancelled["id"]]["finished_at"] is not None
    assert {job["id"]: job for job in listed if job["id"] in mine} == mine
