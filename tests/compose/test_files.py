"""compose/docker-compose.yml is a file docker-compose v1 accepts (`config -q`, no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.compose.engine import COMPOSE_FILE, REPO
from tests.servers import unavailable


def test_docker_compose_accepts_the_file() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        unavailable("docker-compose (compose v1) is not installed: apt-get install docker-compose")
    # Only the defaults written in the file: no FORGE_* variable of the caller's shell.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FORGE_", "COMPOSE_"))}
    run = subprocess.run(
        [compose, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr == ""  # no warning either (an unset variable, a deprecated key)
