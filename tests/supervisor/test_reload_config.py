"""Reloading the services file on SIGHUP: only changed programs restart; a broken file changes nothing."""

from __future__ import annotations

import signal
from collections.abc import Generator

from tests.supervisor.realproc import Sandbox, wait_for


def pids(sandbox: Sandbox) -> dict[str, int | None]:
    return {row["name"]: row["pid"] for row in sandbox.client.status()["programs"]}


def test_sighup_restarts_only_the_changed_program(sandbox: Sandbox) -> None:
    keep, change = sandbox.program("keep", mode="sleep"), sandbox.program("change", mode="sleep")
    sandbox.write(keep, change)
    proc = sandbox.start()
    before = wait_for(lambda: (p := pids(sandbox)) and all(p.values()) and p)
    sandbox.write(keep, sandbox.program("change", mode="sleep", extra='environment = { V = "2" }'))
    proc.send_signal(signal.SIGHUP)
    after = wait_for(lambda: (p := pids(sandbox))["change"] not in (None, before["change"]) and p)
    assert after["keep"] == before["keep"]
    events = sandbox.client.events()
    reload = [e for e in events if e["kind"] == "reload-config"]
    assert reload
    assert reload[-1]["changed"] == ["change"]
    assert reload[-1]["unchanged"] == ["keep"]


def test_broken_file_is_refused_and_nothing_changes(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("a", mode="sleep"))
    proc = sandbox.start()
    before = wait_for(lambda: (p := pids(sandbox)) and all(p.values()) and p)
    sandbox.write(sandbox.program("a", mode="sleep", extra="bogus = 1"))
    proc.send_signal(signal.SIGHUP)
    log = sandbox.log_dir / "supervisor.log"
    wait_for(lambda: "services file refused, nothing changed" in log.read_text(), what="the refusal")
    assert "unknown key 'bogus'" in log.read_text()
    assert pids(sandbox) == before
    assert sandbox.client.events()[-1]["kind"] != "state"


def test_follow_events_receives_a_state_change(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("a", mode="sleep"))
    sandbox.start()
    wait_for(lambda: sandbox.one("a")["state"] == "running")
    stream = sandbox.client.follow_events()
    assert isinstance(stream, Generator)
    first = next(stream)
    assert first["kind"] == "state"
    sandbox.client.restart(["a"])
    for event in stream:
        if event["kind"] == "state" and event["new"] == "stopping":
            break
    stream.close()
