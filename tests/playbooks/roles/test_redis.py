"""The redis role refuses a port already taken or out of range at the task that finds it, with one line naming
the host and the port, before it writes its settings or starts Redis."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.playbooks.support import failed_task, failure_lines, recap, run_role_tasks


def check_port(tmp_path: Path, port: int) -> dict[str, object]:
    return {
        "redis_port": port,
        "redis_bind_addresses": ["127.0.0.1"],
        "redis_pid_file": str(tmp_path / "redis.pid"),  # none: this Redis does not run
    }


def test_a_port_already_taken_stops_the_run_before_redis_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_role_tasks(tmp_path, "redis", "check_port", check_port(tmp_path, port))
    assert run.returncode != 0
    assert recap(run.stdout)["testhost"]["failed"] == 1
    (line,) = failure_lines(run)
    assert (
        f"testhost: Redis's port {port} (redis_port) on 127.0.0.1 is already taken by another program" in line
    )
    assert failed_task(run, line) == "redis : Stop when another program holds the Redis port"


def test_a_free_port_passes(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: nothing answers there
        run = run_role_tasks(tmp_path, "redis", "check_port", check_port(tmp_path, port))
    assert run.returncode == 0, run.stdout + run.stderr
    assert failure_lines(run) == []


@pytest.mark.parametrize("port", [0, 70000, "abc"])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: object) -> None:
    run = run_role_tasks(tmp_path, "redis", "validate", {"redis_port": port, "redis_password": "a" * 32})
    assert run.returncode != 0
    (line,) = failure_lines(run)
    assert f"testhost: redis_port must be a TCP port (got {port})" in line
    assert failed_task(run, line) == "redis : Check the Redis port"
