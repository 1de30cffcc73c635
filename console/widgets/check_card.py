"""One health check as a card: its latency, status (coloured) and error or detail on one line, and below
them a strip of its recent results (a coloured ● each, oldest first) beside a sparkline of its latency."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

STATUS_COLOURS = {"ok": "green", "degraded": "yellow", "down": "bold red", "unknown": "dim"}
NOTE_COLOURS = {"ok": "dim", "degraded": "yellow", "down": "red", "unknown": "italic"}
DOTS = 30  # results shown in the strip: a minute at the default 2 s refresh


@dataclass(frozen=True)
class CheckView:
    """What a card shows: the latest result of one check, and its recent past (oldest first)."""

    name: str
    status: str
    latency_ms: float | None
    note: str = ""
    statuses: tuple[str, ...] = ()
    latencies: tuple[float, ...] = ()


def latency_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def headline(view: CheckView) -> Text:
    """`database   1.2 ms  ok · backend sqlite`, or `queue  -  unknown: API down (…)`."""
    line = Text()
    line.append(f"{view.name:<11}", "bold")
    line.append(f"{latency_text(view.latency_ms):>9}  ")
    line.append(view.status, STATUS_COLOURS.get(view.status, "bold"))
    if view.note:
        line.append(" · " if view.status == "ok" else ": ", "dim")
        line.append(view.note, NOTE_COLOURS.get(view.status, ""))
    return line


def strip(statuses: tuple[str, ...]) -> Text:
    """The last DOTS results, oldest first, one ● each in its status's colour."""
    dots = Text()
    for status in statuses[-DOTS:]:
        dots.append("●", STATUS_COLOURS.get(status, "magenta"))
    return dots


class CheckCard(Vertical):
    """A card that `show`s one CheckView; it keeps the view it shows (`view`) for whoever asks."""

    DEFAULT_CSS = """
    CheckCard { height: 3; padding: 0 1; }
    CheckCard > .check-head { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    CheckCard > Horizontal { height: 1; }
    CheckCard .check-dots { width: 32; }
    CheckCard Sparkline { width: 1fr; height: 1; }
    CheckCard .check-range { width: 16; color: $text-muted; text-align: right; }
    """

    def __init__(self, view: CheckView) -> None:
        super().__init__(id=f"check-{view.name}")
        self.view = view
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Static(classes="check-head")
        with Horizontal():
            yield Static(classes="check-dots")
            yield Sparkline([], summary_function=max)
            yield Static(classes="check-range")

    def on_mount(self) -> None:
        self._composed = True
        self.show(self.view)

    @property
    def line(self) -> str:
        """The headline as plain text (what a reader sees on the first line)."""
        return headline(self.view).plain

    def show(self, view: CheckView) -> None:
        self.view = view
        if not self._composed:
            return  # drawn by on_mount
        self.query_one(".check-head", Static).update(headline(view))
        self.query_one(".check-dots", Static).update(strip(view.statuses))
        recent = view.latencies[-DOTS:]
        self.query_one(Sparkline).data = list(recent)  # none: a flat baseline
        self.query_one(".check-range", Static).update(
            f"max {latency_text(max(recent))}" if recent else "no latency"
        )
