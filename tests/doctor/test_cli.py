"""`appliance doctor` as an admin runs it: a real process, a settings file, the table or JSON, exit 1 when
a check fails, and one report (not a traceback) when even the settings are wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appliance.doctor import report
from tests.servers import free_port
from tests.support import clean_environ, make_settings


def _doctor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), "doctor", *args],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unreachable_database_fails_the_command_and_is_named(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, migrated=False)  # the signing key in place, nothing else
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'[database]\nurl = "postgresql+psycopg://app:pw@127.0.0.1:{port}/appliance"\nconnect_timeout = 2\n'
    )
    shown = _doctor(config)
    assert shown.returncode == 1, shown.stderr
    assert shown.stderr == ""
    rows = {line.split()[1]: line for line in shown.stdout.splitlines()[1:] if line[:1].isupper()}
    assert rows["database"].startswith("FAIL    database")
    assert f"cannot reach 127.0.0.1:{port}/appliance as app" in rows["database"]
    assert rows["migrations"].split()[0] == "SKIP"
    assert f"settings from file {config}" in rows["config"]

    as_json = _doctor(config, "--json")
    assert as_json.returncode == 1
    findings = json.loads(as_json.stdout)
    assert [f["check"] for f in findings] == [check.name for check in report.CHECKS]
    assert all(set(f) == {"check", "status", "finding", "hint"} for f in findings)
    database = next(f for f in findings if f["check"] == "database")
    assert database["status"] == "fail"
    assert str(port) in database["finding"]
    assert "database.url" in database["hint"]


def test_settings_that_cannot_be_read_are_the_one_failure(tmp_path: Path) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text("[database]\nurl = 5\n")
    shown = _doctor(config, "--json")
    assert shown.returncode == 1
    assert "Traceback" not in shown.stderr
    (finding,) = json.loads(shown.stdout)
    assert (finding["check"], finding["status"]) == ("config", "fail")
    assert f"{config}: key 'database.url'" in finding["finding"]
