"""The postgresql role refuses a port already taken or out of range at the task that finds it, with one line
naming the host and the port, before it creates or starts a cluster."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.playbooks.support import failed_task, failure_lines, recap, run_role_tasks


def test_a_port_already_taken_stops_the_run_before_a_cluster_is_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_role_tasks(
            tmp_path,
            "postgresql",
            "check_port",
            {
                "postgresql_port": port,
                "postgresql_listen_addresses": ["127.0.0.1"],
                "postgresql_active_version": "15",
                "postgresql_cluster": "forge_port_check",  # no such cluster: not online
            },
        )
    assert run.returncode != 0
    assert recap(run.stdout)["testhost"]["failed"] == 1
    (line,) = failure_lines(run)
    assert (
        f"testhost: PostgreSQL's port {port} (postgresql_port) on 127.0.0.1 is already taken by another "
        "program" in line
    )
    assert failed_task(run, line) == "postgresql : Stop when another program holds the PostgreSQL port"


def test_a_free_port_passes(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: nothing answers there
        run = run_role_tasks(
            tmp_path,
            "postgresql",
            "check_port",
            {
                "postgresql_port": port,
                "postgresql_listen_addresses": ["127.0.0.1"],
                "postgresql_active_version": "15",
                "postgresql_cluster": "forge_port_check",
            },
        )
    assert run.returncode == 0, run.stdout + run.stderr
    assert failure_lines(run) == []


@pytest.mark.parametrize("port", [0, 70000, "abc"])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: object) -> None:
    run = run_role_tasks(tmp_path, "postgresql", "validate", {"postgresql_port": port})
    assert run.returncode != 0
    (line,) = failure_lines(run)
    assert f"testhost: postgresql_port must be a TCP port (got {port})" in line
    assert failed_task(run, line) == "postgresql : Check the PostgreSQL port"
