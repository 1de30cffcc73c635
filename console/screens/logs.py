"""Logs: a live tail of one program's log (or the supervisor's own), readable (time, level, program,
message, then the other fields) or raw as written, with a filter, follow/pause, a program picker, saving the
shown lines (as written) to a file, and clearing.

The stream runs in one exclusive worker: choosing another program cancels the old stream. When the stream
ends or the supervisor goes away, the view says so and tries again, backing off from 1 s to 30 s; on a
reconnect the backlog the supervisor sends first is skipped where it repeats lines already received.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from appliance.client.supervisor import SupervisorError, SupervisorUnavailable
from console.screens.base import ConsoleScreen
from console.screens.program_picker import ProgramPicker
from console.screens.save_dialog import SaveDialog
from console.widgets.log_tail import BUFFER_LINES, LogTail

SUPERVISOR = "supervisor"  # the name under which the supervisor serves its own log
BACKLOG_LINES = 200  # history asked for when a stream starts
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0
STATUS_S = 0.25


def default_path(program: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"~/appliance-{program}-{stamp}.log"


def write_log(path: str, lines: list[str]) -> Path:
    """Write `lines` to a new file (never over an existing one); OSError says why it could not."""
    where = Path(path).expanduser()
    with where.open("x", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in lines)
    return where


class Replay:
    """After a reconnect, the supervisor first sends the last lines again: skip those already received
    (stamped before the newest one seen, or seen), until the first new line."""

    def __init__(self, seen: deque[str]) -> None:
        self.seen = set(seen)
        self.newest = seen[-1].split(" ", 1)[0] if seen else ""
        self.skipping = bool(seen)

    def repeated(self, line: str) -> bool:
        if self.skipping:
            stamp = line.split(" ", 1)[0]
            self.skipping = line in self.seen or stamp < self.newest
        return self.skipping


class LogsScreen(ConsoleScreen):
    NAME = "logs"
    TITLE = "Logs"
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]
    AUTO_FOCUS = "#logs-view"  # not the hidden filter box, which would swallow the keys

    def __init__(self) -> None:
        super().__init__()
        self.program: str | None = None
        self.stream_note = Text("")
        self._status = ""

    def body(self) -> ComposeResult:
        yield Input(placeholder="show only lines containing…", id="logs-filter")
        yield Static("", id="logs-status")
        yield LogTail(id="logs-view")

    def on_mount(self) -> None:
        self.query_one("#logs-filter", Input).display = False
        self.set_interval(STATUS_S, self.show_status)

    @property
    def tail(self) -> LogTail:
        return self.query_one(LogTail)

    def polled(self) -> None:
        super().polled()
        if self.program is None:
            self._choose_default()
        self.show_status()

    def _choose_default(self) -> None:
        if self.console.connection.supervisor is None:
            self._note("the supervisor is not on this machine (this target has no control socket)", "red")
            return
        names = self.console.program_names()
        if names:
            self.show_program("api" if "api" in names else names[0])
        elif self.console.state.supervisor.up is not None:  # known down: its stream says so and retries
            self.show_program(SUPERVISOR)

    def jump(self, key: str) -> None:
        """Show the log of `key`: a program, an instance label ("api-2") or "supervisor"."""
        if key != self.program:
            self.show_program(key)
        self.tail.focus()

    def show_program(self, name: str) -> None:
        self.program = name
        self.tail.empty()
        self.follow(name)
        self.show_status()

    # --- the stream -----------------------------------------------------------------------------------

    def _note(self, text: str, style: str = "") -> None:
        self.stream_note = Text(text, style=style)
        self.show_status()

    @work(exclusive=True, group="logs-follow")
    async def follow(self, name: str) -> None:
        delay = RETRY_FIRST_S
        received: deque[str] = deque(maxlen=BACKLOG_LINES)
        while True:
            client = self.console.connection.supervisor
            if client is None:
                self._note("the supervisor is not on this machine (this target has no control socket)", "red")
                return
            self._note(f"waiting for lines of {name}…", "dim")
            replay, got = Replay(received), 0
            try:
                async for line in client.follow_logs(name, lines=BACKLOG_LINES):
                    if not got:
                        self._note("streaming", "green")
                        delay = RETRY_FIRST_S
                    got += 1
                    if replay.repeated(line):
                        continue
                    received.append(line)
                    self.tail.add(line)
                problem = "the stream ended"
            except (SupervisorUnavailable, SupervisorError) as exc:
                problem = str(exc)
            self._note(f"{problem}; retrying in {delay:.0f}s", "bold red")
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    def show_status(self) -> None:
        tail = self.tail
        line = Text()
        line.append(self.program or "no program", style="bold")
        if tail.following:
            line.append(" · following", style="green")
        else:
            line.append(f" · paused, {tail.unseen} new lines", style="bold yellow")
        line.append(f" · {len(tail.shown)} shown, {len(tail.buffer)} kept (newest {BUFFER_LINES:,})")
        if tail.needle:
            line.append(f" · filter {tail.needle!r}")
        if tail.raw:
            line.append(" · raw", style="bold")
        line.append(" · ")
        line.append_text(self.stream_note)
        if line.plain != self._status:
            self._status = line.plain
            self.query_one("#logs-status", Static).update(line)

    @property
    def status_text(self) -> str:
        return self._status

    # --- keys -----------------------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        self.tail.set_following(not self.tail.following)
        self.show_status()

    def action_toggle_raw(self) -> None:
        self.tail.set_raw(not self.tail.raw)
        self.show_status()

    def action_clear(self) -> None:
        self.tail.empty()
        self.show_status()

    def action_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#logs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.tail.set_filter(event.value)
        self.show_status()

    @on(Input.Submitted, "#logs-filter")
    def _filter_done(self) -> None:
        self.tail.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.value = ""
        box.display = False
        self.tail.set_filter("")
        self.tail.focus()
        self.show_status()

    @work(group="logs-dialog")
    async def action_pick(self) -> None:
        names = [*self.console.program_names(), SUPERVISOR]
        choice = await self.app.push_screen_wait(ProgramPicker(names, self.program))
        if choice is not None and choice != self.program:
            self.show_program(choice)

    @work(group="logs-dialog")
    async def action_save(self) -> None:
        lines = list(self.tail.shown)
        if not lines:
            self.notify("Nothing to save: no lines are shown.", severity="warning")
            return
        path, error = default_path(self.program or "log"), ""
        what = f"{len(lines)} shown lines of {self.program}"
        while True:
            answer = await self.app.push_screen_wait(SaveDialog(what, path, error))
            if answer is None:
                return
            path = answer
            try:
                where = await asyncio.to_thread(write_log, answer, lines)
            except FileExistsError:
                error = f"{answer} already exists: choose another name."
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
                error = f"Cannot write {answer}: {getattr(exc, 'strerror', None) or exc}"
            else:
                self.notify(f"Saved {len(lines)} lines to {where}.")
                return
