"""Read the last lines of a program's log, reaching back into rotated and gzip files only as far as needed."""

from __future__ import annotations

import collections
import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from appliance.supervisor.output import utc_stamp
from appliance.supervisor.rotation import rotated_of

MAX_LINES = 10_000  # the most one answer carries: bounds the loop's work and the answer's size
_BLOCK = 64 * 1024
_STAMP = 24  # len("2026-11-22T05:12:00.123Z"): fixed width, so stamps compare as strings


def read_tail(log_dir: Path, labels: list[str], lines: int, since: float | None = None) -> list[str]:
    """The last `lines` lines (at most MAX_LINES) of these labels, at or after `since`, oldest first.

    Lines of several labels (instances of one program) are merged by their timestamps.
    """
    lines = max(0, min(lines, MAX_LINES))
    floor = utc_stamp(since) if since is not None else None
    merged: list[str] = []
    for label in labels:
        merged.extend(_tail_of_label(log_dir, label, lines, floor))
    if len(labels) > 1:
        merged.sort(key=lambda line: line[:_STAMP])  # stable: one label's order is kept on equal stamps
    return merged[len(merged) - lines :] if lines else []


def _tail_of_label(log_dir: Path, label: str, lines: int, floor: str | None) -> list[str]:
    # Newest file first: the current one, then rotated ones by falling stamp.
    files = [log_dir / f"{label}.log"]
    for entry in reversed(rotated_of(log_dir, label)):
        files.append(entry.path)
    found: list[str] = []  # newest first
    for path in files:
        for line in _newest_first(path):
            if floor is not None and line[:_STAMP] < floor:
                return found[::-1]  # everything further back is older still
            found.append(line)
            if len(found) >= lines:
                return found[::-1]
    return found[::-1]


def _newest_first(path: Path) -> Iterator[str]:
    try:
        if path.name.endswith(".gz"):
            yield from _gzip_newest_first(path)
        elif path.exists() or not path.with_name(path.name + ".gz").exists():
            yield from _plain_newest_first(path)
        else:  # compressed between the directory scan and now
            yield from _gzip_newest_first(path.with_name(path.name + ".gz"))
    except (FileNotFoundError, EOFError, zlib.error, gzip.BadGzipFile):
        return  # deleted by the quota or compressed meanwhile, or cut short by a crash: skip it


def _gzip_newest_first(path: Path) -> Iterator[str]:
    # Gzip cannot be read backwards; a rotated file is at most max_bytes, so keep the last MAX_LINES.
    with gzip.open(path, "rb") as handle:
        tail = collections.deque(handle, maxlen=MAX_LINES)
    for raw in reversed(tail):
        yield raw.rstrip(b"\n").decode(errors="replace")


def _plain_newest_first(path: Path) -> Iterator[str]:
    # Read backwards in blocks, so a tail of a 10 MiB file costs a few blocks, not the whole file.
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        rest = b""
        while end > 0:
            start = max(0, end - _BLOCK)
            handle.seek(start)
            chunk = handle.read(end - start) + rest
            end = start
            parts = chunk.split(b"\n")
            rest = parts[0]  # may continue in the previous block
            for raw in reversed(parts[1:]):
                if raw:
                    yield raw.decode(errors="replace")
        if rest:
            yield rest.decode(errors="replace")
