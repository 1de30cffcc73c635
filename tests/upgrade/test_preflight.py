"""The preflight names each refusal: a contracting migration while old processes run, a required stop
skipped, a database or Redis that does not answer, settings this version rejects; `--check` changes
nothing and removes the venv it was given."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance import __version__
from appliance.config import Settings
from appliance.configfile import load_settings
from appliance.db import migrate
from appliance.upgrade import preflight
from appliance.upgrade.layout import MARKER, Layout
from tests.servers import free_port
from tests.support import REPOSITORY, make_settings, settings_env, wait_for
from tests.upgrade.release import SITE_PACKAGES, make_venv

CONTRACTING = '''"""drop something the previous version reads

Revision ID: 0900
Revises: {head}
"""

revision = "0900"
down_revision = "{head}"
branch_labels = None
depends_on = None
phase = "contract"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def checks(findings: preflight.Findings) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.detail) for check in findings.checks}


@pytest.fixture
def old_layout(tmp_path: Path, old_source: Path) -> Layout:
    """The previous release installed in a venv (the stable path, a plain directory as before upgrades)."""
    return Layout(make_venv(tmp_path / "srv" / ".venv", old_source))


@contextmanager
def supervising(settings: Settings, venv: Path) -> Iterator[None]:
    """A real supervisor running one program started from `venv`'s Python, as the old version's are."""
    services = settings.data_dir / "services.toml"
    command = [str(venv / "bin" / "python"), "-c", "import time; time.sleep(600)"]
    services.write_text(f"[programs.api]\ncommand = {json.dumps(command)}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance.supervisor", "--services", str(services), "--quiet",
         "--run-dir", str(settings.run_dir), "--log-dir", str(settings.log_dir)],
    )  # fmt: skip
    try:
        from appliance.upgrade.running import client_for, running

        wait_for(
            lambda: (found := running(client_for(settings.run_dir), venv)) and found.programs["api"],
            what="the program to run",
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_contracting_migration_is_refused_while_old_processes_run(
    tmp_path: Path, old_layout: Layout
) -> None:
    settings = make_settings(tmp_path)  # migrated to this version's head
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0900_contract.py").write_text(
        CONTRACTING.format(head=migrate.head_revision())
    )

    def inputs(allow_downtime: bool = False) -> preflight.Inputs:
        return preflight.Inputs(lambda: settings, old_layout, allow_downtime, migrations=migrations)

    with supervising(settings, old_layout.venv):
        refused = preflight.run(inputs(), lambda _: None)
        ok, detail = checks(refused)["processes"]
        assert not ok
        assert "0900 (contract) contracts the schema" in detail
        assert "api (1) of the old version run" in detail
        assert "--allow-downtime" in detail
        assert checks(refused)["migrations"] == (True, "1 pending: 0900 (contract)")
        assert [check.name for check in refused.failures] == ["processes"]

        # The admin accepts the downtime: the upgrade will stop the appliance for the migration.
        accepted = preflight.run(inputs(allow_downtime=True), lambda _: None)
        assert accepted.failures == []
        assert accepted.needs_downtime
        assert "the appliance stops (--allow-downtime)" in checks(accepted)["processes"][1]

    # Nothing runs: nothing stands in the contracting migration's way.
    stopped = preflight.run(inputs(), lambda _: None)
    assert stopped.failures == []
    assert checks(stopped)["processes"] == (True, "the appliance is not running: nothing to restart")


def test_a_skipped_required_stop_and_a_downgrade_are_refused(
    tmp_path: Path, old_layout: Layout, old_version: str
) -> None:
    settings = make_settings(tmp_path)
    seen: list[preflight.Check] = []
    skipping = preflight.Inputs(lambda: settings, old_layout, stops=("0.1.5", "0.1.7"))
    ok, detail = checks(preflight.run(skipping, seen.append))["versions"]
    assert not ok
    assert detail == (
        f"{old_version} -> {__version__} would skip the required stop 0.1.5: upgrade to 0.1.5 first "
        "(then 0.1.7)"
    )
    assert seen[0].name == "versions"  # reported as it is made

    # Ending on a required stop is what the stop asks for.
    onto = preflight.Inputs(lambda: settings, old_layout, stops=(__version__,))
    assert checks(preflight.run(onto, lambda _: None))["versions"][0]

    older = preflight.Inputs(lambda: settings, old_layout, new_version="0.0.9")
    ok, detail = checks(preflight.run(older, lambda _: None))["versions"]
    assert not ok
    assert detail.startswith(f"0.0.9 is older than {old_version}, the version installed: a downgrade")


def test_an_unreachable_database_and_redis_are_refused(tmp_path: Path, old_layout: Layout) -> None:
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/appliance"
    queue = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(tmp_path, nowhere, queue, migrated=False)
    found = checks(preflight.run(preflight.Inputs(lambda: settings, old_layout), lambda _: None))
    assert not found["database"][0]
    assert found["database"][1].startswith("cannot reach the database: ")
    assert not found["redis"][0]
    assert found["redis"][1].startswith(f"Redis at {queue} does not answer: ")
    assert found["migrations"] == (False, "not checked: the database cannot be reached")
    assert found["disk space"] == (False, "not checked: the database cannot be reached")
    assert found["settings"][0]
    assert found["versions"][0]


def test_settings_this_version_rejects_are_refused(tmp_path: Path, old_layout: Layout) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n\n[backups]\nkeep_daily = -1\n')
    found = checks(preflight.run(preflight.Inputs(lambda: load_settings(config), old_layout), lambda _: None))
    ok, detail = found["settings"]
    assert not ok
    assert "backups.keep_daily" in detail
    assert str(config) in detail
    for name in ("database", "redis", "migrations", "processes", "disk space"):
        assert found[name] == (False, "not checked: the settings are not valid")


def test_check_through_the_command_changes_nothing_and_says_why_it_refuses(
    tmp_path: Path, old_layout: Layout
) -> None:
    # The new version's side of `appliance upgrade --check`, from a venv staged as the stage leaves it.
    staged = make_venv(old_layout.releases / f"{__version__}-test", REPOSITORY)
    (staged / MARKER).write_text("{}")
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/appliance"
    settings = make_settings(tmp_path, nowhere, migrated=False)
    command = [str(staged / "bin" / "python"), "-m", "appliance", "upgrade", str(REPOSITORY), "--check"]
    done = subprocess.run(
        [*command, "--venv", str(old_layout.venv), "--staged", str(staged)],
        env=settings_env(settings) | {"PYTHONPATH": SITE_PACKAGES},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[1/6] preflight" in done.stdout
    assert "      database    FAIL  cannot reach the database: " in done.stdout
    assert done.stderr.startswith("appliance: error: upgrade refused: database: cannot reach the database: ")
    assert done.stderr.rstrip().endswith("(and 2 more above); nothing was changed")
    assert not staged.exists()  # the venv made for the checks is gone
    assert not old_layout.venv.is_symlink()  # the venv in use is as it was
