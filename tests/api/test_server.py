"""The API server behind a shared socket: a process that stops drains its clients, and none sees an error."""

from __future__ import annotations

import signal
from pathlib import Path

from appliance.api.server import inherited_socket
from tests.support import ApiProcesses, KeepAliveLoad, make_settings


def test_a_stopping_process_drains_without_failing_a_request(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {"APPLIANCE_LOGGING__ACCESS_LOG": "false"}
    with ApiProcesses(settings, 2, tmp_path, env) as apis:
        with KeepAliveLoad(apis.url) as load:
            load.wait_for_more(200, "traffic on both processes")
            victim = apis.procs[0]
            victim.send_signal(signal.SIGTERM)
            # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
            assert victim.wait(timeout=30) in (0, -signal.SIGTERM)
            load.wait_for_more(200, "traffic served by the remaining process")
        assert load.failures == []
        assert "Finished server process" in apis.logs[0].read_text()


def test_inherited_socket_follows_the_activation_convention() -> None:
    assert inherited_socket({}) is None
    assert inherited_socket({"LISTEN_FDS": "1", "LISTEN_PID": "1"}) is None  # meant for another process
    environ = {"LISTEN_FDS": "0", "LISTEN_FDNAMES": "api"}
    assert inherited_socket(environ) is None
    assert environ == {}  # never passed on to children
