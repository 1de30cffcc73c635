"""`appliance console` refuses bad input with one line naming it, before drawing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_environ


def console(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = clean_environ() | {"XDG_CONFIG_HOME": str(home), "APPLIANCE_DATA_DIR": str(home / "data")}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "console", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--target", "nope"), "no target named 'nope'"),
        (("--view", "bogus"), "unknown view 'bogus'"),
        (("--refresh", "0.1"), "Invalid value for '--refresh'"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    done = console(*args, home=tmp_path)
    assert done.returncode != 0
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_targets_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "forge-appliance").mkdir()
    (tmp_path / "forge-appliance" / "targets.toml").write_text('[targets.prod]\napi_url = "nope"\n')
    done = console("--target", "prod", home=tmp_path)
    assert done.returncode == 1
    assert "[targets.prod] api_url: 'nope' is not an http(s) URL" in done.stderr


def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "forge-appliance").mkdir()
    credentials = tmp_path / "forge-appliance" / "credentials.json"
    credentials.write_text("{}")
    credentials.chmod(0o644)
    done = console(home=tmp_path)
    assert done.returncode == 1
    assert "readable by others" in done.stderr
    assert "Traceback" not in done.stderr
