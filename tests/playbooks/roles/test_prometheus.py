"""The prometheus role's scrape settings and the appliance's alert rules, written by the role exactly as on a
monitoring host, pass promtool's full checks: Prometheus would start on them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.playbooks.support import REPO, failure_lines, recap, run_role_tasks
from tests.servers import unavailable

ALERTS = REPO / "config" / "prometheus" / "alerts.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool is not installed (install.sh --test installs it)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60)


def test_the_scrape_settings_and_alert_rules_the_role_writes_pass_promtool(tmp_path: Path) -> None:
    config = tmp_path / "prometheus" / "prometheus.yml"
    config.parent.mkdir()
    run = run_role_tasks(
        tmp_path,
        "prometheus",
        "configure",
        {
            "prometheus_config_file": str(config),
            "common_host_address": "10.0.0.5",
            "appliance_api_port": 8081,
            "common_systemd": False,
            "prometheus_pid_file": str(tmp_path / "prometheus.pid"),  # none: nothing to reload
        },
        groups=("app", "monitoring"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert failure_lines(run) == []
    assert recap(run.stdout)["testhost"]["changed"] == 2  # the rules and the settings
    rules = config.parent / "forge-appliance-alerts.yml"
    assert rules.read_bytes() == ALERTS.read_bytes()
    shipped_rules = sum(len(group["rules"]) for group in yaml.safe_load(ALERTS.read_text())["groups"])
    settings = yaml.safe_load(config.read_text())
    assert settings["rule_files"] == [rules.name]
    (job,) = settings["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["10.0.0.5:8081"]}]  # every app host's API

    checked = promtool("check", "config", str(config))  # the rules too, as Prometheus loads them
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    assert f"Checking {rules}\n  SUCCESS: {shipped_rules} rules found" in checked.stdout
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {shipped_rules} rules found" in checked.stdout
