"""How a log line reads in the logs view. Pure text: no Textual, no I/O.

The supervisor writes every line as `<UTC stamp> <stream> <text>` (its own as `<stamp> supervisor[pid]
<text>`), and the appliance's programs write their text as one JSON object (appliance.logs). A readable
line is the local time, then for a JSON object its level, program and message and its other fields as
`key=value` (null ones left out, the request id and logger last); any other text is shown as it was
written. The raw line is what is kept, filtered, saved, and shown when the view is switched to raw.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text

#: len("2026-11-22T05:12:00.123Z"): the supervisor's stamp, always this wide.
STAMP_WIDTH = 24
#: The fields a readable line shows in its own columns; the others follow the message, these last (a
#: narrow terminal cuts them off first: they say least about the line itself).
OWN_COLUMNS = ("time", "level", "process", "message")
LAST_FIELDS = ("request_id", "logger")
LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR", "critical": "CRIT"}
LEVEL_STYLES = {
    "DEBUG": Style(dim=True),
    "INFO": Style(color="green"),
    "WARN": Style(color="yellow", bold=True),
    "ERROR": Style(color="red", bold=True),
    "CRIT": Style(color="red", bold=True, reverse=True),
}
PROGRAM_WIDTH = 6  # "worker"; a longer name pushes its message right

_BARE = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")  # a string value shown without quotes
_STRUCTURED = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) ([A-Z]{1,5}) +(\S+) ")
_TIMED = re.compile(r"\d\d:\d\d:\d\d\.\d{3} ")
_KEY = re.compile(r"(?<=\s)[A-Za-z_][\w.-]*=")


def clock(stamp: object) -> str | None:
    """An RFC 3339 time as local `HH:MM:SS.mmm` (None when it is not one)."""
    if not isinstance(stamp, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone()
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


def value(item: Any) -> str:
    """A field's value: a plain word as it is, anything else as JSON (quoted, escaped, on one line)."""
    if isinstance(item, str) and _BARE.fullmatch(item):
        return item
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def _one_line(text: str) -> str:
    return text.replace("\r\n", "↵").replace("\n", "↵").replace("\r", "↵")


@lru_cache(maxsize=8192)  # a redraw (filter, toggle) of the 5,000 kept lines reads them again
def readable(line: str) -> str:
    """The line as the logs view shows it (see the module's docstring); a line it cannot read, as it is."""
    stamp, _, rest = line.partition(" ")
    time = clock(stamp) if len(stamp) == STAMP_WIDTH else None
    if time is None:
        return line
    stream, _, text = rest.partition(" ")
    entry = _json_object(text)
    if entry is None:
        return f"{time} {rest}"
    level = str(entry.get("level") or "-")
    program = value(entry.get("process") or stream)
    program += " " * (PROGRAM_WIDTH - cell_len(program))  # in terminal cells, as the view draws it
    head = (
        f"{clock(entry.get('time')) or time} {LEVELS.get(level.lower(), level.upper()[:5]):<5} "
        f"{program} {_one_line(str(entry.get('message', '')))}"
    )
    fields = [key for key in entry if key not in OWN_COLUMNS and key not in LAST_FIELDS]
    fields += [key for key in LAST_FIELDS if key in entry]
    extra = " ".join(f"{key}={value(entry[key])}" for key in fields if entry[key] is not None)
    return f"{head}  {extra}" if extra else head


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class ReadableHighlighter(Highlighter):
    """Colours a readable line: the time dim, the level by its gravity, the program bold, field names dim.
    A line that kept its own text gets only its time dimmed."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        match = _STRUCTURED.match(plain)
        if match is None:
            if _TIMED.match(plain):
                text.stylize(Style(dim=True), 0, 12)
            return
        text.stylize(Style(dim=True), *match.span(1))
        text.stylize(LEVEL_STYLES.get(match.group(2), Style(bold=True)), *match.span(2))
        text.stylize(Style(bold=True), *match.span(3))
        fields = plain.find("  ", match.end())
        if fields != -1:
            for key in _KEY.finditer(plain, fields):
                text.stylize(Style(dim=True), *key.span())
