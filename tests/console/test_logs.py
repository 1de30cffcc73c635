"""The logs view against a real appliance (a live tail of the api's log, its filter, pause and save, and
switching to the supervisor's own log; the api's JSON lines shown readable, the supervisor's lines as
written, `v` shows them raw), and against a control socket whose stream ends (the view says so, reconnects
and does not show the replayed lines twice: the real supervisor cannot be made to end a stream)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Label

from appliance.client.supervisor import SupervisorClient
from console.app import ConsoleApp
from console.log_lines import readable
from console.screens.logs import BACKLOG_LINES, LogsScreen
from console.screens.program_picker import ProgramPicker
from console.screens.save_dialog import SaveDialog
from console.widgets.log_tail import LogTail
from tests.console.conftest import RunningAppliance, console_app
from tests.console.pilot import screen_text, until
from tests.identity import bearer


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


def get(appliance: RunningAppliance, path: str, request_id: str) -> httpx.Response:
    """The operator's GET of `path`, under the request id `request_id` (its access line carries it)."""
    with httpx.Client(base_url=appliance.api_url, timeout=30) as http:
        return http.get(path, headers=bearer(appliance.operator_token) | {"X-Request-ID": request_id})


def logged(supervisor: SupervisorClient, program: str, needle: str) -> list[str]:
    """The last 30 lines of `program`'s log, once one of them holds `needle`."""
    deadline = time.monotonic() + 20
    while True:
        recent = supervisor.logs(program, 30)
        if any(needle in line for line in recent):
            return recent
        assert time.monotonic() < deadline, f"no line of {program} holds {needle!r}: {recent}"
        time.sleep(0.05)


def test_api_log_filter_and_save(appliance: RunningAppliance, tmp_path: Path) -> None:
    supervisor = SupervisorClient(appliance.control_socket)
    needle = f"filter-{uuid.uuid4().hex}"  # the access line of this request only
    asked = get(appliance, "/api/v1/auth/me", needle)
    assert asked.status_code == 200, asked.text
    recent = logged(supervisor, "api", needle)
    app = console_app(appliance, tmp_path, first_view="logs")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(pilot, lambda: screen.program == "api", "the api chosen")
            # The line this test caused (older ones may have scrolled past the backlog on a busy machine).
            mine = [line for line in recent if needle in line]
            await until(pilot, lambda: set(mine) <= set(tail.shown), "the api's recent lines", timeout=60)
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


def local(stamp: str) -> str:
    """A UTC stamp as the view writes it: local time, to the millisecond."""
    moment = dt.datetime.fromisoformat(stamp).astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def test_json_lines_are_readable_and_raw_on_a_key(appliance: RunningAppliance, tmp_path: Path) -> None:
    """The api's real access line of a request made here is drawn readable (local time, level, program,
    message, its fields, the request id and logger last), `v` shows it as the supervisor sent it, the
    filter finds it by either form; the supervisor's own lines (not JSON) keep their text."""
    supervisor = SupervisorClient(appliance.control_socket)
    request_id = f"logs-view-{uuid.uuid4().hex}"
    missing = uuid.uuid4()
    app = console_app(appliance, tmp_path, first_view="logs")

    async def filter_by(pilot: Pilot[None], needle: str) -> None:
        await pilot.press("escape", "slash", *needle, "enter")

    async def scenario() -> None:
        async with app.run_test(size=(260, 30)) as pilot:  # the whole line fits
            screen = await logs_view(pilot, app)
            tail = screen.query_one(LogTail)
            await until(
                pilot, lambda: screen.program == "api" and "streaming" in screen.status_text, "the api"
            )
            answer = await asyncio.to_thread(get, appliance, f"/api/v1/tenants/{missing}", request_id)
            assert answer.status_code == 404, answer.text
            assert answer.headers["X-Request-ID"] == request_id
            await until(pilot, lambda: any(request_id in x for x in tail.shown), "the request's access line")

            raw = next(x for x in tail.shown if request_id in x)
            assert raw in await asyncio.to_thread(supervisor.logs, "api", BACKLOG_LINES)  # as it sent it
            _, stream, text = raw.split(" ", 2)
            assert stream == "stderr"
            entry = json.loads(text)
            assert entry["level"] == "info"
            assert entry["process"] == "api"
            assert entry["logger"] == "appliance.access"
            assert entry["message"] == f"GET /api/v1/tenants/{missing} 404"
            assert entry["request_id"] == request_id
            assert entry["status"] == 404
            assert entry["route"] == "/api/v1/tenants/{tenant_id}"
            own = {"time", "level", "process", "message", "request_id", "logger"}
            assert set(entry) == own | {"status", "duration_ms", "route"}  # all that the line below shows
            readable_line = (
                f"{local(entry['time'])} INFO  api    {entry['message']}  status={entry['status']} "
                f"duration_ms={entry['duration_ms']} route={entry['route']} request_id={entry['request_id']} "
                f"logger={entry['logger']}"
            )
            assert readable_line in tail.lines
            assert raw not in tail.lines
            assert list(tail.lines) == [readable(x) for x in tail.shown]

            await filter_by(pilot, request_id)
            assert list(tail.shown) == [raw]
            assert list(tail.lines) == [readable_line]
            await pilot.pause()
            assert " ".join(readable_line.split()) in screen_text(app)
            level = next(s for s in tail.render_line(0) if s.text == "INFO")
            assert level.style is not None
            assert level.style.color is not None
            assert level.style.color.name == "green"

            await pilot.press("v")
            assert list(tail.lines) == [raw]
            assert " · raw" in screen.status_text
            await pilot.pause()
            assert raw[:200] in screen_text(app)  # (all that fits)

            # The filter finds what either form shows, whichever form is drawn.
            only_raw, only_readable = f'"request_id":"{request_id}"', f"request_id={request_id}"
            assert only_raw in raw
            assert only_raw not in readable_line
            assert only_readable in readable_line
            assert only_readable not in raw
            for needle in (only_raw, only_readable):
                await filter_by(pilot, needle)
                assert list(tail.shown) == [raw], needle
                assert list(tail.lines) == [raw]
                await pilot.press("v")
                assert list(tail.lines) == [readable_line]
                assert " · raw" not in screen.status_text
                await pilot.press("v")

            await pilot.press("v", "escape", "p")
            await until(pilot, lambda: isinstance(app.screen, ProgramPicker), "the program picker")
            await pilot.press("end", "enter")
            await until(pilot, lambda: screen.program == "supervisor", "the supervisor chosen")
            await until(pilot, lambda: any(": spawned pid " in x for x in tail.shown), "a spawn in its log")
            assert not tail.raw
            as_written = list(tail.shown)
            as_drawn = [f"{local(x.split(' ', 1)[0])} {x.split(' ', 1)[1]}" for x in as_written]
            assert list(tail.lines) == as_drawn  # the same words, the time made local
            await pilot.press("v")
            assert list(tail.lines) == list(tail.shown)

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
