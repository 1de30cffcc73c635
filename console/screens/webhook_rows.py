"""How the webhooks view draws an endpoint and an attempt of its delivery log: the rows of its two tables,
the selected endpoint's heading (why it is off, since when it fails), the selected attempt in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from console import format as fmt
from console.screens.backups import moment
from console.widgets.row_table import Column

Endpoint = dict[str, Any]
Attempt = dict[str, Any]
STATE_COLOURS = {"enabled": "green", "disabled": "bold red"}
STATUS_COLOURS = {str(code): "green" if code < 300 else "red" for code in range(200, 600)} | {"-": "red"}
ENDPOINT_COLUMNS = (
    Column("Tenant", 12),
    Column("URL"),
    Column("State", 8, colours=STATE_COLOURS),
    Column("OK 24h", 6, "right"),
    Column("Tries", 5, "right"),
    Column("Failing", 7, "right"),
)
LOG_COLUMNS = (
    Column("Time", 14),
    Column("Event", 16),
    Column("Try", 3, "right"),
    Column("Status", 6, colours=STATUS_COLOURS),
    Column("Latency", 7, "right"),
    Column("Error"),
    Column("Answer"),
)


def rate(endpoint: Endpoint) -> str:
    """The share of the last 24 hours' attempts that succeeded, in percent ("-" without any)."""
    value = endpoint.get("success_rate")
    return "-" if value is None else f"{float(value) * 100:.0f}%"


def endpoint_row(endpoint: Endpoint, now: float) -> tuple[str, tuple[str, ...]]:
    failing = moment(endpoint.get("failing_since"))
    return str(endpoint["id"]), (
        str(endpoint.get("tenant_slug") or "?"),
        str(endpoint.get("url") or "?"),
        "enabled" if endpoint.get("enabled") else "disabled",
        rate(endpoint),
        str(endpoint.get("attempts_24h", "-")),
        "-" if failing is None else fmt.duration(now - failing),
    )


def attempt_row(attempt: Attempt) -> tuple[str, tuple[str, ...]]:
    latency = attempt.get("latency_ms")
    excerpt = " ".join(str(attempt.get("response_excerpt") or "").split())  # one line
    return str(attempt["id"]), (
        fmt.when(attempt.get("created_at"))[5:],
        str(attempt.get("event_type") or "?"),
        str(attempt.get("attempt", "?")),
        str(attempt.get("status_code") or "-"),
        "-" if latency is None else f"{latency:.0f}ms",
        str(attempt.get("error") or ""),
        excerpt,
    )


def endpoint_heading(endpoint: Endpoint | None, now: float) -> Text:
    """The selected endpoint in full: URL, tenant, state and why it is off, since when it fails."""
    line = Text(no_wrap=True, overflow="ellipsis")
    if endpoint is None:
        return line
    line.append(f"{endpoint.get('url')} ", "bold")
    line.append(f"({endpoint.get('tenant_slug')}) ")
    if endpoint.get("enabled"):
        line.append("enabled", "green")
    else:
        line.append(f"disabled: {endpoint.get('disabled_reason') or 'no reason recorded'}", "bold red")
    failing = moment(endpoint.get("failing_since"))
    if failing is not None:
        since = fmt.when(endpoint.get("failing_since"))[5:16]
        line.append(f" · failing for {fmt.duration(now - failing)} (since {since})", "yellow")
    events = endpoint.get("event_types") or []
    line.append(f"\nevents: {', '.join(events) if events else 'all'}", "dim")
    if endpoint.get("description"):
        line.append(f" · {endpoint['description']}", "dim")
    return line


def attempt_line(attempt: Attempt | None) -> Text:
    """The selected attempt's message, error and the start of the answer, as long as two lines allow."""
    line = Text(overflow="ellipsis")
    if attempt is None:
        return Text("No delivery selected.", "dim")
    status = attempt.get("status_code")
    line.append(f"message {attempt.get('message_id')} · attempt {attempt.get('attempt')} · ", "dim")
    line.append(str(status or "no answer"), "green" if status and status < 300 else "bold red")
    if attempt.get("error"):
        line.append(f" · {attempt['error']}", "red")
    if attempt.get("response_excerpt"):
        line.append(f" · answer: {' '.join(str(attempt['response_excerpt']).split())}")
    return line
