"""A log view that keeps what it was sent: a bounded buffer of the newest lines, a filter applied to the
buffer and to new lines, and follow/pause (paused, lines still come into the buffer but the view holds
still). New lines reach the screen in batches, not one redraw per line. Lines are kept as they were
written and shown readable (console.log_lines) or raw, as asked; a filter finds either form."""

from __future__ import annotations

from collections import deque
from itertools import islice

from textual.widgets import Log

from console.log_lines import ReadableHighlighter, readable

#: Lines kept per stream, and shown at most: a busy API writes ~300-byte lines, so about 1.5 MB of text
#: (twice: the buffer and the view's copy). Older lines drop off the top.
BUFFER_LINES = 5_000
FLUSH_S = 0.1


class LogTail(Log):
    """`add` lines as they come; `set_filter`, `set_following`, `set_raw` and `empty` act on what is kept
    (`buffer` and `shown` hold the lines as written; the view, `lines`, holds them as drawn)."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; }
    """

    def __init__(self, limit: int = BUFFER_LINES, *, id: str | None = None) -> None:
        super().__init__(max_lines=limit, highlight=True, auto_scroll=True, id=id)
        self.highlighter = ReadableHighlighter()
        self.raw = False  # shown as written (the JSON), or readable
        self.limit = limit
        self.buffer: deque[str] = deque(maxlen=limit)
        self.shown: deque[str] = deque(maxlen=limit)  # exactly the lines in the view, for saving
        self.needle = ""
        self.following = True
        self.held = 0  # the newest buffer lines not in the view (they came while paused)
        self.unseen = 0  # of those, the ones the filter lets through
        self._pending: list[str] = []

    def on_mount(self) -> None:
        self.set_interval(FLUSH_S, self.flush)

    def matches(self, line: str) -> bool:
        needle = self.needle
        return not needle or needle in line.lower() or needle in readable(line).lower()

    def drawn(self, line: str) -> str:
        """A line as the view shows it now."""
        return line if self.raw else readable(line)

    def set_raw(self, raw: bool) -> None:
        """Show the lines as written, or readable."""
        if raw != self.raw:
            self.raw, self.highlight = raw, not raw
            self.redraw()

    def add(self, line: str) -> None:
        self.buffer.append(line)
        if not self.following:
            self.held = min(self.held + 1, len(self.buffer))
            if self.matches(line):
                self.unseen += 1
        elif self.matches(line):
            self._pending.append(line)
            if len(self._pending) > self.limit:
                del self._pending[: -self.limit]

    def flush(self) -> None:
        """Write the lines that came since the last flush (called every FLUSH_S)."""
        if self._pending:
            lines, self._pending = self._pending, []
            self.shown.extend(lines)
            self.write_lines([self.drawn(line) for line in lines])

    def set_filter(self, text: str) -> None:
        """Show only the kept lines containing `text` (case-insensitive); "" shows them all."""
        self.needle = text.strip().lower()
        self.redraw()

    def set_following(self, following: bool) -> None:
        if following == self.following:
            return
        if following:  # catch up with what came while paused
            self.following, self.held, self.unseen = True, 0, 0
            self.auto_scroll = True
            self.redraw()
        else:
            self.flush()
            self.following, self.auto_scroll = False, False

    def redraw(self) -> None:
        """Rebuild the view from the buffer (without the lines held back while paused)."""
        self._pending.clear()
        upto = len(self.buffer) - self.held
        self.shown = deque((x for x in islice(self.buffer, 0, upto) if self.matches(x)), maxlen=self.limit)
        if self.held:
            self.unseen = sum(1 for x in islice(self.buffer, upto, None) if self.matches(x))
        self.clear()
        self.write_lines([self.drawn(line) for line in self.shown], scroll_end=True)

    def empty(self) -> None:
        """Forget every line (the view, the buffer and the lines held back)."""
        self.buffer.clear()
        self.shown.clear()
        self._pending.clear()
        self.held = self.unseen = 0
        self.clear()
