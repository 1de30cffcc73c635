"""/api/v1/platform/backups over real HTTP with a real worker process: take a backup as a job, see it
listed with its progress recorded, verify it, restore the appliance from it with a typed confirmation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.services.backups import keys
from tests.identity import Identity
from tests.support import settings_env, stop_gracefully


def _projects(ident: Identity, headers: dict[str, str]) -> list[str]:
    response = ident.client.get("/api/v1/projects", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["items"])


def test_operators_back_up_verify_and_restore_through_jobs(identity: Identity, tmp_path: Path) -> None:
    ident = identity
    keys.create(ident.settings.backup_key_file)
    operator = ident.operator.headers
    acme = ident.tenant("acme")
    org = ident.client.post(
        "/api/v1/organizations", json={"name": "Eng", "slug": "eng"}, headers=acme.owner.headers
    )
    assert org.status_code == 201, org.text
    for name in ("alpha", "beta"):
        made = ident.client.post(
            "/api/v1/projects",
            json={"name": name, "organization_id": org.json()["id"]},
            headers=acme.owner.headers,
        )
        assert made.status_code == 201, made.text

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "2", "--no-periodic"],
            env=settings_env(ident.settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # A read-only operator may list, not take a backup.
        reader = ident.new_operator(read_only=True).headers
        assert ident.client.post("/api/v1/platform/backups", headers=reader).status_code == 403
        empty = ident.client.get("/api/v1/platform/backups", headers=reader).json()
        assert empty["items"] == []
        assert empty["newest_completed_at"] is None

        started = ident.client.post("/api/v1/platform/backups", headers=operator)
        assert started.status_code == 202, started.text
        done = ident.finished_job(operator, started.json()["id"])
        assert done["state"] == "succeeded", done["last_error"]
        assert done["progress"]["step"] == "encrypting"
        assert done["progress"]["done"] == done["progress"]["total"]
        name = done["result"]["archive"]

        listed = ident.client.get("/api/v1/platform/backups", headers=reader).json()
        assert [item["name"] for item in listed["items"]] == [name]
        assert listed["newest_completed_at"] is not None

        verified = ident.finished_job(
            operator,
            ident.client.post(f"/api/v1/platform/backups/{name}/verify", headers=operator).json()["id"],
        )
        assert verified["state"] == "succeeded", verified
        assert verified["result"]["ok"] is True

        # A change after the backup; the restore takes it away.
        gamma = ident.client.post(
            "/api/v1/projects",
            json={"name": "gamma", "organization_id": org.json()["id"]},
            headers=acme.owner.headers,
        )
        assert gamma.status_code == 201
        assert _projects(ident, acme.owner.headers) == ["alpha", "beta", "gamma"]

        unconfirmed = ident.client.post(
            f"/api/v1/platform/backups/{name}/restore", json={"confirm": "yes"}, headers=operator
        )
        assert unconfirmed.status_code == 422
        assert name in unconfirmed.json()["error"]["message"]
        missing = ident.client.post(
            "/api/v1/platform/backups/forge-nothing.age/restore",
            json={"confirm": "forge-nothing.age"},
            headers=operator,
        )
        assert missing.status_code == 404
        traversal = ident.client.post(
            "/api/v1/platform/backups/..%2Fsecrets%2Fbackup.key/verify", headers=operator
        )
        assert traversal.status_code in (404, 422)

        restore = ident.client.post(
            f"/api/v1/platform/backups/{name}/restore", json={"confirm": name}, headers=operator
        )
        assert restore.status_code == 202, restore.text
        restored = ident.finished_job(operator, restore.json()["id"])
        assert restored["state"] == "succeeded", restored["last_error"]
        assert _projects(ident, acme.owner.headers) == ["alpha", "beta"]
    finally:
        stop_gracefully(worker)

    records = ident.client.get("/api/v1/audit-logs/platform", headers=operator, params={"limit": 100})
    assert records.status_code == 200, records.text
    actions = [item["action"] for item in records.json()["items"]]
    assert "backup.restored" in actions


def test_metrics_report_the_newest_backup(identity: Identity) -> None:
    ident = identity
    scrape = ident.client.get("/metrics", headers=ident.operator.headers)
    assert scrape.status_code == 200
    name = "appliance_backup_last_success_timestamp_seconds "
    assert not [line for line in scrape.text.splitlines() if line.startswith(name)]
    from appliance.services.backups import jobs as backup_jobs

    with ident.database.session_scope() as session:
        backup_jobs.record(session, "backup.completed", {"archive": "forge-x.age"})
    scrape = ident.client.get("/metrics", headers=ident.operator.headers)
    found = [
        line
        for line in scrape.text.splitlines()
        if line.startswith("appliance_backup_last_success_timestamp_seconds ")
    ]
    assert len(found) == 1
    assert float(found[0].split()[1]) > 1.7e9
