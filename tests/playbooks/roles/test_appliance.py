"""The appliance role refuses bad input at the task that finds it, with one line naming the host and the
value, before it changes anything: no package to install, a port already taken or out of range, settings
that `appliance config check` refuses (the settings file in place is left as it was)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.playbooks.support import BIN, failed_task, failure_lines, recap, run_role_tasks
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


def check_port(tmp_path: Path, port: int) -> dict[str, object]:
    config = tmp_path / "appliance.toml"
    config.write_text(f'mode = "development"\ndata_dir = "{tmp_path / "data"}"\n')  # not running there
    return {
        "common_user": "root",
        "appliance_venv_dir": str(BIN.parent),
        "appliance_config_file": str(config),
        "appliance_api_host": "127.0.0.1",
        "appliance_api_port": port,
    }


def test_a_port_already_taken_stops_the_run_before_the_appliance_starts(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        unavailable(
            "the role runs `appliance status` as the appliance's account with runuser, which needs root"
        )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_role_tasks(tmp_path, "appliance", "check_port", check_port(tmp_path, port))
    assert run.returncode != 0
    assert recap(run.stdout)["testhost"]["failed"] == 1
    (line,) = failure_lines(run)
    assert (
        f"testhost: the API's port {port} (appliance_api_port) on 127.0.0.1 is already taken by another "
        "program" in line
    )
    assert failed_task(run, line) == "appliance : Stop when another program holds the API port"


def test_a_free_port_passes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        unavailable(
            "the role runs `appliance status` as the appliance's account with runuser, which needs root"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: nothing answers there
        run = run_role_tasks(tmp_path, "appliance", "check_port", check_port(tmp_path, port))
    assert run.returncode == 0, run.stdout + run.stderr
    assert failure_lines(run) == []


@pytest.mark.parametrize("port", [0, 70000, "abc"])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: object) -> None:
    run = run_role_tasks(
        tmp_path,
        "appliance",
        "validate",
        {
            "appliance_source_dir": "/srv/forge-appliance",
            "appliance_secret_key": "k" * 64,
            "appliance_api_port": port,
        },
        groups=("app", "database", "redis"),
    )
    assert run.returncode != 0
    (line,) = failure_lines(run)
    assert f"testhost: appliance_api_port must be a TCP port (got {port})" in line
    assert failed_task(run, line) == "appliance : Check the API port"


def configure(tmp_path: Path, overrides: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """The role's configure tasks, up to the settings file, against a settings file already in place."""
    return run_role_tasks(
        tmp_path,
        "appliance",
        "configure",
        {
            "common_user": "root",
            "common_group": "root",
            "common_data_dir": str(tmp_path / "data"),
            "common_log_dir": str(tmp_path / "log"),
            "common_private_address": "127.0.0.1",
            "common_host_address": "127.0.0.1",
            "appliance_venv_dir": str(BIN.parent),
            "appliance_config_file": str(tmp_path / "appliance.toml"),
            "appliance_secret_key": "k" * 64,
            "appliance_api_instances": 1,
            "appliance_systemd_unit_dir": str(tmp_path / "systemd"),
            "postgresql_database": "forge_appliance",
            "postgresql_owner": "forge_owner",
            "postgresql_owner_password": "o" * 32,
            "postgresql_app_role": "forge_app",
            "postgresql_app_password": "a" * 32,
            "postgresql_backup_role": "forge_backup",
            "postgresql_backup_password": "b" * 32,
            "redis_password": "r" * 32,
            "appliance_config_overrides": overrides,
        },
        groups=("app", "database", "redis"),
    )


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        (
            {"api": {"port": "abc"}},
            "key 'api.port': Input should be a valid integer, unable to parse string as an integer "
            "(got 'abc')",
        ),
        ({"api": {"colour": "blue"}}, "key 'api.colour': unknown key (allowed here: host, "),
    ],
)
def test_settings_the_appliance_refuses_stop_the_run_and_leave_the_settings_file_as_it_was(
    tmp_path: Path, overrides: dict[str, object], refusal: str
) -> None:
    if os.geteuid() != 0:
        unavailable("the role writes the settings file owned by root")
    config = tmp_path / "appliance.toml"
    config.write_text('# the settings in force\nmode = "development"\n')
    before = config.read_bytes()
    run = configure(tmp_path, overrides)
    assert run.returncode != 0
    assert recap(run.stdout)["testhost"]["failed"] == 1
    (line,) = failure_lines(run)
    assert (
        f"testhost: `appliance config check` refuses the settings for {config} (appliance_* variables, "
        f"appliance_config_overrides), which is left as it was: {refusal}"
    ) in line
    assert failed_task(run, line) == "appliance : Stop when `appliance config check` refuses the settings"
    assert config.read_bytes() == before
    assert not (tmp_path / "systemd").exists()  # nothing after the settings file ran
