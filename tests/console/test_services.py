"""The services view against a real appliance: rows that match `appliance status`, the selected program's
spec and exits, start/stop/restart through the view (confirmed by name), read-only mode, and a clear word
when the API or the supervisor is not there."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from appliance.client.supervisor import SupervisorClient
from console.app import ConsoleApp
from console.screens.logs import LogsScreen
from console.screens.services import ServicesScreen
from console.widgets.row_table import RowTable
from tests.console.conftest import RunningAppliance, console_app
from tests.console.pilot import confirm, until
from tests.servers import free_port

PID, STATE = 2, 1  # columns of a program row


def status_pids(appliance: RunningAppliance) -> dict[str, int | None]:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "status", "--json"],
        env=appliance.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {p["name"]: p["pid"] for p in json.loads(done.stdout)["programs"]}


def screen_of(app: ConsoleApp) -> ServicesScreen:
    screen = app.screen
    assert isinstance(screen, ServicesScreen)
    return screen


async def services_view(pilot: Pilot[None], app: ConsoleApp) -> ServicesScreen:
    """The view, once composed (run_test may return before the first mode's widgets are mounted)."""
    await until(
        pilot, lambda: isinstance(app.screen, ServicesScreen) and app.screen.query(RowTable), "the view"
    )
    return screen_of(app)


def detail(screen: ServicesScreen) -> str:
    return str(screen.query_one("#services-detail-text", Static).content)


def running(table: RowTable, name: str) -> bool:
    row = table.rows.get(name)
    return row is not None and row[STATE] == "running" and row[PID] != "-"


def ensure_running(appliance: RunningAppliance, name: str) -> None:
    """Leave the shared appliance as the next test expects it (a failed test may have stopped `name`)."""
    client = SupervisorClient(appliance.control_socket)
    states = {p["name"]: p["state"] for p in client.status()["programs"]}
    if states.get(name) != "running":
        client.start([name])


def test_rows_match_appliance_status_and_detail_shows_the_spec(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="services")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "api") and running(table, "worker"), "api and worker")
            pids = status_pids(appliance)
            await until(
                pilot,
                lambda: (
                    {k: table.rows[k][PID] for k in ("api", "worker")}
                    == {k: str(pids[k]) for k in ("api", "worker")}
                ),
                "the pids of `appliance status`",
            )
            assert table.cursor_key == "api"
            await until(pilot, lambda: "-m appliance api" in detail(screen), "the api's command")
            assert "notify" in detail(screen)  # its ready probe
            screen.jump("worker")
            await until(pilot, lambda: "-m appliance worker" in detail(screen), "the worker's command")
            await pilot.press("slash")
            await pilot.press(*"work")
            assert table.shown == ["worker"]

    asyncio.run(scenario())


def test_restart_worker_through_the_view(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="services")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "worker"), "the worker running")
            before = table.rows["worker"][PID]
            screen.jump("worker")
            await confirm(pilot, "r", "Restart worker?")
            await until(
                pilot,
                lambda: running(table, "worker") and table.rows["worker"][PID] != before,
                "a new worker pid",
            )
            await until(pilot, lambda: "expected (restart asked)" in detail(screen), "the expected exit")
        assert str(status_pids(appliance)["worker"]) != before

    try:
        asyncio.run(scenario())
    finally:
        ensure_running(appliance, "worker")


def test_stop_then_start_worker(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="services")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "worker"), "the worker running")
            screen.jump("worker")
            await confirm(pilot, "x", "Stop worker?")
            await until(pilot, lambda: table.rows["worker"][STATE] == "stopped", "the worker stopped")
            assert table.rows["worker"][PID] == "-"
            assert status_pids(appliance)["worker"] is None
            await until(pilot, lambda: "expected (stop asked)" in detail(screen), "the stop in the exits")
            await confirm(pilot, "s", "Start worker?")
            await until(pilot, lambda: running(table, "worker"), "the worker running again")

    try:
        asyncio.run(scenario())
    finally:
        ensure_running(appliance, "worker")


def test_reload_shows_progress_and_keeps_the_screen_live(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="services")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "api") and running(table, "worker"), "the programs")
            before = table.rows["api"][PID]
            assert table.cursor_key == "api"
            await confirm(pilot, "l", "Reload api?")
            await until(pilot, lambda: "Reloading api…" in note(app), "the reload in progress")
            await pilot.press("down")  # the rollout runs in a worker: the table still answers
            assert table.cursor_key == "worker"
            await until(pilot, lambda: "Reloading" not in note(app), "the reload done", timeout=60)
            await until(
                pilot, lambda: running(table, "api") and table.rows["api"][PID] != before, "a new api pid"
            )
        assert str(status_pids(appliance)["api"]) != before

    asyncio.run(scenario())


def test_read_only_hides_and_refuses_start_and_stop(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="services", read_only=True)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "worker"), "the worker running")
            before = table.rows["worker"][PID]
            screen.jump("worker")
            for action in ("start", "stop", "restart", "reload"):
                assert not screen.check_action(action, ())
            shown_keys = {b.binding.action for b in screen.active_bindings.values() if b.enabled}
            assert not shown_keys & {"start", "stop", "restart", "reload"}
            await pilot.press("x", "r", "s", "l")
            await screen.run_action("stop")
            await pilot.pause(0.1)
            assert isinstance(app.screen, ServicesScreen)  # no confirmation was asked
            polls = app.state.supervisor.next_try
            await until(pilot, lambda: app.state.supervisor.next_try != polls, "another poll")
            assert table.rows["worker"][PID] == before
        assert str(status_pids(appliance)["worker"]) == before

    asyncio.run(scenario())


def test_enter_shows_the_programs_log(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="services")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await services_view(pilot, app)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: running(table, "worker"), "the worker running")
            screen.jump("worker")
            await pilot.press("enter")
            await until(
                pilot,
                lambda: isinstance(app.screen, LogsScreen) and app.screen.program == "worker",
                "the worker's log",
            )

    asyncio.run(scenario())


def test_works_while_the_api_is_down(appliance: RunningAppliance, tmp_path: Path) -> None:
    nowhere = appliance.target(api_url=f"http://127.0.0.1:{free_port()}")
    app = console_app(
        appliance, tmp_path, target=nowhere, signed_in=False, sign_in=False, first_view="services"
    )

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            table = (await services_view(pilot, app)).query_one(RowTable)
            await until(pilot, lambda: running(table, "api") and running(table, "worker"), "the programs")
            await until(pilot, lambda: app.state.api.up is False, "the API down")

    asyncio.run(scenario())


def note(app: ConsoleApp) -> str:
    return str(screen_of(app).query_one("#services-note", Static).content)


def test_says_when_the_supervisor_is_not_there(appliance: RunningAppliance, tmp_path: Path) -> None:
    def scenario(app: ConsoleApp, words: str) -> None:
        async def run() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                await until(pilot, lambda: words in note(app), repr(words))
                table = (await services_view(pilot, app)).query_one(RowTable)
                assert not table.rows
                assert words in table.empty
                await pilot.press("r")
                assert isinstance(app.screen, ServicesScreen)  # nothing to confirm: it says why instead

        asyncio.run(run())

    remote = appliance.target(control_socket=None)
    scenario(console_app(appliance, tmp_path, target=remote, first_view="services"), "not on this machine")
    gone = appliance.target(control_socket=tmp_path / "nothing.sock")
    scenario(console_app(appliance, tmp_path, target=gone, first_view="services"), "unavailable")
