"""The reconcile loop across programs: dependency order on start and on stop, commands, parallel instances."""

from __future__ import annotations

import signal

import pytest

from appliance.supervisor.specs import ProgramSpec, ReadySpec, ServicesSpec
from appliance.supervisor.states import State
from appliance.supervisor.supervisor import Supervisor, UnknownProgram
from tests.supervisor.fakes import FakeLauncher

READY = ReadySpec("tcp", host="127.0.0.1", port=1)


def build() -> tuple[Supervisor, FakeLauncher]:
    services = ServicesSpec(
        "services.toml",
        (
            ProgramSpec("db", ("db",), ready=READY),
            ProgramSpec("api", ("api",), instances=2, depends_on=("db",)),
            ProgramSpec("worker", ("worker",)),
        ),
    )
    launcher = FakeLauncher()
    return Supervisor(services, launcher, lambda _: None), launcher


def states(sup: Supervisor, name: str) -> list[State]:
    return [inst.state for inst in sup.instances[name]]


def test_dependents_wait_until_dependencies_are_ready() -> None:
    sup, launcher = build()
    sup.start(["all"], 0.0)
    sup.tick(0.0)
    assert states(sup, "db") == [State.STARTING]
    assert states(sup, "api") == [State.STOPPED, State.STOPPED]
    assert states(sup, "worker") == [State.RUNNING]
    assert sup.instances["api"][0].reason == "waiting for db"
    sup.probed(launcher.pids("db")[0], True, 0.5)
    sup.tick(0.5)
    assert states(sup, "api") == [State.RUNNING, State.RUNNING]


def test_shutdown_stops_dependents_first_and_instances_together() -> None:
    sup, launcher = build()
    sup.start(["all"], 0.0)
    sup.tick(0.0)
    sup.probed(launcher.pids("db")[0], True, 0.1)
    sup.tick(0.1)
    sup.stop(["all"])
    sup.tick(1.0)
    signalled = {pid for pid, _ in launcher.signals}
    assert signalled == set(launcher.pids("api")) | set(launcher.pids("worker"))
    assert states(sup, "db") == [State.RUNNING]
    for pid in launcher.pids("api"):
        sup.exited(pid, -signal.SIGTERM, 1.2)
    sup.tick(1.2)
    assert states(sup, "db") == [State.STOPPING]
    sup.exited(launcher.pids("db")[0], 0, 1.3)
    sup.exited(launcher.pids("worker")[0], 0, 1.3)
    assert sup.idle()


def test_start_brings_dependencies_along() -> None:
    sup, _ = build()
    assert sup.start(["api"], 0.0) == ["db", "api"]
    assert not sup.instances["worker"][0].want


def test_unknown_program_is_named() -> None:
    sup, _ = build()
    with pytest.raises(UnknownProgram, match="unknown program 'nope'"):
        sup.stop(["api", "nope"])


def test_exit_of_an_unknown_pid_is_ignored() -> None:
    sup, _ = build()
    assert sup.exited(4242, 0, 0.0) is None


def test_next_deadline_is_the_earliest_backoff() -> None:
    sup, launcher = build()
    sup.start(["worker"], 0.0)
    sup.tick(0.0)
    assert sup.next_deadline() is None
    sup.exited(launcher.pids("worker")[0], 1, 0.1)
    sup.tick(0.1)  # first restart: immediate
    sup.exited(launcher.pids("worker")[1], 1, 0.2)
    assert sup.next_deadline() == pytest.approx(0.7)


def test_the_supervisor_answers_for_a_listen_program_only_while_none_of_it_is_up_or_starting_anew() -> None:
    address = ("127.0.0.1", 8080)
    web = ProgramSpec("web", ("web",), instances=2, ready=READY, listen=address, when_down="http-503")
    quiet = ProgramSpec("quiet", ("quiet",), ready=READY, listen=("127.0.0.1", 8081))  # when_down = "hold"
    launcher = FakeLauncher()
    sup = Supervisor(ServicesSpec("s.toml", (web, quiet)), launcher, lambda _: None)
    assert sup.unattended() == {address: "web"}  # nothing started yet
    sup.start(["all"], 0.0)
    sup.tick(0.0)
    assert sup.unattended() == {}  # a first start: connections wait in the backlog for it
    first, second = launcher.pids("web")
    sup.probed(first, True, 0.5)
    sup.exited(second, 1, 0.5)  # one up, one crashed: still served
    sup.tick(0.5)
    assert sup.unattended() == {}
    sup.exited(first, 1, 1.0)
    sup.tick(1.0)  # both crashed: backing off, then starting again after a crash
    assert {inst.state for inst in sup.instances["web"]} <= {State.BACKOFF, State.STARTING}
    assert sup.unattended() == {address: "web"}
    for pid in launcher.pids("web")[2:]:
        sup.probed(pid, True, 1.5)
    sup.tick(1.5)
    assert sup.unattended() == {}  # ready again
    sup.stop(["web"])
    sup.tick(2.0)
    assert sup.unattended() == {address: "web"}  # stopping: its processes no longer accept
    for pid in launcher.pids("web")[2:]:
        sup.exited(pid, 0, 2.5)
    sup.tick(2.5)
    assert sup.unattended() == {address: "web"}
    sup.restart(["web"], 3.0)  # the operator's start: no crash before it, so the backlog waits again
    sup.tick(3.0)
    assert sup.unattended() == {}
