"""The control socket protocol: requests checked and routed, errors named, over a real socket too."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from appliance.supervisor.control import Detach, Reply, handle
from appliance.supervisor.supervisor import UnknownProgram
from tests.supervisor.realproc import Sandbox, wait_for


class Target:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def status(self) -> dict[str, Any]:
        return {"programs": [], "supervisor": {"pid": 1, "started_at": 0.0, "version": "x"}}

    def start(self, names: list[str], reply: Reply) -> None:
        self._call("start", names, reply)

    def stop(self, names: list[str], reply: Reply) -> None:
        self._call("stop", names, reply)

    def restart(self, names: list[str], reply: Reply) -> None:
        self._call("restart", names, reply)

    def shutdown(self, reply: Reply) -> None:
        self.calls.append(("shutdown", []))
        reply({"ok": True})

    def reload(self, names: list[str], reply: Reply) -> None:
        self._call("reload", names, reply)

    def reload_config(self, reply: Reply) -> None:
        self.calls.append(("reload-config", []))
        reply({"ok": True, "changed": [], "added": [], "removed": [], "unchanged": []})

    def events_request(self, since: float | None, follow: bool, reply: Reply, detach: Detach | None) -> None:
        self.calls.append(("events", [str(since), str(follow)]))
        reply({"ok": True, "events": []})

    def spec(self, name: str) -> dict[str, Any]:
        if name != "api":
            raise UnknownProgram([name], ["api"], all_too=False)
        self.calls.append(("spec", [name]))
        return {"spec": {"name": "api"}, "exits": []}

    def _call(self, cmd: str, names: list[str], reply: Reply) -> None:
        if "nope" in names:
            raise UnknownProgram(["nope"], ["api"])
        self.calls.append((cmd, names))
        reply({"ok": True, "programs": names})


def ask(request: object) -> tuple[dict[str, Any], Target]:
    target, answers = Target(), list[dict[str, Any]]()
    handle(request, target, answers.append)
    (answer,) = answers
    return answer, target


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (
            {"cmd": "frobnicate"},
            "unknown command 'frobnicate' (commands: status, start, stop, restart, shutdown, ",
        ),
        ({"cmd": "stop", "names": ["nope"]}, "unknown program 'nope' (programs: api, or 'all')"),
        ({"cmd": "stop"}, '"stop" needs "names"'),
        ({"cmd": "start", "names": []}, '"start" needs "names"'),
        (["status"], 'a request is a JSON object with a "cmd" string'),
        ({"cmd": "status", "usage": "yes"}, "\"usage\" must be true or false, not 'yes'"),
        ({"cmd": "spec"}, '"spec" needs "name": a program name'),
        ({"cmd": "spec", "name": ["api"]}, '"spec" needs "name": a program name'),
        ({"cmd": "spec", "name": "nope"}, "unknown program 'nope' (programs: api)"),
    ],
)
def test_bad_requests_get_a_named_error(request_: object, error: str) -> None:
    answer, _ = ask(request_)
    assert answer["ok"] is False
    assert error in answer["error"]


def test_commands_are_routed() -> None:
    answer, target = ask({"cmd": "restart", "names": ["api"]})
    assert answer == {"ok": True, "programs": ["api"]}
    assert target.calls == [("restart", ["api"])]
    assert ask({"cmd": "status"})[0]["ok"] is True
    assert ask({"cmd": "spec", "name": "api"})[0] == {"ok": True, "spec": {"name": "api"}, "exits": []}


def test_real_socket_several_requests_on_one_connection(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("a", mode="sleep"))
    proc = sandbox.start()
    wait_for(lambda: sandbox.one("a")["state"] == "running")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(sandbox.run_dir / "control.sock"))
        sock.sendall(b'{"cmd": "status"}\nnot json\n{"cmd": "start", "names": ["zzz"]}\n')
        stream = sock.makefile("rb")
        status, garbage, unknown = (json.loads(stream.readline()) for _ in range(3))
    assert status["ok"]
    assert status["supervisor"]["pid"] == proc.pid
    assert status["supervisor"]["version"]
    assert set(status["programs"][0]) == {
        "name", "instance", "state", "pid", "started_at", "restarts", "crash_looping", "exit_status",
        "reason", "ready", "status", "stderr_tail", "container",
    }  # fmt: skip
    assert status["programs"][0]["container"] is None  # a process; a container program's names its container
    assert garbage["ok"] is False
    assert "not valid JSON" in garbage["error"]
    assert unknown == {"ok": False, "error": "unknown program 'zzz' (programs: a, or 'all')"}
