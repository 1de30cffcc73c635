"""A real `appliance worker` process runs a real task end to end, on every database and queue backend."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from appliance.db.session import Database
from appliance.models import WorkerHeartbeat
from appliance.workers import queue, tasks
from tests.support import make_settings, settings_env


def start_worker(settings_env_vars: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "2", "--no-periodic"],
            env=settings_env_vars,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_heartbeat_task_runs_end_to_end(tmp_path: Path, database_url: str, queue_url: str) -> None:
    settings = make_settings(tmp_path, database_url, queue_url)
    queue.configure(settings)
    log = tmp_path / "worker.log"
    worker = start_worker(settings_env(settings), log)
    try:
        result = tasks.heartbeat()
        value = result.get(blocking=True, timeout=60)
        assert value is not None, log.read_text()
        assert value["worker"].endswith(f":{worker.pid}")
        assert value["beats"] == 1
        assert tasks.heartbeat().get(blocking=True, timeout=60)["beats"] == 2
    finally:
        worker.send_signal(signal.SIGINT)  # graceful: Huey finishes running tasks on SIGINT
        code = worker.wait(timeout=60)
    assert code == 0, log.read_text()

    database = Database(settings)
    try:
        with database.session_scope() as session:
            rows = session.scalars(select(WorkerHeartbeat)).all()
    finally:
        database.dispose()
    assert [(r.worker, r.beats) for r in rows] == [(value["worker"], 2)]
    lines = log.read_text().splitlines()
    assert any('"message":"worker started"' in line for line in lines), lines


def test_worker_refuses_an_unreachable_queue(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = settings_env(settings) | {"APPLIANCE_QUEUE__URL": "redis://127.0.0.1:1/0"}
    run = subprocess.run(
        [sys.executable, "-m", "appliance", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert run.stderr.startswith("appliance: error: the queue is unavailable")
    assert "Traceback" not in run.stderr
