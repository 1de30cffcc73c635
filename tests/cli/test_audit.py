"""`appliance audit verify` and `appliance audit list` as an operator runs them, on both databases: exit 0 on
an intact trail, exit 1 naming the altered or removed record, one line for an unknown tenant."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from appliance.cli.main import app
from appliance.db import tenancy
from appliance.db.base import Base
from appliance.db.session import Database
from appliance.models import AuditLog, Tenant
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import log as audit
from tests.support import make_settings, settings_env

AUDIT = Base.metadata.tables["audit_logs"]


@dataclass
class Trail:
    """A migrated database with two tenants' chains and the platform's, and the settings' environment."""

    db: Database
    env: dict[str, str]
    acme: list[AuditLog]
    globex: list[AuditLog]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["audit", *args], env=self.env)

    def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", "audit", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def tamper(self, record: AuditLog, **changes: object) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(update(AUDIT).where(AUDIT.c.id == record.id).values(**changes))


def record(
    db: Database,
    tenant_id: uuid.UUID | None,
    action: str,
    *,
    actor: Actor | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    summary: dict[str, Any] | None = None,
) -> AuditLog:
    with db.session_scope() as session:
        if tenant_id is not None:
            tenancy.set_tenant(session, tenant_id)
        return audit.record(
            session,
            action=action,
            tenant_id=tenant_id,
            actor=actor,
            resource_type=resource_type,
            resource_id=resource_id,
            summary=summary,
        )


@pytest.fixture
def trail(tmp_path: Path, database_url: str) -> Iterator[Trail]:
    settings = make_settings(tmp_path, database_url)
    db = Database(settings)
    with db.session_scope() as session:
        acme, globex = Tenant(slug="acme", name="Acme"), Tenant(slug="globex", name="Globex")
        session.add_all([acme, globex])
        session.flush()
        acme_id, globex_id = acme.id, globex.id
    ada = Actor(user_id=uuid.uuid4(), tenant_id=acme_id, request=RequestInfo(ip="203.0.113.7"))
    acme_records = [
        record(db, acme_id, "project.create", actor=ada, resource_type="project", resource_id="p1"),
        record(db, acme_id, "project.update", actor=ada, summary={"name": ["Rocket", "Sled"]}),
        record(db, acme_id, "member.invite", actor=ada),
    ]
    globex_records = [record(db, globex_id, "project.create"), record(db, globex_id, "project.delete")]
    record(db, None, "auth.login_failed", summary={"email": "eve@example.com"})
    try:
        yield Trail(db, settings_env(settings), acme_records, globex_records)
    finally:
        db.dispose()


def test_an_intact_trail_verifies(trail: Trail) -> None:
    result = trail.run("verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "platform: 1 record, ok",
        "acme: 3 records, ok",
        "globex: 2 records, ok",
        "3 chains, all ok",
    ]


def test_an_altered_record_is_named_and_fails_the_command(trail: Trail) -> None:
    edited = trail.acme[1]
    trail.tamper(edited, summary={"name": ["Rocket", "Forged"]})
    run = trail.process("verify")
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1] == "acme: 3 records, 1 problem"
    assert lines[2].startswith(f"  acme seq 2: altered, record {edited.id}: ")
    assert "globex: 2 records, ok" in lines
    assert lines[-1] == "3 chains, 1 with problems"
    assert run.stderr == ""


def test_one_tenant_in_json(trail: Trail) -> None:
    with trail.db.engine.begin() as conn:
        conn.execute(AUDIT.delete().where(AUDIT.c.id == trail.globex[0].id))
    result = trail.run("verify", "--tenant", "globex", "--json")
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert (report["tenant"], report["records"], report["ok"]) == ("globex", 1, False)
    assert report["problems"] == [
        {
            "seq": 2,
            "kind": "gap",
            "record_id": str(trail.globex[1].id),
            "message": "the records before it are missing (seq 1): they were removed",
        }
    ]
    assert trail.run("verify", "--tenant", "acme").stdout == "acme: 3 records, ok\n"


def test_an_unknown_tenant_is_one_line(trail: Trail) -> None:
    for verb in ("verify", "list"):
        run = trail.process(verb, "--tenant", "nosuch")
        assert run.returncode == 1
        assert run.stderr.splitlines() == ["appliance: error: no tenant has the slug 'nosuch'"]
        assert run.stdout == ""


def test_progress_goes_to_stderr_and_json_stays_clean(trail: Trail) -> None:
    with trail.db.session_scope() as session:
        session.add_all(Tenant(slug=f"t{i:03}", name=f"T{i}") for i in range(150))
    result = trail.run("verify", "--json")
    assert result.exit_code == 0
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(reports) == 153
    assert all(r["ok"] for r in reports)
    assert result.stderr.splitlines() == ["verified 100/153 chains", "verified 153/153 chains"]


def test_list_reads_a_chain_newest_first(trail: Trail) -> None:
    result = trail.run("list", "--tenant", "acme", "--action", "project.*", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["seq"], r["action"], r["tenant"]) for r in rows] == [
        (2, "project.update", "acme"),
        (1, "project.create", "acme"),
    ]
    assert rows[0]["summary"] == {"name": ["Rocket", "Sled"]}
    assert rows[0]["id"] == str(trail.acme[1].id)
    text = trail.run("list", "--tenant", "acme", "--limit", "1").stdout.splitlines()
    assert len(text) == 1
    assert "  #3  member.invite  -  user:" in text[0]
    assert text[0].endswith("  203.0.113.7  {}")
    platform = trail.run("list").stdout.splitlines()
    assert len(platform) == 1
    assert "auth.login_failed" in platform[0]
    assert '{"email":"eve@example.com"}' in platform[0]
