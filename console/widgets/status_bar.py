"""The header: which appliance (in its accent colour), who is signed in, read-only, and one indicator each
for the API and the supervisor, so the screen says "API down, supervisor up" instead of freezing."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from console.host import host
from console.state import Link

ACCENT_COLOURS = {
    "green": "#2e7d32",
    "blue": "#1565c0",
    "cyan": "#00838f",
    "magenta": "#ad1457",
    "yellow": "#9e7c00",
    "orange": "#d84315",
    "red": "#b71c1c",
    "purple": "#6a1b9a",
}


def link_text(link: Link, now: float) -> Text:
    if link.up is None:
        return Text(f"● {link.name} …", style="dim")
    if link.up:
        latency = f" {link.latency_ms:.0f}ms" if link.latency_ms is not None else ""
        return Text(f"● {link.name} up{latency}", style="bold green")
    retry = link.next_try - now
    again = f" retry {retry:.0f}s" if 0 < retry < float("inf") else ""
    return Text(f"● {link.name} DOWN{again}", style="bold red")


class StatusBar(Static):
    """One line at the top of every view."""

    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; color: white; padding: 0 1; }
    """

    def __init__(self, view: str) -> None:
        super().__init__(id="status-bar")
        self.view = view

    def on_mount(self) -> None:
        accent = host(self.app).connection.target.accent
        self.styles.background = ACCENT_COLOURS.get(accent, ACCENT_COLOURS["green"])
        self.show()

    def show(self) -> None:
        app = host(self.app)
        now = time.time()
        line = Text()
        line.append(app.connection.target.name, style="bold")
        line.append(f" · {self.view}")
        if app.read_only:
            line.append(" ")
            line.append(" READ-ONLY ", style="bold black on yellow")
        who = app.signed_in_as
        line.append(f"  {who}" if who else "  not signed in", style="" if who else "italic")
        line.append("  ")
        line.append_text(link_text(app.state.api, now))
        line.append("  ")
        line.append_text(link_text(app.state.supervisor, now))
        self.update(line)
