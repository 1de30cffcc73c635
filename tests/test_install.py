"""install.sh end to end: a copy of the repository, installed and started as a new user would, twice."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import appliance_env

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked and new, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target = tmp_path / "repo"
    for raw in filter(None, listed):
        source = REPO / raw.decode()
        if source.is_file():
            (target / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / raw.decode())
    return target


@pytest.fixture
def install_env(checkout: Path) -> Iterator[dict[str, str]]:
    env, data = appliance_env("install")
    yield env
    command = checkout / ".venv/bin/appliance"
    if command.exists():
        subprocess.run([str(command), "down"], env=env, capture_output=True, check=False)
    shutil.rmtree(data, ignore_errors=True)


def run_install(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "install.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_install_starts_a_ready_appliance_and_is_idempotent(
    checkout: Path, install_env: dict[str, str]
) -> None:
    first = run_install(checkout, install_env)
    assert first.returncode == 0, first.stdout + first.stderr
    url = f"http://127.0.0.1:{install_env['APPLIANCE_API__PORT']}"
    assert f"Forge Appliance is running at {url}" in first.stdout
    assert "one-time password: " in first.stdout
    assert httpx.get(f"{url}/health/ready").status_code == 200

    second = run_install(checkout, install_env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "an operator account exists already; none created" in second.stdout
    assert "one-time password" not in second.stdout
    assert "signing key: " in second.stdout
    assert "(kept)" in second.stdout
    assert httpx.get(f"{url}/health/ready").status_code == 200

    down = subprocess.run(
        [str(checkout / ".venv/bin/appliance"), "down"],
        env=install_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.stdout.strip() == "the appliance stopped"


def test_install_refuses_a_port_in_use(checkout: Path, install_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(install_env["APPLIANCE_API__PORT"])))
        holder.listen()
        run = run_install(checkout, install_env)
    assert run.returncode != 0
    assert f"cannot listen on 127.0.0.1:{install_env['APPLIANCE_API__PORT']}" in run.stderr


def test_install_names_a_missing_python(checkout: Path, install_env: dict[str, str], tmp_path: Path) -> None:
    # A PATH with bash and coreutils but no Python at all.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "id", "cat", "env"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    run = run_install(checkout, install_env | {"PATH": str(bin_dir)})
    assert run.returncode == 1
    assert "Python 3.11 or newer is required (found: none)" in run.stderr


def test_install_rejects_unknown_options(checkout: Path, install_env: dict[str, str]) -> None:
    run = run_install(checkout, install_env, "--frobnicate")
    assert run.returncode == 2
    assert "unknown option '--frobnicate'" in run.stderr
