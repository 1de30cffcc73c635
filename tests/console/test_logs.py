"""The logs view against a real appliance (a live tail of the api's log, its filter, pause and save, and
switching to the supervisor's own log), and against control sockets that serve known lines (JSON lines are
shown readable, other lines as written, `v` shows them raw) or end their stream (the view says so,
reconnects and does not show the replayed lines twice)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Label

from appliance.client.supervisor import SupervisorClient
from console.app import ConsoleApp
from console.log_lines import readable
from console.screens.logs import LogsScreen
from console.screens.program_picker import ProgramPicker
from console.screens.save_dialog import SaveDialog
from console.widgets.log_tail import LogTail
from tests.console.conftest import RunningAppliance, console_app
from tests.console.pilot import screen_text, until


async def logs_view(pilot: Pilot[None], app: ConsoleApp) -> LogsScreen:
    """The view, once composed (run_test may return before the first mode's widgets are mounted)."""
    await until(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.query(LogTail), "the view")
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    return screen


def says(app: ConsoleApp, reason: str) -> bool:
    """The save dialog is shown again, with `reason` as its error."""
    screen = app.screen
    return isinstance(screen, SaveDialog) and reason in str(screen.query_one("#save-error", Label).content)


def test_api_log_filter_and_save(appliance: RunningAppliance, tmp_path: Path) -> None:
    supervisor = SupervisorClient(appliance.control_socket)
    recent = supervisor.logs("api", 30)
    pid = next(p["pid"] for p in supervisor.status()["programs"] if p["name"] == "api")
    needle = f"server process [{pid}]"  # uvicorn's first line, of this process only
    assert any(needle in line for line in recent), recent
    app = console_app(appliance, tmp_path, first_view="logs")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(pilot, lambda: screen.program == "api", "the api chosen")
            await until(pilot, lambda: set(recent) <= set(tail.shown), "the api's recent lines")
            assert list(tail.lines) == [readable(x) for x in tail.shown]  # the view holds exactly those lines
            everything = len(tail.shown)
            await pilot.press("slash")
            await pilot.press(*needle)
            assert tail.needle == needle.lower()
            assert tail.shown
            assert all(needle.lower() in line.lower() for line in tail.shown)
            assert len(tail.shown) < everything
            assert list(tail.lines) == [readable(x) for x in tail.shown]
            assert f"filter {needle.lower()!r}" in screen.status_text
            await pilot.press("enter")

            saved = tmp_path / "api.log"
            await pilot.press("w")
            await until(pilot, lambda: isinstance(app.screen, SaveDialog), "the save dialog")
            assert "appliance-api-" in app.screen.query_one("#save-path", Input).value
            app.screen.query_one("#save-path", Input).value = str(saved)
            await pilot.press("enter")
            await until(pilot, saved.exists, "the saved file")
            await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the dialog closed")
            assert saved.read_text().splitlines() == list(tail.shown)  # as written: the JSON

            for unwritable, reason in (
                (tmp_path / "no-such-dir" / "x.log", "No such file or directory"),
                (saved, "already exists"),
            ):
                await pilot.press("w")
                await until(pilot, lambda: isinstance(app.screen, SaveDialog), "the save dialog")
                app.screen.query_one("#save-path", Input).value = str(unwritable)
                await pilot.press("enter")
                await until(pilot, partial(says, app, reason), f"the reason {reason!r}")
                await pilot.press("escape")
            assert not (tmp_path / "no-such-dir").exists()

    asyncio.run(scenario())


def test_supervisor_log_pause_and_follow(appliance: RunningAppliance, tmp_path: Path) -> None:
    supervisor = SupervisorClient(appliance.control_socket)
    app = console_app(appliance, tmp_path, first_view="logs")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(pilot, lambda: screen.program == "api" and tail.shown, "the api's log")
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, ProgramPicker), "the program picker")
            await pilot.press("end", "enter")
            await until(pilot, lambda: screen.program == "supervisor", "the supervisor chosen")
            await until(pilot, lambda: any(" supervisor[" in x for x in tail.shown), "the supervisor's log")
            assert not any('"process":"api"' in x for x in tail.buffer)  # the api's lines went with it

            await pilot.press("f")
            assert not tail.following
            before = list(tail.shown)
            await asyncio.to_thread(supervisor.restart, ["worker"])
            await until(pilot, lambda: tail.unseen > 0, "lines received while paused")
            await pilot.pause(0.3)  # several flushes
            assert list(tail.shown) == before
            assert list(tail.lines) == [readable(x) for x in before]
            assert f"paused, {tail.unseen} new lines" in screen.status_text

            await pilot.press("f")
            assert tail.following
            assert len(tail.shown) > len(before)
            assert "worker" in "".join(list(tail.shown)[len(before) :])
            assert list(tail.lines) == [readable(x) for x in tail.shown]

            await pilot.press("c")
            assert not tail.shown
            assert not tail.buffer
            assert not tail.lines

    try:
        asyncio.run(scenario())
    finally:
        states = {p["name"]: p["state"] for p in supervisor.status()["programs"]}
        if states["worker"] != "running":
            supervisor.start(["worker"])


def test_no_supervisor_is_said(appliance: RunningAppliance, tmp_path: Path) -> None:
    def scenario(app: ConsoleApp, words: str) -> None:
        async def run() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                screen = await logs_view(pilot, app)
                await until(pilot, lambda: words in screen.status_text, repr(words))

        asyncio.run(run())

    remote = appliance.target(control_socket=None)
    scenario(console_app(appliance, tmp_path, target=remote, first_view="logs"), "not on this machine")
    gone = appliance.target(control_socket=tmp_path / "nothing.sock")
    scenario(console_app(appliance, tmp_path, target=gone, first_view="logs"), "retrying in")


# --- a control socket whose log stream ends ---------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket's path must fit in 108 bytes."""
    where = Path(tempfile.mkdtemp(prefix="fa-logs-", dir="/tmp"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


LINES = [f"2026-01-01T00:00:0{i}.000Z supervisor[1] line {i}" for i in range(5)]


class EndingStream:
    """Answers `status` (no programs) and serves `logs`: the first stream ends after lines 0-2, the second
    replays lines 1-2 (as the supervisor replays its backlog) before the new lines 3-4, and stays open."""

    def __init__(self) -> None:
        self.streams = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        if request["cmd"] == "status":
            answer = {"ok": True, "programs": [], "supervisor": {"pid": 1, "started_at": 0, "version": "t"}}
            writer.write(json.dumps(answer).encode() + b"\n")
        else:
            self.streams += 1
            backlog, new = (LINES[:2], LINES[2:3]) if self.streams == 1 else (LINES[1:3], LINES[3:])
            writer.write(json.dumps({"ok": True, "lines": backlog}).encode() + b"\n")
            for line in new:
                writer.write(json.dumps({"line": line}).encode() + b"\n")
            await writer.drain()
            if self.streams > 1:
                await reader.read()  # until the console goes
        await writer.drain()
        writer.close()


def test_an_ended_stream_is_said_and_resumed_without_repeats(
    appliance: RunningAppliance, tmp_path: Path, short_dir: Path
) -> None:
    socket_path = short_dir / "control.sock"
    fake = EndingStream()
    app = console_app(
        appliance, tmp_path, target=appliance.target(control_socket=socket_path), first_view="logs"
    )

    async def scenario() -> None:
        server = await asyncio.start_unix_server(fake.serve, path=str(socket_path))
        async with server, app.run_test(size=(100, 30)) as pilot:
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(pilot, lambda: "the stream ended; retrying" in screen.status_text, "the ended stream")
            assert list(tail.buffer) == LINES[:3]
            await until(pilot, lambda: len(tail.shown) == len(LINES), "the resumed stream")
            assert list(tail.buffer) == LINES
            assert "streaming" in screen.status_text
            assert fake.streams == 2

    asyncio.run(scenario())


ACCESS: dict[str, Any] = {
    "time": "2026-01-01T00:00:01.234Z",
    "level": "info",
    "logger": "appliance.access",
    "process": "api",
    "message": "GET /api/v1/projects 200",
    "request_id": "req_7",
    "status": 200,
    "duration_ms": 1.5,
    "route": "/api/v1/projects",
}
FAILURE: dict[str, Any] = {
    "time": "2026-01-01T00:00:02.000Z",
    "level": "error",
    "logger": "appliance.jobs",
    "process": "worker",
    "message": "job 7 failed\nretrying",
    "request_id": None,
    "error": "timeout after 5 s",
    "attempt": 2,
}
SERVED = [
    f"2026-01-01T00:00:01.240Z stderr {json.dumps(ACCESS)}",
    f"2026-01-01T00:00:02.001Z stderr {json.dumps(FAILURE)}",
    "2026-01-01T00:00:03.000Z stderr INFO:     Started server process [12]",
    "2026-01-01T00:00:04.000Z supervisor[1] started worker (pid 13)",
]


def local(stamp: str) -> str:
    """A UTC stamp as the view writes it: local time, to the millisecond."""
    moment = dt.datetime.fromisoformat(stamp).astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class Serving:
    """Answers `status` (no programs) and serves SERVED as the backlog of any log, then stays open."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        if request["cmd"] == "status":
            answer = {"ok": True, "programs": [], "supervisor": {"pid": 1, "started_at": 0, "version": "t"}}
            writer.write(json.dumps(answer).encode() + b"\n")
        else:
            writer.write(json.dumps({"ok": True, "lines": SERVED}).encode() + b"\n")
            await writer.drain()
            await reader.read()  # until the console goes
        await writer.drain()
        writer.close()


def test_json_lines_are_readable_and_raw_on_a_key(
    appliance: RunningAppliance, tmp_path: Path, short_dir: Path
) -> None:
    socket_path = short_dir / "control.sock"
    app = console_app(
        appliance, tmp_path, target=appliance.target(control_socket=socket_path), first_view="logs"
    )
    readable_lines = [
        f"{local(ACCESS['time'])} INFO  api    GET /api/v1/projects 200  status=200 duration_ms=1.5 "
        "route=/api/v1/projects request_id=req_7 logger=appliance.access",
        f"{local(FAILURE['time'])} ERROR worker job 7 failed↵retrying  "
        'error="timeout after 5 s" attempt=2 logger=appliance.jobs',
        f"{local('2026-01-01T00:00:03.000Z')} stderr INFO:     Started server process [12]",
        f"{local('2026-01-01T00:00:04.000Z')} supervisor[1] started worker (pid 13)",
    ]

    async def scenario() -> None:
        server = await asyncio.start_unix_server(Serving().serve, path=str(socket_path))
        async with server, app.run_test(size=(160, 30)) as pilot:
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(pilot, lambda: len(tail.lines) == len(SERVED), "the served lines")
            assert list(tail.lines) == readable_lines
            await pilot.pause()
            shown = screen_text(app)
            assert "INFO api GET /api/v1/projects 200 status=200 duration_ms=1.5" in shown
            error = next(s for s in tail.render_line(1) if s.text == "ERROR")
            assert error.style is not None
            assert error.style.color is not None
            assert error.style.color.name == "red"

            await pilot.press("v")
            assert list(tail.lines) == SERVED
            assert " · raw" in screen.status_text
            await pilot.press("slash", *"timeout", "enter")  # the filter finds what either form shows
            assert list(tail.shown) == [SERVED[1]]
            await pilot.press("v")
            assert list(tail.lines) == [readable_lines[1]]
            assert " · raw" not in screen.status_text

    asyncio.run(scenario())


class TailApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogTail(limit=3)


def test_the_buffer_keeps_only_the_newest_lines() -> None:
    app = TailApp()

    async def scenario() -> None:
        async with app.run_test() as pilot:
            tail = app.query_one(LogTail)
            for i in range(5):
                tail.add(f"line {i}")
            await until(pilot, lambda: len(tail.lines) == 3, "the view filled")
            assert list(tail.buffer) == list(tail.shown) == list(tail.lines) == ["line 2", "line 3", "line 4"]
            tail.set_following(False)
            tail.add("line 5")
            tail.set_filter("5")  # paused: the filter counts the held line but does not show it
            assert tail.unseen == 1
            assert not tail.shown
            tail.set_following(True)
            assert list(tail.shown) == ["line 5"]

    asyncio.run(scenario())
