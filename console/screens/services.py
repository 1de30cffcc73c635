"""Services: every supervised program instance in one table (updated in place after each poll, filtered as
you type), the selected program's spec and recent exits, and start, stop, restart and reload, each
confirmed by name and run in the background with its progress shown.

It talks only to the supervisor (never the API), so it keeps working while the API is down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Static

from appliance.client.supervisor import SupervisorError, SupervisorUnavailable
from console import format as fmt
from console.screens.base import ConsoleScreen
from console.screens.confirm import ConfirmDialog
from console.widgets import programs
from console.widgets.program_detail import detail_text
from console.widgets.row_table import RowTable

DETAIL_DELAY_S = 0.3  # the detail loads once the cursor rests, not once per arrow press


@dataclass(frozen=True)
class Verb:
    """One thing the view can do to a program, and how it talks about it."""

    name: str
    doing: str
    done: str
    message: str
    danger: bool = False


VERBS = {
    "start": Verb("start", "Starting", "{name}: start asked.", "Starts {name} (and what it depends on)."),
    "stop": Verb(
        "stop",
        "Stopping",
        "{name} stopped.",
        "Stops every instance of {name}; it stays stopped until started again.",
        danger=True,
    ),
    "restart": Verb(
        "restart",
        "Restarting",
        "{name}: restart asked.",
        "Stops and starts every instance of {name} at once.",
        danger=True,  # every instance at once: what they were doing is cut off
    ),
    "reload": Verb(
        "reload",
        "Reloading",
        "{name} reloaded: every instance replaced.",
        "Replaces the instances of {name} one at a time: each new one must be ready before an old one stops.",
    ),
}


class ServicesScreen(ConsoleScreen):
    NAME = "services"
    TITLE = "Services"
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]
    AUTO_FOCUS = "#services-table"  # not the hidden filter box, which would swallow the keys

    def __init__(self) -> None:
        super().__init__()
        self.by_label: dict[str, dict[str, Any]] = {}  # "api-2" -> its status row
        self.in_progress: dict[str, str] = {}  # program -> "Reloading api…"
        self._detail_timer: Timer | None = None
        self._detail_of: tuple[str, tuple[Any, ...]] | None = None  # what the pane shows (or is loading)
        self._pending_jump: str | None = None

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter: words in program or state", id="services-filter")
        yield Static("", id="services-note")
        yield RowTable(programs.COLUMNS, id="services-table", empty="Waiting for the supervisor…")
        with VerticalScroll(id="services-detail"):
            yield Static("", id="services-detail-text")

    def on_mount(self) -> None:
        self.query_one("#services-filter", Input).display = False

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    # --- rows -----------------------------------------------------------------------------------------

    def polled(self) -> None:
        super().polled()
        state = self.console.state
        if state.supervisor.up:
            self.by_label = {programs.label(p): p for p in state.programs}
            self.table.empty = "The supervisor runs no programs."
            self.table.set_rows(programs.row(p) for p in state.programs)
        else:  # the last answer's rows would claim that programs run: show why there are none
            self.by_label = {}
            self.table.empty = self.unavailable()
            self.table.set_rows(())
        self.show_note()
        if self._pending_jump and self._place(self._pending_jump):
            self._pending_jump = None
        if self._wanted_detail() != self._detail_of:
            self._schedule_detail()  # another program, or its processes changed (a restart, an exit)

    def unavailable(self) -> str:
        """Why no program can be shown or driven now."""
        link = self.console.state.supervisor
        if self.console.connection.supervisor is None:
            return "The supervisor is not on this machine (this target has no control socket)."
        if link.up is None:
            return "Waiting for the supervisor…"
        return f"The supervisor is unavailable: {link.error} (the console keeps trying)."

    def show_note(self) -> None:
        note = Text()
        state = self.console.state
        if not state.supervisor.up:
            note.append(self.unavailable(), style="bold red" if state.supervisor.up is False else "dim")
        else:
            running = sum(1 for p in state.programs if p.get("state") == "running")
            info = state.supervisor_info
            started = info.get("started_at")
            note.append(f"{len(state.programs)} instances · {running} running", style="dim")
            if info.get("pid"):
                uptime = fmt.duration(time.time() - started) if started else "-"
                note.append(f" · supervisor pid {info['pid']}, up {uptime}", style="dim")
        for doing in self.in_progress.values():
            note.append(f"  {doing}", style="bold yellow")
        self.query_one("#services-note", Static).update(note)

    def selected_program(self) -> str | None:
        """The program (not the instance: "api" for the row "api-2") under the cursor."""
        key = self.table.cursor_key
        program = self.by_label.get(key) if key else None
        return str(program["name"]) if program else None

    def _signature(self, name: str | None) -> tuple[Any, ...]:
        return tuple(
            (p.get("instance"), p.get("pid"), p.get("state"), p.get("restarts"))
            for p in self.by_label.values()
            if p["name"] == name
        )

    def jump(self, key: str) -> None:
        """Put the cursor on a program (its name or an instance label), now or once the rows come."""
        if not self._place(key):
            if self.by_label:
                self.notify(f"No program called {key}.", severity="warning")
            else:
                self._pending_jump = key
        self.table.focus()

    def _place(self, key: str) -> bool:
        if self.table.move_to(key):
            return True
        label = next((label for label, p in self.by_label.items() if p["name"] == key), None)
        return label is not None and self.table.move_to(label)

    # --- filter ---------------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#services-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#services-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.filter(event.value)

    @on(Input.Submitted, "#services-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#services-filter", Input)
        box.value = ""
        box.display = False
        self.table.filter("")
        self.table.focus()

    # --- detail ---------------------------------------------------------------------------------------

    @on(RowTable.Highlighted, "#services-table")
    def _highlighted(self) -> None:
        self._schedule_detail()

    def _wanted_detail(self) -> tuple[str, tuple[Any, ...]] | None:
        name = self.selected_program()
        return (name, self._signature(name)) if name else None

    def _schedule_detail(self) -> None:
        self._detail_of = self._wanted_detail()
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, self.load_detail)

    @work(exclusive=True, group="services-detail")
    async def load_detail(self) -> None:
        pane = self.query_one("#services-detail-text", Static)
        name = self.selected_program()
        client = self.console.connection.supervisor
        if name is None or client is None:
            pane.update("")
            return
        try:
            answer = await client.spec(name)
        except (SupervisorUnavailable, SupervisorError) as exc:
            pane.update(Text(f"{name}: could not load its spec: {exc}", style="bold red"))
            self._detail_of = None  # try again after the next poll
            return
        if name == self.selected_program():
            pane.update(detail_text(name, answer))

    # --- actions (write actions are gated by check_action in the base screen) ------------------------

    async def _act(self, verb: Verb) -> None:
        if self.console.refuse_if_read_only(self.NAME, verb.name):
            return
        client = self.console.connection.supervisor
        name = self.selected_program()
        if client is None or not self.console.state.supervisor.up:
            self.notify(self.unavailable(), severity="error")
            return
        if name is None:
            self.notify("Select a program first.", severity="warning")
            return
        if name in self.in_progress:
            self.notify(f"{self.in_progress[name]} wait until it is done.", severity="warning")
            return
        dialog = ConfirmDialog(
            f"{verb.name.title()} {name}?", verb.message.format(name=name), verb.name.title(), verb.danger
        )
        if not await self.app.push_screen_wait(dialog):
            return
        self.in_progress[name] = f"{verb.doing} {name}…"
        self.show_note()
        try:  # stop and reload answer only when done: this worker waits, the screen does not
            done = await self.attempt(f"{verb.name} {name}", client.act(verb.name, [name]))
        finally:
            self.in_progress.pop(name, None)
            self.show_note()
        if done is not None:
            self.notify(verb.done.format(name=name))
        self.console.state.supervisor.next_try = 0.0  # poll at the next tick, not in 2 s
        self._schedule_detail()

    @work(group="services-action")
    async def action_start(self) -> None:
        await self._act(VERBS["start"])

    @work(group="services-action")
    async def action_stop(self) -> None:
        await self._act(VERBS["stop"])

    @work(group="services-action")
    async def action_restart(self) -> None:
        await self._act(VERBS["restart"])

    @work(group="services-action")
    async def action_reload(self) -> None:
        await self._act(VERBS["reload"])

    def action_logs(self) -> None:
        name = self.selected_program()
        if name is None:
            self.notify("Select a program first.", severity="warning")
            return
        self.console.jump("logs", name)
