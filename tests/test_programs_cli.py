"""The supervisor's verbs as a user runs them against a real appliance: reload under load, start, stop,
restart, logs and events, and clear errors for unknown names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import KeepAliveLoad, appliance_env, wait_for


def appliance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=180
    )


def pids(env: dict[str, str], name: str) -> set[int]:
    status = json.loads(appliance("status", "--json", env=env).stdout)
    return {p["pid"] for p in status["programs"] if p["name"].split(":")[0] == name and p["pid"]}


@pytest.fixture(scope="module")
def running() -> Iterator[dict[str, str]]:
    env, data = appliance_env("verbs")
    env["APPLIANCE_API__INSTANCES"] = "2"
    env["APPLIANCE_LOGGING__ACCESS_LOG"] = "false"
    for step in (("init",), ("migrate",), ("up",)):
        done = appliance(*step, env=env)
        assert done.returncode == 0, done.stderr
    yield env
    appliance("down", env=env)
    shutil.rmtree(data, ignore_errors=True)


def test_two_api_processes_share_the_port(running: dict[str, str]) -> None:
    assert len(pids(running, "api")) == 2


def test_reload_under_load_fails_no_request(running: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{running['APPLIANCE_API__PORT']}"
    before = pids(running, "api")
    with KeepAliveLoad(url) as load:
        load.wait_for_more(100, "traffic before the reload")
        reload = appliance("reload", "api", env=running)
        assert reload.returncode == 0, reload.stderr
        assert reload.stdout.strip() == "reloaded: api"
        load.wait_for_more(100, "traffic after the reload")
    assert load.failures == []
    after = pids(running, "api")
    assert len(after) == 2
    assert not before & after, "every API process was replaced"


def test_stop_start_restart_worker(running: dict[str, str]) -> None:
    first = pids(running, "worker")
    assert appliance("stop", "worker", env=running).stdout.strip() == "stopped: worker"
    assert pids(running, "worker") == set()
    assert appliance("start", "worker", env=running).returncode == 0
    second = wait_for(lambda: pids(running, "worker"), what="the worker to start again")
    assert second != first
    assert appliance("restart", "worker", env=running).returncode == 0
    third = wait_for(lambda: pids(running, "worker") - second, what="a new worker process")
    assert third


def test_logs_and_events(running: dict[str, str]) -> None:
    lines = appliance("logs", "api", "-n", "5", env=running)
    assert lines.returncode == 0, lines.stderr
    assert 0 < len(lines.stdout.splitlines()) <= 5
    assert appliance("logs", "supervisor", "--since", "1h", env=running).stdout
    events = appliance("events", "--json", env=running)
    kinds = {json.loads(line)["kind"] for line in events.stdout.splitlines()}
    assert "state" in kinds


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("restart", "nope"), "unknown program 'nope'"),
        (("logs", "nope"), "unknown program 'nope'"),
        (("logs", "api", "--since", "yesterday-ish"), "--since"),
    ],
)
def test_bad_names_are_one_clear_line(running: dict[str, str], args: tuple[str, ...], fragment: str) -> None:
    run = appliance(*args, env=running)
    assert run.returncode != 0
    assert fragment in run.stderr
    assert "Traceback" not in run.stderr


def test_verbs_say_when_the_appliance_is_not_running() -> None:
    env, _ = appliance_env("verbs-off")
    run = appliance("restart", "api", env=env)
    assert run.returncode == 1
    assert "the supervisor is not running" in run.stderr
    assert "appliance up" in run.stderr
