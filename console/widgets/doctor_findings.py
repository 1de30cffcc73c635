"""The doctor's findings as a table (check, status, finding, hint), failures and warnings in colour, the
finding and the hint wrapped rather than cut (a hint is the fix: it must be read whole)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

STATUS_STYLES = {"fail": "bold red", "warn": "bold yellow", "ok": "green", "skip": "dim"}
ORDER = ("fail", "warn", "ok", "skip")

Finding = tuple[str, str, str, str]  # check, status, finding, hint


def findings_of(report: dict[str, Any]) -> list[Finding]:
    return [
        (
            str(f.get("check", "?")),
            str(f.get("status", "?")),
            str(f.get("finding", "")),
            str(f.get("hint", "")),
        )
        for f in report.get("findings") or ()
    ]


def tally(findings: Sequence[Finding]) -> Text:
    """`1 fail · 2 warn · 10 ok · 1 skip` (the statuses present, worst first, each in its colour)."""
    counts = Counter(status for _, status, _, _ in findings)
    line = Text()
    for status in (*ORDER, *sorted(set(counts) - set(ORDER))):
        if counts[status]:
            if line:
                line.append(" · ", "dim")
            line.append(f"{counts[status]} {status}", STATUS_STYLES.get(status, ""))
    return line


def findings_table(findings: Sequence[Finding]) -> Table:
    table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Finding", ratio=1, overflow="fold")  # a long path is folded, never cut
    table.add_column("Hint", ratio=1, overflow="fold")
    for check, status, finding, hint in findings:
        shown = status.upper() if status in ("fail", "warn") else status
        table.add_row(
            check,
            Text(shown, STATUS_STYLES.get(status, "")),
            Text(finding),  # Text: the doctor's words are never read as markup
            Text(hint, "italic" if status in ("fail", "warn") else "dim"),
        )
    return table


class DoctorFindings(Static):
    """The latest report's findings (`findings`), or a note while there is none."""

    DEFAULT_CSS = """
    DoctorFindings { height: auto; padding: 0 1; margin-top: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.findings: list[Finding] = []

    def show(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        self.update(findings_table(self.findings))

    def clear(self) -> None:
        self.findings = []
        self.update("")
