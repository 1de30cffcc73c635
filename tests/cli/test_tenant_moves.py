"""`appliance tenant export` and `appliance tenant import` as an operator runs them, on both databases: what
moved is printed (rows per table, the archive, what is not moved), a refusal is one line that changes
nothing, and a terminal sees a progress line."""

from __future__ import annotations

import os
import pty
import select as selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.errors import InvalidInput
from appliance.services.backups import catalog, keys
from tests.services.backups.tenant_data import Appliance, appliance, every_row, fill
from tests.support import settings_env


@pytest.fixture
def source(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Appliance]:
    pg = request.getfixturevalue("pg_database") if database_url.startswith("postgresql") else None
    with appliance(tmp_path, pg) as made:
        yield made


def _env(made: Appliance) -> dict[str, str]:
    return settings_env(made.settings) | {"APPLIANCE_DATABASE__MIGRATIONS_URL": made.settings.migrations_url}


def _ok(made: Appliance, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=_env(made))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _process(made: Appliance, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    options: dict[str, Any] = {"capture_output": True} | kwargs
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=_env(made), text=True, timeout=120, **options
    )


def test_export_and_import_say_what_moved_and_a_refusal_is_one_line(
    source: Appliance, tmp_path: Path
) -> None:
    fill(source.owner, "acme")
    target = tmp_path / "out" / "acme.age"
    target.parent.mkdir()

    exported = _ok(source, "tenant", "export", "acme", "--output", str(target))

    assert f"exported to {target}" in exported
    again = CliRunner().invoke(app, ["tenant", "export", "acme", "--output", str(target)], env=_env(source))
    assert again.exit_code == 1
    assert "exists already" in str(again.exception)
    assert catalog.read_summary(target).tenant == "acme"
    assert "projects" in exported
    assert "app_checks" in exported
    assert "rows:" in exported
    assert "not moved:" in exported
    assert "refresh_tokens: sessions: the members sign in again" in exported
    before = every_row(source.admin_url)

    refused = _process(source, "tenant", "import", str(target))
    assert refused.returncode == 1, refused
    assert "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("appliance: error: tenant ")
    assert "is already here" in line
    assert "--as NEW_SLUG" in line
    assert every_row(source.admin_url) == before

    # Opened with a key given as a file (as another appliance's would be).
    copied = _ok(
        source,
        "tenant",
        "import",
        str(target),
        "--as",
        "acme-copy",
        "--key-file",
        str(source.settings.backup_key_file),
    )
    assert "tenant acme-copy (" in copied
    assert "a copy of acme with new ids" in copied
    assert "API keys were not copied: a key authenticates one tenant" in copied
    assert "open invitations were not copied" in copied
    assert "heartbeat apps have new heartbeat URLs" in copied
    assert "not moved:" in copied

    with_copy = every_row(source.admin_url)
    wrong_key = tmp_path / "other.key"
    keys.create(wrong_key)
    refused_run = CliRunner().invoke(
        app,
        ["tenant", "import", str(target), "--as", "acme-two", "--key-file", str(wrong_key)],
        env=_env(source),
    )
    assert refused_run.exit_code == 1
    assert isinstance(refused_run.exception, InvalidInput)
    assert "none of the backup key's identities opens it (a wrong key)" in str(refused_run.exception)
    assert every_row(source.admin_url) == with_copy


def test_a_terminal_sees_the_export_progress(tmp_path: Path) -> None:
    with appliance(tmp_path, None) as made:
        fill(made.owner, "acme")
        controller, terminal = pty.openpty()
        try:
            run = _process(
                made,
                "tenant",
                "export",
                "acme",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=terminal,
                capture_output=False,
            )
            shown = b""
            while selectors.select([controller], [], [], 0.5)[0]:
                shown += os.read(controller, 65536)
        finally:
            os.close(terminal)
            os.close(controller)
    assert run.returncode == 0, run
    assert b"exporting: " in shown
    assert b"rows (100%)" in shown
