"""Recent exits per program: what the state machine records, how many are kept, and real kills and stops."""

from __future__ import annotations

import os
import signal
import time

from appliance.supervisor.exits import Exit, ExitHistory
from appliance.supervisor.specs import HealthSpec, ProgramSpec, ReadySpec, ServicesSpec
from appliance.supervisor.supervisor import Supervisor
from tests.supervisor.fakes import FakeLauncher
from tests.supervisor.realproc import Sandbox, alive, wait_for

CHECK = HealthSpec(ReadySpec("tcp", host="127.0.0.1", port=1), interval=1.0, failures=1)


def build(*programs: ProgramSpec) -> tuple[Supervisor, FakeLauncher]:
    launcher, clock = FakeLauncher(), iter(range(1000, 2000))
    sup = Supervisor(
        ServicesSpec("s.toml", programs), launcher, lambda _: None, wall_clock=lambda: next(clock)
    )
    return sup, launcher


def test_an_unasked_exit_and_an_asked_stop_are_told_apart() -> None:
    sup, launcher = build(ProgramSpec("app", ("app",)))
    sup.start(["app"], 0.0)
    sup.tick(0.0)
    (first,) = launcher.pids("app")
    sup.exited(first, -signal.SIGKILL, 2.5)  # killed from outside: restarted at once
    sup.tick(2.5)
    second = launcher.pids("app")[-1]
    sup.stop(["app"])
    sup.tick(3.0)
    sup.exited(second, 0, 4.0)
    crash, stop = sup.exits.recent("app")
    assert crash == {
        "time": 1000, "instance": 1, "pid": first, "exit_status": -9, "reason": "killed by SIGKILL",
        "ran_seconds": 2.5, "expected": False, "stop_reason": None,
    }  # fmt: skip
    assert (stop["pid"], stop["time"]) == (second, 1001)
    assert (stop["expected"], stop["stop_reason"], stop["reason"]) == (
        True,
        "stop asked",
        "exited with code 0",
    )
    assert stop["ran_seconds"] == 1.5


def test_a_restart_for_failed_health_checks_is_asked_and_says_why() -> None:
    sup, launcher = build(ProgramSpec("app", ("app",), health=CHECK))
    sup.start(["app"], 0.0)
    sup.tick(0.0)
    sup.tick(1.0)  # the first health check is due
    (pid,) = launcher.pids("app")
    sup.health_checked(pid, False, 1.1)
    sup.exited(pid, -signal.SIGTERM, 1.2)
    (record,) = sup.exits.recent("app")
    assert record["expected"] is True
    assert record["stop_reason"] == "health check failed 1 times"
    assert record["reason"] == "killed by SIGTERM"


def test_at_most_keep_exits_are_kept_newest_last_and_removed_programs_forgotten() -> None:
    history = ExitHistory(keep=50)
    for i in range(60):
        history.add("app", Exit(1, 100 + i, 1, "exited with code 1", 0.5), float(i))
    history.add("other", Exit(1, 7, 0, "exited with code 0", 0.5), 0.0)
    kept = history.recent("app")
    assert [r["pid"] for r in kept] == list(range(110, 160))
    assert [r["time"] for r in kept] == [float(i) for i in range(10, 60)]
    assert history.recent("nothing") == []
    history.retain(["other"])
    assert history.recent("app") == []
    assert len(history.recent("other")) == 1


def test_real_sigkill_and_stop_through_the_socket_are_recorded(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("victim", mode="sleep"))
    sandbox.start()
    client = sandbox.client
    first = wait_for(lambda: sandbox.running_pid("victim"))
    assert client.spec("victim")["exits"] == []
    before = time.time()
    os.kill(first, signal.SIGKILL)
    (killed,) = wait_for(lambda: client.spec("victim")["exits"], what="the kill to be recorded")
    assert killed["pid"] == first
    assert killed["exit_status"] == -9
    assert "SIGKILL" in killed["reason"]
    assert killed["expected"] is False
    assert killed["stop_reason"] is None
    assert killed["instance"] == 1
    assert before - 1 <= killed["time"] <= time.time()
    assert killed["ran_seconds"] > 0

    second = wait_for(lambda: (p := sandbox.running_pid("victim")) != first and p, what="a respawn")
    assert client.stop(["victim"]) == ["victim"]
    assert not alive(second)
    old, stopped = client.spec("victim")["exits"]
    assert old == killed
    assert stopped["pid"] == second
    assert stopped["expected"] is True
    assert stopped["stop_reason"] == "stop asked"
    # SIGTERM, which the child answers with exit 0 once its handler is in place (it may not be yet).
    assert (stopped["exit_status"], stopped["reason"]) in (
        (0, "exited with code 0"),
        (-15, "killed by SIGTERM"),
    )
    assert stopped["time"] >= killed["time"]
