"""The shipped systemd unit: systemd accepts it, and its directives fit how the supervisor works."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.serve import DRAIN_S, KEEPALIVE_DRAIN_S
from appliance.supervisor.main import build_parser
from appliance.supervisor.specs import load_services
from tests.servers import unavailable

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


def test_it_runs_the_supervisor_in_the_foreground_with_valid_arguments(unit: Unit) -> None:
    assert (
        one(unit, "Service", "Type") == "notify"
    )  # the supervisor sends READY=1 (appliance.supervisor.notify)
    assert one(unit, "Service", "NotifyAccess") == "main"
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[:2] == [INSTALLED_APPLIANCE, "supervise"]
    args = build_parser().parse_args(argv[2:])
    assert str(args.services) == "/etc/forge-appliance/services.toml"
    assert str(args.run_dir) == f"{DATA_DIR}/run"
    assert str(args.log_dir) == f"{DATA_DIR}/logs"
    assert "APPLIANCE_CONFIG=/etc/forge-appliance/appliance.toml" in unit["Service"]["Environment"]
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


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
