"""POST /api/v1/tenants/{id}/export and /api/v1/tenant-imports over real HTTP with a real worker process: an
operator exports a tenant and imports a copy of it as durable jobs, watching their progress; what can be
refused at once is (the slug in use, an archive that is not there, a read-only operator)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.services.backups import keys
from tests.identity import Identity
from tests.support import settings_env, stop_gracefully


def test_an_operator_exports_a_tenant_and_imports_a_copy_as_jobs(identity: Identity, tmp_path: Path) -> None:
    ident = identity
    keys.create(ident.settings.backup_key_file)
    operator = ident.operator.headers
    acme = ident.tenant("acme")
    org = ident.client.post(
        "/api/v1/organizations", json={"name": "Eng", "slug": "eng"}, headers=acme.owner.headers
    )
    assert org.status_code == 201, org.text

    reader = ident.new_operator(read_only=True).headers
    assert ident.client.post(f"/api/v1/tenants/{acme.id}/export", headers=reader).status_code == 403
    unknown = ident.client.post(
        "/api/v1/tenants/00000000-0000-0000-0000-000000000000/export", headers=operator
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "TENANT_NOT_FOUND"
    started = ident.client.post(f"/api/v1/tenants/{acme.id}/export", headers=operator)
    assert started.status_code == 202, started.text
    assert (started.json()["kind"], started.json()["state"]) == ("tenants.export", "queued")

    log = tmp_path / "worker.log"
    env = settings_env(ident.settings) | {"APPLIANCE_DATABASE__MIGRATIONS_URL": ident.settings.migrations_url}
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "2", "--no-periodic"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        exported = ident.finished_job(operator, started.json()["id"])
        assert exported["state"] == "succeeded", (exported, log.read_text())
        name = exported["result"]["archive"]
        assert (exported["result"]["slug"], exported["result"]["rows"]["organizations"]) == ("acme", 1)
        assert exported["progress"]["done"] == exported["progress"]["total"] > 0
        assert (ident.settings.backup_dir / name).is_file()

        here = ident.client.post("/api/v1/tenant-imports", json={"archive": name}, headers=operator)
        assert here.status_code == 409, here.text
        assert here.json()["error"]["code"] == "TENANT_PRESENT"
        taken = ident.client.post(
            "/api/v1/tenant-imports", json={"archive": name, "slug": "acme"}, headers=operator
        )
        assert taken.status_code == 409, taken.text
        assert taken.json()["error"]["code"] == "SLUG_TAKEN"
        missing = ident.client.post(
            "/api/v1/tenant-imports", json={"archive": "forge-x.age"}, headers=operator
        )
        assert missing.status_code == 404, missing.text

        asked = ident.client.post(
            "/api/v1/tenant-imports", json={"archive": name, "slug": "acme-copy"}, headers=operator
        )
        assert asked.status_code == 202, asked.text
        imported = ident.finished_job(operator, asked.json()["id"])
        assert imported["state"] == "succeeded", (imported, log.read_text())
        assert (imported["result"]["slug"], imported["result"]["copy"]) == ("acme-copy", True)
        # On SQLite the rows go in under the one write lock, so the progress recorded is the archive's.
        step = "rows" if ident.settings.database_url.startswith("postgresql") else "archive"
        total = imported["progress"]["total"]
        assert imported["progress"] == {"step": step, "done": total, "total": total}
    finally:
        stop_gracefully(worker)

    copy = ident.client.get(f"/api/v1/tenants/{imported['result']['tenant_id']}", headers=operator)
    assert copy.status_code == 200, copy.text
    assert (copy.json()["slug"], copy.json()["counts"]["organizations"], copy.json()["counts"]["users"]) == (
        "acme-copy",
        1,
        1,
    )
    # The owner signs in to the copy with the password they have.
    signed_in = ident.login(acme.owner.email, acme.owner.password, "acme-copy")
    assert signed_in.status_code == 200, signed_in.text
