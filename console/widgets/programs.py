"""The rows of supervised programs, as the dashboard and the services view show them."""

from __future__ import annotations

import time
from typing import Any

from console import format as fmt
from console.widgets.row_table import Column

STATE_COLOURS = {
    "running": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "backoff": "bold red",
    "fatal": "bold red",
    "exited": "red",
    "stopped": "dim",
}

COLUMNS = (
    Column("Program"),
    Column("State", 9, colours=STATE_COLOURS),
    Column("PID", 7, "right"),
    Column("Uptime", 7, "right"),
    Column("Restarts", 8, "right"),
    Column("CPU", 6, "right"),
    Column("Memory", 7, "right"),
)


def label(program: dict[str, Any]) -> str:
    return f"{program['name']}-{program['instance']}" if program.get("instance", 1) != 1 else program["name"]


def row(program: dict[str, Any], now: float | None = None) -> tuple[str, tuple[str, ...]]:
    now = time.time() if now is None else now
    started = program.get("started_at")
    state = str(program["state"])
    if program.get("crash_looping"):
        state = "backoff"
    return label(program), (
        label(program),
        state,
        str(program["pid"] or "-"),
        fmt.duration(now - started) if started and program.get("pid") else "-",
        str(program.get("restarts", 0)),
        fmt.percent(program.get("cpu_percent")),
        fmt.size(program.get("rss_bytes")),
    )
