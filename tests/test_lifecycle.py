"""`appliance up`, `status` and `down` as a user runs them: real supervisor, real processes, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import appliance_env, wait_for


def appliance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=180
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    environment, data = appliance_env("up")
    yield environment
    appliance("down", env=environment)
    shutil.rmtree(data, ignore_errors=True)


def test_up_status_down(env: dict[str, str]) -> None:
    assert appliance("up", env=env).stderr.startswith("appliance: error: the signing key file")
    appliance("init", env=env)
    refused = appliance("up", env=env)
    assert refused.returncode == 1
    assert "migration(s) pending: run `appliance migrate` first" in refused.stderr
    appliance("migrate", env=env)

    assert appliance("status", env=env).returncode == 3
    up = appliance("up", env=env)
    assert up.returncode == 0, up.stderr
    url = f"http://127.0.0.1:{env['APPLIANCE_API__PORT']}"
    assert f"the appliance is ready at {url}" in up.stdout
    assert httpx.get(f"{url}/health/ready").status_code == 200

    status = json.loads(appliance("status", "--json", env=env).stdout)
    states = {p["name"]: p["state"] for p in status["programs"]}
    assert states == {"api": "running", "worker": "running"}
    assert status["ready"] == "ready"
    pids = [p["pid"] for p in status["programs"]] + [status["supervisor"]["pid"]]
    assert all(pid_alive(pid) for pid in pids)

    again = appliance("up", env=env)  # idempotent: a second `up` finds it running
    assert again.returncode == 0
    assert "already running" in again.stdout

    down = appliance("down", env=env)
    assert down.stdout.strip() == "the appliance stopped"
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=30, what="every process to exit")
    assert appliance("down", env=env).stdout.strip() == "the appliance is not running"


def test_up_refuses_a_port_in_use(env: dict[str, str]) -> None:
    appliance("init", env=env)
    appliance("migrate", env=env)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(env["APPLIANCE_API__PORT"])))
        holder.listen()
        run = appliance("up", env=env)
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{env['APPLIANCE_API__PORT']}" in run.stderr
    assert "Traceback" not in run.stderr
    assert appliance("status", env=env).returncode == 3  # nothing was left running


def test_up_reports_a_program_that_cannot_start(env: dict[str, str], tmp_path: Path) -> None:
    appliance("init", env=env)
    appliance("migrate", env=env)
    services = tmp_path / "services.toml"
    services.write_text('[programs.api]\ncommand = ["/nonexistent/appliance-api"]\n')
    config = tmp_path / "appliance.toml"
    config.write_text(f'[supervisor]\nservices_file = "{services}"\nready_timeout = 60\n')
    run = appliance("--config", str(config), "up", env=env)
    assert run.returncode == 1
    assert "program api cannot run" in run.stderr
    assert "/nonexistent/appliance-api" in run.stderr
    assert appliance("status", env=env).returncode == 3  # what was started was stopped again
