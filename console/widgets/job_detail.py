"""How the console draws durable jobs: the counts by state, a job's row in the jobs table, its name in a
question, and the job in full under the table (what it is and for whom, its attempts and timeline, how far
it got, its last error, its result and its payload, as pretty JSON trimmed to what a pane can show).

Everything here came from a tenant (a payload, an error a receiver caused): it is drawn as plain text with
control characters made visible, never as markup.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console import format as fmt
from console.widgets.job_progress import percent

Job = dict[str, Any]
JSON_LINES = 24  # of the payload, and of the result; the rest is counted
ERROR_CHARS = 2000
STATE_STYLES = {
    "queued": "cyan",
    "running": "bold blue",
    "succeeded": "green",
    "dead": "bold red",
    "cancelled": "yellow",
}
#: C0 and C1 control characters but the newline: drawn as "�" (an error text must not steer the terminal).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def age(value: str | None, now: float) -> str:
    """How long ago an RFC 3339 time of the API was (4m12s), "-" when there is none."""
    try:
        then = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "-"
    return fmt.duration(now - then)


def short(job_id: object) -> str:
    return str(job_id)[:8]


def job_name(job: Job) -> str:
    """How a job is named to a person: its kind and short id (`webhooks.deliver 1a2b3c4d`)."""
    return f"{job.get('kind', '?')} {short(job['id'])}"


def tenant_label(job: Job, tenants: dict[str, dict[str, Any]]) -> str:
    """The job's tenant by slug; `platform` for the platform's own; a short id while the slug is unknown."""
    tenant_id = job.get("tenant_id")
    if tenant_id is None:
        return "platform"
    tenant = tenants.get(str(tenant_id))
    return str(tenant["slug"]) if tenant else short(tenant_id)


def job_row(job: Job, now: float, tenants: dict[str, dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    error = str(job.get("last_error") or "")
    return str(job["id"]), (
        age(job.get("created_at"), now),
        str(job.get("state", "?")),
        str(job.get("kind", "?")),
        tenant_label(job, tenants),
        f"{job.get('attempts', '?')}/{job.get('max_attempts', '?')}",
        error.split("\n", 1)[0] if error else "-",
    )


def count(value: int) -> str:
    """9,811 · 12.3k · 1.2M: a count in a few cells."""
    if value < 10_000:
        return f"{value:,}"
    return f"{value / 1000:.1f}k" if value < 1_000_000 else f"{value / 1_000_000:.1f}M"


def state_counts(counts: dict[str, int]) -> Text:
    """The jobs by state at the last scrape, in two lines (the dead in red when there are any)."""
    if not counts:
        return Text("waiting for the metrics", "dim")
    line = Text()
    for state in ("queued", "running", "dead", "succeeded", "cancelled"):
        value = counts.get(state, 0)
        line.append("\n" if state == "succeeded" else ("  " if state != "queued" else ""))
        line.append(f"{state} ")
        line.append(count(value), "bold red" if state == "dead" and value else "bold")
    return line


def plain(text: str) -> str:
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


def pretty(value: Any, lines: int = JSON_LINES) -> str:
    """`value` as indented JSON, cut after `lines` lines ("… 12 more lines")."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    rows = text.splitlines()
    if len(rows) <= lines:
        return plain(text)
    return plain("\n".join(rows[:lines])) + f"\n… {len(rows) - lines} more lines"


def timeline(job: dict[str, Any]) -> str:
    """created → started → finished (or → next attempt, while queued), in local time; a step on the day
    the job was created shows its time only; what has not happened is left out."""
    steps = [("Created", job.get("created_at")), ("started", job.get("started_at"))]
    if job.get("state") == "queued":
        steps.append(("next attempt" if job.get("attempts") else "runs", job.get("run_at")))
    steps.append(("finished", job.get("finished_at")))
    day = fmt.when(job.get("created_at"))[:11]
    shown: list[str] = []
    for name, at in steps:
        if at:
            when = fmt.when(at)
            shown.append(f"{name} {when[11:] if when.startswith(day) and shown else when}")
    return " → ".join(shown)


def describe(job: dict[str, Any], tenant: str) -> Text:
    state = str(job.get("state", "?"))
    out = Text()
    out.append(f"{plain(str(job.get('kind', '?')))} ", "bold")
    out.append(state, STATE_STYLES.get(state, ""))
    out.append(f" · tenant {tenant} · attempts {job.get('attempts', '?')}/{job.get('max_attempts', '?')}")
    out.append(f"\njob {job.get('id')}\n", "dim")
    out.append(f"{timeline(job)}\n")
    progress = job.get("progress")
    if isinstance(progress, dict) and progress:
        share = percent(progress)
        step = plain(str(progress.get("step", "")))
        done = f" ({progress.get('done')}/{progress.get('total')})" if share is not None else ""
        out.append("Progress: ", "bold")
        out.append(f"{step}{done}{f' {share}%' if share is not None else ''}\n")
    error = job.get("last_error")
    if error:
        text = str(error)
        cut = f"… ({len(text) - ERROR_CHARS} more characters)" if len(text) > ERROR_CHARS else ""
        out.append("Last error: ", "bold")
        out.append(plain(text[:ERROR_CHARS]) + cut + "\n", "red" if state == "dead" else "yellow")
    if job.get("result") is not None:
        out.append("Result: ", "bold")
        out.append(pretty(job["result"]) + "\n")
    out.append("Payload: ", "bold")
    out.append(pretty(job.get("payload") or {}))
    return out


class JobDetail(VerticalScroll):
    """The selected job (empty when there is none), scrolled back to its top when another is shown."""

    DEFAULT_CSS = """
    JobDetail { height: 9; border-top: solid $panel; padding: 0 1; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown_id: str | None = None
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="job-detail-text")

    def show(self, job: dict[str, Any] | None, tenant: str = "") -> None:
        content = describe(job, tenant) if job is not None else Text("")
        self.text = content.plain
        self.query_one("#job-detail-text", Static).update(content)
        job_id = str(job["id"]) if job is not None else None
        if job_id != self.shown_id:
            self.shown_id = job_id
            self.scroll_home(animate=False)
