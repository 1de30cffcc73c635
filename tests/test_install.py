"""install.sh end to end: a copy of the repository, installed and started as a new user would, twice."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance import __version__
from tests.servers import unavailable
from tests.support import appliance_env, copy_checkout

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked and new, nothing ignored)."""
    return copy_checkout(tmp_path / "repo")


@pytest.fixture
def install_env(checkout: Path) -> Iterator[dict[str, str]]:
    env, data = appliance_env("install")
    yield env
    command = checkout / ".venv/bin/appliance"
    if command.exists():
        subprocess.run([str(command), "down"], env=env, capture_output=True, check=False)
    shutil.rmtree(data, ignore_errors=True)


def run_install(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """install.sh as a user runs it, the command linked beside the checkout (never into this machine's
    /usr/local/bin)."""
    if "--bin-dir" not in args:
        args = (*args, "--bin-dir", str(checkout.parent / "bin"))
    return subprocess.run(
        ["bash", str(checkout / "install.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def api_pids(checkout: Path, env: dict[str, str]) -> list[int]:
    """The pids of the running API processes (a restart changes them)."""
    status = subprocess.run(
        [str(checkout / ".venv/bin/appliance"), "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [p["pid"] for p in json.loads(status.stdout)["programs"] if p["name"].startswith("api")]


def test_install_starts_a_ready_appliance_is_idempotent_and_refuses_a_taken_port(
    checkout: Path, install_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = checkout.parent / "bin"  # where run_install links the command
    env = install_env | {"PATH": f"{bin_dir}:{install_env['PATH']}"}
    first = run_install(checkout, env)
    assert first.returncode == 0, first.stdout + first.stderr
    url = f"http://127.0.0.1:{install_env['APPLIANCE_API__PORT']}"
    assert f"Forge Appliance is running at {url}" in first.stdout
    assert "one-time password: " in first.stdout
    assert "the operator account printed above" in first.stdout
    assert httpx.get(f"{url}/health/ready").status_code == 200
    # `appliance` is on the PATH, from any directory.
    assert (bin_dir / "appliance").resolve() == (checkout / ".venv/bin/appliance").resolve()
    assert f"linked {bin_dir}/appliance -> {checkout}/.venv/bin/appliance" in first.stdout
    assert "  status:    appliance status" in first.stdout
    on_path = subprocess.run(
        ["appliance", "status"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert on_path.returncode == 0, on_path.stderr
    pids = api_pids(checkout, env)

    # Nothing to change: nothing installed, the running appliance left alone, no password sentence.
    second = run_install(checkout, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "is up to date with this checkout" in second.stdout
    assert "installing forge-appliance" not in second.stdout
    assert "stopping it to upgrade" not in second.stdout
    assert "the appliance is running and nothing changed: left running" in second.stdout
    assert "an operator account exists already; none created" in second.stdout
    assert "one-time password: " not in second.stdout
    assert "printed above" not in second.stdout
    assert "appliance admin reset-password EMAIL" in second.stdout
    assert "signing key: " in second.stdout
    assert "(kept)" in second.stdout
    assert f"Forge Appliance is running at {url}" in second.stdout
    assert api_pids(checkout, env) == pids
    assert httpx.get(f"{url}/health/ready").status_code == 200

    # A changed checkout is installed beside the running one and the appliance upgraded onto it in place
    # (`appliance upgrade`: a new venv, a backup, a rolling restart), never stopped.
    init = checkout / "appliance" / "__init__.py"
    init.write_text(init.read_text() + "# changed\n")
    third = run_install(checkout, env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "the appliance is running: upgrading it in place" in third.stdout
    assert f"upgraded {__version__} -> {__version__}" in third.stdout
    assert "stopping it to upgrade" not in third.stdout
    assert (checkout / ".venv").resolve().parent == checkout / ".venvs"
    assert api_pids(checkout, env) != pids
    assert httpx.get(f"{url}/health/ready").status_code == 200

    down = subprocess.run(
        [str(checkout / ".venv/bin/appliance"), "down"],
        env=install_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.stdout.strip() == "the appliance stopped"

    # A port another program holds: the run stops naming it (the install itself is up to date: quick).
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(install_env["APPLIANCE_API__PORT"])))
        holder.listen()
        taken = run_install(checkout, env)
    assert taken.returncode != 0
    assert f"cannot listen on 127.0.0.1:{install_env['APPLIANCE_API__PORT']}" in taken.stderr
    assert "Forge Appliance is running" not in taken.stdout


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


def test_production_installs_debians_python_on_a_host_without_one(
    checkout: Path, install_env: dict[str, str], tmp_path: Path
) -> None:
    # A bare Debian 12 (minbase): no Python at all. apt-get is a stand-in that only records what it was
    # asked (the real one is exercised by tests/bench/bench_production_install.py on a bare container).
    if os.geteuid() != 0:
        unavailable("install.sh --production runs as root")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "id", "cat", "env"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    asked = tmp_path / "apt-get.args"
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!{shutil.which("bash")}\necho "$*" >> {asked}\n')
    apt.chmod(0o755)
    run = run_install(checkout, install_env | {"PATH": str(bin_dir)}, "--production")
    assert "no Python 3.11 or newer on this host: installing Debian's" in run.stdout
    assert asked.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends python3 python3-venv",
    ]
    # The stand-in installed nothing: still no Python, and it says so.
    assert run.returncode == 1
    assert "Python 3.11 or newer is required (found: none)" in run.stderr


def test_install_rejects_unknown_options(checkout: Path, install_env: dict[str, str]) -> None:
    run = run_install(checkout, install_env, "--frobnicate")
    assert run.returncode == 2
    assert "unknown option '--frobnicate'" in run.stderr
