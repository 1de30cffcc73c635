"""`?`: every key of every view, from the command table (write actions marked when read-only)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console import commands
from console.host import host


def _key(command: commands.Command) -> str:
    return command.key_label or command.key


class KeysScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str, str]] = []  # view, key, action, what it does

    def compose(self) -> ComposeResult:
        app = host(self.app)
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("View", no_wrap=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Action", no_wrap=True)
        table.add_column("What it does")
        for command in commands.COMMANDS:
            view = "all" if command.screen == commands.GLOBAL else command.screen
            off = command.writes and app.read_only
            note = f"{command.help} (off: read-only)" if off else command.help
            self.rows.append((view, _key(command), command.title, note))
            table.add_row(*self.rows[-1], style="dim" if off else "")
        with VerticalScroll(classes="dialog wide", id="keys"):
            yield Label("Keys", classes="dialog-title")
            yield Static(table, id="keys-table")
            yield Label("escape closes", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
