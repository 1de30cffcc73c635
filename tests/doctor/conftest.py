"""What the doctor's tests share: an appliance in good health (a running supervisor, a fresh backup, the
keys in place, the queue made), on SQLite or on PostgreSQL as an app role without BYPASSRLS."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import __version__
from appliance.config import Settings
from appliance.db import migrate
from appliance.doctor import report
from appliance.doctor.finding import Context, Finding
from appliance.services.backups import catalog
from appliance.services.backups import keys as backup_keys
from appliance.workers.queue import build_storage
from tests.conftest import PgDatabase
from tests.supervisor.realproc import Sandbox, wait_for
from tests.support import make_settings

#: The checks that do not apply to an embedded appliance (SQLite, no Redis, no certificate).
EMBEDDED_SKIPS = {"row-level-security", "app-role", "clock", "redis", "tls-certificate"}


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Sandbox]:
    """The real supervisor running one program that sleeps, as the appliance's programs run."""
    sandbox = new_sandbox(tmp_path / "supervisor")
    sandbox.write(sandbox.program("app", "sleep"))
    sandbox.start()
    try:
        wait_for(lambda: sandbox.running_pid("app"), what="the program to run")
        yield sandbox
    finally:
        sandbox.cleanup()


def new_sandbox(path: Path) -> Sandbox:
    """A sandbox for the real supervisor in ``path`` (made here)."""
    path.mkdir(parents=True)
    return Sandbox(path)


def supervised(sandbox: Sandbox) -> dict[str, Any]:
    """The settings' supervisor section for the sandbox's supervisor."""
    return {"run_dir": sandbox.run_dir, "log_dir": sandbox.log_dir}


def healthy(settings: Settings, *, backup_age: dt.timedelta = dt.timedelta(hours=1)) -> Settings:
    """What `appliance init` and a first backup leave: the backup key, the queue, one good archive."""
    backup_keys.create(settings.backup_key_file)
    build_storage(settings).close()  # the queue's database, as the first worker makes it
    write_backup(settings, backup_age)
    return settings


def write_backup(settings: Settings, age: dt.timedelta) -> Path:
    """A complete full archive of ``age``, as `appliance backup create` leaves it (its content aside)."""
    moment = (dt.datetime.now(dt.UTC) - age).replace(microsecond=0)
    settings.backup_dir.mkdir(parents=True, exist_ok=True)
    archive = settings.backup_dir / catalog.archive_name("full", moment)
    content = b"age-encryption.org/v1 (a stand-in for the archive's bytes)"
    archive.write_bytes(content)
    catalog.write_summary(
        archive,
        {
            "format": catalog.FORMAT,
            "kind": "full",
            "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "appliance_version": __version__,
            "schema_revision": migrate.head_revision(),
            "database": "sqlite" if settings.is_sqlite else "postgresql",
            "tenant": None,
            "scheduled": True,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "rows": {},
        },
    )
    return archive


def app_role_settings(tmp_path: Path, pg: PgDatabase, **overrides: Any) -> Settings:
    """Settings on ``pg`` as production has them: the API's role without BYPASSRLS in database.url, the
    owner in database.migrations_url (migrated, the app role granted)."""
    role = pg.create_role(password="app-role-password")
    database = {"url": pg.url_as(role, "app-role-password"), "migrations_url": pg.url}
    return make_settings(tmp_path, None, database=database, **overrides)


def doctor(settings: Settings, tmp_path: Path) -> dict[str, Finding]:
    """Every finding by check, with no certificate to look at (this machine's /etc is not the test's)."""
    ctx = Context(settings, certificates=(tmp_path / "no-tls" / "appliance.crt",))
    return {finding.check: finding for finding in report.run(ctx)}


def statuses(findings: dict[str, Finding]) -> dict[str, str]:
    return {name: finding.status for name, finding in findings.items()}
