"""How the console writes numbers and times: short, so a row fits in 80 columns."""

from __future__ import annotations

import datetime as dt


def duration(seconds: float | None) -> str:
    """3s, 4m12s, 2h05m, 3d04h."""
    if seconds is None or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(count: float | None) -> str:
    """Bytes as 512K, 48.2M, 1.1G."""
    if count is None:
        return "-"
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if count >= scale:
            value = count / scale
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{int(count)}B"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def rate(value: float | None) -> str:
    return "-" if value is None else (f"{value:.1f}/s" if value < 100 else f"{value:.0f}/s")


def when(value: str | None) -> str:
    """An RFC 3339 time from the API as local 'YYYY-MM-DD HH:MM:SS'."""
    if not value:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
