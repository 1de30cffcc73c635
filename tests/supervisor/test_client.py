"""The control-socket client: typed answers, start/stop/restart, and a clear error when nobody listens."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from appliance.client.supervisor import SupervisorClient, SupervisorError, SupervisorUnavailable
from tests.supervisor.realproc import Sandbox, alive, wait_for


def test_no_socket_means_unavailable(tmp_path: Path) -> None:
    with pytest.raises(
        SupervisorUnavailable, match=r"the supervisor is not running \(no socket at .*x.sock\)"
    ):
        SupervisorClient(tmp_path / "x.sock").status()


def test_dead_socket_means_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # bound, never listening: connections are refused
        with pytest.raises(SupervisorUnavailable, match="nothing listens on"):
            SupervisorClient(path).status()


def test_stop_start_restart_and_shutdown(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("a", mode="sleep"), sandbox.program("b", mode="sleep"))
    proc = sandbox.start()
    client = sandbox.client
    first = wait_for(lambda: sandbox.running_pid("a"))
    assert client.stop(["a"]) == ["a"]
    assert sandbox.one("a")["state"] == "stopped"
    assert not alive(first)
    assert sandbox.one("b")["state"] == "running"
    assert client.start(["a"]) == ["a"]
    second = wait_for(lambda: sandbox.running_pid("a"))
    assert second != first
    assert client.restart(["all"]) == ["a", "b"]
    wait_for(lambda: (p := sandbox.running_pid("a")) and p != second, what="a replaced")
    with pytest.raises(SupervisorError, match="unknown program 'c'"):
        client.restart(["c"])
    status = client.status()
    assert status["supervisor"]["pid"] == proc.pid
    client.shutdown()
    assert proc.wait(timeout=30) == 0
    with pytest.raises(SupervisorUnavailable):
        client.status()
