"""One instance's state machine, driven with a fake clock and a fake launcher: exact and instant."""

from __future__ import annotations

import itertools
import signal

from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.instance import Instance, over_limit
from appliance.supervisor.specs import HealthSpec, ProgramSpec, ReadySpec
from appliance.supervisor.states import State
from tests.supervisor.fakes import FakeLauncher

KILLED = -signal.SIGKILL


def state(inst: Instance) -> State:
    """The state, read through a call so that mypy does not narrow it between two steps."""
    return inst.state


def make(**changes: object) -> tuple[Instance, FakeLauncher, list[str]]:
    fields: dict[str, object] = {"name": "app", "command": ("app",), **changes}
    launcher, events = FakeLauncher(), list[str]()
    inst = Instance(ProgramSpec(**fields), 1, launcher, BackoffPolicy(), events.append)  # type: ignore[arg-type]
    inst.start(0.0)
    return inst, launcher, events


def test_spawned_without_probe_is_running() -> None:
    inst, launcher, _ = make()
    inst.tick(0.0, may_start=True, may_stop=True)
    assert state(inst) is State.RUNNING
    assert inst.pid == launcher.pids("app")[0]


def test_first_restart_is_immediate_then_backoff_doubles_and_never_gives_up() -> None:
    inst, launcher, events = make()
    now = 0.0
    inst.tick(now, True, True)
    spawn_times = [now]
    for _ in range(12):
        now += 0.1  # each process lives 0.1 s
        inst.exited(1, now)
        assert state(inst) is State.BACKOFF
        # Tick in 0.05 s steps until it respawns; record when.
        while state(inst) is State.BACKOFF:
            inst.tick(now, True, True)
            if state(inst) is State.BACKOFF:
                deadline = inst.next_deadline()
                assert deadline is not None
                assert deadline > now
                now = deadline
        spawn_times.append(now)
    waits = [round(b - a - 0.1, 6) for a, b in itertools.pairwise(spawn_times)]
    assert waits == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert inst.crash_looping
    assert inst.restarts == 12
    assert len(launcher.pids("app")) == 13
    assert sum("crash-looping" in e for e in events) == 1


def test_stable_run_resets_backoff_and_clears_crash_looping() -> None:
    inst, _, events = make()
    now = 0.0
    for _ in range(6):
        inst.tick(now, True, True)
        now += 0.1
        inst.exited(1, now)
        now = inst.next_deadline() or now
    inst.tick(now, True, True)
    assert state(inst) is State.RUNNING
    assert inst.crash_looping
    inst.tick(now + 10.0, True, True)
    assert not inst.crash_looping
    assert any("no longer crash-looping" in e for e in events)
    inst.exited(KILLED, now + 20.0)
    inst.tick(now + 20.0, True, True)
    assert state(inst) is State.RUNNING  # the first restart after a stable run is immediate


def test_restart_policies() -> None:
    never, _, _ = make(restart="never")
    never.tick(0.0, True, True)
    never.exited(1, 1.0)
    assert state(never) is State.EXITED
    assert not never.want

    on_failure, _, _ = make(restart="on-failure", success_exit_codes=frozenset({0, 3}))
    on_failure.tick(0.0, True, True)
    on_failure.exited(3, 1.0)
    assert state(on_failure) is State.EXITED
    on_failure.start(2.0)
    on_failure.tick(2.0, True, True)
    on_failure.exited(KILLED, 3.0)
    assert state(on_failure) is State.BACKOFF
    assert on_failure.reason == "killed by SIGKILL"


def test_readiness_probe_gates_running() -> None:
    inst, launcher, _ = make(ready=ReadySpec("tcp", host="127.0.0.1", port=1, timeout=5.0, interval=0.25))
    inst.tick(0.0, True, True)
    assert state(inst) is State.STARTING
    assert launcher.probes == [inst.pid]
    assert inst.pid is not None
    inst.probed(inst.pid, False, 0.01)
    inst.tick(0.1, True, True)
    assert launcher.probes == [inst.pid]  # next attempt not due yet
    inst.tick(0.26, True, True)
    assert len(launcher.probes) == 2
    inst.probed(inst.pid + 1, True, 0.27)  # an answer about another process changes nothing
    assert state(inst) is State.STARTING
    inst.probed(inst.pid, True, 0.3)
    assert state(inst) is State.RUNNING


def test_not_ready_in_time_is_stopped_and_retried() -> None:
    inst, launcher, _ = make(ready=ReadySpec("tcp", host="h", port=1, timeout=5.0), stop_timeout=2.0)
    inst.tick(0.0, True, True)
    first = inst.pid
    inst.tick(5.0, True, True)
    assert state(inst) is State.STOPPING
    assert inst.reason == "not ready within 5s"
    assert launcher.signals == [(first, signal.SIGTERM)]
    inst.exited(-signal.SIGTERM, 5.1)
    assert state(inst) is State.BACKOFF
    inst.tick(5.1, True, True)
    assert state(inst) is State.STARTING
    assert inst.pid != first


def test_stop_sends_stop_signal_then_sigkill_after_timeout() -> None:
    inst, launcher, events = make(stop_signal=signal.SIGINT, stop_timeout=3.0)
    inst.tick(0.0, True, True)
    pid = inst.pid
    inst.stop()
    inst.tick(1.0, True, may_stop=False)
    assert state(inst) is State.RUNNING  # dependents are still stopping
    inst.tick(2.0, True, True)
    assert state(inst) is State.STOPPING
    assert launcher.signals == [(pid, signal.SIGINT)]
    inst.tick(4.9, True, True)
    assert launcher.signals == [(pid, signal.SIGINT)]
    inst.tick(5.0, True, True)
    assert launcher.signals == [(pid, signal.SIGINT), (pid, signal.SIGKILL)]
    assert any("SIGKILL" in e for e in events)
    inst.exited(KILLED, 5.01)
    assert state(inst) is State.STOPPED
    assert inst.pid is None


def test_stop_during_backoff_cancels_the_retry() -> None:
    inst, launcher, _ = make()
    inst.tick(0.0, True, True)
    inst.exited(1, 0.1)
    inst.stop()
    inst.tick(0.1, True, True)
    assert state(inst) is State.STOPPED
    assert len(launcher.pids("app")) == 1


def test_missing_command_is_fatal_with_reason_and_can_be_retried() -> None:
    inst, launcher, events = make()
    launcher.missing.add("app")
    inst.tick(0.0, True, True)
    assert state(inst) is State.FATAL
    assert inst.reason == "command not found: app"
    inst.tick(100.0, True, True)
    assert state(inst) is State.FATAL  # not retried on its own
    assert any("FATAL" in e for e in events)
    launcher.missing.clear()
    inst.start(200.0)
    inst.tick(200.0, True, True)
    assert state(inst) is State.RUNNING


def test_restart_replaces_the_process_without_backoff() -> None:
    inst, _launcher, _ = make()
    inst.tick(0.0, True, True)
    old = inst.pid
    inst.restart(1.0)
    assert state(inst) is State.STOPPING
    inst.exited(-signal.SIGTERM, 1.1)
    assert state(inst) is State.STOPPED
    inst.tick(1.1, True, True)
    assert state(inst) is State.RUNNING
    assert inst.pid != old
    assert inst.restarts == 0


def test_status_row() -> None:
    inst, _, _ = make()
    inst.tick(10.0, True, True)
    row = inst.status(now=15.0, wall_now=1_000.0)
    assert row == {
        "name": "app",
        "instance": 1,
        "state": "running",
        "pid": inst.pid,
        "started_at": 995.0,
        "restarts": 0,
        "crash_looping": False,
        "exit_status": None,
        "reason": "",
        "ready": True,
        "status": "",
        "stderr_tail": [],
    }


def test_health_check_failures_in_a_row_restart_the_instance() -> None:
    check = ReadySpec("tcp", host="127.0.0.1", port=1)
    inst, launcher, events = make(health=HealthSpec(check, interval=5.0, failures=3))
    inst.tick(0.0, True, True)
    pid = inst.pid
    assert pid is not None
    assert inst.next_deadline() == 5.0
    now = 0.0
    for ok in (False, False, True, False, False):  # a success in between starts the count again
        now = inst.next_deadline() or now
        inst.tick(now, True, True)
        assert launcher.health_checks[-1] == pid
        inst.health_checked(pid, ok, now)
        assert state(inst) is State.RUNNING
    now = inst.next_deadline() or now
    inst.tick(now, True, True)
    inst.health_checked(pid, False, now)
    assert state(inst) is State.STOPPING
    assert launcher.signals == [(pid, signal.SIGTERM)]
    assert any("health check failed 3 times" in e for e in events)
    assert [e["kind"] for e in inst.events.recent() if e["kind"] == "health"] == ["health"]
    inst.exited(-signal.SIGTERM, now + 1)
    inst.tick(now + 1, True, True)
    assert state(inst) is State.RUNNING  # back, through backoff (the first retry is immediate)
    assert inst.pid != pid


def test_memory_limit_decision() -> None:
    assert over_limit(600 << 20, None) == ""
    assert over_limit(512 << 20, 512 << 20) == ""
    assert over_limit(612 << 20, 512 << 20) == "memory limit exceeded: 612 MiB > 512 MiB"
    inst, _, events = make(memory_limit=512 << 20)
    inst.tick(0.0, True, True)
    inst.memory_checked(100 << 20, 1.0)
    assert state(inst) is State.RUNNING
    inst.memory_checked(612 << 20, 2.0)
    assert state(inst) is State.STOPPING
    assert "app: memory limit exceeded: 612 MiB > 512 MiB" in events


def test_state_changes_are_events() -> None:
    inst, _, _ = make()
    inst.tick(0.0, True, True)
    kinds = [(e["kind"], e["old"], e["new"]) for e in inst.events.recent()]
    assert kinds == [("state", "stopped", "starting"), ("state", "starting", "running")]
