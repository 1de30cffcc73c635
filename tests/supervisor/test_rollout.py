"""Rolling reload and reload-config logic: new ready before old stops, failures keep old."""

from __future__ import annotations

import signal

from appliance.supervisor.specs import ContainerSpec, ProgramSpec, ReadySpec, ServicesSpec
from appliance.supervisor.states import State
from appliance.supervisor.supervisor import Supervisor
from tests.supervisor.fakes import FakeLauncher

READY = ReadySpec("tcp", host="127.0.0.1", port=1, timeout=5.0)
API = ProgramSpec("api", ("api",), instances=2, ready=READY)
WORKER = ProgramSpec("worker", ("worker",))


def running(programs: tuple[ProgramSpec, ...] = (API, WORKER)) -> tuple[Supervisor, FakeLauncher, list[str]]:
    launcher, outcomes = FakeLauncher(), list[str]()
    sup = Supervisor(ServicesSpec("s.toml", programs), launcher, lambda _: None)
    sup.start(["all"], 0.0)
    sup.tick(0.0)
    for pid in launcher.pids("api"):
        sup.probed(pid, True, 0.1)
    sup.tick(0.1)
    return sup, launcher, outcomes


def api_pids(sup: Supervisor) -> list[int]:
    return [inst.pid or 0 for inst in sup.instances["api"]]


def test_reload_replaces_one_at_a_time_new_ready_before_old_stops() -> None:
    sup, launcher, outcomes = running()
    old = api_pids(sup)
    sup.reload(["api"], outcomes.append)
    sup.tick(1.0)
    new1 = launcher.pids("api")[2]
    assert launcher.signals == []  # the new one is not ready yet: nothing stopped
    sup.tick(2.0)
    assert launcher.signals == []
    sup.probed(new1, True, 2.5)
    sup.tick(2.5)
    assert launcher.signals == [(old[0], signal.SIGTERM)]  # ready: only now one old one stops
    assert len(launcher.pids("api")) == 3  # and the second is not spawned while the first old one drains
    sup.exited(old[0], 0, 3.0)
    sup.tick(3.0)
    new2 = launcher.pids("api")[3]
    assert launcher.signals == [(old[0], signal.SIGTERM)]
    sup.probed(new2, True, 3.5)
    sup.tick(3.5)
    assert launcher.signals[-1] == (old[1], signal.SIGTERM)
    assert outcomes == []
    sup.exited(old[1], 0, 4.0)
    sup.tick(4.0)
    assert outcomes == [""]
    assert api_pids(sup) == [new1, new2]
    assert launcher.pids("worker") == [launcher.pids("worker")[0]]  # untouched


def test_new_process_not_ready_keeps_the_old_ones_and_reports() -> None:
    sup, launcher, outcomes = running()
    old = api_pids(sup)
    sup.reload(["api"], outcomes.append)
    sup.tick(1.0)
    new = launcher.pids("api")[2]
    sup.probed(new, False, 1.1)
    sup.tick(6.5)  # past ready.timeout (5 s): the new process is given up on
    sup.tick(6.6)
    assert outcomes
    assert "reload of api stopped" in outcomes[0]
    assert "not ready within 5s" in outcomes[0]
    assert (new, signal.SIGTERM) in launcher.signals
    assert all(pid not in {p for p, _ in launcher.signals} for pid in old)
    assert api_pids(sup) == old
    assert [i.state for i in sup.instances["api"]] == [State.RUNNING, State.RUNNING]
    sup.exited(new, 0, 7.0)
    sup.tick(7.0)
    assert sup.by_pid(new) is None
    assert len(launcher.pids("api")) == 3  # no retry of the failed new process


def test_new_process_that_crashes_ends_the_rollout() -> None:
    sup, launcher, outcomes = running()
    sup.reload(["api"], outcomes.append)
    sup.tick(1.0)
    sup.exited(launcher.pids("api")[2], 1, 1.2)
    sup.tick(1.2)
    assert outcomes == [
        "reload of api stopped: api-1: the new process did not become ready (exited with code 1)"
    ]


def test_reconfigure_rolls_changed_starts_added_stops_removed_leaves_unchanged() -> None:
    sup, launcher, outcomes = running()
    worker_pid = sup.instances["worker"][0].pid
    api2 = ProgramSpec("api", ("api", "--v2"), instances=1, ready=READY)
    extra = ProgramSpec("extra", ("extra",))
    diff = sup.reconfigure(ServicesSpec("s.toml", (api2, extra)), 1.0, outcomes.append)
    assert (diff.changed, diff.added, diff.removed, diff.unchanged) == (["api"], ["extra"], ["worker"], [])
    sup.tick(1.0)
    assert launcher.pids("extra")
    assert (worker_pid, signal.SIGTERM) in launcher.signals
    new = launcher.pids("api")[2]
    sup.probed(new, True, 1.5)
    sup.tick(1.5)
    old = list(launcher.pids("api")[:2])
    sup.exited(old[0], 0, 2.0)
    sup.tick(2.0)
    assert (old[1], signal.SIGTERM) in launcher.signals  # 2 -> 1 instance: the leftover one stops
    sup.exited(old[1], 0, 2.5)
    assert worker_pid is not None
    sup.exited(worker_pid, 0, 2.5)
    sup.tick(2.5)
    assert outcomes == [""]
    assert api_pids(sup) == [new]
    assert list(sup.instances) == ["api", "extra"]
    assert sup.idle(["worker"])


def test_unchanged_programs_keep_their_processes() -> None:
    sup, launcher, outcomes = running()
    diff = sup.reconfigure(ServicesSpec("s.toml", (API, WORKER)), 1.0, outcomes.append)
    sup.tick(1.0)
    assert diff.unchanged == ["api", "worker"]
    assert outcomes == [""]
    assert launcher.signals == []


def test_stop_interrupts_a_rollout() -> None:
    sup, launcher, outcomes = running()
    sup.reload(["api"], outcomes.append)
    sup.tick(1.0)
    sup.stop(["api"])
    assert outcomes
    assert "interrupted: stop asked" in outcomes[0]
    sup.tick(1.1)
    assert {p for p, _ in launcher.signals} == set(launcher.pids("api"))


def finish_rollout(sup: Supervisor, launcher: FakeLauncher, now: float) -> float:
    """Make each new api process ready and each old one exit, until no rollout is left; return the time."""
    for _ in range(50):
        if not sup.jobs:
            return now
        now += 0.5
        sup.tick(now)
        for inst in sup.surge:
            if inst.pid is not None:
                sup.probed(inst.pid, True, now)
        for inst in list(sup.retiring):
            if inst.pid is not None and inst.state is State.STOPPING:
                sup.exited(inst.pid, 0, now)
        sup.tick(now)
    raise AssertionError("the rollouts did not finish")


def test_a_second_reload_waits_for_the_first_then_replaces_every_process_again() -> None:
    sup, launcher, first = running()
    second: list[str] = []
    ask1 = sup.reload(["api"], first.append)
    sup.tick(1.0)
    ask2 = sup.reload(["api"], second.append)  # asked while the first one runs
    assert (ask1.waits_for, ask1.joined) == ([], False)
    assert (ask2.waits_for, ask2.joined) == (["api"], False)
    peak, now = 0, 1.0
    first_done: list[int] = []
    while sup.jobs:
        now += 0.5
        sup.tick(now)
        peak = max(peak, len(sup.surge))
        for inst in sup.surge:
            if inst.pid is not None:
                sup.probed(inst.pid, True, now)
        for inst in list(sup.retiring):
            if inst.pid is not None and inst.state is State.STOPPING:
                sup.exited(inst.pid, 0, now)
        sup.tick(now)
        if first and not first_done:
            first_done = api_pids(sup)  # what the first rollout left running
        assert now < 60, "the rollouts did not finish"
    assert peak == 1  # never two new processes at once: the rollouts did not run side by side
    assert first == [""]
    assert second == [""]
    assert len(launcher.pids("api")) == 6  # 2 at start, 2 per rollout
    assert set(api_pids(sup)).isdisjoint(first_done)  # the second replaced what the first had started
    assert all(inst.state is State.RUNNING for inst in sup.instances["api"])


def test_an_identical_ask_joins_the_reload_waiting_its_turn() -> None:
    sup, launcher, first = running()
    second: list[str] = []
    third: list[str] = []
    sup.reload(["api"], first.append)
    sup.tick(1.0)
    sup.reload(["api"], second.append)
    ask3 = sup.reload(["api"], third.append)
    assert (ask3.waits_for, ask3.joined) == (["api"], True)
    finish_rollout(sup, launcher, 1.0)
    assert first == second == third == [""]
    assert len(launcher.pids("api")) == 6  # three asks, two rollouts


def test_a_queued_reload_rolls_the_spec_in_force_when_its_turn_comes() -> None:
    sup, launcher, outcomes = running()
    sup.reload(["api"], outcomes.append)
    sup.tick(1.0)
    api2 = ProgramSpec("api", ("api", "--v2"), instances=2, ready=READY)
    sup.reconfigure(ServicesSpec("s.toml", (api2, WORKER)), 1.0, outcomes.append)
    finish_rollout(sup, launcher, 1.0)
    assert outcomes == ["", ""]
    assert [inst.spec.command for inst in sup.instances["api"]] == [("api", "--v2")] * 2


def test_stop_ends_a_reload_waiting_its_turn_too() -> None:
    sup, _, first = running()
    second: list[str] = []
    sup.reload(["api"], first.append)
    sup.tick(1.0)
    sup.reload(["api"], second.append)
    sup.stop(["api"])
    assert "interrupted: stop asked" in first[0]
    assert second == ["interrupted: stop asked"]
    assert sup.jobs == [] or all(j.done for j in sup.jobs)


PROM = ProgramSpec(
    "prom", (), instances=2, ready=READY, kind="container", container=ContainerSpec("prom:1", "/d.sock")
)


def running_containers() -> tuple[Supervisor, FakeLauncher, list[str]]:
    sup, launcher, outcomes = running((PROM,))
    for pid in launcher.pids("prom"):
        sup.probed(pid, True, 0.2)
    sup.tick(0.2)
    assert [inst.state for inst in sup.instances["prom"]] == [State.RUNNING] * 2
    return sup, launcher, outcomes


def test_a_container_is_stopped_before_its_new_one_starts() -> None:
    """Two containers cannot hold one name and one published port: a reload is a restart, one at a time."""
    sup, launcher, outcomes = running_containers()
    old = [inst.pid or 0 for inst in sup.instances["prom"]]
    sup.reload(["prom"], outcomes.append)
    sup.tick(1.0)
    assert launcher.signals == [(old[0], signal.SIGTERM)]  # the old one first...
    assert len(launcher.pids("prom")) == 2  # ...and nothing new while it runs
    sup.exited(old[0], 0, 1.5)
    sup.tick(1.5)
    new1 = launcher.pids("prom")[2]
    sup.tick(2.0)
    assert launcher.signals == [(old[0], signal.SIGTERM)]  # the second waits for the first to be ready
    sup.probed(new1, True, 2.5)
    sup.tick(2.5)
    assert launcher.signals[-1] == (old[1], signal.SIGTERM)
    sup.exited(old[1], 0, 3.0)
    sup.tick(3.0)
    new2 = launcher.pids("prom")[3]
    sup.probed(new2, True, 3.5)
    sup.tick(3.5)
    assert outcomes == [""]
    assert [inst.pid for inst in sup.instances["prom"]] == [new1, new2]


def test_a_new_container_that_is_not_ready_ends_the_reload_and_is_retried() -> None:
    sup, launcher, outcomes = running_containers()
    old = [inst.pid or 0 for inst in sup.instances["prom"]]
    sup.reload(["prom"], outcomes.append)
    sup.tick(1.0)
    sup.exited(old[0], 0, 1.5)
    sup.tick(1.5)
    new = launcher.pids("prom")[2]
    sup.exited(new, 1, 2.0)  # crashed before it was ready
    sup.tick(2.0)
    assert outcomes == [
        "reload of prom stopped: prom-1: the new container did not become ready (exited with code 1)"
    ]
    assert (old[1], signal.SIGTERM) not in launcher.signals  # the second old one keeps running
    sup.tick(2.6)
    assert len(launcher.pids("prom")) == 4  # the first is retried, as after any crash
    assert sup.instances["prom"][0].pid == launcher.pids("prom")[3]
