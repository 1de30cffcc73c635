"""The supervisor's verbs as a user runs them against a real appliance: reload under load, start, stop,
restart, logs and events, and clear errors for unknown names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.cli.programs import event_line
from appliance.client.supervisor import SupervisorClient
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


def test_a_second_reload_waits_for_the_first_and_says_so(running: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{running['APPLIANCE_API__PORT']}"
    control = SupervisorClient(Path(running["APPLIANCE_DATA_DIR"]) / "run" / "control.sock")
    before = pids(running, "api")
    asked = time.time()
    with KeepAliveLoad(url) as load:
        load.wait_for_more(100, "traffic before the reloads")
        first = subprocess.Popen(
            [sys.executable, "-m", "appliance", "reload", "api"],
            env=running,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda: any("starting a new process" in e["message"] for e in control.events(since=asked)),
            what="the first reload to be under way",
        )
        second = appliance("reload", "api", env=running)
        out, _ = first.communicate(timeout=300)
        load.wait_for_more(100, "traffic after the reloads")
    assert first.returncode == 0
    assert out.strip() == "reloaded: api"
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == (
        "reloaded: api (a reload of api was under way: waited for it to finish, then replaced every "
        "process again)"
    )
    assert load.failures == []
    started = [e for e in control.events(since=asked) if "starting a new process" in e["message"]]
    assert len(started) == 4  # two rollouts of two instances, one after the other
    assert not before & pids(running, "api")


def test_a_stopped_api_answers_503_at_once_then_serves_again(running: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{running['APPLIANCE_API__PORT']}/health/live"
    assert appliance("stop", "api", env=running).stdout.strip() == "stopped: api"
    try:
        answer = httpx.get(url, timeout=10)  # the supervisor holds the port: before, this hung
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        assert appliance("start", "api", env=running).returncode == 0
    wait_for(lambda: httpx.get(url, timeout=10).status_code == 200, what="the API to serve again")


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


def test_an_event_line_keeps_the_reason_the_json_has() -> None:
    event = {
        "time": 1_700_000_000.25,
        "kind": "state",
        "program": "worker",
        "instance": 1,
        "message": "running -> backoff",
        "reason": "exited with status 3",
        "pid": 4242,
    }
    assert event_line(event) == (
        "2023-11-14T22:13:20.250Z  state         worker:1   running -> backoff (exited with status 3)"
    )
    # No reason, or one the message already says: the message alone.
    assert event_line(event | {"reason": ""}).endswith("worker:1   running -> backoff")
    said = event | {"message": "health check failed: timed out", "reason": "timed out"}
    assert event_line(said).endswith("health check failed: timed out")


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
