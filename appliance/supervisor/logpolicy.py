"""The `[logs]` table of the services file: rotation size and age, disk quota, compression."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.supervisor.specvalues import SpecError

LOG_KEYS = ("max_bytes", "max_age", "quota_bytes", "compress")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MIN_BYTES = 4096  # smaller files would rotate on nearly every line


@dataclass(frozen=True)
class LogPolicy:
    """How program logs are rotated, compressed and bounded on disk."""

    max_bytes: int = 10 << 20
    """Rotate `<label>.log` before a line would take it past this size."""
    max_age: float = 86400.0
    """Rotate `<label>.log` once its first line is this many seconds old."""
    quota_bytes: int = 500 << 20
    """All files of the log dir together (current, rotated, supervisor.log); oldest rotated go first."""
    compress: bool = True
    """Gzip rotated files (in a worker thread, off the event loop)."""


def parse_size(value: object) -> int:
    """Bytes from an integer or a string such as "500M", "10MiB", "64k" (binary units); ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'not a size: {value!r} (e.g. 10485760, "10M", "1G")')
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as "90s", "10m", "12h", "1d", "2w"; ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'not a duration: {value!r} (e.g. 86400, "12h", "1d")')
    return float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]


def load_log_policy(data: Mapping[str, Any], path: str | Path) -> LogPolicy:
    """Check the decoded `[logs]` table; raise `SpecError` naming the file and the key."""
    where = f"{path}: [logs]"
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a table")
    for key in data:
        if key not in LOG_KEYS:
            raise SpecError(f"{where}: unknown key {key!r} (allowed: {', '.join(LOG_KEYS)})")
    defaults = LogPolicy()
    max_bytes = int(_value(data, "max_bytes", parse_size, defaults.max_bytes, where))
    quota = int(_value(data, "quota_bytes", parse_size, defaults.quota_bytes, where))
    max_age = _value(data, "max_age", parse_duration, defaults.max_age, where)
    compress = data.get("compress", defaults.compress)
    if max_bytes < MIN_BYTES:
        raise SpecError(f"{where}: 'max_bytes' must be at least {MIN_BYTES}, not {max_bytes}")
    if quota < max_bytes:
        raise SpecError(f"{where}: 'quota_bytes' ({quota}) must be at least 'max_bytes' ({max_bytes})")
    if max_age <= 0:
        raise SpecError(f"{where}: 'max_age' must be positive, not {data.get('max_age')!r}")
    if not isinstance(compress, bool):
        raise SpecError(f"{where}: 'compress' must be true or false, not {compress!r}")
    return LogPolicy(max_bytes=max_bytes, max_age=max_age, quota_bytes=quota, compress=compress)


def read_log_policy(path: str | Path) -> LogPolicy:
    """The policy of the services file at `path` (defaults when it has no `[logs]` table)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the [logs] table: {exc}") from exc
    return load_log_policy(data.get("logs", {}), path)


def _value(
    data: Mapping[str, Any], key: str, parse: Callable[[object], float], default: float, where: str
) -> float:
    try:
        return parse(data.get(key, default))
    except ValueError as exc:
        raise SpecError(f"{where}: {key!r}: {exc}") from exc
