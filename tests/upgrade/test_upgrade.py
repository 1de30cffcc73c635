"""`appliance upgrade` end to end: the previous release (this repository's git tag) installed, running and
holding data, upgraded to this tree under load; an upgrade whose migration fails, rolled back."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import __version__
from appliance.db import migrate
from tests.support import KeepAliveLoad, copy_checkout
from tests.upgrade.release import Install, install, seed, stored, tenants_seen, up

pytestmark = pytest.mark.e2e

PREFLIGHT = ("versions", "settings", "database", "redis", "migrations", "processes", "disk space")

FAILING = '''"""a migration that fails on purpose

Revision ID: 0999
Revises: {head}
"""

from alembic import op

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.execute("CREATE TABLE upgrade_leftover (id INTEGER)")
    op.execute("SELECT * FROM no_such_table_on_purpose")


def downgrade() -> None:
    op.execute("DROP TABLE upgrade_leftover")
'''


def run(command: list[str], installed: Install, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=installed.env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_previous_release_upgraded_under_load_on_postgresql(
    old_source: Path, old_version: str, new_wheel: Path, pg_database_url: str, tmp_path: Path
) -> None:
    installed = install(tmp_path / "srv", old_source, pg_database_url, "upg")
    try:
        up(installed)
        token = seed(installed)
        before = stored(pg_database_url)
        assert before["tenants"] == ["survivor"]
        assert before["projects"] == ["Keeps its data"]
        assert before["users"] == ["operator@survivor.test", "owner@survivor.test"]
        assert installed.served_version() == old_version
        pids = installed.api_pids()

        # The admin's `appliance upgrade WHEEL` (this tree's command, which finds the running appliance's
        # venv from its supervisor), under keep-alive clients.
        with KeepAliveLoad(installed.url, "/health/ready", clients=2) as load:
            load.wait_for_more(50, "requests before the upgrade")
            done = run([sys.executable, "-m", "appliance", "upgrade", str(new_wheel)], installed, tmp_path)
            load.wait_for_more(50, "requests after the upgrade")
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        assert load.failures == [], out
        for check in PREFLIGHT:
            assert re.search(rf"^ +{check} +OK ", done.stdout, re.M), out
        assert f"{old_version} -> {__version__}" in done.stdout
        assert f"upgraded {old_version} -> {__version__}" in done.stdout

        # The running processes are the new version's, and so is the command.
        assert installed.api_pids().isdisjoint(pids)
        assert {installed.served_version() for _ in range(8)} == {__version__}
        assert installed.appliance("version").stdout.strip() == f"forge-appliance {__version__}"
        # The data is there, and the token the old version signed still lets its operator in.
        assert stored(pg_database_url) == before
        assert tenants_seen(installed, token) == ["survivor"]
        # The venv path now leads to the new venv; the old one is kept beside it for a rollback.
        assert installed.venv.is_symlink()
        assert installed.venv.resolve().name.startswith(f"{__version__}-")
        kept = sorted(
            p.name.split("-")[0] for p in (installed.venv.parent / ".venvs").iterdir() if p.is_dir()
        )
        assert sorted(kept) == sorted([old_version, __version__])
    finally:
        installed.stop()


def test_a_failing_migration_is_rolled_back_and_the_old_version_serves_its_data(
    old_source: Path, old_version: str, tmp_path: Path
) -> None:
    checkout = copy_checkout(tmp_path / "checkout", tests=False)
    versions = checkout / "appliance" / "db" / "migrations" / "versions"
    (versions / "0999_fails_on_purpose.py").write_text(FAILING.format(head=migrate.head_revision()))
    installed = install(tmp_path / "srv", old_source, None, "upgf")
    database_url = f"sqlite:///{installed.data / 'appliance.db'}"
    try:
        up(installed)
        token = seed(installed)
        before = stored(database_url)
        pids = installed.api_pids()

        # As install.sh runs it from a checkout: the installed venv's Python, the checkout's upgrade code.
        with KeepAliveLoad(installed.url, "/health/ready", clients=1) as load:
            command = [str(installed.venv / "bin" / "python"), "-m", "appliance.upgrade", str(checkout)]
            done = run([*command, "--venv", str(installed.venv)], installed, checkout)
            load.wait_for_more(50, "requests after the upgrade")
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert "FAILED at migrate: the database refused the migration: no such table: no_such_table" in out
        assert "database: left as it was" in done.stdout
        assert "failed at migrate: the database refused the migration" in done.stderr
        assert f"rolled back: {old_version} runs as before" in done.stderr
        assert load.failures == [], out

        # The old version serves, from the same processes, with its data and without the failed one's table.
        assert installed.api_pids() == pids
        assert installed.served_version() == old_version
        assert stored(database_url) == before
        assert tenants_seen(installed, token) == ["survivor"]
        with sqlite3.connect(installed.data / "appliance.db") as db:
            assert (
                db.execute("SELECT name FROM sqlite_master WHERE name = 'upgrade_leftover'").fetchall() == []
            )
        assert not installed.venv.is_symlink()  # never switched: still the directory it was
        assert [p for p in (installed.venv.parent / ".venvs").iterdir() if p.is_dir()] == []
    finally:
        installed.stop()
