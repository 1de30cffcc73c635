"""A durable job as one or two lines: what it is doing now (its step, a bar and the percent), then how it
ended. The view that started the job polls it and `show`s each answer; this widget only draws."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual.widgets import Static

BAR = 24  # cells of the progress bar
KEPT = 200  # lines remembered
#: Totals up to this are things worth counting (tables, audit chains); above, bytes: the percent says it.
COUNTED = 1000
STATE_STYLES = {"queued": "dim", "running": "bold", "succeeded": "green", "dead": "bold red"}
#: The states a job does not leave (API.md: the job's lifecycle).
FINISHED = frozenset({"succeeded", "dead", "cancelled"})


def percent(progress: dict[str, Any] | None) -> int | None:
    """How far the current step got, 0-100; None before the job reported any progress."""
    if not isinstance(progress, dict):
        return None
    done, total = progress.get("done"), progress.get("total")
    if not isinstance(done, int) or not isinstance(total, int) or total <= 0:
        return None
    return max(0, min(100, done * 100 // total))


def progress_line(title: str, job: dict[str, Any]) -> Text:
    """The job's title, and under it `██████░░░░  40%  verifying audit chains (2/5)` (or `queued…`)."""
    line = Text()
    line.append(title, "bold")
    line.append("\n")
    state = str(job.get("state") or "queued")
    progress = job.get("progress")
    share = percent(progress)
    if share is None:
        line.append(f"{state}…", STATE_STYLES.get(state, ""))
        return line
    filled = share * BAR // 100
    line.append("█" * filled, "green")
    line.append("░" * (BAR - filled), "dim")
    line.append(f" {share:>3}%  ")
    assert isinstance(progress, dict)  # percent() found its numbers
    line.append(str(progress.get("step") or state))
    if progress["total"] <= COUNTED:
        line.append(f" ({progress['done']}/{progress['total']})")
    return line


class JobProgress(Static):
    """The job a view started: its live progress while it runs, its outcome once it ended."""

    DEFAULT_CSS = """
    JobProgress { height: auto; min-height: 2; padding: 0 1; border-top: solid $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.lines: deque[str] = deque(maxlen=KEPT)  # the texts shown, oldest first (for whoever asks)

    @property
    def text(self) -> str:
        """What the widget shows now, as plain text."""
        return str(self.content)

    def show(self, title: str, job: dict[str, Any]) -> None:
        self._draw(progress_line(title, job))

    def finished(self, outcome: Text) -> None:
        self._draw(outcome)

    def say(self, text: str, style: str = "") -> None:
        self._draw(Text(text, style))

    def idle(self, hint: str) -> None:
        """What to do, while no job was started here (not one of the `lines`)."""
        self.update(Text(hint, "dim"))

    def _draw(self, text: Text) -> None:
        if not self.lines or self.lines[-1] != text.plain:
            self.lines.append(text.plain)
        self.update(text)
