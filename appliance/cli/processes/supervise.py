"""How the appliance's commands start the supervisor: its argv and environment from the Settings.

`appliance supervise` (what the systemd unit runs) and `appliance up` read the same settings as every
other command (the file and the APPLIANCE_* variables), then run the standard-library supervisor with the
API's address and instance count, the run and log directories and the services file taken from them.
The supervisor itself never loads pydantic: it gets what it needs as arguments and environment variables
(the services file interpolates `${APPLIANCE_API__PORT}` and friends).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

from appliance.client.supervisor import SupervisorClient, SupervisorUnavailable
from appliance.config import Settings


def control_socket(settings: Settings) -> Path:
    """The supervisor's control socket."""
    return settings.run_dir / "control.sock"


def services_file(settings: Settings) -> Path:
    """`supervisor.services_file`, or the one built into the package."""
    if settings.supervisor.services_file is not None:
        return settings.supervisor.services_file
    return Path(__file__).parents[2] / "supervisor" / "default_services.toml"


def supervisor_env(
    settings: Settings, config_path: Path | None, run_dir: Path | None = None, log_dir: Path | None = None
) -> dict[str, str]:
    """The environment of the supervisor and so of every program: the same settings, resolved.

    The services file reads the API's address and instance count from it (`${APPLIANCE_API__PORT}`...), and
    every program reads the same settings file (`APPLIANCE_CONFIG`, made absolute) and directories."""
    env = dict(os.environ)
    env["APPLIANCE_PYTHON"] = sys.executable
    env["APPLIANCE_DATA_DIR"] = str(settings.data_dir)
    env["APPLIANCE_API__HOST"] = settings.api.host
    env["APPLIANCE_API__PORT"] = str(settings.api.port)
    env["APPLIANCE_API__INSTANCES"] = str(settings.api.instances)
    if run_dir is not None and run_dir != settings.run_dir:  # an override on the command line
        env["APPLIANCE_SUPERVISOR__RUN_DIR"] = str(run_dir.resolve())
    if log_dir is not None and log_dir != settings.log_dir:
        env["APPLIANCE_SUPERVISOR__LOG_DIR"] = str(log_dir.resolve())
    env["PROMETHEUS_MULTIPROC_DIR"] = str((run_dir or settings.run_dir) / "metrics")
    if config_path is not None:
        env["APPLIANCE_CONFIG"] = str(config_path.resolve())
    return env


def supervisor_command(
    settings: Settings,
    config_path: Path | None,
    *,
    services: Path | None = None,
    run_dir: Path | None = None,
    log_dir: Path | None = None,
    flags: tuple[str, ...] = (),
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of the standard-library supervisor for these settings; `services`,
    `run_dir` and `log_dir` override the settings' (`appliance supervise --services ...`)."""
    # -P: the supervisor's package comes from the venv, not from the directory it was started in.
    argv = [
        sys.executable, "-P", "-m", "appliance.supervisor",
        "--services", str(services or services_file(settings)),
        "--run-dir", str(run_dir or settings.run_dir),
        "--log-dir", str(log_dir or settings.log_dir),
        *flags,
    ]  # fmt: skip
    return argv, supervisor_env(settings, config_path, run_dir, log_dir)


def prepare_directories(run_dir: Path, log_dir: Path) -> None:
    """Create the run and log directories, and start the multiprocess metrics afresh (samples of an
    earlier run's processes would count) unless a supervisor is running there already."""
    for path in (run_dir, log_dir):
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
    metrics_dir = run_dir / "metrics"
    try:
        SupervisorClient(run_dir / "control.sock", timeout=5.0).status()
    except SupervisorUnavailable:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o750, exist_ok=True)


def exec_supervisor(
    settings: Settings,
    config_path: Path | None,
    *,
    services: Path | None = None,
    run_dir: Path | None = None,
    log_dir: Path | None = None,
    flags: tuple[str, ...] = (),
) -> NoReturn:
    """`appliance supervise`: become the supervisor (same pid, as systemd's Type=notify needs).

    The settings are read here, with pydantic; the supervisor itself is a fresh interpreter that loads the
    standard library only, so it stays small and keeps working when everything else is broken."""
    argv, env = supervisor_command(
        settings, config_path, services=services, run_dir=run_dir, log_dir=log_dir, flags=flags
    )
    if not {"--check", "--reload-config"} & set(flags):
        prepare_directories(run_dir or settings.run_dir, log_dir or settings.log_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606  (our own interpreter, argv built above)
