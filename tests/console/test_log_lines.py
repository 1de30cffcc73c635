"""How one log line reads in the logs view (console.log_lines), for what a running appliance does not write
on demand: messages over several lines, null and structured fields, other levels, wide program names,
lines that only look like JSON, and the colours of a readable line."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from rich.style import Style
from rich.text import Text

from console.log_lines import LEVEL_STYLES, ReadableHighlighter, clock, readable, value

STAMP = "2026-03-04T05:06:07.089Z"


def local(stamp: str) -> str:
    """A UTC stamp as the view writes it: local time, to the millisecond."""
    moment = dt.datetime.fromisoformat(stamp).astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def line(entry: dict[str, Any], stamp: str = STAMP, stream: str = "stderr") -> str:
    """As the supervisor writes a program's JSON line."""
    return f"{stamp} {stream} {json.dumps(entry)}"


def test_a_message_over_several_lines_stays_on_one() -> None:
    written = "2026-03-04T05:06:08.000Z"  # the program's own time, shown rather than the supervisor's
    entry = {
        "time": written,
        "level": "error",
        "logger": "appliance.jobs",
        "process": "worker",
        "message": "job 7 failed\nretrying\r\nin 5 s\rnow",
        "attempt": 2,
    }
    assert readable(line(entry)) == (
        f"{local(written)} ERROR worker job 7 failed↵retrying↵in 5 s↵now  attempt=2 logger=appliance.jobs"
    )


def test_null_fields_are_left_out_and_other_values_written_as_json() -> None:
    entry = {
        "time": STAMP,
        "level": "warning",
        "logger": "appliance.jobs",
        "process": "worker",
        "message": "could not hand jobs to the queue",
        "request_id": None,
        "error": 'timeout after 5 s: "redis"',
        "job": None,
        "jobs": [1, 2],
        "detail": {"a": None},
        "ok": True,
        "empty": "",
        "path": "/tmp/a=b",
    }
    assert readable(line(entry)) == (
        f"{local(STAMP)} WARN  worker could not hand jobs to the queue  "
        'error="timeout after 5 s: \\"redis\\"" jobs=[1,2] detail={"a":null} ok=true empty="" '
        'path="/tmp/a=b" logger=appliance.jobs'
    )


@pytest.mark.parametrize(
    ("level", "shown"),
    [("debug", "DEBUG"), ("INFO", "INFO "), ("critical", "CRIT "), ("notice", "NOTIC"), (None, "-    ")],
)
def test_the_level_is_one_five_letter_word(level: str | None, shown: str) -> None:
    entry = {"time": STAMP, "level": level, "process": "api", "message": "m"}
    assert readable(line(entry)) == f"{local(STAMP)} {shown} api    m"


def test_the_program_column_is_padded_in_terminal_cells() -> None:
    wide = {"time": STAMP, "level": "info", "process": "日本", "message": "m"}
    assert readable(line(wide)) == f"{local(STAMP)} INFO  日本   m"  # 4 cells, 2 spaces
    long = {"time": STAMP, "level": "info", "process": "scheduler", "message": "m"}
    assert readable(line(long)) == f"{local(STAMP)} INFO  scheduler m"
    unnamed = {"time": STAMP, "level": "info", "message": "m"}
    assert readable(line(unnamed, stream="stdout")) == f"{local(STAMP)} INFO  stdout m"  # the stream names it


def test_an_entry_without_its_own_time_takes_the_supervisors() -> None:
    for when in (None, "yesterday", 12):
        entry = {"time": when, "level": "info", "process": "api", "message": "m"}
        assert readable(line(entry)) == f"{local(STAMP)} INFO  api    m"


@pytest.mark.parametrize(
    "text",
    [
        "INFO:     Started server process [12]",
        "[1, 2]",
        '"just a string"',
        "{not json",
        "{}x",
        "",
    ],
)
def test_other_text_keeps_its_words(text: str) -> None:
    assert readable(f"{STAMP} stderr {text}") == f"{local(STAMP)} stderr {text}"


@pytest.mark.parametrize(
    "written", ["no stamp at all", "2026-03-04 05:06:07.089 stderr {}", "2026-03-04T05:06:07.089Zstderr", ""]
)
def test_a_line_without_the_supervisors_stamp_is_shown_as_written(written: str) -> None:
    assert readable(written) == written


def test_clock_and_value() -> None:
    assert clock("2026-03-04T05:06:07.089") == clock(STAMP)  # a naive time is UTC
    assert clock("not a time") is None
    assert clock(None) is None
    assert value("plain") == "plain"
    assert value("two words") == '"two words"'
    assert value("tab\there") == '"tab\\there"'
    assert value("é") == "é"
    assert value(1.5) == "1.5"
    assert value(None) == "null"


def styles_of(plain: str) -> dict[str, Style]:
    """The style the view gives each coloured part of a drawn line."""
    text = Text(plain)
    ReadableHighlighter().highlight(text)
    return {plain[span.start : span.end]: Style.parse(str(span.style)) for span in text.spans}


def test_a_readable_line_is_coloured_by_its_level() -> None:
    for level, word in (("error", "ERROR"), ("warning", "WARN"), ("info", "INFO"), ("critical", "CRIT")):
        entry = {"time": STAMP, "level": level, "process": "worker", "message": "m", "job": "j7"}
        assert styles_of(readable(line(entry))) == {
            local(STAMP): Style(dim=True),
            word: LEVEL_STYLES[word],
            "worker": Style(bold=True),
            "job=": Style(dim=True),
        }
    error = LEVEL_STYLES["ERROR"]
    assert error.color is not None
    assert error.color.name == "red"


def test_a_line_as_written_gets_only_its_time_dimmed() -> None:
    plain = readable(f"{STAMP} supervisor[1] api: spawned pid 13 (ERROR  key=value)")
    assert styles_of(plain) == {local(STAMP): Style(dim=True)}
