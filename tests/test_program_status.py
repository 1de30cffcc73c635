"""Programs tell the supervisor whether they can work: the dependency check names what is wrong, and the
reporter sends each change (and only changes) on a real notify socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from huey import RedisHuey, SqliteHuey

from appliance.db import migrate
from appliance.program_status import StatusReporter, dependency_check
from appliance.workers import queue
from tests.servers import free_port
from tests.support import make_settings


def test_the_check_names_a_missing_schema_then_passes_once_migrated(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, migrated=False)
    check = dependency_check(
        settings, partial(queue.ping, SqliteHuey("status-test", filename=str(tmp_path / "queue.db")))
    )
    assert check() == "database schema: the database has no schema yet: run `appliance migrate`"
    migrate.upgrade(settings)
    assert check() is None


def test_the_check_names_a_queue_that_does_not_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    nobody = RedisHuey("status-test", url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    problem = dependency_check(settings, partial(queue.ping, nobody))()
    assert problem is not None
    assert problem.startswith("queue unavailable: ")
    assert "Connection refused" in problem


def test_the_reporter_sends_each_change_once(tmp_path: Path) -> None:
    results: Iterator[str | None] = iter(
        ["database unavailable: refused", "database unavailable: refused", None]
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as supervisor:
        supervisor.bind(str(tmp_path / "notify.sock"))
        supervisor.settimeout(5)
        reporter = StatusReporter(lambda: next(results), str(tmp_path / "notify.sock"))
        for _ in range(3):
            reporter.report_once()
        received = [supervisor.recv(4096), supervisor.recv(4096)]
        supervisor.setblocking(False)
        try:
            extra = supervisor.recv(4096)
        except BlockingIOError:
            extra = b""
    assert received == [
        b"X_READY=0\nSTATUS=not ready: database unavailable: refused",
        b"X_READY=1\nSTATUS=ready",
    ]
    assert extra == b""  # the repeated problem was not sent again


def test_without_a_notify_socket_nothing_runs() -> None:
    reporter = StatusReporter(lambda: None, None).start()
    assert not reporter._thread.is_alive()
    reporter.stop()
