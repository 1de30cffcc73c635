"""The appliance role refuses a converge that names no package to install, with one line saying what to
pass, before any role changes anything on the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import unavailable
from tests.support import clean_environ


def test_without_a_package_source_this_host_is_left_alone_with_one_line_saying_what_to_pass(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        unavailable("converging this host with the bundled playbooks needs root")
    choices = tmp_path / "reconfigure.yml"
    choices.write_text(f"common_credentials_dir: {tmp_path / 'credentials'}\n")
    command = [sys.executable, "-m", "appliance", "--config", str(tmp_path / "appliance.toml"), "reconfigure"]
    run = subprocess.run(
        [*command, "--vars", str(choices)],
        env=clean_environ(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.splitlines() == [
        'appliance: error: localhost: task "appliance : Check that a package source is given" failed: '
        "localhost: no package to install: pass appliance_source_dir (a checkout or unpacked sdist on the "
        "host, e.g. -e appliance_source_dir=/srv/forge-appliance) or appliance_wheel (a wheel on the "
        "controller)"
    ]
    assert "no task changed anything" in run.stdout
    assert "task: common :" not in run.stdout  # before the first role
    assert not (tmp_path / "credentials").exists()  # no password generated
    assert not (tmp_path / "appliance.toml").exists()
