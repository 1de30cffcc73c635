"""The shipped systemd unit: systemd accepts it, and its directives fit how the supervisor works."""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from appliance.cli.processes.serve import DRAIN_S, KEEPALIVE_DRAIN_S
from appliance.client.supervisor import SupervisorClient, SupervisorUnavailable
from appliance.supervisor.specs import load_services
from tests.servers import free_port, unavailable
from tests.support import clean_environ, wait_for

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "config" / "forge-appliance.service"
INSTALLED_APPLIANCE = "/opt/forge-appliance/.venv/bin/appliance"
DATA_DIR = "/var/lib/forge-appliance"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> keys -> values in order (systemd allows a key several times)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text())


def one(unit: Unit, section: str, key: str) -> str:
    (value,) = unit[section][key]
    return value


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed")
    assert analyze is not None
    # verify checks that ExecStart exists: point it at this checkout's `appliance` instead of /opt's.
    appliance = Path(sys.executable).with_name("appliance")
    assert appliance.exists()
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALLED_APPLIANCE, str(appliance)))
    run = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr  # unknown or misspelt directives are only warnings


def test_it_runs_the_supervisor_in_the_foreground_from_the_settings_file(unit: Unit) -> None:
    assert (
        one(unit, "Service", "Type") == "notify"
    )  # the supervisor sends READY=1 (appliance.supervisor.notify)
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert shlex.split(one(unit, "Service", "ExecStart")) == [INSTALLED_APPLIANCE, "supervise"]
    assert "APPLIANCE_CONFIG=/etc/forge-appliance/appliance.toml" in unit["Service"]["Environment"]
    # data_dir's default for the service account is $XDG_DATA_HOME/forge-appliance: the StateDirectory.
    assert "XDG_DATA_HOME=/var/lib" in unit["Service"]["Environment"]
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_the_units_exec_start_serves_the_api_where_the_settings_file_says(unit: Unit, tmp_path: Path) -> None:
    """ExecStart exactly as written; only the venv's path and the settings file's location differ."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="fa-unit-", dir="/tmp"))  # short: the control socket's path
    config = data / "appliance.toml"
    config.write_text(f'data_dir = "{data}"\n\n[api]\nport = {port}\n')
    env = clean_environ()
    for assignment in unit["Service"]["Environment"]:
        name, _, value = assignment.partition("=")
        env[name] = value
    env["APPLIANCE_CONFIG"] = str(config)  # the settings file's location, as the unit names it
    appliance = str(Path(sys.executable).with_name("appliance"))
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    argv[0] = appliance  # the venv's path
    for step in ("init", "migrate"):
        subprocess.run([appliance, step], env=env, check=True, capture_output=True, timeout=120)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(data / "systemd-notify.sock"))  # stands in for systemd's notify socket
        systemd.settimeout(60)
        env["NOTIFY_SOCKET"] = str(data / "systemd-notify.sock")
        journal = tmp_path / "journal"  # the supervisor's stderr, which systemd sends to the journal
        with journal.open("wb") as err:
            proc = subprocess.Popen(argv, env=env, cwd=data, stdout=subprocess.DEVNULL, stderr=err)
        try:
            messages = b""
            while b"READY=1" not in messages.split(b"\n"):
                messages += b"\n" + systemd.recv(4096)  # Type=notify: `systemctl start` returns now
            answer = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=10)
            assert answer.status_code == 200
            status = SupervisorClient(data / "run" / "control.sock").status()
            assert status["supervisor"]["pid"] == proc.pid  # the main pid systemd watches is the supervisor
            assert {p["name"] for p in status["programs"]} == {"api", "worker"}
            proc.send_signal(signal.SIGTERM)  # KillSignal
            assert proc.wait(timeout=float(one(unit, "Service", "TimeoutStopSec"))) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            shutil.rmtree(data, ignore_errors=True)
    assert "all programs stopped" in journal.read_text()


def test_the_supervisor_systemd_runs_is_standard_library_only(unit: Unit, tmp_path: Path) -> None:
    """`appliance supervise` reads the settings with pydantic, then becomes (same pid) an interpreter that
    never loaded it: the long-lived supervisor stays small."""
    data = Path(tempfile.mkdtemp(prefix="fa-unit-", dir="/tmp"))
    env = clean_environ() | {"APPLIANCE_DATA_DIR": str(data), "APPLIANCE_API__PORT": str(free_port())}
    services = tmp_path / "services.toml"
    services.write_text('[programs.idle]\ncommand = ["sleep", "600"]\n')
    argv = [str(Path(sys.executable).with_name("appliance")), "supervise", "--services", str(services)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = SupervisorClient(data / "run" / "control.sock")
        wait_for(lambda: _answers(client), timeout=60, what="the supervisor's control socket")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:4] == [b"-P", b"-m", b"appliance.supervisor"]
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "pydantic" not in maps
        assert "sqlalchemy" not in maps
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def _answers(client: SupervisorClient) -> bool:
    try:
        client.status()
    except SupervisorUnavailable:
        return False
    return True


def test_only_the_supervisor_gets_sigterm_and_systemd_cleans_up_after_it(unit: Unit) -> None:
    assert one(unit, "Service", "KillMode") == "mixed"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert one(unit, "Service", "Restart") == "always"


def test_the_stop_timeout_outlasts_the_supervisors_ordered_stop(unit: Unit) -> None:
    # Programs stop one after another (dependents first), so the worst case is the sum of their timeouts.
    for services in (REPO / "config" / "services.toml", REPO / "appliance/supervisor/default_services.toml"):
        worst = sum(p.stop_timeout for p in load_services(services).programs)
        assert float(one(unit, "Service", "TimeoutStopSec")) > worst + 5, services


def test_an_api_process_finishes_its_requests_before_the_supervisor_would_kill_it() -> None:
    # The API's drain (keep-alive hand-over, then in-flight requests) is bounded by DRAIN_S; the supervisor
    # SIGKILLs after stop_timeout. A drain longer than the stop timeout kills requests mid-way.
    assert KEEPALIVE_DRAIN_S < DRAIN_S
    for services in (REPO / "config" / "services.toml", REPO / "appliance/supervisor/default_services.toml"):
        api = load_services(services).get("api")
        assert api is not None
        assert api.stop_timeout >= DRAIN_S + 5, services


def test_it_runs_unprivileged_and_hardened_with_a_writable_data_dir(unit: Unit) -> None:
    service = unit["Service"]
    assert one(unit, "Service", "User") not in ("", "root", "0")
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == [value], key
    assert DATA_DIR in service["ReadWritePaths"]
    assert one(unit, "Service", "StateDirectory") == DATA_DIR.rsplit("/", 1)[1]
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_every_directive_is_explained_by_a_comment_above_it() -> None:
    previous = ""
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            assert previous.startswith("#"), f"no comment above {line!r}"
        previous = line
