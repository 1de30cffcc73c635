"""The API server behind a shared socket: a process that stops drains its clients, and none sees an error."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from appliance.api.server import inherited_socket
from tests.support import ApiProcesses, make_settings, wait_for


def test_a_stopping_process_drains_without_failing_a_request(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {"APPLIANCE_LOGGING__ACCESS_LOG": "false"}
    with ApiProcesses(settings, 2, tmp_path, env) as apis:
        failures: list[str] = []
        served = [0]
        stop = threading.Event()

        def client() -> None:
            # Keep-alive connections, as a load balancer or wrk would hold them.
            with httpx.Client(base_url=apis.url, timeout=10) as http:
                for _ in range(20_000):
                    if stop.is_set():
                        return
                    try:
                        response = http.get("/health/live")
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        failures.append(str(response.status_code))
                    served[0] += 1

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: served[0] > 200, what="traffic on both processes")
            victim = apis.procs[0]
            victim.send_signal(signal.SIGTERM)
            # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
            assert victim.wait(timeout=30) in (0, -signal.SIGTERM)
            before = served[0]
            wait_for(lambda: served[0] > before + 200, what="traffic served by the remaining process")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert failures == []
        assert "Finished server process" in apis.logs[0].read_text()


def test_inherited_socket_follows_the_activation_convention() -> None:
    assert inherited_socket({}) is None
    assert inherited_socket({"LISTEN_FDS": "1", "LISTEN_PID": "1"}) is None  # meant for another process
    environ = {"LISTEN_FDS": "0", "LISTEN_FDNAMES": "api"}
    assert inherited_socket(environ) is None
    assert environ == {}  # never passed on to children
