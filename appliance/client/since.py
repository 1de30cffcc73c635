"""Parse `appliance logs --since` ("10m", "2h", "1d", ISO-8601, Unix seconds) into Unix seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, now: float) -> float:
    """Unix seconds for `value`, relative ones counted back from `now`; ValueError names what is accepted.

    A bare number is Unix seconds; "10m" is ten minutes before `now`; an ISO-8601 time without a zone is UTC.
    """
    text = value.strip()
    if match := _AGO.match(text.lower()):
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a duration back from now (30s, 10m, 2h, 1d, 1w), "
            "an ISO-8601 time (2026-11-22T05:12:00Z) or Unix seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
