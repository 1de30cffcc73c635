"""The doctor's checks against real databases, a real Redis and a real supervisor: all ok on an appliance
in good health, and each failure an admin must hear of named as such, with the value it found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from appliance.db import migrate, rls
from appliance.doctor import report
from tests.conftest import PgDatabase
from tests.doctor.conftest import (
    EMBEDDED_SKIPS,
    app_role_settings,
    doctor,
    healthy,
    new_sandbox,
    statuses,
    supervised,
)
from tests.supervisor.realproc import Sandbox, wait_for
from tests.support import make_settings


def test_an_embedded_appliance_in_good_health_is_all_ok(tmp_path: Path, supervisor: Sandbox) -> None:
    settings = healthy(make_settings(tmp_path, supervisor=supervised(supervisor)))
    findings = doctor(settings, tmp_path)
    assert statuses(findings) == {
        name: "skip" if name in EMBEDDED_SKIPS else "ok" for name in [c.name for c in report.CHECKS]
    }, findings
    assert "SQLite" in findings["database"].finding
    assert "1 program instance(s) running and ready: app" in findings["supervisor"].finding
    assert "1.0 h old" in findings["backups"].finding
    assert report.overall(list(findings.values())) == "ok"


def test_production_on_postgresql_and_redis_in_good_health_is_all_ok(
    tmp_path: Path, pg_database: PgDatabase, redis_url: str, supervisor: Sandbox
) -> None:
    settings = healthy(
        app_role_settings(tmp_path, pg_database, queue={"url": redis_url}, supervisor=supervised(supervisor))
    )
    findings = doctor(settings, tmp_path)
    assert statuses(findings) == {
        name: "skip" if name == "tls-certificate" else "ok" for name in [c.name for c in report.CHECKS]
    }, findings
    tables = len(rls.TENANT_OWNED_TABLES) + len(rls.UNFILTERED_TENANT_TABLES)
    assert f"{tables} tenant tables ENABLE and FORCE" in findings["row-level-security"].finding
    assert "is no superuser and has no BYPASSRLS" in findings["app-role"].finding
    assert "(queue, rate limits)" in findings["redis"].finding
    assert "PostgreSQL" in findings["database"].finding


def test_a_database_that_does_not_answer_fails_and_its_dependents_are_not_checked(tmp_path: Path) -> None:
    from tests.servers import free_port

    port = free_port()
    url = f"postgresql+psycopg://app:pw@127.0.0.1:{port}/nowhere"
    settings = make_settings(tmp_path, url, migrated=False, database={"connect_timeout": 2})
    findings = doctor(settings, tmp_path)
    assert findings["database"].status == "fail"
    assert f"127.0.0.1:{port}/nowhere as app" in findings["database"].finding
    assert findings["database"].hint
    for name in ("migrations", "row-level-security", "app-role", "clock"):
        assert findings[name].status == "skip"
        assert findings[name].finding == "not checked: database failed"


def test_a_secret_file_others_can_read_fails(tmp_path: Path) -> None:
    settings = healthy(make_settings(tmp_path))
    settings.backup_key_file.chmod(0o644)
    findings = doctor(settings, tmp_path)
    found = findings["secret-files"]
    assert found.status == "fail"
    assert f"{settings.backup_key_file} is 0644 (-rw-r--r--)" in found.finding
    assert f"chmod 600 {settings.backup_key_file}" in found.hint
    assert findings["config"].status == "ok"  # the signing key itself is fine
    settings.secret_key_file.chmod(0o640)
    again = doctor(settings, tmp_path)
    assert f"{settings.secret_key_file} is 0640" in again["secret-files"].finding
    assert again["config"].status == "fail"  # the signing key is refused as `appliance config check` does


def test_pending_migrations_fail(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).touch()  # a database with nothing in it
    settings = make_settings(tmp_path, database_url, migrated=False)
    findings = doctor(settings, tmp_path)
    assert findings["database"].status == "ok"
    found = findings["migrations"]
    assert found.status == "fail"
    count = len(migrate.pending(settings))
    assert found.finding.startswith(
        f"{count} migration(s) pending: the schema is at nothing (empty database)"
    )
    assert found.hint == "run `appliance migrate`"
    migrate.upgrade(settings)
    assert doctor(settings, tmp_path)["migrations"].status == "ok"


def test_a_tenant_table_whose_row_level_security_is_not_forced_fails(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    settings = app_role_settings(tmp_path, pg_database)
    owner = create_engine(pg_database.url, poolclass=NullPool)
    try:
        with owner.begin() as conn:
            conn.execute(text("ALTER TABLE webhook_endpoints NO FORCE ROW LEVEL SECURITY"))
    finally:
        owner.dispose()
    found = doctor(settings, tmp_path)["row-level-security"]
    assert found.status == "fail"
    assert found.finding == "row-level security is off on tenant tables: not FORCEd: webhook_endpoints"
    assert "FORCE ROW LEVEL SECURITY (e.g. webhook_endpoints)" in found.hint


def test_an_app_role_with_bypassrls_fails(tmp_path: Path, pg_database: PgDatabase) -> None:
    role = pg_database.create_role(password="pw-of-the-role", bypassrls=True)
    database = {"url": pg_database.url_as(role, "pw-of-the-role"), "migrations_url": pg_database.url}
    settings = make_settings(tmp_path, None, database=database)
    found = doctor(settings, tmp_path)["app-role"]
    assert found.status == "fail"
    assert found.finding == (
        f"the app role {role} (database.url) has BYPASSRLS: row-level security does not bind it"
    )
    assert f"ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS" in found.hint


def test_a_crash_looping_program_and_a_stopped_supervisor_fail(tmp_path: Path) -> None:
    sandbox = new_sandbox(tmp_path / "supervisor")
    sandbox.write(sandbox.program("app", "sleep"), sandbox.program("broken", "crash"))
    settings = make_settings(tmp_path, supervisor=supervised(sandbox))
    sandbox.start()
    try:
        wait_for(lambda: sandbox.one("broken")["crash_looping"], what="the crash loop")
        found = doctor(settings, tmp_path)["supervisor"]
        assert found.status == "fail"
        assert found.finding.startswith("broken is crash-looping (")
        assert "broken: fatal: the signing key is the placeholder" in found.finding
    finally:
        sandbox.cleanup()
    found = doctor(settings, tmp_path)["supervisor"]
    assert found.status == "fail"
    assert found.finding.endswith("the appliance is not running")
    assert "appliance up" in found.hint


def test_an_old_backup_or_none_fails_and_none_unscheduled_warns(tmp_path: Path) -> None:
    settings = healthy(make_settings(tmp_path), backup_age=dt.timedelta(hours=30))
    found = doctor(settings, tmp_path)["backups"]
    assert found.status == "fail"
    assert "30.0 h old (backups.max_age_hours = 26)" in found.finding
    empty = make_settings(tmp_path / "empty")
    assert doctor(empty, tmp_path)["backups"].status == "fail"
    unscheduled = make_settings(tmp_path / "unscheduled", backups={"schedule": ""})
    found = doctor(unscheduled, tmp_path)["backups"]
    assert found.status == "warn"
    assert "none scheduled ([backups] schedule is empty)" in found.finding
